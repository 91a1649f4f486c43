// rotation_control_service.h: the gRPC face of the store's rotation-control
// API (coffer.rotation.v1.RotationControl), used by coffer-rotator. Thin:
// each handler calls the SecretStore method of the same name.
//
//   RotationControlService control(&store);
//   rpc::Server::Start(std::move(options), {&secrets, &params, &control}, &health);
#pragma once

#include "coffer/rotation/v1/control.grpc.pb.h"
#include "services/store/secret_store.h"

namespace coffer::store {

class RotationControlService final : public rotation::v1::RotationControl::CallbackService {
 public:
  explicit RotationControlService(SecretStore* store) : store_(store) {}

#define COFFER_CONTROL_RPC(Method)                                                \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context,          \
                                   const rotation::v1::Method##Request* request,  \
                                   rotation::v1::Method##Response* response) override;
  COFFER_CONTROL_RPC(ListRotationSchedules)
  COFFER_CONTROL_RPC(AcquireRotationLease)
  COFFER_CONTROL_RPC(RenewRotationLease)
  COFFER_CONTROL_RPC(RecordRotationProgress)
  COFFER_CONTROL_RPC(CompleteRotation)
  COFFER_CONTROL_RPC(ReleaseRotationLease)
#undef COFFER_CONTROL_RPC

 private:
  SecretStore* store_;
};

}  // namespace coffer::store
