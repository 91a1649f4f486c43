#include "libs/common/executor.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"

namespace coffer {
namespace {

TEST(BoundedExecutorTest, RunsEverythingItAcceptsAndRefusesBeyondTheBound) {
  std::atomic<int> ran{0};
  absl::Notification release;
  {
    BoundedExecutor pool("test", 2, 4);
    // Two tasks block both threads; two more wait in the queue.
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(pool.TrySchedule([&] {
        release.WaitForNotification();
        ++ran;
      }));
    }
    EXPECT_EQ(pool.pending(), 4u);
    EXPECT_FALSE(pool.TrySchedule([&] { ++ran; }));  // full: refused at once
    release.Notify();
  }  // the destructor runs what was accepted
  EXPECT_EQ(ran.load(), 4);
}

TEST(BoundedExecutorTest, CapacityComesBackAsTasksFinish) {
  BoundedExecutor pool("test", 1, 1);
  for (int i = 0; i < 50; ++i) {
    absl::Notification done;
    while (!pool.TrySchedule([&] { done.Notify(); })) {
    }
    done.WaitForNotification();
  }
  EXPECT_LE(pool.pending(), 1u);
}

}  // namespace
}  // namespace coffer
