// libs/etcd against a real etcd 3.4 (tests/testing/etcd.h): one member for
// the KV, Txn and watch contract, three members for failover and quorum
// loss. Never skipped: CI installs etcd-server (scripts/lib.sh).
#include "tests/testing/etcd.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/etcd/etcd_client.h"
#include "tests/testing/test_env.h"

namespace coffer::etcd {
namespace {

using ::coffer::testing::EtcdCluster;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<EtcdCluster> StartCluster(int members) {
  EXPECT_TRUE(EtcdCluster::Installed()) << "apt-get install etcd-server";
  absl::StatusOr<std::unique_ptr<EtcdCluster>> cluster = EtcdCluster::Start(members);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

std::unique_ptr<EtcdClient> Connect(const EtcdCluster& cluster,
                                    absl::Duration timeout = absl::Seconds(5)) {
  EtcdOptions options;
  options.endpoints = cluster.endpoints();
  options.tls = cluster.client_tls();
  options.timeout = timeout;
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = EtcdClient::Create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// What a watcher delivered, for checks from the test thread.
class Recorder {
 public:
  WatchCallback Callback() {
    return [this](absl::StatusOr<WatchEvent> event) {
      absl::MutexLock lock(&mu_);
      if (event.ok()) {
        events_.push_back(*std::move(event));
      } else {
        errors_.push_back(event.status());
      }
    };
  }
  std::vector<WatchEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<absl::Status> errors() const {
    absl::MutexLock lock(&mu_);
    return errors_;
  }
  bool WaitForEvents(size_t n, absl::Duration timeout = absl::Seconds(15)) const {
    return coffer::testing::WaitFor([&] { return events().size() >= n; }, timeout);
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<WatchEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
};

std::vector<std::string> Keys(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> out;
  for (const KeyValue& kv : kvs) out.push_back(kv.key);
  return out;
}

std::string Describe(const WatchEvent& e) {
  return absl::StrCat(e.type == WatchEvent::Type::kPut ? "put " : "delete ", e.kv.key,
                      e.type == WatchEvent::Type::kPut ? "=" + e.kv.value : "");
}

std::vector<std::string> Describe(const std::vector<WatchEvent>& events) {
  std::vector<std::string> out;
  for (const WatchEvent& e : events) out.push_back(Describe(e));
  return out;
}

TEST(EtcdClient, PutGetDelete) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto etcd = Connect(*cluster);
  ASSERT_NE(etcd, nullptr);

  absl::StatusOr<std::optional<KeyValue>> missing = etcd->Get("/t/a");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());

  absl::StatusOr<int64_t> first = etcd->Put("/t/a", "one");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<int64_t> second = etcd->Put("/t/a", std::string("two\0bytes", 9));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(*second, *first);

  absl::StatusOr<std::optional<KeyValue>> got = etcd->Get("/t/a");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, std::string("two\0bytes", 9));
  EXPECT_EQ((*got)->mod_revision, *second);
  EXPECT_EQ((*got)->create_revision, *first);
  EXPECT_EQ((*got)->version, 2);

  absl::StatusOr<DeleteResult> deleted = etcd->Delete(KeyRange::Key("/t/a"));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->deleted, 1);
  EXPECT_GT(deleted->revision, *second);
  absl::StatusOr<std::optional<KeyValue>> gone = etcd->Get("/t/a");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(gone->has_value());
  absl::StatusOr<DeleteResult> again = etcd->Delete(KeyRange::Key("/t/a"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->deleted, 0);
}

TEST(EtcdClient, RangeWithPrefixLimitAndMore) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto etcd = Connect(*cluster);
  ASSERT_NE(etcd, nullptr);
  for (const char* key : {"/p/a", "/p/b", "/p/c", "/p/d", "/pz", "/q/a"}) {
    ASSERT_TRUE(etcd->Put(key, absl::StrCat("v", key)).ok());
  }

  absl::StatusOr<RangeResult> all = etcd->Range(KeyRange::Prefix("/p/"));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Keys(all->kvs), ElementsAre("/p/a", "/p/b", "/p/c", "/p/d"));
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->count, 4);
  EXPECT_EQ(all->kvs[1].value, "v/p/b");

  RangeOptions limited;
  limited.limit = 3;
  absl::StatusOr<RangeResult> page = etcd->Range(KeyRange::Prefix("/p/"), limited);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Keys(page->kvs), ElementsAre("/p/a", "/p/b", "/p/c"));
  EXPECT_TRUE(page->more);
  EXPECT_EQ(page->count, 4);

  // The next page: [last key + "\0", end of prefix), at the first page's
  // revision so that it reads the same snapshot.
  limited.revision = page->revision;
  absl::StatusOr<RangeResult> rest =
      etcd->Range(KeyRange::Between(page->kvs.back().key + std::string(1, '\0'), "/p0"), limited);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_THAT(Keys(rest->kvs), ElementsAre("/p/d"));
  EXPECT_FALSE(rest->more);

  absl::StatusOr<RangeResult> everything = etcd->Range(KeyRange::Prefix(""));
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_EQ(everything->kvs.size(), 6u);

  // A past revision: the value before an overwrite.
  const int64_t before = everything->revision;
  ASSERT_TRUE(etcd->Put("/p/a", "changed").ok());
  RangeOptions past;
  past.revision = before;
  absl::StatusOr<RangeResult> old = etcd->Range(KeyRange::Key("/p/a"), past);
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_EQ(old->kvs.size(), 1u);
  EXPECT_EQ(old->kvs[0].value, "v/p/a");
}

TEST(EtcdClient, TxnCompareAndSetSucceedsAndConflicts) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto etcd = Connect(*cluster);
  ASSERT_NE(etcd, nullptr);

  // Create only if absent (mod_revision 0).
  absl::StatusOr<TxnResult> created =
      etcd->Txn(TxnBuilder()
                    .If(Compare::ModRevision("/t/k", CompareOp::kEqual, 0))
                    .Then(Op::Put("/t/k", "v1"))
                    .Then(Op::Put("/t/other", "x"))
                    .Else(Op::Get(KeyRange::Key("/t/k"))));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->succeeded);
  ASSERT_EQ(created->responses.size(), 2u);
  EXPECT_EQ(created->responses[0].kind, Op::Kind::kPut);

  absl::StatusOr<std::optional<KeyValue>> read = etcd->Get("/t/k");
  ASSERT_TRUE(read.ok() && read->has_value());
  const int64_t seen = (*read)->mod_revision;
  EXPECT_EQ(seen, created->revision);

  // CAS on the revision read: succeeds.
  absl::StatusOr<TxnResult> cas =
      etcd->Txn(TxnBuilder()
                    .If(Compare::ModRevision("/t/k", CompareOp::kEqual, seen))
                    .If(Compare::Value("/t/k", CompareOp::kEqual, "v1"))
                    .Then(Op::Put("/t/k", "v2"))
                    .Then(Op::Delete(KeyRange::Key("/t/other")))
                    .Else(Op::Get(KeyRange::Key("/t/k"))));
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_TRUE(cas->succeeded);
  ASSERT_EQ(cas->responses.size(), 2u);
  EXPECT_EQ(cas->responses[1].kind, Op::Kind::kDelete);
  EXPECT_EQ(cas->responses[1].deleted, 1);

  // The same CAS again: the key changed since `seen`, a conflict; nothing
  // written, the failure branch's read answers with the current pair.
  absl::StatusOr<TxnResult> conflict =
      etcd->Txn(TxnBuilder()
                    .If(Compare::ModRevision("/t/k", CompareOp::kEqual, seen))
                    .Then(Op::Put("/t/k", "v3"))
                    .Else(Op::Get(KeyRange::Key("/t/k"))));
  ASSERT_TRUE(conflict.ok()) << conflict.status();
  EXPECT_FALSE(conflict->succeeded);
  EXPECT_EQ(conflict->revision, cas->revision);  // nothing was written
  ASSERT_EQ(conflict->responses.size(), 1u);
  ASSERT_EQ(conflict->responses[0].kind, Op::Kind::kRange);
  ASSERT_EQ(conflict->responses[0].kvs.size(), 1u);
  EXPECT_EQ(conflict->responses[0].kvs[0].value, "v2");
  EXPECT_EQ(conflict->responses[0].kvs[0].mod_revision, cas->revision);

  // The other compares.
  absl::StatusOr<TxnResult> version =
      etcd->Txn(TxnBuilder()
                    .If(Compare::Version("/t/k", CompareOp::kGreater, 1))
                    .If(Compare::ModRevision("/t/k", CompareOp::kLess, cas->revision + 1))
                    .If(Compare::Value("/t/k", CompareOp::kNotEqual, "v1")));
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_TRUE(version->succeeded);

  // etcd's own refusal keeps its code: a key put twice in one Txn.
  absl::StatusOr<TxnResult> duplicate =
      etcd->Txn(TxnBuilder().Then(Op::Put("/t/d", "1")).Then(Op::Put("/t/d", "2")));
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kInvalidArgument) << duplicate.status();
  EXPECT_THAT(duplicate.status().message(), HasSubstr("etcd: "));
}

TEST(EtcdClient, OversizedRequestRefusedLocally) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto etcd = Connect(*cluster);
  ASSERT_NE(etcd, nullptr);

  const std::string big(kDefaultMaxRequestBytes, 'x');  // + the key: over the limit
  absl::StatusOr<int64_t> put = etcd->Put("/t/big", big);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted) << put.status();
  // The encoded PutRequest: key 1 + 1 + 6 bytes, value 1 + 3 + 1572864.
  EXPECT_THAT(std::string(put.status().message()),
              HasSubstr("Put request of 1572876 bytes is over etcd's request limit of 1572864"));
  absl::StatusOr<TxnResult> txn = etcd->Txn(TxnBuilder().Then(Op::Put("/t/big", big)));
  EXPECT_EQ(txn.status().code(), absl::StatusCode::kResourceExhausted) << txn.status();

  // Just under the limit goes through (and etcd takes it).
  const std::string fits(kDefaultMaxRequestBytes - 1024, 'y');
  absl::StatusOr<int64_t> ok = etcd->Put("/t/big", fits);
  ASSERT_TRUE(ok.ok()) << ok.status();
  absl::StatusOr<std::optional<KeyValue>> read = etcd->Get("/t/big");
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status();
  EXPECT_EQ((*read)->value.size(), fits.size());
}

TEST(EtcdWatch, PutsAndDeletesInOrderFromARevision) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto etcd = Connect(*cluster);
  ASSERT_NE(etcd, nullptr);

  ASSERT_TRUE(etcd->Put("/w/0-before", "old").ok());  // before the start revision
  absl::StatusOr<int64_t> from = etcd->Put("/w/a", "1");
  ASSERT_TRUE(from.ok());
  ASSERT_TRUE(etcd->Put("/w/b", "2").ok());
  ASSERT_TRUE(etcd->Put("/other", "not watched").ok());

  Recorder recorder;
  auto watcher = etcd->Watch(KeyRange::Prefix("/w/"), *from, recorder.Callback());
  ASSERT_TRUE(recorder.WaitForEvents(2));
  ASSERT_TRUE(etcd->Delete(KeyRange::Key("/w/a")).ok());
  ASSERT_TRUE(etcd->Txn(TxnBuilder().Then(Op::Put("/w/c", "3")).Then(Op::Put("/w/d", "4"))).ok());
  ASSERT_TRUE(etcd->Delete(KeyRange::Between("/w/a", "/w/z")).ok());
  ASSERT_TRUE(recorder.WaitForEvents(8));
  watcher->Stop();

  const std::vector<WatchEvent> events = recorder.events();
  EXPECT_THAT(Describe(events),
              ElementsAre("put /w/a=1", "put /w/b=2", "delete /w/a", "put /w/c=3", "put /w/d=4",
                          "delete /w/b", "delete /w/c", "delete /w/d"));
  EXPECT_EQ(events[0].kv.mod_revision, *from);
  EXPECT_EQ(events[3].kv.mod_revision, events[4].kv.mod_revision);  // one Txn
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GE(events[i].kv.mod_revision, events[i - 1].kv.mod_revision);
  }
  EXPECT_TRUE(recorder.errors().empty());

  // Stop() is final: nothing more arrives.
  ASSERT_TRUE(etcd->Put("/w/e", "5").ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(recorder.events().size(), 8u);
}

TEST(EtcdWatch, CompactedStartRevisionIsReported) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto etcd = Connect(*cluster);
  ASSERT_NE(etcd, nullptr);

  absl::StatusOr<int64_t> early = etcd->Put("/c/a", "1");
  ASSERT_TRUE(early.ok());
  ASSERT_TRUE(etcd->Put("/c/a", "2").ok());
  absl::StatusOr<int64_t> last = etcd->Put("/c/a", "3");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(etcd->Compact(*last).ok());

  RangeOptions past;
  past.revision = *early;
  absl::StatusOr<RangeResult> old = etcd->Range(KeyRange::Key("/c/a"), past);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange) << old.status();

  Recorder recorder;
  auto watcher = etcd->Watch(KeyRange::Prefix("/c/"), *early, recorder.Callback());
  ASSERT_TRUE(
      coffer::testing::WaitFor([&] { return !recorder.errors().empty(); }, absl::Seconds(10)));
  watcher->Stop();
  const std::vector<absl::Status> errors = recorder.errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), absl::StatusCode::kOutOfRange) << errors[0];
  EXPECT_THAT(errors[0].message(), HasSubstr(absl::StrCat("compacted up to revision ", *last)));
  EXPECT_TRUE(recorder.events().empty());  // nothing silently skipped

  // From the compaction revision on, the watch works.
  Recorder fresh;
  auto resumed = etcd->Watch(KeyRange::Prefix("/c/"), *last, fresh.Callback());
  ASSERT_TRUE(fresh.WaitForEvents(1));
  EXPECT_THAT(Describe(fresh.events()), ElementsAre("put /c/a=3"));
}

TEST(EtcdCluster3, WatchResumesThroughAnotherMemberWithoutMissingEvents) {
  auto cluster = StartCluster(3);
  ASSERT_NE(cluster, nullptr);
  auto etcd = Connect(*cluster);
  ASSERT_NE(etcd, nullptr);

  absl::StatusOr<int64_t> from = etcd->Put("/r/0", "v0");
  ASSERT_TRUE(from.ok()) << from.status();
  Recorder recorder;
  auto watcher = etcd->Watch(KeyRange::Prefix("/r/"), *from, recorder.Callback());
  ASSERT_TRUE(recorder.WaitForEvents(1));
  EXPECT_EQ(watcher->endpoint(), cluster->endpoint(0));  // the first endpoint first
  for (int i = 1; i < 5; ++i) {
    ASSERT_TRUE(etcd->Put(absl::StrCat("/r/", i), absl::StrCat("v", i)).ok());
  }
  ASSERT_TRUE(recorder.WaitForEvents(5));

  cluster->Kill(0);  // the member the watch goes through
  // The client keeps working through the others (after an election if the
  // killed member led).
  ASSERT_TRUE(coffer::testing::WaitFor([&] { return cluster->Healthy(1) && cluster->Healthy(2); },
                                       absl::Seconds(15)));
  for (int i = 5; i < 10; ++i) {
    absl::StatusOr<int64_t> put = etcd->Put(absl::StrCat("/r/", i), absl::StrCat("v", i));
    ASSERT_TRUE(put.ok()) << put.status();
  }
  absl::StatusOr<RangeResult> read = etcd->Range(KeyRange::Prefix("/r/"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->kvs.size(), 10u);

  ASSERT_TRUE(recorder.WaitForEvents(10)) << recorder.events().size();
  EXPECT_NE(watcher->endpoint(), cluster->endpoint(0));
  watcher->Stop();
  const std::vector<WatchEvent> events = recorder.events();
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(absl::StrCat("put /r/", i, "=v", i));
  EXPECT_EQ(Describe(events), expected);  // each once, in order
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GT(events[i].kv.mod_revision, events[i - 1].kv.mod_revision);
  }
  EXPECT_TRUE(recorder.errors().empty());
}

TEST(EtcdCluster3, QuorumLossIsUnavailableWithinTheDeadlineThenRecovers) {
  auto cluster = StartCluster(3);
  ASSERT_NE(cluster, nullptr);
  const absl::Duration timeout = absl::Seconds(2);
  auto etcd = Connect(*cluster, timeout);
  ASSERT_NE(etcd, nullptr);
  ASSERT_TRUE(etcd->Put("/q/a", "1").ok());

  cluster->Kill(1);
  // A quorum is left (once it elected a leader, if member 1 led).
  ASSERT_TRUE(coffer::testing::WaitFor([&] { return cluster->Healthy(0) && cluster->Healthy(2); },
                                       absl::Seconds(15)));
  absl::StatusOr<int64_t> one_down = etcd->Put("/q/b", "2");
  ASSERT_TRUE(one_down.ok()) << one_down.status();

  cluster->Kill(2);
  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<int64_t> put = etcd->Put("/q/c", "3");
    EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable) << put.status();
    EXPECT_THAT(put.status().message(), HasSubstr("etcd"));
    absl::StatusOr<std::optional<KeyValue>> get = etcd->Get("/q/a");
    EXPECT_EQ(get.status().code(), absl::StatusCode::kUnavailable) << get.status();
    EXPECT_THAT(get.status().message(), HasSubstr("etcd unavailable"));
    EXPECT_LT(absl::Now() - start, 2 * timeout + absl::Milliseconds(500));
  }

  ASSERT_TRUE(cluster->Restart(1, /*wait_healthy=*/false).ok());
  ASSERT_TRUE(cluster->Restart(2).ok()) << cluster->Log(2);
  absl::StatusOr<int64_t> back;
  ASSERT_TRUE(coffer::testing::WaitFor(
      [&] {
        back = etcd->Put("/q/d", "4");
        return back.ok();
      },
      absl::Seconds(15)))
      << back.status();
  absl::StatusOr<RangeResult> read = etcd->Range(KeyRange::Prefix("/q/"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(Keys(read->kvs), ::testing::IsSupersetOf({"/q/a", "/q/b", "/q/d"}));
}

// A hung member (SIGSTOP: connections open, no answers) takes a read's
// share of the deadline, then the read moves on, a Txn of Ranges as much as
// a Range: neither can have changed anything.
TEST(EtcdCluster3, ReadsMovePastAHungMember) {
  auto cluster = StartCluster(3);
  ASSERT_NE(cluster, nullptr);
  const int leader = cluster->Leader();
  ASSERT_GE(leader, 0);
  const int hung = (leader + 1) % 3;  // a follower: no election needed
  EtcdOptions options;
  options.endpoints = {cluster->endpoint(hung), cluster->endpoint((hung + 1) % 3),
                       cluster->endpoint((hung + 2) % 3)};
  options.tls = cluster->client_tls();
  options.timeout = absl::Seconds(3);
  auto client = EtcdClient::Create(std::move(options));
  ASSERT_TRUE(client.ok()) << client.status();
  EtcdClient& etcd = **client;
  ASSERT_TRUE(etcd.Put("/h/a", "1").ok());  // answered by the first endpoint
  ASSERT_TRUE(etcd.Put("/h/b", "2").ok());

  cluster->Pause(hung);
  TxnBuilder read;
  read.Then(Op::Get(KeyRange::Key("/h/a"))).Then(Op::Get(KeyRange::Key("/h/b")));
  const absl::Time start = absl::Now();
  absl::StatusOr<TxnResult> got = etcd.Txn(read);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->responses.size(), 2u);
  ASSERT_EQ(got->responses[0].kvs.size(), 1u);
  EXPECT_EQ(got->responses[0].kvs[0].value, "1");
  ASSERT_EQ(got->responses[1].kvs.size(), 1u);
  EXPECT_EQ(got->responses[1].kvs[0].value, "2");
  const absl::Duration took = absl::Now() - start;
  EXPECT_GT(took, absl::Milliseconds(500)) << "the hung member answered?";
  EXPECT_LT(took, absl::Seconds(3));
  // The hung member is set aside: the next calls go straight to the others.
  ASSERT_TRUE(etcd.Put("/h/c", "3").ok());
  EXPECT_TRUE(etcd.Get("/h/c").ok());
  cluster->Resume(hung);
}

}  // namespace
}  // namespace coffer::etcd
