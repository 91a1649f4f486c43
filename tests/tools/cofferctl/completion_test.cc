// `cofferctl completion bash`: the script from the real binary, sourced by a
// real bash, asked for completions the way bash's readline asks (COMP_WORDS
// split as COMP_WORDBREAKS splits them: "--output=t" is "--output" "=" "t").
#include "tools/cofferctl/completion.h"

#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"
#include "tools/cofferctl/failures.h"

namespace coffer::cofferctl {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// Runs `cases` (one `c <words...>` line each, the last word being the one
// under the cursor) in a bash that sourced the binary's script; returns
// each case's line -> its COMPREPLY words.
std::map<std::string, std::vector<std::string>> Complete(const std::vector<std::string>& cases) {
  std::string script =
      "source <(\"$1\" completion bash) || exit 1\n"
      "complete -p cofferctl\n"
      "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _cofferctl;\n"
      "      printf '%s|%s\\n' \"$*\" \"${COMPREPLY[*]}\"; }\n";
  for (const std::string& c : cases) script += "c " + c + "\n";
  testing::Subprocess bash({"/bin/bash", "-c", script, "bash", testing::BinaryPath("cofferctl")});
  EXPECT_TRUE(bash.Start().ok());
  EXPECT_EQ(bash.Wait(), 0) << bash.Output();
  std::map<std::string, std::vector<std::string>> out;
  for (absl::string_view line : absl::StrSplit(bash.Output(), '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits('|', 1));
    if (parts.size() != 2) {
      out["(other)"].push_back(std::string(line));
      continue;
    }
    out[parts[0]] = absl::StrSplit(parts[1], ' ', absl::SkipEmpty());
  }
  return out;
}

TEST(CompletionTest, BashCompletesGroupsOperationsFlagsAndValues) {
  auto got = Complete({
      "cofferctl ''",
      "cofferctl se",
      "cofferctl secrets get-sec",
      "cofferctl secrets get-secret-value --ver",
      "cofferctl params put-parameter --type ''",
      "cofferctl params put-parameter --name /a --type SE",
      "cofferctl kms encrypt --output = ''",
      "cofferctl kms encrypt --output = t",
      "cofferctl kms create-key --key-spec S",
      "cofferctl secrets list-secrets --include-planned-deletion = ''",
      "cofferctl watch p",
      "cofferctl watch params --rec",
      "cofferctl --address localhost:1 kms list-al",
      "cofferctl params get-parameter --with-decryption --na",
      "cofferctl completion ''",
      "cofferctl audit ''",
  });
  EXPECT_THAT(got["(other)"],
              ::testing::ElementsAre("complete -o default -F _cofferctl cofferctl"));
  EXPECT_THAT(got["cofferctl "], UnorderedElementsAre("kms", "secrets", "params", "access-keys",
                                                      "watch", "audit", "completion", "help"));
  EXPECT_THAT(got["cofferctl se"], UnorderedElementsAre("secrets"));
  EXPECT_THAT(got["cofferctl secrets get-sec"], UnorderedElementsAre("get-secret-value"));
  EXPECT_THAT(got["cofferctl secrets get-secret-value --ver"],
              UnorderedElementsAre("--version-id", "--version-stage"));
  EXPECT_THAT(got["cofferctl params put-parameter --type "],
              UnorderedElementsAre("STRING", "STRING_LIST", "SECURE_STRING"));
  EXPECT_THAT(got["cofferctl params put-parameter --name /a --type SE"],
              UnorderedElementsAre("SECURE_STRING"));
  EXPECT_THAT(got["cofferctl kms encrypt --output = "],
              UnorderedElementsAre("json", "table", "text"));
  EXPECT_THAT(got["cofferctl kms encrypt --output = t"], UnorderedElementsAre("table", "text"));
  EXPECT_THAT(got["cofferctl kms create-key --key-spec S"],
              UnorderedElementsAre("SYMMETRIC_DEFAULT"));
  EXPECT_THAT(got["cofferctl secrets list-secrets --include-planned-deletion = "],
              UnorderedElementsAre("true", "false"));
  EXPECT_THAT(got["cofferctl watch p"], UnorderedElementsAre("params"));
  EXPECT_THAT(got["cofferctl watch params --rec"], UnorderedElementsAre("--recursive"));
  EXPECT_THAT(got["cofferctl --address localhost:1 kms list-al"],
              UnorderedElementsAre("list-aliases"));
  // A bool flag takes no value: the next word is a flag again.
  EXPECT_THAT(got["cofferctl params get-parameter --with-decryption --na"],
              UnorderedElementsAre("--name"));
  EXPECT_THAT(got["cofferctl completion "], UnorderedElementsAre("bash"));
  EXPECT_THAT(got["cofferctl audit "], UnorderedElementsAre("verify"));
}

TEST(CompletionTest, FlagsOfAnOperationIncludeCofferctlsOwn) {
  auto got = Complete({"cofferctl kms decrypt --"});
  const std::vector<std::string>& flags = got["cofferctl kms decrypt --"];
  for (const char* flag :
       {"--ciphertext-blob", "--encryption-context", "--key-id", "--cli-input-json", "--output",
        "--output-file", "--address", "--ca", "--timeout", "--help"}) {
    EXPECT_THAT(flags, ::testing::Contains(flag));
  }
}

// The short forms are offered beside the operations, each with the flags of
// its operation but the ones it presets.
TEST(CompletionTest, AccessKeysOperationsAndShortForms) {
  auto got = Complete({
      "cofferctl acc",
      "cofferctl access-keys ''",
      "cofferctl access-keys d",
      "cofferctl access-keys disable --",
      "cofferctl access-keys enable --",
      "cofferctl access-keys update-access-key --",
      "cofferctl access-keys update-access-key --status ''",
      "cofferctl access-keys create --",
      "cofferctl access-keys list --ma",
      "cofferctl --output text access-keys cr",
  });
  EXPECT_THAT(got["cofferctl acc"], UnorderedElementsAre("access-keys"));
  EXPECT_THAT(got["cofferctl access-keys "],
              UnorderedElementsAre("create-access-key", "list-access-keys", "update-access-key",
                                   "delete-access-key", "get-signing-key", "create", "list",
                                   "disable", "enable", "delete"));
  EXPECT_THAT(got["cofferctl access-keys d"],
              UnorderedElementsAre("delete-access-key", "disable", "delete"));
  for (const char* form : {"disable", "enable"}) {
    const std::vector<std::string>& flags =
        got[absl::StrCat("cofferctl access-keys ", form, " --")];
    EXPECT_THAT(flags, ::testing::Contains("--access-key-id")) << form;
    EXPECT_THAT(flags, ::testing::Contains("--cli-input-json")) << form;
    EXPECT_THAT(flags, ::testing::Contains("--output")) << form;
    EXPECT_THAT(flags, ::testing::Not(::testing::Contains("--status"))) << form;
  }
  EXPECT_THAT(got["cofferctl access-keys update-access-key --"], ::testing::Contains("--status"));
  EXPECT_THAT(got["cofferctl access-keys update-access-key --status "],
              UnorderedElementsAre("ACTIVE", "INACTIVE"));
  EXPECT_THAT(got["cofferctl access-keys create --"], ::testing::Contains("--identity"));
  EXPECT_THAT(got["cofferctl access-keys create --"], ::testing::Contains("--description"));
  EXPECT_THAT(got["cofferctl access-keys list --ma"],
              UnorderedElementsAre("--max-items", "--marker", "--max-events"));
  EXPECT_THAT(got["cofferctl --output text access-keys cr"],
              UnorderedElementsAre("create-access-key", "create"));
}

TEST(CompletionTest, UsageAndErrors) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  std::ostringstream out, err;
  EXPECT_EQ(RunCompletion(table, {}, out, err), kExitOk);
  EXPECT_THAT(out.str(), HasSubstr("source <(cofferctl completion bash)"));
  std::ostringstream out2, err2;
  EXPECT_EQ(RunCompletion(table, {"zsh"}, out2, err2), kExitUsage);
  EXPECT_THAT(err2.str(), HasSubstr("UsageError: completion: only `cofferctl completion bash`"));
  std::ostringstream script, err3;
  EXPECT_EQ(RunCompletion(table, {"bash"}, script, err3), kExitOk);
  EXPECT_THAT(script.str(), HasSubstr("complete -o default -F _cofferctl cofferctl\n"));
  EXPECT_THAT(script.str(), HasSubstr("\"kms encrypt\") echo \"--key-id --plaintext"));
}

}  // namespace
}  // namespace coffer::cofferctl
