// Hostile and broken request bodies: the AWS error type and a message that
// names the member, never a value, never a crash; and wiping.
#include <gtest/gtest.h>

#include <random>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coffer/kms/v1/kms.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "services/gateway/aws_names.h"
#include "tests/services/gateway/gateway_test_util.h"
#include "tests/services/gateway/sample_messages.h"

namespace coffer::gateway {
namespace {

using testing::Described;
using testing::Op;
using testing::ReadError;

constexpr char kGet[] = "secretsmanager.GetSecretValue";

TEST(AwsJsonMalformedTest, NotJson) {
  for (const char* body : {"{", "nope", "{\"SecretId\":}", "{\"SecretId\":\"a\",}", "{'a':1}",
                           "{\"SecretId\":\"a\"} trailing", "\"just a string\"x"}) {
    absl::Status s = ReadError(kGet, body);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(ErrorReason(s), "SerializationException") << body;
    EXPECT_TRUE(absl::StartsWith(s.message(), "the request body is not valid JSON: line 1: "))
        << s.message();
  }
}

TEST(AwsJsonMalformedTest, NotAnObject) {
  EXPECT_EQ(Described(ReadError(kGet, "[]")),
            "SerializationException: the request body must be a JSON object, got array");
  EXPECT_EQ(Described(ReadError(kGet, "null")),
            "SerializationException: the request body must be a JSON object, got null");
  EXPECT_EQ(Described(ReadError(kGet, "\"x\"")),
            "SerializationException: the request body must be a JSON object, got string");
  EXPECT_EQ(Described(ReadError(kGet, "42")),
            "SerializationException: the request body must be a JSON object, got number");
}

TEST(AwsJsonMalformedTest, WrongTypesNameTheMember) {
  EXPECT_EQ(Described(ReadError(kGet, R"({"SecretId":5})")),
            "SerializationException: SecretId: expected a string, got number");
  EXPECT_EQ(Described(ReadError(kGet, R"({"SecretId":["a"]})")),
            "SerializationException: SecretId: expected a string, got array");
  EXPECT_EQ(Described(ReadError("secretsmanager.ListSecrets", R"({"MaxResults":"10"})")),
            "SerializationException: MaxResults: expected an integer, got string");
  EXPECT_EQ(Described(ReadError("secretsmanager.ListSecrets", R"({"Filters":{"Key":"name"}})")),
            "SerializationException: Filters: expected an array, got object");
  EXPECT_EQ(Described(ReadError("secretsmanager.ListSecrets", R"({"Filters":[{"Values":"x"}]})")),
            "SerializationException: Filters[0].Values: expected an array, got string");
  EXPECT_EQ(
      Described(ReadError("secretsmanager.ListSecrets", R"({"Filters":[{"Values":[null]}]})")),
      "SerializationException: Filters[0].Values[0]: expected a string, got null");
  EXPECT_EQ(Described(ReadError("secretsmanager.ListSecrets", R"({"Filters":["name"]})")),
            "SerializationException: Filters[0]: expected an object, got string");
  EXPECT_EQ(Described(ReadError("secretsmanager.ListSecrets", R"({"IncludePlannedDeletion":1})")),
            "SerializationException: IncludePlannedDeletion: expected a boolean, got number");
  EXPECT_EQ(Described(ReadError("secretsmanager.RotateSecret",
                                R"({"SecretId":"a","RotationRules":"daily"})")),
            "SerializationException: RotationRules: expected an object, got string");
  EXPECT_EQ(
      Described(ReadError("TrentService.Encrypt", R"({"KeyId":"k","EncryptionContext":{"a":1}})")),
      "SerializationException: EncryptionContext.a: expected a string, got number");
  EXPECT_EQ(Described(ReadError("TrentService.Encrypt", R"({"KeyId":"k","EncryptionContext":[]})")),
            "SerializationException: EncryptionContext: expected an object, got array");
  EXPECT_EQ(Described(ReadError("TrentService.Encrypt", R"({"Plaintext":7})")),
            "SerializationException: Plaintext: expected a base64 string, got number");
}

TEST(AwsJsonMalformedTest, UnknownMembersInTheServicesValidationType) {
  EXPECT_EQ(Described(ReadError(kGet, R"({"SecretId":"a","Colour":"red"})")),
            "InvalidParameterException: Colour: unknown member");
  EXPECT_EQ(Described(ReadError("AmazonSSM.GetParameter", R"({"Name":"/a","Colour":"red"})")),
            "ValidationException: Colour: unknown member");
  EXPECT_EQ(Described(ReadError("TrentService.DescribeKey", R"({"KeyId":"k","Colour":"red"})")),
            "ValidationException: Colour: unknown member");
  EXPECT_EQ(Described(ReadError("secretsmanager.CreateSecret",
                                R"({"Name":"a","Tags":[{"Key":"k","Colour":"red"}]})")),
            "InvalidParameterException: Tags[0].Colour: unknown member");
  // Proto spellings and wrong case are not AWS's members.
  EXPECT_EQ(Described(ReadError(kGet, R"({"secret_id":"a"})")),
            "InvalidParameterException: secret_id: unknown member");
  EXPECT_EQ(Described(ReadError(kGet, R"({"secretId":"a"})")),
            "InvalidParameterException: secretId: unknown member");
  // Coffer-only response fields are not request members either.
  EXPECT_EQ(ErrorReason(ReadError("TrentService.DescribeKey",
                                  R"({"KeyId":"k","CurrentKeyMaterialVersion":1})")),
            "ValidationException");
  // A long member name is cut short in the message.
  std::string long_name(5000, 'x');
  absl::Status s = ReadError(kGet, absl::StrCat(R"({")", long_name, R"(":1})"));
  EXPECT_EQ(ErrorReason(s), "InvalidParameterException");
  EXPECT_LT(s.message().size(), 100u);
}

TEST(AwsJsonMalformedTest, UnknownEnumListsTheAllowedValues) {
  EXPECT_EQ(Described(ReadError("AmazonSSM.PutParameter",
                                R"({"Name":"/a","Value":"v","Type":"Secret"})")),
            "ValidationException: Type: must be one of String, StringList, SecureString");
  EXPECT_EQ(Described(ReadError("TrentService.GenerateDataKey", R"({"KeySpec":"AES_512"})")),
            "ValidationException: KeySpec: must be one of AES_256, AES_128");
  EXPECT_EQ(Described(ReadError("AmazonSSM.PutParameter", R"({"Type":3})")),
            "SerializationException: Type: expected a string, got number");
}

TEST(AwsJsonMalformedTest, EnumValueIsNeverEchoed) {
  absl::Status s = ReadError("AmazonSSM.PutParameter",
                             R"({"Name":"/a","Value":"v","Type":"hunter2-my-password"})");
  EXPECT_EQ(ErrorReason(s), "ValidationException");
  EXPECT_EQ(s.message().find("hunter2"), absl::string_view::npos) << s.message();
}

TEST(AwsJsonMalformedTest, Integers) {
  const char* list = "secretsmanager.ListSecrets";
  EXPECT_EQ(Described(ReadError(list, R"({"MaxResults":1.5})")),
            "SerializationException: MaxResults: expected an integer");
  EXPECT_EQ(Described(ReadError(list, R"({"MaxResults":1e2})")),
            "SerializationException: MaxResults: expected an integer");
  EXPECT_EQ(Described(ReadError(list, R"({"MaxResults":2147483648})")),
            "InvalidParameterException: MaxResults: out of range");
  EXPECT_EQ(Described(ReadError(list, R"({"MaxResults":-2147483649})")),
            "InvalidParameterException: MaxResults: out of range");
  EXPECT_EQ(testing::ReadRequest<secrets::v1::ListSecretsRequest>(list, R"({"MaxResults":-1})")
                .max_results(),
            -1);  // in range: the service says what it thinks of it
  EXPECT_EQ(Described(ReadError("secretsmanager.DeleteSecret",
                                R"({"RecoveryWindowInDays":99999999999999999999})")),
            "InvalidParameterException: RecoveryWindowInDays: out of range");
  EXPECT_EQ(testing::ReadRequest<secrets::v1::DeleteSecretRequest>(
                "secretsmanager.DeleteSecret", R"({"RecoveryWindowInDays":9223372036854775807})")
                .recovery_window_in_days(),
            9223372036854775807);
}

TEST(AwsJsonMalformedTest, InvalidBase64) {
  for (const char* blob : {"aGVsbG8", "a===", "a$==", "aGVs bG8=", "aGVsbG8=\\n",
                           "====", "aGVsbG8=aGVs", "aGV=bG8=", "-_8=", "YQ=a"}) {
    absl::Status s = ReadError("TrentService.Encrypt",
                               absl::StrCat(R"({"KeyId":"k","Plaintext":")", blob, R"("})"));
    EXPECT_EQ(Described(s), "SerializationException: Plaintext: not valid base64") << blob;
  }
  EXPECT_EQ(Described(ReadError("secretsmanager.PutSecretValue",
                                R"({"SecretId":"a","SecretBinary":"!!!!"})")),
            "SerializationException: SecretBinary: not valid base64");
  // The empty string is the empty blob.
  EXPECT_TRUE(ReadError("TrentService.Encrypt", R"({"KeyId":"k","Plaintext":""})").ok());
}

TEST(AwsJsonMalformedTest, InvalidUtf8) {
  absl::Status s = ReadError(kGet, "{\"SecretId\":\"a\xff\xfe\"}");
  EXPECT_EQ(Described(s), "SerializationException: SecretId: not valid UTF-8");
  s = ReadError("TrentService.Encrypt", "{\"KeyId\":\"k\",\"EncryptionContext\":{\"\xc3\":\"v\"}}");
  EXPECT_EQ(ErrorReason(s), "SerializationException");
  // Escaped characters are fine, lone surrogates are not JSON.
  auto ok = testing::ReadRequest<secrets::v1::GetSecretValueRequest>(
      kGet, R"({"SecretId":"\u00e9\ud83d\ude00"})");
  EXPECT_EQ(ok.secret_id(), "\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(ErrorReason(ReadError(kGet, R"({"SecretId":"\ud83d"})")), "SerializationException");
}

TEST(AwsJsonMalformedTest, MembersGivenTwice) {
  EXPECT_EQ(Described(ReadError(kGet, R"({"SecretId":"a","SecretId":"b"})")),
            "SerializationException: SecretId: given more than once");
  EXPECT_EQ(
      Described(ReadError("TrentService.Encrypt", R"({"EncryptionContext":{"a":"1","a":"2"}})")),
      "SerializationException: EncryptionContext.a: given more than once");
}

TEST(AwsJsonMalformedTest, HugeNestingIsRefusedBeforeParsing) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "[";
  absl::Status s = ReadError(kGet, deep);
  EXPECT_EQ(Described(s), "SerializationException: the request body nests deeper than 16 levels");
  std::string objects;
  for (int i = 0; i < 17; ++i) objects += "{\"a\":";
  objects += "1";
  for (int i = 0; i < 17; ++i) objects += "}";
  EXPECT_EQ(ErrorReason(ReadError(kGet, objects)), "SerializationException");
  // Brackets inside strings do not count.
  EXPECT_TRUE(
      ReadError(kGet, absl::StrCat(R"({"SecretId":")", std::string(1000, '['), R"("})")).ok());
  // Deep but within the bound: refused by shape, not by the bound.
  EXPECT_EQ(Described(ReadError(kGet, R"({"SecretId":{"a":{"b":[[[]]]}}})")),
            "SerializationException: SecretId: expected a string, got object");
}

TEST(AwsJsonMalformedTest, HugeBodiesAreRefused) {
  std::string many = "{\"SecretIdList\":[";
  for (size_t i = 0; i < kMaxRequestValues; ++i) many += "\"a\",";
  many += "\"a\"]}";
  EXPECT_EQ(Described(ReadError("secretsmanager.BatchGetSecretValue", many)),
            "SerializationException: the request body holds more than 20000 values");
  std::string big = absl::StrCat(R"({"SecretId":"a","SecretString":")",
                                 std::string(kMaxRequestBytes, 'x'), R"("})");
  EXPECT_EQ(Described(ReadError("secretsmanager.PutSecretValue", big)),
            "SerializationException: the request body is larger than 1048576 bytes");
  // The largest secret AWS allows, every character escaped, still fits.
  std::string escaped;
  for (int i = 0; i < 65536; ++i) escaped += "\\u0041";
  EXPECT_TRUE(ReadError("secretsmanager.PutSecretValue",
                        absl::StrCat(R"({"SecretId":"a","SecretString":")", escaped, R"("})"))
                  .ok());
}

TEST(AwsJsonMalformedTest, NullMeansAbsent) {
  auto req = testing::ReadRequest<secrets::v1::ListSecretsRequest>(
      "secretsmanager.ListSecrets", R"({"MaxResults":null,"Filters":null,"SortOrder":null})");
  EXPECT_TRUE(testing::ProtoEq(secrets::v1::ListSecretsRequest(), req));
}

TEST(AwsJsonMalformedTest, TimestampsAreEpochSeconds) {
  // No request of the three APIs carries a timestamp; the reader is the
  // same for every message, so it is checked on a response type.
  auto read = [](absl::string_view json) {
    secrets::v1::DeleteSecretResponse out;
    absl::Status s = internal::MessageFromAwsJson(Backend::kSecrets, json, &out);
    return std::make_pair(s, out.deletion_date());
  };
  auto [s, ts] = read(R"({"DeletionDate":1700000000})");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ts.seconds(), 1700000000);
  EXPECT_EQ(ts.nanos(), 0);
  std::tie(s, ts) = read(R"({"DeletionDate":1700000000.123456789123})");
  EXPECT_EQ(ts.seconds(), 1700000000);
  EXPECT_EQ(ts.nanos(), 123456789);
  std::tie(s, ts) = read(R"({"DeletionDate":-1.5})");
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 500000000);
  std::tie(s, ts) = read(R"({"DeletionDate":1.7E9})");
  EXPECT_EQ(ts.seconds(), 1700000000);
  EXPECT_EQ(ts.nanos(), 0);
  std::tie(s, ts) = read(R"({"DeletionDate":"2023-11-14T22:13:20Z"})");
  EXPECT_EQ(
      Described(s),
      "SerializationException: DeletionDate: expected a timestamp (epoch seconds), got string");
  std::tie(s, ts) = read(R"({"DeletionDate":1e300})");
  EXPECT_EQ(Described(s), "InvalidParameterException: DeletionDate: out of range");
  std::tie(s, ts) = read(R"({"DeletionDate":253402300800})");
  EXPECT_EQ(Described(s), "InvalidParameterException: DeletionDate: out of range");

  // Written with milliseconds and read back.
  secrets::v1::DeleteSecretResponse resp;
  resp.mutable_deletion_date()->set_seconds(-2);
  resp.mutable_deletion_date()->set_nanos(500000000);
  std::string json = internal::MessageToAwsJson(Backend::kSecrets, resp);
  EXPECT_EQ(json, R"({"DeletionDate":-1.5})");
  std::tie(s, ts) = read(json);
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 500000000);
}

// Random damage to valid bodies: an error or a message, never a crash.
TEST(AwsJsonMalformedTest, MutatedBodiesNeverCrash) {
  std::mt19937 rng(20240601);
  for (const AwsOperation& op : AllAwsOperations()) {
    std::string body = testing::SampleRequestJson(AwsRequestShape(op));
    for (int round = 0; round < 40; ++round) {
      std::string damaged = body;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !damaged.empty(); ++e) {
        size_t at = rng() % damaged.size();
        switch (rng() % 3) {
          case 0:
            damaged[at] = static_cast<char>(rng() % 256);
            break;
          case 1:
            damaged.erase(at, 1);
            break;
          default:
            damaged.insert(at, 1, "{}[],:\"\\0an-e."[rng() % 14]);
            break;
        }
      }
      auto read = RequestFromAwsJson(op, damaged);
      if (!read.ok()) {
        EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument) << damaged;
        EXPECT_FALSE(ErrorReason(read.status()).empty()) << damaged;
      }
    }
  }
}

TEST(AwsJsonMalformedTest, WipeMessageOverwritesEveryStringAndBlob) {
  secrets::v1::BatchGetSecretValueResponse resp;
  testing::FillEveryField(&resp);
  resp.mutable_secret_values(0)->set_secret_string("hunter2");
  const std::string& value = resp.secret_values(0).secret_string();
  const char* data = value.data();
  WipeMessage(&resp);
  EXPECT_EQ(resp.secret_values(0).secret_string(), std::string(7, '\0'));
  EXPECT_EQ(resp.secret_values(0).secret_string().data(), data);  // in place
  EXPECT_EQ(resp.secret_values(0).secret_binary(), std::string(4, '\0'));
  EXPECT_EQ(resp.secret_values(0).version_stages(0), std::string(14, '\0'));
  EXPECT_EQ(resp.errors(0).message(), std::string(7, '\0'));

  kms::v1::EncryptRequest enc;
  enc.set_plaintext("top secret");
  WipeMessage(&enc);
  EXPECT_EQ(enc.plaintext(), std::string(10, '\0'));
  WipeMessage(nullptr);  // harmless
}

}  // namespace
}  // namespace coffer::gateway
