// End-to-end tests of rotation (shared spec rotation.md, "What must hold"):
// the real coffer-rotator, coffer-store, coffer-kms, coffer-worker-postgres
// and coffer-worker-exec as processes over mTLS, and a real PostgreSQL
// (tests/testing/postgres.h) with password authentication.
//
// One cluster (PostgreSQL, KMS, store, the workers) serves every test; each
// test starts its own rotator(s) and uses its own roles and secrets.
//
//   RotationE2ETest.SingleUser...        single-user strategy
//   RotationE2ETest.AlternatingUsers...  a client loop never fails a login
//   RotationE2ETest.FailingSetSecret...  retries with backoff, then FAILED
//   RotationE2ETest.UnknownWorker..., WorkerWithAnotherIdentity...
//                                        registry errors fail the rotation
//   RotationE2ETest.TwoRotators...       each secret rotated exactly once
//   RotationCrash/RotationCrashE2ETest.* the rotator SIGKILLed after each
//                                        step (before and after it recorded
//                                        the step) or SIGTERMed, the worker
//                                        SIGKILLed after each step;
//                                        AWSCURRENT logs in throughout
//   RotationWorkerCrashE2ETest.*         the worker SIGKILLed inside setSecret
//   RotationE2ETest.Rotates100...        100 PostgreSQL credentials, timed
//
// ROTATION_E2E_VERBOSE=1 prints every rotator's log after each test.
//
// Crash points are made deterministic by GatedWorker: an in-process
// RotationWorker (with the postgres worker's certificate) registered with
// the rotator in front of the real worker. It forwards each Step and can
// hold a chosen step (before forwarding it, or after the real worker did it
// and before the rotator hears back) until the test has killed what it
// wants to kill.
#include <libpq-fe.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coffer/rotation/v1/worker.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "tests/integration/http_get.h"
#include "tests/integration/service_process.h"
#include "tests/testing/postgres.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::PostgresServer;
using testing::ServiceProcess;
namespace sm = ::coffer::secrets::v1;
namespace rv1 = ::coffer::rotation::v1;

constexpr char kPostgresWorkerId[] = "spiffe://coffer.local/worker/postgres";
constexpr char kExecWorkerId[] = "spiffe://coffer.local/worker/exec";
constexpr char kMasterSecret[] = "rotation-e2e/pg-master";

std::string StepName(rv1::RotationStep step) {
  switch (step) {
    case rv1::ROTATION_STEP_CREATE_SECRET: return "createSecret";
    case rv1::ROTATION_STEP_SET_SECRET: return "setSecret";
    case rv1::ROTATION_STEP_TEST_SECRET: return "testSecret";
    case rv1::ROTATION_STEP_FINISH_SECRET: return "finishSecret";
    default: return "";
  }
}

std::string StatusName(sm::RotationState::Status s) { return sm::RotationState::Status_Name(s); }

void TlsArgs(const rpc::TlsFiles& tls, std::vector<std::string>* args) {
  args->push_back("--tls_ca=" + tls.ca_file);
  args->push_back("--tls_cert=" + tls.cert_file);
  args->push_back("--tls_key=" + tls.key_file);
}

// ---- PostgreSQL from the test's side ----

struct Credential {
  std::string username;
  std::string password;
};

// The value rotation.md defines for a PostgreSQL secret.
std::string CredentialJson(const PostgresServer& pg, const std::string& user,
                           const std::string& password, bool with_master) {
  std::string json = absl::StrCat(R"({"engine":"postgres","host":")", pg.host(),
                                  R"(","port":)", pg.port(), R"(,"dbname":"postgres","username":")",
                                  user, R"(","password":")", password, R"(")");
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

// A superuser connection held open by the test (e.g. a transaction that
// makes the worker wait on a lock).
class PgConnection {
 public:
  explicit PgConnection(const PostgresServer& pg) {
    const std::string port = absl::StrCat(pg.port());
    const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
    const char* values[] = {"127.0.0.1", port.c_str(), pg.superuser().c_str(),
                            pg.superuser_password().c_str(), "postgres", "5", nullptr};
    conn_ = PQconnectdbParams(keys, values, 0);
  }
  ~PgConnection() {
    if (conn_ != nullptr) PQfinish(conn_);
  }
  bool ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return conn_ ? PQerrorMessage(conn_) : "no connection"; }

  // Runs `sql`; the first column of the first row ("" when none).
  void BenchRotate(int n, const std::string& worker, const std::string& address,
                   bool alternating);

  absl::StatusOr<std::string> Query(const std::string& sql) {
    if (!ok()) return absl::UnavailableError(error());
    PGresult* r = PQexec(conn_, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      std::string e = PQresultErrorMessage(r);
      PQclear(r);
      return absl::InternalError(absl::StrCat(sql, ": ", e));
    }
    std::string out;
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) out = PQgetvalue(r, 0, 0);
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_ = nullptr;
};

// ---- The exec worker's test program ----

// A bash program for coffer-worker-exec that does a standard rotation
// through cofferctl (createSecret stores "rotated-<token>", finishSecret
// moves the labels) and appends "<who> <arn> <token> <step> start <time>"
// and "... end <rc> <time>" lines to `log`.
std::string ExecScript(const std::string& who, const std::string& log) {
  const std::string ctl = testing::BinaryPath("cofferctl");
  return absl::StrCat(R"SH(#!/bin/bash
set -u -o pipefail
WHO=")SH", who, R"SH("
LOG=")SH", log, R"SH("
CTL=")SH", ctl, R"SH("
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

// ---- GatedWorker: a RotationWorker in front of a real worker ----

class GatedWorker final : public rv1::RotationWorker::Service {
 public:
  enum class Gate {
    kNone,
    // Hold the call before forwarding it (the rotator has recorded every
    // earlier step); the held call fails once released.
    kHoldBefore,
    // Forward the call (the real worker does the step), then hold the reply;
    // the held call fails once released, so the rotator never learns that
    // the step was done.
    kHoldAfter,
    // Forward the call, then run the kill hook (the real worker dies and
    // comes back) and fail the call as a dead worker would.
    kKillWorkerAfter,
  };

  struct Call {
    rv1::RotationStep step;
    std::string token;
    absl::Time time;
    grpc::StatusCode code;  // of the real worker (OK when it did the step)
  };

  // `target`: a channel to the real worker with the rotator's identity.
  explicit GatedWorker(std::shared_ptr<grpc::Channel> target)
      : stub_(rv1::RotationWorker::NewStub(std::move(target))) {}

  ~GatedWorker() override { Stop(); }

  // Serves on a fresh port with the postgres worker's certificate.
  absl::Status Start() {
    rpc::ServerOptions options;
    options.tls = testing::SharedPki().Identity("worker-postgres");
    auto server = rpc::Server::Start(std::move(options), {this}, &health_);
    if (!server.ok()) return server.status();
    server_ = *std::move(server);
    health_.Set("", true);
    return absl::OkStatus();
  }
  void Stop() {
    Release();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }
  std::string address() const { return absl::StrCat("localhost:", server_->port()); }

  // Arms a one-shot gate for the first call of `step`.
  void Arm(Gate gate, rv1::RotationStep step, std::function<void()> kill_hook = nullptr) {
    absl::MutexLock lock(&mu_);
    gate_ = gate;
    gate_step_ = step;
    kill_hook_ = std::move(kill_hook);
    held_ = false;
    released_ = false;
  }
  // True once a call is being held.
  bool WaitHeld(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&held_), timeout);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  std::vector<Call> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // Successful forwarded calls of `step`.
  int Done(rv1::RotationStep step) const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count_if(calls_.begin(), calls_.end(), [&](const Call& c) {
      return c.step == step && c.code == grpc::StatusCode::OK;
    }));
  }

  grpc::Status Step(grpc::ServerContext* context, const rv1::StepRequest* request,
                    rv1::StepResponse* response) override {
    Gate gate = Gate::kNone;
    std::function<void()> kill_hook;
    {
      absl::MutexLock lock(&mu_);
      if (gate_ != Gate::kNone && request->step() == gate_step_) {
        gate = gate_;
        kill_hook = kill_hook_;
        gate_ = Gate::kNone;  // one shot
      }
    }
    if (gate == Gate::kHoldBefore) {
      Hold(context);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gated worker: held before the step");
    }
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = stub_->Step(&ctx, *request, response);
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back({request->step(), request->client_request_token(), absl::Now(),
                        status.error_code()});
    }
    if (gate == Gate::kHoldAfter) {
      Hold(context);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gated worker: held after the step");
    }
    if (gate == Gate::kKillWorkerAfter) {
      if (kill_hook) kill_hook();
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gated worker: the worker died");
    }
    return status;
  }

 private:
  void Hold(grpc::ServerContext* context) {
    absl::MutexLock lock(&mu_);
    held_ = true;
    while (!released_ && !context->IsCancelled()) {
      mu_.AwaitWithTimeout(absl::Condition(&released_), absl::Milliseconds(20));
    }
  }

  std::unique_ptr<rv1::RotationWorker::Stub> stub_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
  mutable absl::Mutex mu_;
  Gate gate_ ABSL_GUARDED_BY(mu_) = Gate::kNone;
  rv1::RotationStep gate_step_ ABSL_GUARDED_BY(mu_) = rv1::ROTATION_STEP_UNSPECIFIED;
  std::function<void()> kill_hook_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

// ---- The shared cluster ----

struct Cluster {
  std::unique_ptr<PostgresServer> pg;
  testing::TempDir dir;
  std::unique_ptr<ServiceProcess> kms;
  std::unique_ptr<ServiceProcess> store;
  std::unique_ptr<ServiceProcess> pg_single;  // coffer-worker-postgres --strategy=single-user
  std::unique_ptr<ServiceProcess> pg_alt;     // --strategy=alternating-users
  std::unique_ptr<ServiceProcess> exec_a;     // coffer-worker-exec, ExecScript("A")
  std::unique_ptr<ServiceProcess> exec_b;     // ExecScript("B")
  std::string exec_log;
  std::unique_ptr<sm::SecretsManager::Stub> secrets;
  std::string failure;

  absl::Status Start() {
    auto server = PostgresServer::Start();
    if (!server.ok()) return server.status();
    pg = *std::move(server);

    std::vector<std::string> kms_args = {"--data_dir=" + dir.Join("kms"), "--dev_mode",
                                         "--maintenance_interval=1s"};
    TlsArgs(testing::SharedPki().Identity("kms"), &kms_args);
    kms = std::make_unique<ServiceProcess>("coffer-kms", kms_args);
    if (absl::Status s = kms->Start(); !s.ok()) return s;

    std::vector<std::string> store_args = {"--data_dir=" + dir.Join("store"),
                                           "--kms_address=" + kms->address(),
                                           "--kms_check_interval=200ms", "--kms_timeout=1s"};
    TlsArgs(testing::SharedPki().Identity("store"), &store_args);
    store = std::make_unique<ServiceProcess>("coffer-store", store_args);
    if (absl::Status s = store->Start(); !s.ok()) return s;
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

  std::string Logs() const {
    std::string out;
    auto add = [&](const char* name, const std::unique_ptr<ServiceProcess>& p) {
      if (p) absl::StrAppend(&out, "---- ", name, " ----\n", p->Output());
    };
    add("store", store);
    add("worker-postgres single-user", pg_single);
    add("worker-postgres alternating-users", pg_alt);
    return out;
  }
};

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

// ---- Test fixture ----

class RotationE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresServer::Installed()) {
      GTEST_SKIP() << "PostgreSQL is not installed";
    }
    if (g_cluster == nullptr) {
      g_cluster = new Cluster();
      if (absl::Status s = g_cluster->Start(); !s.ok()) {
        g_cluster->failure = s.ToString() + "\n" + g_cluster->Logs();
      }
    }
    ASSERT_EQ(g_cluster->failure, "");
    c_ = g_cluster;
  }

  void TearDown() override {
    if (HasFailure() && c_ != nullptr) {
      for (auto& [name, r] : rotators_) {
        ADD_FAILURE() << "---- rotator " << name << " ----\n" << r->Output();
      }
      ADD_FAILURE() << c_->Logs();
    }
    if (getenv("ROTATION_E2E_VERBOSE") != nullptr) {
      for (auto& [name, r] : rotators_) std::cout << "---- rotator " << name << " ----\n" << r->Output();
    }
    for (auto& [name, r] : rotators_) {
      if (r->running()) {
        EXPECT_EQ(r->Stop(), 0) << "rotator " << name << "\n" << r->Output();
      }
    }
    rotators_.clear();
  }

  PostgresServer& pg() { return *c_->pg; }
  sm::SecretsManager::Stub& secrets() { return *c_->secrets; }

  static std::string WorkerFlag(const std::string& name, const std::string& address,
                                const std::string& spiffe_id) {
    return absl::StrCat("--worker=", name, "=", address, "=", spiffe_id);
  }

  // A coffer-rotator (not started) with short leases and backoff; `extra`
  // flags come last and win.
  ServiceProcess* NewRotator(const std::string& holder, const std::vector<std::string>& workers,
                             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--store_address=" + c_->store->address(),
                                     "--holder=" + holder,
                                     "--lease_duration=3s",
                                     "--backoff_initial=100ms",
                                     "--backoff_max=500ms",
                                     "--max_attempts=3",
                                     "--step_timeout=20s",
                                     "--concurrency=4",
                                     "--resync_interval=1s"};
    TlsArgs(testing::SharedPki().Identity("rotator"), &args);
    args.insert(args.end(), workers.begin(), workers.end());
    args.insert(args.end(), extra.begin(), extra.end());
    auto& slot = rotators_[holder];
    slot = std::make_unique<ServiceProcess>("coffer-rotator", args);
    return slot.get();
  }

  template <typename Req, typename Resp, typename Call>
  grpc::Status Invoke(Call call, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (c_->secrets.get()->*call)(&ctx, req, resp);
  }

  // A role that logs in with `password` (and may read rotation_e2e_data).
  void CreateRole(const std::string& role, const std::string& password) {
    ASSERT_TRUE(pg().Exec("SET client_min_messages = warning; "
                          "CREATE TABLE IF NOT EXISTS rotation_e2e_data (n int)")
                    .ok());
    ASSERT_TRUE(pg().Exec(absl::StrCat("CREATE ROLE \"", role, "\" LOGIN PASSWORD '", password,
                                       "'; GRANT SELECT ON rotation_e2e_data TO \"", role, "\""))
                    .ok());
  }
  void EnsureDataTable() {
    ASSERT_TRUE(pg().Exec("SET client_min_messages = warning; "
                          "CREATE TABLE IF NOT EXISTS rotation_e2e_data (n int); "
                          "DELETE FROM rotation_e2e_data; INSERT INTO rotation_e2e_data VALUES (42)")
                    .ok());
  }

  // Creates the secret; its ARN.
  std::string CreateSecret(const std::string& name, const std::string& value) {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    sm::CreateSecretResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::CreateSecret, req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    return resp.arn();
  }

  // RotateSecret(rotate_immediately); the pending version's id.
  std::string Rotate(const std::string& secret, const std::string& worker) {
    sm::RotateSecretRequest req;
    req.set_secret_id(secret);
    req.set_rotation_worker(worker);
    req.mutable_rotation_rules()->set_automatically_after_days(30);
    req.set_rotate_immediately(true);
    sm::RotateSecretResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::RotateSecret, req, &resp);
    EXPECT_TRUE(s.ok()) << secret << ": " << s.error_message();
    EXPECT_FALSE(resp.version_id().empty());
    return resp.version_id();
  }

  sm::DescribeSecretResponse Describe(const std::string& secret) {
    sm::DescribeSecretRequest req;
    req.set_secret_id(secret);
    sm::DescribeSecretResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::DescribeSecret, req, &resp);
    EXPECT_TRUE(s.ok()) << secret << ": " << s.error_message();
    return resp;
  }

  sm::GetSecretValueResponse Get(const std::string& secret, const std::string& stage,
                                 const std::string& version_id = "") {
    sm::GetSecretValueRequest req;
    req.set_secret_id(secret);
    req.set_version_stage(stage);
    req.set_version_id(version_id);
    sm::GetSecretValueResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::GetSecretValue, req, &resp);
    EXPECT_TRUE(s.ok()) << secret << " " << stage << version_id << ": " << s.error_message();
    return resp;
  }

  Credential GetCredential(const std::string& secret, const std::string& stage) {
    auto c = ParseCredential(Get(secret, stage).secret_string());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : Credential{};
  }

  // Waits until the rotation of pending version `token` ends (SUCCEEDED,
  // FAILED or CANCELLED); its final state.
  sm::RotationState WaitRotationEnd(const std::string& secret, const std::string& token,
                                    absl::Duration timeout = absl::Seconds(30)) {
    sm::RotationState state;
    testing::WaitFor(
        [&] {
          state = Describe(secret).rotation_state();
          return state.version_id() == token &&
                 state.status() != sm::RotationState::STATUS_IN_PROGRESS &&
                 state.status() != sm::RotationState::STATUS_UNSPECIFIED;
        },
        timeout);
    return state;
  }

  // version id -> its labels, sorted.
  std::map<std::string, std::vector<std::string>> Labels(const std::string& secret) {
    std::map<std::string, std::vector<std::string>> out;
    const sm::DescribeSecretResponse d = Describe(secret);
    for (const auto& [id, stages] : d.version_ids_to_stages()) {
      std::vector<std::string> s(stages.stages().begin(), stages.stages().end());
      std::sort(s.begin(), s.end());
      out[id] = s;
    }
    return out;
  }

  // After a completed rotation from `old_version` to `token`: exactly those
  // two labelled versions, no AWSPENDING left anywhere.
  void ExpectRotatedLabels(const std::string& secret, const std::string& old_version,
                           const std::string& token) {
    std::map<std::string, std::vector<std::string>> want = {
        {token, {"AWSCURRENT"}}, {old_version, {"AWSPREVIOUS"}}};
    EXPECT_EQ(Labels(secret), want) << secret;
  }

  void BenchRotate(int n, const std::string& worker, const std::string& address,
                   bool alternating);

  absl::StatusOr<std::string> Query(const std::string& sql) {
    PgConnection conn(pg());
    return conn.Query(sql);
  }

  Cluster* c_ = nullptr;
  std::map<std::string, std::unique_ptr<ServiceProcess>> rotators_;
};

// Reads AWSCURRENT from the store and logs in to PostgreSQL with it (and
// reads a table, so that grants count), in a loop on its own thread.
class LoginLoop {
 public:
  LoginLoop(Cluster* c, const std::string& secret) : c_(c), secret_(secret) {
    thread_ = std::thread([this] { Run(); });
  }
  ~LoginLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int logins() const { return logins_; }
  // Users seen in AWSCURRENT, in order of first appearance.
  std::vector<std::string> users() {
    absl::MutexLock lock(&mu_);
    return users_;
  }
  std::vector<std::string> failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }
  void Reset() {
    absl::MutexLock lock(&mu_);
    failures_.clear();
    logins_ = 0;
  }
  // Waits for `n` more logins (successful or not).
  bool WaitLogins(int n, absl::Duration timeout = absl::Seconds(20)) {
    const int target = logins_ + n;
    return testing::WaitFor([&] { return logins_ >= target; }, timeout);
  }

 private:
  void Run() {
    while (!stop_) {
      sm::GetSecretValueRequest req;
      req.set_secret_id(secret_);
      sm::GetSecretValueResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::Status s = c_->secrets->GetSecretValue(&ctx, req, &resp);
      std::string failure;
      if (!s.ok()) {
        failure = "GetSecretValue: " + s.error_message();
      } else if (auto cred = ParseCredential(resp.secret_string()); !cred.ok()) {
        failure = cred.status().ToString();
      } else {
        {
          absl::MutexLock lock(&mu_);
          if (std::find(users_.begin(), users_.end(), cred->username) == users_.end()) {
            users_.push_back(cred->username);
          }
        }
        absl::Status login = c_->pg->ExecAs(cred->username, cred->password,
                                            "SELECT n FROM rotation_e2e_data");
        if (!login.ok()) {
          failure = absl::StrCat("login as ", cred->username, " (version ", resp.version_id(),
                                 "): ", login.ToString());
        }
      }
      if (!failure.empty()) {
        absl::MutexLock lock(&mu_);
        failures_.push_back(absl::StrCat(absl::FormatTime("%H:%M:%E3S", absl::Now(),
                                                          absl::LocalTimeZone()),
                                         " ", failure));
      }
      ++logins_;
      absl::SleepFor(absl::Milliseconds(10));  // ~50 logins/s: leaves CPU to the services
    }
  }

  Cluster* c_;
  std::string secret_;
  std::atomic<bool> stop_{false};
  std::atomic<int> logins_{0};
  absl::Mutex mu_;
  std::vector<std::string> users_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// coffer_rotation_runs_total{...} with these label values on a metrics page
// (summed; 0 when absent).
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

// ---- Single user ----

TEST_F(RotationE2ETest, SingleUserRotationChangesThePasswordInPostgres) {
  EnsureDataTable();
  CreateRole("single_app", "initial-pw-1");
  const std::string arn =
      CreateSecret("rotation-e2e/single", CredentialJson(pg(), "single_app", "initial-pw-1", false));
  const std::string first_version = Get(arn, "AWSCURRENT").version_id();
  ASSERT_TRUE(pg().CanLogin("single_app", "initial-pw-1"));

  ServiceProcess* rotator = NewRotator(
      "single-1", {WorkerFlag("pg-single", c_->pg_single->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  // Logins before, during and after: the spec allows brief failures during
  // the switch for this strategy, so only before and after are asserted.
  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());

  std::string previous_version = first_version;
  std::string previous_password = "initial-pw-1";
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("rotation ", round + 1));
    const std::string token = Rotate(arn, "pg-single");
    sm::RotationState state = WaitRotationEnd(arn, token);
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << state.DebugString();
    EXPECT_EQ(state.next_step(), "");

    const sm::GetSecretValueResponse current = Get(arn, "AWSCURRENT");
    EXPECT_EQ(current.version_id(), token);
    const Credential now = *ParseCredential(current.secret_string());
    EXPECT_EQ(now.username, "single_app");
    EXPECT_NE(now.password, previous_password);
    EXPECT_TRUE(pg().CanLogin("single_app", now.password)) << "AWSCURRENT does not log in";

    const sm::GetSecretValueResponse prev = Get(arn, "AWSPREVIOUS");
    EXPECT_EQ(prev.version_id(), previous_version);
    EXPECT_EQ(ParseCredential(prev.secret_string())->password, previous_password);
    EXPECT_FALSE(pg().CanLogin("single_app", previous_password))
        << "AWSPREVIOUS still logs in after a single-user rotation";
    ExpectRotatedLabels(arn, previous_version, token);

    const sm::DescribeSecretResponse d = Describe(arn);
    EXPECT_TRUE(d.rotation_enabled());
    EXPECT_EQ(d.rotation_worker(), "pg-single");
    EXPECT_TRUE(d.has_last_rotated_date());
    EXPECT_GT(d.next_rotation_date().seconds(), absl::ToUnixSeconds(absl::Now()));

    previous_version = token;
    previous_password = now.password;
  }
  loop.Reset();
  ASSERT_TRUE(loop.WaitLogins(3));
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty()) << "logins fail after the rotation";

  const std::string metrics = testing::HttpGet(rotator->ports().metrics, "/metrics").value_or("");
  EXPECT_GE(RunsTotal(metrics, "pg-single", "success"), 2) << metrics;
}

// ---- Alternating users ----

TEST_F(RotationE2ETest, AlternatingUsersNeverFailALoginDuringRotations) {
  EnsureDataTable();
  CreateRole("alt_app", "initial-alt-pw");
  const std::string arn =
      CreateSecret("rotation-e2e/alt", CredentialJson(pg(), "alt_app", "initial-alt-pw", true));

  ServiceProcess* rotator =
      NewRotator("alt-1", {WorkerFlag("pg-alt", c_->pg_alt->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));

  std::string previous_version = Get(arn, "AWSCURRENT").version_id();
  std::string previous_user = "alt_app";
  constexpr int kRotations = 4;
  for (int round = 0; round < kRotations; ++round) {
    SCOPED_TRACE(absl::StrCat("rotation ", round + 1));
    const std::string token = Rotate(arn, "pg-alt");
    sm::RotationState state = WaitRotationEnd(arn, token);
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << state.DebugString();

    const Credential now = GetCredential(arn, "AWSCURRENT");
    const std::string want_user = round % 2 == 0 ? "alt_app_clone" : "alt_app";
    EXPECT_EQ(now.username, want_user);
    EXPECT_TRUE(pg().ExecAs(now.username, now.password, "SELECT n FROM rotation_e2e_data").ok())
        << "the new user cannot read what the original could (grants)";
    const Credential before = GetCredential(arn, "AWSPREVIOUS");
    EXPECT_EQ(before.username, previous_user);
    // "The previous user keeps working until the next rotation."
    EXPECT_TRUE(pg().CanLogin(before.username, before.password));
    ExpectRotatedLabels(arn, previous_version, token);
    previous_version = token;
    previous_user = now.username;
    // Clients that read AWSCURRENT just before the switch log in with the
    // previous user; give them a moment before it changes again.
    ASSERT_TRUE(loop.WaitLogins(5));
  }
  loop.Stop();
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());
  EXPECT_GT(loop.logins(), 20);
  EXPECT_THAT(loop.users(), ::testing::ElementsAre("alt_app", "alt_app_clone"));

  // Both roles exist; the clone (the pending user of the first rotation)
  // got the original's grants through membership.
  EXPECT_EQ(Query("SELECT count(*) FROM pg_roles WHERE rolname IN ('alt_app', 'alt_app_clone') "
                  "AND rolcanlogin")
                .value_or("?"),
            "2");
  EXPECT_EQ(Query("SELECT pg_has_role('alt_app_clone', 'alt_app', 'MEMBER')").value_or("?"), "t");
  EXPECT_EQ(Query("SELECT has_table_privilege('alt_app_clone', 'rotation_e2e_data', 'SELECT')")
                .value_or("?"),
            "t");
  const std::string metrics = testing::HttpGet(rotator->ports().metrics, "/metrics").value_or("");
  EXPECT_GE(RunsTotal(metrics, "pg-alt", "success"), kRotations) << metrics;
  EXPECT_EQ(RunsTotal(metrics, "pg-alt", "failure"), 0) << metrics;
}

// ---- Failure ----

TEST_F(RotationE2ETest, FailingSetSecretRetriesWithBackoffThenFailsAndKeepsCurrent) {
  // The store's credential has drifted from the database's: setSecret can
  // log in with neither the pending, current nor previous password.
  CreateRole("drift_app", "the-real-password");
  const std::string arn = CreateSecret(
      "rotation-e2e/drift", CredentialJson(pg(), "drift_app", "a-stale-password", false));
  const sm::GetSecretValueResponse before = Get(arn, "AWSCURRENT");

  GatedWorker recorder(c_->pg_single->Channel("rotator"));
  ASSERT_TRUE(recorder.Start().ok());
  // Five attempts with full-jitter backoff capped at 100, 200, 400, 400 ms.
  ServiceProcess* rotator =
      NewRotator("fail-1", {WorkerFlag("pg-drift", recorder.address(), kPostgresWorkerId)},
                 {"--max_attempts=5", "--backoff_max=400ms"});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  const std::string token = Rotate(arn, "pg-drift");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  EXPECT_EQ(state.attempts(), 5) << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr("setSecret")) << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr("drift_app"));
  EXPECT_THAT(state.last_error(), ::testing::Not(HasSubstr("a-stale-password")));
  EXPECT_TRUE(state.has_finished_date());

  // The worker saw createSecret once and setSecret max_attempts times,
  // spaced by the backoff (full jitter: each wait is uniform in [0, cap], so
  // only the sum is bounded below: P(sum of the 4 waits < 50 ms) < 1e-4).
  std::vector<absl::Time> set_attempts;
  for (const GatedWorker::Call& call : recorder.calls()) {
    EXPECT_EQ(call.token, token);
    if (call.step == rv1::ROTATION_STEP_SET_SECRET) {
      EXPECT_NE(call.code, grpc::StatusCode::OK);
      set_attempts.push_back(call.time);
    } else {
      EXPECT_EQ(call.step, rv1::ROTATION_STEP_CREATE_SECRET);
    }
  }
  ASSERT_EQ(set_attempts.size(), 5u);
  EXPECT_EQ(recorder.Done(rv1::ROTATION_STEP_CREATE_SECRET), 1);
  const absl::Duration span = set_attempts.back() - set_attempts.front();
  EXPECT_GE(span, absl::Milliseconds(50)) << "no backoff between attempts";
  // The caps sum to 1.1 s; the rest is the attempts themselves.
  EXPECT_LE(span, absl::Seconds(4));

  // AWSCURRENT did not move; the pending version (with its value) stays for
  // the next window; the database still has the real password.
  const sm::GetSecretValueResponse after = Get(arn, "AWSCURRENT");
  EXPECT_EQ(after.version_id(), before.version_id());
  EXPECT_EQ(after.secret_string(), before.secret_string());
  std::map<std::string, std::vector<std::string>> want = {{before.version_id(), {"AWSCURRENT"}},
                                                          {token, {"AWSPENDING"}}};
  EXPECT_EQ(Labels(arn), want);
  EXPECT_TRUE(pg().CanLogin("drift_app", "the-real-password"));
  const sm::DescribeSecretResponse d = Describe(arn);
  EXPECT_TRUE(d.rotation_enabled());
  EXPECT_FALSE(d.has_last_rotated_date());
  EXPECT_GT(d.next_rotation_date().seconds(), absl::ToUnixSeconds(absl::Now()));

  std::string metrics;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        metrics = testing::HttpGet(rotator->ports().metrics, "/metrics").value_or("");
        return RunsTotal(metrics, "pg-drift", "failure") >= 1;
      },
      absl::Seconds(5)))
      << metrics;
  EXPECT_EQ(RunsTotal(metrics, "pg-drift", "success"), 0);

  // Nothing more happens until the next window.
  const size_t calls = recorder.calls().size();
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(recorder.calls().size(), calls);
  EXPECT_EQ(StatusName(Describe(arn).rotation_state().status()), "STATUS_FAILED");
}

TEST_F(RotationE2ETest, UnknownWorkerFailsTheRotationWithAClearError) {
  const std::string arn = CreateSecret("rotation-e2e/unknown-worker", "v1");
  ServiceProcess* rotator =
      NewRotator("unknown-1", {WorkerFlag("pg-single", c_->pg_single->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  const std::string token = Rotate(arn, "no-such-worker");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr("no-such-worker"));
  EXPECT_EQ(Get(arn, "AWSCURRENT").secret_string(), "v1");
}

// A worker whose certificate shows another identity than the one
// registered: the rotation fails with a clear error and AWSCURRENT stays.
TEST_F(RotationE2ETest, WorkerWithAnotherIdentityFailsTheRotation) {
  CreateRole("impostor_app", "impostor-pw");
  const std::string arn = CreateSecret("rotation-e2e/impostor",
                                       CredentialJson(pg(), "impostor_app", "impostor-pw", false));
  const sm::GetSecretValueResponse before = Get(arn, "AWSCURRENT");
  // The postgres worker registered as if it were the exec worker.
  ServiceProcess* rotator =
      NewRotator("impostor-1", {WorkerFlag("pg-impostor", c_->pg_single->address(), kExecWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  const std::string token = Rotate(arn, "pg-impostor");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr(kPostgresWorkerId));
  EXPECT_THAT(state.last_error(), HasSubstr(kExecWorkerId));
  EXPECT_EQ(Get(arn, "AWSCURRENT").version_id(), before.version_id());
  EXPECT_TRUE(pg().CanLogin("impostor_app", "impostor-pw"));
}

// The same, stricter: a server that is not the registered worker must not
// get the Step call at all (rotator_config.proto: "Calls to a worker whose
// certificate shows another identity fail"): the worker channel pins the
// registered SPIFFE ID in the TLS handshake.
TEST_F(RotationE2ETest, WorkerWithAnotherIdentityIsNeverCalled) {
  const std::string arn = CreateSecret(
      "rotation-e2e/impostor-strict", CredentialJson(pg(), "impostor_strict", "pw", false));
  ServiceProcess* rotator = NewRotator(
      "impostor-2", {WorkerFlag("pg-impostor", c_->pg_single->address(), kExecWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  const std::string token = Rotate(arn, "pg-impostor");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  // createSecret never ran: the pending version is still the placeholder.
  sm::GetSecretValueRequest req;
  req.set_secret_id(arn);
  req.set_version_id(token);
  sm::GetSecretValueResponse resp;
  grpc::Status s = Invoke(&sm::SecretsManager::Stub::GetSecretValue, req, &resp);
  EXPECT_FALSE(s.ok()) << "the impostor ran createSecret: the pending version has a value";
  EXPECT_THAT(c_->pg_single->Output(), ::testing::Not(HasSubstr(token)))
      << "the impostor was called";
}

// ---- Two rotators ----

struct ExecLine {
  std::string who, arn, token, step, what;
  int rc = -1;
  double time = 0;
};

std::vector<ExecLine> ReadExecLog(const std::string& path) {
  std::vector<ExecLine> out;
  for (absl::string_view line : absl::StrSplit(testing::ReadFile(path), '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ExecLine l;
    if (f.size() == 6 && f[4] == "start") {
      l = {f[0], f[1], f[2], f[3], f[4]};
      (void)absl::SimpleAtod(f[5], &l.time);
    } else if (f.size() == 7 && f[4] == "end") {
      l = {f[0], f[1], f[2], f[3], f[4]};
      (void)absl::SimpleAtoi(f[5], &l.rc);
      (void)absl::SimpleAtod(f[6], &l.time);
    } else {
      ADD_FAILURE() << "bad exec log line: " << line;
      continue;
    }
    out.push_back(l);
  }
  return out;
}

TEST_F(RotationE2ETest, TwoRotatorsRotateEachSecretExactlyOnce) {
  // Two rotators register the same worker name, each with its own exec
  // worker (scripts "A" and "B"), so the exec log shows who ran each step.
  // Leases long enough that a slow machine never loses one mid-way (this
  // test is about exclusion, the crash tests about expiry).
  ServiceProcess* r1 = NewRotator(
      "twin-1", {WorkerFlag("exec-twin", c_->exec_a->address(), kExecWorkerId)},
      {"--lease_duration=10s"});
  ServiceProcess* r2 = NewRotator(
      "twin-2", {WorkerFlag("exec-twin", c_->exec_b->address(), kExecWorkerId)},
      {"--lease_duration=10s"});
  ASSERT_TRUE(r1->Start().ok()) << r1->Output();
  ASSERT_TRUE(r2->Start().ok()) << r2->Output();

  constexpr int kSecrets = 12;
  std::vector<std::string> arns, first_versions, tokens;
  for (int i = 0; i < kSecrets; ++i) {
    arns.push_back(CreateSecret(absl::StrCat("rotation-e2e/twin-", i), absl::StrCat("v0-", i)));
    first_versions.push_back(Get(arns.back(), "AWSCURRENT").version_id());
  }
  for (int i = 0; i < kSecrets; ++i) tokens.push_back(Rotate(arns[i], "exec-twin"));
  for (int i = 0; i < kSecrets; ++i) {
    const sm::RotationState state = WaitRotationEnd(arns[i], tokens[i], absl::Seconds(60));
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << i << ": " << state.DebugString();
  }
  // Past a resync of both rotators: nothing is rotated a second time.
  absl::SleepFor(absl::Milliseconds(2500));

  std::map<std::string, std::vector<ExecLine>> by_token;
  for (const ExecLine& l : ReadExecLog(c_->exec_log)) {
    if (!absl::StrContains(l.arn, "rotation-e2e/twin-")) continue;
    by_token[l.token].push_back(l);
  }
  std::map<std::string, int> per_rotator;
  EXPECT_EQ(by_token.size(), static_cast<size_t>(kSecrets)) << "a rotation with an unknown token";
  for (int i = 0; i < kSecrets; ++i) {
    SCOPED_TRACE(arns[i]);
    const std::vector<ExecLine>& lines = by_token[tokens[i]];
    std::vector<std::string> seen;
    std::set<std::string> who;
    for (const ExecLine& l : lines) {
      EXPECT_EQ(l.arn, arns[i]);
      seen.push_back(absl::StrCat(l.step, " ", l.what, l.what == "end" ? absl::StrCat(" ", l.rc) : ""));
      who.insert(l.who);
    }
    // Each step ran once, in order, never overlapping another run of it.
    EXPECT_THAT(seen, ::testing::ElementsAre("createSecret start", "createSecret end 0",
                                             "setSecret start", "setSecret end 0",
                                             "testSecret start", "testSecret end 0",
                                             "finishSecret start", "finishSecret end 0"));
    EXPECT_EQ(who.size(), 1u) << "both rotators worked on one rotation";
    if (!who.empty()) per_rotator[*who.begin()]++;

    EXPECT_EQ(Get(arns[i], "AWSCURRENT").secret_string(), "rotated-" + tokens[i]);
    ExpectRotatedLabels(arns[i], first_versions[i], tokens[i]);
    const sm::DescribeSecretResponse d = Describe(arns[i]);
    EXPECT_EQ(StatusName(d.rotation_state().status()), "STATUS_SUCCEEDED");
    EXPECT_GT(d.next_rotation_date().seconds(), absl::ToUnixSeconds(absl::Now()) + 3600);
  }
  std::cout << "[          ] rotations by rotator: A=" << per_rotator["A"]
            << " B=" << per_rotator["B"] << "\n";
  const std::string m1 = testing::HttpGet(r1->ports().metrics, "/metrics").value_or("");
  const std::string m2 = testing::HttpGet(r2->ports().metrics, "/metrics").value_or("");
  EXPECT_EQ(RunsTotal(m1, "exec-twin", "success") + RunsTotal(m2, "exec-twin", "success"),
            kSecrets)
      << m1 << m2;
  EXPECT_EQ(RunsTotal(m1, "exec-twin", "failure") + RunsTotal(m2, "exec-twin", "failure"), 0);
  EXPECT_TRUE(r1->running());
  EXPECT_TRUE(r2->running());
}

// ---- Crashes ----

enum class Crash {
  // The worker did the step; the rotator is SIGKILLed before it hears back
  // (the step is done but not recorded: the next rotator repeats it).
  kRotatorAfterStep,
  // The step is recorded and the next one is on its way to the worker.
  kRotatorAfterRecord,
  // The worker did the step and is SIGKILLed before it answers; it is
  // started again (same port) while the rotator retries.
  kWorkerAfterStep,
  // The worker did the step; the rotator gets SIGTERM before it hears back:
  // it waits --shutdown_grace for the step, cancels it, gives the lease back
  // and exits 0, so the next rotator resumes at once (no lease expiry).
  kRotatorStoppedAfterStep,
};

struct CrashCase {
  Crash crash;
  rv1::RotationStep step;
};

std::string CaseName(const ::testing::TestParamInfo<CrashCase>& info) {
  const char* crash = info.param.crash == Crash::kRotatorAfterStep     ? "RotatorKilledAfter"
                      : info.param.crash == Crash::kRotatorAfterRecord ? "RotatorKilledRecorded"
                      : info.param.crash == Crash::kWorkerAfterStep    ? "WorkerKilledAfter"
                                                                       : "RotatorStoppedAfter";
  return absl::StrCat(crash, "_", StepName(info.param.step));
}

class RotationCrashFixture : public RotationE2ETest {
 protected:
  // A role and its alternating-users secret; the ARN.
  std::string MakeSecret(const std::string& role) {
    EnsureDataTable();
    CreateRole(role, "crash-initial-pw");
    return CreateSecret("rotation-e2e/" + role, CredentialJson(pg(), role, "crash-initial-pw", true));
  }

  // After the rotation to `token` (alternating users, first rotation).
  void ExpectCompleted(const std::string& arn, const std::string& role,
                       const std::string& first_version, const std::string& token) {
    const sm::RotationState state = WaitRotationEnd(arn, token);
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << state.DebugString();
    ExpectRotatedLabels(arn, first_version, token);
    const Credential now = GetCredential(arn, "AWSCURRENT");
    EXPECT_EQ(now.username, role + "_clone");
    EXPECT_TRUE(pg().CanLogin(now.username, now.password));
    EXPECT_EQ(Query(absl::StrCat("SELECT pg_has_role('", role, "_clone', '", role, "', 'MEMBER')"))
                  .value_or("?"),
              "t");
  }
};

class RotationCrashE2ETest : public RotationCrashFixture,
                             public ::testing::WithParamInterface<CrashCase> {};
class RotationWorkerCrashE2ETest : public RotationCrashFixture {};

TEST_P(RotationCrashE2ETest, RotationCompletesAndCurrentAlwaysLogsIn) {
  const CrashCase param = GetParam();
  const char* kind = param.crash == Crash::kRotatorAfterStep     ? "a"
                     : param.crash == Crash::kRotatorAfterRecord ? "r"
                     : param.crash == Crash::kWorkerAfterStep    ? "w"
                                                                 : "s";
  const std::string role = absl::StrCat("crash_", kind, static_cast<int>(param.step));
  const std::string arn = MakeSecret(role);
  const std::string first_version = Get(arn, "AWSCURRENT").version_id();

  GatedWorker gate(c_->pg_alt->Channel("rotator"));
  ASSERT_TRUE(gate.Start().ok());
  const std::vector<std::string> workers = {WorkerFlag("pg-gated", gate.address(), kPostgresWorkerId)};
  // Worker restarts take a moment: more attempts than the default 3.
  // A graceful stop must give the lease back: then a long lease costs the
  // next rotator nothing.
  const std::vector<std::string> extra = {
      param.crash == Crash::kRotatorStoppedAfterStep ? "--lease_duration=20s" : "--lease_duration=2s",
      "--max_attempts=20", "--shutdown_grace=1s"};
  ServiceProcess* first = NewRotator(role + "-1", workers, extra);
  ASSERT_TRUE(first->Start().ok()) << first->Output();

  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));

  switch (param.crash) {
    case Crash::kRotatorAfterStep:
    case Crash::kRotatorStoppedAfterStep:
      gate.Arm(GatedWorker::Gate::kHoldAfter, param.step);
      break;
    case Crash::kRotatorAfterRecord:
      gate.Arm(GatedWorker::Gate::kHoldBefore,
               static_cast<rv1::RotationStep>(static_cast<int>(param.step) + 1));
      break;
    case Crash::kWorkerAfterStep:
      gate.Arm(GatedWorker::Gate::kKillWorkerAfter, param.step, [this] {
        c_->pg_alt->Kill();
        EXPECT_TRUE(c_->pg_alt->Restart().ok()) << c_->pg_alt->Output();
      });
      break;
  }
  const std::string token = Rotate(arn, "pg-gated");

  if (param.crash != Crash::kWorkerAfterStep) {
    ASSERT_TRUE(gate.WaitHeld(absl::Seconds(20))) << "the rotator never reached the crash point";
    const std::string next = param.crash == Crash::kRotatorAfterRecord
                                 ? StepName(static_cast<rv1::RotationStep>(param.step + 1))
                                 : StepName(param.step);
    EXPECT_TRUE(testing::WaitFor(
        [&] { return Describe(arn).rotation_state().next_step() == next; }, absl::Seconds(5)))
        << Describe(arn).rotation_state().DebugString();
    if (param.crash == Crash::kRotatorStoppedAfterStep) {
      EXPECT_EQ(first->Stop(), 0) << first->Output();
    } else {
      first->Kill();
    }
    gate.Release();
    const sm::RotationState mid = Describe(arn).rotation_state();
    EXPECT_EQ(StatusName(mid.status()), "STATUS_IN_PROGRESS");
    EXPECT_EQ(mid.version_id(), token);
    EXPECT_EQ(mid.next_step(), next);
    // Some logins while nobody is rotating.
    ASSERT_TRUE(loop.WaitLogins(5));
    // Started again (a new holder: it waits for the dead one's lease).
    ServiceProcess* second = NewRotator(role + "-2", workers, extra);
    ASSERT_TRUE(second->Start().ok()) << second->Output();
    if (param.crash == Crash::kRotatorStoppedAfterStep) {
      const absl::Time restarted = absl::Now();
      const sm::RotationState state = WaitRotationEnd(arn, token);
      EXPECT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED");
      EXPECT_LT(absl::Now() - restarted, absl::Seconds(10))
          << "the stopped rotator kept its lease (20 s) instead of giving it back";
    }
  }

  ExpectCompleted(arn, role, first_version, token);
  ASSERT_TRUE(loop.WaitLogins(3));
  loop.Stop();
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());
  EXPECT_GT(loop.logins(), 5);

  // Every step was done; the crashed one (when the worker did it) twice.
  for (int s = rv1::ROTATION_STEP_CREATE_SECRET; s <= rv1::ROTATION_STEP_FINISH_SECRET; ++s) {
    const auto step = static_cast<rv1::RotationStep>(s);
    const int want_min =
        param.crash != Crash::kRotatorAfterRecord && step == param.step ? 2 : 1;
    EXPECT_GE(gate.Done(step), want_min) << StepName(step);
  }
  for (const GatedWorker::Call& call : gate.calls()) EXPECT_EQ(call.token, token);
}

INSTANTIATE_TEST_SUITE_P(
    RotationCrash, RotationCrashE2ETest,
    ::testing::Values(CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_CREATE_SECRET},
                      CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_SET_SECRET},
                      CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_TEST_SECRET},
                      CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_FINISH_SECRET},
                      CrashCase{Crash::kRotatorAfterRecord, rv1::ROTATION_STEP_CREATE_SECRET},
                      CrashCase{Crash::kRotatorAfterRecord, rv1::ROTATION_STEP_SET_SECRET},
                      CrashCase{Crash::kRotatorAfterRecord, rv1::ROTATION_STEP_TEST_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_CREATE_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_SET_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_TEST_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_FINISH_SECRET},
                      CrashCase{Crash::kRotatorStoppedAfterStep, rv1::ROTATION_STEP_SET_SECRET}),
    CaseName);

// The worker is SIGKILLed while it is inside setSecret: its CREATE ROLE
// waits on a lock the test holds. The rotator calls the worker directly.
TEST_F(RotationWorkerCrashE2ETest, WorkerKilledInsideSetSecret) {
  const std::string arn = MakeSecret("crash_inside");
  const std::string first_version = Get(arn, "AWSCURRENT").version_id();
  ServiceProcess* rotator =
      NewRotator("inside-1", {WorkerFlag("pg-alt", c_->pg_alt->address(), kPostgresWorkerId)},
                 {"--max_attempts=20"});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));

  // An uncommitted role of the same name: the worker's CREATE ROLE blocks
  // on it.
  PgConnection blocker(pg());
  ASSERT_TRUE(blocker.ok()) << blocker.error();
  ASSERT_TRUE(blocker.Query("BEGIN").ok());
  ASSERT_TRUE(blocker.Query("CREATE ROLE crash_inside_clone").ok());

  const std::string token = Rotate(arn, "pg-alt");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return Query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                     "AND query ILIKE '%CREATE ROLE%crash_inside_clone%'")
                   .value_or("0") != "0";
      },
      absl::Seconds(20)))
      << "the worker never blocked in setSecret";
  EXPECT_EQ(Describe(arn).rotation_state().next_step(), "setSecret");
  c_->pg_alt->Kill();
  ASSERT_TRUE(blocker.Query("ROLLBACK").ok());
  ASSERT_TRUE(loop.WaitLogins(3));
  ASSERT_TRUE(c_->pg_alt->Restart().ok()) << c_->pg_alt->Output();

  ExpectCompleted(arn, "crash_inside", first_version, token);
  ASSERT_TRUE(loop.WaitLogins(3));
  loop.Stop();
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());
}

// ---- How long 100 PostgreSQL credentials take ----

// Creates `n` roles and secrets, rotates them all at once through `worker`
// with one rotator (--concurrency=8) and waits until every DescribeSecret
// shows STATUS_SUCCEEDED. Prints the time; asserts only that all succeed.
void RotationE2ETest::BenchRotate(int n, const std::string& worker, const std::string& address,
                                  bool alternating) {
  const std::string prefix = absl::StrCat("bench_", alternating ? "alt" : "single", "_");
  std::string sql;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&sql, "CREATE ROLE ", prefix, i, " LOGIN PASSWORD 'bench-initial-", i, "'; ");
  }
  ASSERT_TRUE(pg().Exec(sql).ok());
  std::vector<std::string> arns;
  for (int i = 0; i < n; ++i) {
    arns.push_back(CreateSecret(absl::StrCat("rotation-e2e/", prefix, i),
                                CredentialJson(pg(), absl::StrCat(prefix, i),
                                               absl::StrCat("bench-initial-", i), alternating)));
  }
  ServiceProcess* rotator = NewRotator(prefix + "rotator", {WorkerFlag(worker, address, kPostgresWorkerId)},
                                       {"--concurrency=8", "--lease_duration=30s"});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  const absl::Time start = absl::Now();
  std::vector<std::string> tokens;
  for (const std::string& arn : arns) tokens.push_back(Rotate(arn, worker));
  std::set<int> pending;
  for (int i = 0; i < n; ++i) pending.insert(i);
  std::map<int, std::string> failed;
  testing::WaitFor(
      [&] {
        for (auto it = pending.begin(); it != pending.end();) {
          const sm::RotationState s = Describe(arns[*it]).rotation_state();
          if (s.version_id() == tokens[*it] && s.status() == sm::RotationState::STATUS_SUCCEEDED) {
            it = pending.erase(it);
          } else if (s.status() == sm::RotationState::STATUS_FAILED) {
            failed[*it] = s.DebugString();
            it = pending.erase(it);
          } else {
            ++it;
          }
        }
        return pending.empty();
      },
      absl::Seconds(120));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_THAT(pending, ::testing::IsEmpty());
  EXPECT_THAT(failed, ::testing::IsEmpty());
  std::cout << "[          ] rotated " << n - pending.size() - failed.size() << "/" << n
            << " PostgreSQL credentials (" << (alternating ? "alternating users" : "single user")
            << "; one rotator --concurrency=8, worker --step_threads=8) in " << elapsed << " ("
            << absl::ToDoubleMilliseconds(elapsed) / n << " ms each)" << std::endl;
  for (int i : {0, n / 2, n - 1}) {
    const Credential now = GetCredential(arns[i], "AWSCURRENT");
    EXPECT_EQ(now.username, absl::StrCat(prefix, i, alternating ? "_clone" : ""));
    EXPECT_TRUE(pg().CanLogin(now.username, now.password));
  }
  ASSERT_EQ(rotator->Stop(), 0) << rotator->Output();
}

TEST_F(RotationE2ETest, Rotates100PostgresCredentials) {
  BenchRotate(100, "pg-alt", c_->pg_alt->address(), /*alternating=*/true);
  BenchRotate(100, "pg-single", c_->pg_single->address(), /*alternating=*/false);
}

}  // namespace
}  // namespace coffer
