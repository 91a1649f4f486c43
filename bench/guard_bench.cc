// guard_bench: what authorization and the audit log cost a call, measured as
// the throughput ratio of the same store with its CallGate on (development
// policy + a durable hash-chained audit log) and off, in one run.
//
//   build/bench/guard_bench [--seconds=5] [--clients=32] [--rounds=2]
//
// Everything is real: coffer-kms as its own process (policy and audit log on
// in both runs), the store in this process (RocksDB in a temp dir, synced
// writes) on an mTLS gRPC server with its CallGate on or off, and `clients`
// threads with blocking stubs as app/catagram. Rounds alternate
// off and on; the table shows the median of each.
//   read:  GetSecretValue of one secret (data key cached)
//   write: PutSecretValue round-robin over 1,000 secrets
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "libs/audit/audit_log.h"
#include "libs/authz/authorizer.h"
#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/runtime/call_gate.h"
#include "libs/storage/database.h"
#include "services/store/changes/change_log.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/envelope.h"
#include "services/store/envelope/key_service.h"
#include "services/store/schema.h"
#include "services/store/secrets/secret_records.h"
#include "services/store/secrets/secret_rotation.h"
#include "services/store/secrets/secret_store.h"
#include "services/store/secrets/secrets_service.h"

ABSL_FLAG(int, seconds, 5, "duration of each measurement");
ABSL_FLAG(int, clients, 32, "calls in flight (one blocking client thread each)");
ABSL_FLAG(int, rounds, 2, "off/on rounds (the table shows medians)");

namespace coffer {
namespace {

namespace sm = ::coffer::secrets::v1;

constexpr int kWriteSecrets = 1000;

// The coffer-kms child: stopped by Die() too, so that a failed run leaves no
// process behind (nor holds the pipe of whoever reads this one's output).
pid_t kms_pid = 0;

std::string Run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "failed: %s\n", cmd.c_str());
    std::exit(1);
  }
  return "";
}

rpc::TlsFiles Tls(const std::string& pki, const std::string& name) {
  return {pki + "/ca.crt", pki + "/" + name + ".crt", pki + "/" + name + ".key"};
}

// One complete KMS + store, gated or not.
struct Stack {
  Stack(const std::string& dir, const std::string& pki, const std::string& kms_address,
        bool guarded) {
    const std::string policy_text = ReadPolicy();
    if (guarded) {
      auto policy = authz::Policy::Parse(policy_text, authz::Policy::kIdentity);
      if (!policy.ok()) Die(policy.status());
      authorizer = std::make_unique<authz::Authorizer>(std::move(policy).value());
      audit::AuditOptions options;
      options.dir = dir + "/audit-store";
      options.service = "store";
      auto log = audit::AuditLog::Open(options);
      if (!log.ok()) Die(log.status());
      store_audit = std::move(log).value();
      store_gate =
          std::make_unique<runtime::CallGate>(authorizer.get(), store_audit.get(), nullptr);
    }
    rpc::ChannelOptions channel;
    channel.target = kms_address;
    channel.tls = Tls(pki, "store");
    channel.expected_spiffe_id = "spiffe://coffer.local/kms";
    auto kms_channel = rpc::MakeChannel(std::move(channel));
    if (!kms_channel.ok()) Die(kms_channel.status());
    key_service = store::MakeGrpcKeyService(*kms_channel, absl::Seconds(5));

    storage::DatabaseOptions db_options;
    db_options.path = dir + "/store";
    db_options.column_families = store::schema::ColumnFamilies();
    auto db_or = storage::Database::Open(db_options);
    if (!db_or.ok()) Die(db_or.status());
    db = std::move(db_or).value();
    auto changes_or = store::ChangeLog::Open(db.get());
    if (!changes_or.ok()) Die(changes_or.status());
    changes = std::move(changes_or).value();
    cache = std::make_unique<store::DataKeyCache>(store::DataKeyCacheOptions{});
    envelope = std::make_unique<store::Envelope>(key_service.get(), cache.get());
    store::SecretStoreOptions options;
    options.changes = changes.get();
    records = std::make_unique<store::SecretRecords>(db.get(), envelope.get(), options);
    if (absl::Status s = records->Load(); !s.ok()) Die(s);
    secrets = std::make_unique<store::SecretStore>(records.get());
    rotation = std::make_unique<store::SecretRotation>(records.get());
    service = std::make_unique<store::SecretsService>(secrets.get(), rotation.get(), changes.get(),
                                                      &watches, store_gate.get());
    rpc::ServerOptions store_server_options;
    store_server_options.tls = Tls(pki, "store");
    auto server_or =
        rpc::Server::Start(std::move(store_server_options), {service.get()}, &store_health);
    if (!server_or.ok()) Die(server_or.status());
    server = std::move(server_or).value();
  }

  ~Stack() {
    watches.StopAll();
    server->Shutdown(absl::Seconds(1));
  }

  static std::string ReadPolicy() {
    // The development policy and what the benchmark's client may do.
    return R"({"statements": [
      {"effect": "Allow", "principals": ["spiffe://coffer.local/admin/cofferctl"],
       "actions": ["*"], "resources": ["*"]},
      {"effect": "Allow", "principals": ["spiffe://coffer.local/store"],
       "actions": ["kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt",
                   "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:DescribeKey"],
       "resources": ["*"]},
      {"effect": "Allow", "principals": ["spiffe://coffer.local/rotator"],
       "actions": ["rotation:*", "secretsmanager:DescribeSecret"], "resources": ["*"]},
      {"effect": "Allow", "principals": ["spiffe://coffer.local/worker/*"],
       "actions": ["secretsmanager:GetRandomPassword"], "resources": ["*"]},
      {"effect": "Allow", "principals": ["spiffe://coffer.local/app/catagram"],
       "actions": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                   "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret"],
       "resources": ["demo/catagram/*"]},
      {"effect": "Deny", "principals": ["*"], "actions": ["secretsmanager:DeleteSecret"],
       "resources": ["demo/catagram/keep-*"]}]})";
  }

  [[noreturn]] static void Die(const absl::Status& s) {
    std::fprintf(stderr, "guard_bench: %s\n", s.ToString().c_str());
    if (kms_pid > 0) {
      kill(kms_pid, SIGTERM);
      waitpid(kms_pid, nullptr, 0);
    }
    std::exit(1);
  }

  std::unique_ptr<authz::Authorizer> authorizer;
  std::unique_ptr<audit::AuditLog> store_audit;
  std::unique_ptr<runtime::CallGate> store_gate;
  rpc::HealthStatus store_health;
  std::unique_ptr<store::KeyService> key_service;
  std::unique_ptr<storage::Database> db;
  std::unique_ptr<store::ChangeLog> changes;
  std::unique_ptr<store::DataKeyCache> cache;
  std::unique_ptr<store::Envelope> envelope;
  std::unique_ptr<store::SecretRecords> records;
  std::unique_ptr<store::SecretStore> secrets;
  std::unique_ptr<store::SecretRotation> rotation;
  store::WatchRegistry watches;
  std::unique_ptr<store::SecretsService> service;
  std::unique_ptr<rpc::Server> server;
};

// Calls per second of `call` from `clients` threads for `seconds`.
template <typename Call>
double Measure(int clients, int seconds, const Call& call) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> done{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = t; !stop.load(std::memory_order_relaxed); i += clients) {
        (call(i) ? done : failed).fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  if (failed.load() > 0) std::fprintf(stderr, "  (%lld calls failed)\n", (long long)failed.load());
  return static_cast<double>(done.load()) / elapsed;
}

struct Result {
  double read = 0, write = 0;
};

Result Bench(const std::string& pki, const std::string& kms_address, bool guarded, int round) {
  char tmpl[] = "/tmp/guard-bench.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  Result r;
  {
    Stack stack(dir, pki, kms_address, guarded);
    rpc::ChannelOptions options;
    options.target = absl::StrCat("localhost:", stack.server->port());
    options.tls = Tls(pki, "app-catagram");
    options.expected_spiffe_id = "spiffe://coffer.local/store";
    auto channel = rpc::MakeChannel(std::move(options));
    if (!channel.ok()) Stack::Die(channel.status());
    auto stub = sm::SecretsManager::NewStub(*channel);
    auto create = [&](const std::string& name) {
      grpc::ClientContext ctx;
      sm::CreateSecretRequest req;
      req.set_name(name);
      req.set_secret_string(std::string(200, 'v'));
      sm::CreateSecretResponse resp;
      grpc::Status s = stub->CreateSecret(&ctx, req, &resp);
      if (!s.ok()) Stack::Die(absl::InternalError(s.error_message()));
    };
    create("demo/catagram/read");
    for (int i = 0; i < kWriteSecrets; ++i) create(absl::StrCat("demo/catagram/w", i));
    const int clients = absl::GetFlag(FLAGS_clients);
    const int seconds = absl::GetFlag(FLAGS_seconds);
    r.read = Measure(clients, seconds, [&](int64_t) {
      grpc::ClientContext ctx;
      sm::GetSecretValueRequest req;
      req.set_secret_id("demo/catagram/read");
      sm::GetSecretValueResponse resp;
      return stub->GetSecretValue(&ctx, req, &resp).ok();
    });
    r.write = Measure(clients, seconds, [&](int64_t i) {
      grpc::ClientContext ctx;
      sm::PutSecretValueRequest req;
      req.set_secret_id(absl::StrCat("demo/catagram/w", i % kWriteSecrets));
      req.set_secret_string(std::string(200, 'w'));
      sm::PutSecretValueResponse resp;
      return stub->PutSecretValue(&ctx, req, &resp).ok();
    });
    std::fprintf(stderr, "round %d %-3s read %9.0f/s  write %7.0f/s\n", round,
                 guarded ? "on" : "off", r.read, r.write);
  }
  Run("rm -rf " + dir);
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int Main() {
  log::SetLevel(log::Level::kError);
  // As the services do (runtime::InitProcess): Debian's Abseil leaves mutex
  // deadlock detection on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  char tmpl[] = "/tmp/guard-bench-pki.XXXXXX";
  const std::string pki = mkdtemp(tmpl);
  Run("bash " + std::string(COFFER_SOURCE_DIR) + "/deploy/certs/make-certs.sh " + pki +
      " >/dev/null 2>&1");
  // The KMS is its own process (as deployed), the same for both sides,
  // with its own policy and audit log.
  const std::string policy = pki + "/policy.json";
  {
    FILE* f = std::fopen(policy.c_str(), "w");
    const std::string text = Stack::ReadPolicy();
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  const pid_t kms = kms_pid = fork();
  if (kms == 0) {
    const std::string bin = std::string(COFFER_BINARY_DIR) + "/services/kms/coffer-kms";
    std::vector<std::string> args = {bin,
                                     "--dev_mode",
                                     "--data_dir=" + pki + "/kms",
                                     "--listen_address=127.0.0.1:17801",
                                     "--metrics_address=",
                                     "--log_level=error",
                                     "--tls_ca=" + pki + "/ca.crt",
                                     "--tls_cert=" + pki + "/kms.crt",
                                     "--tls_key=" + pki + "/kms.key",
                                     "--policy_file=" + policy,
                                     "--audit_dir=" + pki + "/audit-kms"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Ready once it accepts connections (a loaded machine may take a while).
  bool ready = false;
  for (int i = 0; i < 300 && !ready; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(17801);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ready = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (waitpid(kms, nullptr, WNOHANG) == kms) {
      kms_pid = 0;
      Stack::Die(absl::UnavailableError("coffer-kms exited at start (is port 17801 taken?)"));
    }
  }
  if (!ready) Stack::Die(absl::UnavailableError("coffer-kms did not listen on 17801 in 30s"));
  const std::string kms_address = "localhost:17801";
  std::vector<double> read_off, read_on, write_off, write_on;
  for (int round = 1; round <= absl::GetFlag(FLAGS_rounds); ++round) {
    Result off = Bench(pki, kms_address, false, round);
    Result on = Bench(pki, kms_address, true, round);
    read_off.push_back(off.read);
    write_off.push_back(off.write);
    read_on.push_back(on.read);
    write_on.push_back(on.write);
  }
  kill(kms, SIGTERM);
  waitpid(kms, nullptr, 0);
  Run("rm -rf " + pki);
  std::printf("guard_bench: %d clients, %ds per measurement, medians of %d rounds\n",
              absl::GetFlag(FLAGS_clients), absl::GetFlag(FLAGS_seconds),
              absl::GetFlag(FLAGS_rounds));
  std::printf("| scenario | authz+audit off | authz+audit on | on/off |\n|---|---|---|---|\n");
  std::printf("| GetSecretValue (cached) | %.0f/s | %.0f/s | %.2f |\n", Median(read_off),
              Median(read_on), Median(read_on) / Median(read_off));
  std::printf("| PutSecretValue (1,000 secrets) | %.0f/s | %.0f/s | %.2f |\n", Median(write_off),
              Median(write_on), Median(write_on) / Median(write_off));
  return 0;
}

}  // namespace
}  // namespace coffer

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return coffer::Main();
}
