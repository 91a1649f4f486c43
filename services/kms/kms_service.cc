#include "services/kms/kms_service.h"

#include <functional>
#include <utility>

#include "libs/common/blocking.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/unary.h"

namespace coffer::kms {
namespace {

bool IsCryptoOperation(absl::string_view method) {
  static const char* const kCrypto[] = {
      "Encrypt",       "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
      "GenerateRandom"};
  for (const char* m : kCrypto) {
    if (method == m) return true;
  }
  return false;
}

}  // namespace

template <typename Response>
grpc::ServerUnaryReactor* KmsService::Run(
    grpc::CallbackServerContext* context, absl::string_view action,
    const std::function<absl::Status(const authz::Access&)>& check,
    const std::function<absl::StatusOr<Response>()>& work, Response* response,
    std::function<void()> wipe) {
  const absl::string_view method = action.substr(4);  // "kms:"
  return gate_->Unary<Response>(
      context, action,
      [this, method, check, work](const authz::Access& access) -> absl::StatusOr<Response> {
        COFFER_RETURN_IF_ERROR(check(access));
        absl::StatusOr<Response> result = work();
        // Replicas: another one changed the keystore first (the call runs
        // again on what it wrote), or a key or material version another
        // one just made has not reached this one yet (looked up again once).
        // Authorization is checked again on what the refresh read (an
        // alias may name another key now).
        for (int attempt = 0; store_->shared() && attempt < 5; ++attempt) {
          const std::string reason = ErrorReason(result.status());
          const bool may_be_stale =
              attempt == 0 && (reason == reason::kNotFound || reason == reason::kInvalidCiphertext);
          if (!IsReplicaConflict(result.status()) && !may_be_stale) break;
          if (absl::Status refreshed = store_->Refresh(); !refreshed.ok()) {
            // Could not look again: the answer stands, unless there is none.
            if (may_be_stale && !IsWouldBlock(refreshed)) break;
            return refreshed;
          }
          COFFER_RETURN_IF_ERROR(check(access));
          result = work();
        }
        if (probe_ != nullptr && IsCryptoOperation(method)) {
          probe_->CryptoOperation(std::string(method), result.ok());
        }
        return result;
      },
      response, std::move(wipe));
}

// A handler whose authorization names one key (`ref`, an expression over
// `request`) and, optionally, an encryption context.
#define COFFER_KMS_HANDLER_ON(Method, ref, ctx, wipe)                                \
  grpc::ServerUnaryReactor* KmsService::Method(grpc::CallbackServerContext* context, \
                                               const v1::Method##Request* request,   \
                                               v1::Method##Response* response) {     \
    return Run<v1::Method##Response>(                                                \
        context, "kms:" #Method,                                                     \
        [this, request](const authz::Access& access) {                               \
          return access_->Check(access, "kms:" #Method, ref, ctx);                   \
        },                                                                           \
        [this, request] { return store_->Method(*request); }, response, wipe);       \
  }
#define COFFER_KMS_HANDLER(Method, wipe) \
  COFFER_KMS_HANDLER_ON(Method, request->key_id(), nullptr, wipe)

COFFER_KMS_HANDLER_ON(CreateKey, "", nullptr, nullptr)
COFFER_KMS_HANDLER(DescribeKey, nullptr)
COFFER_KMS_HANDLER_ON(ListKeys, "", nullptr, nullptr)
COFFER_KMS_HANDLER(UpdateKeyDescription, nullptr)
COFFER_KMS_HANDLER(EnableKey, nullptr)
COFFER_KMS_HANDLER(DisableKey, nullptr)
COFFER_KMS_HANDLER(ScheduleKeyDeletion, nullptr)
COFFER_KMS_HANDLER(CancelKeyDeletion, nullptr)
COFFER_KMS_HANDLER(EnableKeyRotation, nullptr)
COFFER_KMS_HANDLER(DisableKeyRotation, nullptr)
COFFER_KMS_HANDLER(GetKeyRotationStatus, nullptr)
COFFER_KMS_HANDLER(RotateKeyOnDemand, nullptr)
COFFER_KMS_HANDLER(ListKeyRotations, nullptr)
COFFER_KMS_HANDLER_ON(DeleteAlias, request->alias_name(), nullptr, nullptr)
COFFER_KMS_HANDLER(ListAliases, nullptr)
COFFER_KMS_HANDLER_ON(Encrypt, request->key_id(), &request->encryption_context(),
                      [request] { rpc::WipeString(request->plaintext()); })
COFFER_KMS_HANDLER_ON(GenerateDataKey, request->key_id(), &request->encryption_context(),
                      [response] { rpc::WipeString(response->plaintext()); })
COFFER_KMS_HANDLER_ON(GenerateDataKeyWithoutPlaintext, request->key_id(),
                      &request->encryption_context(), nullptr)
COFFER_KMS_HANDLER_ON(GenerateRandom, "", nullptr,
                      [response] { rpc::WipeString(response->plaintext()); })
COFFER_KMS_HANDLER(TagResource, nullptr)
COFFER_KMS_HANDLER(UntagResource, nullptr)
COFFER_KMS_HANDLER(ListResourceTags, nullptr)

#undef COFFER_KMS_HANDLER
#undef COFFER_KMS_HANDLER_ON

// Alias changes name two things: the alias and the key it points at.
#define COFFER_KMS_ALIAS_HANDLER(Method)                                                         \
  grpc::ServerUnaryReactor* KmsService::Method(grpc::CallbackServerContext* context,             \
                                               const v1::Method##Request* request,               \
                                               v1::Method##Response* response) {                 \
    return Run<v1::Method##Response>(                                                            \
        context, "kms:" #Method,                                                                 \
        [this, request](const authz::Access& access) {                                           \
          COFFER_RETURN_IF_ERROR(access_->Check(access, "kms:" #Method, request->alias_name())); \
          return access_->Check(access, "kms:" #Method, request->target_key_id());               \
        },                                                                                       \
        [this, request] { return store_->Method(*request); }, response, nullptr);                \
  }
COFFER_KMS_ALIAS_HANDLER(CreateAlias)
COFFER_KMS_ALIAS_HANDLER(UpdateAlias)
#undef COFFER_KMS_ALIAS_HANDLER

// Decrypt names its key in the ciphertext (key_id, when given, must match).
grpc::ServerUnaryReactor* KmsService::Decrypt(grpc::CallbackServerContext* context,
                                              const v1::DecryptRequest* request,
                                              v1::DecryptResponse* response) {
  return Run<v1::DecryptResponse>(
      context, "kms:Decrypt",
      [this, request](const authz::Access& access) {
        return access_->Check(
            access, "kms:Decrypt",
            KmsAccess::KeyOfCiphertext(request->key_id(), request->ciphertext_blob()),
            &request->encryption_context());
      },
      [this, request] { return store_->Decrypt(*request); }, response,
      [response] { rpc::WipeString(response->plaintext()); });
}

// ReEncrypt decrypts under one key (kms:ReEncryptFrom) and encrypts under
// another (kms:ReEncryptTo), as AWS KMS authorizes it.
grpc::ServerUnaryReactor* KmsService::ReEncrypt(grpc::CallbackServerContext* context,
                                                const v1::ReEncryptRequest* request,
                                                v1::ReEncryptResponse* response) {
  return Run<v1::ReEncryptResponse>(
      context, "kms:ReEncrypt",
      [this, request](const authz::Access& access) {
        COFFER_RETURN_IF_ERROR(access_->Check(
            access, "kms:ReEncryptFrom",
            KmsAccess::KeyOfCiphertext(request->source_key_id(), request->ciphertext_blob()),
            &request->source_encryption_context()));
        return access_->Check(access, "kms:ReEncryptTo", request->destination_key_id(),
                              &request->destination_encryption_context());
      },
      [this, request] { return store_->ReEncrypt(*request); }, response, nullptr);
}

}  // namespace coffer::kms
