#include "tools/cofferctl/operation_docs.h"

#include "absl/strings/str_cat.h"
#include "tools/cofferctl/command_table.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;

constexpr char kKms[] = "coffer.kms.v1.KeyManagement.";
constexpr char kSecrets[] = "coffer.secrets.v1.SecretsManager.";
constexpr char kParams[] = "coffer.params.v1.ParameterStore.";
constexpr char kAccessKeys[] = "coffer.iam.v1.AccessKeys.";

OperationDoc Doc(std::vector<std::string> examples, std::vector<std::string> required = {},
                 std::string text_value = "", std::vector<std::string> table_columns = {}) {
  return OperationDoc{std::move(examples), std::move(required), std::move(text_value),
                      std::move(table_columns)};
}

// Values in the examples are made up; the ids have the real shapes so that
// an example pasted with an id replaced works.
std::map<std::string, OperationDoc> KmsDocs() {
  const std::string key = "1234abcd-12ab-34cd-56ef-1234567890ab";
  std::map<std::string, OperationDoc> d;
  d["CreateKey"] =
      Doc({"cofferctl kms create-key --description 'orders database' --tags team=payments",
           "cofferctl kms create-key --description 'orders database' --output text"},
          {}, "key_metadata.key_id");
  d["DescribeKey"] =
      Doc({"cofferctl kms describe-key --key-id alias/orders --output table"}, {"key_id"});
  d["ListKeys"] = Doc({"cofferctl kms list-keys --limit 50 --output table"});
  d["UpdateKeyDescription"] = Doc(
      {"cofferctl kms update-key-description --key-id alias/orders --description 'orders (eu)'"},
      {"key_id"});
  d["EnableKey"] = Doc({"cofferctl kms enable-key --key-id alias/orders"}, {"key_id"});
  d["DisableKey"] = Doc({"cofferctl kms disable-key --key-id alias/orders"}, {"key_id"});
  d["ScheduleKeyDeletion"] =
      Doc({"cofferctl kms schedule-key-deletion --key-id alias/orders --pending-window-in-days 7"},
          {"key_id"});
  d["CancelKeyDeletion"] =
      Doc({"cofferctl kms cancel-key-deletion --key-id alias/orders"}, {"key_id"});
  d["EnableKeyRotation"] =
      Doc({"cofferctl kms enable-key-rotation --key-id alias/orders --rotation-period-in-days 180"},
          {"key_id"});
  d["DisableKeyRotation"] =
      Doc({"cofferctl kms disable-key-rotation --key-id alias/orders"}, {"key_id"});
  d["GetKeyRotationStatus"] = Doc(
      {"cofferctl kms get-key-rotation-status --key-id alias/orders --output table"}, {"key_id"});
  d["RotateKeyOnDemand"] =
      Doc({"cofferctl kms rotate-key-on-demand --key-id alias/orders"}, {"key_id"});
  d["ListKeyRotations"] =
      Doc({"cofferctl kms list-key-rotations --key-id alias/orders --output table"}, {"key_id"});
  d["CreateAlias"] = Doc(
      {absl::StrCat("cofferctl kms create-alias --alias-name alias/orders --target-key-id ", key)},
      {"alias_name", "target_key_id"});
  d["UpdateAlias"] = Doc(
      {absl::StrCat("cofferctl kms update-alias --alias-name alias/orders --target-key-id ", key)},
      {"alias_name", "target_key_id"});
  d["DeleteAlias"] = Doc({"cofferctl kms delete-alias --alias-name alias/orders"}, {"alias_name"});
  d["ListAliases"] =
      Doc({"cofferctl kms list-aliases --output table",
           absl::StrCat("cofferctl kms list-aliases --key-id ", key)},
          {}, "", {"alias_name", "target_key_id", "creation_date", "last_updated_date"});
  d["Encrypt"] = Doc({"cofferctl kms encrypt --key-id alias/orders --plaintext fileb://plain.txt "
                      "--encryption-context app=orders --output-file blob.bin",
                      "cofferctl kms encrypt --key-id alias/orders --plaintext - "
                      "--encryption-context app=orders --output text"},
                     {"key_id", "plaintext"}, "ciphertext_blob");
  d["Decrypt"] = Doc({"cofferctl kms decrypt --ciphertext-blob fileb://blob.bin "
                      "--encryption-context app=orders --output-file plain.txt",
                      "cofferctl kms decrypt --ciphertext-blob - --encryption-context app=orders "
                      "--output text"},
                     {"ciphertext_blob"}, "plaintext");
  d["ReEncrypt"] =
      Doc({"cofferctl kms re-encrypt --ciphertext-blob fileb://blob.bin "
           "--source-encryption-context app=orders --destination-key-id alias/orders-v2 "
           "--destination-encryption-context app=orders --output-file blob2.bin"},
          {"ciphertext_blob", "destination_key_id"}, "ciphertext_blob");
  d["GenerateDataKey"] =
      Doc({"cofferctl kms generate-data-key --key-id alias/orders --key-spec AES_256 --output text",
           "cofferctl kms generate-data-key --key-id alias/orders --number-of-bytes 64 "
           "--encryption-context app=orders --output-file dek.bin --output-field plaintext"},
          {"key_id"});
  d["GenerateDataKeyWithoutPlaintext"] = Doc(
      {"cofferctl kms generate-data-key-without-plaintext --key-id alias/orders --key-spec AES_256 "
       "--output-file wrapped-dek.bin"},
      {"key_id"}, "ciphertext_blob");
  d["GenerateRandom"] = Doc({"cofferctl kms generate-random --number-of-bytes 32 --output text"},
                            {"number_of_bytes"}, "plaintext");
  d["TagResource"] =
      Doc({"cofferctl kms tag-resource --key-id alias/orders --tags team=payments --tags env=prod"},
          {"key_id", "tags"});
  d["UntagResource"] =
      Doc({"cofferctl kms untag-resource --key-id alias/orders --tag-keys env,team"},
          {"key_id", "tag_keys"});
  d["ListResourceTags"] =
      Doc({"cofferctl kms list-resource-tags --key-id alias/orders --output table"}, {"key_id"});
  return d;
}

std::map<std::string, OperationDoc> SecretsDocs() {
  const std::string v1 = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111";
  const std::string v2 = "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222";
  std::map<std::string, OperationDoc> d;
  d["CreateSecret"] = Doc(
      {"cofferctl secrets create-secret --name prod/orders/db --secret-string "
       "file://orders-db.json "
       "--tags team=payments",
       "cofferctl secrets create-secret --name prod/orders/tls-key --secret-binary fileb://key.der",
       "cofferctl secrets create-secret --name prod/orders/api-key --secret-string - "
       "--description 'payment provider API key'"},
      {"name"});
  d["GetSecretValue"] = Doc(
      {"cofferctl secrets get-secret-value --secret-id prod/orders/db --output text",
       "cofferctl secrets get-secret-value --secret-id prod/orders/db --version-stage AWSPREVIOUS"},
      {"secret_id"}, "secret_string|secret_binary");
  d["BatchGetSecretValue"] = Doc(
      {"cofferctl secrets batch-get-secret-value --secret-id-list "
       "prod/orders/db,prod/orders/api-key",
       "cofferctl secrets batch-get-secret-value --filters '{\"key\":\"name\",\"values\":[\"prod/"
       "\"]}' --output table"},
      {}, "",
      {"name", "version_id", "version_stages", "secret_string", "secret_binary", "created_date"});
  d["PutSecretValue"] =
      Doc({"cofferctl secrets put-secret-value --secret-id prod/orders/db --secret-string "
           "file://orders-db.json",
           absl::StrCat(
               "cofferctl secrets put-secret-value --secret-id prod/orders/db --secret-string - "
               "--client-request-token ",
               v2)},
          {"secret_id"});
  d["UpdateSecret"] = Doc(
      {"cofferctl secrets update-secret --secret-id prod/orders/db --description 'orders database' "
       "--kms-key-id alias/orders"},
      {"secret_id"});
  d["UpdateSecretVersionStage"] =
      Doc({absl::StrCat("cofferctl secrets update-secret-version-stage --secret-id prod/orders/db "
                        "--version-stage AWSCURRENT --move-to-version-id ",
                        v1, " --remove-from-version-id ", v2)},
          {"secret_id", "version_stage"});
  d["DescribeSecret"] =
      Doc({"cofferctl secrets describe-secret --secret-id prod/orders/db --output table"},
          {"secret_id"});
  d["ListSecrets"] = Doc({"cofferctl secrets list-secrets --output table",
                          "cofferctl secrets list-secrets --sort-order asc --filters "
                          "'{\"key\":\"name\",\"values\":[\"prod/\"]}' --max-results 20"},
                         {}, "",
                         {"name", "description", "rotation_enabled", "tags", "last_changed_date",
                          "created_date", "deleted_date"});
  d["ListSecretVersionIds"] = Doc(
      {"cofferctl secrets list-secret-version-ids --secret-id prod/orders/db --include-deprecated "
       "--output table"},
      {"secret_id"});
  d["DeleteSecret"] =
      Doc({"cofferctl secrets delete-secret --secret-id prod/orders/db --recovery-window-in-days 7",
           "cofferctl secrets delete-secret --secret-id prod/orders/db "
           "--force-delete-without-recovery"},
          {"secret_id"});
  d["RestoreSecret"] =
      Doc({"cofferctl secrets restore-secret --secret-id prod/orders/db"}, {"secret_id"});
  d["TagResource"] =
      Doc({"cofferctl secrets tag-resource --secret-id prod/orders/db --tags team=payments"},
          {"secret_id", "tags"});
  d["UntagResource"] =
      Doc({"cofferctl secrets untag-resource --secret-id prod/orders/db --tag-keys team"},
          {"secret_id", "tag_keys"});
  d["GetRandomPassword"] =
      Doc({"cofferctl secrets get-random-password --password-length 24 --exclude-punctuation "
           "--output text"},
          {}, "random_password");
  d["PutResourcePolicy"] =
      Doc({"cofferctl secrets put-resource-policy --secret-id prod/orders/db --resource-policy "
           "file://policy.json --block-public-policy"},
          {"secret_id", "resource_policy"});
  d["GetResourcePolicy"] =
      Doc({"cofferctl secrets get-resource-policy --secret-id prod/orders/db --output text"},
          {"secret_id"}, "resource_policy");
  d["DeleteResourcePolicy"] =
      Doc({"cofferctl secrets delete-resource-policy --secret-id prod/orders/db"}, {"secret_id"});
  d["ValidateResourcePolicy"] =
      Doc({"cofferctl secrets validate-resource-policy --resource-policy file://policy.json "
           "--output table"},
          {"resource_policy"});
  d["RotateSecret"] =
      Doc({"cofferctl secrets rotate-secret --secret-id prod/orders/db --rotation-worker "
           "postgres-single-user --rotation-rules "
           "'{\"schedule_expression\":\"rate(30 days)\",\"duration\":\"3h\"}'",
           "cofferctl secrets rotate-secret --secret-id prod/orders/db"},
          {"secret_id"});
  d["CancelRotateSecret"] =
      Doc({"cofferctl secrets cancel-rotate-secret --secret-id prod/orders/db"}, {"secret_id"});
  d["WatchSecrets"] =
      Doc({"cofferctl watch secrets --name-prefix prod/ --output text",
           "cofferctl secrets watch-secrets --name-prefix prod/ --start-after 42 --max-events 10"});
  return d;
}

std::map<std::string, OperationDoc> ParamsDocs() {
  const std::vector<std::string> parameter_columns = {"name", "type", "value", "version",
                                                      "last_modified_date"};
  std::map<std::string, OperationDoc> d;
  d["PutParameter"] =
      Doc({"cofferctl params put-parameter --name /prod/orders/db/host --value db1.internal --type "
           "STRING",
           "cofferctl params put-parameter --name /prod/orders/db/password --value file://pw.txt "
           "--type SECURE_STRING --overwrite"},
          {"name", "value"});
  d["GetParameter"] =
      Doc({"cofferctl params get-parameter --name /prod/orders/db/password --with-decryption "
           "--output text",
           "cofferctl params get-parameter --name /prod/orders/db/host:stable"},
          {"name"}, "parameter.value");
  d["GetParameters"] =
      Doc({"cofferctl params get-parameters --names /prod/orders/db/host,/prod/orders/db/port "
           "--output table"},
          {"names"}, "", parameter_columns);
  d["GetParametersByPath"] = Doc(
      {"cofferctl params get-parameters-by-path --path /prod/orders --recursive --with-decryption "
       "--output table"},
      {"path"}, "", parameter_columns);
  d["DescribeParameters"] =
      Doc({"cofferctl params describe-parameters --parameter-filters "
           "'{\"key\":\"Path\",\"option\":\"Recursive\",\"values\":[\"/prod\"]}' --output table"},
          {}, "", {"name", "type", "version", "tier", "last_modified_date", "description"});
  d["GetParameterHistory"] = Doc(
      {"cofferctl params get-parameter-history --name /prod/orders/db/host --output table"},
      {"name"}, "", {"version", "labels", "type", "value", "last_modified_date", "description"});
  d["DeleteParameter"] =
      Doc({"cofferctl params delete-parameter --name /prod/orders/features"}, {"name"});
  d["DeleteParameters"] =
      Doc({"cofferctl params delete-parameters --names /prod/orders/a,/prod/orders/b"}, {"names"});
  d["LabelParameterVersion"] = Doc(
      {"cofferctl params label-parameter-version --name /prod/orders/db/host --parameter-version 1 "
       "--labels stable"},
      {"name", "labels"});
  d["UnlabelParameterVersion"] =
      Doc({"cofferctl params unlabel-parameter-version --name /prod/orders/db/host "
           "--parameter-version 1 --labels stable"},
          {"name", "parameter_version", "labels"});
  d["AddTagsToResource"] =
      Doc({"cofferctl params add-tags-to-resource --resource-type Parameter --resource-id "
           "/prod/orders/db/host --tags team=payments"},
          {"resource_type", "resource_id", "tags"});
  d["RemoveTagsFromResource"] =
      Doc({"cofferctl params remove-tags-from-resource --resource-type Parameter --resource-id "
           "/prod/orders/db/host --tag-keys team"},
          {"resource_type", "resource_id", "tag_keys"});
  d["ListTagsForResource"] =
      Doc({"cofferctl params list-tags-for-resource --resource-type Parameter --resource-id "
           "/prod/orders/db/host --output table"},
          {"resource_type", "resource_id"});
  d["WatchParameters"] =
      Doc({"cofferctl watch params --path /prod --recursive --output text",
           "cofferctl params watch-parameters --path /prod --recursive --start-after 42"},
          {"path"});
  return d;
}

// The short forms (short_forms.h) first: they are what people type.
std::map<std::string, OperationDoc> AccessKeysDocs() {
  const std::string id = "AKCOEXAMPLE234567ABC";
  std::map<std::string, OperationDoc> d;
  d["CreateAccessKey"] =
      Doc({"cofferctl access-keys create --identity spiffe://coffer.local/app/catagram "
           "--description 'catagram through the AWS CLI'",
           "cofferctl access-keys create-access-key --identity spiffe://coffer.local/app/catagram "
           "--output text"},
          {"identity"}, "access_key.access_key_id,secret_access_key");
  d["ListAccessKeys"] =
      Doc({"cofferctl access-keys list --identity spiffe://coffer.local/app/catagram "
           "--output table",
           "cofferctl access-keys list-access-keys --max-items 50 --marker " + id},
          {}, "", {"access_key_id", "identity", "status", "create_date", "description"});
  d["UpdateAccessKey"] =
      Doc({"cofferctl access-keys disable --access-key-id " + id,
           "cofferctl access-keys enable --access-key-id " + id,
           "cofferctl access-keys update-access-key --access-key-id " + id + " --status INACTIVE"},
          {"access_key_id", "status"});
  d["DeleteAccessKey"] = Doc({"cofferctl access-keys delete --access-key-id " + id,
                              "cofferctl access-keys delete-access-key --access-key-id " + id},
                             {"access_key_id"});
  d["GetSigningKey"] =
      Doc({"cofferctl access-keys get-signing-key --access-key-id " + id +
           " --date 20300101 --region local --service secretsmanager --output-file signing.key"},
          {"access_key_id", "date", "region", "service"});
  return d;
}

void AddAll(const char* service, std::map<std::string, OperationDoc> docs,
            std::map<std::string, OperationDoc>* all) {
  for (auto& [method, doc] : docs) all->emplace(absl::StrCat(service, method), std::move(doc));
}

// Whether `field` of `message` holds something: a value other than the
// default, an element, a set message.
bool IsSet(const pb::Message& message, const pb::FieldDescriptor& field) {
  const pb::Reflection& r = *message.GetReflection();
  return field.is_repeated() ? r.FieldSize(message, &field) > 0 : r.HasField(message, &field);
}

}  // namespace

const std::map<std::string, OperationDoc>& OperationDocs() {
  static const auto* const kDocs = [] {
    auto* docs = new std::map<std::string, OperationDoc>;
    AddAll(kKms, KmsDocs(), docs);
    AddAll(kSecrets, SecretsDocs(), docs);
    AddAll(kParams, ParamsDocs(), docs);
    AddAll(kAccessKeys, AccessKeysDocs(), docs);
    return docs;
  }();
  return *kDocs;
}

const OperationDoc& DocFor(const pb::MethodDescriptor& method) {
  static const OperationDoc kNone;
  auto it = OperationDocs().find(method.full_name());
  return it == OperationDocs().end() ? kNone : it->second;
}

absl::Status CheckRequired(const pb::Message& request, const OperationDoc& doc) {
  const pb::Descriptor& type = *request.GetDescriptor();
  for (const std::string& name : doc.required) {
    const pb::FieldDescriptor* field = type.FindFieldByName(name);
    if (field == nullptr) {
      return absl::InternalError(absl::StrCat(type.full_name(), " has no field '", name, "'"));
    }
    if (!IsSet(request, *field)) {
      return absl::InvalidArgumentError(absl::StrCat("--", FlagName(name), ": required"));
    }
  }
  return absl::OkStatus();
}

}  // namespace coffer::cofferctl
