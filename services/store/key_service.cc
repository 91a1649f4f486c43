#include "services/store/key_service.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "libs/common/errors.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/status.h"

namespace coffer::store {
namespace {

namespace kmsv1 = ::coffer::kms::v1;

// The one place a KMS call's grpc::Status becomes an absl::Status. Errors
// the KMS itself returned keep their reason (FromGrpcStatus restores it);
// transport failures (no connection, deadline) become "KMS unavailable".
absl::Status KmsStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status converted = rpc::FromGrpcStatus(status);
  const bool from_kms = !ErrorReason(converted).empty();
  if (!from_kms && (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                    status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
    return ErrorWithCode(absl::StatusCode::kUnavailable, reason::kUnavailable,
                         absl::StrCat("KMS unavailable: ", status.error_message()));
  }
  return converted;
}

// Copies a key out of a response string into guarded memory and wipes the
// string (the response message is freed by the caller later).
crypto::SecureBuffer TakeKey(std::string* plaintext) {
  crypto::SecureBuffer key = crypto::SecureBuffer::Copy(*plaintext);
  crypto::Wipe(plaintext->data(), plaintext->size());
  plaintext->clear();
  return key;
}

void SetContext(const EncryptionContext& context,
                google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : context) (*out)[k] = v;
}

class GrpcKeyService final : public KeyService {
 public:
  GrpcKeyService(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : stub_(kmsv1::KeyManagement::NewStub(std::move(channel))), timeout_(timeout) {}

  absl::StatusOr<DataKey> GenerateDataKey(const std::string& key_id,
                                          const EncryptionContext& context) override {
    kmsv1::GenerateDataKeyRequest request;
    request.set_key_id(key_id);
    SetContext(context, request.mutable_encryption_context());
    request.set_key_spec(kmsv1::DATA_KEY_SPEC_AES_256);
    kmsv1::GenerateDataKeyResponse response;
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status = stub_->GenerateDataKey(&ctx, request, &response);
    if (!status.ok()) return KmsStatus(status);
    DataKey out;
    out.plaintext = TakeKey(response.mutable_plaintext());
    out.wrapped = std::move(*response.mutable_ciphertext_blob());
    out.key_arn = std::move(*response.mutable_key_id());
    return out;
  }

  absl::StatusOr<crypto::SecureBuffer> Decrypt(const std::string& wrapped,
                                               const EncryptionContext& context) override {
    kmsv1::DecryptRequest request;
    request.set_ciphertext_blob(wrapped);
    SetContext(context, request.mutable_encryption_context());
    kmsv1::DecryptResponse response;
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status = stub_->Decrypt(&ctx, request, &response);
    if (!status.ok()) return KmsStatus(status);
    return TakeKey(response.mutable_plaintext());
  }

  absl::StatusOr<std::pair<std::string, std::string>> ReEncrypt(
      const std::string& wrapped, const EncryptionContext& context,
      const std::string& destination_key_id) override {
    kmsv1::ReEncryptRequest request;
    request.set_ciphertext_blob(wrapped);
    SetContext(context, request.mutable_source_encryption_context());
    SetContext(context, request.mutable_destination_encryption_context());
    request.set_destination_key_id(destination_key_id);
    kmsv1::ReEncryptResponse response;
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status = stub_->ReEncrypt(&ctx, request, &response);
    if (!status.ok()) return KmsStatus(status);
    return std::make_pair(std::move(*response.mutable_ciphertext_blob()),
                          std::move(*response.mutable_key_id()));
  }

 private:
  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    // Fail fast when the KMS is down instead of queueing until the deadline.
    ctx.set_wait_for_ready(false);
  }

  std::unique_ptr<kmsv1::KeyManagement::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace

std::unique_ptr<KeyService> MakeGrpcKeyService(std::shared_ptr<grpc::Channel> channel,
                                               absl::Duration timeout) {
  return std::make_unique<GrpcKeyService>(std::move(channel), timeout);
}

}  // namespace coffer::store
