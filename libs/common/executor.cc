#include "libs/common/executor.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

namespace coffer {

BoundedExecutor::BoundedExecutor(std::string name, int threads, size_t max_pending)
    : name_(std::move(name)), max_pending_(std::max<size_t>(1, max_pending)) {
  const int n = std::max(1, threads);
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
      Loop();
    });
  }
}

BoundedExecutor::~BoundedExecutor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

bool BoundedExecutor::TrySchedule(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || pending_ >= max_pending_) return false;
  ++pending_;
  queue_.push_back(std::move(task));
  return true;
}

size_t BoundedExecutor::pending() const {
  absl::MutexLock lock(&mu_);
  return pending_;
}

void BoundedExecutor::Loop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](BoundedExecutor* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
    absl::MutexLock lock(&mu_);
    --pending_;
  }
}

}  // namespace coffer
