#include "services/store/envelope/signing_keys.h"

#include <grpcpp/grpcpp.h>

#include "coffer/iam/v1/access_keys.grpc.pb.h"
#include "libs/rpc/client_call.h"

namespace coffer::store {
namespace {

namespace iamv1 = ::coffer::iam::v1;

class KmsSigningKeys final : public runtime::SigningKeySource {
 public:
  KmsSigningKeys(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : stub_(iamv1::AccessKeys::NewStub(std::move(channel))), timeout_(timeout) {}

  absl::StatusOr<SigningKey> Find(absl::string_view access_key_id,
                                  const sigv4::CredentialScope& scope) override {
    rpc::CallOptions options;
    options.timeout = timeout_;
    options.peer = "coffer-kms";
    absl::StatusOr<iamv1::GetSigningKeyResponse> response =
        rpc::CallUnary(stub_.get(), &iamv1::AccessKeys::Stub::GetSigningKey,
                       runtime::SigningKeyRequest(access_key_id, scope), options);
    if (!response.ok()) return response.status();
    return runtime::TakeSigningKey(*response);
  }

 private:
  std::unique_ptr<iamv1::AccessKeys::Stub> stub_;
  absl::Duration timeout_;
};

}  // namespace

std::unique_ptr<runtime::SigningKeySource> MakeKmsSigningKeySource(
    std::shared_ptr<grpc::Channel> channel, absl::Duration timeout) {
  return std::make_unique<KmsSigningKeys>(std::move(channel), timeout);
}

}  // namespace coffer::store
