// service_flags.h: the flags and start-up steps every Coffer service shares,
// so that coffer-kms, coffer-store and coffer-rotator are configured one way.
//
//   absl::Status Run() {
//     COFFER_RETURN_IF_ERROR(coffer::runtime::InitProcess());
//     COFFER_ASSIGN_OR_RETURN(auto metrics, coffer::runtime::StartMetrics("store"));
//     coffer::rpc::ServerOptions options = coffer::runtime::ServerOptionsFromFlags();
//     ...
//     coffer::runtime::WritePortsFile(*server, *metrics);
//   }
//   int main(int argc, char** argv) {
//     return coffer::runtime::ServiceMain(argc, argv, {"store", 7702, 9702},
//                                         "coffer-store: secrets and parameters", Run);
//   }
//
// Flags: --listen_address, --health_listen_address, --metrics_address,
// --tls_ca, --tls_cert, --tls_key, --cert_refresh_seconds, --shutdown_grace,
// --log_level, --ports_file, --arn_partition, --arn_region, --arn_account.
// All accept --flagfile.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/audit/audit_log.h"
#include "libs/authz/authorizer.h"
#include "libs/common/periodic.h"
#include "libs/metrics/metrics.h"
#include "libs/rpc/server.h"
#include "libs/rpc/tls.h"
#include "libs/runtime/call_gate.h"

namespace coffer::runtime {

struct ServiceDefaults {
  // Certificate base name under var/certs ("kms" -> var/certs/kms.crt).
  std::string identity;
  int grpc_port = 0;
  int metrics_port = 0;
};

// Sets the defaults of the shared flags for this binary. Call before
// absl::ParseCommandLine (command-line values still win).
void SetServiceDefaults(const ServiceDefaults& defaults);

// The whole of a service's main(): blocks the shutdown signals (before any
// thread starts), sets the flag defaults and the usage text, parses the
// command line and calls `run`; a failure is logged as fatal and exits 1.
int ServiceMain(int argc, char** argv, const ServiceDefaults& defaults, absl::string_view usage,
                const std::function<absl::Status()>& run);

// Applies --log_level, disables core dumps, initialises libsodium and, when
// `data_dir` is given, creates it (mode 0700, parents too).
absl::Status InitProcess(const std::string& data_dir = "");

rpc::TlsFiles TlsFromFlags();
// --max_health_watches: the HealthStatus bound on open Watch streams.
size_t MaxHealthWatches();
// listen addresses and TLS from the flags (interceptors are the caller's).
rpc::ServerOptions ServerOptionsFromFlags();
// A metrics registry, served over HTTP unless --metrics_address is empty.
absl::StatusOr<std::unique_ptr<metrics::Metrics>> StartMetrics(const std::string& component);
// Writes {"grpc":N,"health":N,"metrics":N} to --ports_file when set.
absl::Status WritePortsFile(const rpc::Server& server, const metrics::Metrics& metrics);
// The same for a service whose main listener is not gRPC (coffer-gateway:
// its HTTPS port is written as "grpc", the listener's field in every ports
// file).
absl::Status WritePortsFile(int port, int health_port, const metrics::Metrics& metrics);
absl::Duration ShutdownGrace();

// What guards the calls of a service: the call executor (--call_threads,
// --max_calls_in_flight), the identity policy (--policy_file,
// re-read within a second when it changes, and on SIGHUP through
// WaitForShutdown), the audit log (--audit_dir, --audit_max_file_bytes,
// --audit_write_timeout) and the CallGate over both.
struct Guard {
  std::unique_ptr<authz::Authorizer> authorizer;
  std::unique_ptr<audit::AuditLog> audit;
  // Runs calls off gRPC's threads (--call_threads) and sheds load beyond
  // --max_calls_in_flight.
  std::unique_ptr<BoundedExecutor> executor;
  std::unique_ptr<CallGate> gate;
  std::unique_ptr<PeriodicTask> policy_watch;
  ~Guard();
};
// `component` names the audit files ("store" -> store-audit-000001.jsonl).
// Fails when the policy file is missing or invalid (naming line and field)
// or the audit directory cannot be written: a service never starts open.
// `with_policy` false: audit only (rotation workers, which pin their one
// caller instead of evaluating policies).
absl::StatusOr<std::unique_ptr<Guard>> StartGuard(const std::string& component,
                                                  metrics::Metrics& metrics,
                                                  bool with_policy = true);
// Waits for SIGTERM or SIGINT (returns the signal); a SIGHUP meanwhile
// reloads `guard`'s policy (may be null).
int WaitForShutdown(Guard* guard);

// --arn_partition, --arn_region, --arn_account (defaults coffer, local,
// 000000000000): the parts of every ARN a service hands out.
struct ArnParts {
  std::string partition;
  std::string region;
  std::string account;
};
ArnParts ArnFromFlags();

}  // namespace coffer::runtime
