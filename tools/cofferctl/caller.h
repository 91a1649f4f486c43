// caller.h: the network half of cofferctl — an mTLS channel from the
// connection flags, and one unary call of any method given by its
// descriptor (the request and response are plain google::protobuf::Message).
//
//   COFFER_ASSIGN_OR_RETURN(auto channel, coffer::cofferctl::Connect(invocation.connection));
//   absl::StatusOr<std::unique_ptr<google::protobuf::Message>> response =
//       coffer::cofferctl::CallUnary(channel, *method, *request, absl::Seconds(30));
//
// Call errors keep the server's coffer.v1.ErrorInfo (via
// coffer::rpc::FromGrpcStatus), so FormatError can show the reason.
#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "tools/cofferctl/invocation.h"

namespace coffer::cofferctl {

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const ConnectionOptions& connection);

// Calls "/<service>/<method>" with a deadline of `timeout` from now.
// UNIMPLEMENTED for streaming methods.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> CallUnary(
    const std::shared_ptr<grpc::Channel>& channel,
    const google::protobuf::MethodDescriptor& method, const google::protobuf::Message& request,
    absl::Duration timeout);

}  // namespace coffer::cofferctl
