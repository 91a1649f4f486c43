// status.h: the one place absl::Status and grpc::Status meet.
//
// ToGrpcStatus keeps the code and message and puts a serialized
// google.rpc.Status (code, message, details = [Any(coffer.v1.ErrorInfo)])
// in the status details, the standard richer-error trailer
// (grpc-status-details-bin). FromGrpcStatus restores the ErrorDetail, so a
// reason survives a hop between services.
//
//   grpc::Status s = coffer::rpc::ToGrpcStatus(store.Encrypt(...).status());
//   absl::Status back = coffer::rpc::FromGrpcStatus(s);
//   coffer::ErrorReason(back) == "DisabledException";
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace coffer::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace coffer::rpc
