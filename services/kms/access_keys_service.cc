#include "services/kms/access_keys_service.h"

#include "libs/common/status_macros.h"
#include "libs/rpc/unary.h"

namespace coffer::kms {

namespace iamv1 = ::coffer::iam::v1;

grpc::ServerUnaryReactor* AccessKeysService::CreateAccessKey(
    grpc::CallbackServerContext* context, const iamv1::CreateAccessKeyRequest* request,
    iamv1::CreateAccessKeyResponse* response) {
  return gate_->Unary<iamv1::CreateAccessKeyResponse>(
      context, "iam:CreateAccessKey",
      [this,
       request](const authz::Access& access) -> absl::StatusOr<iamv1::CreateAccessKeyResponse> {
        COFFER_RETURN_IF_ERROR(access.Check("iam:CreateAccessKey", request->identity()));
        return store_->CreateAccessKey(*request);
      },
      response, [response] { rpc::WipeString(response->secret_access_key()); });
}

grpc::ServerUnaryReactor* AccessKeysService::ListAccessKeys(
    grpc::CallbackServerContext* context, const iamv1::ListAccessKeysRequest* request,
    iamv1::ListAccessKeysResponse* response) {
  return gate_->Unary<iamv1::ListAccessKeysResponse>(
      context, "iam:ListAccessKeys",
      [this,
       request](const authz::Access& access) -> absl::StatusOr<iamv1::ListAccessKeysResponse> {
        COFFER_RETURN_IF_ERROR(access.Check(
            "iam:ListAccessKeys", request->identity().empty() ? "*" : request->identity()));
        return store_->ListAccessKeys(*request);
      },
      response);
}

// Update and Delete are authorized on the identity the key belongs to (on
// the id itself when there is no such key: the store then says so).
#define COFFER_ACCESS_KEY_CHANGE(Method)                                                       \
  grpc::ServerUnaryReactor* AccessKeysService::Method(grpc::CallbackServerContext* context,    \
                                                      const iamv1::Method##Request* request,   \
                                                      iamv1::Method##Response* response) {     \
    return gate_->Unary<iamv1::Method##Response>(                                              \
        context, "iam:" #Method,                                                               \
        [ this,                                                                                \
          request ](const authz::Access& access) -> absl::StatusOr<iamv1::Method##Response> {  \
          const std::string owner = store_->IdentityOf(request->access_key_id());              \
          COFFER_RETURN_IF_ERROR(                                                              \
              access.Check("iam:" #Method, owner.empty() ? request->access_key_id() : owner)); \
          return store_->Method(*request);                                                     \
        },                                                                                     \
        response);                                                                             \
  }
COFFER_ACCESS_KEY_CHANGE(UpdateAccessKey)
COFFER_ACCESS_KEY_CHANGE(DeleteAccessKey)
#undef COFFER_ACCESS_KEY_CHANGE

grpc::ServerUnaryReactor* AccessKeysService::GetSigningKey(
    grpc::CallbackServerContext* context, const iamv1::GetSigningKeyRequest* request,
    iamv1::GetSigningKeyResponse* response) {
  return gate_->Unary<iamv1::GetSigningKeyResponse>(
      context, "iam:GetSigningKey",
      [this, request](const authz::Access& access) -> absl::StatusOr<iamv1::GetSigningKeyResponse> {
        access.set_resource(request->access_key_id());
        if (!access.trusted() &&
            (store_spiffe_id_.empty() || access.principal() != store_spiffe_id_)) {
          return authz::AccessDenied(access.principal(), "iam:GetSigningKey",
                                     request->access_key_id(),
                                     "signing keys are for coffer-store alone");
        }
        return store_->GetSigningKey(*request);
      },
      response, [response] { rpc::WipeString(response->signing_key()); });
}

namespace {

class LocalKeys final : public runtime::SigningKeySource {
 public:
  explicit LocalKeys(AccessKeyStore* store) : store_(store) {}
  absl::StatusOr<SigningKey> Find(absl::string_view access_key_id,
                                  const sigv4::CredentialScope& scope) override {
    COFFER_ASSIGN_OR_RETURN(
        iamv1::GetSigningKeyResponse response,
        store_->GetSigningKey(runtime::SigningKeyRequest(access_key_id, scope)));
    return runtime::TakeSigningKey(response);
  }

 private:
  AccessKeyStore* store_;
};

}  // namespace

std::unique_ptr<runtime::SigningKeySource> LocalSigningKeys(AccessKeyStore* store) {
  return std::make_unique<LocalKeys>(store);
}

}  // namespace coffer::kms
