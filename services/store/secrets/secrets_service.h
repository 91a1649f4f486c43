// secrets_service.h: the gRPC face of the secrets API in coffer-store.
//
// Thin: each handler calls the SecretStore (or, for RotateSecret and
// CancelRotateSecret, the SecretRotation) method of the same name and maps
// the result. Secret values in requests and responses are wiped once gRPC
// is done with the messages.
//
//   SecretsService service(&store, &rotation, &changes, &watches);
//   rpc::Server::Start(std::move(options), {&service}, &health);
#pragma once

#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "libs/runtime/call_gate.h"
#include "services/store/changes/change_log.h"
#include "services/store/changes/watch_stream.h"
#include "services/store/secrets/secret_rotation.h"
#include "services/store/secrets/secret_store.h"

namespace coffer::store {

class SecretsService final : public secrets::v1::SecretsManager::CallbackService {
 public:
  // None is owned. Without a change log WatchSecrets is UNIMPLEMENTED.
  // Every call goes through `gate` (authorization, audit); without one,
  // every caller is trusted (in-process tests).
  SecretsService(SecretStore* store, SecretRotation* rotation, ChangeLog* changes = nullptr,
                 WatchRegistry* watches = nullptr, runtime::CallGate* gate = nullptr)
      : store_(store),
        rotation_(rotation),
        changes_(changes),
        watches_(watches),
        gate_(gate != nullptr ? gate : &runtime::CallGate::Unguarded()) {}

#define COFFER_SECRETS_RPC(Method)                                              \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context,        \
                                   const secrets::v1::Method##Request* request, \
                                   secrets::v1::Method##Response* response) override;
  COFFER_SECRETS_RPC(CreateSecret)
  COFFER_SECRETS_RPC(GetSecretValue)
  COFFER_SECRETS_RPC(BatchGetSecretValue)
  COFFER_SECRETS_RPC(PutSecretValue)
  COFFER_SECRETS_RPC(UpdateSecret)
  COFFER_SECRETS_RPC(UpdateSecretVersionStage)
  COFFER_SECRETS_RPC(DescribeSecret)
  COFFER_SECRETS_RPC(ListSecrets)
  COFFER_SECRETS_RPC(ListSecretVersionIds)
  COFFER_SECRETS_RPC(DeleteSecret)
  COFFER_SECRETS_RPC(RestoreSecret)
  COFFER_SECRETS_RPC(TagResource)
  COFFER_SECRETS_RPC(UntagResource)
  COFFER_SECRETS_RPC(GetRandomPassword)
  COFFER_SECRETS_RPC(PutResourcePolicy)
  COFFER_SECRETS_RPC(GetResourcePolicy)
  COFFER_SECRETS_RPC(DeleteResourcePolicy)
  COFFER_SECRETS_RPC(ValidateResourcePolicy)
  COFFER_SECRETS_RPC(RotateSecret)
  COFFER_SECRETS_RPC(CancelRotateSecret)
#undef COFFER_SECRETS_RPC

  grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* WatchSecrets(
      grpc::CallbackServerContext* context,
      const secrets::v1::WatchSecretsRequest* request) override;

 private:
  SecretStore* store_;
  SecretRotation* rotation_;
  ChangeLog* changes_;
  WatchRegistry* watches_;
  runtime::CallGate* gate_;
};

}  // namespace coffer::store
