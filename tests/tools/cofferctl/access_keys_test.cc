// `cofferctl access-keys`: the group of coffer.iam.v1.AccessKeys, its short
// forms (create, list, disable, enable, delete) as the command table, the
// usage texts, ParseInvocation and BuildOperationRequest see them, and what
// create and list print.
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coffer/iam/v1/access_keys.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tools/cofferctl/command_table.h"
#include "tools/cofferctl/invocation.h"
#include "tools/cofferctl/operation_docs.h"
#include "tools/cofferctl/output.h"
#include "tools/cofferctl/short_forms.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;
namespace iam = coffer::iam::v1;
using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kId[] = "AKCOEXAMPLE234567ABC";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";  // 40 characters

const Group& AccessKeysGroup(const CommandTable& table) {
  const Group* group = table.FindGroup("access-keys");
  EXPECT_NE(group, nullptr);
  return *group;
}

EnvLookup NoEnv() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

// What the binary does with a command line before it connects.
absl::StatusOr<std::unique_ptr<pb::Message>> Prepare(const std::vector<std::string>& args) {
  absl::StatusOr<Invocation> inv = ParseInvocation(args, NoEnv());
  if (!inv.ok()) return inv.status();
  const CommandTable table = CommandTable::FromGeneratedPool();
  const Group* group = table.FindGroup(inv->group);
  if (group == nullptr) return absl::NotFoundError("no group");
  const pb::MethodDescriptor* method = CommandTable::FindOperation(*group, inv->operation);
  if (method == nullptr) return absl::NotFoundError("no operation");
  return BuildOperationRequest(*method, inv->request_args, inv->short_form);
}

// ---- the group and its operations -------------------------------------------

TEST(AccessKeysGroupTest, EveryRpcIsAnOperationOfTheKmsAddressAndIdentity) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  const Group& group = AccessKeysGroup(table);
  EXPECT_EQ(group.service,
            iam::CreateAccessKeyRequest::descriptor()->file()->FindServiceByName("AccessKeys"));
  EXPECT_EQ(group.spec.service_name, "coffer.iam.v1.AccessKeys");
  EXPECT_EQ(group.spec.default_address, "localhost:7701");
  EXPECT_EQ(group.spec.default_server_spiffe_id, "spiffe://coffer.local/kms");
  ASSERT_EQ(group.service->method_count(), 5);
  std::set<std::string> names;
  for (int i = 0; i < group.service->method_count(); ++i) {
    const pb::MethodDescriptor* method = group.service->method(i);
    const std::string op = OperationName(method->name());
    SCOPED_TRACE(op);
    EXPECT_EQ(RpcName(op), method->name());
    EXPECT_EQ(CommandTable::FindOperation(group, op), method);
    EXPECT_FALSE(method->client_streaming() || method->server_streaming());
    names.insert(op);
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"create-access-key", "list-access-keys", "update-access-key",
                                   "delete-access-key", "get-signing-key"}));
}

TEST(AccessKeysGroupTest, ShortFormsNameOperationsOfTheirGroupAndNoneIsAnOperation) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  std::set<std::pair<std::string, std::string>> seen;
  for (const ShortForm& form : ShortForms()) {
    SCOPED_TRACE(form.group + " " + form.name);
    const Group* group = table.FindGroup(form.group);
    ASSERT_NE(group, nullptr);
    const pb::MethodDescriptor* method = CommandTable::FindOperation(*group, form.operation);
    ASSERT_NE(method, nullptr);
    EXPECT_EQ(CommandTable::FindOperation(*group, form.name), nullptr) << "shadows an operation";
    EXPECT_TRUE(seen.emplace(form.group, form.name).second) << "listed twice";
    EXPECT_EQ(FindShortForm(form.group, form.name), &form);
    for (const Preset& preset : form.presets) {
      EXPECT_NE(method->input_type()->FindFieldByName(preset.field), nullptr) << preset.field;
    }
  }
  const std::map<std::string, std::string> expected = {{"create", "create-access-key"},
                                                       {"list", "list-access-keys"},
                                                       {"disable", "update-access-key"},
                                                       {"enable", "update-access-key"},
                                                       {"delete", "delete-access-key"}};
  std::map<std::string, std::string> got;
  for (const ShortForm* form : ShortFormsOf("access-keys")) got[form->name] = form->operation;
  EXPECT_EQ(got, expected);
  EXPECT_EQ(FindShortForm("kms", "create"), nullptr);
  EXPECT_EQ(FindShortForm("access-keys", "update"), nullptr);
  EXPECT_EQ(ShortFormExpansion(*FindShortForm("access-keys", "disable")),
            "update-access-key --status=ACCESS_KEY_STATUS_INACTIVE");
  EXPECT_EQ(ShortFormExpansion(*FindShortForm("access-keys", "create")), "create-access-key");
}

TEST(AccessKeysGroupTest, ParseInvocationResolvesAShortFormToItsOperation) {
  auto inv = ParseInvocation({"access-keys", "disable", "--access-key-id", kId}, NoEnv());
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->group, "access-keys");
  EXPECT_EQ(inv->operation, "update-access-key");
  ASSERT_NE(inv->short_form, nullptr);
  EXPECT_EQ(inv->short_form->name, "disable");
  EXPECT_THAT(inv->request_args, ::testing::ElementsAre("--access-key-id", kId));

  auto full = ParseInvocation({"access-keys", "update-access-key"}, NoEnv());
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->operation, "update-access-key");
  EXPECT_EQ(full->short_form, nullptr);

  // A short form is one of its group only.
  auto other = ParseInvocation({"kms", "disable"}, NoEnv());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->operation, "disable");
  EXPECT_EQ(other->short_form, nullptr);

  auto help = ParseInvocation({"access-keys", "create", "--help"}, NoEnv());
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->help);
  EXPECT_EQ(help->operation, "create-access-key");
}

TEST(AccessKeysGroupTest, AddressComesFromCofferAccessKeysAddress) {
  EXPECT_EQ(AddressVariable("access-keys"), "COFFER_ACCESS_KEYS_ADDRESS");
  auto inv = ParseInvocation({"access-keys", "list"}, NoEnv());
  ASSERT_TRUE(inv.ok());
  ApplyAddressDefault(*inv, "localhost:7701",
                      [](const std::string& name) -> std::optional<std::string> {
                        if (name == "COFFER_ACCESS_KEYS_ADDRESS") return "kms.internal:7701";
                        if (name == "COFFER_ADDRESS") return "other:1";
                        return std::nullopt;
                      });
  EXPECT_EQ(inv->connection.address, "kms.internal:7701");
}

// ---- usage ------------------------------------------------------------------

TEST(AccessKeysUsageTest, GroupUsageListsOperationsThenShortForms) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  const std::string usage = GroupUsage(AccessKeysGroup(table));
  EXPECT_THAT(usage, HasSubstr("Operations of coffer.iam.v1.AccessKeys:\n  create-access-key\n"));
  EXPECT_THAT(usage, HasSubstr("  get-signing-key\n"));
  EXPECT_THAT(usage, HasSubstr("\nShort forms:\n"
                               "  create   same as create-access-key\n"
                               "  list     same as list-access-keys\n"
                               "  disable  same as update-access-key "
                               "--status=ACCESS_KEY_STATUS_INACTIVE\n"
                               "  enable   same as update-access-key "
                               "--status=ACCESS_KEY_STATUS_ACTIVE\n"
                               "  delete   same as delete-access-key\n"));
  EXPECT_THAT(TopUsage(table),
              HasSubstr("  access-keys\tcoffer.iam.v1.AccessKeys (default localhost:7701)\n"));
  // Groups without short forms list none.
  EXPECT_THAT(GroupUsage(*table.FindGroup("kms")), Not(HasSubstr("Short forms")));
}

TEST(AccessKeysUsageTest, ShortFormHelpNamesWhatItStandsForWithoutItsPresets) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  const Group& group = AccessKeysGroup(table);
  const pb::MethodDescriptor& update = *group.service->FindMethodByName("UpdateAccessKey");
  const std::string disable =
      OperationUsage(group, update, FindShortForm("access-keys", "disable"));
  EXPECT_THAT(disable, HasSubstr("Usage: cofferctl access-keys disable "
                                 "--access-key-id=<access_key_id> [flags]\n\n"
                                 "Same as `cofferctl access-keys update-access-key "
                                 "--status=ACCESS_KEY_STATUS_INACTIVE`.\n"
                                 "--status: set by this short form; giving it again is an "
                                 "error.\n"));
  EXPECT_THAT(disable, HasSubstr("  --access-key-id=<string>  (required)\n"));
  EXPECT_THAT(disable, Not(HasSubstr("--status=<enum>")));
  EXPECT_THAT(disable, HasSubstr("Active <-> Inactive."));  // the proto's comment

  const std::string full = OperationUsage(group, update);
  EXPECT_THAT(full, HasSubstr("Usage: cofferctl access-keys update-access-key "
                              "--access-key-id=<access_key_id> --status=<status> [flags]\n"));
  EXPECT_THAT(full, HasSubstr("--status=<enum>  (required)"));
  EXPECT_THAT(full, HasSubstr("AccessKeyStatus: ACTIVE, INACTIVE"));
  EXPECT_THAT(full, Not(HasSubstr("Same as")));

  const std::string create =
      OperationUsage(group, *group.service->FindMethodByName("CreateAccessKey"),
                     FindShortForm("access-keys", "create"));
  EXPECT_THAT(create, HasSubstr("Usage: cofferctl access-keys create --identity=<identity>"));
  EXPECT_THAT(create, HasSubstr("it cannot be read again"));  // the proto's comment
  EXPECT_THAT(create, HasSubstr("--output=text prints access_key.access_key_id and "
                                "secret_access_key on one line, tab-separated"));
}

// ---- requests ---------------------------------------------------------------

TEST(AccessKeysRequestTest, DisableAndEnableSetTheStatus) {
  auto disable = Prepare({"access-keys", "disable", "--access-key-id", kId});
  ASSERT_TRUE(disable.ok()) << disable.status();
  iam::UpdateAccessKeyRequest expected;
  expected.set_access_key_id(kId);
  expected.set_status(iam::ACCESS_KEY_STATUS_INACTIVE);
  EXPECT_EQ((*disable)->SerializeAsString(), expected.SerializeAsString());

  auto enable = Prepare({"access-keys", "enable", "--access-key-id=" + std::string(kId)});
  ASSERT_TRUE(enable.ok()) << enable.status();
  expected.set_status(iam::ACCESS_KEY_STATUS_ACTIVE);
  EXPECT_EQ((*enable)->SerializeAsString(), expected.SerializeAsString());

  // The id can come whole from --cli-input-json too.
  auto json = Prepare({"access-keys", "disable",
                       "--cli-input-json={\"access_key_id\":\"" + std::string(kId) + "\"}"});
  ASSERT_TRUE(json.ok()) << json.status();
  expected.set_status(iam::ACCESS_KEY_STATUS_INACTIVE);
  EXPECT_EQ((*json)->SerializeAsString(), expected.SerializeAsString());
}

TEST(AccessKeysRequestTest, APresetFieldGivenAgainIsAUsageError) {
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{"--status=ACTIVE"},
                                             {"--status", "INACTIVE"},
                                             {"--status=INACTIVE"},
                                             {"--status=not-a-status"},
                                             {"--status=ACCESS_KEY_STATUS_UNSPECIFIED"}}) {
    for (const char* form : {"disable", "enable"}) {
      std::vector<std::string> args = {"access-keys", form, "--access-key-id", kId};
      args.insert(args.end(), extra.begin(), extra.end());
      SCOPED_TRACE(absl::StrJoin(args, " "));
      auto request = Prepare(args);
      EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(request.status().message(),
                  HasSubstr(absl::StrCat("--status: `access-keys ", form, "` sets it itself")));
      EXPECT_THAT(request.status().message(), HasSubstr("use `access-keys update-access-key`"));
    }
  }
  auto in_json = Prepare({"access-keys", "disable", "--access-key-id", kId,
                          R"(--cli-input-json={"status":"ACCESS_KEY_STATUS_ACTIVE"})"});
  EXPECT_EQ(in_json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(in_json.status().message(),
              HasSubstr("--cli-input-json: sets status, which `access-keys disable` sets itself"));

  // The operation itself takes --status, and needs it.
  auto full =
      Prepare({"access-keys", "update-access-key", "--access-key-id", kId, "--status", "INACTIVE"});
  ASSERT_TRUE(full.ok()) << full.status();
  auto missing = Prepare({"access-keys", "update-access-key", "--access-key-id", kId});
  EXPECT_EQ(missing.status().message(), "--status: required");
}

TEST(AccessKeysRequestTest, OtherShortFormsAreTheirOperations) {
  auto create = Prepare({"access-keys", "create", "--identity", "spiffe://coffer.local/app/ci",
                         "--description", "CI"});
  ASSERT_TRUE(create.ok()) << create.status();
  iam::CreateAccessKeyRequest expected_create;
  expected_create.set_identity("spiffe://coffer.local/app/ci");
  expected_create.set_description("CI");
  EXPECT_EQ((*create)->SerializeAsString(), expected_create.SerializeAsString());
  EXPECT_EQ(Prepare({"access-keys", "create"}).status().message(), "--identity: required");

  auto list = Prepare({"access-keys", "list", "--max-items", "2", "--marker", kId});
  ASSERT_TRUE(list.ok()) << list.status();
  iam::ListAccessKeysRequest expected_list;
  expected_list.set_max_items(2);
  expected_list.set_marker(kId);
  EXPECT_EQ((*list)->SerializeAsString(), expected_list.SerializeAsString());
  EXPECT_TRUE(Prepare({"access-keys", "list"}).ok());

  auto del = Prepare({"access-keys", "delete", "--access-key-id", kId});
  ASSERT_TRUE(del.ok());
  EXPECT_EQ((*del)->GetDescriptor(), iam::DeleteAccessKeyRequest::descriptor());
  EXPECT_EQ(Prepare({"access-keys", "delete"}).status().message(), "--access-key-id: required");

  // Unknown flags are still refused by name.
  auto unknown = Prepare({"access-keys", "disable", "--access-key-id", kId, "--statuz=x"});
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown flag --statuz"));
}

// ---- output -----------------------------------------------------------------

iam::AccessKeyMetadata Metadata(const std::string& id, iam::AccessKeyStatus status) {
  iam::AccessKeyMetadata metadata;
  metadata.set_access_key_id(id);
  metadata.set_identity("spiffe://coffer.local/app/catagram");
  metadata.set_status(status);
  *metadata.mutable_create_date() = TimeUtil::SecondsToTimestamp(1893456000);  // 2030-01-01
  metadata.set_description("for the AWS CLI");
  return metadata;
}

OutputOptions OptionsFor(const std::string& rpc, OutputFormat format) {
  const pb::MethodDescriptor* method = iam::CreateAccessKeyRequest::descriptor()
                                           ->file()
                                           ->FindServiceByName("AccessKeys")
                                           ->FindMethodByName(rpc);
  EXPECT_NE(method, nullptr);
  const OperationDoc& doc = DocFor(*method);
  return OutputOptions{"", "", format, doc.text_value, doc.table_columns};
}

TEST(AccessKeysOutputTest, CreatePrintsTheIdAndTheSecretForAScript) {
  iam::CreateAccessKeyResponse response;
  *response.mutable_access_key() = Metadata(kId, iam::ACCESS_KEY_STATUS_ACTIVE);
  response.set_secret_access_key(kSecret);

  auto text = RenderResponse(response, OptionsFor("CreateAccessKey", OutputFormat::kText));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, absl::StrCat(kId, "\t", kSecret, "\n"));

  auto table = RenderResponse(response, OptionsFor("CreateAccessKey", OutputFormat::kTable));
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table, absl::StrCat("access_key.access_key_id  ", kId,
                                 "\n"
                                 "access_key.identity       spiffe://coffer.local/app/catagram\n"
                                 "access_key.status         ACTIVE\n"
                                 "access_key.create_date    2030-01-01T00:00:00Z\n"
                                 "access_key.description    for the AWS CLI\n"
                                 "secret_access_key         ",
                                 kSecret, "\n"));

  auto json = RenderResponse(response, OptionsFor("CreateAccessKey", OutputFormat::kJson));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr(absl::StrCat("\"secret_access_key\": \"", kSecret, "\"")));
  EXPECT_THAT(*json, HasSubstr("\"status\": \"ACCESS_KEY_STATUS_ACTIVE\""));

  // --output-file is for bytes fields: the secret is not one, so it is
  // refused before any call (main checks with the same function).
  OutputOptions to_file = OptionsFor("CreateAccessKey", OutputFormat::kText);
  to_file.file = "/nonexistent/never-written";
  auto refused = RenderResponse(response, to_file);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), Not(HasSubstr(kSecret)));
}

TEST(AccessKeysOutputTest, ListIsATableOfTheMainColumnsAndTextRows) {
  iam::ListAccessKeysResponse response;
  *response.add_access_keys() = Metadata(kId, iam::ACCESS_KEY_STATUS_ACTIVE);
  iam::AccessKeyMetadata second = Metadata("AKCOEXAMPLE234567ABD", iam::ACCESS_KEY_STATUS_INACTIVE);
  second.clear_description();
  *response.add_access_keys() = second;
  response.set_is_truncated(true);
  response.set_marker("AKCOEXAMPLE234567ABD");

  auto table = RenderResponse(response, OptionsFor("ListAccessKeys", OutputFormat::kTable));
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table,
            "access_key_id         identity                            status    "
            "create_date           description\n"
            "--------------------  ----------------------------------  --------  "
            "--------------------  ---------------\n"
            "AKCOEXAMPLE234567ABC  spiffe://coffer.local/app/catagram  ACTIVE    "
            "2030-01-01T00:00:00Z  for the AWS CLI\n"
            "AKCOEXAMPLE234567ABD  spiffe://coffer.local/app/catagram  INACTIVE  "
            "2030-01-01T00:00:00Z\n"
            "\n"
            "is_truncated  true\n"
            "marker        AKCOEXAMPLE234567ABD\n");

  auto text = RenderResponse(response, OptionsFor("ListAccessKeys", OutputFormat::kText));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "AKCOEXAMPLE234567ABC\tspiffe://coffer.local/app/catagram\tACTIVE\t"
            "2030-01-01T00:00:00Z\tfor the AWS CLI\n"
            "AKCOEXAMPLE234567ABD\tspiffe://coffer.local/app/catagram\tINACTIVE\t"
            "2030-01-01T00:00:00Z\t\n"
            "IS_TRUNCATED\ttrue\n"
            "MARKER\tAKCOEXAMPLE234567ABD\n");
}

}  // namespace
}  // namespace coffer::cofferctl
