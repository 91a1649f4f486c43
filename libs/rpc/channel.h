// channel.h: client channels to other Coffer services, always mTLS.
//
//   coffer::rpc::ChannelOptions opts;
//   opts.target = "localhost:7701";
//   opts.tls = {ca, cert, key};
//   opts.interceptors.push_back(metrics.ClientInterceptorFactory());
//   COFFER_ASSIGN_OR_RETURN(auto channel, coffer::rpc::MakeChannel(std::move(opts)));
//   auto stub = coffer::kms::v1::KeyManagement::NewStub(channel);
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/rpc/tls.h"

namespace coffer::rpc {

struct ChannelOptions {
  // host:port.
  std::string target;
  TlsFiles tls;
  // Overrides the name checked against the server certificate (default: the
  // host part of target).
  std::string authority;
  // When set, the server must present exactly this SPIFFE ID (URI SAN),
  // checked in the TLS handshake before any call is sent; replaces the
  // host-name check.
  std::string expected_spiffe_id;
  int max_receive_message_bytes = 4 << 20;
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(ChannelOptions options);

}  // namespace coffer::rpc
