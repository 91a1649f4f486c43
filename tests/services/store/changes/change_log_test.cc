// Tests for the change log (services/store/changes/change_log.h) over real RocksDB,
// and for WatchReactor (services/store/changes/watch_stream.h) over a real in-process
// gRPC stream: a test-only ParameterStore whose WatchParameters is the
// reactor.
#include "services/store/changes/change_log.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/storage/database.h"
#include "services/store/changes/watch_stream.h"
#include "services/store/schema.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

using coffer::v1::ChangeEvent;
using ::testing::HasSubstr;

ChangeEvent MakeEvent(const std::string& name) {
  ChangeEvent event;
  event.set_resource_kind(coffer::v1::RESOURCE_KIND_PARAMETER);
  event.set_name(name);
  event.set_version("1");
  event.set_kind(coffer::v1::CHANGE_KIND_CREATED);
  event.mutable_time()->set_seconds(1700000000);
  return event;
}

// Stages `event` under `ticket` in a transaction that commits.
void Commit(storage::Database& db, LocalChangeLog& log, const LocalChangeLog::Ticket& ticket,
            const std::string& name) {
  ASSERT_TRUE(db.RunTransaction([&](storage::Transaction& txn) {
                  log.Stage(txn, ticket, MakeEvent(name));
                  return absl::OkStatus();
                }).ok());
}

std::vector<std::string> Positions(const std::vector<ChangeEvent>& events) {
  std::vector<std::string> out;
  for (const auto& event : events) out.push_back(event.position());
  return out;
}

std::vector<std::string> Names(const std::vector<ChangeEvent>& events) {
  std::vector<std::string> out;
  for (const auto& event : events) out.push_back(event.name());
  return out;
}

class ChangeLogTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(uint64_t capacity = 100000) {
    log_.reset();
    db_.reset();
    storage::DatabaseOptions options;
    options.path = dir_.Join("db");
    options.column_families = {schema::kChanges};
    options.sync_writes = false;
    db_ = std::move(storage::Database::Open(options)).value();
    log_ = std::move(LocalChangeLog::Open(db_.get(), capacity)).value();
  }

  // Reserve, stage in a committed transaction, finish. Returns the position.
  uint64_t Publish(const std::string& name) {
    LocalChangeLog::Ticket ticket = log_->Reserve();
    Commit(*db_, *log_, ticket, name);
    log_->Finish(ticket);
    return ticket.sequence;
  }

  std::vector<ChangeEvent> ReadOk(uint64_t after, size_t limit = 1000) {
    auto events = log_->Read(after, limit);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.value_or(std::vector<ChangeEvent>());
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<LocalChangeLog> log_;
};

TEST_F(ChangeLogTest, ReserveStageFinishInOrder) {
  EXPECT_EQ(log_->Watermark(), 0u);
  EXPECT_EQ(log_->Oldest(), 0u);
  EXPECT_TRUE(ReadOk(0).empty());

  EXPECT_EQ(Publish("/a"), 1u);
  EXPECT_EQ(Publish("/b"), 2u);
  EXPECT_EQ(Publish("/c"), 3u);
  EXPECT_EQ(log_->Watermark(), 3u);
  EXPECT_EQ(log_->Oldest(), 1u);

  std::vector<ChangeEvent> events = ReadOk(0);
  EXPECT_EQ(Positions(events), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Names(events), (std::vector<std::string>{"/a", "/b", "/c"}));
  EXPECT_EQ(events[0].kind(), coffer::v1::CHANGE_KIND_CREATED);
  EXPECT_EQ(events[0].time().seconds(), 1700000000);

  EXPECT_EQ(Positions(ReadOk(1, 1)), (std::vector<std::string>{"2"}));
  EXPECT_TRUE(ReadOk(3).empty());
  EXPECT_TRUE(ReadOk(50).empty());  // Ahead of the watermark: nothing yet.
  EXPECT_TRUE(ReadOk(0, 0).empty());
}

TEST_F(ChangeLogTest, OutOfOrderFinishHoldsTheWatermark) {
  LocalChangeLog::Ticket t1 = log_->Reserve();
  LocalChangeLog::Ticket t2 = log_->Reserve();
  LocalChangeLog::Ticket t3 = log_->Reserve();
  EXPECT_EQ(t1.sequence, 1u);
  EXPECT_EQ(t2.sequence, 2u);
  EXPECT_EQ(t3.sequence, 3u);
  Commit(*db_, *log_, t3, "/three");
  Commit(*db_, *log_, t1, "/one");

  log_->Finish(t3);
  EXPECT_EQ(log_->Watermark(), 0u);
  EXPECT_TRUE(ReadOk(0).empty());

  log_->Finish(t1);
  EXPECT_EQ(log_->Watermark(), 1u);
  EXPECT_EQ(Names(ReadOk(0)), (std::vector<std::string>{"/one"}));

  // 3 is committed but 2 is not finished: 3 must stay invisible.
  Commit(*db_, *log_, t2, "/two");
  EXPECT_TRUE(ReadOk(1).empty());
  log_->Finish(t2);
  EXPECT_EQ(log_->Watermark(), 3u);
  EXPECT_EQ(Names(ReadOk(1)), (std::vector<std::string>{"/two", "/three"}));
}

TEST_F(ChangeLogTest, AbandonedTicketLeavesAHoleThatReadSkips) {
  Publish("/one");
  LocalChangeLog::Ticket failed = log_->Reserve();
  absl::Status status = db_->RunTransaction([&](storage::Transaction& txn) {
    log_->Stage(txn, failed, MakeEvent("/never"));
    return absl::FailedPreconditionError("the change itself failed");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  Publish("/three");
  EXPECT_EQ(log_->Watermark(), 1u);  // Held by the unfinished ticket.
  log_->Finish(failed);
  EXPECT_EQ(log_->Watermark(), 3u);

  std::vector<ChangeEvent> events = ReadOk(0);
  EXPECT_EQ(Positions(events), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(Names(ReadOk(1)), (std::vector<std::string>{"/three"}));
  EXPECT_EQ(Positions(ReadOk(2)), (std::vector<std::string>{"3"}));
}

TEST_F(ChangeLogTest, PositionsContinueAfterRestart) {
  Publish("/a");
  Publish("/b");
  Publish("/c");
  Open();
  EXPECT_EQ(log_->Watermark(), 3u);
  EXPECT_EQ(log_->Oldest(), 1u);
  EXPECT_EQ(Publish("/d"), 4u);
  EXPECT_EQ(Names(ReadOk(1)), (std::vector<std::string>{"/b", "/c", "/d"}));
  EXPECT_EQ(Positions(ReadOk(0)), (std::vector<std::string>{"1", "2", "3", "4"}));
}

TEST_F(ChangeLogTest, TrimDropsOldEventsAndOldPositionsAreOutOfRange) {
  Open(/*capacity=*/3);
  for (int i = 1; i <= 10; ++i) Publish(absl::StrCat("/p", i));
  auto trimmed = log_->Trim();
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(*trimmed, 7u);
  EXPECT_EQ(log_->Oldest(), 8u);
  EXPECT_EQ(*log_->Trim(), 0u);

  EXPECT_EQ(Names(ReadOk(7)), (std::vector<std::string>{"/p8", "/p9", "/p10"}));
  EXPECT_TRUE(ReadOk(10).empty());
  auto old = log_->Read(5, 100);
  ASSERT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(old.status().message()),
              HasSubstr("position 5 is older than the retained change log (oldest 8)"));
  EXPECT_EQ(log_->Read(6, 100).status().code(), absl::StatusCode::kOutOfRange);

  // The same after a restart.
  Open(/*capacity=*/3);
  EXPECT_EQ(log_->Oldest(), 8u);
  EXPECT_EQ(log_->Watermark(), 10u);
  EXPECT_EQ(log_->Read(6, 100).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Publish("/p11"), 11u);

  EXPECT_EQ(WatchReactor::StartPosition(*log_, "").value(), 11u);
  EXPECT_EQ(WatchReactor::StartPosition(*log_, "7").value(), 7u);
  EXPECT_EQ(WatchReactor::StartPosition(*log_, "5").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(WatchReactor::StartPosition(*log_, "11").value(), 11u);
  EXPECT_EQ(WatchReactor::StartPosition(*log_, "12").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(WatchReactor::StartPosition(*log_, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ChangeLogTest, TrimKeepsTheNewestEventSoPositionsSurviveRestart) {
  Open(/*capacity=*/1);
  Publish("/a");
  Publish("/b");
  Publish("/c");
  LocalChangeLog::Ticket abandoned = log_->Reserve();
  log_->Finish(abandoned);  // Position 4 holds nothing.
  EXPECT_EQ(log_->Watermark(), 4u);
  EXPECT_EQ(*log_->Trim(), 2u);  // Keeps 3, the newest stored event.
  Open(/*capacity=*/1);
  EXPECT_EQ(log_->Watermark(), 3u);
  EXPECT_EQ(Names(ReadOk(2)), (std::vector<std::string>{"/c"}));
  EXPECT_GE(Publish("/d"), 4u);
}

TEST_F(ChangeLogTest, TrimDeletesInChunks) {
  Open(/*capacity=*/5);
  // More than one 10,000-key chunk, written in a few big transactions.
  constexpr int kEvents = 10010;
  std::vector<LocalChangeLog::Ticket> tickets;
  for (int i = 0; i < kEvents; ++i) tickets.push_back(log_->Reserve());
  for (int start = 0; start < kEvents; start += 2000) {
    ASSERT_TRUE(db_->RunTransaction([&](storage::Transaction& txn) {
                     for (int i = start; i < std::min(kEvents, start + 2000); ++i) {
                       log_->Stage(txn, tickets[i], MakeEvent("/bulk"));
                     }
                     return absl::OkStatus();
                   })
                    .ok());
  }
  for (const auto& ticket : tickets) log_->Finish(ticket);
  EXPECT_EQ(*log_->Trim(), static_cast<uint64_t>(kEvents - 5));
  EXPECT_EQ(ReadOk(kEvents - 5).size(), 5u);
  Open(/*capacity=*/5);
  EXPECT_EQ(log_->Oldest(), static_cast<uint64_t>(kEvents - 4));
}

// Trim resumes after the last key it deleted instead of scanning from the
// first key, over the tombstones of every event trimmed before (RocksDB keeps
// them until compaction; while a million secrets were created, those scans
// took 5-10 % of the store's CPU). A key left below that point, as a trim
// interrupted in an earlier process would leave it (planted here), is not
// looked at again; the first Trim after Open starts from the first key and
// deletes it.
TEST_F(ChangeLogTest, TrimResumesWhereTheLastOneEndedAndSweepsLeftoversAfterOpen) {
  Open(/*capacity=*/2);
  for (int i = 1; i <= 10; ++i) Publish(absl::StrCat("/p", i));
  ASSERT_EQ(*log_->Trim(), 8u);  // keeps 9 and 10
  ASSERT_TRUE(
      db_->Put(schema::kChanges, schema::ChangeKey(3), MakeEvent("/left").SerializeAsString())
          .ok());
  for (int i = 11; i <= 14; ++i) Publish(absl::StrCat("/p", i));
  EXPECT_EQ(*log_->Trim(), 4u);  // 9 to 12; the scan starts after 8
  EXPECT_EQ(Names(ReadOk(12)), (std::vector<std::string>{"/p13", "/p14"}));
  EXPECT_TRUE(db_->Get(schema::kChanges, schema::ChangeKey(3)).value().has_value());

  Open(/*capacity=*/2);
  EXPECT_EQ(log_->Oldest(), 3u);
  EXPECT_EQ(Publish("/p15"), 15u);
  EXPECT_EQ(*log_->Trim(), 2u);  // the leftover 3, and 13
  EXPECT_FALSE(db_->Get(schema::kChanges, schema::ChangeKey(3)).value().has_value());
  EXPECT_EQ(log_->Oldest(), 14u);
  EXPECT_EQ(Names(ReadOk(13)), (std::vector<std::string>{"/p14", "/p15"}));
}

TEST_F(ChangeLogTest, DecodePosition) {
  EXPECT_EQ(ChangeLog::DecodePosition("start_after", "0").value(), 0u);
  EXPECT_EQ(ChangeLog::DecodePosition("start_after", "42").value(), 42u);
  EXPECT_EQ(ChangeLog::DecodePosition("start_after", "18446744073709551615").value(),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(ChangeLog::EncodePosition(1234567), "1234567");
  EXPECT_EQ(ChangeLog::DecodePosition("f", ChangeLog::EncodePosition(987)).value(), 987u);
  for (const char* bad : {"", "abc", "-1", "+1", " 1", "1 ", "1.5", "0x10", "18446744073709551616",
                          "123456789012345678901"}) {
    auto decoded = ChangeLog::DecodePosition("start_after", bad);
    ASSERT_FALSE(decoded.ok()) << "'" << bad << "'";
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(decoded.status().message()), HasSubstr("start_after")) << bad;
  }
}

TEST_F(ChangeLogTest, ConcurrentWritersAreSeenExactlyOnceInOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  constexpr int kTotal = kThreads * kPerThread;

  std::atomic<bool> reader_ok{true};
  std::vector<std::string> seen;
  std::thread reader([&] {
    uint64_t position = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (static_cast<int>(seen.size()) < kTotal && absl::Now() < deadline) {
      auto events = log_->Read(position, 37);
      if (!events.ok()) {
        reader_ok = false;
        return;
      }
      if (events->empty()) absl::SleepFor(absl::Microseconds(200));
      for (const ChangeEvent& event : *events) {
        const uint64_t next = ChangeLog::DecodePosition("p", event.position()).value();
        // Every reservation commits, so there are no holes: exactly the next one.
        if (next != position + 1) reader_ok = false;
        position = next;
        seen.push_back(event.name());
      }
    }
  });

  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        LocalChangeLog::Ticket ticket = log_->Reserve();
        absl::Status status = db_->RunTransaction([&](storage::Transaction& txn) {
          log_->Stage(txn, ticket, MakeEvent(absl::StrCat("/w", t, "/", i)));
          return absl::OkStatus();
        });
        log_->Finish(ticket);
        EXPECT_TRUE(status.ok()) << status;
      }
    });
  }
  for (auto& writer : writers) writer.join();
  reader.join();

  EXPECT_TRUE(reader_ok);
  ASSERT_EQ(static_cast<int>(seen.size()), kTotal);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());
  EXPECT_EQ(log_->Watermark(), static_cast<uint64_t>(kTotal));
}

TEST_F(ChangeLogTest, SubscribersAreCalledOnAdvanceUntilUnsubscribed) {
  std::atomic<int> calls{0};
  auto subscription = log_->Subscribe([&] { ++calls; });
  Publish("/a");
  EXPECT_EQ(calls.load(), 1);

  // A finish that does not move the watermark does not wake anyone.
  LocalChangeLog::Ticket t1 = log_->Reserve();
  LocalChangeLog::Ticket t2 = log_->Reserve();
  log_->Finish(t2);
  EXPECT_EQ(calls.load(), 1);
  log_->Finish(t1);
  EXPECT_EQ(calls.load(), 2);

  // A subscriber may drop its own subscription from inside its callback.
  std::unique_ptr<ChangeLog::Subscription> self_dropping;
  std::atomic<int> self_calls{0};
  self_dropping = log_->Subscribe([&] {
    ++self_calls;
    self_dropping.reset();
  });
  Publish("/b");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(self_calls.load(), 1);

  subscription.reset();
  Publish("/c");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(self_calls.load(), 1);
}

TEST_F(ChangeLogTest, UnsubscribeWaitsForARunningCallback) {
  absl::Notification entered;
  absl::Notification release;
  std::atomic<bool> callback_finished{false};
  auto subscription = log_->Subscribe([&] {
    entered.Notify();
    release.WaitForNotification();
    callback_finished = true;
  });
  std::thread publisher([&] { Publish("/a"); });
  entered.WaitForNotification();
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(50));
    release.Notify();
  });
  subscription.reset();  // Must not return while the callback runs.
  EXPECT_TRUE(callback_finished);
  publisher.join();
  releaser.join();
}

// --- WatchReactor over a real gRPC stream --------------------------------

namespace params = coffer::params::v1;

// WatchParameters as the store wires it: StartPosition, then a WatchReactor
// filtered by path prefix. `check_start = false` skips StartPosition so the
// reactor itself meets a trimmed position.
class TestParameterStore final : public params::ParameterStore::CallbackService {
 public:
  TestParameterStore(ChangeLog* log, WatchRegistry* registry) : log_(log), registry_(registry) {}

  grpc::ServerWriteReactor<ChangeEvent>* WatchParameters(
      grpc::CallbackServerContext*, const params::WatchParametersRequest* request) override {
    uint64_t start = 0;
    if (check_start) {
      auto position = WatchReactor::StartPosition(*log_, request->start_after());
      if (!position.ok()) return WatchReactor::Failed(position.status());
      start = *position;
    } else {
      start = ChangeLog::DecodePosition("start_after", request->start_after()).value();
    }
    std::string path = request->path();
    return new WatchReactor(
        log_, start,
        [path](const ChangeEvent& event) { return absl::StartsWith(event.name(), path); },
        registry_);
  }

  std::atomic<bool> check_start{true};

 private:
  ChangeLog* log_;
  WatchRegistry* registry_;
};

class WatchReactorTest : public ChangeLogTest {
 protected:
  void SetUp() override {
    ChangeLogTest::SetUp();
    StartServer();
  }

  void TearDown() override { StopServer(); }

  void StartServer() {
    registry_ = std::make_unique<WatchRegistry>();
    service_ = std::make_unique<TestParameterStore>(log_.get(), registry_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    stub_ = params::ParameterStore::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void StopServer() {
    if (server_ == nullptr) return;
    registry_->StopAll();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
    server_.reset();
    EXPECT_EQ(registry_->size(), 0u);
    registry_.reset();
    service_.reset();
  }

  struct Call {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<ChangeEvent>> reader;
  };

  // Starts a watch; when `start_after` is empty, waits until the server
  // holds the stream (so changes made afterwards are "after the call").
  std::unique_ptr<Call> Watch(const std::string& path, const std::string& start_after = "",
                              size_t open_before = 0) {
    auto call = std::make_unique<Call>();
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    params::WatchParametersRequest request;
    request.set_path(path);
    request.set_recursive(true);
    request.set_start_after(start_after);
    call->reader = stub_->WatchParameters(&call->context, request);
    EXPECT_TRUE(
        testing::WaitFor([&] { return registry_->size() == open_before + 1; }, absl::Seconds(5)));
    return call;
  }

  std::vector<ChangeEvent> ReadN(Call& call, int n) {
    std::vector<ChangeEvent> events;
    for (int i = 0; i < n; ++i) {
      ChangeEvent event;
      if (!call.reader->Read(&event)) {
        ADD_FAILURE() << "stream ended after " << i << " of " << n
                      << " events: " << call.reader->Finish().error_message();
        break;
      }
      events.push_back(std::move(event));
    }
    return events;
  }

  std::unique_ptr<WatchRegistry> registry_;
  std::unique_ptr<TestParameterStore> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<params::ParameterStore::Stub> stub_;
};

TEST_F(WatchReactorTest, StreamsChangesAfterTheCallAndResumesWithoutGapsOrRepeats) {
  Publish("/app/before1");
  Publish("/app/before2");
  auto first = Watch("/");
  for (int i = 1; i <= 5; ++i) Publish(absl::StrCat("/app/", i));

  std::vector<ChangeEvent> got = ReadN(*first, 3);
  EXPECT_EQ(Names(got), (std::vector<std::string>{"/app/1", "/app/2", "/app/3"}));
  EXPECT_EQ(Positions(got), (std::vector<std::string>{"3", "4", "5"}));
  EXPECT_EQ(got[0].kind(), coffer::v1::CHANGE_KIND_CREATED);
  const std::string resume_at = got.back().position();

  // The client goes away; the server ends the stream.
  first->context.TryCancel();
  ChangeEvent ignored;
  while (first->reader->Read(&ignored)) {
  }
  EXPECT_EQ(first->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(testing::WaitFor([&] { return registry_->size() == 0; }, absl::Seconds(5)));

  Publish("/app/6");
  Publish("/app/7");
  auto second = Watch("/", resume_at);
  got = ReadN(*second, 4);
  EXPECT_EQ(Names(got), (std::vector<std::string>{"/app/4", "/app/5", "/app/6", "/app/7"}));
  // Caught up: the stream waits, then delivers the next change, and nothing
  // in between.
  Publish("/app/8");
  got = ReadN(*second, 1);
  EXPECT_EQ(Names(got), (std::vector<std::string>{"/app/8"}));
  EXPECT_EQ(Positions(got), (std::vector<std::string>{"10"}));

  const absl::Time stop_started = absl::Now();
  registry_->StopAll();
  EXPECT_FALSE(second->reader->Read(&ignored));
  grpc::Status status = second->reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_LT(absl::Now() - stop_started, absl::Seconds(2));
}

TEST_F(WatchReactorTest, FilterSkipsOtherEventsButAdvances) {
  auto call = Watch("/a/");
  Publish("/b/1");
  Publish("/a/1");
  Publish("/b/2");
  Publish("/a/2");
  EXPECT_EQ(Positions(ReadN(*call, 2)), (std::vector<std::string>{"2", "4"}));
  for (int i = 0; i < 250; ++i) Publish("/b/many");  // More than one read batch.
  Publish("/a/3");
  std::vector<ChangeEvent> got = ReadN(*call, 1);
  EXPECT_EQ(Names(got), (std::vector<std::string>{"/a/3"}));
  EXPECT_EQ(Positions(got), (std::vector<std::string>{"255"}));
}

TEST_F(WatchReactorTest, ConcurrentWritersWhileStreaming) {
  auto call = Watch("/");
  constexpr int kThreads = 2;
  constexpr int kPerThread = 150;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) Publish(absl::StrCat("/w", t, "/", i));
    });
  }
  std::vector<ChangeEvent> got = ReadN(*call, kThreads * kPerThread);
  for (auto& writer : writers) writer.join();
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].position(), absl::StrCat(i + 1));
  }
  std::vector<std::string> names = Names(got);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
}

TEST_F(WatchReactorTest, TrimmedStartIsOutOfRange) {
  StopServer();
  Open(/*capacity=*/3);
  StartServer();
  for (int i = 1; i <= 10; ++i) Publish(absl::StrCat("/p", i));
  ASSERT_EQ(*log_->Trim(), 7u);

  // Rejected up front by StartPosition.
  {
    grpc::ClientContext context;
    params::WatchParametersRequest request;
    request.set_path("/");
    request.set_start_after("2");
    auto reader = stub_->WatchParameters(&context, request);
    ChangeEvent event;
    EXPECT_FALSE(reader->Read(&event));
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_THAT(status.error_message(), HasSubstr("older than the retained change log"));
  }
  // A malformed position names the field.
  {
    grpc::ClientContext context;
    params::WatchParametersRequest request;
    request.set_path("/");
    request.set_start_after("soon");
    auto reader = stub_->WatchParameters(&context, request);
    ChangeEvent event;
    EXPECT_FALSE(reader->Read(&event));
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("start_after"));
  }
  // The reactor itself meets the trimmed log.
  {
    service_->check_start = false;
    grpc::ClientContext context;
    params::WatchParametersRequest request;
    request.set_path("/");
    request.set_start_after("2");
    auto reader = stub_->WatchParameters(&context, request);
    ChangeEvent event;
    EXPECT_FALSE(reader->Read(&event));
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  }
  // The oldest resumable position still works.
  service_->check_start = true;
  auto call = Watch("/", "7");
  EXPECT_EQ(Names(ReadN(*call, 3)), (std::vector<std::string>{"/p8", "/p9", "/p10"}));
}

TEST_F(WatchReactorTest, StopAllEndsStreamsAndShutdownIsPrompt) {
  auto one = Watch("/");
  auto two = Watch("/x/", "", /*open_before=*/1);
  Publish("/x/1");
  EXPECT_EQ(Names(ReadN(*two, 1)), (std::vector<std::string>{"/x/1"}));
  EXPECT_EQ(Names(ReadN(*one, 1)), (std::vector<std::string>{"/x/1"}));

  const absl::Time started = absl::Now();
  StopServer();
  EXPECT_LT(absl::Now() - started, absl::Seconds(2));
  ChangeEvent ignored;
  EXPECT_FALSE(one->reader->Read(&ignored));
  EXPECT_FALSE(two->reader->Read(&ignored));
  EXPECT_TRUE(one->reader->Finish().ok());
  EXPECT_TRUE(two->reader->Finish().ok());
}

TEST_F(WatchReactorTest, StreamsStartedAfterStopAllEndAtOnce) {
  registry_->StopAll();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  params::WatchParametersRequest request;
  request.set_path("/");
  auto reader = stub_->WatchParameters(&context, request);
  ChangeEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_TRUE(reader->Finish().ok());
}

}  // namespace
}  // namespace coffer::store
