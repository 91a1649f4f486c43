#include "services/kms/kms_service.h"

#include <functional>
#include <utility>

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

template <typename Response>
grpc::ServerUnaryReactor* Finish(absl::string_view method, KmsProbe* probe,
                                 absl::StatusOr<Response> result, Response* response,
                                 std::function<void()> wipe) {
  if (probe != nullptr && IsCryptoOperation(method)) {
    probe->CryptoOperation(std::string(method), result.ok());
  }
  return rpc::FinishUnary(method, std::move(result), response, std::move(wipe));
}

}  // namespace

#define COFFER_KMS_HANDLER(Method, wipe)                                           \
  grpc::ServerUnaryReactor* KmsService::Method(grpc::CallbackServerContext*,       \
                                               const v1::Method##Request* request, \
                                               v1::Method##Response* response) {   \
    return Finish(#Method, probe_, store_->Method(*request), response, wipe);      \
  }

COFFER_KMS_HANDLER(CreateKey, nullptr)
COFFER_KMS_HANDLER(DescribeKey, nullptr)
COFFER_KMS_HANDLER(ListKeys, nullptr)
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
COFFER_KMS_HANDLER(CreateAlias, nullptr)
COFFER_KMS_HANDLER(UpdateAlias, nullptr)
COFFER_KMS_HANDLER(DeleteAlias, nullptr)
COFFER_KMS_HANDLER(ListAliases, nullptr)
COFFER_KMS_HANDLER(Encrypt, [request] { rpc::WipeString(request->plaintext()); })
COFFER_KMS_HANDLER(Decrypt, [response] { rpc::WipeString(response->plaintext()); })
COFFER_KMS_HANDLER(ReEncrypt, nullptr)
COFFER_KMS_HANDLER(GenerateDataKey, [response] { rpc::WipeString(response->plaintext()); })
COFFER_KMS_HANDLER(GenerateDataKeyWithoutPlaintext, nullptr)
COFFER_KMS_HANDLER(GenerateRandom, [response] { rpc::WipeString(response->plaintext()); })
COFFER_KMS_HANDLER(TagResource, nullptr)
COFFER_KMS_HANDLER(UntagResource, nullptr)
COFFER_KMS_HANDLER(ListResourceTags, nullptr)

#undef COFFER_KMS_HANDLER

}  // namespace coffer::kms
