// client_call.h: one unary call to another Coffer service, and the one place
// a client's grpc::Status becomes an absl::Status.
//
//   coffer::rpc::CallOptions options;
//   options.timeout = absl::Seconds(5);       // deadline = now + 5s
//   options.peer = "coffer-store";            // named by "unavailable" errors
//   options.prepare = [](grpc::ClientContext& ctx) { ctx.set_wait_for_ready(false); };
//   absl::StatusOr<sm::DescribeSecretResponse> described = coffer::rpc::CallUnary(
//       stub_.get(), &sm::SecretsManager::Stub::DescribeSecret, request, options);
//
// Callers that need the grpc::ClientContext after the call (its auth
// context, a cancel list) make the call themselves and convert the status:
//
//   grpc::ClientContext ctx;
//   coffer::rpc::ApplyCallOptions(options, ctx);
//   grpc::Status status = stub_->Decrypt(&ctx, request, &response);
//   if (!status.ok()) return coffer::rpc::ClientStatus(status, "coffer-kms");
//
// Contract of the conversion (ClientStatus, and CallUnary's errors):
//  - An error the peer returned keeps its code, message and Coffer reason
//    (rpc::FromGrpcStatus restores the ErrorInfo).
//  - A transport failure, i.e. UNAVAILABLE or DEADLINE_EXCEEDED without a
//    Coffer reason (no connection, TLS refused, deadline passed), becomes
//    UNAVAILABLE with reason ServiceUnavailableException and the message
//    "<peer> unavailable: <gRPC message>".
//  - Anything else is FromGrpcStatus's result unchanged.
// The deadline is on real time (gRPC's clock), not on a coffer::Clock.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/blocking.h"

namespace coffer::rpc {

struct CallOptions {
  // The call's deadline is now + timeout; absl::InfiniteDuration() sets none.
  absl::Duration timeout = absl::InfiniteDuration();
  // The service called, as error messages name it ("coffer-kms",
  // "coffer-store").
  std::string peer;
  // Optional: runs on the context after the deadline is set and before the
  // call (metadata, wait_for_ready...).
  std::function<void(grpc::ClientContext&)> prepare;
};

// Sets `options`' deadline on `context` and runs its `prepare` hook.
void ApplyCallOptions(const CallOptions& options, grpc::ClientContext& context);

// OK for OK; otherwise as described above, naming `peer`.
absl::Status ClientStatus(const grpc::Status& status, absl::string_view peer);

// Calls `method` (a generated Stub's blocking method, e.g.
// &kms::v1::KeyManagement::Stub::Encrypt) on `stub` with a fresh context
// prepared by ApplyCallOptions; the response, or ClientStatus of the failure.
template <typename Stub, typename Req, typename Resp>
absl::StatusOr<Resp> CallUnary(Stub* stub,
                               grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&,
                                                            Resp*),
                               const Req& request, const CallOptions& options) {
  if (!MayBlock()) return WouldBlockError(absl::StrCat("a call to ", options.peer));
  grpc::ClientContext context;
  ApplyCallOptions(options, context);
  Resp response;
  grpc::Status status = (stub->*method)(&context, request, &response);
  if (!status.ok()) return ClientStatus(status, options.peer);
  return absl::StatusOr<Resp>(std::move(response));
}

}  // namespace coffer::rpc
