// kms_service.h: the gRPC face of coffer-kms.
//
// Thin by design: every handler passes the call gate (authorization through
// KmsAccess, the audit record), calls the KeyManager method of the same name
// and maps the result (libs/rpc/status.h). Plaintext and data keys in
// requests and responses are wiped from server memory once the response has
// been sent (in the reactor's OnDone, before gRPC frees the messages).
//
//   KmsService service(store.get(), &probe);
//   rpc::Server::Start(std::move(options), {&service}, &health);
#pragma once

#include "coffer/kms/v1/kms.grpc.pb.h"
#include "libs/runtime/call_gate.h"
#include "services/kms/key_manager.h"
#include "services/kms/kms_access.h"
#include "services/kms/kms_probe.h"

namespace coffer::kms {

class KmsService final : public v1::KeyManagement::CallbackService {
 public:
  // None is owned; all must outlive the service. `probe` may be null;
  // without `gate` and `access` every caller is trusted (in-process tests).
  KmsService(KeyManager* store, KmsProbe* probe, runtime::CallGate* gate = nullptr,
             const KmsAccess* access = nullptr)
      : store_(store),
        probe_(probe),
        gate_(gate != nullptr ? gate : &runtime::CallGate::Unguarded()),
        access_(access != nullptr ? access : &unguarded_),
        unguarded_(store, KmsAccessOptions{}) {}

#define COFFER_KMS_RPC(Method)                                           \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context, \
                                   const v1::Method##Request* request,   \
                                   v1::Method##Response* response) override;
  COFFER_KMS_RPC(CreateKey)
  COFFER_KMS_RPC(DescribeKey)
  COFFER_KMS_RPC(ListKeys)
  COFFER_KMS_RPC(UpdateKeyDescription)
  COFFER_KMS_RPC(EnableKey)
  COFFER_KMS_RPC(DisableKey)
  COFFER_KMS_RPC(ScheduleKeyDeletion)
  COFFER_KMS_RPC(CancelKeyDeletion)
  COFFER_KMS_RPC(EnableKeyRotation)
  COFFER_KMS_RPC(DisableKeyRotation)
  COFFER_KMS_RPC(GetKeyRotationStatus)
  COFFER_KMS_RPC(RotateKeyOnDemand)
  COFFER_KMS_RPC(ListKeyRotations)
  COFFER_KMS_RPC(CreateAlias)
  COFFER_KMS_RPC(UpdateAlias)
  COFFER_KMS_RPC(DeleteAlias)
  COFFER_KMS_RPC(ListAliases)
  COFFER_KMS_RPC(Encrypt)
  COFFER_KMS_RPC(Decrypt)
  COFFER_KMS_RPC(ReEncrypt)
  COFFER_KMS_RPC(GenerateDataKey)
  COFFER_KMS_RPC(GenerateDataKeyWithoutPlaintext)
  COFFER_KMS_RPC(GenerateRandom)
  COFFER_KMS_RPC(TagResource)
  COFFER_KMS_RPC(UntagResource)
  COFFER_KMS_RPC(ListResourceTags)
#undef COFFER_KMS_RPC

 private:
  // Authorizes `action` on `key_ref` (and `context`), then runs `work`.
  template <typename Response>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context, absl::string_view action,
                                const std::function<absl::Status(const authz::Access&)>& check,
                                const std::function<absl::StatusOr<Response>()>& work,
                                Response* response, std::function<void()> wipe);

  KeyManager* store_;
  KmsProbe* probe_;
  runtime::CallGate* gate_;
  const KmsAccess* access_;
  KmsAccess unguarded_;
};

}  // namespace coffer::kms
