// exec_rotation.h: the built-in exec rotation worker — rotation in any
// language. For every step it runs one configured executable (fork/execve,
// no shell) and reads nothing but its exit status.
//
//   ExecRotationOptions options;
//   options.command = "/etc/coffer/rotate-ldap.sh";
//   options.step_timeout = absl::Seconds(60);
//   options.store_address = "localhost:7702";
//   options.tls = runtime::TlsFromFlags();
//   ExecRotation handler(options);
//
// The child's environment is the worker's plus
//   COFFER_ROTATION_STEP         createSecret | setSecret | testSecret | finishSecret
//   COFFER_SECRET_ID             the secret's ARN
//   COFFER_CLIENT_REQUEST_TOKEN  the pending version's id
//   COFFER_STORE_ADDRESS, COFFER_SECRETS_ADDRESS  coffer-store's host:port
//   COFFER_CA, COFFER_CERT, COFFER_KEY             this worker's TLS files
//   COFFER_SERVER_SPIFFE_ID                       the SPIFFE ID coffer-store must present
// so that the program can call the store with cofferctl (as this worker's
// identity) to read AWSCURRENT, store the pending value and move labels.
// Exit status 0 is success; another status fails the step
// (FAILED_PRECONDITION naming the status); a program still running after
// `step_timeout` is killed with its whole process group (UNAVAILABLE).
// Its stdin, stdout and stderr are /dev/null: nothing it prints can leak a
// credential into the worker's logs.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/rpc/tls.h"
#include "libs/worker/rotation_handler.h"

namespace coffer::workers {

struct ExecRotationOptions {
  std::string command;
  absl::Duration step_timeout = absl::Seconds(60);
  std::string store_address;
  rpc::TlsFiles tls;
  // The SPIFFE ID the store must present, handed to the command as
  // $COFFER_SERVER_SPIFFE_ID (cofferctl pins it).
  std::string store_spiffe_id = "spiffe://coffer.local/store";
};

// INVALID_ARGUMENT unless `command` is an absolute path to an executable file.
absl::Status CheckCommand(const std::string& command);

class ExecRotation final : public worker::RotationHandler {
 public:
  explicit ExecRotation(ExecRotationOptions options) : options_(std::move(options)) {}

  absl::Status CreateSecret(const worker::StepContext& ctx) override;
  absl::Status SetSecret(const worker::StepContext& ctx) override;
  absl::Status TestSecret(const worker::StepContext& ctx) override;
  absl::Status FinishSecret(const worker::StepContext& ctx) override;

 private:
  absl::Status Run(const worker::StepContext& ctx, absl::string_view step);
  const ExecRotationOptions options_;
};

}  // namespace coffer::workers
