// connection.h: the middle layer — one decorated stub to one service, with
// the options' deadline on every call. Clients (clients.h) and caches are
// built on a shared Connection.
//
//   COFFER_ASSIGN_OR_RETURN(std::shared_ptr<Connection> store,
//                           Connection::Create(options, "coffer-store"));
//   SecretsClient secrets(store);
//   ParametersClient params(store);   // the same channel
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/client/client_options.h"
#include "libs/client/stub.h"

namespace coffer::client {

class Connection {
 public:
  // An mTLS channel to options.endpoint (pinning options.server_spiffe_id),
  // with grpc_client_* metrics when options.metrics is set, wrapped in the
  // retrying and (with options.log_calls) logging decorators. Errors name
  // `peer`. INVALID_ARGUMENT for bad options or unreadable TLS files.
  static absl::StatusOr<std::shared_ptr<Connection>> Create(const ClientOptions& options,
                                                            std::string peer);

  // Over a stub stacked by the caller (tests, other transports).
  Connection(std::shared_ptr<Stub> stub, ClientOptions options)
      : stub_(std::move(stub)), options_(std::move(options)) {}

  template <typename Response>
  absl::StatusOr<Response> Call(absl::string_view method, const google::protobuf::Message& request,
                                Idempotency idempotency) const {
    CallInfo call{std::string(method), idempotency, absl::Now() + options_.timeout};
    Response response;
    absl::Status s = stub_->Unary(call, request, &response);
    if (!s.ok()) return s;
    return response;
  }

  std::unique_ptr<ChangeStream> Watch(const std::string& method,
                                      const google::protobuf::Message& request) const {
    return stub_->Watch(method, request);
  }

  const ClientOptions& options() const { return options_; }

 private:
  std::shared_ptr<Stub> stub_;
  ClientOptions options_;
};

}  // namespace coffer::client
