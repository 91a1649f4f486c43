// The storage contract, run against every engine: RocksDB in a temp dir
// and etcd (a real etcd 3.4 member, tests/testing/etcd.h). What the store
// and the KMS rely on: point reads, atomic batches (last write of a key
// wins), compare-and-set, optimistic transactions that read their own
// writes and retry on conflict, bounded scans in both directions, unknown
// families refused, and the engine's own limits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/etcd/etcd_client.h"
#include "libs/storage/database.h"
#include "libs/storage/etcd_database.h"
#include "tests/testing/etcd.h"
#include "tests/testing/test_env.h"

namespace coffer::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

enum class Engine { kRocksDb, kEtcd };

class ContractTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    const std::vector<std::string> families = {"keys", "material"};
    if (GetParam() == Engine::kRocksDb) {
      DatabaseOptions options;
      options.path = dir_.Join("db");
      options.column_families = families;
      options.sync_writes = false;
      auto db = Database::Open(options);
      ASSERT_TRUE(db.ok()) << db.status();
      db_ = std::move(db).value();
      return;
    }
    ASSERT_TRUE(testing::EtcdCluster::Installed()) << "etcd-server is required (never skipped)";
    auto etcd = testing::EtcdCluster::Start(1);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(etcd).value();
    etcd::EtcdOptions client_options;
    client_options.endpoints = etcd_->endpoints();
    client_options.tls = etcd_->client_tls();
    auto client = etcd::EtcdClient::Create(std::move(client_options));
    ASSERT_TRUE(client.ok()) << client.status();
    EtcdDatabaseOptions options;
    options.key_prefix = "coffer/test/";
    options.column_families = families;
    options.scan_page = 3;  // so that scans cross pages
    auto db = EtcdDatabase::Open(options, std::shared_ptr<etcd::EtcdClient>(std::move(*client)));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(db).value();
  }

  std::vector<std::pair<std::string, std::string>> Scan(const ScanOptions& options,
                                                        const std::string& family = "keys") {
    std::vector<std::pair<std::string, std::string>> out;
    absl::Status s = db_->Scan(family, options, [&](absl::string_view k, absl::string_view v) {
      out.emplace_back(std::string(k), std::string(v));
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::EtcdCluster> etcd_;
  std::unique_ptr<Database> db_;
};

TEST_P(ContractTest, PointReadsAndAtomicBatches) {
  EXPECT_EQ(db_->Get("keys", "a").value(), std::nullopt);
  ASSERT_TRUE(db_->Put("keys", "a", std::string("v\0w", 3)).ok());
  EXPECT_EQ(db_->Get("keys", "a").value(), std::string("v\0w", 3));
  EXPECT_EQ(db_->Get("material", "a").value(), std::nullopt);  // families are apart

  WriteBatch batch;
  batch.Put("keys", "b", "1");
  batch.Put("material", "b", "m");
  batch.Delete("keys", "a");
  batch.Put("keys", "b", "2");  // the last write of a key wins
  ASSERT_TRUE(db_->Write(batch).ok());
  EXPECT_EQ(db_->Get("keys", "a").value(), std::nullopt);
  EXPECT_EQ(db_->Get("keys", "b").value(), "2");
  EXPECT_EQ(db_->Get("material", "b").value(), "m");

  // A batch naming an unknown family writes nothing.
  WriteBatch bad;
  bad.Put("keys", "c", "3");
  bad.Put("nope", "c", "3");
  EXPECT_EQ(db_->Write(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->Get("keys", "c").value(), std::nullopt);
  EXPECT_EQ(db_->Get("nope", "c").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(db_->Delete("keys", "b").ok());
  EXPECT_EQ(db_->Get("keys", "b").value(), std::nullopt);
}

TEST_P(ContractTest, MultiGetReadsSeveralFamiliesFromOneState) {
  ASSERT_TRUE(db_->Put("keys", "a", "1").ok());
  ASSERT_TRUE(db_->Put("material", "a/1", std::string("m\0n", 3)).ok());
  auto got =
      db_->MultiGet({{"keys", "a"}, {"material", "a/1"}, {"keys", "missing"}, {"keys", "a"}});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(std::optional<std::string>("1"),
                                std::optional<std::string>(std::string("m\0n", 3)), std::nullopt,
                                std::optional<std::string>("1")));
  EXPECT_TRUE(db_->MultiGet({}).value().empty());
  EXPECT_EQ(db_->MultiGet({{"keys", "a"}, {"nope", "a"}}).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A writer keeps the two keys equal, batch by batch; no read of both ever
  // sees one batch's key with another batch's.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load() && i < 2000; ++i) {
      WriteBatch batch;
      batch.Put("keys", "pair", absl::StrCat(i));
      batch.Put("material", "pair", absl::StrCat(i));
      ASSERT_TRUE(db_->Write(batch).ok());
    }
  });
  int torn = 0;
  for (int i = 0; i < 200; ++i) {
    auto pair = db_->MultiGet({{"keys", "pair"}, {"material", "pair"}});
    ASSERT_TRUE(pair.ok()) << pair.status();
    if ((*pair)[0] != (*pair)[1]) ++torn;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(torn, 0);
}

TEST_P(ContractTest, CompareAndSet) {
  ASSERT_TRUE(db_->CompareAndSet("keys", "k", std::nullopt, "1").ok());
  EXPECT_EQ(db_->CompareAndSet("keys", "k", std::nullopt, "2").code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(db_->CompareAndSet("keys", "k", "1", "2").ok());
  EXPECT_EQ(db_->CompareAndSet("keys", "k", "1", "3").code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(db_->CompareAndSet("keys", "k", "2", std::nullopt).ok());
  EXPECT_EQ(db_->Get("keys", "k").value(), std::nullopt);
}

TEST_P(ContractTest, TransactionsReadTheirWritesAndRetryOnConflict) {
  ASSERT_TRUE(db_->RunTransaction([](Transaction& txn) -> absl::Status {
                   txn.Put("keys", "x", "1");
                   auto own = txn.GetForUpdate("keys", "x");
                   if (!own.ok() || *own != "1") return absl::InternalError("own write unseen");
                   txn.Delete("keys", "x");
                   own = txn.GetForUpdate("keys", "x");
                   if (!own.ok() || own->has_value()) return absl::InternalError("own delete");
                   txn.Put("keys", "counter", "0");
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_EQ(db_->Get("keys", "x").value(), std::nullopt);

  // Four threads increment one counter 10 times each: every increment lands
  // once, conflicts retried.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        absl::Status s = db_->RunTransaction(
            [](Transaction& txn) -> absl::Status {
              auto value = txn.GetForUpdate("keys", "counter");
              if (!value.ok()) return value.status();
              txn.Put("keys", "counter", std::to_string(std::stoi(value->value_or("0")) + 1));
              return absl::OkStatus();
            },
            /*max_attempts=*/100);
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(db_->Get("keys", "counter").value(), "40");

  // An error from the function writes nothing.
  absl::Status s = db_->RunTransaction([](Transaction& txn) -> absl::Status {
    txn.Put("keys", "y", "1");
    return absl::FailedPreconditionError("no");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(db_->Get("keys", "y").value(), std::nullopt);
  // An unknown family fails the transaction, unwritten.
  s = db_->RunTransaction([](Transaction& txn) -> absl::Status {
    txn.Put("keys", "z", "1");
    txn.Put("nope", "z", "1");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->Get("keys", "z").value(), std::nullopt);
}

TEST_P(ContractTest, ReadsOfSeveralKeysInATransactionAreCheckedAtCommit) {
  ASSERT_TRUE(db_->Put("keys", "y", "old").ok());
  ASSERT_TRUE(
      db_->RunTransaction([](Transaction& txn) -> absl::Status {
           txn.Put("keys", "x", "1");
           auto got = txn.GetManyForUpdate(
               {{"keys", "x"}, {"keys", "y"}, {"material", "z"}, {"keys", "y"}});
           if (!got.ok()) return got.status();
           const std::vector<std::optional<std::string>> want = {"1", "old", std::nullopt, "old"};
           if (*got != want) return absl::InternalError("unexpected values");
           txn.Delete("keys", "x");
           return absl::OkStatus();
         })
          .ok());

  // Another writer changes one key of the read between the read and the
  // commit (once): the function runs again and sees the new value.
  int attempts = 0;
  ASSERT_TRUE(db_->RunTransaction([&](Transaction& txn) -> absl::Status {
                   ++attempts;
                   auto got = txn.GetManyForUpdate({{"keys", "y"}, {"material", "z"}});
                   if (!got.ok()) return got.status();
                   if (attempts == 1) {
                     absl::Status s = db_->Put("material", "z", "raced");
                     if (!s.ok()) return s;
                   }
                   txn.Put("keys", "y", (*got)[0].value_or("") + "+" + (*got)[1].value_or("-"));
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(db_->Get("keys", "y").value(), "old+raced");
  EXPECT_EQ(db_->Get("keys", "x").value(), std::nullopt);

  absl::Status s = db_->RunTransaction([](Transaction& txn) -> absl::Status {
    auto got = txn.GetManyForUpdate({{"keys", "y"}, {"nope", "y"}});
    if (!got.ok()) return got.status();
    txn.Put("keys", "y", "never");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->Get("keys", "y").value(), "old+raced");
}

TEST_P(ContractTest, ScansAreBoundedInBothDirections) {
  WriteBatch batch;
  for (const char* k : {"a/1", "a/2", "a/3", "a/4", "a/5", "b/1", "c"}) batch.Put("keys", k, k);
  batch.Put("material", "a/9", "other family");
  ASSERT_TRUE(db_->Write(batch).ok());

  ScanOptions all;
  EXPECT_EQ(Scan(all).size(), 7u);
  ScanOptions prefix;
  prefix.prefix = "a/";
  EXPECT_THAT(Scan(prefix), ElementsAre(Pair("a/1", "a/1"), Pair("a/2", "a/2"), Pair("a/3", "a/3"),
                                        Pair("a/4", "a/4"), Pair("a/5", "a/5")));
  ScanOptions page = prefix;
  page.start_after = "a/2";
  page.limit = 2;
  EXPECT_THAT(Scan(page), ElementsAre(Pair("a/3", "a/3"), Pair("a/4", "a/4")));
  ScanOptions bounded = prefix;
  bounded.end_before = "a/4";
  EXPECT_EQ(Scan(bounded).size(), 3u);
  ScanOptions reverse = prefix;
  reverse.reverse = true;
  std::vector<std::string> keys;
  for (const auto& [k, v] : Scan(reverse)) keys.push_back(k);
  EXPECT_THAT(keys, ElementsAre("a/5", "a/4", "a/3", "a/2", "a/1"));
  reverse.start_after = "a/4";
  reverse.limit = 2;
  keys.clear();
  for (const auto& [k, v] : Scan(reverse)) keys.push_back(k);
  EXPECT_THAT(keys, ElementsAre("a/3", "a/2"));
  // Stopping early.
  int seen = 0;
  ASSERT_TRUE(
      db_->Scan("keys", all, [&](absl::string_view, absl::string_view) { return ++seen < 4; })
          .ok());
  EXPECT_EQ(seen, 4);
  EXPECT_EQ(
      db_->Scan("nope", all, [](absl::string_view, absl::string_view) { return true; }).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_GT(db_->EstimateKeys("keys"), 0u);
  EXPECT_EQ(db_->EstimateKeys("nope"), 0u);
}

// Shared engines report every process's writes of a family; RocksDB is no
// one's but its process's.
TEST_P(ContractTest, SharedEnginesWatchFamilies) {
  if (GetParam() == Engine::kRocksDb) {
    EXPECT_FALSE(db_->shared());
    EXPECT_EQ(db_->WatchFamily("keys", [](absl::string_view) {}).status().code(),
              absl::StatusCode::kUnimplemented);
    return;
  }
  EXPECT_TRUE(db_->shared());
  absl::Mutex mu;
  std::vector<std::string> seen;
  auto watch = db_->WatchFamily("keys", [&](absl::string_view key) {
    absl::MutexLock lock(&mu);
    seen.emplace_back(key);
  });
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(db_->WatchFamily("nope", [](absl::string_view) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Another process's database on the same etcd keys: a second client.
  etcd::EtcdOptions client_options;
  client_options.endpoints = etcd_->endpoints();
  client_options.tls = etcd_->client_tls();
  auto client = etcd::EtcdClient::Create(std::move(client_options));
  ASSERT_TRUE(client.ok()) << client.status();
  EtcdDatabaseOptions options;
  options.key_prefix = "coffer/test/";
  options.column_families = {"keys", "material"};
  auto other = EtcdDatabase::Open(options, std::shared_ptr<etcd::EtcdClient>(std::move(*client)));
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->Put("keys", "from-other", "v").ok());
  ASSERT_TRUE((*other)->Put("material", "not-watched", "v").ok());
  ASSERT_TRUE(db_->Put("keys", "from-self", "v").ok());
  ASSERT_TRUE((*other)->Delete("keys", "from-other").ok());
  auto all_seen = [&] {
    absl::MutexLock lock(&mu);
    return seen.size() >= 3;
  };
  ASSERT_TRUE(testing::WaitFor(all_seen, absl::Seconds(5)));
  watch->reset();  // no call after this
  absl::MutexLock lock(&mu);
  EXPECT_THAT(seen, ElementsAre("from-other", "from-self", "from-other"));
}

INSTANTIATE_TEST_SUITE_P(Engines, ContractTest, ::testing::Values(Engine::kRocksDb, Engine::kEtcd),
                         [](const ::testing::TestParamInfo<Engine>& info) {
                           return info.param == Engine::kRocksDb ? "RocksDb" : "Etcd";
                         });

TEST(EtcdDatabaseTest, EtcdsTxnLimitIsRefusedWholeAndFamiliesAreChecked) {
  auto etcd = testing::EtcdCluster::Start(1);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  etcd::EtcdOptions client_options;
  client_options.endpoints = (*etcd)->endpoints();
  client_options.tls = (*etcd)->client_tls();
  auto client = etcd::EtcdClient::Create(std::move(client_options));
  ASSERT_TRUE(client.ok()) << client.status();
  std::shared_ptr<etcd::EtcdClient> shared(std::move(*client));
  EtcdDatabaseOptions options;
  options.key_prefix = "coffer/limits/";
  options.column_families = {"keys"};
  auto db = EtcdDatabase::Open(options, shared);
  ASSERT_TRUE(db.ok()) << db.status();
  WriteBatch big;
  for (int i = 0; i < 129; ++i) big.Put("keys", absl::StrCat("k", i), "v");
  EXPECT_EQ((*db)->Write(big).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*db)->Get("keys", "k0").value(), std::nullopt);
  std::vector<std::string> names;
  for (int i = 0; i < 129; ++i) names.push_back(absl::StrCat("k", i));
  std::vector<KeyRef> many;
  for (const std::string& name : names) many.push_back({"keys", name});
  EXPECT_EQ((*db)->MultiGet(many).status().code(), absl::StatusCode::kResourceExhausted);
  many.pop_back();
  EXPECT_TRUE((*db)->MultiGet(many).ok());
  // The keys are where the layout says.
  ASSERT_TRUE((*db)->Put("keys", "k", "v").ok());
  auto raw = shared->Get("coffer/limits/keys/k");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_EQ((*raw)->value, "v");
  options.column_families = {"a/b"};
  EXPECT_EQ(EtcdDatabase::Open(options, shared).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::storage
