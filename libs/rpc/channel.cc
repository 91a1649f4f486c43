#include "libs/rpc/channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "libs/common/status_macros.h"

namespace coffer::rpc {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(ChannelOptions options) {
  if (options.target.empty()) return absl::InvalidArgumentError("channel target is not set");
  COFFER_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                          MakeChannelCredentials(options.tls, options.expected_spiffe_id));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (!options.authority.empty()) args.SetSslTargetNameOverride(options.authority);
  return grpc::experimental::CreateCustomChannelWithInterceptors(options.target, creds, args,
                                                                 std::move(options.interceptors));
}

}  // namespace coffer::rpc
