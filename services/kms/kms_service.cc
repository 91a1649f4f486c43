#include "services/kms/kms_service.h"

#include <functional>
#include <utility>

#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/status.h"

namespace coffer::kms {
namespace {

// Finishes a unary call and, once gRPC is done with the messages, runs an
// optional wipe of the sensitive fields.
class WipingReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit WipingReactor(std::function<void()> wipe) : wipe_(std::move(wipe)) {}
  void OnDone() override {
    if (wipe_) wipe_();
    delete this;
  }

 private:
  std::function<void()> wipe_;
};

void WipeString(const std::string& s) {
  // The message is about to be freed; scrubbing its buffer in place is the
  // last thing that happens to it.
  crypto::Wipe(const_cast<char*>(s.data()), s.size());
}

bool IsCryptoOperation(const char* method) {
  static const char* const kCrypto[] = {"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
                                        "GenerateDataKeyWithoutPlaintext", "GenerateRandom"};
  for (const char* m : kCrypto) {
    if (std::string_view(m) == method) return true;
  }
  return false;
}

template <typename Response>
grpc::ServerUnaryReactor* Finish(const char* method, KmsProbe* probe,
                                 absl::StatusOr<Response> result, Response* response,
                                 std::function<void()> wipe) {
  auto* reactor = new WipingReactor(std::move(wipe));
  if (probe != nullptr && IsCryptoOperation(method)) probe->CryptoOperation(method, result.ok());
  if (result.ok()) {
    *response = std::move(result).value();
    reactor->Finish(grpc::Status::OK);
  } else {
    if (result.status().code() == absl::StatusCode::kInternal ||
        result.status().code() == absl::StatusCode::kUnavailable ||
        result.status().code() == absl::StatusCode::kDataLoss) {
      log::Error("kms", "request failed", {{"method", method}, {"error", result.status().ToString()}});
    }
    reactor->Finish(rpc::ToGrpcStatus(result.status()));
  }
  return reactor;
}

}  // namespace

#define COFFER_KMS_HANDLER(Method, wipe)                                                  \
  grpc::ServerUnaryReactor* KmsService::Method(grpc::CallbackServerContext*,             \
                                               const v1::Method##Request* request,       \
                                               v1::Method##Response* response) {         \
    return Finish(#Method, probe_, store_->Method(*request), response, wipe);            \
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
COFFER_KMS_HANDLER(Encrypt, [request] { WipeString(request->plaintext()); })
COFFER_KMS_HANDLER(Decrypt, [response] { WipeString(response->plaintext()); })
COFFER_KMS_HANDLER(ReEncrypt, nullptr)
COFFER_KMS_HANDLER(GenerateDataKey, [response] { WipeString(response->plaintext()); })
COFFER_KMS_HANDLER(GenerateDataKeyWithoutPlaintext, nullptr)
COFFER_KMS_HANDLER(GenerateRandom, [response] { WipeString(response->plaintext()); })
COFFER_KMS_HANDLER(TagResource, nullptr)
COFFER_KMS_HANDLER(UntagResource, nullptr)
COFFER_KMS_HANDLER(ListResourceTags, nullptr)

#undef COFFER_KMS_HANDLER

}  // namespace coffer::kms
