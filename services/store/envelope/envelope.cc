#include "services/store/envelope/envelope.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/encryption_context.h"

namespace coffer::store {
namespace {

bool KmsUnreachable(const absl::Status& status) {
  return ErrorReason(status) == reason::kUnavailable ||
         status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

// KMS errors of GenerateDataKey / ReEncrypt. KMS messages name keys and
// states, never key material, so they are passed on as the cause.
absl::Status EncryptionError(const absl::Status& kms, absl::string_view what) {
  if (KmsUnreachable(kms)) {
    return ErrorWithCode(absl::StatusCode::kUnavailable, reason::kEncryptionFailure,
                         absl::StrCat("cannot ", what, ": KMS unavailable (", kms.message(), ")"));
  }
  return ErrorWithCode(absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure,
                       absl::StrCat("cannot ", what, ": ", kms.message()));
}

absl::Status NotAuthentic() {
  return ErrorWithCode(absl::StatusCode::kDataLoss, reason::kDecryptionFailure,
                       "the value cannot be decrypted: it or its data key does not authenticate "
                       "(tampered, or not stored for this secret version)");
}

// KMS errors of Decrypt.
absl::Status DecryptionError(const absl::Status& kms) {
  if (KmsUnreachable(kms)) {
    return ErrorWithCode(
        absl::StatusCode::kUnavailable, reason::kDecryptionFailure,
        absl::StrCat("cannot unwrap the data key: KMS unavailable (", kms.message(), ")"));
  }
  const std::string why = ErrorReason(kms);
  if (why == reason::kInvalidCiphertext || why == reason::kIncorrectKey ||
      kms.code() == absl::StatusCode::kInvalidArgument ||
      kms.code() == absl::StatusCode::kDataLoss) {
    return NotAuthentic();
  }
  return ErrorWithCode(absl::StatusCode::kFailedPrecondition, reason::kDecryptionFailure,
                       absl::StrCat("cannot unwrap the data key: ", kms.message()));
}

}  // namespace

absl::StatusOr<Envelope::Sealed> Envelope::Seal(const std::string& kms_key_id,
                                                const EncryptionContext& context,
                                                absl::string_view plaintext) {
  absl::StatusOr<KeyService::DataKey> data_key = kms_->GenerateDataKey(kms_key_id, context);
  if (!data_key.ok()) {
    return EncryptionError(data_key.status(),
                           absl::StrCat("generate a data key under '", kms_key_id, "'"));
  }
  if (data_key->plaintext.size() != crypto::kAeadKeyBytes) {
    return ErrorWithCode(absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure,
                         "the KMS returned a data key of the wrong size");
  }
  const std::string encoded = crypto::EncodeEncryptionContext(context);
  Sealed sealed;
  sealed.ciphertext = crypto::AeadSeal(data_key->plaintext, plaintext, encoded);
  sealed.wrapped_data_key = std::move(data_key->wrapped);
  sealed.kms_key_arn = std::move(data_key->key_arn);
  // A value is usually read soon after it is written: keep its key.
  if (cache_ != nullptr) {
    cache_->Put(DataKeyCache::Key(sealed.wrapped_data_key, encoded),
                std::move(data_key->plaintext));
  }
  return sealed;
}

absl::StatusOr<crypto::SecureBuffer> Envelope::Open(const EncryptionContext& context,
                                                    absl::string_view wrapped_data_key,
                                                    absl::string_view ciphertext) {
  const std::string encoded = crypto::EncodeEncryptionContext(context);
  const std::string cache_key = DataKeyCache::Key(wrapped_data_key, encoded);
  if (cache_ != nullptr) {
    if (std::shared_ptr<const crypto::SecureBuffer> key = cache_->Get(cache_key)) {
      absl::StatusOr<crypto::SecureBuffer> plain = crypto::AeadOpen(*key, ciphertext, encoded);
      if (!plain.ok()) return NotAuthentic();
      return plain;
    }
  }
  absl::StatusOr<crypto::SecureBuffer> key = kms_->Decrypt(std::string(wrapped_data_key), context);
  if (!key.ok()) return DecryptionError(key.status());
  if (key->size() != crypto::kAeadKeyBytes) return NotAuthentic();
  absl::StatusOr<crypto::SecureBuffer> plain = crypto::AeadOpen(*key, ciphertext, encoded);
  if (!plain.ok()) return NotAuthentic();
  if (cache_ != nullptr) cache_->Put(cache_key, std::move(*key));
  return plain;
}

absl::StatusOr<std::pair<std::string, std::string>> Envelope::Rewrap(
    const EncryptionContext& context, absl::string_view wrapped_data_key,
    const std::string& kms_key_id) {
  absl::StatusOr<std::pair<std::string, std::string>> rewrapped =
      kms_->ReEncrypt(std::string(wrapped_data_key), context, kms_key_id);
  if (!rewrapped.ok()) {
    return EncryptionError(rewrapped.status(),
                           absl::StrCat("re-wrap the data key under '", kms_key_id, "'"));
  }
  // The data key itself is unchanged: a cached copy serves the new blob too.
  if (cache_ != nullptr) {
    const std::string encoded = crypto::EncodeEncryptionContext(context);
    if (std::shared_ptr<const crypto::SecureBuffer> key =
            cache_->Get(DataKeyCache::Key(wrapped_data_key, encoded))) {
      cache_->Put(DataKeyCache::Key(rewrapped->first, encoded),
                  crypto::SecureBuffer::Copy(key->view()));
    }
  }
  return rewrapped;
}

}  // namespace coffer::store
