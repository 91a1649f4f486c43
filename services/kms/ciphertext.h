// ciphertext.h: the self-describing KMS ciphertext format.
//
//   offset  size  field
//   0       1     format version (0x01)
//   1       1     key id length L (1-64)
//   2       L     key id (ASCII UUID)
//   2+L     4     key material version, big-endian
//   6+L     24    XChaCha20-Poly1305 nonce
//   30+L    n+16  AEAD output: encrypted plaintext and tag
//
// The associated data is the whole header (bytes 0 .. 30+L) followed by the
// canonical encoding of the encryption context, so neither the key id, the
// version nor the context can be changed without the tag failing.
//
//   std::string blob = SealCiphertext(key_id, version, material, plaintext, context);
//   COFFER_ASSIGN_OR_RETURN(ParsedCiphertext parsed, ParseCiphertext(blob));
//   ... look up material for parsed.key_id / parsed.version ...
//   COFFER_ASSIGN_OR_RETURN(auto plaintext, OpenCiphertext(parsed, material, context));
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::kms {

inline constexpr uint8_t kCiphertextFormatV1 = 0x01;
// Largest ciphertext accepted by Decrypt/ReEncrypt (AWS's limit).
inline constexpr size_t kMaxCiphertextBytes = 6144;

using EncryptionContext = std::map<std::string, std::string>;

struct ParsedCiphertext {
  std::string key_id;
  uint32_t version = 0;
  absl::string_view header;  // bytes 0 .. 30+L of the blob
  absl::string_view nonce;
  absl::string_view body;  // AEAD output
};

std::string SealCiphertext(absl::string_view key_id, uint32_t version,
                           const crypto::SecureBuffer& material, absl::string_view plaintext,
                           const EncryptionContext& context);

// Structure only; InvalidCiphertextException for anything malformed. The
// returned views point into `blob`.
absl::StatusOr<ParsedCiphertext> ParseCiphertext(absl::string_view blob);

// The InvalidCiphertextException every failure below returns: it never says
// what was wrong.
absl::Status InvalidCiphertextError();

// InvalidCiphertextException when the tag does not verify (wrong context,
// tampered bytes) — never says which.
absl::StatusOr<crypto::SecureBuffer> OpenCiphertext(const ParsedCiphertext& parsed,
                                                    const crypto::SecureBuffer& material,
                                                    const EncryptionContext& context);

}  // namespace coffer::kms
