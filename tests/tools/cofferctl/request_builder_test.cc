#include "tools/cofferctl/request_builder.h"

#include <fstream>
#include <map>

#include "coffer/kms/v1/kms.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace coffer::cofferctl {
namespace {

using ::coffer::kms::v1::CreateKeyRequest;
using ::coffer::kms::v1::DecryptRequest;
using ::coffer::kms::v1::EncryptRequest;
using ::coffer::kms::v1::GenerateDataKeyRequest;
using ::coffer::kms::v1::ListKeysRequest;
using ::coffer::kms::v1::RotateKeyOnDemandResponse;
using ::coffer::kms::v1::UntagResourceRequest;
using ::testing::HasSubstr;
using ::testing::Not;

// Files for --<field>-file come from a map instead of the disk.
FileReader FakeFiles(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& path) -> absl::StatusOr<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return absl::NotFoundError("cannot read file '" + path + "'");
    return it->second;
  };
}

template <typename T>
absl::StatusOr<T> Build(const std::vector<std::string>& args, const FileReader& files = {}) {
  T request;
  absl::Status status = FillRequest(args, request, files ? files : FakeFiles({}));
  if (!status.ok()) return status;
  return request;
}

MATCHER_P(FailsWith, text, "") {
  if (arg.ok()) {
    *result_listener << "is OK";
    return false;
  }
  *result_listener << "status: " << arg.status();
  return arg.status().code() == absl::StatusCode::kInvalidArgument &&
         absl::string_view(arg.status().message()).find(text) != absl::string_view::npos;
}

TEST(RequestBuilderTest, EncryptFromBase64) {
  auto req = Build<EncryptRequest>({"--key-id=alias/app", "--plaintext=aGVsbG8="});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->key_id(), "alias/app");
  EXPECT_EQ(req->plaintext(), "hello");
}

TEST(RequestBuilderTest, UnderscoreSpellingAndSpaceSeparatedValue) {
  auto req = Build<EncryptRequest>({"--key_id", "k1", "--plaintext", "aGVsbG8"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->key_id(), "k1");
  EXPECT_EQ(req->plaintext(), "hello");  // padding is optional
}

TEST(RequestBuilderTest, BadBase64NamesTheFlagAndTheFileAlternative) {
  EXPECT_THAT(Build<EncryptRequest>({"--plaintext=not base64!"}),
              FailsWith("--plaintext: not valid base64; give raw bytes with fileb://"));
}

TEST(RequestBuilderTest, BytesFromFileAreRaw) {
  const std::string raw("\x00\x01\xffsecret\n", 10);
  auto req = Build<EncryptRequest>({"--key-id=k", "--plaintext-file=/in/pt.bin"},
                                   FakeFiles({{"/in/pt.bin", raw}}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->plaintext(), raw);

  auto decrypt =
      Build<DecryptRequest>({"--ciphertext-blob-file", "/in/ct"}, FakeFiles({{"/in/ct", "CT"}}));
  ASSERT_TRUE(decrypt.ok()) << decrypt.status();
  EXPECT_EQ(decrypt->ciphertext_blob(), "CT");
}

TEST(RequestBuilderTest, BytesFromRealFile) {
  const std::string path = ::testing::TempDir() + "/cofferctl_plaintext.bin";
  const std::string raw("a\0b", 3);
  std::ofstream(path, std::ios::binary) << raw;
  EncryptRequest req;
  ASSERT_TRUE(FillRequest({"--plaintext-file=" + path}, req).ok());
  EXPECT_EQ(req.plaintext(), raw);
}

TEST(RequestBuilderTest, MissingFileNamesTheFlag) {
  EXPECT_THAT(Build<EncryptRequest>({"--plaintext-file=/nope"}),
              FailsWith("--plaintext-file: cannot read file '/nope'"));
}

TEST(RequestBuilderTest, RepeatedEncryptionContext) {
  auto req = Build<EncryptRequest>(
      {"--encryption-context", "app=catagram", "--encryption-context=env=prod=eu"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->encryption_context().size(), 2u);
  EXPECT_EQ(req->encryption_context().at("app"), "catagram");
  EXPECT_EQ(req->encryption_context().at("env"), "prod=eu");  // split at the first '='
}

TEST(RequestBuilderTest, EncryptionContextAsJson) {
  auto req = Build<EncryptRequest>(
      {R"(--encryption-context={"a":"1","b":"2"})", "--encryption-context=c=3"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->encryption_context().size(), 3u);
  EXPECT_EQ(req->encryption_context().at("b"), "2");
}

TEST(RequestBuilderTest, EncryptionContextErrors) {
  EXPECT_THAT(Build<EncryptRequest>({"--encryption-context=novalue"}),
              FailsWith("--encryption-context: expected key=value"));
  EXPECT_THAT(Build<EncryptRequest>({"--encryption-context=a=1", "--encryption-context=a=2"}),
              FailsWith("key 'a' given more than once"));
}

TEST(RequestBuilderTest, EnumShortAndLongForms) {
  for (const char* spec :
       {"AES_256", "aes_256", "DATA_KEY_SPEC_AES_256", "data_key_spec_aes_256", "aes-256"}) {
    SCOPED_TRACE(spec);
    auto req = Build<GenerateDataKeyRequest>({std::string("--key-spec=") + spec});
    ASSERT_TRUE(req.ok()) << req.status();
    EXPECT_EQ(req->key_spec(), kms::v1::DATA_KEY_SPEC_AES_256);
  }
  auto create =
      Build<CreateKeyRequest>({"--key-spec=symmetric_default", "--key-usage=ENCRYPT_DECRYPT"});
  ASSERT_TRUE(create.ok()) << create.status();
  EXPECT_EQ(create->key_spec(), kms::v1::KEY_SPEC_SYMMETRIC_DEFAULT);
  EXPECT_EQ(create->key_usage(), kms::v1::KEY_USAGE_ENCRYPT_DECRYPT);
}

TEST(RequestBuilderTest, BadEnumNamesTheFlagAndTheChoices) {
  EXPECT_THAT(Build<GenerateDataKeyRequest>({"--key-spec=AES_512"}),
              FailsWith("--key-spec: not a DataKeySpec value; expected one of: "
                        "AES_256, AES_128"));
}

TEST(RequestBuilderTest, EnumShortName) {
  EXPECT_EQ(
      EnumShortName(*kms::v1::DataKeySpec_descriptor()->FindValueByName("DATA_KEY_SPEC_AES_128")),
      "AES_128");
  EXPECT_EQ(
      EnumShortName(*kms::v1::KeyState_descriptor()->FindValueByName("KEY_STATE_PENDING_DELETION")),
      "PENDING_DELETION");
}

TEST(RequestBuilderTest, IntegersAreStrict) {
  auto ok = Build<GenerateDataKeyRequest>({"--number-of-bytes=32"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->number_of_bytes(), 32);
  auto neg = Build<ListKeysRequest>({"--limit=-5"});
  ASSERT_TRUE(neg.ok()) << neg.status();
  EXPECT_EQ(neg->limit(), -5);

  for (const char* bad : {"abc", "12x", " 12", "+12", "0x10", "", "99999999999"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(Build<GenerateDataKeyRequest>({std::string("--number-of-bytes=") + bad}),
                FailsWith("--number-of-bytes: not a valid int32"));
  }
  EXPECT_THAT(Build<ListKeysRequest>({"--limit=ten"}), FailsWith("--limit: not a valid int32"));
}

TEST(RequestBuilderTest, Uint32RejectsNegative) {
  RotateKeyOnDemandResponse msg;  // has a uint32 field
  EXPECT_FALSE(FillRequest({"--key-material-version=-1"}, msg).ok());
  ASSERT_TRUE(FillRequest({"--key-material-version=7"}, msg).ok());
  EXPECT_EQ(msg.key_material_version(), 7u);
}

TEST(RequestBuilderTest, Bools) {
  kms::v1::ListKeysResponse msg;  // has a bool field
  ASSERT_TRUE(FillRequest({"--truncated"}, msg).ok());
  EXPECT_TRUE(msg.truncated());
  msg.Clear();
  ASSERT_TRUE(FillRequest({"--truncated=true"}, msg).ok());
  EXPECT_TRUE(msg.truncated());
  msg.Clear();
  ASSERT_TRUE(FillRequest({"--truncated=false"}, msg).ok());
  EXPECT_FALSE(msg.truncated());
  absl::Status bad = FillRequest({"--truncated=maybe"}, msg);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("--truncated: not a valid bool"));
}

TEST(RequestBuilderTest, UnknownFlagIsNamed) {
  absl::StatusOr<EncryptRequest> req = Build<EncryptRequest>({"--key-id=k", "--colour=blue"});
  EXPECT_THAT(req, FailsWith("unknown flag --colour"));
  // -file works for string and bytes fields only.
  EXPECT_THAT(Build<EncryptRequest>({"--encryption-context-file=/x"}),
              FailsWith("unknown flag --encryption-context-file"));
  auto from_file = Build<EncryptRequest>({"--key-id-file=/id"}, FakeFiles({{"/id", "alias/x"}}));
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->key_id(), "alias/x");
}

TEST(RequestBuilderTest, UnexpectedArgumentsAndMissingValues) {
  EXPECT_THAT(Build<EncryptRequest>({"stray"}), FailsWith("unexpected value (a value without"));
  EXPECT_THAT(Build<EncryptRequest>({"--key-id", "my", "key"}),
              FailsWith("unexpected value after --key-id (a value without a flag); quote a value "
                        "that contains spaces"));
  EXPECT_THAT(Build<EncryptRequest>({"--key-id"}), FailsWith("--key-id: needs a value"));
  EXPECT_THAT(Build<EncryptRequest>({"--key-id", "--plaintext=aGk="}),
              FailsWith("--key-id: needs a value"));
  EXPECT_THAT(Build<EncryptRequest>({"--key-id=a", "--key-id=b"}),
              FailsWith("--key-id: given more than once"));
}

TEST(RequestBuilderTest, TagsForCreateKey) {
  auto req = Build<CreateKeyRequest>({"--description=app data", "--tags", "env=prod",
                                      "--tags=team=pay=ments", "--tags",
                                      R"({"tag_key":"owner","tag_value":"ops"})"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->description(), "app data");
  ASSERT_EQ(req->tags_size(), 3);
  EXPECT_EQ(req->tags(0).tag_key(), "env");
  EXPECT_EQ(req->tags(0).tag_value(), "prod");
  EXPECT_EQ(req->tags(1).tag_key(), "team");
  EXPECT_EQ(req->tags(1).tag_value(), "pay=ments");
  EXPECT_EQ(req->tags(2).tag_key(), "owner");
  EXPECT_EQ(req->tags(2).tag_value(), "ops");

  auto array =
      Build<CreateKeyRequest>({R"(--tags=[{"tagKey":"a","tagValue":"1"},{"tag_key":"b"}])"});
  ASSERT_TRUE(array.ok()) << array.status();
  ASSERT_EQ(array->tags_size(), 2);
  EXPECT_EQ(array->tags(1).tag_key(), "b");

  EXPECT_THAT(Build<CreateKeyRequest>({"--tags=noequals"}),
              FailsWith("--tags: expected tag_key=tag_value or a JSON object"));
  EXPECT_THAT(Build<CreateKeyRequest>({"--tags={not json"}), FailsWith("--tags: invalid JSON"));
}

TEST(RequestBuilderTest, RepeatedStringsRepeatableOrCommaSeparated) {
  auto req = Build<UntagResourceRequest>({"--key-id=k", "--tag-keys=a,b", "--tag-keys", "c"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_THAT(req->tag_keys(), ::testing::ElementsAre("a", "b", "c"));
}

TEST(RequestBuilderTest, CliInputJsonMergedWithFlags) {
  auto req = Build<EncryptRequest>({"--plaintext=aGk=",
                                    R"(--cli-input-json={"key_id":"from-json",)"
                                    R"("plaintext":"b2xk","encryption_context":{"x":"1"}})"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->key_id(), "from-json");  // only in the JSON
  EXPECT_EQ(req->plaintext(), "hi");      // the flag overrides, wherever it stands
  EXPECT_EQ(req->encryption_context().at("x"), "1");

  // A map named by a flag is replaced, not merged.
  auto replaced = Build<EncryptRequest>(
      {R"(--cli-input-json={"encryption_context":{"x":"1"}})", "--encryption-context=y=2"});
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(replaced->encryption_context().size(), 1u);
  EXPECT_EQ(replaced->encryption_context().at("y"), "2");
}

TEST(RequestBuilderTest, CliInputJsonFromFileAndErrors) {
  auto req = Build<CreateKeyRequest>(
      {"--cli-input-json=file:///in/req.json"},
      FakeFiles({{"/in/req.json", R"({"description":"d","tags":[{"tag_key":"k"}],
                                     "keySpec":"KEY_SPEC_SYMMETRIC_DEFAULT"})"}}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->description(), "d");
  EXPECT_EQ(req->tags_size(), 1);
  EXPECT_EQ(req->key_spec(), kms::v1::KEY_SPEC_SYMMETRIC_DEFAULT);

  EXPECT_THAT(Build<CreateKeyRequest>({"--cli-input-json={\"nope\":1}"}),
              FailsWith("--cli-input-json: invalid JSON for coffer.kms.v1.CreateKeyRequest"));
  EXPECT_THAT(Build<CreateKeyRequest>({"--cli-input-json={}", "--cli-input-json={}"}),
              FailsWith("--cli-input-json: given more than once"));
}

TEST(RequestBuilderTest, TimestampTakesRfc3339) {
  kms::v1::KeyMetadata msg;  // has Timestamp fields
  ASSERT_TRUE(FillRequest({"--creation-date=2024-05-01T12:00:00Z"}, msg).ok());
  EXPECT_EQ(msg.creation_date().seconds(), 1714564800);
  msg.Clear();
  ASSERT_TRUE(FillRequest({"--creation-date=2024-05-01T14:00:00.5+02:00"}, msg).ok());
  EXPECT_EQ(msg.creation_date().seconds(), 1714564800);
  EXPECT_EQ(msg.creation_date().nanos(), 500000000);
  EXPECT_THAT(std::string(FillRequest({"--deletion-date=yesterday"}, msg).message()),
              HasSubstr("--deletion-date: invalid JSON for google.protobuf.Timestamp"));
}

TEST(RequestBuilderTest, BuildRequestMakesTheRightType) {
  auto req = BuildRequest(*EncryptRequest::descriptor(), {"--key-id=k"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ((*req)->GetDescriptor(), EncryptRequest::descriptor());
  EncryptRequest expected;
  expected.set_key_id("k");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(**req, expected));
}

TEST(RequestBuilderTest, PutParameterFromFlags) {
  auto req = Build<params::v1::PutParameterRequest>(
      {"--name", "/app/db/password", "--value=hunter2", "--type", "SecureString", "--overwrite",
       "--tags", "env=prod", "--tags=team=pay=ments", "--key-id=alias/app", "--tier=advanced"});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->name(), "/app/db/password");
  EXPECT_EQ(req->value(), "hunter2");
  EXPECT_EQ(req->type(), params::v1::PARAMETER_TYPE_SECURE_STRING);
  EXPECT_TRUE(req->overwrite());
  EXPECT_EQ(req->key_id(), "alias/app");
  EXPECT_EQ(req->tier(), params::v1::PARAMETER_TIER_ADVANCED);
  ASSERT_EQ(req->tags_size(), 2);
  EXPECT_EQ(req->tags(0).key(), "env");  // Tag is {key, value}: "a=b" works too
  EXPECT_EQ(req->tags(0).value(), "prod");
  EXPECT_EQ(req->tags(1).key(), "team");
  EXPECT_EQ(req->tags(1).value(), "pay=ments");
}

TEST(RequestBuilderTest, ParameterTypeSpellings) {
  for (const char* type : {"SecureString", "SECURE_STRING", "secure_string", "securestring",
                           "secure-string", "PARAMETER_TYPE_SECURE_STRING"}) {
    SCOPED_TRACE(type);
    auto req = Build<params::v1::PutParameterRequest>({"--name=/a", std::string("--type=") + type});
    ASSERT_TRUE(req.ok()) << req.status();
    EXPECT_EQ(req->type(), params::v1::PARAMETER_TYPE_SECURE_STRING);
  }
  auto list = Build<params::v1::PutParameterRequest>({"--type=StringList"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->type(), params::v1::PARAMETER_TYPE_STRING_LIST);
  auto plain = Build<params::v1::PutParameterRequest>({"--type=String"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->type(), params::v1::PARAMETER_TYPE_STRING);
  EXPECT_THAT(Build<params::v1::PutParameterRequest>({"--type=Secure"}),
              FailsWith("--type: not a ParameterType value; expected one of: "
                        "STRING, STRING_LIST, SECURE_STRING"));
  auto overwrite_off = Build<params::v1::PutParameterRequest>({"--overwrite=false"});
  ASSERT_TRUE(overwrite_off.ok());
  EXPECT_FALSE(overwrite_off->overwrite());
}

TEST(RequestBuilderTest, WatchRequests) {
  auto params = Build<params::v1::WatchParametersRequest>(
      {"--path", "/app", "--recursive", "--start-after", "000042"});
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->path(), "/app");
  EXPECT_TRUE(params->recursive());
  EXPECT_EQ(params->start_after(), "000042");

  auto secrets = Build<secrets::v1::WatchSecretsRequest>({"--name-prefix=prod/"});
  ASSERT_TRUE(secrets.ok()) << secrets.status();
  EXPECT_EQ(secrets->name_prefix(), "prod/");
  EXPECT_EQ(secrets->start_after(), "");
}

// ---- Values from files and stdin ----------------------------------------

TEST(RequestBuilderTest, StringsAndBytesFromFilesAreExact) {
  const std::string binary("\x00\x01\xff\n", 4);
  FileReader files = FakeFiles({{"/in/pw.txt", "pass word\n"}, {"/in/key.der", binary}});
  auto create = Build<secrets::v1::CreateSecretRequest>(
      {"--name=a", "--secret-string", "file:///in/pw.txt"}, files);
  ASSERT_TRUE(create.ok()) << create.status();
  EXPECT_EQ(create->secret_string(), "pass word\n");  // the final newline too

  for (const char* scheme : {"fileb://", "file://"}) {
    SCOPED_TRACE(scheme);
    auto binary_secret = Build<secrets::v1::CreateSecretRequest>(
        {"--name=a", std::string("--secret-binary=") + scheme + "/in/key.der"}, files);
    ASSERT_TRUE(binary_secret.ok()) << binary_secret.status();
    EXPECT_EQ(binary_secret->secret_binary(), binary);  // raw, not base64
  }
}

TEST(RequestBuilderTest, StdinIsReadOnceForOneFlag) {
  FileReader stdin_only = FakeFiles({{"-", "from stdin"}});
  auto put = Build<secrets::v1::PutSecretValueRequest>({"--secret-id", "a", "--secret-string", "-"},
                                                       stdin_only);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->secret_string(), "from stdin");

  auto encrypt = Build<EncryptRequest>({"--key-id=k", "--plaintext=-"}, stdin_only);
  ASSERT_TRUE(encrypt.ok()) << encrypt.status();
  EXPECT_EQ(encrypt->plaintext(), "from stdin");

  EXPECT_THAT(Build<EncryptRequest>({"--key-id=-", "--plaintext=-"}, stdin_only),
              FailsWith("--plaintext: standard input (-) is already read by --key-id"));
  EXPECT_THAT(
      Build<EncryptRequest>({"--cli-input-json=-", "--plaintext-file=-"}, FakeFiles({{"-", "{}"}})),
      FailsWith("--plaintext-file: standard input (-) is already read by --cli-input-json"));
  auto json = Build<EncryptRequest>({"--cli-input-json", "-"},
                                    FakeFiles({{"-", R"({"key_id":"from-json"})"}}));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->key_id(), "from-json");
}

TEST(RequestBuilderTest, OtherFieldsParseTheFileAsTyped) {
  FileReader files = FakeFiles({{"/len", " 24\n"},
                                {"/ctx.json", R"({"app":"orders"})"
                                              "\n"},
                                {"/rules.json", R"({"duration":"3h"})"},
                                {"/type", "SecureString\n"}});
  auto password =
      Build<secrets::v1::GetRandomPasswordRequest>({"--password-length=file:///len"}, files);
  ASSERT_TRUE(password.ok()) << password.status();
  EXPECT_EQ(password->password_length(), 24);
  auto encrypt = Build<EncryptRequest>({"--encryption-context", "file:///ctx.json"}, files);
  ASSERT_TRUE(encrypt.ok()) << encrypt.status();
  EXPECT_EQ(encrypt->encryption_context().at("app"), "orders");
  auto rotate =
      Build<secrets::v1::RotateSecretRequest>({"--rotation-rules=file:///rules.json"}, files);
  ASSERT_TRUE(rotate.ok()) << rotate.status();
  EXPECT_EQ(rotate->rotation_rules().duration(), "3h");
  auto put = Build<params::v1::PutParameterRequest>({"--type=file:///type"}, files);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->type(), params::v1::PARAMETER_TYPE_SECURE_STRING);

  // A repeated string takes a file as one element, commas and all.
  auto untag = Build<UntagResourceRequest>({"--tag-keys=file:///ctx.json"}, files);
  ASSERT_TRUE(untag.ok()) << untag.status();
  EXPECT_THAT(untag->tag_keys(), ::testing::ElementsAre("{\"app\":\"orders\"}\n"));
}

TEST(RequestBuilderTest, FileSourceErrors) {
  EXPECT_THAT(Build<secrets::v1::CreateSecretRequest>({"--secret-string=file:///missing"}),
              FailsWith("--secret-string: cannot read file '/missing'"));
  EXPECT_THAT(Build<secrets::v1::CreateSecretRequest>({"--secret-string=fileb:///x"},
                                                      FakeFiles({{"/x", "x"}})),
              FailsWith("--secret-string: fileb:// is for bytes fields; use file://<path>"));
  EXPECT_THAT(Build<EncryptRequest>({"--cli-input-json=fileb:///x"}, FakeFiles({{"/x", "{}"}})),
              FailsWith("--cli-input-json: takes '{...}', file://<path> or -"));
}

TEST(RequestBuilderTest, StringFieldsTakeUtf8Only) {
  const std::string binary = "\xff\xfeS3CRET";
  auto from_file = Build<secrets::v1::CreateSecretRequest>({"--secret-string=file:///bin"},
                                                           FakeFiles({{"/bin", binary}}));
  EXPECT_THAT(from_file, FailsWith("--secret-string: the content is not UTF-8 text"));
  EXPECT_THAT(std::string(from_file.status().message()), Not(HasSubstr("S3CRET")));
  EXPECT_THAT(Build<secrets::v1::CreateSecretRequest>({"--secret-string=" + binary}),
              FailsWith("--secret-string: not UTF-8 text"));
  EXPECT_THAT(Build<secrets::v1::CreateSecretRequest>({"--secret-string-file=/bin"},
                                                      FakeFiles({{"/bin", binary}})),
              FailsWith("--secret-string-file: the content is not UTF-8 text"));
  auto text = Build<secrets::v1::CreateSecretRequest>({"--secret-string=pässwörd ✓"});
  ASSERT_TRUE(text.ok()) << text.status();
}

// A secret given to the wrong flag, or mistyped, must not end up in an error
// message (terminals, CI logs and bug reports keep those).
TEST(RequestBuilderTest, ErrorsNeverQuoteTheValue) {
  const std::string secret = "S3CRET-value";
  struct Case {
    const google::protobuf::Descriptor* type;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {secrets::v1::GetRandomPasswordRequest::descriptor(), {"--password-length=" + secret}},
      {secrets::v1::GetRandomPasswordRequest::descriptor(), {"--exclude-numbers=" + secret}},
      {secrets::v1::CreateSecretRequest::descriptor(), {"--secret-binary=" + secret + "!!"}},
      {secrets::v1::CreateSecretRequest::descriptor(), {"--tags=" + secret}},
      {secrets::v1::CreateSecretRequest::descriptor(), {"--name", "db", secret}},
      {secrets::v1::CreateSecretRequest::descriptor(), {"--name", "my", secret, "--tags=a=b"}},
      {secrets::v1::CreateSecretRequest::descriptor(), {"--secret-string=\xff" + secret}},
      {secrets::v1::ListSecretsRequest::descriptor(), {"--sort-order=" + secret}},
      {secrets::v1::RotateSecretRequest::descriptor(), {"--rotate-immediately=" + secret}},
      {secrets::v1::RotateSecretRequest::descriptor(),
       {"--rotation-rules={\"automatically_after_days\":\"" + secret + "\"}"}},
      {secrets::v1::CreateSecretRequest::descriptor(),
       {"--cli-input-json={\"secret_binary\":\"" + secret + " !\"}"}},
      {secrets::v1::CreateSecretRequest::descriptor(),
       {"--cli-input-json={\"name\":\"x\", \"secret_string\": " + secret + "}"}},
      {secrets::v1::CreateSecretRequest::descriptor(),
       {"--cli-input-json={\"name\":\"x\", \"secret_string\": 12345, \"z\":\"" + secret + "\"}"}},
      {secrets::v1::CreateSecretRequest::descriptor(),
       {"--cli-input-json={\"secret_string\":\"" + secret}},
      {EncryptRequest::descriptor(), {"--encryption-context=" + secret}},
      {EncryptRequest::descriptor(), {"--encryption-context={\"a\":" + secret + "}"}},
      {kms::v1::KeyMetadata::descriptor(), {"--creation-date=" + secret}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args.back());
    absl::StatusOr<std::unique_ptr<google::protobuf::Message>> built =
        BuildRequest(*c.type, c.args, FakeFiles({}));
    ASSERT_FALSE(built.ok());
    EXPECT_THAT(std::string(built.status().message()), Not(HasSubstr("S3CRET")));
    EXPECT_THAT(std::string(built.status().message()), HasSubstr("--"));  // names a flag
  }
}

TEST(RequestBuilderTest, HelpSaysTypeRequiredAndRepeated) {
  const std::string usage =
      RequestFlagsUsage(*secrets::v1::CreateSecretRequest::descriptor(), {"name"});
  EXPECT_THAT(usage, HasSubstr("  --name=<string>  (required)\n      string\n"));
  EXPECT_THAT(usage, HasSubstr("  --description=<string>\n      string\n"));
  EXPECT_THAT(usage, HasSubstr("  --secret-binary=<base64>\n      bytes: base64, or raw bytes from "
                               "fileb://<path>, - (stdin) or --secret-binary-file=<path>\n"));
  EXPECT_THAT(usage, HasSubstr("  --tags key=value\n      coffer.secrets.v1.Tag: key=value or a "
                               "JSON object; repeated: repeat the flag, or a JSON array\n"));
  const std::string labels =
      RequestFlagsUsage(*params::v1::LabelParameterVersionRequest::descriptor());
  EXPECT_THAT(labels, HasSubstr("  --labels=<string>\n      string; repeated: repeat the flag or "
                                "separate values with commas\n"));
  EXPECT_THAT(labels, HasSubstr("  --parameter-version=<int64>\n      int64\n"));
  const std::string sort = RequestFlagsUsage(*secrets::v1::ListSecretsRequest::descriptor());
  EXPECT_THAT(sort, HasSubstr("  --sort-order=<enum>\n      enum SortOrder: ASC, DESC\n"));
  EXPECT_THAT(sort, HasSubstr("  --include-planned-deletion[=true|false]\n      bool\n"));
}

}  // namespace
}  // namespace coffer::cofferctl
