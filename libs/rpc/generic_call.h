// generic_call.h: one unary call of any method known only by its
// descriptor — cofferctl (a method named on the command line) and
// coffer-gateway (a method named by X-Amz-Target) — with the request and
// response as protobuf messages, through grpc's generic stub.
//
//   grpc::ClientContext context;
//   context.set_deadline(...);
//   std::unique_ptr<google::protobuf::Message> response = NewMessage(*method->output_type());
//   grpc::Status status = CallGenericUnary(channel, *method, request, context, response.get());
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace coffer::rpc {

// A new, empty message of `type` from the generated code (nullptr when the
// type was not compiled in).
std::unique_ptr<google::protobuf::Message> NewMessage(const google::protobuf::Descriptor& type);

// Calls `method` (unary) on `channel` and waits; fills `response`, which
// must be of the method's output type. The caller converts the status
// (FromGrpcStatus or ClientStatus).
grpc::Status CallGenericUnary(const std::shared_ptr<grpc::Channel>& channel,
                              const google::protobuf::MethodDescriptor& method,
                              const google::protobuf::Message& request,
                              grpc::ClientContext& context, google::protobuf::Message* response);

}  // namespace coffer::rpc
