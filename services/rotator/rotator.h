// rotator.h: the scheduler of coffer-rotator (rotation.md, "The rotator";
// performance.md: 1,000,000 rotation-enabled secrets, idle CPU ~ 0, next-due
// lookup O(log n)).
//
//   Rotator rotator(control.get(), watch.get(), workers.get(), &registry, &probe, options);
//   options.on_ready = [&] { health.Set("", true); };   // first schedule load done
//   rotator.Start();
//   ... SIGTERM ...
//   rotator.Shutdown(absl::Seconds(10));
//
// Stateless: everything it knows comes from the store and can be rebuilt.
// At start it opens WatchSecrets first (so that no change is missed), then
// pages through ListRotationSchedules into a ScheduleHeap. Every watch event
// re-reads that one secret's schedule. A timer thread sleeps on a condition
// variable until the earliest entry is due (no polling of idle secrets) and
// hands due secrets to a bounded pool of `concurrency` threads, each running
// one RotationRunner::Run at a time. After a run the secret's schedule is
// read again (next window, or the other holder's lease expiry). A full
// resync every `resync_interval` guards against missed events; the watch
// reconnects after the last position it saw, with backoff (OUT_OF_RANGE:
// trimmed events, so it starts from now and resyncs at once).
//
// Known limits: the store fixes a new watch's start position when it handles
// the call, which the client cannot observe, so a change in the instant
// between opening the watch and the first page is caught by the next resync
// (or when the secret is next due) rather than at once. Lease calls emit no
// change events: another rotator's ReleaseRotationLease or CompleteRotation
// is seen when that lease would have expired (the acquire then refreshes).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "services/rotator/rotation_clients.h"
#include "services/rotator/rotation_runner.h"
#include "services/rotator/rotator_config.h"
#include "services/rotator/rotator_probe.h"
#include "services/rotator/schedule_heap.h"

namespace coffer::rotator {

struct RotatorOptions {
  RunnerOptions runner;
  // Rotations worked on at the same time.
  int concurrency = 4;
  // Full re-read of every schedule.
  absl::Duration resync_interval = absl::Minutes(10);
  // Backoff of watch reconnects and of the initial schedule load.
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Seconds(30);
  // Earliest retry of a secret whose lease the store refused or whose run
  // failed for lack of the store (so one secret cannot spin).
  absl::Duration refused_retry = absl::Seconds(60);
  // The rotator's time: "now" of the schedule and of the resync interval,
  // and, given to the runner (replacing runner.clock), lease validity and
  // step durations. Not owned.
  Clock* clock = RealClock();
  // Called once, when the first full schedule load has succeeded.
  std::function<void()> on_ready;
};

// When an entry should be worked on: its next rotation date (at once when a
// rotation is in progress), but not before another holder's lease ends.
// nullopt: nothing to schedule.
std::optional<absl::Time> DueTime(const rot::RotationScheduleEntry& entry, absl::Time now);

class Rotator {
 public:
  // None is owned; all must outlive the Rotator. `probe` may be null.
  Rotator(RotationControlClient* control, SecretsWatchClient* watch, WorkerClient* workers,
          const WorkerRegistry* registry, RotatorProbe* probe, RotatorOptions options);
  // Shutdown(zero grace) if still running.
  ~Rotator();
  Rotator(const Rotator&) = delete;
  Rotator& operator=(const Rotator&) = delete;

  void Start();
  // Stops taking new work, lets steps in flight finish for up to `grace`
  // (then cancels them), gives back the leases of unfinished rotations (the
  // next rotator resumes them from the recorded step) and joins every
  // thread. Idempotent.
  void Shutdown(absl::Duration grace);

  bool ready() const;
  // Secrets in the schedule, not counting those being worked on.
  size_t scheduled() const;
  // Secrets being worked on (or handed to the pool).
  size_t in_flight() const;

 private:
  void WatchLoop();
  void ResyncLoop();
  void TimerLoop();
  void PoolLoop();

  absl::Status FullResync();
  // Re-reads one secret's schedule and updates the heap. Secrets in flight
  // are left alone unless `after_run` (the run's end re-reads them).
  void Refresh(const std::string& name, bool after_run, absl::Time not_before);
  absl::Time Now() const { return clock_->Now(); }
  void UpdateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RotationControlClient* const control_;
  SecretsWatchClient* const watch_;
  WorkerClient* const workers_;
  RotatorProbe* const probe_;
  const RotatorOptions options_;
  Clock* const clock_;
  RotationRunner runner_;
  // Shutdown: parent of every run's stop signal; wakes backoff sleeps.
  StopSignal stop_;

  mutable absl::Mutex mu_;
  absl::CondVar timer_cv_;
  absl::CondVar pool_cv_;
  absl::CondVar resync_cv_;
  ScheduleHeap heap_ ABSL_GUARDED_BY(mu_);
  // Names handed to the pool (queued or running); never in heap_.
  absl::flat_hash_set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  // Tag of heap entries written since the current resync began.
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool resync_now_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_opened_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ChangeStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;

  std::thread watch_thread_;
  std::thread resync_thread_;
  std::thread timer_thread_;
  std::vector<std::thread> pool_;
};

}  // namespace coffer::rotator
