#include "tools/cofferctl/output.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "coffer/kms/v1/kms.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace coffer::cofferctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

OutputOptions ToFile(const std::string& file, const std::string& field) {
  OutputOptions options;
  options.file = file;
  options.field = field;
  return options;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(OutputTest, JsonUsesProtoNamesTwoSpaceIndentAndBase64) {
  kms::v1::EncryptResponse response;
  response.set_ciphertext_blob("hello");
  response.set_key_id("arn:coffer:kms:local:0:key/1");
  auto json = FormatJson(response);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            "{\n"
            "  \"ciphertext_blob\": \"aGVsbG8=\",\n"
            "  \"key_id\": \"arn:coffer:kms:local:0:key/1\"\n"
            "}\n");
}

TEST(OutputTest, NestedAndEmpty) {
  kms::v1::CreateKeyResponse response;
  auto empty = FormatJson(kms::v1::EnableKeyResponse());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "{}\n");

  response.mutable_key_metadata()->set_key_id("k");
  response.mutable_key_metadata()->add_encryption_algorithms("SYMMETRIC_DEFAULT");
  response.mutable_key_metadata()->set_key_state(kms::v1::KEY_STATE_ENABLED);
  response.mutable_key_metadata()->mutable_creation_date()->set_seconds(1714564800);
  auto json = FormatJson(response);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json,
            "{\n"
            "  \"key_metadata\": {\n"
            "    \"key_id\": \"k\",\n"
            "    \"creation_date\": \"2024-05-01T12:00:00Z\",\n"
            "    \"key_state\": \"KEY_STATE_ENABLED\",\n"
            "    \"encryption_algorithms\": [\n"
            "      \"SYMMETRIC_DEFAULT\"\n"
            "    ]\n"
            "  }\n"
            "}\n");
}

TEST(OutputTest, IndentLeavesStringsAlone) {
  EXPECT_EQ(IndentJson(R"({"a":"x, {y}: \"z\"","b":[]})"),
            "{\n  \"a\": \"x, {y}: \\\"z\\\"\",\n  \"b\": []\n}");
}

TEST(OutputTest, OutputFileWritesRawBytesAndStripsTheField) {
  const std::string path = ::testing::TempDir() + "/cofferctl_plaintext.out";
  std::remove(path.c_str());
  const std::string raw("\x00\xff\x10secret", 9);
  kms::v1::DecryptResponse response;
  response.set_key_id("k");
  response.set_plaintext(raw);
  response.set_encryption_algorithm("SYMMETRIC_DEFAULT");

  auto json = RenderResponse(response, ToFile(path, ""));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(Slurp(path), raw);
  EXPECT_THAT(*json, Not(HasSubstr("plaintext")));
  EXPECT_THAT(*json, HasSubstr("\"key_id\": \"k\""));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(OutputTest, OutputFileTightensAnExistingFile) {
  const std::string path = ::testing::TempDir() + "/cofferctl_existing.out";
  std::ofstream(path) << "old content that is longer";
  ::chmod(path.c_str(), 0644);
  kms::v1::EncryptResponse response;
  response.set_ciphertext_blob("CT");
  ASSERT_TRUE(RenderResponse(response, ToFile(path, "")).ok());
  EXPECT_EQ(Slurp(path), "CT");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(OutputTest, OutputFieldChoosesAnotherBytesField) {
  const std::string path = ::testing::TempDir() + "/cofferctl_datakey.out";
  kms::v1::GenerateDataKeyResponse response;
  response.set_ciphertext_blob("CT");
  response.set_plaintext("PT");
  auto json = RenderResponse(response, ToFile(path, "plaintext"));
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(Slurp(path), "PT");
  EXPECT_THAT(*json, HasSubstr("\"ciphertext_blob\": \"Q1Q=\""));
  EXPECT_THAT(*json, Not(HasSubstr("\"plaintext\"")));
}

TEST(OutputTest, TakeBytesFieldErrors) {
  kms::v1::GenerateDataKeyResponse response;
  EXPECT_THAT(
      std::string(TakeBytesField(response, "key_id").status().message()),
      HasSubstr(
          "--output-field: coffer.kms.v1.GenerateDataKeyResponse has no bytes field 'key_id'"));
  kms::v1::DescribeKeyResponse no_bytes;
  EXPECT_THAT(std::string(TakeBytesField(no_bytes, "").status().message()),
              HasSubstr("--output-file: coffer.kms.v1.DescribeKeyResponse has no bytes field"));
  EXPECT_TRUE(TakeBytesField(response, "ciphertext-blob").ok());
}

TEST(OutputTest, UnwritableFileIsAnError) {
  kms::v1::EncryptResponse response;
  auto json = RenderResponse(response, ToFile("/nonexistent-dir/x", ""));
  EXPECT_FALSE(json.ok());
  EXPECT_THAT(std::string(json.status().message()), HasSubstr("/nonexistent-dir/x"));
}

TEST(OutputTest, RenderResponseInEachFormat) {
  kms::v1::DecryptResponse response;
  response.set_key_id("k");
  response.set_plaintext("PT");
  OutputOptions text{"", "", OutputFormat::kText, "plaintext", {}};
  auto value = RenderResponse(response, text);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "UFQ=\n");
  OutputOptions table{"", "", OutputFormat::kTable, "", {}};
  auto rows = RenderResponse(response, table);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, "key_id     k\nplaintext  UFQ=\n");

  // A value that went to --output-file is not printed again: the rest is.
  const std::string path = ::testing::TempDir() + "/cofferctl_text.out";
  OutputOptions to_file{path, "", OutputFormat::kText, "plaintext", {}};
  auto rest = RenderResponse(response, to_file);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(Slurp(path), "PT");
  EXPECT_EQ(*rest, "k\t\t\n");
}

TEST(OutputTest, ChangeEventIsOneCompactJsonLine) {
  coffer::v1::ChangeEvent event;
  event.set_position("0000000000000042");
  event.set_resource_kind(coffer::v1::RESOURCE_KIND_PARAMETER);
  event.set_name("/app/db/url");
  event.set_version("3");
  event.set_kind(coffer::v1::CHANGE_KIND_UPDATED);
  *event.mutable_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1700000000);
  event.set_detail("line one\nline \"two\"");
  auto line = FormatJsonLine(event);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, R"({"position":"0000000000000042","resource_kind":"RESOURCE_KIND_PARAMETER",)"
                   R"("name":"/app/db/url","version":"3","kind":"CHANGE_KIND_UPDATED",)"
                   R"("time":"2023-11-14T22:13:20Z","detail":"line one\nline \"two\""})"
                   "\n");
  // Exactly one newline: the one that ends the line.
  EXPECT_EQ(std::count(line->begin(), line->end(), '\n'), 1);

  // Defaults are left out, as in the indented form.
  coffer::v1::ChangeEvent empty;
  empty.set_kind(coffer::v1::CHANGE_KIND_DELETED);
  auto short_line = FormatJsonLine(empty);
  ASSERT_TRUE(short_line.ok());
  EXPECT_EQ(*short_line, "{\"kind\":\"CHANGE_KIND_DELETED\"}\n");
  auto indented = FormatJson(empty);
  ASSERT_TRUE(indented.ok());
  EXPECT_EQ(*indented, "{\n  \"kind\": \"CHANGE_KIND_DELETED\"\n}\n");
}

}  // namespace
}  // namespace coffer::cofferctl
