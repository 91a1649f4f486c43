#include "tests/integration/rotation_e2e_fixture.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace coffer::rotation_e2e {
namespace {

// The cluster every test shares; deleted after the last test.
Cluster* g_cluster = nullptr;

class ClusterEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    delete g_cluster;
    g_cluster = nullptr;
  }
};
[[maybe_unused]] ::testing::Environment* const kClusterEnvironment =
    ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

}  // namespace

// ---- PostgreSQL from the test's side ----

std::string CredentialJson(const PostgresServer& pg, const std::string& user,
                           const std::string& password, bool with_master) {
  std::string json =
      absl::StrCat(R"({"engine":"postgres","host":")", pg.host(), R"(","port":)", pg.port(),
                   R"(,"dbname":"postgres","username":")", user, R"(","password":")", password,
                   // The test server has no TLS: the worker refuses
                   // plaintext unless the secret allows it.
                   R"(","sslmode":"disable")");
  if (with_master) absl::StrAppend(&json, R"(,"master_secret":")", kMasterSecret, R"(")");
  return json + "}";
}

absl::StatusOr<Credential> ParseCredential(const std::string& json) {
  google::protobuf::Struct s;
  if (!google::protobuf::util::JsonStringToMessage(json, &s).ok()) {
    return absl::InvalidArgumentError("not JSON: " + json);
  }
  Credential c;
  c.username = s.fields().count("username") ? s.fields().at("username").string_value() : "";
  c.password = s.fields().count("password") ? s.fields().at("password").string_value() : "";
  if (c.username.empty() || c.password.empty()) {
    return absl::InvalidArgumentError("no username/password in " + json);
  }
  return c;
}

// ---- The exec worker's test program ----

std::string ExecScript(const std::string& who, const std::string& log) {
  const std::string ctl = testing::BinaryPath("cofferctl");
  return absl::StrCat(R"SH(#!/bin/bash
set -u -o pipefail
WHO=")SH",
                      who, R"SH("
LOG=")SH",
                      log, R"SH("
CTL=")SH",
                      ctl, R"SH("
id="$COFFER_SECRET_ID"; tok="$COFFER_CLIENT_REQUEST_TOKEN"; step="$COFFER_ROTATION_STEP"
echo "$WHO $id $tok $step start $(date +%s.%N)" >> "$LOG"
rc=0
case "$step" in
  createSecret)
    if ! "$CTL" secrets get-secret-value --secret-id="$id" --version-id="$tok" >/dev/null 2>&1; then
      "$CTL" secrets put-secret-value --secret-id="$id" --client-request-token="$tok" \
          --secret-string="rotated-$tok" --version-stages=AWSPENDING >/dev/null || rc=1
    fi ;;
  setSecret|testSecret) ;;
  finishSecret)
    cur=$("$CTL" secrets get-secret-value --secret-id="$id" --version-stage=AWSCURRENT \
          | sed -n 's/.*"version_id": *"\([^"]*\)".*/\1/p') || rc=1
    pending=$("$CTL" secrets get-secret-value --secret-id="$id" --version-id="$tok") || rc=1
    if [ $rc = 0 ] && [ "$cur" != "$tok" ]; then
      "$CTL" secrets update-secret-version-stage --secret-id="$id" --version-stage=AWSCURRENT \
          --remove-from-version-id="$cur" --move-to-version-id="$tok" >/dev/null || rc=1
    fi
    if [ $rc = 0 ] && echo "$pending" | grep -q '"AWSPENDING"'; then
      "$CTL" secrets update-secret-version-stage --secret-id="$id" --version-stage=AWSPENDING \
          --remove-from-version-id="$tok" >/dev/null || rc=1
    fi ;;
esac
echo "$WHO $id $tok $step end $rc $(date +%s.%N)" >> "$LOG"
exit $rc
)SH");
}

bool WriteExecutable(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return ::chmod(path.c_str(), 0755) == 0;
}

// ---- The shared cluster ----

absl::Status Cluster::Start() {
  auto server = PostgresServer::Start();
  if (!server.ok()) return server.status();
  pg = *std::move(server);

  if (absl::Status s = testing::StartKmsAndStore(dir, {}, &kms, &store); !s.ok()) return s;
  secrets = sm::SecretsManager::NewStub(store->Channel("cofferctl"));

  auto worker = [&](const std::string& binary, const std::string& identity,
                    std::vector<std::string> args) {
    args.push_back("--store_address=" + store->address());
    TlsArgs(testing::SharedPki().Identity(identity), &args);
    return std::make_unique<ServiceProcess>(binary, args);
  };
  pg_single = worker("coffer-worker-postgres", "worker-postgres",
                     {"--strategy=single-user", "--step_threads=8"});
  pg_alt = worker("coffer-worker-postgres", "worker-postgres",
                  {"--strategy=alternating-users", "--step_threads=8"});
  exec_log = dir.Join("exec.log");
  for (const char* who : {"A", "B"}) {
    const std::string script = dir.Join(absl::StrCat("rotate-", who, ".sh"));
    if (!WriteExecutable(script, ExecScript(who, exec_log))) {
      return absl::InternalError("cannot write " + script);
    }
    (who[0] == 'A' ? exec_a : exec_b) =
        worker("coffer-worker-exec", "worker-exec",
               {"--command=" + script, "--step_timeout=20s", "--step_threads=8"});
  }
  for (ServiceProcess* p : {pg_single.get(), pg_alt.get(), exec_a.get(), exec_b.get()}) {
    if (absl::Status s = p->Start(); !s.ok()) return s;
  }

  // The master credential of the alternating-users strategy.
  sm::CreateSecretRequest req;
  req.set_name(kMasterSecret);
  req.set_secret_string(CredentialJson(*pg, pg->superuser(), pg->superuser_password(), false));
  sm::CreateSecretResponse resp;
  bool created = testing::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        return secrets->CreateSecret(&ctx, req, &resp).ok();
      },
      absl::Seconds(20));
  if (!created) return absl::UnavailableError("cannot create the master secret");
  return absl::OkStatus();
}

std::string Cluster::Logs() const {
  std::string out;
  auto add = [&](const char* name, const std::unique_ptr<ServiceProcess>& p) {
    if (p) absl::StrAppend(&out, "---- ", name, " ----\n", p->Output());
  };
  add("store", store);
  add("worker-postgres single-user", pg_single);
  add("worker-postgres alternating-users", pg_alt);
  return out;
}

// ---- Test fixture ----

void RotationE2ETest::SetUp() {
  // scripts/test.sh installs PostgreSQL: a missing server is a failure.
  ASSERT_TRUE(PostgresServer::Installed())
      << "PostgreSQL is not installed (./scripts/test.sh installs it)";
  if (g_cluster == nullptr) {
    g_cluster = new Cluster();
    if (absl::Status s = g_cluster->Start(); !s.ok()) {
      g_cluster->failure = s.ToString() + "\n" + g_cluster->Logs();
    }
  }
  ASSERT_EQ(g_cluster->failure, "");
  c_ = g_cluster;
}

void RotationE2ETest::TearDown() {
  if (HasFailure() && c_ != nullptr) {
    for (auto& [name, r] : rotators_) {
      ADD_FAILURE() << "---- rotator " << name << " ----\n" << r->Output();
    }
    ADD_FAILURE() << c_->Logs();
  }
  if (getenv("ROTATION_E2E_VERBOSE") != nullptr) {
    for (auto& [name, r] : rotators_)
      std::cout << "---- rotator " << name << " ----\n" << r->Output();
  }
  for (auto& [name, r] : rotators_) {
    if (r->running()) {
      EXPECT_EQ(r->Stop(), 0) << "rotator " << name << "\n" << r->Output();
    }
  }
  rotators_.clear();
}

double RunsTotal(const std::string& page, const std::string& worker, const std::string& result) {
  double total = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, "coffer_rotation_runs_total{")) continue;
    if (!absl::StrContains(line, absl::StrCat("worker=\"", worker, "\"")) ||
        !absl::StrContains(line, absl::StrCat("result=\"", result, "\""))) {
      continue;
    }
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) total += v;
  }
  return total;
}

}  // namespace coffer::rotation_e2e
