#include "libs/sigv4/digest.h"

#include <sodium.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "libs/common/status_macros.h"

namespace coffer::sigv4 {
namespace {

const unsigned char* Bytes(absl::string_view s) {
  // libsodium wants a valid pointer even for zero bytes.
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// HMAC-SHA256(key, message) written to `out` (32 bytes); the state, which
// holds the key's pads, is wiped.
void Hmac(absl::string_view key, absl::string_view message, unsigned char* out) {
  crypto::EnsureSodiumInitialized();
  crypto_auth_hmacsha256_state state;
  // These return 0 for any input (libsodium hashes keys longer than a block).
  int rc = crypto_auth_hmacsha256_init(&state, Bytes(key), key.size());
  rc |= crypto_auth_hmacsha256_update(&state, Bytes(message), message.size());
  rc |= crypto_auth_hmacsha256_final(&state, out);
  sodium_memzero(&state, sizeof state);
  COFFER_CHECK(rc == 0, "crypto_auth_hmacsha256 failed");
}

crypto::SecureBuffer HmacToBuffer(absl::string_view key, absl::string_view message) {
  crypto::SecureBuffer out = crypto::SecureBuffer::Allocate(crypto_auth_hmacsha256_BYTES);
  Hmac(key, message, out.data());
  return out;
}

}  // namespace

std::string HexSha256(absl::string_view data) {
  crypto::EnsureSodiumInitialized();
  unsigned char digest[crypto_hash_sha256_BYTES];
  COFFER_CHECK(crypto_hash_sha256(digest, Bytes(data), data.size()) == 0, "crypto_hash_sha256");
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

crypto::SecureBuffer DeriveSigningKey(absl::string_view secret_access_key,
                                      const CredentialScope& scope) {
  crypto::SecureBuffer first = crypto::SecureBuffer::Allocate(4 + secret_access_key.size());
  std::memcpy(first.data(), "AWS4", 4);
  if (!secret_access_key.empty()) {
    std::memcpy(first.data() + 4, secret_access_key.data(), secret_access_key.size());
  }
  crypto::SecureBuffer k_date = HmacToBuffer(first.view(), scope.date);
  crypto::SecureBuffer k_region = HmacToBuffer(k_date.view(), scope.region);
  crypto::SecureBuffer k_service = HmacToBuffer(k_region.view(), scope.service);
  // first, k_date, k_region and k_service are wiped by their destructors.
  return HmacToBuffer(k_service.view(), kScopeTerminator);
}

std::string SignatureHex(const crypto::SecureBuffer& signing_key,
                         absl::string_view string_to_sign) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  Hmac(signing_key.view(), string_to_sign, mac);
  std::string hex =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
  sodium_memzero(mac, sizeof mac);
  return hex;
}

}  // namespace coffer::sigv4
