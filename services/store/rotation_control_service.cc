#include "services/store/rotation_control_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/peer.h"
#include "libs/rpc/unary.h"

namespace coffer::store {
namespace rot = ::coffer::rotation::v1;

absl::Status RotationControlService::Authorize(const authz::Access& access,
                                               absl::string_view action) const {
  if (allowed_callers_.empty()) return absl::OkStatus();
  if (std::find(allowed_callers_.begin(), allowed_callers_.end(), access.principal()) !=
      allowed_callers_.end()) {
    return absl::OkStatus();
  }
  return authz::AccessDenied(access.principal(), action, "*", "allowed only for rotators");
}

#define COFFER_CONTROL_HANDLER(Method)                                                            \
  grpc::ServerUnaryReactor* RotationControlService::Method(grpc::CallbackServerContext* context,  \
                                                           const rot::Method##Request* request,   \
                                                           rot::Method##Response* response) {     \
    return gate_->Unary<rot::Method##Response>(                                                   \
        context, "rotation:" #Method,                                                             \
        [ this, request ](const authz::Access& access) -> absl::StatusOr<rot::Method##Response> { \
          COFFER_RETURN_IF_ERROR(Authorize(access, "rotation:" #Method));                         \
          return rotation_->Method(*request, access);                                             \
        },                                                                                        \
        response);                                                                                \
  }

COFFER_CONTROL_HANDLER(ListRotationSchedules)
COFFER_CONTROL_HANDLER(AcquireRotationLease)
COFFER_CONTROL_HANDLER(RenewRotationLease)
COFFER_CONTROL_HANDLER(RecordRotationProgress)
COFFER_CONTROL_HANDLER(CompleteRotation)
COFFER_CONTROL_HANDLER(ReleaseRotationLease)

#undef COFFER_CONTROL_HANDLER

}  // namespace coffer::store
