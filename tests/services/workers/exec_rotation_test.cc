#include "services/workers/exec/exec_rotation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/libs/worker/fake_secrets_client.h"
#include "tests/testing/test_env.h"

namespace coffer::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using worker::FakeSecretsClient;
using worker::StepContext;

constexpr char kToken[] = "rotation-token-0123456789abcdef0123";

class ExecRotationTest : public ::testing::Test {
 protected:
  std::string Script(const std::string& name, const std::string& body) {
    const std::string path = dir_.Join(name);
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0700);
    return path;
  }

  ExecRotationOptions Options(const std::string& command,
                              absl::Duration timeout = absl::Seconds(10)) {
    ExecRotationOptions o;
    o.command = command;
    o.step_timeout = timeout;
    o.store_address = "localhost:7702";
    o.tls = {"/certs/ca.crt", "/certs/worker-exec.crt", "/certs/worker-exec.key"};
    return o;
  }

  coffer::testing::TempDir dir_;
  FakeSecretsClient fake_;
  StepContext ctx_{"arn:coffer:secretsmanager:local:000000000000:secret:app/db-AbCdEf", kToken,
                   fake_};
};

TEST_F(ExecRotationTest, RunsTheCommandForEachStepWithItsEnvironment) {
  const std::string out = dir_.Join("env.log");
  ExecRotation handler(Options(Script(
      "rotate.sh", absl::StrCat("echo \"$COFFER_ROTATION_STEP|$COFFER_SECRET_ID|"
                                "$COFFER_CLIENT_REQUEST_TOKEN|$COFFER_STORE_ADDRESS|"
                                "$COFFER_SECRETS_ADDRESS|$COFFER_CA|$COFFER_CERT|$COFFER_KEY\" >> ",
                                out, "\necho this goes nowhere"))));
  ASSERT_TRUE(handler.CreateSecret(ctx_).ok());
  ASSERT_TRUE(handler.SetSecret(ctx_).ok());
  ASSERT_TRUE(handler.TestSecret(ctx_).ok());
  ASSERT_TRUE(handler.FinishSecret(ctx_).ok());

  const std::string common = absl::StrCat(
      "|", ctx_.secret_id, "|", kToken,
      "|localhost:7702|localhost:7702|/certs/ca.crt|/certs/worker-exec.crt|/certs/worker-exec.key");
  std::vector<std::string> lines =
      absl::StrSplit(coffer::testing::ReadFile(out), '\n', absl::SkipEmpty());
  EXPECT_THAT(lines, ElementsAre("createSecret" + common, "setSecret" + common,
                                 "testSecret" + common, "finishSecret" + common));
  // The worker itself touched nothing in the store.
  EXPECT_EQ(fake_.Calls("PutSecretValue") + fake_.Calls("GetSecretValue") +
                fake_.Calls("UpdateSecretVersionStage"),
            0);
}

TEST_F(ExecRotationTest, NonZeroExitFailsTheStep) {
  ExecRotation handler(
      Options(Script("fail.sh", "[ \"$COFFER_ROTATION_STEP\" = setSecret ] && exit 3\nexit 0")));
  EXPECT_TRUE(handler.CreateSecret(ctx_).ok());
  absl::Status s = handler.SetSecret(ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("setSecret"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("exited with status 3"));
}

TEST_F(ExecRotationTest, HangingCommandIsKilledAtTheTimeout) {
  const std::string pid_file = dir_.Join("sleep.pid");
  ExecRotation handler(
      Options(Script("hang.sh", absl::StrCat("sleep 30 &\necho $! > ", pid_file, "\nwait")),
              absl::Milliseconds(500)));
  const absl::Time start = absl::Now();
  absl::Status s = handler.TestSecret(ctx_);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("did not finish within 500ms"));
  EXPECT_LT(took, absl::Seconds(5));
  // The program's own children went with it (its whole process group).
  int sleep_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(coffer::testing::ReadFile(pid_file)),
                               &sleep_pid));
  EXPECT_TRUE(
      coffer::testing::WaitFor([&] { return ::kill(sleep_pid, 0) != 0; }, absl::Seconds(5)));
}

TEST_F(ExecRotationTest, MissingCommandFailsTheStep) {
  ExecRotation handler(Options(dir_.Join("does-not-exist")));
  absl::Status s = handler.CreateSecret(ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("cannot execute"));
}

TEST_F(ExecRotationTest, CheckCommand) {
  EXPECT_TRUE(CheckCommand(Script("ok.sh", "exit 0")).ok());
  EXPECT_FALSE(CheckCommand("relative/rotate.sh").ok());
  EXPECT_FALSE(CheckCommand("").ok());
  EXPECT_FALSE(CheckCommand(dir_.Join("missing")).ok());
  EXPECT_FALSE(CheckCommand(dir_.path()).ok());  // a directory
}

}  // namespace
}  // namespace coffer::workers
