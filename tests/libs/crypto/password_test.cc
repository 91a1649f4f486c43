#include "libs/crypto/password.h"

#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer::crypto {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsPunct(char c) { return c != '\0' && std::strchr(kPasswordPunctuation, c) != nullptr; }

bool Any(const std::string& s, const std::function<bool(char)>& pred) {
  for (char c : s) {
    if (pred(c)) return true;
  }
  return false;
}

std::string Generate(const PasswordOptions& options) {
  absl::StatusOr<std::string> pw = GeneratePassword(options);
  EXPECT_TRUE(pw.ok()) << pw.status();
  return pw.ok() ? *pw : std::string();
}

void ExpectInvalidParameter(const absl::StatusOr<std::string>& result, absl::string_view field) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(result.status()), reason::kInvalidParameter);
  EXPECT_TRUE(absl::StrContains(result.status().message(), field)) << result.status();
  std::optional<ErrorDetail> detail = GetErrorDetail(result.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->field, field);
}

TEST(PasswordTest, DefaultsGiveThirtyTwoCharactersOfEveryType) {
  const std::string pw = Generate(PasswordOptions{});
  EXPECT_EQ(pw.size(), 32u);
  EXPECT_TRUE(Any(pw, IsLower));
  EXPECT_TRUE(Any(pw, IsUpper));
  EXPECT_TRUE(Any(pw, IsDigit));
  EXPECT_TRUE(Any(pw, IsPunct));
  EXPECT_FALSE(Any(pw, [](char c) { return c == ' '; }));
  for (char c : pw) EXPECT_TRUE(IsLower(c) || IsUpper(c) || IsDigit(c) || IsPunct(c)) << c;
}

TEST(PasswordTest, PunctuationSetIsTheAwsOne) {
  EXPECT_EQ(std::strlen(kPasswordPunctuation), 32u);
  EXPECT_STREQ(kPasswordPunctuation, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
}

TEST(PasswordTest, LengthBoundsAccepted) {
  PasswordOptions options;
  options.require_each_included_type = false;
  options.length = 1;
  EXPECT_EQ(Generate(options).size(), 1u);
  options.length = 4096;
  EXPECT_EQ(Generate(options).size(), 4096u);
  options.require_each_included_type = true;
  EXPECT_EQ(Generate(options).size(), 4096u);
  // Length 1 with the rule on works when one type is included.
  options.length = 1;
  options.exclude_lowercase = options.exclude_uppercase = options.exclude_punctuation = true;
  const std::string one = Generate(options);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(IsDigit(one[0]));
}

TEST(PasswordTest, LengthOutOfRangeRejected) {
  for (int length : {0, 4097, -1, 1 << 30}) {
    PasswordOptions options;
    options.length = length;
    ExpectInvalidParameter(GeneratePassword(options), "password_length");
  }
}

TEST(PasswordTest, EveryExcludeFlagHonoured) {
  struct Case {
    const char* name;
    bool PasswordOptions::*flag;
    bool (*is_class)(char);
  };
  const Case cases[] = {
      {"exclude_lowercase", &PasswordOptions::exclude_lowercase, IsLower},
      {"exclude_uppercase", &PasswordOptions::exclude_uppercase, IsUpper},
      {"exclude_numbers", &PasswordOptions::exclude_numbers, IsDigit},
      {"exclude_punctuation", &PasswordOptions::exclude_punctuation, IsPunct},
  };
  for (const Case& c : cases) {
    PasswordOptions options;
    options.length = 4096;
    options.*(c.flag) = true;
    const std::string pw = Generate(options);
    EXPECT_FALSE(Any(pw, c.is_class)) << c.name;
    // The other classes are still there.
    for (const Case& other : cases) {
      if (other.flag != c.flag) {
        EXPECT_TRUE(Any(pw, other.is_class)) << c.name << " " << other.name;
      }
    }
  }
}

TEST(PasswordTest, ExcludeCharactersHonoured) {
  PasswordOptions options;
  options.length = 4096;
  options.exclude_characters = "aeiouAEIOU01lI|`'\"\\";
  const std::string pw = Generate(options);
  for (char c : options.exclude_characters) {
    EXPECT_EQ(pw.find(c), std::string::npos) << "found excluded '" << c << "'";
  }
}

TEST(PasswordTest, ExcludingAClassCompletelyDropsItsRequirement) {
  // All digits removed character by character: digits are no longer a
  // required type, so three positions suffice for the remaining three.
  PasswordOptions options;
  options.length = 3;
  options.exclude_characters = "0123456789";
  for (int i = 0; i < 200; ++i) {
    const std::string pw = Generate(options);
    EXPECT_FALSE(Any(pw, IsDigit));
    EXPECT_TRUE(Any(pw, IsLower) && Any(pw, IsUpper) && Any(pw, IsPunct)) << pw;
  }
}

TEST(PasswordTest, IncludeSpace) {
  PasswordOptions options;
  options.length = 4096;
  options.include_space = true;
  EXPECT_NE(Generate(options).find(' '), std::string::npos);
  options.include_space = false;
  EXPECT_EQ(Generate(options).find(' '), std::string::npos);
  // Space is never a required type: with it as the only character left,
  // the password is all spaces and even length 1 works.
  options.include_space = true;
  options.exclude_lowercase = options.exclude_uppercase = options.exclude_numbers =
      options.exclude_punctuation = true;
  options.length = 1;
  EXPECT_EQ(Generate(options), " ");
  // exclude_characters wins over include_space.
  options.exclude_lowercase = false;
  options.exclude_characters = " ";
  options.length = 100;
  EXPECT_EQ(Generate(options).find(' '), std::string::npos);
}

TEST(PasswordTest, RequireEachIncludedTypeGuaranteesEveryClass) {
  for (int length = 4; length <= 8; ++length) {
    PasswordOptions options;
    options.length = length;
    options.include_space = (length % 2 == 0);
    for (int trial = 0; trial < 2000; ++trial) {
      const std::string pw = Generate(options);
      ASSERT_EQ(pw.size(), static_cast<size_t>(length));
      ASSERT_TRUE(Any(pw, IsLower) && Any(pw, IsUpper) && Any(pw, IsDigit) && Any(pw, IsPunct))
          << pw;
    }
  }
  // Two included types, length 2: one of each, every time.
  PasswordOptions options;
  options.length = 2;
  options.exclude_lowercase = options.exclude_punctuation = true;
  for (int trial = 0; trial < 2000; ++trial) {
    const std::string pw = Generate(options);
    ASSERT_TRUE(Any(pw, IsUpper) && Any(pw, IsDigit)) << pw;
  }
}

TEST(PasswordTest, RejectionSamplingTerminatesInTheWorstCase) {
  // Three types cut down to a single character each, plus 32 punctuation
  // characters and the space: about 1 in 2,200 random draws of length 4
  // qualifies.
  PasswordOptions options;
  options.length = 4;
  options.include_space = true;
  options.exclude_characters = "bcdefghijklmnopqrstuvwxyzBCDEFGHIJKLMNOPQRSTUVWXYZ123456789";
  for (int trial = 0; trial < 100; ++trial) {
    const std::string pw = Generate(options);
    ASSERT_NE(pw.find('a'), std::string::npos) << pw;
    ASSERT_NE(pw.find('A'), std::string::npos) << pw;
    ASSERT_NE(pw.find('0'), std::string::npos) << pw;
    ASSERT_TRUE(Any(pw, IsPunct)) << pw;
  }
}

TEST(PasswordTest, WithoutRequirementAnyMixIsAllowed) {
  PasswordOptions options;
  options.length = 1;
  options.require_each_included_type = false;
  std::map<int, int> seen_class;
  for (int i = 0; i < 2000; ++i) {
    const char c = Generate(options)[0];
    seen_class[IsLower(c) ? 0 : IsUpper(c) ? 1 : IsDigit(c) ? 2 : 3]++;
  }
  EXPECT_EQ(seen_class.size(), 4u);
}

TEST(PasswordTest, AllExcludedIsAnError) {
  PasswordOptions options;
  options.exclude_lowercase = options.exclude_uppercase = options.exclude_numbers =
      options.exclude_punctuation = true;
  ExpectInvalidParameter(GeneratePassword(options), "exclude_characters");

  PasswordOptions by_characters;
  by_characters.exclude_characters =
      std::string("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ") +
      kPasswordPunctuation;
  ExpectInvalidParameter(GeneratePassword(by_characters), "exclude_characters");
  by_characters.include_space = true;
  ExpectInvalidParameter(GeneratePassword(by_characters), "exclude_characters");
}

TEST(PasswordTest, LengthBelowNumberOfRequiredTypesIsAnError) {
  PasswordOptions options;
  options.length = 3;  // four types included
  ExpectInvalidParameter(GeneratePassword(options), "password_length");
  options.include_space = true;  // space is not a required type: still four
  ExpectInvalidParameter(GeneratePassword(options), "password_length");
  options.exclude_punctuation = true;
  EXPECT_EQ(Generate(options).size(), 3u);
  options.require_each_included_type = false;
  options.exclude_punctuation = false;
  options.length = 2;
  EXPECT_EQ(Generate(options).size(), 2u);
}

// Chi-square goodness of fit of the characters against the uniform
// distribution over a 62-character pool. The threshold is the critical value
// at p = 1e-6 for 61 degrees of freedom, so a correct generator fails about
// once in a million runs, while a modulo-biased one (e.g. byte % 62 makes
// 8 characters 25% likelier) fails every time at this sample size.
TEST(PasswordDistributionTest, CharactersAreUniform) {
  PasswordOptions options;
  options.length = 4096;
  options.exclude_punctuation = true;
  options.require_each_included_type = false;
  constexpr int kPasswords = 49;  // 200,704 characters
  std::array<int, 256> counts{};
  for (int i = 0; i < kPasswords; ++i) {
    for (char c : Generate(options)) ++counts[static_cast<unsigned char>(c)];
  }
  const double expected = 4096.0 * kPasswords / 62;
  double chi2 = 0;
  int categories = 0;
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    if (IsLower(c) || IsUpper(c) || IsDigit(c)) {
      ++categories;
      chi2 += (counts[b] - expected) * (counts[b] - expected) / expected;
    } else {
      ASSERT_EQ(counts[b], 0) << "unexpected character " << b;
    }
  }
  ASSERT_EQ(categories, 62);
  EXPECT_LT(chi2, 128.52);
}

// With the requirement on, the result is uniform over the passwords that
// satisfy it: pool {0,1,A,B}, length 2, one digit and one letter in either
// order gives 8 equally likely passwords.
TEST(PasswordDistributionTest, RequiredTypesAreUniformOverValidPasswords) {
  PasswordOptions options;
  options.length = 2;
  options.exclude_lowercase = options.exclude_punctuation = true;
  options.exclude_characters = "CDEFGHIJKLMNOPQRSTUVWXYZ23456789";
  constexpr int kSamples = 40000;
  std::map<std::string, int> counts;
  for (int i = 0; i < kSamples; ++i) ++counts[Generate(options)];
  ASSERT_EQ(counts.size(), 8u);
  const double expected = kSamples / 8.0;
  double chi2 = 0;
  for (const auto& [pw, n] : counts) {
    EXPECT_TRUE(Any(pw, IsDigit) && Any(pw, IsUpper)) << pw;
    chi2 += (n - expected) * (n - expected) / expected;
  }
  EXPECT_LT(chi2, 40.52);  // chi-square, 7 degrees of freedom, p = 1e-6
}

}  // namespace
}  // namespace coffer::crypto
