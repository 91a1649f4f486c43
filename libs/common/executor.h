// executor.h: a fixed pool of threads with a bounded queue, for work that
// may block (synced writes, KMS calls) and must never run on gRPC's
// callback threads; and the place where a service sheds load.
//
//   BoundedExecutor pool("store-calls", /*threads=*/16, /*max_pending=*/1024);
//   if (!pool.TrySchedule([=] { DoBlockingWork(); })) {
//     return ResourceExhausted("too many calls in flight");
//   }
//
// TrySchedule never blocks: when `max_pending` tasks are queued or running
// it returns false at once. The destructor runs what is queued, then joins.
// Thread-safe.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace coffer {

class BoundedExecutor {
 public:
  BoundedExecutor(std::string name, int threads, size_t max_pending);
  ~BoundedExecutor();
  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // Queues `task` unless `max_pending` tasks are already queued or running.
  bool TrySchedule(std::function<void()> task);

  // Tasks queued or running now.
  size_t pending() const;
  size_t max_pending() const { return max_pending_; }
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Loop();

  const std::string name_;
  const size_t max_pending_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;  // queued + running
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace coffer
