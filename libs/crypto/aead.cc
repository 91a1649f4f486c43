#include "libs/crypto/aead.h"

#include <sodium.h>

#include "libs/common/status_macros.h"
#include "libs/crypto/random.h"
#include "libs/crypto/sodium_status.h"

namespace coffer::crypto {
namespace {

static_assert(kAeadKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kAeadNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kAeadTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

// One message for every failure, so that callers (and attackers) cannot tell
// a wrong key from wrong associated data, tampering or truncation.
constexpr char kDecryptFailed[] = "ciphertext could not be decrypted";

absl::Status DecryptFailure() { return absl::DataLossError(kDecryptFailed); }

}  // namespace

std::string AeadEncrypt(const SecureBuffer& key, absl::string_view nonce,
                        absl::string_view plaintext, absl::string_view associated_data) {
  COFFER_CHECK(key.size() == kAeadKeyBytes, "AEAD key must be 32 bytes");
  COFFER_CHECK(nonce.size() == kAeadNonceBytes, "AEAD nonce must be 24 bytes");
  EnsureSodiumInitialized();
  std::string out(plaintext.size() + kAeadTagBytes, '\0');
  unsigned long long out_len = 0;
  internal::CheckSodium(
      crypto_aead_xchacha20poly1305_ietf_encrypt(
          reinterpret_cast<unsigned char*>(out.data()), &out_len, internal::BytesOf(plaintext),
          plaintext.size(), internal::BytesOf(associated_data), associated_data.size(),
          /*nsec=*/nullptr, internal::BytesOf(nonce), key.data()),
      "crypto_aead_xchacha20poly1305_ietf_encrypt");
  COFFER_CHECK(out_len == out.size(), "unexpected AEAD ciphertext length");
  return out;
}

absl::StatusOr<SecureBuffer> AeadDecrypt(const SecureBuffer& key, absl::string_view nonce,
                                         absl::string_view ciphertext,
                                         absl::string_view associated_data) {
  COFFER_CHECK(key.size() == kAeadKeyBytes, "AEAD key must be 32 bytes");
  // The nonce and ciphertext usually come from stored or received bytes:
  // malformed input is an error, not a crash.
  if (nonce.size() != kAeadNonceBytes || ciphertext.size() < kAeadTagBytes) {
    return DecryptFailure();
  }
  EnsureSodiumInitialized();
  SecureBuffer plaintext = SecureBuffer::Allocate(ciphertext.size() - kAeadTagBytes);
  unsigned char empty_out = 0;  // libsodium wants a valid pointer even for 0 bytes
  unsigned long long plaintext_len = 0;
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      plaintext.empty() ? &empty_out : plaintext.data(), &plaintext_len, /*nsec=*/nullptr,
      internal::BytesOf(ciphertext), ciphertext.size(), internal::BytesOf(associated_data),
      associated_data.size(), internal::BytesOf(nonce), key.data());
  // On failure libsodium has zeroed the output; `plaintext` is freed anyway.
  COFFER_RETURN_IF_ERROR(internal::SodiumStatus(rc, absl::StatusCode::kDataLoss, kDecryptFailed));
  COFFER_CHECK(plaintext_len == plaintext.size(), "unexpected AEAD plaintext length");
  return plaintext;
}

std::string AeadSeal(const SecureBuffer& key, absl::string_view plaintext,
                     absl::string_view associated_data) {
  std::string sealed = RandomString(kAeadNonceBytes);
  sealed += AeadEncrypt(key, sealed, plaintext, associated_data);
  return sealed;
}

absl::StatusOr<SecureBuffer> AeadOpen(const SecureBuffer& key, absl::string_view sealed,
                                      absl::string_view associated_data) {
  if (sealed.size() < kAeadNonceBytes + kAeadTagBytes) return DecryptFailure();
  return AeadDecrypt(key, sealed.substr(0, kAeadNonceBytes), sealed.substr(kAeadNonceBytes),
                     associated_data);
}

}  // namespace coffer::crypto
