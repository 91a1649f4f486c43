#include "tools/cofferctl/caller.h"

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/status.h"
#include "libs/rpc/tls.h"

namespace coffer::cofferctl {

namespace pb = google::protobuf;

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const ConnectionOptions& connection) {
  rpc::ChannelOptions options;
  options.target = connection.address;
  options.tls.ca_file = connection.ca_file;
  options.tls.cert_file = connection.cert_file;
  options.tls.key_file = connection.key_file;
  options.authority = connection.authority;
  COFFER_RETURN_IF_ERROR(rpc::CheckTlsFiles(options.tls));
  return rpc::MakeChannel(std::move(options));
}

absl::StatusOr<std::unique_ptr<pb::Message>> CallUnary(const std::shared_ptr<grpc::Channel>& channel,
                                                       const pb::MethodDescriptor& method,
                                                       const pb::Message& request,
                                                       absl::Duration timeout) {
  if (method.client_streaming() || method.server_streaming()) {
    return absl::UnimplementedError(
        absl::StrCat(method.full_name(), " is a streaming RPC; streaming not supported yet"));
  }
  const pb::Message* prototype =
      pb::MessageFactory::generated_factory()->GetPrototype(method.output_type());
  if (prototype == nullptr) {
    return absl::InternalError(absl::StrCat("no generated code for ", method.output_type()->full_name()));
  }
  std::unique_ptr<pb::Message> response(prototype->New());

  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::TemplatedGenericStub<pb::Message, pb::Message> stub(channel);
  const std::string path = absl::StrCat("/", method.service()->full_name(), "/", method.name());
  grpc::Status result;
  absl::Notification done;
  stub.UnaryCall(&context, path, grpc::StubOptions(), &request, response.get(),
                 [&](grpc::Status status) {
                   result = std::move(status);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!result.ok()) return rpc::FromGrpcStatus(result);
  return response;
}

}  // namespace coffer::cofferctl
