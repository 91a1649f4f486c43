// Real server-streaming calls: an in-process mTLS server (coffer::rpc::Server
// with certificates from deploy/certs/make-certs.sh) whose WatchParameters
// streams canned ChangeEvents, called the way cofferctl calls it — by
// descriptor, with plain google::protobuf::Message.
#include "tools/cofferctl/caller.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "tests/testing/test_env.h"
#include "tools/cofferctl/command_table.h"
#include "tools/cofferctl/invocation.h"
#include "tools/cofferctl/request_builder.h"

namespace coffer::cofferctl {
namespace {

using ::coffer::params::v1::WatchParametersRequest;
using ::coffer::testing::SharedPki;
using ::coffer::v1::ChangeEvent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace pb = google::protobuf;

ChangeEvent MakeEvent(int i) {
  ChangeEvent event;
  event.set_position(absl::StrCat("p", i));
  event.set_resource_kind(coffer::v1::RESOURCE_KIND_PARAMETER);
  event.set_name(absl::StrCat("/app/p", i));
  event.set_version(absl::StrCat(i));
  event.set_kind(coffer::v1::CHANGE_KIND_UPDATED);
  return event;
}

// WatchParameters writes `events` ChangeEvents (p1, p2, ...), then finishes
// OK — or, with `hold_open`, keeps the stream open until the client cancels.
class FakeParameterStore final : public params::v1::ParameterStore::CallbackService {
 public:
  void Configure(int events, bool hold_open) {
    absl::MutexLock lock(&mu_);
    events_ = events;
    hold_open_ = hold_open;
  }
  WatchParametersRequest last_request() const {
    absl::MutexLock lock(&mu_);
    return last_request_;
  }
  int cancelled_streams() const {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }
  // Waits until every stream's reactor is done.
  bool WaitIdle(absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(
                                    +[](const int* open) { return *open == 0; }, &open_),
                                timeout);
  }

  grpc::ServerWriteReactor<ChangeEvent>* WatchParameters(
      grpc::CallbackServerContext* /*context*/, const WatchParametersRequest* request) override {
    absl::MutexLock lock(&mu_);
    last_request_ = *request;
    ++open_;
    return new Writer(this, events_, hold_open_);
  }

 private:
  // gRPC calls are made outside mu_, in case a reaction runs inline.
  class Writer final : public grpc::ServerWriteReactor<ChangeEvent> {
   public:
    Writer(FakeParameterStore* store, int events, bool hold_open)
        : store_(store), events_(events), hold_open_(hold_open) {
      Next(/*write_ok=*/true);
    }
    void OnWriteDone(bool ok) override { Next(ok); }
    void OnCancel() override {
      {
        absl::MutexLock lock(&store_->mu_);
        ++store_->cancelled_;
      }
      bool finish = false;
      {
        absl::MutexLock lock(&mu_);
        cancelled_ = true;
        // With a write outstanding, OnWriteDone(false) finishes.
        finish = !writing_ && !finished_;
        finished_ = finished_ || finish;
      }
      if (finish) Finish(grpc::Status::CANCELLED);
    }
    void OnDone() override {
      {
        absl::MutexLock lock(&store_->mu_);
        --store_->open_;
      }
      delete this;
    }

   private:
    // After a write (or at the start): the next write, Finish or nothing.
    void Next(bool write_ok) {
      enum { kNothing, kWrite, kFinishOk, kFinishCancelled } action = kNothing;
      {
        absl::MutexLock lock(&mu_);
        writing_ = false;
        if (finished_) {
          action = kNothing;
        } else if (cancelled_ || !write_ok) {
          action = kFinishCancelled;
        } else if (sent_ < events_) {
          event_ = MakeEvent(++sent_);
          writing_ = true;
          action = kWrite;
        } else if (!hold_open_) {
          action = kFinishOk;
        }  // else: wait for OnCancel
        if (action == kFinishOk || action == kFinishCancelled) finished_ = true;
      }
      switch (action) {
        case kWrite:
          StartWrite(&event_);
          break;
        case kFinishOk:
          Finish(grpc::Status::OK);
          break;
        case kFinishCancelled:
          Finish(grpc::Status::CANCELLED);
          break;
        case kNothing:
          break;
      }
    }

    FakeParameterStore* const store_;
    const int events_;
    const bool hold_open_;
    absl::Mutex mu_;
    ChangeEvent event_;  // written only while no write is outstanding
    int sent_ ABSL_GUARDED_BY(mu_) = 0;
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
    bool finished_ ABSL_GUARDED_BY(mu_) = false;
  };

  mutable absl::Mutex mu_;
  int events_ ABSL_GUARDED_BY(mu_) = 3;
  bool hold_open_ ABSL_GUARDED_BY(mu_) = false;
  WatchParametersRequest last_request_ ABSL_GUARDED_BY(mu_);
  int cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

class ServerStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rpc::ServerOptions options;
    options.tls = SharedPki().Identity("store");
    absl::StatusOr<std::unique_ptr<rpc::Server>> server =
        rpc::Server::Start(std::move(options), {&store_}, &health_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);

    const rpc::TlsFiles client = SharedPki().Identity("cofferctl");
    ConnectionOptions connection;
    connection.address = absl::StrCat("localhost:", server_->port());
    connection.ca_file = client.ca_file;
    connection.cert_file = client.cert_file;
    connection.key_file = client.key_file;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(connection);
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *std::move(channel);

    table_ = CommandTable::FromGeneratedPool();
    const Group* params = table_.FindGroup("params");
    ASSERT_NE(params, nullptr);
    method_ = CommandTable::FindOperation(*params, "watch-parameters");
    ASSERT_NE(method_, nullptr);
    absl::StatusOr<std::unique_ptr<pb::Message>> request =
        BuildRequest(*method_->input_type(), {"--path", "/app", "--recursive"});
    ASSERT_TRUE(request.ok()) << request.status();
    request_ = *std::move(request);
  }
  void TearDown() override {
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  // Runs CallServerStreaming and collects the events it delivers.
  absl::Status Collect(std::vector<ChangeEvent>* events,
                       absl::Duration timeout = absl::InfiniteDuration(),
                       Canceller* canceller = nullptr, size_t stop_after = 0) {
    return CallServerStreaming(
        channel_, *method_, *request_, timeout,
        [&](const pb::Message& message) {
          EXPECT_EQ(message.GetDescriptor(), ChangeEvent::descriptor());
          ChangeEvent event;
          event.CopyFrom(message);
          events->push_back(event);
          return stop_after == 0 || events->size() < stop_after;
        },
        canceller);
  }

  // Declaration order: the services outlive the server that uses them.
  FakeParameterStore store_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  CommandTable table_;
  const pb::MethodDescriptor* method_ = nullptr;
  std::unique_ptr<pb::Message> request_;
};

std::vector<std::string> Positions(const std::vector<ChangeEvent>& events) {
  std::vector<std::string> out;
  for (const ChangeEvent& event : events) out.push_back(event.position());
  return out;
}

TEST_F(ServerStreamTest, DeliversEveryEventInOrder) {
  store_.Configure(3, /*hold_open=*/false);
  std::vector<ChangeEvent> events;
  absl::Status status = Collect(&events);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(Positions(events), ElementsAre("p1", "p2", "p3"));
  EXPECT_EQ(events[2].name(), "/app/p3");
  EXPECT_EQ(events[2].kind(), coffer::v1::CHANGE_KIND_UPDATED);
  // The request built from the flags reached the server.
  EXPECT_EQ(store_.last_request().path(), "/app");
  EXPECT_TRUE(store_.last_request().recursive());
}

TEST_F(ServerStreamTest, PrintsOneJsonLinePerEvent) {
  store_.Configure(3, /*hold_open=*/false);
  std::ostringstream out;
  absl::StatusOr<int64_t> printed =
      PrintServerStream(channel_, *method_, *request_, absl::InfiniteDuration(),
                        /*max_events=*/0, out);
  ASSERT_TRUE(printed.ok()) << printed.status();
  EXPECT_EQ(*printed, 3);
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n');
  ASSERT_EQ(lines.size(), 4u);  // three lines, then the empty rest after the last '\n'
  EXPECT_EQ(lines[0],
            R"({"position":"p1","resource_kind":"RESOURCE_KIND_PARAMETER","name":"/app/p1",)"
            R"("version":"1","kind":"CHANGE_KIND_UPDATED"})");
  EXPECT_THAT(lines[2], HasSubstr(R"("position":"p3")"));
  EXPECT_EQ(lines[3], "");
}

TEST_F(ServerStreamTest, MaxEventsStopsPromptlyWhileTheServerKeepsStreaming) {
  store_.Configure(5, /*hold_open=*/true);  // never finishes on its own
  std::ostringstream out;
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> printed = PrintServerStream(
      channel_, *method_, *request_, absl::InfiniteDuration(), /*max_events=*/2, out);
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(printed.ok()) << printed.status();
  EXPECT_EQ(*printed, 2);
  EXPECT_LT(took, absl::Seconds(5));
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr(R"("position":"p1")"));
  EXPECT_THAT(lines[1], HasSubstr(R"("position":"p2")"));
  // The client cancelled the call rather than leaving it open.
  EXPECT_TRUE(store_.WaitIdle(absl::Seconds(5)));
  EXPECT_EQ(store_.cancelled_streams(), 1);
}

TEST_F(ServerStreamTest, MaxEventsViaCallbackStopsAfterTwo) {
  store_.Configure(5, /*hold_open=*/true);
  std::vector<ChangeEvent> events;
  absl::Status status = Collect(&events, absl::InfiniteDuration(), nullptr, /*stop_after=*/2);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(Positions(events), ElementsAre("p1", "p2"));
}

TEST_F(ServerStreamTest, TimeoutIsANormalEnd) {
  store_.Configure(2, /*hold_open=*/true);
  std::vector<ChangeEvent> events;
  const absl::Time start = absl::Now();
  absl::Status status = Collect(&events, absl::Milliseconds(500));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_THAT(Positions(events), ElementsAre("p1", "p2"));
}

TEST_F(ServerStreamTest, TimeoutWithoutAnyEventIsANormalEnd) {
  store_.Configure(0, /*hold_open=*/true);
  std::vector<ChangeEvent> events;
  absl::Status status = Collect(&events, absl::Milliseconds(300));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(events.empty());
}

TEST_F(ServerStreamTest, CancellerEndsTheStreamCleanly) {
  store_.Configure(1, /*hold_open=*/true);
  Canceller canceller;
  std::vector<ChangeEvent> events;
  std::thread interrupt([&] {
    absl::SleepFor(absl::Milliseconds(300));
    canceller.Cancel();  // what SIGINT / SIGTERM do in cofferctl
  });
  const absl::Time start = absl::Now();
  absl::Status status = Collect(&events, absl::InfiniteDuration(), &canceller);
  interrupt.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(Positions(events), ElementsAre("p1"));

  // Cancel() is sticky: a later call ends at once without calling.
  events.clear();
  EXPECT_TRUE(Collect(&events, absl::InfiniteDuration(), &canceller).ok());
  EXPECT_TRUE(events.empty());
}

TEST_F(ServerStreamTest, ServerErrorIsReported) {
  std::vector<ChangeEvent> events;
  // Not served by the fake: the call fails with UNIMPLEMENTED.
  const Group* secrets = table_.FindGroup("secrets");
  ASSERT_NE(secrets, nullptr);
  const pb::MethodDescriptor* watch_secrets =
      CommandTable::FindOperation(*secrets, "watch-secrets");
  ASSERT_NE(watch_secrets, nullptr);
  absl::StatusOr<std::unique_ptr<pb::Message>> request =
      BuildRequest(*watch_secrets->input_type(), {});
  ASSERT_TRUE(request.ok());
  absl::Status status = CallServerStreaming(channel_, *watch_secrets, **request, absl::Seconds(10),
                                            [](const pb::Message&) { return true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
}

TEST_F(ServerStreamTest, UnaryMethodsAreRefused) {
  const Group* params = table_.FindGroup("params");
  ASSERT_NE(params, nullptr);
  const pb::MethodDescriptor* get = CommandTable::FindOperation(*params, "get-parameter");
  ASSERT_NE(get, nullptr);
  absl::StatusOr<std::unique_ptr<pb::Message>> request = BuildRequest(*get->input_type(), {});
  ASSERT_TRUE(request.ok());
  absl::Status status = CallServerStreaming(channel_, *get, **request, absl::Seconds(1),
                                            [](const pb::Message&) { return true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(CallUnary(channel_, *method_, *request_, absl::Seconds(1)).status().code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace coffer::cofferctl
