// ciphertext_fuzz: kms::ParseCiphertext on arbitrary bytes, then
// OpenCiphertext under a fixed key (a seed sealed with it opens). Properties:
// a parsed blob's views lie inside it and add up to it; anything else is
// InvalidCiphertextException; sealing the input as plaintext under the
// parsed (or a fixed) key id and version parses back to them and opens to
// the input, and fails under another context.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/secure_buffer.h"
#include "services/kms/ciphertext.h"

namespace {

using coffer::kms::EncryptionContext;
using coffer::kms::ParsedCiphertext;

// The key make_seeds.cc seals its seed with: 32 bytes 0x00..0x1f.
const coffer::crypto::SecureBuffer& Material() {
  static const auto* const kMaterial = [] {
    std::string bytes;
    for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
    return new coffer::crypto::SecureBuffer(coffer::crypto::SecureBuffer::Copy(bytes));
  }();
  return *kMaterial;
}

const EncryptionContext& Context() {
  static const auto* const kContext = new EncryptionContext{
      {"SecretARN", "arn:coffer:secretsmanager:local:000000000000:secret:demo/db-Ab3xQ9"},
      {"SecretVersionId", "11111111-2222-3333-4444-555555555555"}};
  return *kContext;
}

bool Inside(absl::string_view part, absl::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view blob = coffer::fuzz::AsText(data, size);
  std::string key_id = "e5674858-0000-4000-8000-000000000000";
  uint32_t version = 1;

  absl::StatusOr<ParsedCiphertext> parsed = coffer::kms::ParseCiphertext(blob);
  if (!parsed.ok()) {
    FUZZ_CHECK(coffer::ErrorReason(parsed.status()) ==
                   coffer::ErrorReason(coffer::kms::InvalidCiphertextError()),
               "malformed blobs are InvalidCiphertextException");
  } else {
    const ParsedCiphertext& p = *parsed;
    FUZZ_CHECK(!p.key_id.empty() && p.key_id.size() <= 64, "key id length");
    FUZZ_CHECK(p.version != 0, "version");
    FUZZ_CHECK(p.nonce.size() == coffer::crypto::kAeadNonceBytes, "nonce length");
    FUZZ_CHECK(p.header.size() == 2 + p.key_id.size() + 4 + p.nonce.size(), "header length");
    FUZZ_CHECK(p.body.size() >= coffer::crypto::kAeadTagBytes, "body holds a tag");
    FUZZ_CHECK(Inside(p.header, blob) && Inside(p.nonce, blob) && Inside(p.body, blob),
               "views point into the blob");
    FUZZ_CHECK(p.header.size() + p.body.size() == blob.size(), "header + body = blob");
    absl::StatusOr<coffer::crypto::SecureBuffer> opened =
        coffer::kms::OpenCiphertext(p, Material(), Context());
    if (!opened.ok()) {
      FUZZ_CHECK(coffer::ErrorReason(opened.status()) ==
                     coffer::ErrorReason(coffer::kms::InvalidCiphertextError()),
                 "a failed open is InvalidCiphertextException");
    }
    key_id = p.key_id;
    version = p.version;
  }

  // Seal the input and read it back.
  std::string sealed =
      coffer::kms::SealCiphertext(key_id, version, Material(), blob.substr(0, 4096), Context());
  absl::StatusOr<ParsedCiphertext> back = coffer::kms::ParseCiphertext(sealed);
  FUZZ_CHECK(back.ok(), "a sealed blob parses");
  FUZZ_CHECK(back->key_id == key_id && back->version == version, "key id and version kept");
  absl::StatusOr<coffer::crypto::SecureBuffer> plain =
      coffer::kms::OpenCiphertext(*back, Material(), Context());
  FUZZ_CHECK(plain.ok(), "a sealed blob opens");
  FUZZ_CHECK(plain->view() == blob.substr(0, 4096), "and gives the plaintext back");
  EncryptionContext other = Context();
  other["SecretVersionId"] += "x";
  FUZZ_CHECK(!coffer::kms::OpenCiphertext(*back, Material(), other).ok(),
             "another context does not open it");
  return 0;
}
