#include "libs/crypto/hash.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace coffer::crypto {
namespace {

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

SecureBuffer KeyOfCountingBytes(size_t n) {
  std::string k;
  for (size_t i = 0; i < n; ++i) k.push_back(static_cast<char>(i));
  return SecureBuffer::Copy(k);
}

// Expected values from Python's hashlib.blake2b(..., digest_size=32[, key=...]).
TEST(Blake2bTest, KnownAnswers) {
  EXPECT_EQ(Hex(Blake2b("")), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(Hex(Blake2b("abc")),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  EXPECT_EQ(Blake2b("abc").size(), kHashBytes);
}

TEST(Blake2bTest, KeyedKnownAnswers) {
  EXPECT_EQ(
      Hex(Blake2bKeyed(KeyOfCountingBytes(32), "The quick brown fox jumps over the lazy dog")),
      "5d9461aff732d77d0cc98725ea29298c914fd5193b4c08ec9e3ad6b28c3e2faf");
  EXPECT_EQ(Hex(Blake2bKeyed(KeyOfCountingBytes(16), "")),
            "037c7d740ea795902b5aebe210fafffff1f627f74010f8dc79c0d5b8a9fb5847");
}

TEST(Blake2bTest, KeyMattersAndKeySizeLimitsAccepted) {
  SecureBuffer k1 = SecureBuffer::Random(32);
  SecureBuffer k2 = SecureBuffer::Random(32);
  EXPECT_NE(Blake2bKeyed(k1, "data"), Blake2bKeyed(k2, "data"));
  EXPECT_NE(Blake2bKeyed(k1, "data"), Blake2b("data"));
  EXPECT_EQ(Blake2bKeyed(SecureBuffer::Random(16), "x").size(), kHashBytes);
  EXPECT_EQ(Blake2bKeyed(SecureBuffer::Random(64), "x").size(), kHashBytes);
}

TEST(Blake2bDeathTest, KeyOutsideSixteenToSixtyFourBytesCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(Blake2bKeyed(SecureBuffer::Random(15), "x"), "16-64 bytes");
  EXPECT_DEATH(Blake2bKeyed(SecureBuffer::Random(65), "x"), "16-64 bytes");
}

}  // namespace
}  // namespace coffer::crypto
