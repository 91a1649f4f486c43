// Monitoring end to end: deploy/prometheus and deploy/grafana against the
// real services. promtool checks the config and the rules and runs the
// rules' unit tests; a real Prometheus (Debian's) scrapes coffer-kms,
// coffer-store and coffer-rotator with that config and shows up == 1 and
// grpc_server_handled_total for each; every metric a Grafana panel queries
// is one the live services export. Prometheus missing is a failure, not a
// skip: scripts/test.sh installs it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/common/json.h"
#include "tests/integration/http_get.h"
#include "tests/integration/kms_store.h"
#include "tests/testing/test_env.h"

namespace coffer::testing {
namespace {

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kPromtool[] = "/usr/bin/promtool";

std::string Deploy(const std::string& path) { return SourceDir() + "/deploy/" + path; }

// Runs `argv`; (exit code, output).
std::pair<int, std::string> RunTool(std::vector<std::string> argv) {
  Subprocess p(std::move(argv));
  if (!p.Start().ok()) return {-1, "cannot start"};
  const int code = p.Wait(absl::Seconds(60));
  return {code, p.Output()};
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '_' || c == '-' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// The metric names a PromQL expression uses (Coffer's and gRPC's, and up):
// not label names in matchers ({grpc_code="OK"}) nor in grouping clauses
// (by (job, grpc_method)).
std::set<std::string> MetricNames(const std::string& expr) {
  std::set<std::string> names;
  std::string token;
  bool grouping_next = false;  // the last word was by / without / on / ignoring
  int skip_depth = 0;          // inside a grouping clause's parentheses
  for (size_t i = 0; i <= expr.size(); ++i) {
    const char c = i < expr.size() ? expr[i] : ' ';
    if (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':') {
      token.push_back(c);
      continue;
    }
    if (!token.empty()) {
      const bool label = c == '=' || c == '!' || c == '~';
      if (token == "by" || token == "without" || token == "on" || token == "ignoring") {
        grouping_next = true;
      } else if (skip_depth == 0 && !label && c != '(' &&
                 (absl::StartsWith(token, "coffer_") || absl::StartsWith(token, "grpc_") ||
                  token == "up")) {
        names.insert(token);
      }
      token.clear();
    }
    if (c == '(') {
      if (grouping_next || skip_depth > 0) ++skip_depth;
      grouping_next = false;
    } else if (c == ')' && skip_depth > 0) {
      --skip_depth;
    }
  }
  return names;
}

// The family a sample name belongs to (histograms' _bucket/_sum/_count).
std::string Family(const std::string& name) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(name, suffix)) return name.substr(0, name.size() - strlen(suffix));
  }
  return name;
}

class MonitoringE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(kPrometheus, X_OK), 0) << "Debian's prometheus is not installed";
    ASSERT_EQ(::access(kPromtool, X_OK), 0) << "promtool is not installed";
  }
};

TEST_F(MonitoringE2ETest, PromtoolAcceptsTheConfigAndTheRulesAndTheirTestsPass) {
  auto [config_code, config_out] =
      RunTool({kPromtool, "check", "config", Deploy("prometheus/prometheus.yml")});
  EXPECT_EQ(config_code, 0) << config_out;
  auto [rules_code, rules_out] =
      RunTool({kPromtool, "check", "rules", Deploy("prometheus/alerts.yml")});
  EXPECT_EQ(rules_code, 0) << rules_out;
  EXPECT_NE(rules_out.find("SUCCESS: 7 rules found"), std::string::npos) << rules_out;
  auto [test_code, test_out] =
      RunTool({kPromtool, "test", "rules", Deploy("prometheus/alerts_test.yml")});
  EXPECT_EQ(test_code, 0) << test_out;
  // Every alert has a test that makes it fire.
  const std::string rules = ReadFile(Deploy("prometheus/alerts.yml"));
  const std::string tests = ReadFile(Deploy("prometheus/alerts_test.yml"));
  size_t at = 0;
  int alerts = 0;
  while ((at = rules.find("- alert: ", at)) != std::string::npos) {
    at += 9;
    const std::string name = rules.substr(at, rules.find('\n', at) - at);
    ++alerts;
    EXPECT_NE(tests.find("alertname: " + name), std::string::npos) << name << " has no test";
  }
  EXPECT_EQ(alerts, 7);
}

TEST_F(MonitoringE2ETest, PrometheusScrapesEveryServiceAndGrafanaQueriesOnlyLiveMetrics) {
  TempDir dir;
  std::unique_ptr<ServiceProcess> kms, store;
  ASSERT_TRUE(StartKmsAndStore(dir, {}, &kms, &store).ok());
  std::vector<std::string> rotator_args = {"--store_address=" + store->address(),
                                           "--lease_duration=3s",
                                           "--backoff_initial=100ms",
                                           "--backoff_max=200ms",
                                           "--max_attempts=2",
                                           "--resync_interval=1s"};
  TlsArgs(SharedPki().Identity("rotator"), &rotator_args);
  ServiceProcess rotator("coffer-rotator", rotator_args);
  ASSERT_TRUE(rotator.Start().ok()) << rotator.Output();

  // Traffic that brings every family a panel uses into being: calls, a
  // data-key cache hit, a denied call, a rotation that fails.
  const std::map<std::string, std::string> env = {{"COFFER_ADDRESS", store->address()}};
  auto ctl = [&](std::vector<std::string> args, std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> e = env;
    e.insert(extra.begin(), extra.end());
    return RunCofferctl(args, e);
  };
  ASSERT_EQ(ctl({"secrets", "create-secret", "--name=monitoring/a", "--secret-string=v"}).first, 0);
  ASSERT_EQ(ctl({"secrets", "get-secret-value", "--secret-id=monitoring/a"}).first, 0);
  ASSERT_EQ(ctl({"secrets", "get-secret-value", "--secret-id=monitoring/a"}).first, 0);
  const rpc::TlsFiles other = SharedPki().Identity("app-other");
  EXPECT_EQ(ctl({"secrets", "get-secret-value", "--secret-id=monitoring/a"},
                {{"COFFER_CERT", other.cert_file}, {"COFFER_KEY", other.key_file}})
                .first,
            254);
  ASSERT_EQ(ctl({"secrets", "rotate-secret", "--secret-id=monitoring/a",
                 "--rotation-worker=no-such-worker",
                 "--rotation-rules={\"automatically_after_days\":30}"})
                .first,
            0);
  ASSERT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(HttpGet(rotator.ports().metrics, "/metrics").value_or(""),
                                 "coffer_rotation_runs_total{");
      },
      absl::Seconds(30)))
      << rotator.Output();

  // Container healthchecks: coffer-health-probe on the plaintext
  // health-only ports.
  for (int health : {kms->ports().health, store->ports().health, rotator.ports().health}) {
    auto [code, out] =
        RunTool({BinaryPath("coffer-health-probe"), absl::StrCat("127.0.0.1:", health)});
    EXPECT_EQ(code, 0) << out;
  }
  {
    auto [code, out] = RunTool({BinaryPath("coffer-health-probe"),
                                absl::StrCat("127.0.0.1:", FreePort()), "--timeout=1s"});
    EXPECT_EQ(code, 1) << out;
  }

  // The rotator serves nothing but health: one check, so that it has
  // grpc_server_handled_total series too.
  {
    auto health = grpc::health::v1::Health::NewStub(rotator.Channel("cofferctl"));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(Invoke(health.get(), &grpc::health::v1::Health::Stub::Check, req, &resp).ok());
  }

  // Prometheus with deploy/prometheus's config, its targets pointed here
  // and a 1 s scrape interval (the shipped 15 s would only slow the test).
  const std::string prom = dir.Join("prometheus");
  std::filesystem::create_directories(prom + "/targets");
  std::string config = ReadFile(Deploy("prometheus/prometheus.yml"));
  ASSERT_TRUE(absl::StrContains(config, "scrape_interval: 15s"));
  config = absl::StrReplaceAll(config, {{"scrape_interval: 15s", "scrape_interval: 1s"}});
  WriteFile(prom + "/prometheus.yml", config);
  WriteFile(prom + "/alerts.yml", ReadFile(Deploy("prometheus/alerts.yml")));
  auto target = [](int port, const char* service) {
    return absl::StrCat("[{\"targets\": [\"127.0.0.1:", port, "\"], \"labels\": {\"service\": \"",
                        service, "\"}}]");
  };
  WriteFile(prom + "/targets/kms.json", target(kms->ports().metrics, "coffer-kms"));
  WriteFile(prom + "/targets/store.json", target(store->ports().metrics, "coffer-store"));
  WriteFile(prom + "/targets/rotator.json", target(rotator.ports().metrics, "coffer-rotator"));
  WriteFile(prom + "/targets/workers.json", "[]");
  const int port = FreePort();
  Subprocess prometheus({kPrometheus, "--config.file=" + prom + "/prometheus.yml",
                         "--storage.tsdb.path=" + prom + "/data",
                         absl::StrCat("--web.listen-address=127.0.0.1:", port)});
  ASSERT_TRUE(prometheus.Start().ok());

  auto query = [&](const std::string& q) -> std::string {
    return HttpGet(port, "/api/v1/query?query=" + UrlEncode(q)).value_or("");
  };
  // up == 1 for each job.
  std::set<std::string> up_jobs;
  const bool all_up = WaitFor(
      [&] {
        absl::StatusOr<JsonValue> doc = ParseJson(query("up == 1"));
        if (!doc.ok()) return false;
        const JsonValue* data = doc->Find("data");
        const JsonValue* result = data ? data->Find("result") : nullptr;
        if (result == nullptr) return false;
        up_jobs.clear();
        for (const JsonValue& r : result->items) {
          const JsonValue* metric = r.Find("metric");
          const JsonValue* job = metric ? metric->Find("job") : nullptr;
          if (job != nullptr) up_jobs.insert(job->text);
        }
        return up_jobs.size() == 3;
      },
      absl::Seconds(60));
  EXPECT_TRUE(all_up) << "up: " << query("up") << "\n" << prometheus.Output();
  EXPECT_EQ(up_jobs, (std::set<std::string>{"coffer-kms", "coffer-store", "coffer-rotator"}));

  // grpc_server_handled_total series for each.
  std::string handled;
  EXPECT_TRUE(WaitFor(
      [&] {
        handled = query("count by (job) (grpc_server_handled_total)");
        return absl::StrContains(handled, "\"coffer-kms\"") &&
               absl::StrContains(handled, "\"coffer-store\"") &&
               absl::StrContains(handled, "\"coffer-rotator\"");
      },
      absl::Seconds(30)))
      << handled;

  // The rules loaded are the shipped ones.
  const std::string rules = HttpGet(port, "/api/v1/rules").value_or("");
  for (const char* alert :
       {"CofferRotationFailed", "CofferKmsUnreachable", "CofferLatencySLOBurn"}) {
    EXPECT_TRUE(absl::StrContains(rules, alert)) << rules.substr(0, 300);
  }

  // Every metric any Grafana panel queries is exported by a live service.
  std::set<std::string> exported = {"up"};  // Prometheus's own, per target
  for (int p : {kms->ports().metrics, store->ports().metrics, rotator.ports().metrics}) {
    std::istringstream lines(HttpGet(p, "/metrics").value_or(""));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line[0] == '#') continue;
      exported.insert(Family(line.substr(0, line.find_first_of("{ "))));
    }
  }
  absl::StatusOr<JsonValue> dashboard =
      ParseJson(ReadFile(Deploy("grafana/coffer-dashboard.json")));
  ASSERT_TRUE(dashboard.ok()) << dashboard.status();
  const JsonValue* panels = dashboard->Find("panels");
  ASSERT_NE(panels, nullptr);
  int queries = 0;
  for (const JsonValue& panel : panels->items) {
    const JsonValue* title = panel.Find("title");
    const JsonValue* targets = panel.Find("targets");
    ASSERT_NE(targets, nullptr) << (title ? title->text : "?");
    for (const JsonValue& t : targets->items) {
      const JsonValue* expr = t.Find("expr");
      ASSERT_NE(expr, nullptr);
      ++queries;
      const std::set<std::string> names = MetricNames(expr->text);
      EXPECT_FALSE(names.empty()) << expr->text;
      for (const std::string& name : names) {
        EXPECT_TRUE(exported.count(Family(name)))
            << (title ? title->text : "?") << ": " << name << " is not exported";
      }
      // And Prometheus accepts the query.
      const std::string answer = query(expr->text);
      EXPECT_TRUE(absl::StrContains(answer, "\"status\":\"success\"")) << expr->text << "\n"
                                                                       << answer;
    }
  }
  EXPECT_GE(queries, 12);
}

}  // namespace
}  // namespace coffer::testing
