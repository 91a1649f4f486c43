// Where a secret's versions live: the labelled ones in its record (what
// every read parses), the deprecated ones beside it (what only writes and
// ListSecretVersionIds with include_deprecated read) — and that every API
// still sees all of them.
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "services/store/secrets/staging_labels.h"
#include "tests/services/store/store_fixture.h"
#include "tests/testing/matchers.h"

namespace coffer::store {
namespace {

namespace sm = ::coffer::secrets::v1;
using ::coffer::internal::store::v1::DeprecatedVersions;
using ::coffer::testing::HasReason;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class SecretVersionsTest : public StoreFixture {
 protected:
  SecretVersionsTest() { secret_options_.max_versions_per_secret = 1000; }

  static std::string Token(int i) {
    return absl::StrCat("token-", 10000 + i, "-padded-to-the-32-chars");
  }

  absl::Status Put(int i, const std::string& value = "") {
    sm::PutSecretValueRequest req;
    req.set_secret_id("s");
    req.set_secret_string(value.empty() ? absl::StrCat("v", i) : value);
    req.set_client_request_token(Token(i));
    return store_->PutSecretValue(req).status();
  }

  absl::StatusOr<std::string> ValueOf(int i) {
    sm::GetSecretValueRequest req;
    req.set_secret_id("s");
    req.set_version_id(Token(i));
    auto resp = store_->GetSecretValue(req);
    if (!resp.ok()) return resp.status();
    return resp->secret_string();
  }

  // The stored record and deprecated list of "s".
  SecretRecord StoredRecord() {
    SecretRecord record;
    auto bytes = db_->Get(schema::kSecrets, "s");
    EXPECT_TRUE(bytes.ok() && bytes->has_value());
    if (bytes.ok() && bytes->has_value()) {
      EXPECT_TRUE(record.ParseFromString(**bytes));
    }
    return record;
  }
  std::vector<std::string> StoredDeprecated() {
    std::vector<std::string> ids;
    auto bytes = db_->Get(schema::kDeprecatedVersions, "s");
    EXPECT_TRUE(bytes.ok());
    if (!bytes.ok() || !bytes->has_value()) return ids;
    DeprecatedVersions list;
    EXPECT_TRUE(list.ParseFromString(**bytes));
    for (const auto& v : list.versions()) ids.push_back(v.version_id());
    return ids;
  }

  // Every version id, newest first, as ListSecretVersionIds pages them.
  std::vector<std::string> AllVersions() {
    std::vector<std::string> ids;
    sm::ListSecretVersionIdsRequest list;
    list.set_secret_id("s");
    list.set_include_deprecated(true);
    list.set_max_results(7);
    do {
      auto page = store_->ListSecretVersionIds(list);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const auto& v : page->versions()) ids.push_back(v.version_id());
      list.set_next_token(page->next_token());
    } while (!list.next_token().empty());
    return ids;
  }

  void CreateWithVersions(int n) {
    sm::CreateSecretRequest create;
    create.set_name("s");
    create.set_secret_string("v0");
    create.set_client_request_token(Token(0));
    ASSERT_TRUE(store_->CreateSecret(create).ok());
    for (int i = 1; i < n; ++i) ASSERT_TRUE(Put(i).ok()) << i;
  }
};
COFFER_STORE_ENGINES(SecretVersionsTest);

TEST_P(SecretVersionsTest, TheRecordHoldsOnlyLabelledVersions) {
  CreateWithVersions(1);
  const size_t one_version_bytes = StoredRecord().ByteSizeLong();
  for (int i = 1; i < 300; ++i) ASSERT_TRUE(Put(i).ok()) << i;
  SecretRecord record = StoredRecord();
  ASSERT_EQ(record.versions_size(), 2);  // AWSCURRENT and AWSPREVIOUS
  EXPECT_EQ(record.versions(0).version_id(), Token(298));
  EXPECT_EQ(record.versions(1).version_id(), Token(299));
  // What a read parses does not grow with the versions kept.
  EXPECT_LT(record.ByteSizeLong(), one_version_bytes + 200);
  std::vector<std::string> deprecated = StoredDeprecated();
  ASSERT_EQ(deprecated.size(), 298u);
  EXPECT_EQ(deprecated.front(), Token(0));
  EXPECT_EQ(deprecated.back(), Token(297));

  // Every API still sees every version.
  std::vector<std::string> all = AllVersions();
  ASSERT_EQ(all.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(all[i], Token(299 - i)) << i;
  EXPECT_EQ(*ValueOf(5), "v5");
  EXPECT_EQ(*ValueOf(299), "v299");
}

TEST_P(SecretVersionsTest, RetriedPutOfADeprecatedVersionIsIdempotent) {
  CreateWithVersions(5);  // tokens 0..4; 0..2 deprecated
  ASSERT_THAT(StoredDeprecated(), ElementsAre(Token(0), Token(1), Token(2)));
  EXPECT_TRUE(Put(1).ok());  // the same value again: nothing changes
  EXPECT_THAT(Put(1, "another value"), HasReason(reason::kResourceExists));
  EXPECT_EQ(AllVersions().size(), 5u);
  sm::UpdateSecretRequest update;
  update.set_secret_id("s");
  update.set_secret_string("new");
  update.set_client_request_token(Token(2));
  EXPECT_THAT(store_->UpdateSecret(update).status(), HasReason(reason::kResourceExists));
  EXPECT_EQ(AllVersions().size(), 5u);
}

TEST_P(SecretVersionsTest, LabelsMoveOntoAndOffDeprecatedVersions) {
  CreateWithVersions(5);
  sm::UpdateSecretVersionStageRequest move;
  move.set_secret_id("s");
  move.set_version_stage("AWSCURRENT");
  move.set_remove_from_version_id(Token(4));
  move.set_move_to_version_id(Token(1));
  ASSERT_TRUE(store_->UpdateSecretVersionStage(move).ok());
  sm::GetSecretValueRequest get;
  get.set_secret_id("s");
  EXPECT_EQ(store_->GetSecretValue(get)->secret_string(), "v1");
  // 1 is current, 4 previous; 3 lost its AWSPREVIOUS and joined 0 and 2.
  SecretRecord record = StoredRecord();
  ASSERT_EQ(record.versions_size(), 2);
  EXPECT_EQ(record.versions(0).version_id(), Token(1));
  EXPECT_EQ(record.versions(1).version_id(), Token(4));
  EXPECT_THAT(StoredDeprecated(), ElementsAre(Token(0), Token(2), Token(3)));
  // Creation order survives the moves.
  EXPECT_THAT(AllVersions(), ElementsAre(Token(4), Token(3), Token(2), Token(1), Token(0)));
}

TEST_P(SecretVersionsTest, DeletingTheSecretRemovesItsDeprecatedVersions) {
  CreateWithVersions(10);
  sm::DeleteSecretRequest force;
  force.set_secret_id("s");
  force.set_force_delete_without_recovery(true);
  ASSERT_TRUE(store_->DeleteSecret(force).ok());
  EXPECT_THAT(StoredDeprecated(), IsEmpty());
  size_t left = 0;
  ASSERT_TRUE(db_->Scan(schema::kVersions, {}, [&](auto, auto) { return ++left, true; }).ok());
  EXPECT_EQ(left, 0u);
}

TEST_P(SecretVersionsTest, RecordsWrittenBeforeTheSplitAreSplitOnTheirNextChange) {
  CreateWithVersions(4);
  // Rewrite the stored data as the earlier format had it: every summary in
  // the record, no ordinals, no deprecated list.
  SecretRecord legacy = StoredRecord();
  auto bytes = db_->Get(schema::kDeprecatedVersions, "s");
  ASSERT_TRUE(bytes.ok() && bytes->has_value());
  DeprecatedVersions list;
  ASSERT_TRUE(list.ParseFromString(**bytes));
  SecretRecord all = legacy;
  all.clear_versions();
  for (const auto& v : list.versions()) *all.add_versions() = v;
  for (const auto& v : legacy.versions()) *all.add_versions() = v;
  for (auto& v : *all.mutable_versions()) v.clear_ordinal();
  ASSERT_TRUE(db_->Put(schema::kSecrets, "s", all.SerializeAsString()).ok());
  ASSERT_TRUE(db_->Delete(schema::kDeprecatedVersions, "s").ok());

  EXPECT_THAT(AllVersions(), ElementsAre(Token(3), Token(2), Token(1), Token(0)));
  EXPECT_EQ(*ValueOf(0), "v0");
  ASSERT_TRUE(Put(4).ok());
  EXPECT_EQ(StoredRecord().versions_size(), 2);
  EXPECT_THAT(StoredDeprecated(), ElementsAre(Token(0), Token(1), Token(2)));
  EXPECT_THAT(AllVersions(), ElementsAre(Token(4), Token(3), Token(2), Token(1), Token(0)));
}

// Many writers of one secret: every put lands once, with its own change
// event, and the labels stay consistent (one AWSCURRENT, one AWSPREVIOUS).
TEST_P(SecretVersionsTest, ConcurrentPutsToOneSecretAllLand) {
  CreateWithVersions(1);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  const auto from = changes_->Watermark();
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!Put(1 + t * kPerThread + i).ok()) failed.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  std::vector<std::string> all = AllVersions();
  EXPECT_EQ(all.size(), 1u + kThreads * kPerThread);
  for (int i = 0; i <= kThreads * kPerThread; ++i) {
    EXPECT_EQ(ValueOf(i).value_or("?"), absl::StrCat("v", i)) << i;
  }
  auto events = changes_->Read(from, 1000);
  ASSERT_TRUE(events.ok()) << events.status();
  std::set<std::string> versions;
  for (const auto& e : *events) versions.insert(e.version());
  EXPECT_EQ(events->size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(versions.size(), static_cast<size_t>(kThreads * kPerThread));
  int current = 0, previous = 0;
  const SecretRecord record = StoredRecord();
  for (const auto& v : record.versions()) {
    for (const auto& stage : v.stages()) {
      current += stage == "AWSCURRENT";
      previous += stage == "AWSPREVIOUS";
    }
  }
  EXPECT_EQ(current, 1);
  EXPECT_EQ(previous, 1);
}

// Changes that queue while one holds the secret's turn are committed
// together; one that fails fails alone and leaves no trace.
TEST_P(SecretVersionsTest, QueuedChangesCommitTogetherAndAFailureFailsAlone) {
  CreateWithVersions(1);
  auto resolved = records_->Resolve("secret_id", "s");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const auto from = changes_->Watermark();
  absl::Notification holding, release;
  std::atomic<int> b_runs{0};
  auto append = [&](const std::string& letter, std::atomic<int>* runs, bool fail) {
    return [&, letter, runs, fail](SecretRecord& r, storage::Transaction&) -> absl::Status {
      if (runs != nullptr) runs->fetch_add(1);
      r.set_description(r.description() + letter);
      if (fail) return absl::InvalidArgumentError("change C fails");
      return absl::OkStatus();
    };
  };
  absl::Status a_result, b_result, c_result, d_result;
  std::thread a([&] {
    a_result = records_->Mutate(*resolved, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
                                  holding.Notify();
                                  release.WaitForNotification();
                                  r.set_description(r.description() + "A");
                                  return absl::OkStatus();
                                });
  });
  holding.WaitForNotification();
  // B, C and D queue behind A, in this order.
  std::thread b([&] {
    b_result = records_->Mutate(*resolved, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                append("B", &b_runs, false));
  });
  absl::SleepFor(absl::Milliseconds(100));
  std::thread c([&] {
    c_result = records_->Mutate(*resolved, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                append("C", nullptr, true));
  });
  absl::SleepFor(absl::Milliseconds(100));
  std::thread d([&] {
    d_result = records_->Mutate(*resolved, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                append("D", nullptr, false));
  });
  absl::SleepFor(absl::Milliseconds(100));
  release.Notify();
  for (std::thread* t : {&a, &b, &c, &d}) t->join();
  EXPECT_TRUE(a_result.ok()) << a_result;
  EXPECT_TRUE(b_result.ok()) << b_result;
  EXPECT_TRUE(absl::IsInvalidArgument(c_result)) << c_result;
  EXPECT_TRUE(d_result.ok()) << d_result;
  EXPECT_EQ(StoredRecord().description(), "ABD");
  // B's change ran in a group with C's: once with it, once more without.
  EXPECT_EQ(b_runs.load(), 2);
  auto events = changes_->Read(from, 100);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(events->size(), 3u);
}

}  // namespace
}  // namespace coffer::store
