#include "libs/common/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace coffer {
namespace {

using ::testing::HasSubstr;

TEST(JsonReaderTest, LinesAndErrors) {
  auto doc = ParseJson("{\n \"a\": [1, \"x\\u00e9\"],\n \"b\": {\"c\": true}\n}");
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_NE(doc->Find("b"), nullptr);
  EXPECT_EQ(doc->Find("b")->line, 3);
  EXPECT_EQ(doc->Find("a")->items[1].text, "x\xc3\xa9");
  auto bad = ParseJson("{\n\"a\": 1,\n}");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("line 3"));
  EXPECT_FALSE(ParseJson(std::string(100, '[') + std::string(100, ']')).ok());  // too deep
  EXPECT_FALSE(ParseJson("{} {}").ok());
  EXPECT_FALSE(ParseJson("\"unterminated").ok());
  EXPECT_FALSE(ParseJson("01").ok());  // no leading zeros
  EXPECT_TRUE(ParseJson("-0").ok());
}

}  // namespace
}  // namespace coffer
