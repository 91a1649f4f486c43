// `cofferctl access-keys` end to end: the real cofferctl against the real
// coffer-kms, found through $COFFER_ACCESS_KEYS_ADDRESS. The short forms
// create, list, disable, enable and delete do what IAM's operations do; the
// secret is printed once, on stdout, and nowhere else (not by list, not on
// stderr, not in the KMS's log or audit); the service's refusals come back
// as `Reason: message` with exit status 254, cofferctl's own as 252.

#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using testing::CofferctlResult;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ServiceProcess;
using ::testing::StartsWith;

constexpr char kCatagram[] = "spiffe://coffer.local/app/catagram";
constexpr int kExitUsage = 252;
constexpr int kExitService = 254;

struct CreatedKey {
  std::string id;
  std::string secret;
};

class CofferctlAccessKeysE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> args = {"--data_dir=" + dir_.Join("kms"), "--dev_mode"};
    testing::TlsArgs(testing::SharedPki().Identity("kms"), &args);
    kms_ = std::make_unique<ServiceProcess>("coffer-kms", args);
    ASSERT_TRUE(kms_->Start().ok()) << kms_->Output();
    // The group's own variable wins over COFFER_ADDRESS, which leads nowhere.
    env_ = {{"COFFER_ACCESS_KEYS_ADDRESS", kms_->address()}, {"COFFER_ADDRESS", "localhost:1"}};
  }

  void TearDown() override {
    if (kms_ && kms_->running()) {
      EXPECT_EQ(kms_->Stop(), 0);
    }
  }

  CofferctlResult Run(const std::vector<std::string>& args) {
    return testing::RunCofferctlIo(args, env_);
  }

  // `access-keys create --output text`: "<id>\t<secret>\n" and nothing else.
  CreatedKey Create(const std::string& identity, const std::string& description) {
    CofferctlResult created = Run({"access-keys", "create", "--identity", identity, "--description",
                                   description, "--output", "text"});
    EXPECT_EQ(created.code, 0) << created.err;
    EXPECT_EQ(created.err, "");
    std::smatch m;
    static const std::regex kLine("(AKCO[A-Z2-7]{16})\t([A-Za-z0-9+/]{40})\n");
    if (!std::regex_match(created.out, m, kLine)) {
      ADD_FAILURE() << "create printed: " << created.out;
      return {};
    }
    return {m[1], m[2]};
  }

  // The status column of `id` in `list --output text` ("" when not listed).
  std::string StatusOf(const std::string& id) {
    CofferctlResult listed =
        Run({"access-keys", "list", "--identity", kCatagram, "--output", "text"});
    EXPECT_EQ(listed.code, 0) << listed.err;
    for (absl::string_view line : absl::StrSplit(listed.out, '\n', absl::SkipEmpty())) {
      std::vector<std::string> cells = absl::StrSplit(line, '\t');
      if (cells.size() == 5 && cells[0] == id) return cells[2];
    }
    return "";
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_;
  std::map<std::string, std::string> env_;
};

TEST_F(CofferctlAccessKeysE2ETest, CreateListDisableEnableDelete) {
  const CreatedKey key = Create(kCatagram, "catagram e2e");
  ASSERT_FALSE(key.id.empty());

  // Listed in every format, with its metadata and never its secret.
  for (const char* format : {"json", "table", "text"}) {
    SCOPED_TRACE(format);
    CofferctlResult listed = Run({"access-keys", "list", "--output", format});
    EXPECT_EQ(listed.code, 0) << listed.err;
    EXPECT_THAT(listed.out, HasSubstr(key.id));
    EXPECT_THAT(listed.out, HasSubstr(kCatagram));
    EXPECT_THAT(listed.out, HasSubstr("catagram e2e"));
    EXPECT_THAT(listed.out, Not(HasSubstr(key.secret)));
    EXPECT_EQ(listed.err, "");
  }
  CofferctlResult table =
      Run({"access-keys", "list", "--identity", kCatagram, "--output", "table"});
  EXPECT_THAT(table.out, StartsWith("access_key_id         identity  "));
  EXPECT_THAT(table.out, HasSubstr("status  create_date  "));
  EXPECT_EQ(StatusOf(key.id), "ACTIVE");

  CofferctlResult disabled = Run({"access-keys", "disable", "--access-key-id", key.id});
  EXPECT_EQ(disabled.code, 0) << disabled.err;
  EXPECT_EQ(StatusOf(key.id), "INACTIVE");

  // A preset given again is refused before anything is sent.
  CofferctlResult both =
      Run({"access-keys", "enable", "--access-key-id", key.id, "--status", "ACTIVE"});
  EXPECT_EQ(both.code, kExitUsage);
  EXPECT_THAT(both.err, StartsWith("UsageError: --status: `access-keys enable` sets it itself"));
  EXPECT_EQ(StatusOf(key.id), "INACTIVE");

  CofferctlResult enabled = Run({"access-keys", "enable", "--access-key-id", key.id});
  EXPECT_EQ(enabled.code, 0) << enabled.err;
  EXPECT_EQ(StatusOf(key.id), "ACTIVE");
  // The long form is the same call.
  CofferctlResult updated =
      Run({"access-keys", "update-access-key", "--access-key-id", key.id, "--status", "INACTIVE"});
  EXPECT_EQ(updated.code, 0) << updated.err;
  EXPECT_EQ(StatusOf(key.id), "INACTIVE");

  CofferctlResult deleted = Run({"access-keys", "delete", "--access-key-id", key.id});
  EXPECT_EQ(deleted.code, 0) << deleted.err;
  EXPECT_EQ(StatusOf(key.id), "");
  CofferctlResult again = Run({"access-keys", "delete", "--access-key-id", key.id});
  EXPECT_EQ(again.code, kExitService);
  EXPECT_THAT(again.err, StartsWith("NoSuchEntity: "));
  EXPECT_THAT(again.err, HasSubstr(key.id));
  EXPECT_EQ(again.out, "");

  // The secret went to create's stdout and nowhere else.
  EXPECT_THAT(kms_->Output(), Not(HasSubstr(key.secret)));
  const std::string audit = testing::ReadAllFiles(kms_->audit_dir());
  EXPECT_THAT(audit, HasSubstr("iam:CreateAccessKey"));
  EXPECT_THAT(audit, Not(HasSubstr(key.secret)));
}

TEST_F(CofferctlAccessKeysE2ETest, TwoKeysPerIdentityAndTheIdentityIsValidated) {
  const CreatedKey first = Create(kCatagram, "one");
  const CreatedKey second = Create(kCatagram, "two");
  ASSERT_FALSE(first.id.empty());
  ASSERT_FALSE(second.id.empty());
  EXPECT_NE(first.id, second.id);
  EXPECT_NE(first.secret, second.secret);

  CofferctlResult third =
      Run({"access-keys", "create", "--identity", kCatagram, "--output", "text"});
  EXPECT_EQ(third.code, kExitService);
  EXPECT_THAT(third.err, StartsWith("LimitExceeded: "));
  EXPECT_EQ(third.out, "");
  // Another identity has its own two.
  EXPECT_FALSE(Create("spiffe://coffer.local/app/other", "other").id.empty());

  CofferctlResult bad = Run({"access-keys", "create", "--identity=not-a-spiffe-id"});
  EXPECT_EQ(bad.code, kExitService);
  EXPECT_THAT(bad.err, StartsWith("ValidationException: "));
  EXPECT_THAT(bad.err, HasSubstr("identity"));
  EXPECT_EQ(bad.out, "");

  // Missing the one required flag: cofferctl's own refusal, nothing sent.
  CofferctlResult missing = Run({"access-keys", "create"});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, StartsWith("UsageError: --identity: required (see `cofferctl "
                                      "access-keys create --help`)"));
}

}  // namespace
}  // namespace coffer
