#include "libs/rpc/generic_call.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace coffer::rpc {

namespace pb = google::protobuf;

std::unique_ptr<pb::Message> NewMessage(const pb::Descriptor& type) {
  const pb::Message* prototype = pb::MessageFactory::generated_factory()->GetPrototype(&type);
  return prototype == nullptr ? nullptr : std::unique_ptr<pb::Message>(prototype->New());
}

grpc::Status CallGenericUnary(const std::shared_ptr<grpc::Channel>& channel,
                              const pb::MethodDescriptor& method, const pb::Message& request,
                              grpc::ClientContext& context, pb::Message* response) {
  grpc::TemplatedGenericStub<pb::Message, pb::Message> stub(channel);
  const std::string path = absl::StrCat("/", method.service()->full_name(), "/", method.name());
  grpc::Status result;
  absl::Notification done;
  stub.UnaryCall(&context, path, grpc::StubOptions(), &request, response, [&](grpc::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace coffer::rpc
