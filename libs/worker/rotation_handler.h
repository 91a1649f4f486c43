// rotation_handler.h: a rotation worker is a class with four methods, one per
// step of the protocol in rotation.md, plus the generic pieces every worker
// shares (creating the pending value once, finishing by moving labels).
//
//   class MyRotation final : public coffer::worker::RotationHandler {
//    public:
//     absl::Status CreateSecret(const StepContext& ctx) override {
//       return CreatePendingIfMissing(ctx, [&]() -> absl::StatusOr<std::string> {
//         return NewValueFrom(ctx.secrets.GetSecretValue(ctx.secret_id, "", kAwsCurrent));
//       });
//     }
//     absl::Status SetSecret(const StepContext& ctx) override { ... }
//     absl::Status TestSecret(const StepContext& ctx) override { ... }
//     absl::Status FinishSecret(const StepContext& ctx) override { return FinishStandard(ctx); }
//   };
//
// Every step must be idempotent: the rotator may repeat any of them after a
// crash or a timeout. A step fails by returning an error; its message names
// the step and the resource, never a secret value.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coffer/rotation/v1/worker.pb.h"
#include "libs/worker/secrets_client.h"

namespace coffer::worker {

struct StepContext {
  // The secret's ARN.
  std::string secret_id;
  // The pending version's id (the rotation's client request token).
  std::string token;
  SecretsClient& secrets;
};

class RotationHandler {
 public:
  virtual ~RotationHandler() = default;
  // Generate the new credential and store it as the pending version, unless
  // it has a value already.
  virtual absl::Status CreateSecret(const StepContext& ctx) = 0;
  // Make the target system accept the pending credential.
  virtual absl::Status SetSecret(const StepContext& ctx) = 0;
  // Log in with the pending credential and check that it works.
  virtual absl::Status TestSecret(const StepContext& ctx) = 0;
  // Make the pending version AWSCURRENT (usually FinishStandard).
  virtual absl::Status FinishSecret(const StepContext& ctx) = 0;
};

// Calls the handler's method for `step`. INVALID_ARGUMENT for an unknown step.
absl::Status RunStep(RotationHandler& handler, rotation::v1::RotationStep step,
                     const StepContext& ctx);

// Where the rotation's version stands, from DescribeSecret. Checked before a
// step so that a step repeated after finishSecret is a harmless no-op.
enum class PendingState {
  kPending,  // the token has AWSPENDING and is not AWSCURRENT yet
  kCurrent,  // the token is AWSCURRENT: the rotation has finished
};
// FAILED_PRECONDITION when the token is not a version of the secret or has
// neither AWSPENDING nor AWSCURRENT (not a rotation in progress).
absl::StatusOr<PendingState> CheckRotationVersion(const StepContext& ctx);

// createSecret's common part: if version `token` has no value yet, calls
// `generate` and stores its result with PutSecretValue(token, [AWSPENDING]).
// Idempotent: a version that has a value is left alone, and a concurrent
// writer that got there first wins.
absl::Status CreatePendingIfMissing(const StepContext& ctx,
                                    const std::function<absl::StatusOr<std::string>()>& generate);

// finishSecret's common part: moves AWSCURRENT (and with it AWSPREVIOUS) to
// `token` from the current version, then removes AWSPENDING from `token`.
// Idempotent: a token that already is AWSCURRENT only loses AWSPENDING.
// FAILED_PRECONDITION if `token` is unknown or has no value.
absl::Status FinishStandard(const StepContext& ctx);

}  // namespace coffer::worker
