// Tests for the change log replicas share on etcd
// (services/store/changes/etcd_change_log.h), over a real etcd member: two
// EtcdChangeLogs on one database play two store replicas.
#include "services/store/changes/etcd_change_log.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"
#include "libs/etcd/etcd_client.h"
#include "libs/storage/etcd_database.h"
#include "libs/storage/key_encoding.h"
#include "services/store/schema.h"
#include "tests/testing/etcd.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

using coffer::v1::ChangeEvent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class EtcdChangeLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::EtcdCluster* etcd = testing::EtcdCluster::Shared();
    ASSERT_NE(etcd, nullptr);
    etcd::EtcdOptions options;
    options.endpoints = etcd->endpoints();
    options.tls = etcd->client_tls();
    auto client = etcd::EtcdClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(client).value();
    prefix_ = absl::StrCat("change-log-test/", NewUuid(), "/");
    for (auto* db : {&db_a_, &db_b_}) {
      storage::EtcdDatabaseOptions db_options;
      db_options.key_prefix = prefix_;
      db_options.column_families = schema::ColumnFamilies();
      auto opened = storage::EtcdDatabase::Open(db_options, client_);
      ASSERT_TRUE(opened.ok()) << opened.status();
      *db = std::move(opened).value();
    }
    Reopen(100);
  }

  void Reopen(uint64_t capacity_a) {
    log_a_.reset();
    log_b_.reset();
    auto a = EtcdChangeLog::Open(db_a_.get(), capacity_a);
    ASSERT_TRUE(a.ok()) << a.status();
    log_a_ = std::move(a).value();
    auto b = EtcdChangeLog::Open(db_b_.get());
    ASSERT_TRUE(b.ok()) << b.status();
    log_b_ = std::move(b).value();
  }

  // One write through `log` with an event per name, in order.
  void Commit(storage::EtcdDatabase* db, EtcdChangeLog* log, std::vector<std::string> names) {
    absl::Status s = log->Commit(db, RealClock(), coffer::v1::RESOURCE_KIND_SECRET, names.size(),
                                 [&](storage::Transaction& txn, std::vector<ChangeEvent>* events) {
                                   for (const std::string& name : names) {
                                     txn.Put(schema::kSecrets, name, "record");
                                     ChangeEvent event;
                                     event.set_name(name);
                                     event.set_kind(coffer::v1::CHANGE_KIND_CREATED);
                                     events->push_back(event);
                                   }
                                   return absl::OkStatus();
                                 });
    ASSERT_TRUE(s.ok()) << s;
  }

  static std::vector<std::string> Names(const std::vector<ChangeEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.name());
    return out;
  }

  std::vector<ChangeEvent> ReadAll(ChangeLog& log, uint64_t after = 0) {
    auto events = log.Read(after, 1000);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.value_or(std::vector<ChangeEvent>());
  }

  std::shared_ptr<etcd::EtcdClient> client_;
  std::string prefix_;
  std::unique_ptr<storage::EtcdDatabase> db_a_, db_b_;
  std::unique_ptr<EtcdChangeLog> log_a_, log_b_;
};

TEST_F(EtcdChangeLogTest, EveryReplicaGivesAnEventTheSamePosition) {
  Commit(db_a_.get(), log_a_.get(), {"a1", "a2", "a3"});  // one write, three events
  Commit(db_b_.get(), log_b_.get(), {"b1"});
  Commit(db_a_.get(), log_a_.get(), {"a4", "a5"});

  // Each replica sees its own writes at once, the other's within its watch.
  const uint64_t last = log_a_->Watermark();
  ASSERT_GE(log_b_->AwaitWatermark(last, absl::Seconds(5)), last);
  std::vector<ChangeEvent> a = ReadAll(*log_a_);
  std::vector<ChangeEvent> b = ReadAll(*log_b_);
  EXPECT_THAT(Names(a), ElementsAre("a1", "a2", "a3", "b1", "a4", "a5"));
  ASSERT_EQ(a.size(), b.size());
  uint64_t previous = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].position(), b[i].position()) << i;
    EXPECT_EQ(a[i].name(), b[i].name()) << i;
    EXPECT_EQ(a[i].resource_kind(), coffer::v1::RESOURCE_KIND_SECRET);
    EXPECT_TRUE(a[i].has_time());
    auto position = ChangeLog::DecodePosition("p", a[i].position());
    ASSERT_TRUE(position.ok());
    EXPECT_GT(*position, previous);
    previous = *position;
  }
  // The events of one write share a revision and follow each other.
  auto p0 = ChangeLog::DecodePosition("p", a[0].position());
  auto p2 = ChangeLog::DecodePosition("p", a[2].position());
  EXPECT_EQ(*p2 - *p0, 2u);

  // Resuming in the middle, on either replica, gives the rest.
  EXPECT_THAT(Names(ReadAll(*log_b_, *p2)), ElementsAre("b1", "a4", "a5"));
  EXPECT_THAT(Names(ReadAll(*log_a_, *p2)), ElementsAre("b1", "a4", "a5"));
  // Nothing beyond the newest position.
  EXPECT_TRUE(ReadAll(*log_a_, previous).empty());
}

TEST_F(EtcdChangeLogTest, PositionsSurviveARestart) {
  Commit(db_a_.get(), log_a_.get(), {"x", "y"});
  Commit(db_b_.get(), log_b_.get(), {"z"});
  ASSERT_GE(log_a_->AwaitWatermark(log_b_->Watermark(), absl::Seconds(5)), log_b_->Watermark());
  const std::vector<ChangeEvent> before = ReadAll(*log_a_);
  Reopen(100);  // both replicas restart: they read the log from etcd
  const std::vector<ChangeEvent> after = ReadAll(*log_b_);
  ASSERT_EQ(before.size(), 3u);
  ASSERT_EQ(after.size(), 3u);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(before[i].position(), after[i].position());
    EXPECT_EQ(before[i].name(), after[i].name());
  }
  // New writes come after every old position.
  Commit(db_a_.get(), log_a_.get(), {"w"});
  const std::vector<ChangeEvent> more =
      ReadAll(*log_a_, *ChangeLog::DecodePosition("p", before.back().position()));
  EXPECT_THAT(Names(more), ElementsAre("w"));
}

TEST_F(EtcdChangeLogTest, TrimDeletesBeyondCapacityAndOlderPositionsAreOutOfRange) {
  Reopen(/*capacity_a=*/3);
  for (int i = 0; i < 7; ++i) Commit(db_a_.get(), log_a_.get(), {absl::StrCat("e", i)});
  const std::vector<ChangeEvent> all = ReadAll(*log_a_);
  ASSERT_EQ(all.size(), 7u);
  auto trimmed = log_a_->Trim();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 4u);
  EXPECT_EQ(*log_a_->Trim(), 0u);  // nothing more to do

  // The kept events, on both replicas; an older position is OUT_OF_RANGE.
  const uint64_t before_kept = *ChangeLog::DecodePosition("p", all[3].position());
  EXPECT_THAT(Names(ReadAll(*log_a_, before_kept)), ElementsAre("e4", "e5", "e6"));
  auto old = log_a_->Read(*ChangeLog::DecodePosition("p", all[1].position()), 10);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(old.status().message(), HasSubstr("older than the retained change log"));
  // A reader that saw the last event deleted misses nothing.
  EXPECT_TRUE(
      testing::WaitFor([&] { return log_b_->Oldest() == before_kept + 1; }, absl::Seconds(5)));
  EXPECT_EQ(log_b_->Read(0, 10).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(Names(ReadAll(*log_b_, before_kept)), ElementsAre("e4", "e5", "e6"));

  // In etcd: the three events and the trim mark; a restarted replica
  // knows what was trimmed.
  etcd::RangeOptions count;
  count.count_only = true;
  auto stored =
      client_->Range(etcd::KeyRange::Prefix(absl::StrCat(prefix_, schema::kChanges, "/")), count);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->count, 4);
  Reopen(3);
  EXPECT_EQ(log_b_->Oldest(), before_kept + 1);
  EXPECT_EQ(log_b_->Read(0, 10).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(Names(ReadAll(*log_b_, before_kept)), ElementsAre("e4", "e5", "e6"));
}

// A replica that moved the trim mark and died before deleting leaves event
// keys that no reader can ask for, and that the other replicas' watches have
// dropped: the next replica to load the log deletes them.
TEST_F(EtcdChangeLogTest, EventsADeadReplicaLeftBelowTheMarkAreDeletedOnTheNextLoad) {
  auto stored_events = [&] {
    etcd::RangeOptions count;
    count.count_only = true;
    auto stored =
        client_->Range(etcd::KeyRange::Prefix(absl::StrCat(prefix_, schema::kChanges, "/")), count);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? stored->count - 1 : -1;  // less the trim mark
  };
  for (int i = 0; i < 6; ++i) Commit(db_a_.get(), log_a_.get(), {absl::StrCat("e", i)});
  const std::vector<ChangeEvent> all = ReadAll(*log_a_);
  ASSERT_EQ(all.size(), 6u);
  const uint64_t mark = *ChangeLog::DecodePosition("p", all[2].position());
  ASSERT_TRUE(db_b_->Put(schema::kChanges, "", storage::BigEndian64(mark)).ok());
  EXPECT_TRUE(testing::WaitFor([&] { return log_a_->Oldest() == mark + 1; }, absl::Seconds(5)));
  EXPECT_EQ(stored_events(), 6);
  Reopen(100);
  EXPECT_EQ(stored_events(), 3);
  EXPECT_THAT(Names(ReadAll(*log_b_, mark)), ElementsAre("e3", "e4", "e5"));
  EXPECT_EQ(log_b_->Read(0, 10).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(EtcdChangeLogTest, TrimDeletesWholeWritesSoEveryReplicaKeepsThePositions) {
  Reopen(/*capacity_a=*/2);
  Commit(db_a_.get(), log_a_.get(), {"a1"});
  Commit(db_a_.get(), log_a_.get(), {"b1", "b2", "b3"});  // one write
  const std::vector<ChangeEvent> before = ReadAll(*log_a_);
  ASSERT_EQ(before.size(), 4u);
  // Two events over capacity, but the second is part of b's write: only a1
  // goes.
  auto trimmed = log_a_->Trim();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 1u);
  EXPECT_THAT(Names(ReadAll(*log_a_, *ChangeLog::DecodePosition("p", before[0].position()))),
              ElementsAre("b1", "b2", "b3"));
  // A replica reading the log afresh gives b's events the same positions.
  Reopen(2);
  const std::vector<ChangeEvent> after =
      ReadAll(*log_b_, *ChangeLog::DecodePosition("p", before[0].position()));
  ASSERT_EQ(after.size(), 3u);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].position(), before[i + 1].position()) << i;
    EXPECT_EQ(after[i].name(), before[i + 1].name()) << i;
  }
  // Even a capacity of one event does not cut a write in two.
  auto small = EtcdChangeLog::Open(db_b_.get(), /*capacity=*/1);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(*(*small)->Trim(), 0u);
  EXPECT_EQ(log_b_->Oldest(), *ChangeLog::DecodePosition("p", before[0].position()) + 1);
}

TEST_F(EtcdChangeLogTest, AWriteWithoutEventsAndAFailedChangeLeaveNoEvent) {
  absl::Status quiet = log_a_->Commit(db_a_.get(), RealClock(), coffer::v1::RESOURCE_KIND_SECRET, 1,
                                      [](storage::Transaction& txn, std::vector<ChangeEvent>*) {
                                        txn.Put(schema::kSecrets, "quiet", "record");
                                        return absl::OkStatus();
                                      });
  ASSERT_TRUE(quiet.ok()) << quiet;
  absl::Status failed =
      log_a_->Commit(db_a_.get(), RealClock(), coffer::v1::RESOURCE_KIND_SECRET, 1,
                     [](storage::Transaction& txn, std::vector<ChangeEvent>* events) {
                       ChangeEvent event;
                       event.set_name("never");
                       events->push_back(event);
                       return absl::FailedPreconditionError("refused");
                     });
  EXPECT_EQ(failed.code(), absl::StatusCode::kFailedPrecondition);
  Commit(db_a_.get(), log_a_.get(), {"after"});
  EXPECT_THAT(Names(ReadAll(*log_a_)), ElementsAre("after"));
  // More events than a write may hold are refused before anything is written.
  absl::Status too_many = log_a_->Commit(
      db_a_.get(), RealClock(), coffer::v1::RESOURCE_KIND_SECRET,
      EtcdChangeLog::kMaxEventsPerWrite + 1,
      [](storage::Transaction&, std::vector<ChangeEvent>*) { return absl::OkStatus(); });
  EXPECT_EQ(too_many.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EtcdChangeLogTest, AwaitWatermarkGivesUpAfterItsTimeout) {
  Commit(db_a_.get(), log_a_.get(), {"one"});
  const uint64_t now = log_a_->Watermark();
  const absl::Time start = absl::Now();
  EXPECT_EQ(log_a_->AwaitWatermark(now + (1u << 20), absl::Milliseconds(200)), now);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
}

}  // namespace
}  // namespace coffer::store
