// Secrets Manager: request bodies as the AWS CLI and SDKs send them, and
// the exact JSON of responses.
#include <gtest/gtest.h>

#include "coffer/secrets/v1/secrets.pb.h"
#include "tests/services/gateway/gateway_test_util.h"

namespace coffer::gateway {
namespace {

using namespace coffer::secrets::v1;  // NOLINT: test brevity
using testing::Described;
using testing::Proto;
using testing::ProtoEq;
using testing::ReadError;
using testing::ReadRequest;
using testing::WriteResponse;

constexpr char kArn[] = "arn:coffer:secretsmanager:local:000000000000:secret:prod/db-Ab3xQ9";

TEST(AwsJsonSecretsTest, GetSecretValueRequest) {
  auto req = ReadRequest<GetSecretValueRequest>(
      "secretsmanager.GetSecretValue", R"({"SecretId":"prod/db","VersionStage":"AWSCURRENT"})");
  EXPECT_TRUE(ProtoEq(Proto<GetSecretValueRequest>(R"pb(secret_id: "prod/db"
                                                        version_stage: "AWSCURRENT")pb"),
                      req));

  // The caching clients ask by version id.
  req = ReadRequest<GetSecretValueRequest>(
      "secretsmanager.GetSecretValue",
      R"({"SecretId":"prod/db","VersionId":"EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"})");
  EXPECT_EQ(req.version_id(), "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1");
}

TEST(AwsJsonSecretsTest, EmptyBodiesAreEmptyInput) {
  for (const char* body : {"", "{}", "  \n", " { } "}) {
    auto req = ReadRequest<ListSecretsRequest>("secretsmanager.ListSecrets", body);
    EXPECT_TRUE(ProtoEq(ListSecretsRequest(), req)) << body;
  }
}

TEST(AwsJsonSecretsTest, GetSecretValueResponseWithString) {
  auto resp = Proto<GetSecretValueResponse>(R"pb(
    arn: "arn:coffer:secretsmanager:local:000000000000:secret:prod/db-Ab3xQ9"
    name: "prod/db"
    version_id: "v1"
    secret_string: "{\"username\":\"orders\",\"password\":\"p\\n\"}"
    version_stages: "AWSCURRENT"
    version_stages: "AWSPREVIOUS"
    created_date { seconds: 1700000000 nanos: 123456789 }
  )pb");
  EXPECT_EQ(WriteResponse("secretsmanager.GetSecretValue", resp),
            R"({"ARN":"arn:coffer:secretsmanager:local:000000000000:secret:prod/db-Ab3xQ9",)"
            R"("Name":"prod/db","VersionId":"v1",)"
            R"("SecretString":"{\"username\":\"orders\",\"password\":\"p\\n\"}",)"
            R"("VersionStages":["AWSCURRENT","AWSPREVIOUS"],"CreatedDate":1700000000.123})");
}

TEST(AwsJsonSecretsTest, GetSecretValueResponseWithBinary) {
  GetSecretValueResponse resp;
  resp.set_name("bin");
  resp.set_secret_binary(std::string("\x00\x01\x02\xff", 4));
  resp.mutable_created_date()->set_seconds(1700000000);
  EXPECT_EQ(WriteResponse("secretsmanager.GetSecretValue", resp),
            R"({"Name":"bin","SecretBinary":"AAEC/w==","CreatedDate":1700000000})");

  // optional: an empty value that is set is still sent.
  GetSecretValueResponse empty;
  empty.set_secret_string("");
  EXPECT_EQ(WriteResponse("secretsmanager.GetSecretValue", empty), R"({"SecretString":""})");
}

TEST(AwsJsonSecretsTest, CreateSecretRequest) {
  auto req = ReadRequest<CreateSecretRequest>(
      "secretsmanager.CreateSecret",
      R"({"Name":"prod/orders/db","ClientRequestToken":"11111111-2222-3333-4444-555555555555",)"
      R"("Description":"orders' database","KmsKeyId":"alias/orders","SecretBinary":"AAEC/w==",)"
      R"("Tags":[{"Key":"team","Value":"payments"},{"Key":"env","Value":""}],)"
      R"("ForceOverwriteReplicaSecret":false,"AddReplicaRegions":[]})");
  EXPECT_TRUE(ProtoEq(Proto<CreateSecretRequest>(R"pb(
                        name: "prod/orders/db"
                        client_request_token: "11111111-2222-3333-4444-555555555555"
                        description: "orders' database"
                        kms_key_id: "alias/orders"
                        secret_binary: "\x00\x01\x02\xff"
                        tags { key: "team" value: "payments" }
                        tags { key: "env" value: "" }
                      )pb"),
                      req));

  auto with_string = ReadRequest<CreateSecretRequest>(
      "secretsmanager.CreateSecret", R"({"Name":"a","SecretString":"{\"u\":\"\u00e9\"}"})");
  EXPECT_TRUE(with_string.has_secret_string());
  EXPECT_FALSE(with_string.has_secret_binary());
  EXPECT_EQ(with_string.secret_string(), "{\"u\":\"\xc3\xa9\"}");
}

TEST(AwsJsonSecretsTest, CreateSecretRefusesReplication) {
  absl::Status s = ReadError("secretsmanager.CreateSecret",
                             R"({"Name":"a","AddReplicaRegions":[{"Region":"eu-west-1"}]})");
  EXPECT_EQ(Described(s),
            "InvalidParameterException: AddReplicaRegions: is not supported by Coffer");
}

TEST(AwsJsonSecretsTest, CreateSecretResponse) {
  auto resp = Proto<CreateSecretResponse>(R"pb(
    arn: "arn:coffer:secretsmanager:local:000000000000:secret:prod/db-Ab3xQ9"
    name: "prod/db"
  )pb");
  // No value, no version: VersionId is absent, not "".
  EXPECT_EQ(WriteResponse("secretsmanager.CreateSecret", resp),
            std::string(R"({"ARN":")") + kArn + R"(","Name":"prod/db"})");
}

TEST(AwsJsonSecretsTest, PutSecretValueRequestAndResponse) {
  auto req = ReadRequest<PutSecretValueRequest>(
      "secretsmanager.PutSecretValue",
      R"({"SecretId":"prod/db","SecretString":"v2","VersionStages":["AWSPENDING"],)"
      R"("ClientRequestToken":"11111111-2222-3333-4444-555555555555"})");
  EXPECT_TRUE(ProtoEq(Proto<PutSecretValueRequest>(R"pb(
                        secret_id: "prod/db"
                        secret_string: "v2"
                        version_stages: "AWSPENDING"
                        client_request_token: "11111111-2222-3333-4444-555555555555"
                      )pb"),
                      req));

  auto resp = Proto<PutSecretValueResponse>(
      R"pb(arn: "a" name: "prod/db" version_id: "v2" version_stages: "AWSCURRENT")pb");
  EXPECT_EQ(WriteResponse("secretsmanager.PutSecretValue", resp),
            R"({"ARN":"a","Name":"prod/db","VersionId":"v2","VersionStages":["AWSCURRENT"]})");
}

TEST(AwsJsonSecretsTest, UpdateSecretKeepsPresence) {
  // An explicit "" clears the description; an absent one keeps it.
  auto cleared = ReadRequest<UpdateSecretRequest>("secretsmanager.UpdateSecret",
                                                  R"({"SecretId":"a","Description":""})");
  EXPECT_TRUE(cleared.has_description());
  auto kept = ReadRequest<UpdateSecretRequest>("secretsmanager.UpdateSecret",
                                               R"({"SecretId":"a","KmsKeyId":"alias/k"})");
  EXPECT_FALSE(kept.has_description());
  EXPECT_EQ(kept.kms_key_id(), "alias/k");
  // null is absent too.
  auto null = ReadRequest<UpdateSecretRequest>("secretsmanager.UpdateSecret",
                                               R"({"SecretId":"a","Description":null})");
  EXPECT_FALSE(null.has_description());
}

TEST(AwsJsonSecretsTest, UpdateSecretVersionStageRequest) {
  auto req = ReadRequest<UpdateSecretVersionStageRequest>(
      "secretsmanager.UpdateSecretVersionStage",
      R"({"SecretId":"prod/db","VersionStage":"AWSCURRENT","MoveToVersionId":"v1",)"
      R"("RemoveFromVersionId":"v2"})");
  EXPECT_TRUE(ProtoEq(Proto<UpdateSecretVersionStageRequest>(R"pb(
                        secret_id: "prod/db"
                        version_stage: "AWSCURRENT"
                        move_to_version_id: "v1"
                        remove_from_version_id: "v2"
                      )pb"),
                      req));
}

TEST(AwsJsonSecretsTest, DescribeSecretResponse) {
  auto resp = Proto<DescribeSecretResponse>(R"pb(
    arn: "arn:coffer:secretsmanager:local:000000000000:secret:prod/db-Ab3xQ9"
    name: "prod/db"
    description: "orders"
    kms_key_id: "alias/orders"
    rotation_enabled: true
    rotation_worker: "postgres"
    rotation_rules { automatically_after_days: 30 duration: "3h" }
    last_rotated_date { seconds: 1700000100 nanos: 500000000 }
    last_changed_date { seconds: 1700000200 }
    last_accessed_date { seconds: 1699920000 }
    next_rotation_date { seconds: 1702592100 }
    tags { key: "team" value: "payments" }
    version_ids_to_stages {
      key: "v2"
      value { stages: "AWSCURRENT" }
    }
    version_ids_to_stages {
      key: "v1"
      value { stages: "AWSPREVIOUS" stages: "old" }
    }
    created_date { seconds: 1690000000 nanos: 7000000 }
    rotation_state { status: STATUS_SUCCEEDED version_id: "v2" }
  )pb");
  EXPECT_EQ(WriteResponse("secretsmanager.DescribeSecret", resp),
            std::string(R"({"ARN":")") + kArn +
                R"(","Name":"prod/db","Description":"orders","KmsKeyId":"alias/orders",)"
                R"("RotationEnabled":true,"RotationLambdaARN":"postgres",)"
                R"("RotationRules":{"AutomaticallyAfterDays":30,"Duration":"3h"},)"
                R"("LastRotatedDate":1700000100.5,"LastChangedDate":1700000200,)"
                R"("LastAccessedDate":1699920000,"NextRotationDate":1702592100,)"
                R"("Tags":[{"Key":"team","Value":"payments"}],)"
                R"("VersionIdsToStages":{"v1":["AWSPREVIOUS","old"],"v2":["AWSCURRENT"]},)"
                R"("CreatedDate":1690000000.007})");
}

TEST(AwsJsonSecretsTest, DescribeSecretScheduledForDeletion) {
  // AWS shows DeletedDate; Coffer's deletion_date (the purge date) has no
  // AWS member, and no rotation means no rotation members at all.
  auto resp = Proto<DescribeSecretResponse>(R"pb(
    name: "gone"
    deleted_date { seconds: 1700000000 }
    deletion_date { seconds: 1702592000 }
    rotation_rules {}
  )pb");
  EXPECT_EQ(WriteResponse("secretsmanager.DescribeSecret", resp),
            R"({"Name":"gone","DeletedDate":1700000000})");
}

TEST(AwsJsonSecretsTest, ListSecretsRequest) {
  auto req = ReadRequest<ListSecretsRequest>(
      "secretsmanager.ListSecrets",
      R"({"MaxResults":10,"NextToken":"tok","SortOrder":"asc","IncludePlannedDeletion":true,)"
      R"("Filters":[{"Key":"name","Values":["prod/","!prod/test"]},{"Key":"tag-key","Values":["team"]}]})");
  EXPECT_TRUE(ProtoEq(Proto<ListSecretsRequest>(R"pb(
                        max_results: 10
                        next_token: "tok"
                        sort_order: SORT_ORDER_ASC
                        include_planned_deletion: true
                        filters { key: "name" values: "prod/" values: "!prod/test" }
                        filters { key: "tag-key" values: "team" }
                      )pb"),
                      req));
  EXPECT_EQ(ReadRequest<ListSecretsRequest>("secretsmanager.ListSecrets", R"({"SortOrder":"desc"})")
                .sort_order(),
            SORT_ORDER_DESC);
  EXPECT_EQ(Described(ReadError("secretsmanager.ListSecrets", R"({"SortOrder":"ASC"})")),
            "InvalidParameterException: SortOrder: must be one of asc, desc");
}

TEST(AwsJsonSecretsTest, ListSecretsResponse) {
  auto resp = Proto<ListSecretsResponse>(R"pb(
    secret_list {
      arn: "a1"
      name: "n1"
      secret_versions_to_stages {
        key: "v1"
        value { stages: "AWSCURRENT" }
      }
      created_date { seconds: 1700000000 }
    }
    secret_list { arn: "a2" name: "n2" rotation_enabled: true rotation_worker: "w" }
    next_token: "next"
  )pb");
  EXPECT_EQ(
      WriteResponse("secretsmanager.ListSecrets", resp),
      R"({"SecretList":[{"ARN":"a1","Name":"n1","SecretVersionsToStages":{"v1":["AWSCURRENT"]},)"
      R"("CreatedDate":1700000000},{"ARN":"a2","Name":"n2","RotationEnabled":true,)"
      R"("RotationLambdaARN":"w"}],"NextToken":"next"})");
  // The last page: an empty list is still sent, the token is not.
  EXPECT_EQ(WriteResponse("secretsmanager.ListSecrets", ListSecretsResponse()),
            R"({"SecretList":[]})");
}

TEST(AwsJsonSecretsTest, ListSecretVersionIds) {
  auto req = ReadRequest<ListSecretVersionIdsRequest>(
      "secretsmanager.ListSecretVersionIds",
      R"({"SecretId":"prod/db","MaxResults":5,"IncludeDeprecated":true,"NextToken":"t"})");
  EXPECT_TRUE(ProtoEq(Proto<ListSecretVersionIdsRequest>(R"pb(secret_id: "prod/db"
                                                              max_results: 5
                                                              include_deprecated: true
                                                              next_token: "t")pb"),
                      req));
  auto resp = Proto<ListSecretVersionIdsResponse>(R"pb(
    versions {
      version_id: "v2"
      version_stages: "AWSCURRENT"
      last_accessed_date { seconds: 1700006400 }
      created_date { seconds: 1700000000 nanos: 100000000 }
      kms_key_ids: "arn:coffer:kms:local:000000000000:key/k1"
    }
    versions {
      version_id: "v1"
      created_date { seconds: 1690000000 }
    }
    arn: "a"
    name: "prod/db"
  )pb");
  EXPECT_EQ(WriteResponse("secretsmanager.ListSecretVersionIds", resp),
            R"({"Versions":[{"VersionId":"v2","VersionStages":["AWSCURRENT"],)"
            R"("LastAccessedDate":1700006400,"CreatedDate":1700000000.1,)"
            R"("KmsKeyIds":["arn:coffer:kms:local:000000000000:key/k1"]},)"
            R"({"VersionId":"v1","CreatedDate":1690000000}],"ARN":"a","Name":"prod/db"})");
}

TEST(AwsJsonSecretsTest, DeleteAndRestore) {
  auto req = ReadRequest<DeleteSecretRequest>("secretsmanager.DeleteSecret",
                                              R"({"SecretId":"prod/db","RecoveryWindowInDays":7})");
  EXPECT_EQ(req.recovery_window_in_days(), 7);
  req = ReadRequest<DeleteSecretRequest>(
      "secretsmanager.DeleteSecret", R"({"SecretId":"prod/db","ForceDeleteWithoutRecovery":true})");
  EXPECT_TRUE(req.force_delete_without_recovery());

  auto resp =
      Proto<DeleteSecretResponse>(R"pb(arn: "a"
                                       name: "prod/db"
                                       deletion_date { seconds: 1700604800 nanos: 95000000 })pb");
  EXPECT_EQ(WriteResponse("secretsmanager.DeleteSecret", resp),
            R"({"ARN":"a","Name":"prod/db","DeletionDate":1700604800.095})");
  EXPECT_EQ(WriteResponse("secretsmanager.RestoreSecret",
                          Proto<RestoreSecretResponse>(R"pb(arn: "a" name: "n")pb")),
            R"({"ARN":"a","Name":"n"})");
}

TEST(AwsJsonSecretsTest, Tags) {
  auto tag = ReadRequest<TagResourceRequest>(
      "secretsmanager.TagResource",
      R"({"SecretId":"prod/db","Tags":[{"Key":"team","Value":"payments"}]})");
  EXPECT_TRUE(ProtoEq(Proto<TagResourceRequest>(R"pb(secret_id: "prod/db"
                                                     tags { key: "team" value: "payments" })pb"),
                      tag));
  auto untag = ReadRequest<UntagResourceRequest>("secretsmanager.UntagResource",
                                                 R"({"SecretId":"prod/db","TagKeys":["a","b"]})");
  EXPECT_TRUE(ProtoEq(Proto<UntagResourceRequest>(R"pb(secret_id: "prod/db"
                                                       tag_keys: "a"
                                                       tag_keys: "b")pb"),
                      untag));
  EXPECT_EQ(WriteResponse("secretsmanager.TagResource", TagResourceResponse()), "{}");
}

TEST(AwsJsonSecretsTest, GetRandomPassword) {
  auto req = ReadRequest<GetRandomPasswordRequest>(
      "secretsmanager.GetRandomPassword",
      R"({"PasswordLength":24,"ExcludePunctuation":true,"ExcludeCharacters":"\"'",)"
      R"("RequireEachIncludedType":false})");
  EXPECT_TRUE(ProtoEq(Proto<GetRandomPasswordRequest>(R"pb(
                        password_length: 24
                        exclude_punctuation: true
                        exclude_characters: "\"'"
                        require_each_included_type: false
                      )pb"),
                      req));
  EXPECT_TRUE(req.has_require_each_included_type());
  EXPECT_FALSE(ReadRequest<GetRandomPasswordRequest>("secretsmanager.GetRandomPassword", "{}")
                   .has_require_each_included_type());
  EXPECT_EQ(WriteResponse("secretsmanager.GetRandomPassword",
                          Proto<GetRandomPasswordResponse>(R"pb(random_password: "x\"y")pb")),
            R"({"RandomPassword":"x\"y"})");
}

TEST(AwsJsonSecretsTest, BatchGetSecretValue) {
  auto req = ReadRequest<BatchGetSecretValueRequest>("secretsmanager.BatchGetSecretValue",
                                                     R"({"SecretIdList":["a","b"]})");
  EXPECT_TRUE(ProtoEq(
      Proto<BatchGetSecretValueRequest>(R"pb(secret_id_list: "a" secret_id_list: "b")pb"), req));
  req = ReadRequest<BatchGetSecretValueRequest>(
      "secretsmanager.BatchGetSecretValue",
      R"({"Filters":[{"Key":"tag-key","Values":["team"]}],"MaxResults":20,"NextToken":"t"})");
  EXPECT_TRUE(ProtoEq(Proto<BatchGetSecretValueRequest>(R"pb(
                        filters { key: "tag-key" values: "team" }
                        max_results: 20
                        next_token: "t"
                      )pb"),
                      req));

  auto resp = Proto<BatchGetSecretValueResponse>(R"pb(
    secret_values {
      arn: "a1"
      name: "a"
      version_id: "v1"
      secret_string: "s"
      version_stages: "AWSCURRENT"
      created_date { seconds: 1700000000 }
    }
    errors {
      secret_id: "b"
      error_code: "ResourceNotFoundException"
      message: "Secrets Manager can't find the specified secret."
    }
  )pb");
  EXPECT_EQ(WriteResponse("secretsmanager.BatchGetSecretValue", resp),
            R"({"SecretValues":[{"ARN":"a1","Name":"a","VersionId":"v1","SecretString":"s",)"
            R"("VersionStages":["AWSCURRENT"],"CreatedDate":1700000000}],)"
            R"("Errors":[{"SecretId":"b","ErrorCode":"ResourceNotFoundException",)"
            R"("Message":"Secrets Manager can't find the specified secret."}]})");
  EXPECT_EQ(WriteResponse("secretsmanager.BatchGetSecretValue", BatchGetSecretValueResponse()),
            R"({"SecretValues":[],"Errors":[]})");
}

TEST(AwsJsonSecretsTest, ResourcePolicies) {
  auto put = ReadRequest<PutResourcePolicyRequest>(
      "secretsmanager.PutResourcePolicy",
      R"({"SecretId":"prod/db","ResourcePolicy":"{\"Version\":\"2012-10-17\"}","BlockPublicPolicy":true})");
  EXPECT_TRUE(ProtoEq(Proto<PutResourcePolicyRequest>(R"pb(
                        secret_id: "prod/db"
                        resource_policy: "{\"Version\":\"2012-10-17\"}"
                        block_public_policy: true
                      )pb"),
                      put));
  EXPECT_EQ(WriteResponse("secretsmanager.GetResourcePolicy",
                          Proto<GetResourcePolicyResponse>(R"pb(arn: "a" name: "n")pb")),
            R"({"ARN":"a","Name":"n"})");
  // PolicyValidationPassed and ValidationErrors are always there.
  EXPECT_EQ(
      WriteResponse("secretsmanager.ValidateResourcePolicy", ValidateResourcePolicyResponse()),
      R"({"PolicyValidationPassed":false,"ValidationErrors":[]})");
  EXPECT_EQ(WriteResponse("secretsmanager.ValidateResourcePolicy",
                          Proto<ValidateResourcePolicyResponse>(R"pb(
                            validation_errors { check_name: "public_policy" error_message: "m" }
                          )pb")),
            R"({"PolicyValidationPassed":false,"ValidationErrors":)"
            R"([{"CheckName":"public_policy","ErrorMessage":"m"}]})");
}

TEST(AwsJsonSecretsTest, RotateSecret) {
  auto req = ReadRequest<RotateSecretRequest>(
      "secretsmanager.RotateSecret",
      R"({"SecretId":"prod/db","RotationLambdaARN":"postgres","RotateImmediately":false,)"
      R"("RotationRules":{"AutomaticallyAfterDays":30,"Duration":"3h",)"
      R"js("ScheduleExpression":"rate(10 days)"},"ClientRequestToken":"t"})js");
  EXPECT_TRUE(ProtoEq(Proto<RotateSecretRequest>(R"pb(
                        secret_id: "prod/db"
                        rotation_worker: "postgres"
                        rotate_immediately: false
                        rotation_rules {
                          automatically_after_days: 30
                          duration: "3h"
                          schedule_expression: "rate(10 days)"
                        }
                        client_request_token: "t"
                      )pb"),
                      req));
  EXPECT_TRUE(req.has_rotate_immediately());
  EXPECT_EQ(
      WriteResponse("secretsmanager.CancelRotateSecret",
                    Proto<CancelRotateSecretResponse>(R"pb(arn: "a" name: "n" version_id: "p")pb")),
      R"({"ARN":"a","Name":"n","VersionId":"p"})");
}

}  // namespace
}  // namespace coffer::gateway
