// aead.h: authenticated encryption with associated data
// (libsodium crypto_aead_xchacha20poly1305_ietf: 256-bit key, 192-bit
// nonce, 128-bit tag). Random nonces are safe at any volume with XChaCha.
//
// Explicit nonce (when the caller's own format carries it):
//   std::string nonce = coffer::crypto::RandomString(kAeadNonceBytes);
//   std::string ct = AeadEncrypt(key, nonce, plaintext, header);
//   absl::StatusOr<SecureBuffer> pt = AeadDecrypt(key, nonce, ct, header);
//
// Sealed box (nonce || ciphertext || tag):
//   std::string sealed = AeadSeal(key, plaintext, ad);
//   absl::StatusOr<SecureBuffer> pt = AeadOpen(key, sealed, ad);
//
// Decryption failures are DATA_LOSS with a message that reveals nothing
// about why (wrong key, wrong associated data, tampered bytes all look the
// same). Callers map that to their own error reason.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::crypto {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 24;
inline constexpr size_t kAeadTagBytes = 16;

// `key` must be kAeadKeyBytes and `nonce` kAeadNonceBytes (checked; a wrong
// size is a programming error and crashes). Returns ciphertext || tag.
std::string AeadEncrypt(const SecureBuffer& key, absl::string_view nonce,
                        absl::string_view plaintext, absl::string_view associated_data);

// Verifies and decrypts ciphertext || tag. The plaintext goes to guarded
// memory because it is often a key.
absl::StatusOr<SecureBuffer> AeadDecrypt(const SecureBuffer& key, absl::string_view nonce,
                                         absl::string_view ciphertext,
                                         absl::string_view associated_data);

// Random nonce, returns nonce || ciphertext || tag.
std::string AeadSeal(const SecureBuffer& key, absl::string_view plaintext,
                     absl::string_view associated_data);

// Opens the output of AeadSeal.
absl::StatusOr<SecureBuffer> AeadOpen(const SecureBuffer& key, absl::string_view sealed,
                                      absl::string_view associated_data);

}  // namespace coffer::crypto
