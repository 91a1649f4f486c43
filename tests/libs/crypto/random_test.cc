#include "libs/crypto/random.h"

#include <array>
#include <cstdint>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace coffer::crypto {
namespace {

TEST(RandomTest, RandomStringHasLengthAndDiffers) {
  EXPECT_EQ(RandomString(0), "");
  const std::string a = RandomString(32);
  const std::string b = RandomString(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
}

TEST(RandomTest, RandomBytesFillsBuffer) {
  std::array<uint8_t, 64> buf{};
  RandomBytes(buf.data(), buf.size());
  EXPECT_NE(buf, (std::array<uint8_t, 64>{}));
  RandomBytes(nullptr, 0);  // harmless
}

TEST(RandomTest, UniformBoundOneIsAlwaysZero) {
  for (int i = 0; i < 100; ++i) EXPECT_EQ(RandomUniform(1), 0u);
}

TEST(RandomTest, UniformStaysInBoundsAndCoversRange) {
  for (uint32_t bound : {2u, 3u, 7u, 62u, 100u}) {
    std::set<uint32_t> seen;
    for (int i = 0; i < 5000; ++i) {
      const uint32_t v = RandomUniform(bound);
      ASSERT_LT(v, bound);
      seen.insert(v);
    }
    EXPECT_EQ(seen.size(), bound) << "bound " << bound;
  }
  const uint32_t big = 0xffffffffu;
  for (int i = 0; i < 1000; ++i) ASSERT_LT(RandomUniform(big), big);
}

TEST(RandomTest, UniformChiSquare) {
  constexpr uint32_t kBound = 10;
  constexpr int kSamples = 100000;
  std::array<int, kBound> counts{};
  for (int i = 0; i < kSamples; ++i) ++counts[RandomUniform(kBound)];
  const double expected = static_cast<double>(kSamples) / kBound;
  double chi2 = 0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // Critical value of chi-square with 9 degrees of freedom at p = 1e-6.
  EXPECT_LT(chi2, 44.81);
}

}  // namespace
}  // namespace coffer::crypto
