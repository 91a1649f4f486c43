// in_process_kms.h: the real KMS logic (kms::KeyManager) behind the store's
// KeyService interface, called directly without a network, for store unit
// tests. `down = true` simulates an unreachable KMS.
//
//   InProcessKeyService kms(keys.get());
//   Envelope envelope(&kms, &cache);
#pragma once

#include <string>
#include <utility>

#include "services/kms/key_manager.h"
#include "services/store/envelope/key_service.h"

namespace coffer::store {

// The real KMS logic, called directly.
class InProcessKeyService : public KeyService {
 public:
  explicit InProcessKeyService(kms::KeyManager* keys) : keys_(keys) {}

  absl::StatusOr<DataKey> GenerateDataKey(const std::string& key_id,
                                          const EncryptionContext& context) override {
    if (down) return absl::UnavailableError("KMS unavailable: test");
    kms::v1::GenerateDataKeyRequest req;
    req.set_key_id(key_id);
    req.set_key_spec(kms::v1::DATA_KEY_SPEC_AES_256);
    req.mutable_encryption_context()->insert(context.begin(), context.end());
    auto resp = keys_->GenerateDataKey(req);
    if (!resp.ok()) return resp.status();
    ++generated;
    return DataKey{crypto::SecureBuffer::Copy(resp->plaintext()), resp->ciphertext_blob(),
                   resp->key_id()};
  }
  absl::StatusOr<crypto::SecureBuffer> Decrypt(const std::string& wrapped,
                                               const EncryptionContext& context) override {
    if (down) return absl::UnavailableError("KMS unavailable: test");
    kms::v1::DecryptRequest req;
    req.set_ciphertext_blob(wrapped);
    req.mutable_encryption_context()->insert(context.begin(), context.end());
    auto resp = keys_->Decrypt(req);
    if (!resp.ok()) return resp.status();
    ++decrypted;
    return crypto::SecureBuffer::Copy(resp->plaintext());
  }
  absl::StatusOr<std::pair<std::string, std::string>> ReEncrypt(
      const std::string& wrapped, const EncryptionContext& context,
      const std::string& destination_key_id) override {
    if (down) return absl::UnavailableError("KMS unavailable: test");
    kms::v1::ReEncryptRequest req;
    req.set_ciphertext_blob(wrapped);
    req.mutable_source_encryption_context()->insert(context.begin(), context.end());
    req.mutable_destination_encryption_context()->insert(context.begin(), context.end());
    req.set_destination_key_id(destination_key_id);
    auto resp = keys_->ReEncrypt(req);
    if (!resp.ok()) return resp.status();
    return std::make_pair(resp->ciphertext_blob(), resp->key_id());
  }

  bool down = false;
  int generated = 0;
  int decrypted = 0;

 private:
  kms::KeyManager* keys_;
};

}  // namespace coffer::store
