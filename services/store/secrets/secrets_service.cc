#include "services/store/secrets/secrets_service.h"

#include "libs/rpc/unary.h"
#include "services/store/changes/watch_stream.h"

namespace coffer::store {
namespace sm = ::coffer::secrets::v1;

namespace {
template <typename Message>
void WipeValue(const Message& m) {
  rpc::WipeString(m.secret_string());
  rpc::WipeString(m.secret_binary());
}
}  // namespace

#define COFFER_SECRETS_HANDLER_OF(logic, Method, wipe)                                            \
  grpc::ServerUnaryReactor* SecretsService::Method(grpc::CallbackServerContext* context,          \
                                                   const sm::Method##Request* request,            \
                                                   sm::Method##Response* response) {              \
    return gate_->Unary<sm::Method##Response>(                                                    \
        context, "secretsmanager:" #Method,                                                       \
        [this, request](const authz::Access& access) { return logic->Method(*request, access); }, \
        response, wipe);                                                                          \
  }
#define COFFER_SECRETS_HANDLER(Method, wipe) COFFER_SECRETS_HANDLER_OF(store_, Method, wipe)

COFFER_SECRETS_HANDLER(CreateSecret, [request] { WipeValue(*request); })
COFFER_SECRETS_HANDLER(GetSecretValue, [response] { WipeValue(*response); })
COFFER_SECRETS_HANDLER(BatchGetSecretValue, [response] {
  for (const auto& v : response->secret_values()) WipeValue(v);
})
COFFER_SECRETS_HANDLER(PutSecretValue, [request] { WipeValue(*request); })
COFFER_SECRETS_HANDLER(UpdateSecret, [request] { WipeValue(*request); })
COFFER_SECRETS_HANDLER(UpdateSecretVersionStage, nullptr)
COFFER_SECRETS_HANDLER(DescribeSecret, nullptr)
COFFER_SECRETS_HANDLER(ListSecrets, nullptr)
COFFER_SECRETS_HANDLER(ListSecretVersionIds, nullptr)
COFFER_SECRETS_HANDLER(DeleteSecret, nullptr)
COFFER_SECRETS_HANDLER(RestoreSecret, nullptr)
COFFER_SECRETS_HANDLER(TagResource, nullptr)
COFFER_SECRETS_HANDLER(UntagResource, nullptr)
COFFER_SECRETS_HANDLER(GetRandomPassword,
                       [response] { rpc::WipeString(response->random_password()); })
COFFER_SECRETS_HANDLER(PutResourcePolicy, nullptr)
COFFER_SECRETS_HANDLER(GetResourcePolicy, nullptr)
COFFER_SECRETS_HANDLER(DeleteResourcePolicy, nullptr)
COFFER_SECRETS_HANDLER(ValidateResourcePolicy, nullptr)
COFFER_SECRETS_HANDLER_OF(rotation_, RotateSecret, nullptr)
COFFER_SECRETS_HANDLER_OF(rotation_, CancelRotateSecret, nullptr)

#undef COFFER_SECRETS_HANDLER
#undef COFFER_SECRETS_HANDLER_OF

grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* SecretsService::WatchSecrets(
    grpc::CallbackServerContext* context, const sm::WatchSecretsRequest* request) {
  return WatchReactor::Start(*gate_, *context, "secretsmanager:WatchSecrets", changes_, watches_,
                             request->start_after(), [request](const authz::Access& access) {
                               return SecretStore::WatchFilter(*request, access);
                             });
}

}  // namespace coffer::store
