#include "tools/cofferctl/text_output.h"

#include "coffer/iam/v1/access_keys.pb.h"
#include "coffer/kms/v1/kms.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace coffer::cofferctl {
namespace {

namespace sm = coffer::secrets::v1;
namespace pm = coffer::params::v1;
namespace iam = coffer::iam::v1;
using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- text: the value alone ---------------------------------------------

TEST(TextOutputTest, SecretStringAloneWithOneNewline) {
  sm::GetSecretValueResponse response;
  response.set_arn("arn:x");
  response.set_name("db");
  response.set_secret_string("pass\tword\nline two");  // exactly as stored, no escaping
  response.add_version_stages("AWSCURRENT");
  EXPECT_EQ(FormatText(response, "secret_string|secret_binary"), "pass\tword\nline two\n");
}

TEST(TextOutputTest, SecretBinaryInBase64WhenThereIsNoString) {
  sm::GetSecretValueResponse response;
  response.set_name("db");
  response.set_secret_binary(std::string("\x00\xff", 2));
  EXPECT_EQ(FormatText(response, "secret_string|secret_binary"), "AP8=\n");
  // An empty string that is set is the value (proto3 optional).
  response.set_secret_string("");
  EXPECT_EQ(FormatText(response, "secret_string|secret_binary"), "\n");
}

TEST(TextOutputTest, NestedValuePath) {
  pm::GetParameterResponse response;
  response.mutable_parameter()->set_name("/app/url");
  response.mutable_parameter()->set_value("https://example.test");
  EXPECT_EQ(FormatText(response, "parameter.value"), "https://example.test\n");
}

TEST(TextOutputTest, KmsBytesInBase64) {
  kms::v1::EncryptResponse response;
  response.set_ciphertext_blob("CT");
  response.set_key_id("arn:k");
  EXPECT_EQ(FormatText(response, "ciphertext_blob"), "Q1Q=\n");
}

// "a,b": several values on one line, tab-separated, so a script reads them
// with one `read`; escaped like any row, and only when every one is set.
TEST(TextOutputTest, SeveralValuesOnOneLine) {
  iam::CreateAccessKeyResponse response;
  response.mutable_access_key()->set_access_key_id("AKCOEXAMPLE234567ABC");
  response.set_secret_access_key("abc/def+ghi");
  EXPECT_EQ(FormatText(response, "access_key.access_key_id,secret_access_key"),
            "AKCOEXAMPLE234567ABC\tabc/def+ghi\n");
  response.set_secret_access_key("a\tb");
  EXPECT_EQ(FormatText(response, "access_key.access_key_id,secret_access_key"),
            "AKCOEXAMPLE234567ABC\ta\\tb\n");
  // One of them unset: the next choice, or else the generic rows.
  response.clear_secret_access_key();
  EXPECT_EQ(
      FormatText(response, "access_key.access_key_id,secret_access_key|access_key.access_key_id"),
      "AKCOEXAMPLE234567ABC\n");
  EXPECT_EQ(FormatText(response, "access_key.access_key_id,secret_access_key"),
            "\nACCESS_KEY\tAKCOEXAMPLE234567ABC\t\t\t\t\n");
}

// ---- text: rows ---------------------------------------------------------

TEST(TextOutputTest, OneObjectIsOneLineOfEveryCellInFieldOrder) {
  sm::CreateSecretResponse created;
  created.set_arn("arn:x");
  created.set_name("db");
  EXPECT_EQ(FormatText(created, ""), "arn:x\tdb\t\n");  // version_id empty, still a column

  kms::v1::DescribeKeyResponse described;  // key_metadata stands for the response
  kms::v1::KeyMetadata& key = *described.mutable_key_metadata();
  key.set_key_id("k1");
  key.set_enabled(true);
  key.set_key_state(kms::v1::KEY_STATE_ENABLED);
  *key.mutable_creation_date() = TimeUtil::SecondsToTimestamp(1714564800);
  key.add_encryption_algorithms("SYMMETRIC_DEFAULT");
  key.set_current_key_material_version(3);
  EXPECT_EQ(FormatText(described, ""),
            "k1\t\t2024-05-01T12:00:00Z\ttrue\t\t\tENABLED\t\t0\t\t\tSYMMETRIC_DEFAULT\t3\n");
}

TEST(TextOutputTest, EmptyResponsePrintsNothing) {
  EXPECT_EQ(FormatText(kms::v1::EnableKeyResponse(), ""), "");
}

TEST(TextOutputTest, ListIsOneLinePerElementThenLabelledFields) {
  pm::GetParametersByPathResponse response;
  pm::Parameter* a = response.add_parameters();
  a->set_name("/app/a");
  a->set_type(pm::PARAMETER_TYPE_STRING);
  a->set_value("1");
  a->set_version(2);
  pm::Parameter* b = response.add_parameters();
  b->set_name("/app/b");
  b->set_type(pm::PARAMETER_TYPE_STRING_LIST);
  b->set_value("x,y");
  b->set_version(1);
  response.set_next_token("tok");
  EXPECT_EQ(FormatText(response, ""),
            "/app/a\tSTRING\t1\t2\t\t\t\t\n"
            "/app/b\tSTRING_LIST\tx,y\t1\t\t\t\t\n"
            "NEXT_TOKEN\ttok\n");
}

TEST(TextOutputTest, NestedObjectsAndMapsOfAnObjectAreLabelled) {
  sm::DescribeSecretResponse response;
  response.set_name("db");
  response.mutable_rotation_rules()->set_automatically_after_days(30);
  sm::Tag* tag = response.add_tags();
  tag->set_key("team");
  tag->set_value("payments");
  (*response.mutable_version_ids_to_stages())["v1"].add_stages("AWSCURRENT");
  (*response.mutable_version_ids_to_stages())["v1"].add_stages("AWSPENDING");
  const std::string text = FormatText(response, "");
  EXPECT_THAT(text, HasSubstr("\tdb\t"));
  EXPECT_THAT(text, HasSubstr("\tteam=payments\tv1=AWSCURRENT,AWSPENDING\t"));
  EXPECT_THAT(text, HasSubstr("\nROTATION_RULES\t30\t\t\n"));
}

TEST(TextOutputTest, TabsAndNewlinesInsideRowsAreEscaped) {
  sm::ListSecretsResponse response;
  sm::SecretListEntry* entry = response.add_secret_list();
  entry->set_name("db");
  entry->set_description("two\tcolumns\nand lines \\ here");
  const std::string text = FormatText(response, "");
  EXPECT_THAT(text, HasSubstr("\tdb\ttwo\\tcolumns\\nand lines \\\\ here\t"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST(TextOutputTest, StreamMessageIsOneLine) {
  coffer::v1::ChangeEvent event;
  event.set_position("42");
  event.set_resource_kind(coffer::v1::RESOURCE_KIND_SECRET);
  event.set_name("prod/db");
  event.set_kind(coffer::v1::CHANGE_KIND_UPDATED);
  *event.mutable_time() = TimeUtil::SecondsToTimestamp(1700000000);
  EXPECT_EQ(FormatTextLine(event), "42\tSECRET\tprod/db\t\tUPDATED\t2023-11-14T22:13:20Z\t\n");
}

// ---- table --------------------------------------------------------------

TEST(TableOutputTest, ObjectIsKeyValueRowsOfWhatIsSet) {
  kms::v1::DescribeKeyResponse response;
  kms::v1::KeyMetadata& key = *response.mutable_key_metadata();
  key.set_key_id("k1");
  key.set_description("orders");
  key.set_key_state(kms::v1::KEY_STATE_DISABLED);
  EXPECT_EQ(FormatTable(response, {}),
            "key_id       k1\n"
            "description  orders\n"
            "key_state    DISABLED\n");
}

TEST(TableOutputTest, NestedObjectsFlattenAndListsBecomeTables) {
  sm::DescribeSecretResponse response;
  response.set_name("db");
  response.mutable_rotation_rules()->set_duration("3h");
  response.mutable_rotation_state()->set_status(sm::RotationState::STATUS_FAILED);
  EXPECT_EQ(FormatTable(response, {}),
            "name                     db\n"
            "rotation_rules.duration  3h\n"
            "rotation_state.status    FAILED\n");

  // A list beside the main one is a table of its own, under its name.
  sm::BatchGetSecretValueResponse batch;
  sm::SecretValueEntry* value = batch.add_secret_values();
  value->set_name("a");
  value->set_secret_string("x");
  sm::APIErrorType* error = batch.add_errors();
  error->set_secret_id("b");
  error->set_error_code("ResourceNotFoundException");
  EXPECT_EQ(FormatTable(batch, {"name", "secret_string"}),
            "name  secret_string\n"
            "----  -------------\n"
            "a     x\n"
            "\n"
            "errors:\n"
            "secret_id  error_code\n"
            "---------  -------------------------\n"
            "b          ResourceNotFoundException\n");

  // Two-string messages read as key=value, like tags.
  sm::ValidateResourcePolicyResponse validated;
  sm::ValidationErrorsEntry* invalid = validated.add_validation_errors();
  invalid->set_check_name("syntax");
  invalid->set_error_message("line 2: bad");
  EXPECT_EQ(FormatTable(validated, {}), "validation_errors  syntax=line 2: bad\n");
}

TEST(TableOutputTest, ListHasAHeaderAndOnlyColumnsWithValues) {
  kms::v1::ListAliasesResponse response;
  kms::v1::AliasListEntry* a = response.add_aliases();
  a->set_alias_name("alias/a");
  a->set_target_key_id("k1");
  kms::v1::AliasListEntry* b = response.add_aliases();
  b->set_alias_name("alias/longer-name");
  response.set_next_marker("m");
  EXPECT_EQ(FormatTable(response, {}),
            "alias_name         target_key_id\n"
            "-----------------  -------------\n"
            "alias/a            k1\n"
            "alias/longer-name\n"
            "\n"
            "next_marker  m\n");
}

TEST(TableOutputTest, NamedColumnsInTheirOrder) {
  sm::ListSecretsResponse response;
  sm::SecretListEntry* entry = response.add_secret_list();
  entry->set_arn("arn:long");
  entry->set_name("db");
  entry->set_description("d");
  const std::string table =
      FormatTable(response, {"name", "description", "rotation_enabled", "deleted_date"});
  EXPECT_EQ(table,
            "name  description  rotation_enabled\n"
            "----  -----------  ----------------\n"
            "db    d            false\n");
  EXPECT_THAT(table, Not(HasSubstr("arn")));
}

TEST(TableOutputTest, EmptyListAndControlCharacters) {
  EXPECT_EQ(FormatTable(sm::ListSecretsResponse(), {}), "(none)\n");
  sm::CreateSecretResponse response;
  response.set_name("a\x1b[31mred\nb");
  EXPECT_EQ(FormatTable(response, {}), "name  a\\x1b[31mred\\nb\n");
}

TEST(TableOutputTest, WidthCountsCharactersNotBytes) {
  kms::v1::ListAliasesResponse response;
  response.add_aliases()->set_alias_name("alias/é");
  response.add_aliases()->set_alias_name("alias/ab");
  response.mutable_aliases(0)->set_target_key_id("k");
  response.mutable_aliases(1)->set_target_key_id("k");
  // "alias_name" is the widest cell: 10 characters, 2 more to the next column.
  EXPECT_THAT(FormatTable(response, {}), HasSubstr("\nalias/é     k\nalias/ab    k\n"));
}

}  // namespace
}  // namespace coffer::cofferctl
