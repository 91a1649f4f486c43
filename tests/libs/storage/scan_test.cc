// Database::Scan: prefix bounds (including 0xff carries), start_after,
// end_before, reverse order, limits and pagination.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/storage/database.h"
#include "tests/libs/storage/temp_dir.h"

namespace coffer::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatabaseOptions opts;
    opts.path = dir_.path() + "/db";
    opts.column_families = {"names"};
    opts.sync_writes = false;
    auto db = Database::Open(opts);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }
  void TearDown() override { db_.reset(); }

  void PutAll(const std::vector<std::string>& keys) {
    WriteBatch batch;
    for (const auto& k : keys) batch.Put("names", k, "v:" + k);
    ASSERT_TRUE(db_->Write(batch).ok());
  }

  std::vector<std::string> Keys(const ScanOptions& options) {
    std::vector<std::string> keys;
    absl::Status s = db_->Scan("names", options, [&](absl::string_view k, absl::string_view v) {
      EXPECT_EQ(v, "v:" + std::string(k));
      keys.emplace_back(k);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return keys;
  }

  testing::TempDir dir_;
  std::unique_ptr<Database> db_;
};

ScanOptions Prefix(std::string prefix) {
  ScanOptions o;
  o.prefix = std::move(prefix);
  return o;
}

TEST_F(ScanTest, EmptyFamily) { EXPECT_THAT(Keys({}), IsEmpty()); }

TEST_F(ScanTest, WholeFamilyInKeyOrder) {
  PutAll({"b", "a0", "a/2", "a/1"});
  EXPECT_THAT(Keys({}), ElementsAre("a/1", "a/2", "a0", "b"));
}

TEST_F(ScanTest, PrefixReturnsExactlyItsKeys) {
  PutAll({"a/1", "a/2", "a0", "b"});
  EXPECT_THAT(Keys(Prefix("a/")), ElementsAre("a/1", "a/2"));
  EXPECT_THAT(Keys(Prefix("a")), ElementsAre("a/1", "a/2", "a0"));
  EXPECT_THAT(Keys(Prefix("b")), ElementsAre("b"));
  EXPECT_THAT(Keys(Prefix("c")), IsEmpty());
  EXPECT_THAT(Keys(Prefix("a/1")), ElementsAre("a/1"));
}

TEST_F(ScanTest, PrefixEndingInFfCarries) {
  const std::string p("x\xff", 2);
  PutAll({"x", p, p + "\x01", p + "\xff", p + "\xff\xff", "y", "y\x01"});
  EXPECT_THAT(Keys(Prefix(p)), ElementsAre(p, p + "\x01", p + "\xff", p + "\xff\xff"));
  ScanOptions rev = Prefix(p);
  rev.reverse = true;
  EXPECT_THAT(Keys(rev), ElementsAre(p + "\xff\xff", p + "\xff", p + "\x01", p));
}

TEST_F(ScanTest, PrefixOfOnlyFfBytesHasNoUpperBound) {
  const std::string p("\xff\xff", 2);
  PutAll({"\xfe", std::string("\xfe\xff", 2), p, p + std::string(1, '\0'), p + "\xff"});
  EXPECT_THAT(Keys(Prefix(p)), ElementsAre(p, p + std::string(1, '\0'), p + "\xff"));
  ScanOptions rev = Prefix(p);
  rev.reverse = true;
  EXPECT_THAT(Keys(rev), ElementsAre(p + "\xff", p + std::string(1, '\0'), p));
}

TEST_F(ScanTest, StartAfterIsExclusive) {
  PutAll({"k1", "k2", "k3", "k4", "k5"});
  ScanOptions o;
  o.start_after = "k2";
  EXPECT_THAT(Keys(o), ElementsAre("k3", "k4", "k5"));
  o.start_after = "k25";  // Not a key: resumes at the next one.
  EXPECT_THAT(Keys(o), ElementsAre("k3", "k4", "k5"));
  o.start_after = "k5";
  EXPECT_THAT(Keys(o), IsEmpty());
  o.start_after = "a";  // Before everything.
  EXPECT_THAT(Keys(o), ElementsAre("k1", "k2", "k3", "k4", "k5"));
}

TEST_F(ScanTest, StartAfterKeyWithNulSuffixIsNotSkipped) {
  // start_after + "\0" is itself a valid key strictly after start_after.
  PutAll({"k", std::string("k\0", 2), "k\x01"});
  ScanOptions o;
  o.start_after = "k";
  EXPECT_THAT(Keys(o), ElementsAre(std::string("k\0", 2), "k\x01"));
}

TEST_F(ScanTest, StartAfterOutsidePrefix) {
  PutAll({"a/1", "a/2", "b/1", "b/2", "c/1"});
  ScanOptions o = Prefix("b/");
  o.start_after = "a/9";  // Below the prefix: whole prefix range.
  EXPECT_THAT(Keys(o), ElementsAre("b/1", "b/2"));
  o.start_after = "c";  // Above the prefix: nothing.
  EXPECT_THAT(Keys(o), IsEmpty());
  o.start_after = "b/1";
  EXPECT_THAT(Keys(o), ElementsAre("b/2"));
}

TEST_F(ScanTest, EndBeforeIsExclusive) {
  PutAll({"a", "b", "c", "d", "e"});
  ScanOptions o;
  o.end_before = "d";
  EXPECT_THAT(Keys(o), ElementsAre("a", "b", "c"));
  o.end_before = "cc";
  EXPECT_THAT(Keys(o), ElementsAre("a", "b", "c"));
  o.start_after = "a";
  EXPECT_THAT(Keys(o), ElementsAre("b", "c"));
  o.start_after = "c";
  EXPECT_THAT(Keys(o), IsEmpty());
  o.start_after = "z";  // start beyond end: empty, not an error.
  EXPECT_THAT(Keys(o), IsEmpty());
}

TEST_F(ScanTest, EndBeforeCombinedWithPrefix) {
  PutAll({"p/1", "p/2", "p/3", "q"});
  ScanOptions o = Prefix("p/");
  o.end_before = "p/3";  // Tighter than the prefix bound.
  EXPECT_THAT(Keys(o), ElementsAre("p/1", "p/2"));
  o.end_before = "z";  // Looser: the prefix bound wins.
  EXPECT_THAT(Keys(o), ElementsAre("p/1", "p/2", "p/3"));
  o.end_before = "a";  // Below the prefix.
  EXPECT_THAT(Keys(o), IsEmpty());
}

TEST_F(ScanTest, Reverse) {
  PutAll({"a/1", "a/2", "a/3", "a0", "b"});
  ScanOptions o;
  o.reverse = true;
  EXPECT_THAT(Keys(o), ElementsAre("b", "a0", "a/3", "a/2", "a/1"));
  o.prefix = "a/";
  EXPECT_THAT(Keys(o), ElementsAre("a/3", "a/2", "a/1"));
  o.start_after = "a/3";  // Reverse: keys < start_after.
  EXPECT_THAT(Keys(o), ElementsAre("a/2", "a/1"));
  o.start_after = "";
  o.end_before = "a/2";
  EXPECT_THAT(Keys(o), ElementsAre("a/1"));
  o.end_before = "";
  o.limit = 2;
  EXPECT_THAT(Keys(o), ElementsAre("a/3", "a/2"));
}

TEST_F(ScanTest, ReverseDoesNotLeaveThePrefixAtTheLowEnd) {
  PutAll({"a", "a/", "a/x", "a0"});
  ScanOptions o = Prefix("a/");
  o.reverse = true;
  EXPECT_THAT(Keys(o), ElementsAre("a/x", "a/"));
}

TEST_F(ScanTest, LimitAndEarlyStop) {
  PutAll({"a", "b", "c", "d"});
  ScanOptions o;
  o.limit = 3;
  EXPECT_THAT(Keys(o), ElementsAre("a", "b", "c"));
  o.limit = 10;
  EXPECT_THAT(Keys(o), ElementsAre("a", "b", "c", "d"));

  std::vector<std::string> seen;
  ASSERT_TRUE(db_->Scan("names", {},
                        [&](absl::string_view k, absl::string_view) {
                          seen.emplace_back(k);
                          return seen.size() < 2;  // Stop after the second.
                        })
                  .ok());
  EXPECT_THAT(seen, ElementsAre("a", "b"));
}

TEST_F(ScanTest, DeletedKeysAreSkipped) {
  PutAll({"a", "b", "c"});
  ASSERT_TRUE(db_->Delete("names", "b").ok());
  EXPECT_THAT(Keys({}), ElementsAre("a", "c"));
}

TEST_F(ScanTest, PaginationVisitsEveryKeyOnceInOrder) {
  std::vector<std::string> all;
  for (int i = 0; i < 1000; ++i)
    all.push_back(absl::StrCat("item/", absl::Dec(i, absl::kZeroPad4)));
  PutAll(all);
  PutAll({"item", "itemz", "other/1"});  // Outside the "item/" prefix.
  ASSERT_TRUE(db_->Flush().ok());        // Half on disk, half in the memtable.
  for (int i = 0; i < 1000; i += 2) {
    ASSERT_TRUE(db_->Put("names", all[i], "v:" + all[i]).ok());
  }

  for (bool reverse : {false, true}) {
    std::vector<std::string> got;
    ScanOptions page = Prefix("item/");
    page.limit = 7;
    page.reverse = reverse;
    int pages = 0;
    while (true) {
      std::vector<std::string> keys = Keys(page);
      ASSERT_LE(keys.size(), 7u);
      ++pages;
      if (keys.empty()) break;
      got.insert(got.end(), keys.begin(), keys.end());
      page.start_after = keys.back();
      ASSERT_LT(pages, 1000);
    }
    std::vector<std::string> want = all;
    if (reverse) want.assign(all.rbegin(), all.rend());
    EXPECT_EQ(got, want) << "reverse=" << reverse;
    EXPECT_EQ(pages, 1000 / 7 + 2);  // 142 full, one of 6, one empty.
  }
}

}  // namespace
}  // namespace coffer::storage
