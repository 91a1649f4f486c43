#include "tools/cofferctl/command_table.h"

#include <set>

#include "coffer/kms/v1/kms.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coffer::cofferctl {
namespace {

using ::testing::HasSubstr;

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
      {{"kms", "coffer.kms.v1.KeyManagement", "localhost:7701"},
       {"ghost", "coffer.ghost.v1.Ghost", "localhost:1"}});
  ASSERT_EQ(table.groups().size(), 1u);
  EXPECT_EQ(table.groups()[0].spec.name, "kms");
  EXPECT_EQ(table.FindGroup("ghost"), nullptr);
}

TEST(CommandTableTest, KnownGroupsIncludeLaterServices) {
  std::set<std::string> names;
  for (const GroupSpec& spec : KnownGroups()) names.insert(spec.name);
  EXPECT_EQ(names, (std::set<std::string>{"kms", "secrets", "params"}));
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

  const std::string gdk =
      OperationUsage(*kms, *kms->service->FindMethodByName("GenerateDataKey"));
  EXPECT_THAT(gdk, HasSubstr("--number-of-bytes=<int32>"));
  EXPECT_THAT(gdk, HasSubstr("DataKeySpec: AES_256, AES_128"));
}

}  // namespace
}  // namespace coffer::cofferctl
