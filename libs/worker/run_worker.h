// run_worker.h: the whole main() of a rotation worker except its own flags
// and its RotationHandler.
//
//   int main(int argc, char** argv) {
//     return coffer::worker::RunWorker(
//         argc, argv, {"worker-postgres", 7711, 9711},
//         []() -> absl::StatusOr<std::unique_ptr<coffer::worker::RotationHandler>> {
//           return MakePostgresRotation(...flags...);
//         });
//   }
//
// It blocks SIGTERM/SIGINT, sets the defaults of the shared service flags
// (libs/runtime: --listen_address, --tls_*, --metrics_address, ...), parses
// the command line, makes the mTLS channel to coffer-store, serves
// coffer.rotation.v1.RotationWorker until SIGTERM/SIGINT and drains in-flight
// steps for --shutdown_grace. Its own flags: --store_address (default
// localhost:7702), --store_spiffe_id (default spiffe://coffer.local/store),
// --store_authority, --store_timeout, --allowed_callers,
// --step_threads.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "libs/runtime/service_flags.h"
#include "libs/worker/rotation_handler.h"

namespace coffer::worker {

using HandlerFactory = std::function<absl::StatusOr<std::unique_ptr<RotationHandler>>()>;

// Returns the process exit code. `defaults.identity` is also the log
// component. The factory runs after the command line is parsed.
int RunWorker(int argc, char** argv, const runtime::ServiceDefaults& defaults,
              const HandlerFactory& make_handler);

// --store_address, the TLS files and other settings a handler may hand on
// (the exec worker passes them to its child). Valid after RunWorker parsed
// the command line.
struct StoreConnection {
  std::string address;
  rpc::TlsFiles tls;
  std::string spiffe_id;  // what the store must present ("" = host-name check)
};
StoreConnection StoreConnectionFromFlags();

}  // namespace coffer::worker
