// key_service.h: what coffer-store needs from the KMS, behind a small
// interface (google-cloud-cpp's stub idea) so the envelope code can be
// tested against an in-process KeyManager and run against coffer-kms over
// mTLS in production.
//
//   auto kms = MakeGrpcKeyService(channel, absl::Seconds(2));
//   COFFER_ASSIGN_OR_RETURN(KeyService::DataKey dk,
//       kms->GenerateDataKey("alias/coffer/secretsmanager", context));
//   COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer key, kms->Decrypt(dk.wrapped, context));
//
// Errors keep the KMS reason (DisabledException, NotFoundException,
// InvalidCiphertextException...). When the KMS cannot be reached (connection
// refused, deadline exceeded) the status is UNAVAILABLE with reason
// ServiceUnavailableException and a message that says the KMS is
// unavailable; calls fail fast rather than waiting for a connection.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/crypto/secure_buffer.h"

namespace grpc {
class Channel;
}

namespace coffer::store {

using EncryptionContext = std::map<std::string, std::string>;

class KeyService {
 public:
  struct DataKey {
    crypto::SecureBuffer plaintext;  // 32 bytes
    std::string wrapped;             // KMS ciphertext blob
    std::string key_arn;             // the KMS key that wrapped it
  };

  virtual ~KeyService() = default;
  // A fresh 256-bit data key under `key_id` bound to `context`.
  virtual absl::StatusOr<DataKey> GenerateDataKey(const std::string& key_id,
                                                  const EncryptionContext& context) = 0;
  // Unwraps a data key.
  virtual absl::StatusOr<crypto::SecureBuffer> Decrypt(const std::string& wrapped,
                                                       const EncryptionContext& context) = 0;
  // Re-wraps a data key under `destination_key_id` (same context) without
  // the plaintext leaving the KMS. Returns the new blob and key ARN.
  virtual absl::StatusOr<std::pair<std::string, std::string>> ReEncrypt(
      const std::string& wrapped, const EncryptionContext& context,
      const std::string& destination_key_id) = 0;
};

// The KeyService of a coffer-kms reached through `channel` (mTLS). Every
// call has `timeout` as its deadline and does not wait for the channel to
// become ready.
std::unique_ptr<KeyService> MakeGrpcKeyService(std::shared_ptr<grpc::Channel> channel,
                                               absl::Duration timeout);

}  // namespace coffer::store
