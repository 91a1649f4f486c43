#include "libs/crypto/hash.h"

#include <sodium.h>

#include "libs/common/status_macros.h"
#include "libs/crypto/sodium_status.h"

namespace coffer::crypto {
namespace {

static_assert(kHashBytes >= crypto_generichash_BYTES_MIN &&
              kHashBytes <= crypto_generichash_BYTES_MAX);

std::string GenericHash(absl::string_view data, const unsigned char* key, size_t key_len) {
  EnsureSodiumInitialized();
  std::string out(kHashBytes, '\0');
  internal::CheckSodium(crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                           internal::BytesOf(data), data.size(), key, key_len),
                        "crypto_generichash");
  return out;
}

}  // namespace

std::string Blake2b(absl::string_view data) { return GenericHash(data, nullptr, 0); }

std::string Blake2bKeyed(const SecureBuffer& key, absl::string_view data) {
  COFFER_CHECK(key.size() >= crypto_generichash_KEYBYTES_MIN &&
                   key.size() <= crypto_generichash_KEYBYTES_MAX,
               "BLAKE2b key must be 16-64 bytes");
  return GenericHash(data, key.data(), key.size());
}

}  // namespace coffer::crypto
