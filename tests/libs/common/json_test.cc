#include "libs/common/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "libs/common/utf8.h"

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

TEST(Utf8Test, ValidSequencesStayInvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(ValidUtf8("plain"), "plain");
  EXPECT_EQ(ValidUtf8("caf\xc3\xa9 \xf0\x9f\x94\x91"), "caf\xc3\xa9 \xf0\x9f\x94\x91");
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(ValidUtf8("\xff"), fffd);
  EXPECT_EQ(ValidUtf8("a\x80"
                      "b"),
            "a" + fffd + "b");                               // stray continuation
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), fffd + fffd);             // overlong '/'
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), fffd + fffd + fffd);  // a surrogate
  EXPECT_EQ(ValidUtf8("\xe2\x82"), fffd + fffd);             // cut off
  EXPECT_EQ(Utf8SequenceLength("\xf4\x90\x80\x80", 0), 0u);  // beyond U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xf4\x8f\xbf\xbf", 0), 4u);
}

}  // namespace
}  // namespace coffer
