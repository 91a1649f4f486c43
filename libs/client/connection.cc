#include "libs/client/connection.h"

#include "libs/metrics/metrics.h"
#include "libs/rpc/channel.h"

namespace coffer::client {

absl::StatusOr<std::shared_ptr<Connection>> Connection::Create(const ClientOptions& options,
                                                               std::string peer) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  rpc::ChannelOptions channel_options;
  channel_options.target = options.endpoint;
  channel_options.tls = options.tls;
  channel_options.expected_spiffe_id = options.server_spiffe_id;
  if (options.metrics != nullptr) {
    channel_options.interceptors.push_back(options.metrics->ClientInterceptorFactory());
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      rpc::MakeChannel(std::move(channel_options));
  if (!channel.ok()) return channel.status();
  std::shared_ptr<Stub> stub = MakeGrpcStub(*std::move(channel), std::move(peer));
  stub = MakeRetryingStub(std::move(stub), options.retry);
  if (options.log_calls) stub = MakeLoggingStub(std::move(stub));
  return std::make_shared<Connection>(std::move(stub), options);
}

}  // namespace coffer::client
