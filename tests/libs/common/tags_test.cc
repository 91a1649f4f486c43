// The one tag rule, with each API's reasons.
#include "libs/common/tags.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer {
namespace {

constexpr TagRules kRules{3, reason::kTag, reason::kLimitExceeded};

absl::Status Check(const std::vector<TagView>& tags) { return ValidateTags("tags", tags, kRules); }

TEST(TagsTest, AcceptsValidTags) {
  EXPECT_TRUE(Check({}).ok());
  const std::string key(128, 'k');
  const std::string value(256, 'v');
  EXPECT_TRUE(Check({{"env", "prod"}, {key, value}, {"empty", ""}}).ok());
  // Limits count characters, not bytes: 128 two-byte characters fit.
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xc3\xa9";
  EXPECT_TRUE(Check({{wide, "x"}}).ok());
}

TEST(TagsTest, EachProblemHasItsReasonAndNamesTheField) {
  const std::string long_key(129, 'k');
  const std::string long_value(257, 'v');
  struct Case {
    std::vector<TagView> tags;
    const char* reason;
  };
  const Case cases[] = {
      {{{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}}, reason::kLimitExceeded},
      {{{"", "x"}}, reason::kTag},
      {{{long_key, "x"}}, reason::kTag},
      {{{"aws:owner", "x"}}, reason::kTag},
      {{{"AWS:owner", "x"}}, reason::kTag},
      {{{"k", long_value}}, reason::kTag},
      {{{"k", "1"}, {"k", "2"}}, reason::kTag},
  };
  for (const Case& c : cases) {
    absl::Status s = Check(c.tags);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(ErrorReason(s), c.reason) << s;
    EXPECT_EQ(GetErrorDetail(s)->field, "tags") << s;
  }
  EXPECT_FALSE(ValidateTagKey("tag_keys", "aws:x", kRules).ok());
  EXPECT_TRUE(ValidateTagKey("tag_keys", "x", kRules).ok());
}

TEST(TagsTest, Utf8LengthCountsCodePoints) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91"), 3u);  // é € 🔑
}

}  // namespace
}  // namespace coffer
