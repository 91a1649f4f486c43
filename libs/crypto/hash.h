// hash.h: BLAKE2b (libsodium crypto_generichash), keyed or not. Used for the
// audit hash chain and for HMAC-style identifiers.
//
//   std::string digest = coffer::crypto::Blake2b(data);          // 32 bytes
//   std::string mac = coffer::crypto::Blake2bKeyed(key, data);   // 32 bytes
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::crypto {

inline constexpr size_t kHashBytes = 32;

std::string Blake2b(absl::string_view data);
std::string Blake2bKeyed(const SecureBuffer& key, absl::string_view data);

}  // namespace coffer::crypto
