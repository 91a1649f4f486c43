// The operation table, the naming tables against the protos, and every
// operation end to end on messages with every field set.
#include <gtest/gtest.h>

#include <set>

#include "coffer/kms/v1/kms.pb.h"
#include "libs/common/json.h"
#include "services/gateway/aws_json.h"
#include "services/gateway/aws_names.h"
#include "services/gateway/aws_shapes.h"
#include "tests/services/gateway/gateway_test_util.h"
#include "tests/services/gateway/sample_messages.h"

namespace coffer::gateway {
namespace {

using testing::Op;
using testing::ProtoEq;

// Every operation, spelled out: an RPC added to a proto fails here until
// someone decides whether AWS has it (then it belongs here) or not (then
// aws_json.h lists it and BuildOperations leaves it out).
const std::set<std::string> kExpectedTargets = {
    "secretsmanager.CreateSecret",
    "secretsmanager.GetSecretValue",
    "secretsmanager.BatchGetSecretValue",
    "secretsmanager.PutSecretValue",
    "secretsmanager.UpdateSecret",
    "secretsmanager.UpdateSecretVersionStage",
    "secretsmanager.DescribeSecret",
    "secretsmanager.ListSecrets",
    "secretsmanager.ListSecretVersionIds",
    "secretsmanager.DeleteSecret",
    "secretsmanager.RestoreSecret",
    "secretsmanager.TagResource",
    "secretsmanager.UntagResource",
    "secretsmanager.GetRandomPassword",
    "secretsmanager.PutResourcePolicy",
    "secretsmanager.GetResourcePolicy",
    "secretsmanager.DeleteResourcePolicy",
    "secretsmanager.ValidateResourcePolicy",
    "secretsmanager.RotateSecret",
    "secretsmanager.CancelRotateSecret",
    "AmazonSSM.PutParameter",
    "AmazonSSM.GetParameter",
    "AmazonSSM.GetParameters",
    "AmazonSSM.GetParametersByPath",
    "AmazonSSM.DescribeParameters",
    "AmazonSSM.GetParameterHistory",
    "AmazonSSM.DeleteParameter",
    "AmazonSSM.DeleteParameters",
    "AmazonSSM.LabelParameterVersion",
    "AmazonSSM.UnlabelParameterVersion",
    "AmazonSSM.AddTagsToResource",
    "AmazonSSM.RemoveTagsFromResource",
    "AmazonSSM.ListTagsForResource",
    "TrentService.CreateKey",
    "TrentService.DescribeKey",
    "TrentService.ListKeys",
    "TrentService.UpdateKeyDescription",
    "TrentService.EnableKey",
    "TrentService.DisableKey",
    "TrentService.ScheduleKeyDeletion",
    "TrentService.CancelKeyDeletion",
    "TrentService.EnableKeyRotation",
    "TrentService.DisableKeyRotation",
    "TrentService.GetKeyRotationStatus",
    "TrentService.RotateKeyOnDemand",
    "TrentService.ListKeyRotations",
    "TrentService.CreateAlias",
    "TrentService.UpdateAlias",
    "TrentService.DeleteAlias",
    "TrentService.ListAliases",
    "TrentService.Encrypt",
    "TrentService.Decrypt",
    "TrentService.ReEncrypt",
    "TrentService.GenerateDataKey",
    "TrentService.GenerateDataKeyWithoutPlaintext",
    "TrentService.GenerateRandom",
    "TrentService.TagResource",
    "TrentService.UntagResource",
    "TrentService.ListResourceTags",
};

TEST(AwsOperationsTest, EveryUnaryRpcIsAnOperation) {
  std::set<std::string> targets;
  for (const AwsOperation& op : AllAwsOperations()) {
    EXPECT_TRUE(targets.insert(op.target).second) << op.target;
    ASSERT_NE(op.method, nullptr);
    EXPECT_FALSE(op.method->server_streaming() || op.method->client_streaming()) << op.target;
    EXPECT_EQ(op.target.substr(op.target.find('.') + 1), op.method->name());
  }
  EXPECT_EQ(targets, kExpectedTargets);
  EXPECT_EQ(AllAwsOperations().size(), 59u);
}

TEST(AwsOperationsTest, TargetsNameServiceAndSigningService) {
  const AwsOperation& get = Op("secretsmanager.GetSecretValue");
  EXPECT_EQ(get.signing_service, "secretsmanager");
  EXPECT_EQ(get.backend, Backend::kSecrets);
  EXPECT_EQ(get.method->full_name(), "coffer.secrets.v1.SecretsManager.GetSecretValue");

  const AwsOperation& param = Op("AmazonSSM.GetParameter");
  EXPECT_EQ(param.signing_service, "ssm");
  EXPECT_EQ(param.backend, Backend::kParams);
  EXPECT_EQ(param.method->full_name(), "coffer.params.v1.ParameterStore.GetParameter");

  const AwsOperation& encrypt = Op("TrentService.Encrypt");
  EXPECT_EQ(encrypt.signing_service, "kms");
  EXPECT_EQ(encrypt.backend, Backend::kKms);
  EXPECT_EQ(encrypt.method->full_name(), "coffer.kms.v1.KeyManagement.Encrypt");

  // The two TagResource operations are different methods.
  EXPECT_NE(Op("secretsmanager.TagResource").method, Op("TrentService.TagResource").method);
}

TEST(AwsOperationsTest, UnknownTargetsAreNull) {
  for (const char* target :
       {"", "secretsmanager", "secretsmanager.", "secretsmanager.WatchSecrets",
        "AmazonSSM.WatchParameters", "secretsmanager.getSecretValue",
        "SecretsManager.GetSecretValue", "secretsmanager.GetSecretValue ", "kms.Encrypt",
        "TrentService.CreateGrant", "AmazonSSM.SendCommand",
        "secretsmanager.ReplicateSecretToRegions", "AmazonSSM.GetSecretValue"}) {
    EXPECT_EQ(FindAwsOperation(target), nullptr) << target;
  }
}

TEST(AwsOperationsTest, TablesNameOnlyRealFieldsAndEveryEnumHasASpelling) {
  EXPECT_TRUE(internal::UnresolvedTableEntries().empty())
      << ::testing::PrintToString(internal::UnresolvedTableEntries());
}

TEST(AwsOperationsTest, DerivedCustomerMasterKeySpecListsKeySpecsValues) {
  AwsShape out = AwsResponseShape(Op("TrentService.DescribeKey"));
  const AwsShape& metadata = out.members.at(0).second;
  std::vector<std::string> key_spec, cmk_spec;
  for (const auto& [name, member] : metadata.members) {
    if (name == "KeySpec") key_spec = member.enum_values;
    if (name == "CustomerMasterKeySpec") cmk_spec = member.enum_values;
  }
  EXPECT_FALSE(key_spec.empty());
  EXPECT_EQ(cmk_spec, key_spec);
}

// Every request type, every field set, written as AWS JSON and read back:
// the names and value forms are the same both ways.
TEST(AwsOperationsTest, EveryRequestRoundTrips) {
  for (const AwsOperation& op : AllAwsOperations()) {
    std::unique_ptr<google::protobuf::Message> full(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(op.method->input_type())
            ->New());
    testing::FillEveryField(full.get());
    std::string json = internal::MessageToAwsJson(op.backend, *full);
    auto back = RequestFromAwsJson(op, json);
    ASSERT_TRUE(back.ok()) << op.target << ": " << back.status() << "\n" << json;
    EXPECT_TRUE(ProtoEq(*full, **back)) << op.target << "\n" << json;
  }
}

// What AwsRequestShape lists is what RequestFromAwsJson accepts.
TEST(AwsOperationsTest, EveryShapedRequestMemberIsAccepted) {
  for (const AwsOperation& op : AllAwsOperations()) {
    std::string body = testing::SampleRequestJson(AwsRequestShape(op));
    auto read = RequestFromAwsJson(op, body);
    EXPECT_TRUE(read.ok()) << op.target << ": " << read.status() << "\n" << body;
  }
}

// Every response type, every field set: valid JSON, every member named in
// the response shape.
TEST(AwsOperationsTest, EveryResponseWritesValidJsonInItsShape) {
  for (const AwsOperation& op : AllAwsOperations()) {
    std::unique_ptr<google::protobuf::Message> full(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(op.method->output_type())
            ->New());
    testing::FillEveryField(full.get());
    auto json = ResponseToAwsJson(op, *full);
    ASSERT_TRUE(json.ok()) << op.target << ": " << json.status();
    auto doc = ParseJson(*json);
    ASSERT_TRUE(doc.ok()) << op.target << ": " << doc.status() << "\n" << *json;
    ASSERT_EQ(doc->type, JsonValue::kObject);
    AwsShape shape = AwsResponseShape(op);
    std::set<std::string> shaped;
    for (const auto& [name, member] : shape.members) shaped.insert(name);
    for (const auto& [name, value] : doc->members) {
      EXPECT_TRUE(shaped.count(name)) << op.target << " writes " << name;
    }
  }
}

TEST(AwsOperationsTest, ResponseOfTheWrongTypeIsRefused) {
  kms::v1::EncryptResponse wrong;
  auto json = ResponseToAwsJson(Op("TrentService.Decrypt"), wrong);
  EXPECT_EQ(json.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AwsOperationsTest, EmptyResponsesAreEmptyObjects) {
  for (const char* target : {"secretsmanager.TagResource", "AmazonSSM.DeleteParameter",
                             "TrentService.EnableKey", "TrentService.CreateAlias"}) {
    const AwsOperation& op = Op(target);
    std::unique_ptr<google::protobuf::Message> empty(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(op.method->output_type())
            ->New());
    EXPECT_EQ(testing::WriteResponse(target, *empty), "{}") << target;
  }
}

}  // namespace
}  // namespace coffer::gateway
