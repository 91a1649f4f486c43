// rotation_control_service.h: the gRPC face of the store's rotation-control
// API (coffer.rotation.v1.RotationControl), used by coffer-rotator. Thin:
// each handler checks the caller and calls the SecretRotation method of the
// same name. Only the SPIFFE identities in `allowed_callers` may call it
// (empty: any authenticated caller); others get PERMISSION_DENIED
// (AccessDeniedException naming the action).
//
//   RotationControlService control(&rotation, {"spiffe://coffer.local/rotator"});
//   rpc::Server::Start(std::move(options), {&secrets, &params, &control}, &health);
#pragma once

#include <string>
#include <vector>

#include "coffer/rotation/v1/control.grpc.pb.h"
#include "libs/runtime/call_gate.h"
#include "services/store/secrets/secret_rotation.h"

namespace coffer::store {

class RotationControlService final : public rotation::v1::RotationControl::CallbackService {
 public:
  // `allowed_callers` (SPIFFE IDs; empty: any) is checked before the
  // policy: a second lock on the rotation-control API. Every call goes
  // through `gate` (authorization, audit); null: callers trusted (tests).
  explicit RotationControlService(SecretRotation* rotation,
                                  std::vector<std::string> allowed_callers = {},
                                  runtime::CallGate* gate = nullptr)
      : rotation_(rotation),
        allowed_callers_(std::move(allowed_callers)),
        gate_(gate != nullptr ? gate : &runtime::CallGate::Unguarded()) {}

#define COFFER_CONTROL_RPC(Method)                                               \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context,         \
                                   const rotation::v1::Method##Request* request, \
                                   rotation::v1::Method##Response* response) override;
  COFFER_CONTROL_RPC(ListRotationSchedules)
  COFFER_CONTROL_RPC(AcquireRotationLease)
  COFFER_CONTROL_RPC(RenewRotationLease)
  COFFER_CONTROL_RPC(RecordRotationProgress)
  COFFER_CONTROL_RPC(CompleteRotation)
  COFFER_CONTROL_RPC(ReleaseRotationLease)
#undef COFFER_CONTROL_RPC

 private:
  // OK, or AccessDeniedException for `action` when the caller is not allowed.
  absl::Status Authorize(const authz::Access& access, absl::string_view action) const;

  SecretRotation* rotation_;
  std::vector<std::string> allowed_callers_;
  runtime::CallGate* gate_;
};

}  // namespace coffer::store
