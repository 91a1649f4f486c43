// PeriodicTask on real threads: repeated runs, RunNow, a Stop that does not
// wait for the interval, and a run in progress that Stop lets finish.
#include "libs/common/periodic.h"

#include <atomic>
#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace coffer {
namespace {

// Polls `done` every millisecond for up to `timeout`.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return done();
}

TEST(PeriodicTaskTest, StopWakesTheSleepingThreadAtOnce) {
  std::atomic<int> runs{0};
  PeriodicTask task("test-idle", absl::Hours(1), [&] { ++runs; });
  task.Start();
  absl::SleepFor(absl::Milliseconds(20));  // the thread is asleep by now
  const absl::Time start = absl::Now();
  task.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(runs.load(), 0);  // the first run was an hour away
}

TEST(PeriodicTaskTest, RunsRepeatedlyUntilStopped) {
  std::atomic<int> runs{0};
  PeriodicTask task("test-fast", absl::Milliseconds(5), [&] { ++runs; });
  EXPECT_EQ(task.name(), "test-fast");
  task.Start();
  EXPECT_TRUE(Eventually([&] { return runs.load() >= 3; }));
  task.Stop();
  const int after_stop = runs.load();
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(runs.load(), after_stop);
}

TEST(PeriodicTaskTest, RunNowRunsWithoutWaitingForTheInterval) {
  std::atomic<int> runs{0};
  PeriodicTask task("test-now", absl::Hours(1), [&] { ++runs; });
  task.Start();
  task.RunNow();
  EXPECT_TRUE(Eventually([&] { return runs.load() == 1; }));
  task.RunNow();
  EXPECT_TRUE(Eventually([&] { return runs.load() == 2; }));
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(runs.load(), 2);  // back to the hourly schedule
}

TEST(PeriodicTaskTest, RunNowBeforeStartMakesTheFirstRunImmediate) {
  std::atomic<int> runs{0};
  PeriodicTask task("test-first", absl::Hours(1), [&] { ++runs; });
  task.RunNow();
  absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(runs.load(), 0);  // nothing runs before Start
  task.Start();
  EXPECT_TRUE(Eventually([&] { return runs.load() == 1; }));
}

TEST(PeriodicTaskTest, StopLetsTheRunInProgressFinish) {
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  PeriodicTask task("test-slow", absl::Hours(1), [&] {
    started = true;
    absl::SleepFor(absl::Milliseconds(200));
    finished = true;
  });
  task.Start();
  task.RunNow();
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  task.Stop();
  EXPECT_TRUE(finished.load());
}

TEST(PeriodicTaskTest, StopIsIdempotentAndFinal) {
  std::atomic<int> runs{0};
  {
    PeriodicTask never_started("test-never", absl::Milliseconds(1), [&] { ++runs; });
    never_started.Stop();
    never_started.Stop();
  }
  PeriodicTask task("test-final", absl::Milliseconds(1), [&] { ++runs; });
  task.Start();
  task.Start();  // no second thread
  task.Stop();
  task.Stop();
  const int after_stop = runs.load();
  task.Start();  // after Stop: nothing
  task.RunNow();
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(runs.load(), after_stop);
}

TEST(PeriodicTaskTest, DestructorStops) {
  std::atomic<int> runs{0};
  const absl::Time start = absl::Now();
  {
    PeriodicTask task("test-scope", absl::Hours(1), [&] { ++runs; });
    task.Start();
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(runs.load(), 0);
}

}  // namespace
}  // namespace coffer
