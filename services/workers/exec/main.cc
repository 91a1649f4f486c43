// coffer-worker-exec: the built-in exec rotation worker — runs
// --command for every rotation step (see exec_rotation.h for its
// environment) and reads nothing but the exit status.
//
//   coffer-worker-exec --command=/etc/coffer/rotate.sh --step_timeout=60s
//       --store_address=localhost:7702 --tls_ca=var/certs/ca.crt
//       --tls_cert=var/certs/worker-exec.crt --tls_key=var/certs/worker-exec.key
//
// Serves coffer.rotation.v1.RotationWorker on --listen_address (default
// 127.0.0.1:7712), metrics on --metrics_address (default 127.0.0.1:9712).
#include "absl/flags/flag.h"
#include "libs/worker/run_worker.h"
#include "services/workers/exec/exec_rotation.h"

ABSL_FLAG(std::string, command, "", "absolute path of the program run for every step (required)");
ABSL_FLAG(absl::Duration, step_timeout, absl::Seconds(60),
          "how long one run of --command may take before it is killed");

int main(int argc, char** argv) {
  return coffer::worker::RunWorker(
      argc, argv, {"worker-exec", 7712, 9712},
      []() -> absl::StatusOr<std::unique_ptr<coffer::worker::RotationHandler>> {
        const std::string command = absl::GetFlag(FLAGS_command);
        if (absl::Status s = coffer::workers::CheckCommand(command); !s.ok()) return s;
        if (absl::GetFlag(FLAGS_step_timeout) <= absl::ZeroDuration()) {
          return absl::InvalidArgumentError("--step_timeout must be positive");
        }
        const coffer::worker::StoreConnection store = coffer::worker::StoreConnectionFromFlags();
        coffer::workers::ExecRotationOptions options;
        options.command = command;
        options.step_timeout = absl::GetFlag(FLAGS_step_timeout);
        options.store_address = store.address;
        options.tls = store.tls;
        options.store_spiffe_id = store.spiffe_id;
        return std::make_unique<coffer::workers::ExecRotation>(std::move(options));
      });
}
