#include "services/store/envelope/key_service.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "libs/common/errors.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/client_call.h"

namespace coffer::store {
namespace {

namespace kmsv1 = ::coffer::kms::v1;

// Transport failures become "KMS unavailable: ..." (libs/rpc/client_call.h).
constexpr char kPeer[] = "KMS";

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
      : stub_(kmsv1::KeyManagement::NewStub(std::move(channel))),
        call_options_(CallOptionsFor(timeout)) {}

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
    if (!status.ok()) return rpc::ClientStatus(status, kPeer);
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
    if (!status.ok()) return rpc::ClientStatus(status, kPeer);
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
    if (!status.ok()) return rpc::ClientStatus(status, kPeer);
    return std::make_pair(std::move(*response.mutable_ciphertext_blob()),
                          std::move(*response.mutable_key_id()));
  }

 private:
  void Prepare(grpc::ClientContext& ctx) const { rpc::ApplyCallOptions(call_options_, ctx); }

  static rpc::CallOptions CallOptionsFor(absl::Duration timeout) {
    rpc::CallOptions options;
    options.timeout = timeout;
    options.peer = kPeer;
    // Fail fast when the KMS is down instead of queueing until the deadline.
    options.prepare = [](grpc::ClientContext& c) { c.set_wait_for_ready(false); };
    return options;
  }

  std::unique_ptr<kmsv1::KeyManagement::Stub> stub_;
  const rpc::CallOptions call_options_;
};

}  // namespace

std::unique_ptr<KeyService> MakeGrpcKeyService(std::shared_ptr<grpc::Channel> channel,
                                               absl::Duration timeout) {
  return std::make_unique<GrpcKeyService>(std::move(channel), timeout);
}

}  // namespace coffer::store
