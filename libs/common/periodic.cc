#include "libs/common/periodic.h"

#include <pthread.h>

#include <utility>

#include "absl/time/clock.h"

namespace coffer {

PeriodicTask::PeriodicTask(std::string name, absl::Duration interval, std::function<void()> fn)
    : name_(std::move(name)), interval_(interval), fn_(std::move(fn)) {}

PeriodicTask::~PeriodicTask() { Stop(); }

void PeriodicTask::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void PeriodicTask::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    wake_.SignalAll();
  }
  // Only the first Stop gets here, and Start can no longer start a thread.
  if (thread_.joinable()) thread_.join();
}

void PeriodicTask::RunNow() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  run_now_ = true;
  wake_.SignalAll();
}

void PeriodicTask::Loop() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  mu_.Lock();
  while (!stopping_) {
    // Sleeps until the interval has passed (real time: this is a wait, not
    // logic that reads the time), RunNow or Stop.
    const absl::Time due = absl::Now() + interval_;
    while (!stopping_ && !run_now_) {
      if (wake_.WaitWithDeadline(&mu_, due)) break;  // the interval has passed
    }
    if (stopping_) break;
    run_now_ = false;
    mu_.Unlock();
    fn_();
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace coffer
