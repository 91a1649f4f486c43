// Every operation of every linked service has examples that cofferctl
// itself accepts, required fields that exist, and a text value and table
// columns that name real response fields.
#include "tools/cofferctl/operation_docs.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"
#include "tools/cofferctl/api_docs.h"
#include "tools/cofferctl/command_table.h"
#include "tools/cofferctl/invocation.h"
#include "tools/cofferctl/request_builder.h"
#include "tools/cofferctl/short_forms.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;
using ::testing::HasSubstr;

// The words a shell would make of `line`: blanks split, '...' and "..."
// quote (no expansions; examples use none).
std::vector<std::string> ShellWords(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : line) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word.push_back(c);
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  EXPECT_EQ(quote, 0) << "unbalanced quote in: " << line;
  if (in_word) words.push_back(word);
  return words;
}

TEST(ShellWordsTest, QuotesAndBlanks) {
  EXPECT_THAT(ShellWords(R"(a 'b c'  "d e" f'g h'i '{"k":1}')"),
              ::testing::ElementsAre("a", "b c", "d e", "fg hi", R"({"k":1})"));
}

// Every method cofferctl can call, with its group.
std::vector<std::pair<const Group*, const pb::MethodDescriptor*>> CallableMethods(
    const CommandTable& table) {
  std::vector<std::pair<const Group*, const pb::MethodDescriptor*>> out;
  for (const Group& group : table.groups()) {
    for (int i = 0; i < group.service->method_count(); ++i) {
      if (!group.service->method(i)->client_streaming()) {
        out.emplace_back(&group, group.service->method(i));
      }
    }
  }
  return out;
}

TEST(OperationDocsTest, EveryMethodHasAnEntryAndEveryEntryAMethod) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  std::set<std::string> methods;
  for (const auto& [group, method] : CallableMethods(table)) {
    SCOPED_TRACE(method->full_name());
    methods.insert(method->full_name());
    ASSERT_EQ(OperationDocs().count(method->full_name()), 1u);
    EXPECT_FALSE(DocFor(*method).examples.empty());
  }
  EXPECT_EQ(methods.size(), 26u + 21u + 14u + 5u);  // kms, secrets, params, access-keys
  for (const auto& [name, doc] : OperationDocs()) {
    EXPECT_EQ(methods.count(name), 1u) << name << " is not a method of a linked service";
  }
}

TEST(OperationDocsTest, NamedFieldsExist) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  for (const auto& [group, method] : CallableMethods(table)) {
    SCOPED_TRACE(method->full_name());
    const OperationDoc& doc = DocFor(*method);
    for (const std::string& field : doc.required) {
      EXPECT_NE(method->input_type()->FindFieldByName(field), nullptr) << field;
    }
    // "a|b": a, or else b; "a,b": both, tab-separated.
    for (absl::string_view path :
         absl::StrSplit(doc.text_value, absl::ByAnyChar("|,"), absl::SkipEmpty())) {
      const pb::Descriptor* type = method->output_type();
      const pb::FieldDescriptor* field = nullptr;
      for (absl::string_view step : absl::StrSplit(path, '.')) {
        ASSERT_NE(type, nullptr) << path;
        field = type->FindFieldByName(std::string(step));
        ASSERT_NE(field, nullptr) << path;
        ASSERT_FALSE(field->is_repeated()) << path;
        type = field->message_type();
      }
    }
    if (!doc.table_columns.empty()) {
      const pb::FieldDescriptor* list = method->output_type()->field(0);
      ASSERT_TRUE(list->is_repeated() && list->message_type() != nullptr)
          << "table_columns on an operation without a list";
      for (const std::string& column : doc.table_columns) {
        EXPECT_NE(list->message_type()->FindFieldByName(column), nullptr) << column;
      }
    }
  }
}

// Each example goes through what the binary does before connecting:
// ParseInvocation (short forms included), the operation lookup and
// BuildOperationRequest (the flags, a short form's presets, CheckRequired).
TEST(OperationDocsTest, EveryExampleBuildsAValidRequest) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  // file://, fileb:// and - read this instead of real files.
  FileReader any_file = [](const std::string&) -> absl::StatusOr<std::string> {
    return std::string("example content");
  };
  auto no_env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  int examples = 0;
  int short_forms = 0;
  for (const auto& [group, method] : CallableMethods(table)) {
    for (const std::string& example : DocFor(*method).examples) {
      SCOPED_TRACE(example);
      ++examples;
      std::vector<std::string> words = ShellWords(example);
      ASSERT_GE(words.size(), 3u);
      ASSERT_EQ(words[0], "cofferctl");
      absl::StatusOr<Invocation> inv =
          ParseInvocation(std::vector<std::string>(words.begin() + 1, words.end()), no_env);
      ASSERT_TRUE(inv.ok()) << inv.status();
      ASSERT_EQ(inv->group, group->spec.name);
      ASSERT_EQ(CommandTable::FindOperation(*group, inv->operation), method);
      absl::StatusOr<std::unique_ptr<pb::Message>> request =
          BuildOperationRequest(*method, inv->request_args, inv->short_form, any_file);
      ASSERT_TRUE(request.ok()) << request.status();
      EXPECT_TRUE(CheckRequired(**request, DocFor(*method)).ok());
      if (inv->short_form != nullptr) ++short_forms;
      if (method->server_streaming()) {
        EXPECT_NE(inv->output, OutputFormat::kTable) << "table is not for streams";
        EXPECT_TRUE(inv->output_file.empty());
      }
    }
  }
  EXPECT_GE(examples, 72);
  EXPECT_EQ(short_forms, 5);  // one example of each
}

const pb::ServiceDescriptor* SecretsService() {
  return secrets::v1::GetSecretValueRequest::descriptor()->file()->FindServiceByName(
      "SecretsManager");
}

TEST(OperationDocsTest, CheckRequiredNamesTheFirstMissingFlag) {
  const pb::MethodDescriptor* update =
      SecretsService()->FindMethodByName("UpdateSecretVersionStage");
  ASSERT_NE(update, nullptr);
  secrets::v1::UpdateSecretVersionStageRequest request;
  absl::Status missing = CheckRequired(request, DocFor(*update));
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.message(), "--secret-id: required");
  request.set_secret_id("db");
  EXPECT_EQ(CheckRequired(request, DocFor(*update)).message(), "--version-stage: required");
  request.set_version_stage("AWSCURRENT");
  EXPECT_TRUE(CheckRequired(request, DocFor(*update)).ok());

  const pb::MethodDescriptor* tag = SecretsService()->FindMethodByName("TagResource");
  secrets::v1::TagResourceRequest tags;
  tags.set_secret_id("db");
  EXPECT_EQ(CheckRequired(tags, DocFor(*tag)).message(), "--tags: required");  // no elements
  tags.add_tags()->set_key("k");
  EXPECT_TRUE(CheckRequired(tags, DocFor(*tag)).ok());
}

TEST(OperationDocsTest, HelpShowsRequiredFlagsExamplesAndTheTextValue) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  const Group* secrets = table.FindGroup("secrets");
  ASSERT_NE(secrets, nullptr);
  const std::string help =
      OperationUsage(*secrets, *secrets->service->FindMethodByName("GetSecretValue"));
  EXPECT_THAT(help, HasSubstr("Usage: cofferctl secrets get-secret-value "
                              "--secret-id=<secret_id> [flags]\n"));
  EXPECT_THAT(help, HasSubstr("  --secret-id=<string>  (required)\n"));
  EXPECT_THAT(help, HasSubstr("Examples:\n  cofferctl secrets get-secret-value --secret-id "
                              "prod/orders/db --output text\n"));
  EXPECT_THAT(help, HasSubstr("--output=text prints the value of secret_string (or else "
                              "secret_binary) alone; bytes in base64.\n"));
  EXPECT_THAT(help, HasSubstr("fileb://<path> (bytes fields) or - (standard\ninput)"));
  EXPECT_THAT(help, HasSubstr("--output=json|table|text"));
  EXPECT_THAT(help, HasSubstr("Exit status: 0 success, 252 bad command line"));

  const Group* params = table.FindGroup("params");
  ASSERT_NE(params, nullptr);
  const std::string watch =
      OperationUsage(*params, *params->service->FindMethodByName("WatchParameters"));
  EXPECT_THAT(watch, HasSubstr("--output=json|text"));
  EXPECT_THAT(watch, HasSubstr("cofferctl watch params --path /prod --recursive --output text"));
}

// The README's table of what --output=text prints, and its exit codes,
// must say what the code does.
TEST(OperationDocsTest, ReadmeDocumentsEveryTextValueAndExitCode) {
  const std::string readme = testing::ReadFile(testing::SourceDir() + "/README.md");
  ASSERT_FALSE(readme.empty());
  const CommandTable table = CommandTable::FromGeneratedPool();
  for (const auto& [group, method] : CallableMethods(table)) {
    const OperationDoc& doc = DocFor(*method);
    if (doc.text_value.empty()) continue;
    SCOPED_TRACE(method->full_name());
    const std::string row =
        absl::StrCat("| `", group->spec.name, " ", OperationName(method->name()), "` | ");
    const size_t at = readme.find(row);
    ASSERT_NE(at, std::string::npos) << row;
    const std::string line = readme.substr(at, readme.find('\n', at) - at);
    for (absl::string_view path : absl::StrSplit(doc.text_value, absl::ByAnyChar("|,"))) {
      EXPECT_THAT(line, HasSubstr(absl::StrCat("`", path, "`")));
    }
  }
  for (const char* row : {"| 0 |", "| 252 | `UsageError`", "| 253 | `ConfigurationError`",
                          "| 254 |", "| 255 |", "| 1 | `cofferctl audit verify`"}) {
    EXPECT_THAT(readme, HasSubstr(row));
  }
}

// --help carries the .proto comments (embedded at build time: the generated
// code has none).
TEST(OperationDocsTest, HelpCarriesTheApisComments) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  for (const auto& [group, method] : CallableMethods(table)) {
    EXPECT_FALSE(MethodComment(*method).empty()) << method->full_name();
  }
  const Group* secrets = table.FindGroup("secrets");
  ASSERT_NE(secrets, nullptr);
  const std::string help =
      OperationUsage(*secrets, *secrets->service->FindMethodByName("DeleteSecret"));
  EXPECT_THAT(help, HasSubstr(".\n\nSchedules deletion after a recovery window (7-30 days, "
                              "default 30), or\ndeletes at once"));
  EXPECT_THAT(help, HasSubstr("  --recovery-window-in-days=<int64>\n      int64\n      7-30; 0 "
                              "means the default, 30. Not with force_delete_without_recovery.\n"));
  EXPECT_EQ(FieldComment(*secrets::v1::DeleteSecretRequest::descriptor()->FindFieldByName(
                "force_delete_without_recovery")),
            "");
  EXPECT_EQ(Indented("a\n\nb", 2), "  a\n\n  b\n");
}

}  // namespace
}  // namespace coffer::cofferctl
