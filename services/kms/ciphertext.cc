#include "services/kms/ciphertext.h"

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/encryption_context.h"
#include "libs/crypto/random.h"

namespace coffer::kms {
namespace {
constexpr size_t kMaxKeyIdBytes = 64;

absl::Status Invalid() { return InvalidCiphertextError(); }

std::string Header(absl::string_view key_id, uint32_t version, absl::string_view nonce) {
  std::string h;
  h.reserve(2 + key_id.size() + 4 + nonce.size());
  h.push_back(static_cast<char>(kCiphertextFormatV1));
  h.push_back(static_cast<char>(key_id.size()));
  h.append(key_id.data(), key_id.size());
  for (int shift = 24; shift >= 0; shift -= 8) h.push_back(static_cast<char>(version >> shift));
  h.append(nonce.data(), nonce.size());
  return h;
}
}  // namespace

absl::Status InvalidCiphertextError() {
  return Error(reason::kInvalidCiphertext,
               "The ciphertext is invalid or does not match the key or encryption context");
}

std::string SealCiphertext(absl::string_view key_id, uint32_t version,
                           const crypto::SecureBuffer& material, absl::string_view plaintext,
                           const EncryptionContext& context) {
  COFFER_CHECK(!key_id.empty() && key_id.size() <= kMaxKeyIdBytes, "key id length");
  std::string nonce = crypto::RandomString(crypto::kAeadNonceBytes);
  std::string blob = Header(key_id, version, nonce);
  std::string ad = absl::StrCat(blob, crypto::EncodeEncryptionContext(context));
  blob += crypto::AeadEncrypt(material, nonce, plaintext, ad);
  return blob;
}

absl::StatusOr<ParsedCiphertext> ParseCiphertext(absl::string_view blob) {
  if (blob.size() < 2 || static_cast<uint8_t>(blob[0]) != kCiphertextFormatV1) return Invalid();
  size_t id_len = static_cast<uint8_t>(blob[1]);
  if (id_len == 0 || id_len > kMaxKeyIdBytes) return Invalid();
  size_t header_len = 2 + id_len + 4 + crypto::kAeadNonceBytes;
  if (blob.size() < header_len + crypto::kAeadTagBytes) return Invalid();
  ParsedCiphertext parsed;
  parsed.key_id = std::string(blob.substr(2, id_len));
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(blob[2 + id_len + i]);
  if (v == 0) return Invalid();
  parsed.version = v;
  parsed.nonce = blob.substr(2 + id_len + 4, crypto::kAeadNonceBytes);
  parsed.header = blob.substr(0, header_len);
  parsed.body = blob.substr(header_len);
  return parsed;
}

absl::StatusOr<crypto::SecureBuffer> OpenCiphertext(const ParsedCiphertext& parsed,
                                                    const crypto::SecureBuffer& material,
                                                    const EncryptionContext& context) {
  std::string ad = absl::StrCat(parsed.header, crypto::EncodeEncryptionContext(context));
  auto plaintext = crypto::AeadDecrypt(material, parsed.nonce, parsed.body, ad);
  if (!plaintext.ok()) return Invalid();
  return std::move(plaintext).value();
}

}  // namespace coffer::kms
