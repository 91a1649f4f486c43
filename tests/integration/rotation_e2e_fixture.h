// rotation_e2e_fixture.h: what the rotation end-to-end suites
// (rotation_e2e_test.cc, rotation_crash_e2e_test.cc) share: one cluster for
// the whole test program (PostgreSQL, coffer-kms, coffer-store and the
// postgres and exec workers, started on first use), the RotationE2ETest
// fixture that starts rotators against it, GatedWorker (a RotationWorker in
// front of a real worker that can hold or fail a chosen step), LoginLoop (a
// client that logs in with AWSCURRENT in a loop), and PostgreSQL helpers.
//
//   TEST_F(RotationE2ETest, Something) {
//     CreateRole("app", "pw");
//     const std::string arn = CreateSecret("rotation-e2e/app",
//                                          CredentialJson(pg(), "app", "pw", false));
//     ServiceProcess* rotator = NewRotator(
//         "r-1", {WorkerFlag("pg-single", c_->pg_single->address(), kPostgresWorkerId)});
//     ASSERT_TRUE(rotator->Start().ok());
//     const std::string token = Rotate(arn, "pg-single");
//     EXPECT_EQ(StatusName(WaitRotationEnd(arn, token).status()), "STATUS_SUCCEEDED");
//   }
//
// Tests must use their own roles and secret names: the cluster is shared.
// Without PostgreSQL installed every test is skipped.
#pragma once

#include <grpcpp/grpcpp.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coffer/rotation/v1/worker.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/postgres.h"
#include "tests/testing/test_env.h"

namespace coffer::rotation_e2e {

using testing::PostgresServer;
using testing::ServiceProcess;
using testing::TlsArgs;
namespace sm = ::coffer::secrets::v1;
namespace rv1 = ::coffer::rotation::v1;

inline constexpr char kPostgresWorkerId[] = "spiffe://coffer.local/worker/postgres";
inline constexpr char kExecWorkerId[] = "spiffe://coffer.local/worker/exec";
inline constexpr char kMasterSecret[] = "rotation-e2e/pg-master";

inline std::string StatusName(sm::RotationState::Status s) {
  return sm::RotationState::Status_Name(s);
}

// ---- PostgreSQL from the test's side ----

struct Credential {
  std::string username;
  std::string password;
};

// The value rotation.md defines for a PostgreSQL secret.
std::string CredentialJson(const PostgresServer& pg, const std::string& user,
                           const std::string& password, bool with_master);

absl::StatusOr<Credential> ParseCredential(const std::string& json);

// A superuser connection held open by the test (e.g. a transaction that
// makes the worker wait on a lock).
class PgConnection {
 public:
  explicit PgConnection(const PostgresServer& pg) {
    const std::string port = absl::StrCat(pg.port());
    const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
    const char* values[] = {"127.0.0.1",
                            port.c_str(),
                            pg.superuser().c_str(),
                            pg.superuser_password().c_str(),
                            "postgres",
                            "5",
                            nullptr};
    conn_ = PQconnectdbParams(keys, values, 0);
  }
  ~PgConnection() {
    if (conn_ != nullptr) PQfinish(conn_);
  }
  bool ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return conn_ ? PQerrorMessage(conn_) : "no connection"; }

  // Runs `sql`; the first column of the first row ("" when none).
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
std::string ExecScript(const std::string& who, const std::string& log);

// Writes `text` to `path` with mode 0755.
bool WriteExecutable(const std::string& path, const std::string& text);

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
      calls_.push_back(
          {request->step(), request->client_request_token(), absl::Now(), status.error_code()});
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

  // Starts PostgreSQL, the KMS, the store and the four workers, and stores
  // the master secret of the alternating-users strategy.
  absl::Status Start();
  // The store's and the postgres workers' output.
  std::string Logs() const;
};

// ---- Test fixture ----

class RotationE2ETest : public ::testing::Test {
 protected:
  // Skips without PostgreSQL; starts the shared cluster on first use.
  void SetUp() override;
  // On failure prints every rotator's log and the cluster's; stops the
  // rotators the test started (each must exit 0).
  void TearDown() override;

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
    ASSERT_TRUE(
        pg().Exec("SET client_min_messages = warning; "
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
    std::map<std::string, std::vector<std::string>> want = {{token, {"AWSCURRENT"}},
                                                            {old_version, {"AWSPREVIOUS"}}};
    EXPECT_EQ(Labels(secret), want) << secret;
  }

  void BenchRotate(int n, const std::string& worker, const std::string& address, bool alternating);

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
        absl::Status login =
            c_->pg->ExecAs(cred->username, cred->password, "SELECT n FROM rotation_e2e_data");
        if (!login.ok()) {
          failure = absl::StrCat("login as ", cred->username, " (version ", resp.version_id(),
                                 "): ", login.ToString());
        }
      }
      if (!failure.empty()) {
        absl::MutexLock lock(&mu_);
        failures_.push_back(absl::StrCat(
            absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()), " ", failure));
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
double RunsTotal(const std::string& page, const std::string& worker, const std::string& result);

}  // namespace coffer::rotation_e2e
