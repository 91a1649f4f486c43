#include "services/store/envelope/envelope.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/blocking.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/encryption_context.h"

namespace coffer::store {
namespace {

// Stored wrapped data keys with a KEK:
//   0xC1 | be16 length W | W bytes: the KMS-wrapped KEK | AEAD(KEK, data key)
// The KMS's own ciphertexts (stored before KEKs) start with 0x01.
constexpr uint8_t kKekWrappedV1 = 0xC1;
// Domain separation: a wrapped data key's associated data is never a value's.
constexpr char kDataKeyDomain[] = "coffer-data-key\n";

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

struct KekWrapped {
  absl::string_view wrapped_kek;
  absl::string_view sealed_data_key;
};

// nullopt: not the KEK format (a KMS ciphertext of a value stored before).
std::optional<KekWrapped> ParseKekWrapped(absl::string_view blob) {
  if (blob.size() < 3 || static_cast<uint8_t>(blob[0]) != kKekWrappedV1) return std::nullopt;
  const size_t w = (static_cast<uint8_t>(blob[1]) << 8) | static_cast<uint8_t>(blob[2]);
  if (w == 0 || blob.size() < 3 + w) return KekWrapped{};  // malformed: fails to open
  return KekWrapped{blob.substr(3, w), blob.substr(3 + w)};
}

std::string KekWrappedBlob(absl::string_view wrapped_kek, absl::string_view sealed_data_key) {
  std::string blob;
  blob.reserve(3 + wrapped_kek.size() + sealed_data_key.size());
  blob.push_back(static_cast<char>(kKekWrappedV1));
  blob.push_back(static_cast<char>((wrapped_kek.size() >> 8) & 0xff));
  blob.push_back(static_cast<char>(wrapped_kek.size() & 0xff));
  blob.append(wrapped_kek.data(), wrapped_kek.size());
  blob.append(sealed_data_key.data(), sealed_data_key.size());
  return blob;
}

}  // namespace

absl::StatusOr<Envelope::Kek> Envelope::KekFor(const std::string& kms_key_id,
                                               const EncryptionContext& kek_context) {
  const std::string encoded = crypto::EncodeEncryptionContext(kek_context);
  const bool caching = cache_ != nullptr && cache_->enabled();
  const std::string slot = absl::StrCat(kms_key_id, absl::string_view("\0", 1), encoded);
  if (caching) {
    const absl::Time now = cache_->clock()->Now();
    absl::MutexLock lock(&mu_);
    auto it = keks_.find(slot);
    if (it != keks_.end()) {
      if (it->second.expires > now) return it->second;
      keks_.erase(it);
    }
  }
  if (!MayBlock()) return WouldBlockError("a KMS GenerateDataKey");
  absl::StatusOr<KeyService::DataKey> made = kms_->GenerateDataKey(kms_key_id, kek_context);
  if (!made.ok()) {
    return EncryptionError(made.status(),
                           absl::StrCat("generate a data key under '", kms_key_id, "'"));
  }
  if (made->plaintext.size() != crypto::kAeadKeyBytes || made->wrapped.empty() ||
      made->wrapped.size() > 0xffff) {
    return ErrorWithCode(absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure,
                         "the KMS returned a data key of the wrong size");
  }
  Kek kek;
  kek.key = std::make_shared<const crypto::SecureBuffer>(std::move(made->plaintext));
  kek.wrapped = std::move(made->wrapped);
  kek.key_arn = std::move(made->key_arn);
  if (caching) {
    kek.expires = cache_->clock()->Now() + cache_->options().ttl;
    // Reads soon after the write find the KEK without the KMS.
    cache_->Put(DataKeyCache::Key(kek.wrapped, encoded),
                crypto::SecureBuffer::Copy(kek.key->view()));
    const absl::Time now = cache_->clock()->Now();
    absl::MutexLock lock(&mu_);
    // Oldest first: the expired ones, then as many as needed for room.
    while (!kek_order_.empty()) {
      const auto& [oldest, serial] = kek_order_.front();
      auto it = keks_.find(oldest);
      const bool current = it != keks_.end() && it->second.serial == serial;
      if (current && it->second.expires > now && keks_.size() < cache_->options().max_entries) {
        break;
      }
      if (current) keks_.erase(it);
      kek_order_.pop_front();
    }
    kek.serial = ++next_serial_;
    keks_[slot] = kek;
    kek_order_.emplace_back(slot, kek.serial);
  }
  return kek;
}

absl::StatusOr<std::shared_ptr<const crypto::SecureBuffer>> Envelope::UnwrapKek(
    const EncryptionContext& kek_context, absl::string_view wrapped_kek) {
  const std::string encoded = crypto::EncodeEncryptionContext(kek_context);
  const std::string cache_key = DataKeyCache::Key(wrapped_kek, encoded);
  if (cache_ != nullptr) {
    if (std::shared_ptr<const crypto::SecureBuffer> key = cache_->Get(cache_key)) return key;
  }
  if (!MayBlock()) return WouldBlockError("a KMS Decrypt");
  absl::StatusOr<crypto::SecureBuffer> key = kms_->Decrypt(std::string(wrapped_kek), kek_context);
  if (!key.ok()) return DecryptionError(key.status());
  if (key->size() != crypto::kAeadKeyBytes) return NotAuthentic();
  auto shared = std::make_shared<const crypto::SecureBuffer>(std::move(*key));
  if (cache_ != nullptr) cache_->Put(cache_key, crypto::SecureBuffer::Copy(shared->view()));
  return shared;
}

absl::StatusOr<Envelope::Sealed> Envelope::Seal(const std::string& kms_key_id,
                                                const EncryptionContext& kek_context,
                                                const EncryptionContext& context,
                                                absl::string_view plaintext) {
  COFFER_ASSIGN_OR_RETURN(Kek kek, KekFor(kms_key_id, kek_context));
  const std::string encoded = crypto::EncodeEncryptionContext(context);
  const crypto::SecureBuffer data_key = crypto::SecureBuffer::Random(crypto::kAeadKeyBytes);
  Sealed sealed;
  sealed.ciphertext = crypto::AeadSeal(data_key, plaintext, encoded);
  sealed.wrapped_data_key = KekWrappedBlob(
      kek.wrapped, crypto::AeadSeal(*kek.key, data_key.view(), kDataKeyDomain + encoded));
  sealed.kms_key_arn = std::move(kek.key_arn);
  return sealed;
}

absl::StatusOr<crypto::SecureBuffer> Envelope::Open(const EncryptionContext& kek_context,
                                                    const EncryptionContext& context,
                                                    absl::string_view wrapped_data_key,
                                                    absl::string_view ciphertext) {
  const std::string encoded = crypto::EncodeEncryptionContext(context);
  if (std::optional<KekWrapped> parts = ParseKekWrapped(wrapped_data_key)) {
    if (parts->wrapped_kek.empty()) return NotAuthentic();
    COFFER_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::SecureBuffer> kek,
                            UnwrapKek(kek_context, parts->wrapped_kek));
    absl::StatusOr<crypto::SecureBuffer> data_key =
        crypto::AeadOpen(*kek, parts->sealed_data_key, kDataKeyDomain + encoded);
    if (!data_key.ok() || data_key->size() != crypto::kAeadKeyBytes) return NotAuthentic();
    absl::StatusOr<crypto::SecureBuffer> plain = crypto::AeadOpen(*data_key, ciphertext, encoded);
    if (!plain.ok()) return NotAuthentic();
    return plain;
  }
  // Stored before KEKs: the KMS wrapped the value's data key itself.
  COFFER_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::SecureBuffer> key,
                          UnwrapKek(context, wrapped_data_key));
  absl::StatusOr<crypto::SecureBuffer> plain = crypto::AeadOpen(*key, ciphertext, encoded);
  if (!plain.ok()) return NotAuthentic();
  return plain;
}

absl::StatusOr<std::pair<std::string, std::string>> Envelope::Rewrap(
    const EncryptionContext& kek_context, const EncryptionContext& context,
    absl::string_view wrapped_data_key, const std::string& kms_key_id) {
  std::optional<KekWrapped> parts = ParseKekWrapped(wrapped_data_key);
  if (parts && parts->wrapped_kek.empty()) return NotAuthentic();
  // The KMS re-wraps the KEK (or, stored before KEKs, the data key itself).
  const EncryptionContext& kms_context = parts ? kek_context : context;
  const absl::string_view kms_blob = parts ? parts->wrapped_kek : wrapped_data_key;
  if (!MayBlock()) return WouldBlockError("a KMS ReEncrypt");
  absl::StatusOr<std::pair<std::string, std::string>> rewrapped =
      kms_->ReEncrypt(std::string(kms_blob), kms_context, kms_key_id);
  if (!rewrapped.ok()) {
    return EncryptionError(rewrapped.status(),
                           absl::StrCat("re-wrap the data key under '", kms_key_id, "'"));
  }
  if (parts && rewrapped->first.size() > 0xffff) {
    return ErrorWithCode(absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure,
                         "the KMS returned a wrapped key of the wrong size");
  }
  // The unwrapped key is unchanged: a cached copy serves the new blob too.
  if (cache_ != nullptr) {
    const std::string encoded = crypto::EncodeEncryptionContext(kms_context);
    if (std::shared_ptr<const crypto::SecureBuffer> key =
            cache_->Get(DataKeyCache::Key(kms_blob, encoded))) {
      cache_->Put(DataKeyCache::Key(rewrapped->first, encoded),
                  crypto::SecureBuffer::Copy(key->view()));
    }
  }
  if (parts) rewrapped->first = KekWrappedBlob(rewrapped->first, parts->sealed_data_key);
  return rewrapped;
}

}  // namespace coffer::store
