#include "services/store/envelope/data_key_cache.h"

#include <string>

#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::store {
namespace {

crypto::SecureBuffer KeyOf(char c) { return crypto::SecureBuffer::Copy(std::string(32, c)); }

class DataKeyCacheTest : public ::testing::Test {
 protected:
  FakeClock clock_;
};

TEST_F(DataKeyCacheTest, HitsAndMissesAreCounted) {
  DataKeyCache cache({.max_entries = 10, .ttl = absl::Minutes(5), .clock = &clock_});
  ASSERT_TRUE(cache.enabled());
  const std::string k = DataKeyCache::Key("wrapped", "ctx");
  EXPECT_EQ(cache.Get(k), nullptr);
  cache.Put(k, KeyOf('a'));
  auto got = cache.Get(k);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->view(), std::string(32, 'a'));
  EXPECT_EQ(cache.Get(DataKeyCache::Key("other", "ctx")), nullptr);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(DataKeyCacheTest, EntriesExpireAfterTtl) {
  DataKeyCache cache({.max_entries = 10, .ttl = absl::Minutes(5), .clock = &clock_});
  cache.Put("k", KeyOf('a'));
  clock_.Advance(absl::Minutes(5) - absl::Seconds(1));
  EXPECT_NE(cache.Get("k"), nullptr);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(cache.Get("k"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(DataKeyCacheTest, PurgeDropsExpiredEntriesWithoutAccess) {
  DataKeyCache cache({.max_entries = 10, .ttl = absl::Minutes(5), .clock = &clock_});
  cache.Put("old", KeyOf('a'));
  clock_.Advance(absl::Minutes(3));
  cache.Put("new", KeyOf('b'));
  clock_.Advance(absl::Minutes(3));
  EXPECT_EQ(cache.PurgeExpired(), 1u);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_NE(cache.Get("new"), nullptr);
}

TEST_F(DataKeyCacheTest, EvictsLeastRecentlyUsedAtMaxEntries) {
  DataKeyCache cache({.max_entries = 2, .ttl = absl::Minutes(5), .clock = &clock_});
  cache.Put("a", KeyOf('a'));
  cache.Put("b", KeyOf('b'));
  ASSERT_NE(cache.Get("a"), nullptr);  // "b" is now the least recently used
  cache.Put("c", KeyOf('c'));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.Get("a"), nullptr);
  EXPECT_EQ(cache.Get("b"), nullptr);
  EXPECT_NE(cache.Get("c"), nullptr);
}

TEST_F(DataKeyCacheTest, PutReplacesAnExistingEntry) {
  DataKeyCache cache({.max_entries = 2, .ttl = absl::Minutes(5), .clock = &clock_});
  cache.Put("a", KeyOf('a'));
  cache.Put("a", KeyOf('z'));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Get("a")->view(), std::string(32, 'z'));
}

TEST_F(DataKeyCacheTest, HeldKeysSurviveEviction) {
  DataKeyCache cache({.max_entries = 1, .ttl = absl::Minutes(5), .clock = &clock_});
  cache.Put("a", KeyOf('a'));
  auto held = cache.Get("a");
  cache.Put("b", KeyOf('b'));
  EXPECT_EQ(cache.Get("a"), nullptr);
  EXPECT_EQ(held->view(), std::string(32, 'a'));
}

TEST_F(DataKeyCacheTest, DisabledWithZeroTtlOrZeroEntries) {
  for (DataKeyCacheOptions options :
       {DataKeyCacheOptions{.max_entries = 10, .ttl = absl::ZeroDuration(), .clock = &clock_},
        DataKeyCacheOptions{.max_entries = 0, .ttl = absl::Minutes(5), .clock = &clock_}}) {
    DataKeyCache cache(options);
    EXPECT_FALSE(cache.enabled());
    cache.Put("a", KeyOf('a'));
    EXPECT_EQ(cache.Get("a"), nullptr);
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(cache.hits(), 0u);
  }
}

TEST_F(DataKeyCacheTest, ClearDropsEverything) {
  DataKeyCache cache({.max_entries = 10, .ttl = absl::Minutes(5), .clock = &clock_});
  cache.Put("a", KeyOf('a'));
  cache.Put("b", KeyOf('b'));
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Get("a"), nullptr);
}

TEST(DataKeyCacheKeyTest, DependsOnContextAndBoundaries) {
  const std::string k = DataKeyCache::Key("wrapped", "context");
  EXPECT_EQ(k, DataKeyCache::Key("wrapped", "context"));
  EXPECT_EQ(k.size(), 32u);
  EXPECT_NE(k, DataKeyCache::Key("wrapped", "context2"));
  EXPECT_NE(k, DataKeyCache::Key("wrapped2", "context"));
  // Same concatenation, different split.
  EXPECT_NE(DataKeyCache::Key("ab", "c"), DataKeyCache::Key("a", "bc"));
  EXPECT_NE(DataKeyCache::Key("", "abc"), DataKeyCache::Key("abc", ""));
}

}  // namespace
}  // namespace coffer::store
