#include "tools/cofferctl/command_table.h"

#include <set>

#include "coffer/kms/v1/kms.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coffer::cofferctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(OperationNameTest, KebabCase) {
  EXPECT_EQ(OperationName("CreateKey"), "create-key");
  EXPECT_EQ(OperationName("GenerateDataKeyWithoutPlaintext"),
            "generate-data-key-without-plaintext");
  EXPECT_EQ(OperationName("ReEncrypt"), "re-encrypt");
  EXPECT_EQ(OperationName("Encrypt"), "encrypt");
  EXPECT_EQ(OperationName("GetHTTPConfig"), "get-http-config");
  EXPECT_EQ(OperationName("PutSecretValue2"), "put-secret-value2");
}

TEST(OperationNameTest, RpcNameIsTheInverse) {
  EXPECT_EQ(RpcName("create-key"), "CreateKey");
  EXPECT_EQ(RpcName("generate-data-key-without-plaintext"), "GenerateDataKeyWithoutPlaintext");
}

TEST(CommandTableTest, KmsGroupFromGeneratedPool) {
  CommandTable table = CommandTable::FromGeneratedPool();
  const Group* kms = table.FindGroup("kms");
  ASSERT_NE(kms, nullptr);
  EXPECT_EQ(kms->service->full_name(), "coffer.kms.v1.KeyManagement");
  EXPECT_EQ(kms->spec.default_address, "localhost:7701");
  EXPECT_EQ(table.FindGroup("nope"), nullptr);
}

TEST(CommandTableTest, EveryKmsMethodMapsBothWays) {
  CommandTable table = CommandTable::FromGeneratedPool();
  const Group* kms = table.FindGroup("kms");
  ASSERT_NE(kms, nullptr);
  ASSERT_EQ(kms->service->method_count(), 26);
  std::set<std::string> names;
  for (int i = 0; i < kms->service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* method = kms->service->method(i);
    const std::string op = OperationName(method->name());
    SCOPED_TRACE(op);
    EXPECT_EQ(RpcName(op), method->name());
    EXPECT_EQ(CommandTable::FindOperation(*kms, op), method);
    EXPECT_TRUE(names.insert(op).second) << "duplicate operation name";
  }
  EXPECT_TRUE(names.count("generate-data-key-without-plaintext"));
  EXPECT_TRUE(names.count("list-resource-tags"));
  EXPECT_EQ(CommandTable::FindOperation(*kms, "CreateKey"),
            kms->service->FindMethodByName("CreateKey"));
  EXPECT_EQ(CommandTable::FindOperation(*kms, "create_key"), nullptr);
  EXPECT_EQ(CommandTable::FindOperation(*kms, "nope"), nullptr);
}

TEST(CommandTableTest, GroupsWithoutLinkedServiceAreSkipped) {
  CommandTable table = CommandTable::FromPool(
      *google::protobuf::DescriptorPool::generated_pool(),
      {{"kms", "coffer.kms.v1.KeyManagement", "localhost:7701", "spiffe://coffer.local/kms"},
       {"ghost", "coffer.ghost.v1.Ghost", "localhost:1", ""}});
  ASSERT_EQ(table.groups().size(), 1u);
  EXPECT_EQ(table.groups()[0].spec.name, "kms");
  EXPECT_EQ(table.FindGroup("ghost"), nullptr);
}

TEST(CommandTableTest, KnownGroupsIncludeLaterServices) {
  std::set<std::string> names;
  for (const GroupSpec& spec : KnownGroups()) names.insert(spec.name);
  EXPECT_EQ(names, (std::set<std::string>{"kms", "secrets", "params", "access-keys"}));
}

TEST(UsageTest, ListsOperationsAndFields) {
  CommandTable table = CommandTable::FromGeneratedPool();
  const Group* kms = table.FindGroup("kms");
  ASSERT_NE(kms, nullptr);
  EXPECT_THAT(TopUsage(table), HasSubstr("kms"));
  const std::string group = GroupUsage(*kms);
  EXPECT_THAT(group, HasSubstr("  create-key\n"));
  EXPECT_THAT(group, HasSubstr("  generate-data-key-without-plaintext\n"));

  const std::string encrypt = OperationUsage(*kms, *kms->service->FindMethodByName("Encrypt"));
  EXPECT_THAT(encrypt, HasSubstr("--key-id=<string>"));
  EXPECT_THAT(encrypt, HasSubstr("--plaintext=<base64>"));
  EXPECT_THAT(encrypt, HasSubstr("--plaintext-file=<path>"));
  EXPECT_THAT(encrypt, HasSubstr("--encryption-context <key>=<value>"));
  EXPECT_THAT(encrypt, HasSubstr("map<string, string>"));
  EXPECT_THAT(encrypt, HasSubstr("--cli-input-json"));
  EXPECT_THAT(encrypt, HasSubstr("--address=<host:port>"));

  const std::string create = OperationUsage(*kms, *kms->service->FindMethodByName("CreateKey"));
  EXPECT_THAT(create, HasSubstr("--tags tag_key=tag_value"));
  EXPECT_THAT(create, HasSubstr("KeySpec: SYMMETRIC_DEFAULT"));

  const std::string gdk = OperationUsage(*kms, *kms->service->FindMethodByName("GenerateDataKey"));
  EXPECT_THAT(gdk, HasSubstr("--number-of-bytes=<int32>"));
  EXPECT_THAT(gdk, HasSubstr("DataKeySpec: AES_256, AES_128"));
}

TEST(CommandTableTest, ParamsGroupResolvesEveryParameterStoreMethod) {
  CommandTable table = CommandTable::FromGeneratedPool();
  const Group* params = table.FindGroup("params");
  ASSERT_NE(params, nullptr);
  EXPECT_EQ(params->service,
            coffer::params::v1::PutParameterRequest::descriptor()->file()->FindServiceByName(
                "ParameterStore"));
  EXPECT_EQ(params->spec.default_address, "localhost:7702");
  ASSERT_EQ(params->service->method_count(), 14);
  std::set<std::string> names;
  for (int i = 0; i < params->service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* method = params->service->method(i);
    const std::string op = OperationName(method->name());
    SCOPED_TRACE(op);
    EXPECT_EQ(RpcName(op), method->name());
    EXPECT_EQ(CommandTable::FindOperation(*params, op), method);
    EXPECT_TRUE(names.insert(op).second) << "duplicate operation name";
  }
  EXPECT_EQ(names, (std::set<std::string>{
                       "put-parameter", "get-parameter", "get-parameters", "get-parameters-by-path",
                       "describe-parameters", "get-parameter-history", "delete-parameter",
                       "delete-parameters", "label-parameter-version", "unlabel-parameter-version",
                       "add-tags-to-resource", "remove-tags-from-resource",
                       "list-tags-for-resource", "watch-parameters"}));
  const google::protobuf::MethodDescriptor* watch =
      CommandTable::FindOperation(*params, "watch-parameters");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->server_streaming());
  EXPECT_EQ(watch->output_type()->full_name(), "coffer.v1.ChangeEvent");
}

TEST(CommandTableTest, EveryKnownGroupIsLinked) {
  CommandTable table = CommandTable::FromGeneratedPool();
  for (const GroupSpec& spec : KnownGroups()) {
    EXPECT_NE(table.FindGroup(spec.name), nullptr) << spec.name;
  }
}

TEST(UsageTest, ServerStreamsAreMarkedNotRefused) {
  CommandTable table = CommandTable::FromGeneratedPool();
  const Group* params = table.FindGroup("params");
  const Group* secrets = table.FindGroup("secrets");
  ASSERT_NE(params, nullptr);
  ASSERT_NE(secrets, nullptr);
  EXPECT_THAT(GroupUsage(*params),
              HasSubstr("  watch-parameters (server stream: one JSON object per line)\n"));
  EXPECT_THAT(GroupUsage(*params), HasSubstr("  put-parameter\n"));
  EXPECT_THAT(GroupUsage(*secrets),
              HasSubstr("  watch-secrets (server stream: one JSON object per line)\n"));
  for (const std::string& text : {GroupUsage(*params), GroupUsage(*secrets), TopUsage(table)}) {
    EXPECT_THAT(text, Not(HasSubstr("not supported yet")));
  }

  const std::string watch =
      OperationUsage(*params, *params->service->FindMethodByName("WatchParameters"));
  EXPECT_THAT(watch, HasSubstr("-> stream coffer.v1.ChangeEvent"));
  EXPECT_THAT(watch, HasSubstr("--path=<string>"));
  EXPECT_THAT(watch, HasSubstr("--recursive[=true|false]"));
  EXPECT_THAT(watch, HasSubstr("--max-events=<n>"));
  EXPECT_THAT(watch, HasSubstr("default: none"));
  EXPECT_THAT(watch, Not(HasSubstr("--output-file")));

  const std::string put =
      OperationUsage(*params, *params->service->FindMethodByName("PutParameter"));
  EXPECT_THAT(put, HasSubstr("ParameterType: STRING, STRING_LIST, SECURE_STRING"));
  EXPECT_THAT(put, HasSubstr("--tags key=value"));
  EXPECT_THAT(put, Not(HasSubstr("--max-events")));
  EXPECT_THAT(put, HasSubstr("(default 30s)"));
}

TEST(UsageTest, TopUsageListsTheWatchAliases) {
  CommandTable table = CommandTable::FromGeneratedPool();
  const std::string top = TopUsage(table);
  EXPECT_THAT(top, HasSubstr("cofferctl watch params --path=/app [--recursive]"));
  EXPECT_THAT(top, HasSubstr("same as `cofferctl params watch-parameters`"));
  EXPECT_THAT(top, HasSubstr("cofferctl watch secrets [--name-prefix=P]"));
  EXPECT_THAT(top, HasSubstr("same as `cofferctl secrets watch-secrets`"));
  EXPECT_THAT(WatchUsage(table), HasSubstr("Usage: cofferctl watch <target>"));

  // Only aliases whose group is linked are offered.
  CommandTable kms_only = CommandTable::FromPool(
      *google::protobuf::DescriptorPool::generated_pool(),
      {{"kms", "coffer.kms.v1.KeyManagement", "localhost:7701", "spiffe://coffer.local/kms"}});
  EXPECT_EQ(WatchUsageLines(kms_only), "");
  EXPECT_THAT(TopUsage(kms_only), Not(HasSubstr("watch")));
}

}  // namespace
}  // namespace coffer::cofferctl
