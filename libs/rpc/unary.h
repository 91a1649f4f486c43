// unary.h: finishing a callback-API unary call from an absl::StatusOr.
//
// Handlers stay one line: call the library, hand the result over.
//
//   grpc::ServerUnaryReactor* Encrypt(grpc::CallbackServerContext*,
//                                     const EncryptRequest* req, EncryptResponse* resp) override {
//     return coffer::rpc::FinishUnary(store_->Encrypt(*req), resp,
//                                     [req] { coffer::rpc::WipeString(req->plaintext()); });
//   }
//
// The optional `on_done` runs once gRPC is finished with the messages (the
// reactor's OnDone), before it frees them: the place to wipe plaintext.
// Errors go through ToGrpcStatus; INTERNAL, UNAVAILABLE and DATA_LOSS are
// logged (status text only, which never holds secret values).
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "libs/rpc/status.h"

namespace coffer::rpc {

class CallbackReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit CallbackReactor(std::function<void()> on_done) : on_done_(std::move(on_done)) {}
  void OnDone() override {
    if (on_done_) on_done_();
    delete this;
  }

 private:
  std::function<void()> on_done_;
};

// Logs a failed call when the failure is the server's (not the caller's).
void LogServerFailure(absl::string_view method, const absl::Status& status);

// Overwrites the bytes of a string the server is about to free.
void WipeString(const std::string& s);

template <typename Response>
grpc::ServerUnaryReactor* FinishUnary(absl::string_view method, absl::StatusOr<Response> result,
                                      Response* response, std::function<void()> on_done = nullptr) {
  auto* reactor = new CallbackReactor(std::move(on_done));
  if (result.ok()) {
    *response = std::move(result).value();
    reactor->Finish(grpc::Status::OK);
  } else {
    LogServerFailure(method, result.status());
    reactor->Finish(ToGrpcStatus(result.status()));
  }
  return reactor;
}

}  // namespace coffer::rpc
