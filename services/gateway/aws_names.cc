#include "services/gateway/aws_names.h"

#include <map>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "coffer/kms/v1/kms.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "libs/common/json.h"

namespace coffer::gateway::internal {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;

// Fields whose AWS name the PascalCase rule does not give.
const absl::flat_hash_map<std::string, std::string>& RenamedFields() {
  static const auto* const kTable = new absl::flat_hash_map<std::string, std::string>{
      // Coffer rotates with a named worker where AWS names a Lambda function;
      // tools that configure rotation send the worker's name in its place.
      {"coffer.secrets.v1.RotateSecretRequest.rotation_worker", "RotationLambdaARN"},
      {"coffer.secrets.v1.DescribeSecretResponse.rotation_worker", "RotationLambdaARN"},
      {"coffer.secrets.v1.SecretListEntry.rotation_worker", "RotationLambdaARN"},
  };
  return *kTable;
}

// Response fields of Coffer's own that AWS does not have: never sent.
const absl::flat_hash_set<std::string>& CofferOnlyFields() {
  static const auto* const kTable = new absl::flat_hash_set<std::string>{
      "coffer.secrets.v1.DescribeSecretResponse.deletion_date",
      "coffer.secrets.v1.DescribeSecretResponse.rotation_state",
      "coffer.kms.v1.KeyMetadata.current_key_material_version",
      "coffer.kms.v1.RotateKeyOnDemandResponse.key_material_version",
      "coffer.kms.v1.KeyRotation.key_material_version",
      "coffer.kms.v1.ReEncryptResponse.source_key_material_version",
      "coffer.kms.v1.ReEncryptResponse.destination_key_material_version",
  };
  return *kTable;
}

const absl::flat_hash_set<std::string>& AlwaysSentFields() {
  static const auto* const kTable = new absl::flat_hash_set<std::string>{
      "coffer.secrets.v1.ListSecretsResponse.secret_list",
      "coffer.secrets.v1.ListSecretVersionIdsResponse.versions",
      "coffer.secrets.v1.BatchGetSecretValueResponse.secret_values",
      "coffer.secrets.v1.BatchGetSecretValueResponse.errors",
      "coffer.secrets.v1.ValidateResourcePolicyResponse.policy_validation_passed",
      "coffer.secrets.v1.ValidateResourcePolicyResponse.validation_errors",
      "coffer.params.v1.GetParametersResponse.parameters",
      "coffer.params.v1.GetParametersResponse.invalid_parameters",
      "coffer.params.v1.GetParametersByPathResponse.parameters",
      "coffer.params.v1.DescribeParametersResponse.parameters",
      "coffer.params.v1.GetParameterHistoryResponse.parameters",
      "coffer.params.v1.DeleteParametersResponse.deleted_parameters",
      "coffer.params.v1.DeleteParametersResponse.invalid_parameters",
      "coffer.params.v1.LabelParameterVersionResponse.invalid_labels",
      "coffer.params.v1.UnlabelParameterVersionResponse.removed_labels",
      "coffer.params.v1.UnlabelParameterVersionResponse.invalid_labels",
      "coffer.params.v1.ListTagsForResourceResponse.tag_list",
      // A tag is its key and value, even an empty value (required members
      // of the SSM and KMS models' Tag; the same in Secrets Manager).
      "coffer.secrets.v1.Tag.key",
      "coffer.secrets.v1.Tag.value",
      "coffer.params.v1.Tag.key",
      "coffer.params.v1.Tag.value",
      "coffer.kms.v1.Tag.tag_key",
      "coffer.kms.v1.Tag.tag_value",
      "coffer.kms.v1.KeyMetadata.key_id",
      "coffer.kms.v1.KeyMetadata.enabled",
      "coffer.kms.v1.KeyMetadata.description",
      "coffer.kms.v1.ListKeysResponse.keys",
      "coffer.kms.v1.ListKeysResponse.truncated",
      "coffer.kms.v1.ListAliasesResponse.aliases",
      "coffer.kms.v1.ListAliasesResponse.truncated",
      "coffer.kms.v1.ListResourceTagsResponse.tags",
      "coffer.kms.v1.ListResourceTagsResponse.truncated",
      "coffer.kms.v1.ListKeyRotationsResponse.rotations",
      "coffer.kms.v1.ListKeyRotationsResponse.truncated",
      "coffer.kms.v1.GetKeyRotationStatusResponse.key_rotation_enabled",
  };
  return *kTable;
}

// How AWS spells each enum's values (after the enum's prefix is removed).
enum class EnumStyle { kAsIs, kPascal, kLower };
const absl::flat_hash_map<std::string, EnumStyle>& EnumStyles() {
  static const auto* const kTable = new absl::flat_hash_map<std::string, EnumStyle>{
      {"coffer.secrets.v1.SortOrder", EnumStyle::kLower},              // asc, desc
      {"coffer.secrets.v1.RotationState.Status", EnumStyle::kPascal},  // never sent
      {"coffer.params.v1.ParameterType", EnumStyle::kPascal},          // SecureString
      {"coffer.params.v1.ParameterTier", EnumStyle::kPascal},          // Advanced
      {"coffer.kms.v1.KeyState", EnumStyle::kPascal},                  // PendingDeletion
      {"coffer.kms.v1.KeyUsage", EnumStyle::kAsIs},                    // ENCRYPT_DECRYPT
      {"coffer.kms.v1.KeySpec", EnumStyle::kAsIs},                     // SYMMETRIC_DEFAULT
      {"coffer.kms.v1.KeyManager", EnumStyle::kAsIs},                  // CUSTOMER
      {"coffer.kms.v1.DataKeySpec", EnumStyle::kAsIs},                 // AES_256
      {"coffer.kms.v1.RotationType", EnumStyle::kAsIs},                // ON_DEMAND
  };
  return *kTable;
}

// Values the style does not spell (key: enum full name + "." + value name).
const absl::flat_hash_map<std::string, std::string>& RenamedEnumValues() {
  static const auto* const kTable = new absl::flat_hash_map<std::string, std::string>{
      // Built-in keys are what AWS calls AWS managed keys.
      {"coffer.kms.v1.KeyManager.KEY_MANAGER_COFFER", "AWS"},
  };
  return *kTable;
}

constexpr char kSymmetricDefault[] = "SYMMETRIC_DEFAULT";

const std::vector<ExtraMember>& Extras() {
  using P = ExtraPolicy;
  static const auto* const kTable = new std::vector<ExtraMember>{
      {"coffer.secrets.v1.CreateSecretRequest", "ForceOverwriteReplicaSecret", "boolean",
       P::kIgnore, ""},
      {"coffer.secrets.v1.CreateSecretRequest", "AddReplicaRegions", "list<structure>",
       P::kOnlyEmpty, ""},
      {"coffer.params.v1.DescribeParametersRequest", "Filters", "list<structure>", P::kOnlyEmpty,
       ""},
      {"coffer.kms.v1.DescribeKeyRequest", "GrantTokens", "list<string>", P::kIgnore, ""},
      {"coffer.kms.v1.EncryptRequest", "GrantTokens", "list<string>", P::kIgnore, ""},
      {"coffer.kms.v1.DecryptRequest", "GrantTokens", "list<string>", P::kIgnore, ""},
      {"coffer.kms.v1.ReEncryptRequest", "GrantTokens", "list<string>", P::kIgnore, ""},
      {"coffer.kms.v1.GenerateDataKeyRequest", "GrantTokens", "list<string>", P::kIgnore, ""},
      {"coffer.kms.v1.GenerateDataKeyWithoutPlaintextRequest", "GrantTokens", "list<string>",
       P::kIgnore, ""},
      {"coffer.kms.v1.EncryptRequest", "EncryptionAlgorithm", "string", P::kOnlyValue,
       kSymmetricDefault},
      {"coffer.kms.v1.DecryptRequest", "EncryptionAlgorithm", "string", P::kOnlyValue,
       kSymmetricDefault},
      {"coffer.kms.v1.ReEncryptRequest", "SourceEncryptionAlgorithm", "string", P::kOnlyValue,
       kSymmetricDefault},
      {"coffer.kms.v1.ReEncryptRequest", "DestinationEncryptionAlgorithm", "string", P::kOnlyValue,
       kSymmetricDefault},
      {"coffer.kms.v1.CreateKeyRequest", "CustomerMasterKeySpec", "string", P::kAliasOf,
       "key_spec"},
      {"coffer.kms.v1.CreateKeyRequest", "Origin", "string", P::kOnlyValue, "AWS_KMS"},
      {"coffer.kms.v1.CreateKeyRequest", "Policy", "string", P::kOnlyEmpty, ""},
      {"coffer.kms.v1.CreateKeyRequest", "BypassPolicyLockoutSafetyCheck", "boolean", P::kIgnore,
       ""},
      {"coffer.kms.v1.CreateKeyRequest", "CustomKeyStoreId", "string", P::kOnlyEmpty, ""},
      {"coffer.kms.v1.CreateKeyRequest", "MultiRegion", "boolean", P::kOnlyEmpty, ""},
      {"coffer.kms.v1.CreateKeyRequest", "XksKeyId", "string", P::kOnlyEmpty, ""},
      {"coffer.kms.v1.GenerateRandomRequest", "CustomKeyStoreId", "string", P::kOnlyEmpty, ""},
  };
  return *kTable;
}

// ---- KMS KeyMetadata's derived members ----

std::optional<std::string> AccountOfArn(const google::protobuf::Message& m) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("arn");
  if (f == nullptr) return std::nullopt;
  // arn:<partition>:kms:<region>:<account>:key/<id>
  std::vector<absl::string_view> parts =
      absl::StrSplit(m.GetReflection()->GetString(m, f), absl::MaxSplits(':', 5));
  if (parts.size() != 6 || parts[4].empty()) return std::nullopt;
  return JsonQuote(parts[4]);
}

std::optional<std::string> KeySpecAgain(const google::protobuf::Message& m) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("key_spec");
  if (f == nullptr || f->enum_type() == nullptr) return std::nullopt;
  absl::string_view name = EnumTableFor(f->enum_type()).Name(m.GetReflection()->GetEnum(m, f));
  if (name.empty()) return std::nullopt;
  return JsonQuote(name);
}

std::optional<std::string> OriginAwsKms(const google::protobuf::Message&) {
  return std::string("\"AWS_KMS\"");
}
std::optional<std::string> False(const google::protobuf::Message&) { return std::string("false"); }

const std::vector<DerivedMember>& Derived() {
  static const auto* const kTable = new std::vector<DerivedMember>{
      {"coffer.kms.v1.KeyMetadata", "AWSAccountId", "string", {}, &AccountOfArn},
      {"coffer.kms.v1.KeyMetadata",
       "CustomerMasterKeySpec",
       "string",
       {kSymmetricDefault},
       &KeySpecAgain},
      {"coffer.kms.v1.KeyMetadata", "Origin", "string", {"AWS_KMS"}, &OriginAwsKms},
      {"coffer.kms.v1.KeyMetadata", "MultiRegion", "boolean", {}, &False},
  };
  return *kTable;
}

std::string Pascal(absl::string_view snake, bool arn_upper) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(snake, '_', absl::SkipEmpty())) {
    if (arn_upper && absl::EqualsIgnoreCase(part, "arn")) {
      out += "ARN";
      continue;
    }
    std::string word = absl::AsciiStrToLower(part);
    word[0] = absl::ascii_toupper(static_cast<unsigned char>(word[0]));
    out += word;
  }
  return out;
}

std::unique_ptr<EnumTable> BuildEnumTable(const EnumDescriptor* type) {
  auto table = std::make_unique<EnumTable>();
  auto style_it = EnumStyles().find(type->full_name());
  EnumStyle style = style_it == EnumStyles().end() ? EnumStyle::kAsIs : style_it->second;
  // The prefix every value carries: value 0's name without "UNSPECIFIED".
  std::string prefix;
  if (const EnumValueDescriptor* zero = type->FindValueByNumber(0);
      zero != nullptr && absl::EndsWith(zero->name(), "UNSPECIFIED")) {
    prefix = zero->name().substr(0, zero->name().size() - std::string("UNSPECIFIED").size());
  }
  for (int i = 0; i < type->value_count(); ++i) {
    const EnumValueDescriptor* v = type->value(i);
    if (v->number() == 0) continue;
    std::string name;
    if (auto it = RenamedEnumValues().find(type->full_name() + "." + v->name());
        it != RenamedEnumValues().end()) {
      name = it->second;
    } else {
      absl::string_view bare = v->name();
      if (!prefix.empty() && absl::StartsWith(bare, prefix)) bare.remove_prefix(prefix.size());
      switch (style) {
        case EnumStyle::kAsIs:
          name = std::string(bare);
          break;
        case EnumStyle::kPascal:
          name = Pascal(bare, /*arn_upper=*/false);
          break;
        case EnumStyle::kLower:
          name = absl::AsciiStrToLower(bare);
          break;
      }
    }
    table->values.emplace_back(std::move(name), v);
  }
  return table;
}

void CollectEnums(const Descriptor* type, absl::flat_hash_set<const Descriptor*>* seen,
                  absl::flat_hash_set<const EnumDescriptor*>* enums) {
  if (!seen->insert(type).second) return;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->enum_type() != nullptr) enums->insert(f->enum_type());
    if (f->message_type() != nullptr) CollectEnums(f->message_type(), seen, enums);
  }
}

}  // namespace

const std::vector<ServiceInfo>& Services() {
  static const auto* const kServices = new std::vector<ServiceInfo>{
      {Backend::kSecrets, "secretsmanager", "secretsmanager",
       secrets::v1::CreateSecretRequest::descriptor()->file()->FindServiceByName("SecretsManager")},
      {Backend::kParams, "AmazonSSM", "ssm",
       params::v1::PutParameterRequest::descriptor()->file()->FindServiceByName("ParameterStore")},
      {Backend::kKms, "TrentService", "kms",
       kms::v1::CreateKeyRequest::descriptor()->file()->FindServiceByName("KeyManagement")},
  };
  return *kServices;
}

const ServiceInfo& ServiceFor(Backend backend) {
  for (const ServiceInfo& s : Services()) {
    if (s.backend == backend) return s;
  }
  return Services().front();  // unreachable: every Backend is listed
}

namespace {

std::string MemberNameUncached(Backend backend, const FieldDescriptor* field) {
  const std::string& full = field->full_name();
  if (CofferOnlyFields().contains(full)) return "";
  if (auto it = RenamedFields().find(full); it != RenamedFields().end()) return it->second;
  return Pascal(field->name(), /*arn_upper=*/backend != Backend::kKms);
}

// Every name and enum table the operations' messages need, computed once:
// the request and response paths read them without locks or string work.
struct Precomputed {
  absl::flat_hash_map<const FieldDescriptor*, std::string> member_names;
  absl::flat_hash_map<const Descriptor*, absl::flat_hash_map<std::string, const FieldDescriptor*>>
      fields_by_member;
  absl::flat_hash_map<const EnumDescriptor*, std::unique_ptr<EnumTable>> enums;
};

void Precompute(Backend backend, const Descriptor* type, Precomputed* p) {
  if (!p->fields_by_member.try_emplace(type).second) return;  // seen
  absl::flat_hash_map<std::string, const FieldDescriptor*> by_member;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    std::string name = MemberNameUncached(backend, f);
    if (!name.empty()) by_member.emplace(name, f);
    p->member_names.emplace(f, std::move(name));
    if (f->enum_type() != nullptr && !p->enums.contains(f->enum_type())) {
      p->enums.emplace(f->enum_type(), BuildEnumTable(f->enum_type()));
    }
    if (f->message_type() != nullptr) Precompute(backend, f->message_type(), p);
  }
  // Assigned last: the recursion above may rehash the outer map.
  p->fields_by_member[type] = std::move(by_member);
}

const Precomputed& Tables() {
  static const Precomputed* const kTables = [] {
    auto* p = new Precomputed;
    for (const ServiceInfo& s : Services()) {
      for (int i = 0; i < s.service->method_count(); ++i) {
        const google::protobuf::MethodDescriptor* m = s.service->method(i);
        if (m->client_streaming() || m->server_streaming()) continue;
        Precompute(s.backend, m->input_type(), p);
        Precompute(s.backend, m->output_type(), p);
      }
    }
    return p;
  }();
  return *kTables;
}

}  // namespace

std::string MemberName(Backend backend, const FieldDescriptor* field) {
  const auto& names = Tables().member_names;
  if (auto it = names.find(field); it != names.end()) return it->second;
  return MemberNameUncached(backend, field);
}

const FieldDescriptor* FieldByMember(Backend backend, const Descriptor* type,
                                     absl::string_view member) {
  const auto& tables = Tables().fields_by_member;
  if (auto t = tables.find(type); t != tables.end()) {
    auto it = t->second.find(member);
    return it == t->second.end() ? nullptr : it->second;
  }
  for (int i = 0; i < type->field_count(); ++i) {  // not an operation's message
    if (MemberName(backend, type->field(i)) == member) return type->field(i);
  }
  return nullptr;
}

absl::string_view EnumTable::Name(const EnumValueDescriptor* value) const {
  for (const auto& [name, v] : values) {
    if (v == value) return name;
  }
  return "";
}

const EnumValueDescriptor* EnumTable::Find(absl::string_view aws) const {
  for (const auto& [name, v] : values) {
    if (name == aws) return v;
  }
  return nullptr;
}

std::string EnumTable::List() const {
  return absl::StrJoin(values, ", ",
                       [](std::string* out, const auto& entry) { out->append(entry.first); });
}

const EnumTable& EnumTableFor(const EnumDescriptor* type) {
  const auto& enums = Tables().enums;
  if (auto it = enums.find(type); it != enums.end()) return *it->second;
  // An enum no operation carries: built once on first use.
  static absl::Mutex mu(absl::kConstInit);
  static auto* const others = new std::map<const EnumDescriptor*, std::unique_ptr<EnumTable>>;
  absl::MutexLock lock(&mu);
  std::unique_ptr<EnumTable>& table = (*others)[type];
  if (table == nullptr) table = BuildEnumTable(type);
  return *table;
}

bool AlwaysSent(const FieldDescriptor* field) {
  return AlwaysSentFields().contains(field->full_name());
}

const FieldDescriptor* ListWrapperField(const Descriptor* type) {
  if (type == nullptr || type->field_count() != 1) return nullptr;
  const FieldDescriptor* only = type->field(0);
  return only->is_repeated() && !only->is_map() ? only : nullptr;
}

std::vector<const ExtraMember*> ExtraMembersOf(const Descriptor* message) {
  std::vector<const ExtraMember*> out;
  for (const ExtraMember& e : Extras()) {
    if (message->full_name() == e.message) out.push_back(&e);
  }
  return out;
}

std::vector<const DerivedMember*> DerivedMembersOf(const Descriptor* message) {
  std::vector<const DerivedMember*> out;
  for (const DerivedMember& d : Derived()) {
    if (message->full_name() == d.message) out.push_back(&d);
  }
  return out;
}

std::vector<std::string> UnresolvedTableEntries() {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  std::vector<std::string> missing;
  auto field = [&](const std::string& name) {
    if (pool->FindFieldByName(name) == nullptr) missing.push_back("field " + name);
  };
  for (const auto& [name, aws] : RenamedFields()) field(name);
  for (const std::string& name : CofferOnlyFields()) field(name);
  for (const std::string& name : AlwaysSentFields()) field(name);
  for (const auto& [name, style] : EnumStyles()) {
    if (pool->FindEnumTypeByName(name) == nullptr) missing.push_back("enum " + name);
  }
  for (const auto& [name, aws] : RenamedEnumValues()) {
    std::vector<std::string> parts = absl::StrSplit(name, '.');
    std::string value = parts.back();
    parts.pop_back();
    const EnumDescriptor* e = pool->FindEnumTypeByName(absl::StrJoin(parts, "."));
    if (e == nullptr || e->FindValueByName(value) == nullptr) {
      missing.push_back("enum value " + name);
    }
  }
  for (const ExtraMember& e : Extras()) {
    const Descriptor* m = pool->FindMessageTypeByName(e.message);
    if (m == nullptr) {
      missing.push_back(std::string("message ") + e.message);
    } else if (e.policy == ExtraPolicy::kAliasOf && m->FindFieldByName(e.value) == nullptr) {
      missing.push_back(std::string("field ") + e.message + "." + e.value);
    }
  }
  for (const DerivedMember& d : Derived()) {
    if (pool->FindMessageTypeByName(d.message) == nullptr) {
      missing.push_back(std::string("message ") + d.message);
    }
  }
  // Every enum an operation can carry needs its spelling.
  absl::flat_hash_set<const Descriptor*> seen;
  absl::flat_hash_set<const EnumDescriptor*> enums;
  for (const ServiceInfo& s : Services()) {
    for (int i = 0; i < s.service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = s.service->method(i);
      if (m->client_streaming() || m->server_streaming()) continue;
      CollectEnums(m->input_type(), &seen, &enums);
      CollectEnums(m->output_type(), &seen, &enums);
    }
  }
  for (const EnumDescriptor* e : enums) {
    if (!EnumStyles().contains(e->full_name()))
      missing.push_back("style of enum " + e->full_name());
  }
  return missing;
}

const char* ValidationType(Backend backend) {
  return backend == Backend::kSecrets ? "InvalidParameterException" : "ValidationException";
}

}  // namespace coffer::gateway::internal
