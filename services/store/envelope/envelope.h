// envelope.h: envelope encryption of secret and parameter values.
//
// Each value gets its own data key from the KMS (GenerateDataKey with the
// value's encryption context, e.g. {SecretARN, SecretVersionId}); the value
// is encrypted here with XChaCha20-Poly1305 whose associated data is the
// canonical encoding of the same context; the wrapped data key is stored
// beside the ciphertext. Opening checks the DataKeyCache before asking the
// KMS to unwrap.
//
//   Envelope envelope(kms.get(), &cache);
//   EncryptionContext ctx{{"SecretARN", arn}, {"SecretVersionId", version}};
//   COFFER_ASSIGN_OR_RETURN(Envelope::Sealed s,
//                           envelope.Seal("alias/coffer/secretsmanager", ctx, value));
//   COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plain,
//                           envelope.Open(ctx, s.wrapped_data_key, s.ciphertext));
//
// Errors (reason, code):
//  - Seal: EncryptionFailure, UNAVAILABLE when the KMS is unreachable, else
//    FAILED_PRECONDITION (key missing, disabled, pending deletion), message
//    naming the cause.
//  - Open: DecryptionFailure, DATA_LOSS when the value or the wrapped key
//    does not authenticate (tampered, or moved to another secret/version),
//    UNAVAILABLE when the KMS is unreachable and the key is not cached,
//    FAILED_PRECONDITION when the KMS key is disabled.
//  - Rewrap (key change): as Seal.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "libs/crypto/secure_buffer.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/key_service.h"

namespace coffer::store {

class Envelope {
 public:
  // Neither is owned.
  Envelope(KeyService* kms, DataKeyCache* cache) : kms_(kms), cache_(cache) {}

  struct Sealed {
    std::string ciphertext;        // nonce || AEAD output
    std::string wrapped_data_key;  // KMS blob
    std::string kms_key_arn;
  };

  absl::StatusOr<Sealed> Seal(const std::string& kms_key_id, const EncryptionContext& context,
                              absl::string_view plaintext);
  absl::StatusOr<crypto::SecureBuffer> Open(const EncryptionContext& context,
                                            absl::string_view wrapped_data_key,
                                            absl::string_view ciphertext);
  // The wrapped key re-wrapped under another KMS key (value untouched).
  absl::StatusOr<std::pair<std::string, std::string>> Rewrap(const EncryptionContext& context,
                                                             absl::string_view wrapped_data_key,
                                                             const std::string& kms_key_id);

 private:
  KeyService* kms_;
  DataKeyCache* cache_;
};

}  // namespace coffer::store
