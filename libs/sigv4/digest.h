// digest.h: SigV4's SHA-256 and HMAC-SHA256 (libsodium crypto_hash_sha256
// and crypto_auth_hmacsha256), the signing key and the signature.
//
//   crypto::SecureBuffer key = DeriveSigningKey(secret_access_key, scope);
//   std::string signature = SignatureHex(key, StringToSign(amz_date, scope, creq));
//
// The signing key and every intermediate key live in libs/crypto's guarded
// memory and are wiped when dropped; HMAC states are wiped after use.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/sigv4/authorization.h"

namespace coffer::sigv4 {

// Lower-case hex of the SHA-256 of `data` (64 characters).
std::string HexSha256(absl::string_view data);

// HMAC-SHA256 chain: kDate = HMAC("AWS4" + secret, date), kRegion =
// HMAC(kDate, region), kService = HMAC(kRegion, service), kSigning =
// HMAC(kService, "aws4_request"). 32 bytes.
crypto::SecureBuffer DeriveSigningKey(absl::string_view secret_access_key,
                                      const CredentialScope& scope);

// Lower-case hex of HMAC-SHA256(signing_key, string_to_sign): the signature.
std::string SignatureHex(const crypto::SecureBuffer& signing_key, absl::string_view string_to_sign);

}  // namespace coffer::sigv4
