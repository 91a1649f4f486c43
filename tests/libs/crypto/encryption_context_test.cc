#include "libs/crypto/encryption_context.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace coffer::crypto {
namespace {

using Context = std::map<std::string, std::string>;

TEST(EncryptionContextTest, EmptyMapIsACountOfZero) {
  EXPECT_EQ(EncodeEncryptionContext({}), std::string("\0\0\0\0", 4));
}

TEST(EncryptionContextTest, ExactByteLayout) {
  const Context ctx{{"b", "xyz"}, {"a", ""}};
  const std::string expected = std::string("\0\0\0\x02", 4) +         // count
                               std::string("\0\0\0\x01", 4) + "a" +   // key "a"
                               std::string("\0\0\0\0", 4) +           // value ""
                               std::string("\0\0\0\x01", 4) + "b" +   // key "b"
                               std::string("\0\0\0\x03", 4) + "xyz";  // value "xyz"
  EXPECT_EQ(EncodeEncryptionContext(ctx), expected);
}

TEST(EncryptionContextTest, LengthsAreBigEndian) {
  const std::string value(0x0102, 'v');
  const std::string encoded = EncodeEncryptionContext({{"k", value}});
  ASSERT_EQ(encoded.size(), 4u + 4 + 1 + 4 + value.size());
  EXPECT_EQ(encoded.substr(9, 4), std::string("\0\0\x01\x02", 4));
}

TEST(EncryptionContextTest, InsertionOrderIsIrrelevant) {
  Context a;
  a["SecretVersionId"] = "v1";
  a["SecretARN"] = "arn:coffer:secretsmanager:local:000000000000:secret:db-AbCdEf";
  Context b;
  b["SecretARN"] = "arn:coffer:secretsmanager:local:000000000000:secret:db-AbCdEf";
  b["SecretVersionId"] = "v1";
  EXPECT_EQ(EncodeEncryptionContext(a), EncodeEncryptionContext(b));
}

TEST(EncryptionContextTest, KeysSortedBytewise) {
  // 0xff sorts after ASCII bytewise; a signed-char comparison would not.
  const std::string encoded = EncodeEncryptionContext({{"\xff", "1"}, {"a", "2"}});
  EXPECT_EQ(encoded.substr(8, 1), "a");
}

TEST(EncryptionContextTest, DistinctMapsNeverCollide) {
  const std::vector<Context> contexts = {
      {},
      {{"", ""}},
      {{"a", ""}},
      {{"", "a"}},
      {{"a", "bc"}},
      {{"ab", "c"}},
      {{"abc", ""}},
      {{"", "abc"}},
      {{"a", "b"}, {"c", "d"}},
      {{"a", "bcd"}},
      {{"a", std::string("\0\0\0\x01", 4) + "c"}},
      {{"a", ""}, {"b", ""}},
      {{"a", std::string("\0\0\0\x01", 4) + "b" + std::string("\0\0\0\0", 4)}},
      {{"k", "v"}},
      {{"K", "v"}},
      {{"k", "V"}},
  };
  std::set<std::string> encodings;
  for (const Context& c : contexts) encodings.insert(EncodeEncryptionContext(c));
  EXPECT_EQ(encodings.size(), contexts.size());
}

}  // namespace
}  // namespace coffer::crypto
