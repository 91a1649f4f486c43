// periodic.h: one background thread that runs a function every `interval`
// (the KMS sweeper, the store's KMS monitor...), stoppable at once.
//
//   coffer::PeriodicTask sweeper("kms-maintenance", absl::Minutes(1), [&] {
//     auto result = store->RunMaintenance();
//     ...
//   });
//   sweeper.Start();   // first run one interval from now
//   sweeper.RunNow();  // optional: run as soon as the thread is free
//   ...
//   sweeper.Stop();    // wakes the sleeping thread, waits for a run in progress
//
// Contract:
//  - `fn` runs on the task's own thread only, never twice at the same time;
//    the next run starts `interval` after the previous one ended.
//  - Start() starts the thread once; later calls, and calls after Stop(), do
//    nothing.
//  - Stop() wakes the thread at once (no wait for the interval), lets a run
//    in progress finish, and joins. Idempotent; the destructor calls it. It
//    must not be called from `fn` (that would join the calling thread).
//  - RunNow() asks for one run as soon as the thread is free (calls before it
//    runs collapse into one); before Start() it makes the first run
//    immediate. After Stop() it does nothing.
// Thread-safe: Start, Stop and RunNow may be called from any thread.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace coffer {

class PeriodicTask {
 public:
  // `name` names the thread (its first 15 characters) for ps/top/gdb.
  PeriodicTask(std::string name, absl::Duration interval, std::function<void()> fn);
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  void Start();
  void Stop();
  void RunNow();

  const std::string& name() const { return name_; }

 private:
  void Loop();

  const std::string name_;
  const absl::Duration interval_;
  const std::function<void()> fn_;

  absl::Mutex mu_;
  absl::CondVar wake_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool run_now_ ABSL_GUARDED_BY(mu_) = false;
  // Written by Start before the thread exists, joined by the one Stop that
  // set stopping_.
  std::thread thread_;
};

}  // namespace coffer
