#include "services/store/rotation_control_service.h"

#include "libs/rpc/unary.h"

namespace coffer::store {
namespace rot = ::coffer::rotation::v1;

#define COFFER_CONTROL_HANDLER(Method)                                                     \
  grpc::ServerUnaryReactor* RotationControlService::Method(grpc::CallbackServerContext*,   \
                                                           const rot::Method##Request* request, \
                                                           rot::Method##Response* response) {   \
    return rpc::FinishUnary(#Method, store_->Method(*request), response);                  \
  }

COFFER_CONTROL_HANDLER(ListRotationSchedules)
COFFER_CONTROL_HANDLER(AcquireRotationLease)
COFFER_CONTROL_HANDLER(RenewRotationLease)
COFFER_CONTROL_HANDLER(RecordRotationProgress)
COFFER_CONTROL_HANDLER(CompleteRotation)
COFFER_CONTROL_HANDLER(ReleaseRotationLease)

#undef COFFER_CONTROL_HANDLER

}  // namespace coffer::store
