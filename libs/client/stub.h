// stub.h: the bottom layer of the client library (google-cloud-cpp's
// client -> connection -> stub): one small interface over the wire, and the
// decorators stacked on it.
//
//   std::shared_ptr<Stub> stub = MakeGrpcStub(channel, "coffer-store");
//   stub = MakeRetryingStub(std::move(stub), options.retry);   // UNAVAILABLE, safe calls only
//   stub = MakeLoggingStub(std::move(stub));                   // failures, never values
//   CallInfo call{"/coffer.secrets.v1.SecretsManager/GetSecretValue",
//                 Idempotency::kIdempotent, absl::Now() + absl::Seconds(5)};
//   absl::Status s = stub->Unary(call, request, &response);
//
// Every method is thread-safe. Errors follow rpc::ClientStatus: a status
// the server returned keeps its code, message and Coffer reason; transport
// failures become UNAVAILABLE (ServiceUnavailableException).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coffer/v1/change_event.pb.h"
#include "libs/client/client_options.h"

namespace google::protobuf {
class Message;
}
namespace grpc {
class Channel;
}

namespace coffer::client {

// Whether a call may be sent again after it failed in transit: repeating
// it has the effect of sending it once.
enum class Idempotency { kIdempotent, kNonIdempotent };

struct CallInfo {
  std::string method;  // full path, e.g. "/coffer.kms.v1.KeyManagement/Decrypt"
  Idempotency idempotency = Idempotency::kNonIdempotent;
  absl::Time deadline = absl::InfiniteFuture();
};

// A server stream of change events (WatchSecrets, WatchParameters).
class ChangeStream {
 public:
  virtual ~ChangeStream() = default;
  // Blocks until the server has anchored the stream at its start position
  // (its initial metadata arrived) or the stream failed.
  virtual void WaitStarted() = 0;
  // Blocks for the next event; false when the stream ended (then Finish).
  virtual bool Read(coffer::v1::ChangeEvent* event) = 0;
  // Ends the stream from another thread: a blocked Read returns false.
  virtual void Cancel() = 0;
  // How the stream ended (after Read returned false).
  virtual absl::Status Finish() = 0;
};

class Stub {
 public:
  virtual ~Stub() = default;
  virtual absl::Status Unary(const CallInfo& call, const google::protobuf::Message& request,
                             google::protobuf::Message* response) = 0;
  // `method` is WatchSecrets' or WatchParameters' full path.
  virtual std::unique_ptr<ChangeStream> Watch(const std::string& method,
                                              const google::protobuf::Message& request) = 0;
};

// Whether a failed call says nothing about the resource itself (the
// service was unreachable, slow, busy or failed inside), so that what a
// cache holds may still be served; anything else (not found, denied,
// invalid) is an answer.
bool IsTransient(const absl::Status& status);

// Calls over `channel`; errors name `peer`.
std::shared_ptr<Stub> MakeGrpcStub(std::shared_ptr<grpc::Channel> channel, std::string peer);

// Sends an idempotent call again when it failed UNAVAILABLE, up to
// policy.max_attempts in all, with exponential backoff and full jitter,
// never past the call's deadline. `sleep` is for tests (default: sleeps).
std::shared_ptr<Stub> MakeRetryingStub(std::shared_ptr<Stub> inner, RetryPolicy policy,
                                       std::function<void(absl::Duration)> sleep = nullptr);

// Logs each failed call: method, code, reason, latency (never a request or
// a value).
std::shared_ptr<Stub> MakeLoggingStub(std::shared_ptr<Stub> inner);

}  // namespace coffer::client
