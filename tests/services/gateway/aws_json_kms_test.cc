// KMS: request bodies as the AWS CLI and SDKs send them, and the exact JSON
// of responses.
#include <gtest/gtest.h>

#include "coffer/kms/v1/kms.pb.h"
#include "tests/services/gateway/gateway_test_util.h"

namespace coffer::gateway {
namespace {

using namespace coffer::kms::v1;  // NOLINT: test brevity
using testing::Described;
using testing::Proto;
using testing::ProtoEq;
using testing::ReadError;
using testing::ReadRequest;
using testing::WriteResponse;

constexpr char kKeyArn[] =
    "arn:coffer:kms:local:000000000000:key/0d990263-018e-4e65-a703-eff731de951e";

TEST(AwsJsonKmsTest, EncryptRequest) {
  auto req = ReadRequest<EncryptRequest>(
      "TrentService.Encrypt",
      R"({"KeyId":"alias/x","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b","tenant":"t1"}})");
  EXPECT_TRUE(ProtoEq(Proto<EncryptRequest>(R"pb(
                        key_id: "alias/x"
                        plaintext: "hello"
                        encryption_context { key: "a" value: "b" }
                        encryption_context { key: "tenant" value: "t1" }
                      )pb"),
                      req));

  // What the SDKs may add: grant tokens (ignored) and the one algorithm.
  req = ReadRequest<EncryptRequest>(
      "TrentService.Encrypt",
      R"({"KeyId":"k","Plaintext":"AA==","GrantTokens":["g1"],"EncryptionAlgorithm":"SYMMETRIC_DEFAULT"})");
  EXPECT_TRUE(ProtoEq(Proto<EncryptRequest>(R"pb(key_id: "k" plaintext: "\x00")pb"), req));
  EXPECT_EQ(Described(ReadError(
                "TrentService.Encrypt",
                R"({"KeyId":"k","Plaintext":"AA==","EncryptionAlgorithm":"RSAES_OAEP_SHA_256"})")),
            "ValidationException: EncryptionAlgorithm: must be SYMMETRIC_DEFAULT (the only one "
            "Coffer has)");
  EXPECT_EQ(Described(ReadError("TrentService.Encrypt", R"({"KeyId":"k","GrantTokens":[1]})")),
            "SerializationException: GrantTokens[]: expected a string, got number");
}

TEST(AwsJsonKmsTest, EncryptAndDecryptResponses) {
  auto enc = Proto<EncryptResponse>(R"pb(ciphertext_blob: "\x01\x02\x03\xfb\xff"
                                         encryption_algorithm: "SYMMETRIC_DEFAULT")pb");
  enc.set_key_id(kKeyArn);
  EXPECT_EQ(WriteResponse("TrentService.Encrypt", enc),
            absl::StrCat(R"({"CiphertextBlob":"AQID+/8=","KeyId":")", kKeyArn,
                         R"(","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"})"));

  auto dec = ReadRequest<DecryptRequest>(
      "TrentService.Decrypt",
      R"({"CiphertextBlob":"AQID+/8=","EncryptionContext":{"a":"b"},"KeyId":"alias/x",)"
      R"("EncryptionAlgorithm":"SYMMETRIC_DEFAULT"})");
  EXPECT_TRUE(ProtoEq(Proto<DecryptRequest>(R"pb(
                        ciphertext_blob: "\x01\x02\x03\xfb\xff"
                        encryption_context { key: "a" value: "b" }
                        key_id: "alias/x"
                      )pb"),
                      dec));
  EXPECT_EQ(
      WriteResponse("TrentService.Decrypt",
                    Proto<DecryptResponse>(R"pb(key_id: "k"
                                                plaintext: "hello"
                                                encryption_algorithm: "SYMMETRIC_DEFAULT")pb")),
      R"({"KeyId":"k","Plaintext":"aGVsbG8=","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"})");
}

TEST(AwsJsonKmsTest, Base64OfEveryLength) {
  // 0, 1, 2 and 3 bytes past a whole group: "", "YQ==", "YWI=", "YWJj".
  const char* expected[] = {R"({})", R"({"Plaintext":"YQ=="})", R"({"Plaintext":"YWI="})",
                            R"({"Plaintext":"YWJj"})", R"({"Plaintext":"YWJjZA=="})"};
  const std::string text = "abcd";
  for (size_t n = 0; n <= 4; ++n) {
    GenerateRandomResponse resp;
    resp.set_plaintext(text.substr(0, n));
    std::string json = WriteResponse("TrentService.GenerateRandom", resp);
    EXPECT_EQ(json, expected[n]);
    if (n == 0) continue;
    // And back.
    auto req = ReadRequest<EncryptRequest>("TrentService.Encrypt",
                                           absl::StrCat(R"({"KeyId":"k",)", json.substr(1)));
    EXPECT_EQ(req.plaintext(), text.substr(0, n));
  }
}

TEST(AwsJsonKmsTest, DescribeKeyResponse) {
  auto resp = Proto<DescribeKeyResponse>(R"pb(
    key_metadata {
      key_id: "0d990263-018e-4e65-a703-eff731de951e"
      creation_date { seconds: 1499288695 nanos: 918000000 }
      enabled: true
      key_usage: KEY_USAGE_ENCRYPT_DECRYPT
      key_state: KEY_STATE_ENABLED
      key_spec: KEY_SPEC_SYMMETRIC_DEFAULT
      key_manager: KEY_MANAGER_CUSTOMER
      encryption_algorithms: "SYMMETRIC_DEFAULT"
      current_key_material_version: 3
    }
  )pb");
  resp.mutable_key_metadata()->set_arn(kKeyArn);
  EXPECT_EQ(
      WriteResponse("TrentService.DescribeKey", resp),
      absl::StrCat(R"({"KeyMetadata":{"KeyId":"0d990263-018e-4e65-a703-eff731de951e",)",
                   R"("Arn":")", kKeyArn, R"(","CreationDate":1499288695.918,"Enabled":true,)",
                   R"("Description":"","KeyUsage":"ENCRYPT_DECRYPT","KeyState":"Enabled",)",
                   R"("KeySpec":"SYMMETRIC_DEFAULT","KeyManager":"CUSTOMER",)",
                   R"("EncryptionAlgorithms":["SYMMETRIC_DEFAULT"],)",
                   R"("AWSAccountId":"000000000000","CustomerMasterKeySpec":"SYMMETRIC_DEFAULT",)",
                   R"("Origin":"AWS_KMS","MultiRegion":false}})"));
}

TEST(AwsJsonKmsTest, DescribeKeyPendingDeletionAndBuiltIn) {
  auto resp = Proto<DescribeKeyResponse>(R"pb(
    key_metadata {
      key_id: "k"
      arn: "not-an-arn"
      description: "built-in"
      key_state: KEY_STATE_PENDING_DELETION
      deletion_date { seconds: 1700604800 }
      pending_deletion_window_in_days: 7
      key_manager: KEY_MANAGER_COFFER
    }
  )pb");
  // Disabled shows Enabled:false; no ARN account, no key spec: not derived.
  EXPECT_EQ(WriteResponse("TrentService.DescribeKey", resp),
            R"({"KeyMetadata":{"KeyId":"k","Arn":"not-an-arn","Enabled":false,)"
            R"("Description":"built-in","KeyState":"PendingDeletion","DeletionDate":1700604800,)"
            R"("PendingDeletionWindowInDays":7,"KeyManager":"AWS","Origin":"AWS_KMS",)"
            R"("MultiRegion":false}})");
}

TEST(AwsJsonKmsTest, CreateKeyRequest) {
  auto req = ReadRequest<CreateKeyRequest>(
      "TrentService.CreateKey",
      R"({"Description":"orders","KeyUsage":"ENCRYPT_DECRYPT","KeySpec":"SYMMETRIC_DEFAULT",)"
      R"("Tags":[{"TagKey":"team","TagValue":"payments"}],"Origin":"AWS_KMS",)"
      R"("BypassPolicyLockoutSafetyCheck":false,"MultiRegion":false})");
  EXPECT_TRUE(ProtoEq(Proto<CreateKeyRequest>(R"pb(
                        description: "orders"
                        key_usage: KEY_USAGE_ENCRYPT_DECRYPT
                        key_spec: KEY_SPEC_SYMMETRIC_DEFAULT
                        tags { tag_key: "team" tag_value: "payments" }
                      )pb"),
                      req));
  // The deprecated name of KeySpec.
  req = ReadRequest<CreateKeyRequest>("TrentService.CreateKey",
                                      R"({"CustomerMasterKeySpec":"SYMMETRIC_DEFAULT"})");
  EXPECT_EQ(req.key_spec(), KEY_SPEC_SYMMETRIC_DEFAULT);
  EXPECT_EQ(Described(ReadError(
                "TrentService.CreateKey",
                R"({"KeySpec":"SYMMETRIC_DEFAULT","CustomerMasterKeySpec":"SYMMETRIC_DEFAULT"})")),
            "ValidationException: CustomerMasterKeySpec: names the same setting as KeySpec; give "
            "only one of them");
  EXPECT_EQ(Described(ReadError("TrentService.CreateKey", R"({"KeySpec":"RSA_2048"})")),
            "ValidationException: KeySpec: must be one of SYMMETRIC_DEFAULT");
  EXPECT_EQ(Described(ReadError("TrentService.CreateKey", R"({"KeyUsage":"SIGN_VERIFY"})")),
            "ValidationException: KeyUsage: must be one of ENCRYPT_DECRYPT");
  EXPECT_EQ(Described(ReadError("TrentService.CreateKey", R"({"Origin":"EXTERNAL"})")),
            "ValidationException: Origin: must be AWS_KMS (the only one Coffer has)");
  for (const char* unsupported : {R"({"Policy":"{}"})", R"({"MultiRegion":true})",
                                  R"({"CustomKeyStoreId":"cks-1"})", R"({"XksKeyId":"x"})"}) {
    EXPECT_EQ(ErrorReason(ReadError("TrentService.CreateKey", unsupported)), "ValidationException")
        << unsupported;
  }
  // Empty forms are fine.
  EXPECT_TRUE(ReadError("TrentService.CreateKey", R"({"Policy":"","CustomKeyStoreId":""})").ok());
}

TEST(AwsJsonKmsTest, ListKeysAndPaging) {
  auto req = ReadRequest<ListKeysRequest>("TrentService.ListKeys", R"({"Limit":2,"Marker":"m"})");
  EXPECT_TRUE(ProtoEq(Proto<ListKeysRequest>(R"pb(limit: 2 marker: "m")pb"), req));
  auto resp = Proto<ListKeysResponse>(R"pb(
    keys { key_id: "k1" key_arn: "arn:k1" }
    keys { key_id: "k2" key_arn: "arn:k2" }
    next_marker: "k2"
    truncated: true
  )pb");
  EXPECT_EQ(WriteResponse("TrentService.ListKeys", resp),
            R"({"Keys":[{"KeyId":"k1","KeyArn":"arn:k1"},{"KeyId":"k2","KeyArn":"arn:k2"}],)"
            R"("NextMarker":"k2","Truncated":true})");
  EXPECT_EQ(WriteResponse("TrentService.ListKeys", ListKeysResponse()),
            R"({"Keys":[],"Truncated":false})");
}

TEST(AwsJsonKmsTest, Aliases) {
  auto create = ReadRequest<CreateAliasRequest>(
      "TrentService.CreateAlias", R"({"AliasName":"alias/orders","TargetKeyId":"k1"})");
  EXPECT_TRUE(ProtoEq(
      Proto<CreateAliasRequest>(R"pb(alias_name: "alias/orders" target_key_id: "k1")pb"), create));
  auto resp = Proto<ListAliasesResponse>(R"pb(
    aliases {
      alias_name: "alias/orders"
      alias_arn: "arn:coffer:kms:local:000000000000:alias/orders"
      target_key_id: "k1"
      creation_date { seconds: 1700000000 }
      last_updated_date { seconds: 1700000001 nanos: 1000000 }
    }
  )pb");
  EXPECT_EQ(WriteResponse("TrentService.ListAliases", resp),
            R"({"Aliases":[{"AliasName":"alias/orders",)"
            R"("AliasArn":"arn:coffer:kms:local:000000000000:alias/orders","TargetKeyId":"k1",)"
            R"("CreationDate":1700000000,"LastUpdatedDate":1700000001.001}],"Truncated":false})");
}

TEST(AwsJsonKmsTest, DataKeys) {
  auto req = ReadRequest<GenerateDataKeyRequest>(
      "TrentService.GenerateDataKey",
      R"({"KeyId":"alias/x","KeySpec":"AES_256","EncryptionContext":{"SecretARN":"a"}})");
  EXPECT_TRUE(ProtoEq(Proto<GenerateDataKeyRequest>(R"pb(
                        key_id: "alias/x"
                        key_spec: DATA_KEY_SPEC_AES_256
                        encryption_context { key: "SecretARN" value: "a" }
                      )pb"),
                      req));
  EXPECT_EQ(ReadRequest<GenerateDataKeyWithoutPlaintextRequest>(
                "TrentService.GenerateDataKeyWithoutPlaintext",
                R"({"KeyId":"k","NumberOfBytes":64,"KeySpec":"AES_128"})")
                .key_spec(),
            DATA_KEY_SPEC_AES_128);
  EXPECT_EQ(WriteResponse("TrentService.GenerateDataKey",
                          Proto<GenerateDataKeyResponse>(R"pb(ciphertext_blob: "c"
                                                              plaintext: "p"
                                                              key_id: "k")pb")),
            R"({"CiphertextBlob":"Yw==","Plaintext":"cA==","KeyId":"k"})");
}

TEST(AwsJsonKmsTest, ReEncrypt) {
  auto req = ReadRequest<ReEncryptRequest>(
      "TrentService.ReEncrypt",
      R"({"CiphertextBlob":"Yw==","SourceEncryptionContext":{"a":"1"},"SourceKeyId":"k1",)"
      R"("DestinationKeyId":"k2","DestinationEncryptionContext":{"b":"2"},)"
      R"("SourceEncryptionAlgorithm":"SYMMETRIC_DEFAULT","DestinationEncryptionAlgorithm":"SYMMETRIC_DEFAULT"})");
  EXPECT_TRUE(ProtoEq(Proto<ReEncryptRequest>(R"pb(
                        ciphertext_blob: "c"
                        source_encryption_context { key: "a" value: "1" }
                        source_key_id: "k1"
                        destination_key_id: "k2"
                        destination_encryption_context { key: "b" value: "2" }
                      )pb"),
                      req));
  // The material versions are Coffer's own and not sent.
  EXPECT_EQ(WriteResponse("TrentService.ReEncrypt", Proto<ReEncryptResponse>(R"pb(
                            ciphertext_blob: "c"
                            source_key_id: "k1"
                            key_id: "k2"
                            source_key_material_version: 1
                            destination_key_material_version: 4
                          )pb")),
            R"({"CiphertextBlob":"Yw==","SourceKeyId":"k1","KeyId":"k2"})");
}

TEST(AwsJsonKmsTest, DeletionAndRotation) {
  EXPECT_EQ(ReadRequest<ScheduleKeyDeletionRequest>("TrentService.ScheduleKeyDeletion",
                                                    R"({"KeyId":"k","PendingWindowInDays":7})")
                .pending_window_in_days(),
            7);
  EXPECT_EQ(
      WriteResponse("TrentService.ScheduleKeyDeletion", Proto<ScheduleKeyDeletionResponse>(R"pb(
                      key_id: "arn:k"
                      deletion_date { seconds: 1700604800 }
                      key_state: KEY_STATE_PENDING_DELETION
                      pending_window_in_days: 7
                    )pb")),
      R"({"KeyId":"arn:k","DeletionDate":1700604800,"KeyState":"PendingDeletion",)"
      R"("PendingWindowInDays":7})");
  EXPECT_EQ(ReadRequest<EnableKeyRotationRequest>("TrentService.EnableKeyRotation",
                                                  R"({"KeyId":"k","RotationPeriodInDays":90})")
                .rotation_period_in_days(),
            90);
  EXPECT_EQ(WriteResponse("TrentService.GetKeyRotationStatus", GetKeyRotationStatusResponse()),
            R"({"KeyRotationEnabled":false})");
  EXPECT_EQ(
      WriteResponse("TrentService.GetKeyRotationStatus", Proto<GetKeyRotationStatusResponse>(R"pb(
                      key_rotation_enabled: true
                      key_id: "arn:k"
                      rotation_period_in_days: 365
                      next_rotation_date { seconds: 1731536000 }
                    )pb")),
      R"({"KeyRotationEnabled":true,"KeyId":"arn:k","RotationPeriodInDays":365,)"
      R"("NextRotationDate":1731536000})");
  EXPECT_EQ(WriteResponse("TrentService.RotateKeyOnDemand",
                          Proto<RotateKeyOnDemandResponse>(R"pb(key_id: "arn:k"
                                                                key_material_version: 2)pb")),
            R"({"KeyId":"arn:k"})");
  EXPECT_EQ(
      WriteResponse("TrentService.ListKeyRotations", Proto<ListKeyRotationsResponse>(R"pb(
                      rotations {
                        key_id: "arn:k"
                        rotation_date { seconds: 1700000000 }
                        rotation_type: ROTATION_TYPE_ON_DEMAND
                        key_material_version: 2
                      }
                      rotations { key_id: "arn:k" rotation_type: ROTATION_TYPE_AUTOMATIC }
                    )pb")),
      R"({"Rotations":[{"KeyId":"arn:k","RotationDate":1700000000,"RotationType":"ON_DEMAND"},)"
      R"({"KeyId":"arn:k","RotationType":"AUTOMATIC"}],"Truncated":false})");
}

TEST(AwsJsonKmsTest, Tags) {
  auto req = ReadRequest<TagResourceRequest>(
      "TrentService.TagResource", R"({"KeyId":"k","Tags":[{"TagKey":"a","TagValue":""}]})");
  EXPECT_TRUE(ProtoEq(Proto<TagResourceRequest>(R"pb(key_id: "k"
                                                     tags { tag_key: "a" tag_value: "" })pb"),
                      req));
  EXPECT_EQ(WriteResponse("TrentService.ListResourceTags",
                          Proto<ListResourceTagsResponse>(R"pb(tags { tag_key: "a" })pb")),
            R"({"Tags":[{"TagKey":"a","TagValue":""}],"Truncated":false})");
  EXPECT_EQ(ReadRequest<UntagResourceRequest>("TrentService.UntagResource",
                                              R"({"KeyId":"k","TagKeys":["a"]})")
                .tag_keys(0),
            "a");
}

TEST(AwsJsonKmsTest, GenerateRandom) {
  EXPECT_EQ(ReadRequest<GenerateRandomRequest>("TrentService.GenerateRandom",
                                               R"({"NumberOfBytes":32,"CustomKeyStoreId":""})")
                .number_of_bytes(),
            32);
  EXPECT_EQ(ErrorReason(ReadError("TrentService.GenerateRandom",
                                  R"({"NumberOfBytes":32,"CustomKeyStoreId":"cks-1"})")),
            "ValidationException");
}

}  // namespace
}  // namespace coffer::gateway
