#include "libs/worker/rotation_handler.h"

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"

namespace coffer::worker {

namespace rv1 = ::coffer::rotation::v1;

absl::Status RunStep(RotationHandler& handler, rv1::RotationStep step, const StepContext& ctx) {
  switch (step) {
    case rv1::ROTATION_STEP_CREATE_SECRET:
      return handler.CreateSecret(ctx);
    case rv1::ROTATION_STEP_SET_SECRET:
      return handler.SetSecret(ctx);
    case rv1::ROTATION_STEP_TEST_SECRET:
      return handler.TestSecret(ctx);
    case rv1::ROTATION_STEP_FINISH_SECRET:
      return handler.FinishSecret(ctx);
    default:
      return InvalidField("step", "must be createSecret, setSecret, testSecret or finishSecret");
  }
}

absl::StatusOr<PendingState> CheckRotationVersion(const StepContext& ctx) {
  COFFER_ASSIGN_OR_RETURN(SecretVersions versions, ctx.secrets.DescribeSecret(ctx.secret_id));
  if (versions.HasStage(ctx.token, kAwsCurrent)) return PendingState::kCurrent;
  if (!versions.HasStage(ctx.token, kAwsPending)) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", ctx.token, " of secret ", ctx.secret_id,
                     " is not pending rotation (it has neither AWSPENDING nor AWSCURRENT)"));
  }
  return PendingState::kPending;
}

absl::Status CreatePendingIfMissing(const StepContext& ctx,
                                    const std::function<absl::StatusOr<std::string>()>& generate) {
  // By version id alone: after finishSecret the token has lost AWSPENDING
  // but still has its value, and a repeated createSecret must not write.
  absl::StatusOr<SecretValue> existing = ctx.secrets.GetSecretValue(ctx.secret_id, ctx.token, "");
  if (existing.ok()) return absl::OkStatus();
  if (!IsValueNotFound(existing.status())) return existing.status();

  COFFER_ASSIGN_OR_RETURN(std::string value, generate());
  absl::Status put = ctx.secrets.PutSecretValue(ctx.secret_id, ctx.token, value, {kAwsPending});
  if (put.ok() || ErrorReason(put) != reason::kResourceExists) return put;
  // Someone stored another value for this token meanwhile (a concurrent
  // repeat of this step): theirs stands, as long as it is really there.
  existing = ctx.secrets.GetSecretValue(ctx.secret_id, ctx.token, "");
  return existing.ok() ? absl::OkStatus() : put;
}

absl::Status FinishStandard(const StepContext& ctx) {
  COFFER_ASSIGN_OR_RETURN(SecretVersions versions, ctx.secrets.DescribeSecret(ctx.secret_id));
  if (!versions.Contains(ctx.token)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "finishSecret: version ", ctx.token, " of secret ", ctx.secret_id, " has no labels"));
  }
  const std::string current = versions.VersionWithStage(kAwsCurrent);
  if (current != ctx.token) {
    // Never make a version without a value current (a failed createSecret).
    absl::StatusOr<SecretValue> pending = ctx.secrets.GetSecretValue(ctx.secret_id, ctx.token, "");
    if (!pending.ok()) {
      if (!IsValueNotFound(pending.status())) return pending.status();
      return absl::FailedPreconditionError(absl::StrCat(
          "finishSecret: version ", ctx.token, " of secret ", ctx.secret_id, " has no value"));
    }
    COFFER_RETURN_IF_ERROR(
        ctx.secrets.UpdateSecretVersionStage(ctx.secret_id, kAwsCurrent, current, ctx.token));
  }
  if (versions.HasStage(ctx.token, kAwsPending)) {
    COFFER_RETURN_IF_ERROR(
        ctx.secrets.UpdateSecretVersionStage(ctx.secret_id, kAwsPending, ctx.token, ""));
  }
  return absl::OkStatus();
}

}  // namespace coffer::worker
