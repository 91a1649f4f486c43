#include "libs/crypto/aead.h"

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "libs/crypto/random.h"

namespace coffer::crypto {
namespace {

class AeadTest : public ::testing::Test {
 protected:
  SecureBuffer key_ = SecureBuffer::Random(kAeadKeyBytes);
};

// Every failure looks the same: DATA_LOSS with one fixed message.
void ExpectOpaqueFailure(const absl::StatusOr<SecureBuffer>& result) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(result.status().message(), "ciphertext could not be decrypted");
}

TEST_F(AeadTest, SealOpenRoundTrip) {
  const std::string sealed = AeadSeal(key_, "the plaintext", "ad");
  EXPECT_EQ(sealed.size(), kAeadNonceBytes + 13 + kAeadTagBytes);
  absl::StatusOr<SecureBuffer> opened = AeadOpen(key_, sealed, "ad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), "the plaintext");
}

TEST_F(AeadTest, EncryptDecryptRoundTripWithExplicitNonce) {
  const std::string nonce = RandomString(kAeadNonceBytes);
  const std::string plaintext("bin\0ary\xff", 8);
  const std::string ct = AeadEncrypt(key_, nonce, plaintext, "header");
  EXPECT_EQ(ct.size(), plaintext.size() + kAeadTagBytes);
  absl::StatusOr<SecureBuffer> pt = AeadDecrypt(key_, nonce, ct, "header");
  ASSERT_TRUE(pt.ok()) << pt.status();
  EXPECT_EQ(pt->view(), plaintext);
}

TEST_F(AeadTest, SealUsesFreshNonces) {
  EXPECT_NE(AeadSeal(key_, "same", "ad"), AeadSeal(key_, "same", "ad"));
}

TEST_F(AeadTest, EmptyPlaintextAndEmptyAssociatedData) {
  const std::string sealed = AeadSeal(key_, "", "");
  EXPECT_EQ(sealed.size(), kAeadNonceBytes + kAeadTagBytes);
  absl::StatusOr<SecureBuffer> opened = AeadOpen(key_, sealed, "");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->empty());
  ExpectOpaqueFailure(AeadOpen(key_, sealed, "x"));
}

TEST_F(AeadTest, LargePlaintext) {
  const std::string big = RandomString(1 << 20);
  absl::StatusOr<SecureBuffer> opened = AeadOpen(key_, AeadSeal(key_, big, "ad"), "ad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), big);
}

TEST_F(AeadTest, WrongAssociatedDataFails) {
  const std::string sealed = AeadSeal(key_, "secret", "arn:a|v1");
  ExpectOpaqueFailure(AeadOpen(key_, sealed, "arn:a|v2"));
  ExpectOpaqueFailure(AeadOpen(key_, sealed, ""));
}

TEST_F(AeadTest, WrongKeyFails) {
  const std::string sealed = AeadSeal(key_, "secret", "ad");
  SecureBuffer other = SecureBuffer::Random(kAeadKeyBytes);
  ExpectOpaqueFailure(AeadOpen(other, sealed, "ad"));
}

TEST_F(AeadTest, EveryTamperedByteFails) {
  const std::string sealed = AeadSeal(key_, "a secret worth protecting", "ad");
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string tampered = sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ flip);
      absl::StatusOr<SecureBuffer> result = AeadOpen(key_, tampered, "ad");
      ASSERT_FALSE(result.ok()) << "byte " << i << " flip " << int{flip};
      EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
    }
  }
}

TEST_F(AeadTest, TruncatedInputFailsCleanly) {
  const std::string sealed = AeadSeal(key_, "secret", "ad");
  for (size_t n = 0; n < sealed.size(); ++n) {
    ExpectOpaqueFailure(AeadOpen(key_, sealed.substr(0, n), "ad"));
  }
  // Extra trailing bytes fail too.
  ExpectOpaqueFailure(AeadOpen(key_, sealed + "x", "ad"));
}

TEST_F(AeadTest, DecryptRejectsMalformedNonceAndShortCiphertext) {
  const std::string nonce = RandomString(kAeadNonceBytes);
  const std::string ct = AeadEncrypt(key_, nonce, "pt", "ad");
  ExpectOpaqueFailure(AeadDecrypt(key_, nonce.substr(1), ct, "ad"));
  ExpectOpaqueFailure(AeadDecrypt(key_, "", ct, "ad"));
  ExpectOpaqueFailure(AeadDecrypt(key_, nonce, ct.substr(0, kAeadTagBytes - 1), "ad"));
  ExpectOpaqueFailure(AeadDecrypt(key_, nonce, "", "ad"));
}

TEST_F(AeadTest, CiphertextDoesNotContainPlaintext) {
  const std::string plaintext = "hunter2hunter2hunter2";
  const std::string sealed = AeadSeal(key_, plaintext, "ad");
  EXPECT_EQ(sealed.find(plaintext), std::string::npos);
}

TEST_F(AeadTest, WorksWithReadOnlyKey) {
  // Both kinds of read-only key: the KMS's material and its root key.
  SecureBuffer material = SecureBuffer::ReadOnlyCopy(key_.view());
  absl::StatusOr<SecureBuffer> opened = AeadOpen(material, AeadSeal(material, "x", "ad"), "ad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), "x");

  absl::StatusOr<SecureBuffer> root = SecureBuffer::AllocateDedicated(kAeadKeyBytes);
  ASSERT_TRUE(root.ok()) << root.status();
  std::memcpy(root->data(), key_.data(), kAeadKeyBytes);
  root->MakeReadOnly();
  opened = AeadOpen(*root, AeadSeal(*root, "y", "ad"), "ad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), "y");
}

TEST(AeadDeathTest, WrongKeyOrNonceSizeCrashesOnEncrypt) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  SecureBuffer short_key = SecureBuffer::Random(16);
  SecureBuffer key = SecureBuffer::Random(kAeadKeyBytes);
  EXPECT_DEATH(AeadSeal(short_key, "x", "ad"), "key must be 32 bytes");
  EXPECT_DEATH(AeadEncrypt(key, "short", "x", "ad"), "nonce must be 24 bytes");
}

}  // namespace
}  // namespace coffer::crypto
