// Database against a real RocksDB in a temp dir: persistence, families,
// atomic batches, compare-and-set and optimistic transactions.
#include "libs/storage/database.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/libs/storage/temp_dir.h"

namespace coffer::storage {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(OpenDb().ok()); }
  void TearDown() override { db_.reset(); }

  DatabaseOptions Options() const {
    DatabaseOptions opts;
    opts.path = dir_.path() + "/db";
    opts.column_families = {"keys", "material"};
    opts.sync_writes = false;  // Speed; the fault tests use synced writes.
    return opts;
  }
  absl::Status OpenDb() { return OpenDb(Options()); }
  absl::Status OpenDb(const DatabaseOptions& opts) {
    db_.reset();
    auto db = Database::Open(opts);
    if (!db.ok()) return db.status();
    db_ = std::move(*db);
    return absl::OkStatus();
  }
  std::optional<std::string> MustGet(absl::string_view cf, absl::string_view key) {
    auto v = db_->Get(cf, key);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::nullopt;
  }

  testing::TempDir dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(DatabaseTest, GetMissingKeyIsNulloptNotNotFound) {
  auto v = db_->Get("keys", "absent");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::nullopt);
}

TEST_F(DatabaseTest, PutGetDelete) {
  ASSERT_TRUE(db_->Put("keys", "k", "v").ok());
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("v")));
  ASSERT_TRUE(db_->Put("keys", "k", "v2").ok());
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("v2")));
  ASSERT_TRUE(db_->Delete("keys", "k").ok());
  EXPECT_EQ(MustGet("keys", "k"), std::nullopt);
  ASSERT_TRUE(db_->Delete("keys", "never-there").ok());
}

TEST_F(DatabaseTest, BinaryKeysAndValues) {
  const std::string key("a\0b\xff", 4);
  const std::string value("\0\x01\x02\xff", 4);
  ASSERT_TRUE(db_->Put("keys", key, value).ok());
  EXPECT_THAT(MustGet("keys", key), Optional(value));
  EXPECT_EQ(MustGet("keys", std::string("a", 1)), std::nullopt);
}

TEST_F(DatabaseTest, ReopenKeepsData) {
  ASSERT_TRUE(db_->Put("keys", "k1", "v1").ok());
  ASSERT_TRUE(db_->Put("material", "m1", "sealed").ok());
  ASSERT_TRUE(db_->Put("default", "d", "x").ok());
  ASSERT_TRUE(OpenDb().ok());
  EXPECT_THAT(MustGet("keys", "k1"), Optional(std::string("v1")));
  EXPECT_THAT(MustGet("material", "m1"), Optional(std::string("sealed")));
  EXPECT_THAT(MustGet("default", "d"), Optional(std::string("x")));
}

TEST_F(DatabaseTest, ReopenWithFewerFamiliesOpensExtraOnes) {
  ASSERT_TRUE(db_->Put("material", "m", "v").ok());
  DatabaseOptions opts = Options();
  opts.column_families = {};
  ASSERT_TRUE(OpenDb(opts).ok());
  EXPECT_THAT(MustGet("material", "m"), Optional(std::string("v")));
}

TEST_F(DatabaseTest, ReopenAddsNewFamily) {
  DatabaseOptions opts = Options();
  opts.column_families.push_back("aliases");
  ASSERT_TRUE(OpenDb(opts).ok());
  ASSERT_TRUE(db_->Put("aliases", "a", "1").ok());
  EXPECT_THAT(MustGet("aliases", "a"), Optional(std::string("1")));
}

TEST_F(DatabaseTest, OpenMissingWithoutCreateFails) {
  DatabaseOptions opts = Options();
  opts.path = dir_.path() + "/nope";
  opts.create_if_missing = false;
  auto db = Database::Open(opts);
  EXPECT_FALSE(db.ok());
}

TEST_F(DatabaseTest, OpenEmptyPathIsInvalid) {
  DatabaseOptions opts = Options();
  opts.path.clear();
  EXPECT_EQ(Database::Open(opts).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DatabaseTest, OpenWithBlockCache) {
  DatabaseOptions opts = Options();
  opts.block_cache_bytes = 1 << 20;
  ASSERT_TRUE(OpenDb(opts).ok());
  ASSERT_TRUE(db_->Put("keys", "k", "v").ok());
  ASSERT_TRUE(db_->Flush().ok());
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("v")));
}

TEST_F(DatabaseTest, ColumnFamiliesAreIsolated) {
  ASSERT_TRUE(db_->Put("keys", "same", "in-keys").ok());
  ASSERT_TRUE(db_->Put("material", "same", "in-material").ok());
  EXPECT_THAT(MustGet("keys", "same"), Optional(std::string("in-keys")));
  EXPECT_THAT(MustGet("material", "same"), Optional(std::string("in-material")));
  EXPECT_EQ(MustGet("default", "same"), std::nullopt);
  ASSERT_TRUE(db_->Delete("keys", "same").ok());
  EXPECT_EQ(MustGet("keys", "same"), std::nullopt);
  EXPECT_THAT(MustGet("material", "same"), Optional(std::string("in-material")));

  int seen = 0;
  ASSERT_TRUE(db_->Scan("material", {},
                        [&](absl::string_view, absl::string_view) {
                          ++seen;
                          return true;
                        })
                  .ok());
  EXPECT_EQ(seen, 1);
}

TEST_F(DatabaseTest, UnknownFamilyIsInvalidArgumentNamingIt) {
  auto get = db_->Get("bogus", "k");
  EXPECT_EQ(get.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(get.status().message()), HasSubstr("bogus"));
  EXPECT_EQ(db_->Put("bogus", "k", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->Delete("bogus", "k").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->CompareAndSet("bogus", "k", std::nullopt, "v").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      db_->Scan("bogus", {}, [](absl::string_view, absl::string_view) { return true; }).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->EstimateKeys("bogus"), 0u);
}

TEST_F(DatabaseTest, EstimateKeys) {
  WriteBatch batch;
  for (int i = 0; i < 100; ++i) batch.Put("keys", absl::StrCat("k", i), "v");
  ASSERT_TRUE(db_->Write(batch).ok());
  EXPECT_GT(db_->EstimateKeys("keys"), 0u);
  EXPECT_EQ(db_->EstimateKeys("material"), 0u);
}

// ------------------------------------------------------------- WriteBatch

TEST_F(DatabaseTest, WriteBatchCountsAndMoves) {
  WriteBatch batch;
  EXPECT_TRUE(batch.empty());
  batch.Put("keys", "a", "1");
  batch.Delete("keys", "b");
  EXPECT_EQ(batch.size(), 2u);
  WriteBatch moved(std::move(batch));
  EXPECT_EQ(moved.size(), 2u);
  WriteBatch assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.size(), 2u);
  EXPECT_TRUE(db_->Write(WriteBatch()).ok());
}

TEST_F(DatabaseTest, BatchAcrossFamiliesIsAtomic) {
  ASSERT_TRUE(db_->Put("keys", "k", "old").ok());
  ASSERT_TRUE(db_->Put("material", "m", "present").ok());

  // A batch naming an unknown family writes nothing at all.
  WriteBatch bad;
  bad.Put("keys", "k", "new");
  bad.Delete("material", "m");
  bad.Put("no-such-family", "x", "y");
  absl::Status s = db_->Write(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no-such-family"));
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("old")));
  EXPECT_THAT(MustGet("material", "m"), Optional(std::string("present")));

  WriteBatch good;
  good.Put("keys", "k", "new");
  good.Delete("material", "m");
  good.Put("material", "m2", "added");
  ASSERT_TRUE(db_->Write(good).ok());
  ASSERT_TRUE(OpenDb().ok());
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("new")));
  EXPECT_EQ(MustGet("material", "m"), std::nullopt);
  EXPECT_THAT(MustGet("material", "m2"), Optional(std::string("added")));
}

TEST_F(DatabaseTest, BatchAppliesOperationsInOrder) {
  WriteBatch batch;
  batch.Put("keys", "k", "first");
  batch.Delete("keys", "k");
  batch.Put("keys", "j", "first");
  batch.Put("keys", "j", "second");
  ASSERT_TRUE(db_->Write(batch).ok());
  EXPECT_EQ(MustGet("keys", "k"), std::nullopt);
  EXPECT_THAT(MustGet("keys", "j"), Optional(std::string("second")));
}

// ---------------------------------------------------------- CompareAndSet

TEST_F(DatabaseTest, CasSucceedsWhenExpectedMatches) {
  ASSERT_TRUE(db_->Put("keys", "k", "v1").ok());
  ASSERT_TRUE(db_->CompareAndSet("keys", "k", std::string("v1"), std::string("v2")).ok());
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("v2")));
}

TEST_F(DatabaseTest, CasConflictLeavesValueUnchanged) {
  ASSERT_TRUE(db_->Put("keys", "k", "actual").ok());
  absl::Status s = db_->CompareAndSet("keys", "k", std::string("stale"), std::string("new"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(s.message(), "compare-and-set conflict");
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("actual")));

  // Expecting a value that is absent is a conflict too.
  s = db_->CompareAndSet("keys", "absent", std::string("x"), std::string("new"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(MustGet("keys", "absent"), std::nullopt);
}

TEST_F(DatabaseTest, CasWithAbsentExpected) {
  ASSERT_TRUE(db_->CompareAndSet("keys", "k", std::nullopt, std::string("created")).ok());
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("created")));
  // Now present: "expected absent" no longer holds.
  EXPECT_EQ(db_->CompareAndSet("keys", "k", std::nullopt, std::string("again")).code(),
            absl::StatusCode::kAborted);
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("created")));
}

TEST_F(DatabaseTest, CasDelete) {
  ASSERT_TRUE(db_->Put("keys", "k", "v").ok());
  EXPECT_EQ(db_->CompareAndSet("keys", "k", std::string("other"), std::nullopt).code(),
            absl::StatusCode::kAborted);
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("v")));
  ASSERT_TRUE(db_->CompareAndSet("keys", "k", std::string("v"), std::nullopt).ok());
  EXPECT_EQ(MustGet("keys", "k"), std::nullopt);
}

TEST_F(DatabaseTest, ConcurrentCasIncrementsLoseNoUpdate) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 50;
  ASSERT_TRUE(db_->Put("keys", "counter", "0").ok());
  std::atomic<int> failures{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        while (true) {
          auto cur = db_->Get("keys", "counter");
          if (!cur.ok() || !cur->has_value()) {
            ++failures;
            return;
          }
          int n = 0;
          if (!absl::SimpleAtoi(**cur, &n)) {
            ++failures;
            return;
          }
          absl::Status s = db_->CompareAndSet("keys", "counter", **cur, absl::StrCat(n + 1));
          if (s.ok()) break;
          if (s.code() != absl::StatusCode::kAborted) {
            ++failures;
            return;
          }
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(MustGet("keys", "counter"), Optional(absl::StrCat(kThreads * kIncrements)));
}

// --------------------------------------------------------- RunTransaction

TEST_F(DatabaseTest, TransactionCommitsReadModifyWrite) {
  ASSERT_TRUE(db_->Put("keys", "a", "1").ok());
  ASSERT_TRUE(db_->RunTransaction([](Transaction& txn) -> absl::Status {
                   auto a = txn.GetForUpdate("keys", "a");
                   if (!a.ok()) return a.status();
                   auto b = txn.GetForUpdate("keys", "b");
                   if (!b.ok()) return b.status();
                   EXPECT_THAT(*a, Optional(std::string("1")));
                   EXPECT_EQ(*b, std::nullopt);
                   txn.Put("keys", "b", **a);
                   txn.Delete("keys", "a");
                   txn.Put("material", "log", "moved a to b");
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_EQ(MustGet("keys", "a"), std::nullopt);
  EXPECT_THAT(MustGet("keys", "b"), Optional(std::string("1")));
  EXPECT_THAT(MustGet("material", "log"), Optional(std::string("moved a to b")));
}

TEST_F(DatabaseTest, TransactionFnErrorWritesNothing) {
  ASSERT_TRUE(db_->Put("keys", "k", "before").ok());
  int calls = 0;
  absl::Status s = db_->RunTransaction([&](Transaction& txn) -> absl::Status {
    ++calls;
    txn.Put("keys", "k", "after");
    txn.Put("material", "m", "new");
    return absl::AlreadyExistsError("taken");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(calls, 1);  // Errors from fn are not retried.
  EXPECT_THAT(MustGet("keys", "k"), Optional(std::string("before")));
  EXPECT_EQ(MustGet("material", "m"), std::nullopt);
}

TEST_F(DatabaseTest, TransactionUnknownFamilyIsReportedAndWritesNothing) {
  absl::Status s = db_->RunTransaction([&](Transaction& txn) -> absl::Status {
    txn.Put("keys", "k", "v");
    txn.Put("bogus", "x", "y");  // Error deferred to RunTransaction.
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("bogus"));
  EXPECT_EQ(MustGet("keys", "k"), std::nullopt);

  s = db_->RunTransaction([&](Transaction& txn) -> absl::Status {
    txn.Put("keys", "k", "v");
    (void)txn.GetForUpdate("bogus", "x");  // Ignored by fn, still reported.
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MustGet("keys", "k"), std::nullopt);

  s = db_->RunTransaction([&](Transaction& txn) -> absl::Status {
    txn.Delete("bogus", "x");
    txn.Put("keys", "k", "v");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MustGet("keys", "k"), std::nullopt);
}

TEST_F(DatabaseTest, ConflictingTransactionIsRetriedWithFreshRead) {
  ASSERT_TRUE(db_->Put("keys", "counter", "0").ok());
  int attempts = 0;
  absl::Status s = db_->RunTransaction([&](Transaction& txn) -> absl::Status {
    ++attempts;
    auto cur = txn.GetForUpdate("keys", "counter");
    if (!cur.ok()) return cur.status();
    int n = 0;
    EXPECT_TRUE(absl::SimpleAtoi(**cur, &n));
    if (attempts == 1) {
      // A second transaction commits between our read and our commit.
      absl::Status other = db_->RunTransaction([&](Transaction& inner) -> absl::Status {
        auto v = inner.GetForUpdate("keys", "counter");
        if (!v.ok()) return v.status();
        int m = 0;
        EXPECT_TRUE(absl::SimpleAtoi(**v, &m));
        inner.Put("keys", "counter", absl::StrCat(m + 1));
        return absl::OkStatus();
      });
      EXPECT_TRUE(other.ok()) << other;
    }
    txn.Put("keys", "counter", absl::StrCat(n + 1));
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(attempts, 2);
  // Both increments landed, as if run one after the other.
  EXPECT_THAT(MustGet("keys", "counter"), Optional(std::string("2")));
}

TEST_F(DatabaseTest, TransactionGivesUpAfterMaxAttempts) {
  int attempts = 0;
  absl::Status s = db_->RunTransaction(
      [&](Transaction& txn) -> absl::Status {
        ++attempts;
        auto cur = txn.GetForUpdate("keys", "hot");
        if (!cur.ok()) return cur.status();
        EXPECT_TRUE(db_->Put("keys", "hot", absl::StrCat("outside", attempts)).ok());
        txn.Put("keys", "hot", "mine");
        return absl::OkStatus();
      },
      3);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(attempts, 3);
  EXPECT_THAT(MustGet("keys", "hot"), Optional(std::string("outside3")));
}

TEST_F(DatabaseTest, ConcurrentTransactionsAreSerializable) {
  // Two accounts; every transaction moves 1 from one to the other and bumps
  // a transfer count. Serializability keeps the sum and the count exact.
  ASSERT_TRUE(db_->Put("keys", "alice", "1000").ok());
  ASSERT_TRUE(db_->Put("keys", "bob", "1000").ok());
  ASSERT_TRUE(db_->Put("material", "transfers", "0").ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string from = t % 2 == 0 ? "alice" : "bob";
      const std::string to = t % 2 == 0 ? "bob" : "alice";
      for (int i = 0; i < kPerThread; ++i) {
        absl::Status s = db_->RunTransaction(
            [&](Transaction& txn) -> absl::Status {
              int a = 0, b = 0, n = 0;
              auto va = txn.GetForUpdate("keys", from);
              auto vb = txn.GetForUpdate("keys", to);
              auto vn = txn.GetForUpdate("material", "transfers");
              if (!va.ok() || !vb.ok() || !vn.ok()) return absl::InternalError("read");
              if (!absl::SimpleAtoi(**va, &a) || !absl::SimpleAtoi(**vb, &b) ||
                  !absl::SimpleAtoi(**vn, &n)) {
                return absl::InternalError("parse");
              }
              txn.Put("keys", from, absl::StrCat(a - 1));
              txn.Put("keys", to, absl::StrCat(b + 1));
              txn.Put("material", "transfers", absl::StrCat(n + 1));
              return absl::OkStatus();
            },
            /*max_attempts=*/10000);
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int alice = 0, bob = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*MustGet("keys", "alice"), &alice));
  ASSERT_TRUE(absl::SimpleAtoi(*MustGet("keys", "bob"), &bob));
  EXPECT_EQ(alice + bob, 2000);
  EXPECT_EQ(alice, 1000);  // Equal numbers of transfers each way.
  EXPECT_THAT(MustGet("material", "transfers"), Optional(absl::StrCat(kThreads * kPerThread)));
}

}  // namespace
}  // namespace coffer::storage
