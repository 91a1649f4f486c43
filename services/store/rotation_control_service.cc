#include "services/store/rotation_control_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/rpc/peer.h"
#include "libs/rpc/unary.h"

namespace coffer::store {
namespace rot = ::coffer::rotation::v1;

absl::Status RotationControlService::Authorize(const grpc::CallbackServerContext& context,
                                               absl::string_view action) const {
  if (allowed_callers_.empty()) return absl::OkStatus();
  std::optional<std::string> caller = rpc::PeerSpiffeId(context);
  if (caller && std::find(allowed_callers_.begin(), allowed_callers_.end(), *caller) !=
                    allowed_callers_.end()) {
    return absl::OkStatus();
  }
  return Error(reason::kAccessDenied,
               absl::StrCat("rotation:", action, " is allowed only for rotators"));
}

#define COFFER_CONTROL_HANDLER(Method)                                                            \
  grpc::ServerUnaryReactor* RotationControlService::Method(grpc::CallbackServerContext* context,  \
                                                           const rot::Method##Request* request,   \
                                                           rot::Method##Response* response) {     \
    absl::Status allowed = Authorize(*context, #Method);                                          \
    if (!allowed.ok()) {                                                                          \
      return rpc::FinishUnary(#Method, absl::StatusOr<rot::Method##Response>(allowed), response); \
    }                                                                                             \
    return rpc::FinishUnary(#Method, rotation_->Method(*request), response);                      \
  }

COFFER_CONTROL_HANDLER(ListRotationSchedules)
COFFER_CONTROL_HANDLER(AcquireRotationLease)
COFFER_CONTROL_HANDLER(RenewRotationLease)
COFFER_CONTROL_HANDLER(RecordRotationProgress)
COFFER_CONTROL_HANDLER(CompleteRotation)
COFFER_CONTROL_HANDLER(ReleaseRotationLease)

#undef COFFER_CONTROL_HANDLER

}  // namespace coffer::store
