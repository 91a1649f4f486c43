// RotationRunner against fake store-control and worker clients, with a
// FakeClock and an injected sleep: success, resume, retries with backoff,
// failure after max_attempts, lost lease, unknown worker, wrong identity,
// shutdown.
#include "services/rotator/rotation_runner.h"

#include <prometheus/registry.h>

#include <deque>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/common/rotation_steps.h"

namespace coffer::rotator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kWorkerId[] = "spiffe://coffer.local/worker/postgres";

// The store's side, scripted: what AcquireRotationLease answers, and an
// optional ABORTED from the n-th RecordRotationProgress. Every call is
// recorded as a line of text.
class FakeControl : public RotationControlClient {
 public:
  FakeControl() {
    lease.set_lease_id("lease-1");
    lease.set_secret_arn("arn:coffer:secretsmanager:local:000000000000:secret:db-AbCdEf");
    lease.set_client_request_token(std::string(36, 't'));
    lease.set_rotation_worker("pg");
    lease.set_next_step(rot::ROTATION_STEP_CREATE_SECRET);
  }

  absl::StatusOr<rot::ListRotationSchedulesResponse> ListRotationSchedules(
      const rot::ListRotationSchedulesRequest&) override {
    return rot::ListRotationSchedulesResponse();
  }
  absl::StatusOr<rot::AcquireRotationLeaseResponse> AcquireRotationLease(
      const rot::AcquireRotationLeaseRequest& request) override {
    Log(absl::StrCat("acquire ", request.secret_id(), " by ", request.holder(), " for ",
                     request.lease_duration().seconds(), "s"));
    if (!acquire_status.ok()) return acquire_status;
    attempts_ = lease.attempts();
    return lease;
  }
  absl::StatusOr<rot::RenewRotationLeaseResponse> RenewRotationLease(
      const rot::RenewRotationLeaseRequest& request) override {
    Log("renew");
    return rot::RenewRotationLeaseResponse();
  }
  absl::StatusOr<rot::RecordRotationProgressResponse> RecordRotationProgress(
      const rot::RecordRotationProgressRequest& request) override {
    if (++records_ == abort_on_record) {
      Log("record: ABORTED");
      return absl::AbortedError("the rotation lease was lost");
    }
    Log(absl::StrCat(request.completed() ? "done " : "failed ", RotationStepName(request.step()),
                     request.error().empty() ? "" : " (" + request.error() + ")"));
    attempts_ = request.completed() ? 0 : attempts_ + 1;
    rot::RecordRotationProgressResponse response;
    response.set_attempts(attempts_);
    return response;
  }
  absl::StatusOr<rot::CompleteRotationResponse> CompleteRotation(
      const rot::CompleteRotationRequest& request) override {
    Log(request.succeeded() ? "complete succeeded"
                            : absl::StrCat("complete failed: ", request.error()));
    rot::CompleteRotationResponse response;
    response.mutable_next_rotation_date()->set_seconds(1'800'000'000);
    return response;
  }
  absl::Status ReleaseRotationLease(const rot::ReleaseRotationLeaseRequest& request) override {
    Log(absl::StrCat("release ", request.lease_id()));
    return absl::OkStatus();
  }

  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // Calls other than the first (acquire) and renewals.
  std::vector<std::string> progress() {
    std::vector<std::string> out;
    for (const auto& c : calls()) {
      if (c.rfind("acquire", 0) != 0 && c != "renew") out.push_back(c);
    }
    return out;
  }

  rot::AcquireRotationLeaseResponse lease;
  absl::Status acquire_status;
  int abort_on_record = 0;

 private:
  void Log(std::string line) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(line));
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_;
  int records_ = 0;
  int attempts_ = 0;
};

// A worker that answers with a scripted status per step (OK by default) and
// presents `identity`.
class FakeWorker : public WorkerClient {
 public:
  StepResult Step(const rot::WorkerEndpoint& worker, const rot::StepRequest& request,
                  absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    steps.emplace_back(RotationStepName(request.step()));
    last_request = request;
    last_timeout = timeout;
    StepResult result;
    result.peer_spiffe_id = identity;
    auto it = failures.find(request.step());
    if (it != failures.end() && it->second > 0) {
      --it->second;
      result.status = absl::UnavailableError("connection refused");
    }
    if (on_step) on_step(request.step());
    return result;
  }
  void CancelAll() override {}

  absl::Mutex mu_;
  std::vector<std::string> steps;
  rot::StepRequest last_request;
  absl::Duration last_timeout;
  std::string identity = kWorkerId;
  // step -> how many times it fails before it works.
  std::map<int, int> failures;
  std::function<void(rot::RotationStep)> on_step;
};

class RotationRunnerTest : public ::testing::Test {
 protected:
  RotationRunnerTest() : probe_(registry_) {
    RotatorConfig config;
    auto* w = config.add_workers();
    w->set_name("pg");
    w->set_address("localhost:7711");
    w->set_spiffe_id(kWorkerId);
    workers_ = WorkerRegistry::FromConfig(config).value();
    options_.holder = "rotator-test-1";
    options_.lease_duration = absl::Seconds(30);
    options_.max_attempts = 4;
    options_.backoff_initial = absl::Seconds(1);
    options_.backoff_max = absl::Seconds(3);
    options_.step_timeout = absl::Seconds(7);
    options_.clock = &clock_;
    options_.renew_in_background = false;
    options_.jitter = [] { return 1.0; };  // the cap itself
    options_.sleep = [this](absl::Duration d, StopSignal* stop) {
      sleeps_.push_back(d);
      clock_.Advance(d);
      return !stop->stopped();
    };
  }

  RunOutcome Run() {
    RotationRunner runner(&control_, &worker_, &workers_, &probe_, options_);
    return runner.Run("db", &shutdown_);
  }

  double Counter(const std::string& name, const std::map<std::string, std::string>& labels) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        std::map<std::string, std::string> got;
        for (const auto& l : m.label) got[l.name] = l.value;
        if (got == labels)
          return name.find("_total") != std::string::npos ? m.counter.value : m.gauge.value;
      }
    }
    return -1;
  }

  FakeClock clock_;
  FakeControl control_;
  FakeWorker worker_;
  WorkerRegistry workers_;
  prometheus::Registry registry_;
  RotatorProbe probe_;
  RunnerOptions options_;
  StopSignal shutdown_;
  std::vector<absl::Duration> sleeps_;
};

TEST_F(RotationRunnerTest, SuccessRecordsEveryStepAndCompletes) {
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kSucceeded) << out.status;
  EXPECT_EQ(out.worker, "pg");
  ASSERT_TRUE(out.next_rotation_date.has_value());
  EXPECT_EQ(*out.next_rotation_date, absl::FromUnixSeconds(1'800'000'000));
  EXPECT_THAT(worker_.steps,
              ElementsAre("createSecret", "setSecret", "testSecret", "finishSecret"));
  EXPECT_EQ(worker_.last_request.secret_id(), control_.lease.secret_arn());
  EXPECT_EQ(worker_.last_request.client_request_token(), control_.lease.client_request_token());
  EXPECT_EQ(worker_.last_timeout, absl::Seconds(7));
  EXPECT_EQ(control_.calls().front(), "acquire db by rotator-test-1 for 30s");
  EXPECT_THAT(control_.progress(),
              ElementsAre("done createSecret", "done setSecret", "done testSecret",
                          "done finishSecret", "complete succeeded"));
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(Counter("coffer_rotation_runs_total", {{"worker", "pg"}, {"result", "success"}}), 1);
  EXPECT_EQ(Counter("coffer_rotation_step_attempts_total",
                    {{"step", "setSecret"}, {"result", "success"}}),
            1);
  EXPECT_EQ(Counter("coffer_rotation_leases_held", {}), 0);
}

TEST_F(RotationRunnerTest, ResumesFromTheRecordedStep) {
  control_.lease.set_next_step(rot::ROTATION_STEP_SET_SECRET);
  control_.lease.set_attempts(1);
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kSucceeded) << out.status;
  EXPECT_THAT(worker_.steps, ElementsAre("setSecret", "testSecret", "finishSecret"));
  EXPECT_THAT(control_.progress(), ElementsAre("done setSecret", "done testSecret",
                                               "done finishSecret", "complete succeeded"));
}

TEST_F(RotationRunnerTest, RetriesWithGrowingBackoffThenFails) {
  worker_.failures[rot::ROTATION_STEP_SET_SECRET] = 100;
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kFailed);
  EXPECT_THAT(worker_.steps,
              ElementsAre("createSecret", "setSecret", "setSecret", "setSecret", "setSecret"));
  // 1s, 2s, then capped at backoff_max = 3s; no sleep after the last attempt.
  EXPECT_THAT(sleeps_, ElementsAre(absl::Seconds(1), absl::Seconds(2), absl::Seconds(3)));
  auto progress = control_.progress();
  ASSERT_EQ(progress.size(), 6u);
  EXPECT_EQ(progress[0], "done createSecret");
  for (int i = 1; i <= 4; ++i)
    EXPECT_THAT(progress[i], HasSubstr("failed setSecret (setSecret: UNAVAILABLE"));
  EXPECT_THAT(progress[5], HasSubstr("complete failed: setSecret failed 4 times"));
  EXPECT_THAT(progress[5], HasSubstr("connection refused"));
  EXPECT_EQ(Counter("coffer_rotation_runs_total", {{"worker", "pg"}, {"result", "failure"}}), 1);
  EXPECT_EQ(Counter("coffer_rotation_step_attempts_total",
                    {{"step", "setSecret"}, {"result", "failure"}}),
            4);
}

TEST_F(RotationRunnerTest, ATransientFailureIsRetriedAndTheRotationSucceeds) {
  worker_.failures[rot::ROTATION_STEP_TEST_SECRET] = 2;
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kSucceeded) << out.status;
  EXPECT_THAT(sleeps_, ElementsAre(absl::Seconds(1), absl::Seconds(2)));
  EXPECT_EQ(worker_.steps.size(), 6u);
}

TEST_F(RotationRunnerTest, AttemptsRecordedByAnEarlierHolderCount) {
  control_.lease.set_next_step(rot::ROTATION_STEP_SET_SECRET);
  control_.lease.set_attempts(3);
  worker_.failures[rot::ROTATION_STEP_SET_SECRET] = 100;
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kFailed);
  EXPECT_THAT(worker_.steps, ElementsAre("setSecret"));  // the 4th attempt overall
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(RotationRunnerTest, FullJitterScalesTheBackoff) {
  options_.jitter = [] { return 0.5; };
  worker_.failures[rot::ROTATION_STEP_CREATE_SECRET] = 2;
  EXPECT_EQ(Run().result, RunOutcome::Result::kSucceeded);
  EXPECT_THAT(sleeps_, ElementsAre(absl::Milliseconds(500), absl::Seconds(1)));
}

TEST_F(RotationRunnerTest, ALostLeaseStopsWithoutCompleting) {
  control_.abort_on_record = 2;  // recording setSecret finds the lease gone
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kLeaseLost);
  EXPECT_THAT(worker_.steps, ElementsAre("createSecret", "setSecret"));
  EXPECT_THAT(control_.progress(), ElementsAre("done createSecret", "record: ABORTED"));
  EXPECT_EQ(Counter("coffer_rotation_leases_held", {}), 0);
}

TEST_F(RotationRunnerTest, AnotherHolderMeansBusyAndNotDueMeansNotDue) {
  control_.acquire_status = absl::AbortedError("the rotation lease is held by rotator-b");
  EXPECT_EQ(Run().result, RunOutcome::Result::kBusy);
  control_.acquire_status =
      Error(reason::kInvalidRequest, "the rotation is not due until ...", "db");
  EXPECT_EQ(Run().result, RunOutcome::Result::kNotDue);
  control_.acquire_status = absl::UnavailableError("store down");
  EXPECT_EQ(Run().result, RunOutcome::Result::kError);
  EXPECT_TRUE(worker_.steps.empty());
  EXPECT_TRUE(control_.progress().empty());
}

TEST_F(RotationRunnerTest, UnknownWorkerCompletesFailed) {
  control_.lease.set_rotation_worker("mysql");
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kFailed);
  EXPECT_TRUE(worker_.steps.empty());
  EXPECT_THAT(control_.progress(), ElementsAre("complete failed: unknown rotation worker mysql"));
  // Names that are not registered are not metric labels.
  EXPECT_EQ(Counter("coffer_rotation_runs_total",
                    {{"worker", kUnregisteredWorker}, {"result", "failure"}}),
            1);
}

TEST_F(RotationRunnerTest, AWorkerWithTheWrongIdentityIsAFailedAttempt) {
  worker_.identity = "spiffe://coffer.local/app/impostor";
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kFailed);
  EXPECT_THAT(worker_.steps,
              ElementsAre("createSecret", "createSecret", "createSecret", "createSecret"));
  auto progress = control_.progress();
  ASSERT_EQ(progress.size(), 5u);  // four failed attempts, nothing recorded as done
  EXPECT_THAT(progress[0], HasSubstr("failed createSecret"));
  EXPECT_THAT(progress[0], HasSubstr("presented identity \"spiffe://coffer.local/app/impostor\""));
  EXPECT_THAT(progress[0], HasSubstr(kWorkerId));
  EXPECT_THAT(progress[4], HasSubstr("complete failed"));
}

TEST_F(RotationRunnerTest, ShutdownReleasesTheLeaseAfterTheStepInFlight) {
  worker_.on_step = [this](rot::RotationStep step) {
    if (step == rot::ROTATION_STEP_SET_SECRET) shutdown_.Stop();
  };
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kStopped);
  EXPECT_THAT(worker_.steps, ElementsAre("createSecret", "setSecret"));
  EXPECT_THAT(control_.progress(),
              ElementsAre("done createSecret", "done setSecret", "release lease-1"));
}

TEST_F(RotationRunnerTest, ShutdownDuringBackoffReleasesTheLease) {
  worker_.failures[rot::ROTATION_STEP_CREATE_SECRET] = 100;
  options_.sleep = [this](absl::Duration, StopSignal* stop) {
    shutdown_.Stop();
    return !stop->stopped();
  };
  RunOutcome out = Run();
  EXPECT_EQ(out.result, RunOutcome::Result::kStopped);
  EXPECT_THAT(control_.progress().back(), "release lease-1");
}

TEST_F(RotationRunnerTest, RenewsTheLeaseInTheBackground) {
  options_.renew_in_background = true;
  options_.lease_duration = absl::Milliseconds(300);  // renewed every 100 ms (real time)
  worker_.on_step = [](rot::RotationStep step) {
    if (step == rot::ROTATION_STEP_CREATE_SECRET) absl::SleepFor(absl::Milliseconds(450));
  };
  EXPECT_EQ(Run().result, RunOutcome::Result::kSucceeded);
  int renewals = 0;
  for (const auto& c : control_.calls()) renewals += c == "renew";
  EXPECT_GE(renewals, 2);
}

TEST_F(RotationRunnerTest, NoStepStartsWhenTheClockSaysTheLeaseMayBeGone) {
  // Renewals would come every 10 s of real time (none within this test); how
  // long the lease is still ours is read from the runner's FakeClock.
  options_.renew_in_background = true;
  options_.lease_duration = absl::Seconds(30);
  worker_.on_step = [this](rot::RotationStep step) {
    if (step == rot::ROTATION_STEP_CREATE_SECRET) clock_.Advance(absl::Seconds(21));
  };
  RunOutcome out = Run();
  // 9 s left, less than a third of the lease: setSecret is not started.
  EXPECT_EQ(out.result, RunOutcome::Result::kStopped);
  EXPECT_THAT(worker_.steps, ElementsAre("createSecret"));
  EXPECT_THAT(control_.progress(), ElementsAre("done createSecret", "release lease-1"));
}

TEST(StopSignalTest, ChildrenStopWithTheirParent) {
  StopSignal parent;
  StopSignal child(&parent);
  EXPECT_FALSE(child.stopped());
  EXPECT_TRUE(child.SleepFor(absl::Milliseconds(1)));
  parent.Stop();
  EXPECT_TRUE(child.stopped());
  EXPECT_FALSE(child.SleepFor(absl::Hours(1)));
  StopSignal late(&parent);
  EXPECT_TRUE(late.stopped());
}

}  // namespace
}  // namespace coffer::rotator
