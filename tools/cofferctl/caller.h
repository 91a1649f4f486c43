// caller.h: the network half of cofferctl — an mTLS channel from the
// connection flags, and calls of any method given by its descriptor (the
// request and responses are plain google::protobuf::Message): unary, and
// server streaming.
//
//   COFFER_ASSIGN_OR_RETURN(auto channel, coffer::cofferctl::Connect(invocation.connection));
//   absl::StatusOr<std::unique_ptr<google::protobuf::Message>> response =
//       coffer::cofferctl::CallUnary(channel, *method, *request, absl::Seconds(30));
//
//   // A server stream, printed one JSON object per line, ended by Ctrl-C
//   // (canceller.Cancel() from a signal thread), 10 events or 1 minute:
//   coffer::cofferctl::Canceller canceller;
//   absl::StatusOr<int64_t> printed = coffer::cofferctl::PrintServerStream(
//       channel, *method, *request, absl::Minutes(1), /*max_events=*/10, std::cout, &canceller);
//
// Call errors keep the server's coffer.v1.ErrorInfo (via
// coffer::rpc::FromGrpcStatus), so FormatError (failures.h) can show the
// reason.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "tools/cofferctl/invocation.h"

namespace coffer::cofferctl {

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const ConnectionOptions& connection);

// Calls "/<service>/<method>" with a deadline of `timeout` from now.
// UNIMPLEMENTED for streaming methods.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> CallUnary(
    const std::shared_ptr<grpc::Channel>& channel, const google::protobuf::MethodDescriptor& method,
    const google::protobuf::Message& request, absl::Duration timeout);

// Lets another thread (cofferctl's signal watcher, a test) end a streaming
// call early. Cancel() is thread-safe and sticky: a call started after it
// ends at once.
class Canceller {
 public:
  void Cancel();
  bool cancelled() const;

  // For CallServerStreaming: the call in progress (nullptr when none).
  // Returns false (and attaches nothing) when already cancelled.
  bool Attach(grpc::ClientContext* context);
  void Detach();

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Calls the server-streaming "/<service>/<method>" and hands every message
// to `on_message`, in order, on the calling thread. The call ends normally
// (OK) when the server finishes with OK, when `on_message` returns false,
// when `canceller` (optional) is cancelled, or — `timeout` not infinite —
// when the deadline `timeout` from now is reached (DEADLINE_EXCEEDED is the
// expected end of a bounded watch, after any number of messages). With
// absl::InfiniteDuration() the call has no deadline. Any other end is the
// server's error. UNIMPLEMENTED for a method that is not server-streaming
// or is client-streaming.
absl::Status CallServerStreaming(
    const std::shared_ptr<grpc::Channel>& channel, const google::protobuf::MethodDescriptor& method,
    const google::protobuf::Message& request, absl::Duration timeout,
    const std::function<bool(const google::protobuf::Message&)>& on_message,
    Canceller* canceller = nullptr);

// CallServerStreaming that writes each message to `out` as one compact JSON
// line (FormatJsonLine) — or, with OutputFormat::kText, one tab-separated
// line (FormatTextLine) — flushed per line, and stops after `max_events`
// messages (0: no limit). Returns how many messages were written; an
// error when the call failed or `out` went bad.
absl::StatusOr<int64_t> PrintServerStream(const std::shared_ptr<grpc::Channel>& channel,
                                          const google::protobuf::MethodDescriptor& method,
                                          const google::protobuf::Message& request,
                                          absl::Duration timeout, int64_t max_events,
                                          std::ostream& out, Canceller* canceller = nullptr,
                                          OutputFormat format = OutputFormat::kJson);

}  // namespace coffer::cofferctl
