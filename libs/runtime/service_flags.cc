#include "libs/runtime/service_flags.h"

#include <signal.h>

#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/log.h"
#include "libs/common/process.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/server.h"

ABSL_FLAG(std::string, listen_address, "127.0.0.1:0", "host:port of the mTLS gRPC listener");
ABSL_FLAG(std::string, health_listen_address, "",
          "host:port of a plaintext listener serving only grpc.health.v1 (empty: none)");
ABSL_FLAG(std::string, metrics_address, "127.0.0.1:0",
          "host:port of the Prometheus /metrics endpoint (empty: none)");
ABSL_FLAG(std::string, tls_ca, "var/certs/ca.crt",
          "CA bundle that peers' certificates must chain to");
ABSL_FLAG(std::string, tls_cert, "", "this process's certificate chain (PEM)");
ABSL_FLAG(std::string, tls_key, "", "this process's private key (PEM)");
ABSL_FLAG(int, cert_refresh_seconds, 60, "how often certificate files are re-read");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "how long in-flight calls may run after SIGTERM/SIGINT");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warn or error");
ABSL_FLAG(std::string, ports_file, "",
          "write the bound ports as JSON here once serving (for scripts and tests)");

ABSL_FLAG(std::string, policy_file, "var/policy.json",
          "the identity policy (JSON statements; default deny); re-read when it changes or on "
          "SIGHUP");
ABSL_FLAG(std::string, audit_dir, "var/audit",
          "directory of this service's hash-chained audit log (JSON lines)");
ABSL_FLAG(int64_t, audit_max_file_bytes, 64 << 20, "audit files rotate past this size");
ABSL_FLAG(absl::Duration, audit_write_timeout, absl::Seconds(2),
          "a call whose audit record is not durable by then fails UNAVAILABLE");

ABSL_FLAG(int, call_threads, 16,
          "threads that run calls (storage and KMS work never runs on gRPC's own threads)");
ABSL_FLAG(int, max_calls_in_flight, 1000,
          "calls queued or running at once; beyond it calls fail RESOURCE_EXHAUSTED at once");

ABSL_FLAG(int, max_health_watches, 1000,
          "grpc.health.v1 Watch streams open at once (both ports; RESOURCE_EXHAUSTED beyond)");

ABSL_FLAG(std::string, arn_partition, "coffer", "ARN partition");
ABSL_FLAG(std::string, arn_region, "local", "ARN region");
ABSL_FLAG(std::string, arn_account, "000000000000", "ARN account");

namespace coffer::runtime {

int ServiceMain(int argc, char** argv, const ServiceDefaults& defaults, absl::string_view usage,
                const std::function<absl::Status()>& run) {
  rpc::BlockShutdownSignals();
  SetServiceDefaults(defaults);
  absl::SetProgramUsageMessage(absl::StrCat(usage, " (see --help)"));
  absl::ParseCommandLine(argc, argv);
  absl::Status status = run();
  if (!status.ok()) {
    log::Error(defaults.identity, "fatal", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}

void SetServiceDefaults(const ServiceDefaults& d) {
  absl::SetFlag(&FLAGS_listen_address, absl::StrCat("127.0.0.1:", d.grpc_port));
  absl::SetFlag(&FLAGS_metrics_address, absl::StrCat("127.0.0.1:", d.metrics_port));
  absl::SetFlag(&FLAGS_tls_cert, absl::StrCat("var/certs/", d.identity, ".crt"));
  absl::SetFlag(&FLAGS_tls_key, absl::StrCat("var/certs/", d.identity, ".key"));
}

absl::Status InitProcess(const std::string& data_dir) {
  log::Level level;
  if (!log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return absl::InvalidArgumentError("--log_level must be debug, info, warn or error");
  }
  log::SetLevel(level);
  COFFER_RETURN_IF_ERROR(DisableCoreDumps());
  // A file-size limit must fail the write (EFBIG: the audit log then fails
  // closed), not kill the process.
  ::signal(SIGXFSZ, SIG_IGN);
  // Debian's Abseil is built without NDEBUG, which leaves mutex deadlock
  // detection on: a global graph of lock orders updated on every lock, a
  // large share of a busy service's CPU. The tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  crypto::EnsureSodiumInitialized();
  if (!data_dir.empty()) COFFER_RETURN_IF_ERROR(MakeDirectories(data_dir, 0700));
  return absl::OkStatus();
}

Guard::~Guard() {
  if (policy_watch != nullptr) policy_watch->Stop();
  executor.reset();  // runs what is queued while the gate and audit log still exist
}

absl::StatusOr<std::unique_ptr<Guard>> StartGuard(const std::string& component,
                                                  metrics::Metrics& metrics, bool with_policy) {
  auto guard = std::make_unique<Guard>();
  if (with_policy) {
    COFFER_ASSIGN_OR_RETURN(guard->authorizer,
                            authz::Authorizer::FromFile(absl::GetFlag(FLAGS_policy_file)));
  }
  audit::AuditOptions audit_options;
  audit_options.dir = absl::GetFlag(FLAGS_audit_dir);
  audit_options.service = component;
  audit_options.max_file_bytes =
      static_cast<uint64_t>(std::max<int64_t>(4096, absl::GetFlag(FLAGS_audit_max_file_bytes)));
  audit_options.write_timeout = absl::GetFlag(FLAGS_audit_write_timeout);
  COFFER_ASSIGN_OR_RETURN(guard->audit, audit::AuditLog::Open(std::move(audit_options)));
  guard->executor = std::make_unique<BoundedExecutor>(
      absl::StrCat(component, "-calls"), absl::GetFlag(FLAGS_call_threads),
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_calls_in_flight))));
  guard->gate = std::make_unique<CallGate>(guard->authorizer.get(), guard->audit.get(),
                                           metrics.registry().get(), guard->executor.get());
  if (guard->authorizer != nullptr) {
    authz::Authorizer* authorizer = guard->authorizer.get();
    guard->policy_watch =
        std::make_unique<PeriodicTask>(absl::StrCat(component, "-policy"), absl::Seconds(1),
                                       [authorizer] { authorizer->ReloadIfChanged(); });
    guard->policy_watch->Start();
  }
  log::Info(component, with_policy ? "calls are authorized and audited" : "calls are audited",
            {{"policy_file", with_policy ? absl::GetFlag(FLAGS_policy_file) : ""},
             {"audit_file", guard->audit->current_file()}});
  return guard;
}

int WaitForShutdown(Guard* guard) {
  while (true) {
    int sig = rpc::WaitForSignal();
    if (sig != SIGHUP) return sig;
    if (guard != nullptr && guard->authorizer != nullptr) {
      log::Info("authz", "SIGHUP: reloading the policy");
      (void)guard->authorizer->Reload();  // errors are logged; the old policy stays
    }
  }
}

size_t MaxHealthWatches() {
  return static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_health_watches)));
}

rpc::TlsFiles TlsFromFlags() {
  return {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
          absl::Seconds(absl::GetFlag(FLAGS_cert_refresh_seconds))};
}

rpc::ServerOptions ServerOptionsFromFlags() {
  rpc::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen_address);
  options.health_listen_address = absl::GetFlag(FLAGS_health_listen_address);
  options.tls = TlsFromFlags();
  return options;
}

absl::StatusOr<std::unique_ptr<metrics::Metrics>> StartMetrics(const std::string& component) {
  if (absl::GetFlag(FLAGS_metrics_address).empty()) return metrics::Metrics::Create(component);
  return metrics::Metrics::Start(absl::GetFlag(FLAGS_metrics_address), component);
}

absl::Status WritePortsFile(const rpc::Server& server, const metrics::Metrics& metrics) {
  return WritePortsFile(server.port(), server.health_port(), metrics);
}

absl::Status WritePortsFile(int port, int health_port, const metrics::Metrics& metrics) {
  const std::string path = absl::GetFlag(FLAGS_ports_file);
  if (path.empty()) return absl::OkStatus();
  return WriteFileAtomically(path,
                             absl::StrCat("{\"grpc\":", port, ",\"health\":", health_port,
                                          ",\"metrics\":", metrics.port(), "}\n"),
                             0644);
}

absl::Duration ShutdownGrace() { return absl::GetFlag(FLAGS_shutdown_grace); }

ArnParts ArnFromFlags() {
  return {absl::GetFlag(FLAGS_arn_partition), absl::GetFlag(FLAGS_arn_region),
          absl::GetFlag(FLAGS_arn_account)};
}

}  // namespace coffer::runtime
