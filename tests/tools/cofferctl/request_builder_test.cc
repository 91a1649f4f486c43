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
              FailsWith("--plaintext: not valid base64; use --plaintext-file"));
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
              FailsWith("--key-spec: unknown DataKeySpec value 'AES_512'; expected one of: "
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
                FailsWith("--number-of-bytes: '"));
  }
  EXPECT_THAT(Build<ListKeysRequest>({"--limit=ten"}),
              FailsWith("--limit: 'ten' is not a valid int32"));
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
  EXPECT_THAT(std::string(bad.message()), HasSubstr("--truncated: 'maybe' is not a valid bool"));
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
  EXPECT_THAT(Build<EncryptRequest>({"stray"}), FailsWith("unexpected argument 'stray'"));
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
              FailsWith("--type: unknown ParameterType value 'Secure'; expected one of: "
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

}  // namespace
}  // namespace coffer::cofferctl
