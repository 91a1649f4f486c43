// Catagram end to end: the example app in C++ (libs/client) and in Python
// (through coffer-agent), with a real PostgreSQL, the real rotator and
// PostgreSQL worker, serving requests without pause while its credential
// is rotated three times — with alternating users not one request fails;
// with a single user the logins that fail between the password change and
// the label move are retried within the app's budget, so no request fails
// either.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "tests/integration/http_get.h"
#include "tests/integration/rotation_e2e_fixture.h"

namespace coffer::rotation_e2e {
namespace {

using testing::BinaryPath;
using testing::LoggedHttpPort;
using testing::SourceDir;
using testing::Subprocess;

constexpr char kToken[] = "catagram-e2e-agent-token-0123456789";

// Requests /cats on each app in a loop; counts what failed, and which
// database users answered.
class Traffic {
 public:
  explicit Traffic(std::vector<int> ports) : ports_(std::move(ports)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        for (int port : ports_) {
          absl::StatusOr<std::string> body = testing::HttpGet(port, "/cats");
          absl::MutexLock lock(&mu_);
          if (!body.ok()) {
            failures_.push_back(absl::StrCat(port, ": ", body.status().message()));
          } else {
            ++ok_[port];
            // {"cats":3,"user":"x"} (C++) or {"cats": 3, "user": "x"} (Python).
            size_t u = body->find("\"user\":");
            if (u != std::string::npos) u = body->find('"', u + 7);
            if (u != std::string::npos) {
              last_user_[port] = body->substr(u + 1, body->find('"', u + 1) - u - 1);
            }
          }
        }
        absl::SleepFor(absl::Milliseconds(15));
      }
    });
  }
  ~Traffic() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }
  int ok(int port) {
    absl::MutexLock lock(&mu_);
    return ok_[port];
  }
  std::string last_user(int port) {
    absl::MutexLock lock(&mu_);
    return last_user_[port];
  }
  // Until every app answered `n` more requests.
  bool WaitServed(int n) {
    std::map<int, int> target;
    for (int p : ports_) target[p] = ok(p) + n;
    return testing::WaitFor(
        [&] {
          for (int p : ports_) {
            if (ok(p) < target[p]) return false;
          }
          return true;
        },
        absl::Seconds(30));
  }

 private:
  std::vector<int> ports_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::map<int, int> ok_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::string> last_user_ ABSL_GUARDED_BY(mu_);
};

class CatagramE2ETest : public RotationE2ETest {
 protected:
  void CreateCats(const std::string& role) {
    ASSERT_TRUE(pg().Exec("SET client_min_messages = warning; "
                          "CREATE TABLE IF NOT EXISTS cats (name text); DELETE FROM cats; "
                          "INSERT INTO cats VALUES ('tom'), ('felix'), ('garfield')")
                    .ok());
    ASSERT_TRUE(pg().Exec(absl::StrCat("GRANT SELECT ON cats TO \"", role, "\"")).ok());
  }

  std::map<std::string, std::string> AppEnv() {
    const rpc::TlsFiles app = testing::SharedPki().Identity("app-catagram");
    return {{"COFFER_ENDPOINT", c_->store->address()},
            {"COFFER_CA", app.ca_file},
            {"COFFER_CERT", app.cert_file},
            {"COFFER_KEY", app.key_file}};
  }

  // Catagram in C++ on `secret`; its port.
  int StartCpp(const std::string& secret, std::vector<std::string> flags = {}) {
    std::vector<std::string> argv = {BinaryPath("catagram"), "--http_address=127.0.0.1:0",
                                     "--secret_id=" + secret};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto& p = processes_.emplace_back(std::make_unique<Subprocess>(argv, AppEnv()));
    EXPECT_TRUE(p->Start().ok());
    int port = 0;
    EXPECT_TRUE(testing::WaitFor([&] { return (port = LoggedHttpPort(p->Output())) != 0; },
                                 absl::Seconds(10)))
        << p->Output();
    return port;
  }

  // coffer-agent (the Catagram identity) and Catagram in Python behind it;
  // the Python app's port.
  int StartPython(const std::string& secret) {
    const rpc::TlsFiles app = testing::SharedPki().Identity("app-catagram");
    auto& agent = processes_.emplace_back(std::make_unique<Subprocess>(
        std::vector<std::string>{BinaryPath("coffer-agent"), "--http_address=127.0.0.1:0",
                                 "--store_address=" + c_->store->address(),
                                 "--tls_ca=" + app.ca_file, "--tls_cert=" + app.cert_file,
                                 "--tls_key=" + app.key_file},
        std::map<std::string, std::string>{{"AWS_TOKEN", kToken}}));
    EXPECT_TRUE(agent->Start().ok());
    int agent_port = 0;
    EXPECT_TRUE(testing::WaitFor(
        [&] { return (agent_port = LoggedHttpPort(agent->Output())) != 0; }, absl::Seconds(10)))
        << agent->Output();
    auto& py = processes_.emplace_back(std::make_unique<Subprocess>(
        std::vector<std::string>{"/usr/bin/python3", SourceDir() + "/examples/catagram/catagram.py",
                                 "--port=0", absl::StrCat("--agent=http://127.0.0.1:", agent_port),
                                 "--secret-id=" + secret},
        std::map<std::string, std::string>{{"AWS_TOKEN", kToken}}));
    EXPECT_TRUE(py->Start().ok());
    int port = 0;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          const std::string out = py->Output();
          const size_t at = out.find("serving on ");
          return at != std::string::npos &&
                 absl::SimpleAtoi(absl::StripAsciiWhitespace(out.substr(at + 11, 6)), &port) &&
                 port != 0;
        },
        absl::Seconds(10)))
        << py->Output();
    return port;
  }

  // Every app's /stats.
  std::string Stats(const std::vector<int>& ports) {
    std::string out;
    for (int p : ports) {
      absl::StrAppend(&out, p, ": ", testing::HttpGet(p, "/stats").value_or("?"), "\n");
    }
    return out;
  }

  std::string AppLogs() {
    std::string out;
    for (auto& p : processes_) absl::StrAppend(&out, "---\n", p->Output());
    return out;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << AppLogs();
    processes_.clear();
    RotationE2ETest::TearDown();
  }

  std::vector<std::unique_ptr<Subprocess>> processes_;
};

TEST_F(CatagramE2ETest, ServesThroughThreeAlternatingUsersRotationsWithoutAFailedRequest) {
  CreateRole("cat_alt", "cat-alt-pw-0");
  CreateCats("cat_alt");
  const std::string secret = "demo/catagram/alt-db";
  const std::string arn =
      CreateSecret(secret, CredentialJson(pg(), "cat_alt", "cat-alt-pw-0", true));
  const std::vector<int> ports = {StartCpp(secret), StartPython(secret)};
  ASSERT_NE(ports[0], 0);
  ASSERT_NE(ports[1], 0);
  ServiceProcess* rotator =
      NewRotator("cat-alt", {WorkerFlag("pg-alt", c_->pg_alt->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  Traffic traffic(ports);
  ASSERT_TRUE(traffic.WaitServed(5)) << Stats(ports);
  for (int round = 1; round <= 3; ++round) {
    SCOPED_TRACE(absl::StrCat("rotation ", round));
    const std::string token = Rotate(arn, "pg-alt");
    ASSERT_EQ(StatusName(WaitRotationEnd(arn, token).status()), "STATUS_SUCCEEDED");
    const std::string user = GetCredential(arn, "AWSCURRENT").username;
    // Pushed to both apps: each is soon answering as the new user.
    for (int port : ports) {
      EXPECT_TRUE(
          testing::WaitFor([&] { return traffic.last_user(port) == user; }, absl::Seconds(10)))
          << port << " still answers as " << traffic.last_user(port) << "; want " << user;
    }
    ASSERT_TRUE(traffic.WaitServed(5)) << Stats(ports);
  }
  traffic.Stop();
  EXPECT_THAT(traffic.failures(), ::testing::IsEmpty()) << Stats(ports);
  for (int port : ports) EXPECT_GT(traffic.ok(port), 15);
}

TEST_F(CatagramE2ETest, RecoversAfterEachSingleUserRotationWithinItsRetryBudget) {
  CreateRole("cat_single", "cat-single-pw-0");
  CreateCats("cat_single");
  const std::string secret = "demo/catagram/single-db";
  const std::string arn =
      CreateSecret(secret, CredentialJson(pg(), "cat_single", "cat-single-pw-0", false));
  // Logging in on every request, without the watch: every rotation is met
  // by a failed login, a refresh and a retry.
  const int cpp = StartCpp(secret, {"--reuse_connections=false", "--push_invalidation=false"});
  const int python = StartPython(secret);
  ASSERT_NE(cpp, 0);
  ASSERT_NE(python, 0);
  const std::vector<int> ports = {cpp, python};
  ServiceProcess* rotator = NewRotator(
      "cat-single", {WorkerFlag("pg-single", c_->pg_single->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  Traffic traffic(ports);
  ASSERT_TRUE(traffic.WaitServed(5)) << Stats(ports);
  std::string password = "cat-single-pw-0";
  for (int round = 1; round <= 3; ++round) {
    SCOPED_TRACE(absl::StrCat("rotation ", round));
    const std::string token = Rotate(arn, "pg-single");
    ASSERT_EQ(StatusName(WaitRotationEnd(arn, token).status()), "STATUS_SUCCEEDED");
    const Credential now = GetCredential(arn, "AWSCURRENT");
    EXPECT_NE(now.password, password);
    EXPECT_FALSE(pg().CanLogin("cat_single", password)) << "the old password still works";
    password = now.password;
    ASSERT_TRUE(traffic.WaitServed(5)) << Stats(ports);
  }
  traffic.Stop();
  EXPECT_THAT(traffic.failures(), ::testing::IsEmpty()) << Stats(ports);
  // The C++ app met each rotation with a failed login and a refresh.
  const std::string stats = testing::HttpGet(cpp, "/stats").value_or("");
  int refreshes = 0;
  const size_t at = stats.find("\"refreshes\":");
  ASSERT_NE(at, std::string::npos) << stats;
  ASSERT_TRUE(absl::SimpleAtoi(stats.substr(at + 12, stats.find('}', at) - at - 12), &refreshes))
      << stats;
  EXPECT_GE(refreshes, 3) << stats;
}

}  // namespace
}  // namespace coffer::rotation_e2e
