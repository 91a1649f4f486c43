// The one page-size rule and page-token codec.
#include "libs/common/paging.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer {
namespace {

constexpr PagingErrors kSize{"max_results", reason::kInvalidParameter};
constexpr PagingErrors kToken{"next_token", reason::kInvalidNextToken};

TEST(PagingTest, PageSizeDefaultsAndBounds) {
  EXPECT_EQ(*PageSize(0, {100, 20}, kSize), 20);
  EXPECT_EQ(*PageSize(1, {100, 20}, kSize), 1);
  EXPECT_EQ(*PageSize(100, {100, 20}, kSize), 100);
  for (int bad : {-1, 101, 1 << 30}) {
    auto s = PageSize(bad, {100, 20}, kSize);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(s.status()), reason::kInvalidParameter);
    EXPECT_EQ(GetErrorDetail(s.status())->field, "max_results");
    EXPECT_EQ(s.status().message(), "max_results: must be between 1 and 100");
  }
}

TEST(PagingTest, TokenRoundTripsAnyBytes) {
  const std::string payload("a\0b/\xff", 5);
  const std::string token = EncodePageToken("versions", payload);
  EXPECT_EQ(
      token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_EQ(*DecodePageToken("versions", token, kToken), payload);
  EXPECT_EQ(*DecodePageToken("versions", "", kToken), "");  // the first page
}

TEST(PagingTest, RefusesForeignMalformedEmptyAndOversizedTokens) {
  const std::string other_kind = EncodePageToken("schedules", "x");
  const std::string no_payload = EncodePageToken("versions", "");
  const std::string oversized = EncodePageToken("versions", std::string(kMaxPageTokenBytes, 'x'));
  for (const std::string& bad : {other_kind, no_payload, oversized, std::string("!!not base64"),
                                 absl::WebSafeBase64Escape("versions")}) {
    auto decoded = DecodePageToken("versions", bad, kToken);
    ASSERT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(ErrorReason(decoded.status()), reason::kInvalidNextToken);
    EXPECT_EQ(GetErrorDetail(decoded.status())->field, "next_token");
  }
}

}  // namespace
}  // namespace coffer
