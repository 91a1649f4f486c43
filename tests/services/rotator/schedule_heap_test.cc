// ScheduleHeap: ordering, moves and removals with lazy invalidation,
// compaction, and a large run (no timing assertions: performance.md).
#include "services/rotator/schedule_heap.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace coffer::rotator {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

std::vector<std::string> PopAll(ScheduleHeap& heap) {
  std::vector<std::string> out;
  while (auto e = heap.Pop()) out.push_back(e->name);
  return out;
}

TEST(ScheduleHeapTest, PopsInDueOrder) {
  ScheduleHeap heap;
  heap.Set("c", kT0 + absl::Seconds(3));
  heap.Set("a", kT0 + absl::Seconds(1));
  heap.Set("b", kT0 + absl::Seconds(2));
  EXPECT_EQ(heap.size(), 3u);
  ASSERT_TRUE(heap.Top().has_value());
  EXPECT_EQ(heap.Top()->name, "a");
  EXPECT_EQ(heap.Top()->due, kT0 + absl::Seconds(1));
  EXPECT_EQ(PopAll(heap), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(heap.empty());
  EXPECT_FALSE(heap.Pop().has_value());
}

TEST(ScheduleHeapTest, PopDueReturnsOnlyWhatIsDue) {
  ScheduleHeap heap;
  heap.Set("later", kT0 + absl::Hours(1));
  heap.Set("now", kT0);
  EXPECT_EQ(heap.PopDue(kT0)->name, "now");
  EXPECT_FALSE(heap.PopDue(kT0).has_value());
  EXPECT_TRUE(heap.Contains("later"));
  EXPECT_EQ(heap.PopDue(kT0 + absl::Hours(2))->name, "later");
}

TEST(ScheduleHeapTest, SetMovesAnEntryEitherWay) {
  ScheduleHeap heap;
  heap.Set("a", kT0 + absl::Seconds(1));
  heap.Set("b", kT0 + absl::Seconds(2));
  heap.Set("c", kT0 + absl::Seconds(3));
  heap.Set("a", kT0 + absl::Seconds(10));  // later
  heap.Set("c", kT0);                      // earlier
  EXPECT_EQ(heap.size(), 3u);
  EXPECT_EQ(heap.DueOf("a"), kT0 + absl::Seconds(10));
  EXPECT_EQ(PopAll(heap), (std::vector<std::string>{"c", "b", "a"}));
}

TEST(ScheduleHeapTest, RemovedAndMovedEntriesLeaveOnlyStaleNodes) {
  ScheduleHeap heap;
  heap.Set("a", kT0 + absl::Seconds(1));
  heap.Set("b", kT0 + absl::Seconds(2));
  heap.Set("a", kT0 + absl::Seconds(3));
  EXPECT_EQ(heap.node_count(), 3u);  // a's first node is stale, not searched for
  EXPECT_TRUE(heap.Remove("b"));
  EXPECT_FALSE(heap.Remove("b"));
  EXPECT_FALSE(heap.Contains("b"));
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_EQ(heap.Top()->name, "a");  // stale nodes of a and b skipped
  EXPECT_EQ(heap.Top()->due, kT0 + absl::Seconds(3));
  // Re-adding a removed name works and is not confused with its old nodes.
  heap.Set("b", kT0 + absl::Seconds(5));
  EXPECT_EQ(PopAll(heap), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(heap.node_count(), 0u);
}

TEST(ScheduleHeapTest, EqualTimesPopInInsertionOrder) {
  ScheduleHeap heap;
  for (const char* n : {"x", "y", "z"}) heap.Set(n, kT0);
  EXPECT_EQ(PopAll(heap), (std::vector<std::string>{"x", "y", "z"}));
}

TEST(ScheduleHeapTest, CountDueBeforeCountsLiveEntriesOnly) {
  ScheduleHeap heap;
  for (int i = 0; i < 100; ++i) heap.Set(absl::StrCat("s", i), kT0 + absl::Seconds(i));
  EXPECT_EQ(heap.CountDueBefore(kT0), 0u);
  EXPECT_EQ(heap.CountDueBefore(kT0 + absl::Seconds(10)), 10u);
  heap.Remove("s3");
  heap.Set("s5", kT0 + absl::Hours(1));
  EXPECT_EQ(heap.CountDueBefore(kT0 + absl::Seconds(10)), 8u);
  EXPECT_EQ(heap.CountDueBefore(absl::InfiniteFuture()), 99u);
}

TEST(ScheduleHeapTest, TagsDriveResyncRemoval) {
  ScheduleHeap heap;
  heap.Set("old", kT0, 1);
  heap.Set("seen", kT0, 2);
  heap.Set("busy", kT0, 1);
  size_t removed = heap.RemoveTaggedBelow(2, [](const std::string& n) { return n == "busy"; });
  EXPECT_EQ(removed, 1u);
  EXPECT_FALSE(heap.Contains("old"));
  EXPECT_TRUE(heap.Contains("seen"));
  EXPECT_TRUE(heap.Contains("busy"));
}

TEST(ScheduleHeapTest, StaleNodesAreCompacted) {
  ScheduleHeap heap;
  heap.Set("a", kT0);
  for (int i = 0; i < 10000; ++i) heap.Set("a", kT0 + absl::Seconds(i + 1));
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_LT(heap.node_count(), 2000u);
  EXPECT_EQ(heap.Top()->due, kT0 + absl::Seconds(10000));
}

TEST(ScheduleHeapTest, HundredThousandEntriesPopInOrder) {
  ScheduleHeap heap;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> seconds(0, 10 * 24 * 3600);
  constexpr int kCount = 100000;
  for (int i = 0; i < kCount; ++i) {
    heap.Set(absl::StrCat("secret-", i), kT0 + absl::Seconds(seconds(rng)));
  }
  // Move a tenth of them and remove another tenth.
  for (int i = 0; i < kCount; i += 10)
    heap.Set(absl::StrCat("secret-", i), kT0 + absl::Seconds(seconds(rng)));
  for (int i = 5; i < kCount; i += 10) heap.Remove(absl::StrCat("secret-", i));
  EXPECT_EQ(heap.size(), static_cast<size_t>(kCount - kCount / 10));
  absl::Time last = absl::InfinitePast();
  size_t popped = 0;
  while (auto e = heap.Pop()) {
    ASSERT_GE(e->due, last);
    last = e->due;
    ++popped;
  }
  EXPECT_EQ(popped, static_cast<size_t>(kCount - kCount / 10));
}

}  // namespace
}  // namespace coffer::rotator
