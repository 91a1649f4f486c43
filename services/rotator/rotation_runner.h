// rotation_runner.h: one rotation of one secret, from lease to completion
// (rotation.md, "The rotator"), against the RotationControlClient and
// WorkerClient interfaces so that it is tested with fakes and a FakeClock.
//
//   RotationRunner runner(control.get(), workers.get(), &registry, &probe, options);
//   StopSignal shutdown;
//   RunOutcome out = runner.Run("db/main", &shutdown);
//
// Run takes the lease (AcquireRotationLease starts the rotation if none is in
// progress and says where to resume), renews it every lease_duration/3 in the
// background, calls the worker's Step for next_step..finishSecret (checking
// that the worker's certificate carries its registered SPIFFE ID), records
// each completed step and each failed attempt, retries a failing step with
// exponential backoff and full jitter, and completes the rotation: failed
// after max_attempts attempts of one step (AWSCURRENT never moves; the store
// guarantees it), succeeded after finishSecret. A lost lease (ABORTED from
// any control call) stops at once: another rotator owns the rotation now.
// `stop` (shutdown) ends the run after the step in flight and gives the lease
// back, so that a new rotator resumes from the recorded step.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "services/rotator/rotation_clients.h"
#include "services/rotator/rotator_config.h"
#include "services/rotator/rotator_probe.h"

namespace coffer::rotator {

// A one-way "stop now" shared between threads, with sleeps that end early.
// A child signal stops when its parent does (a run's signal under the
// rotator's shutdown signal). Thread-safe.
class StopSignal {
 public:
  StopSignal() = default;
  // `parent` (not owned; may be null) must outlive this signal.
  explicit StopSignal(StopSignal* parent);
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void Stop();
  bool stopped() const;
  // Sleeps `d` of real time unless stopped first; false when stopped.
  bool SleepFor(absl::Duration d);

 private:
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  StopSignal* const parent_ = nullptr;
  std::set<StopSignal*> children_ ABSL_GUARDED_BY(mu_);
};

struct RunnerOptions {
  // Who holds the leases ("rotator-<host>-<pid>"); 1-256 characters.
  std::string holder;
  absl::Duration lease_duration = absl::Seconds(30);
  // Failed attempts of one step before the rotation is marked failed.
  int max_attempts = 5;
  // Backoff before retry n (n = failed attempts so far, from 1):
  // uniform in [0, min(backoff_max, backoff_initial * 2^(n-1))].
  absl::Duration backoff_initial = absl::Seconds(1);
  absl::Duration backoff_max = absl::Seconds(60);
  // Deadline of each Step call.
  absl::Duration step_timeout = absl::Seconds(60);
  // Every time the runner reads: how long the lease is still certainly
  // ours, step durations. Not owned. A Rotator sets its own clock here.
  Clock* clock = RealClock();
  // Waits between attempts; false when `stop` fired first. Default:
  // stop->SleepFor(d). Tests inject one that advances a FakeClock.
  std::function<bool(absl::Duration, StopSignal*)> sleep;
  // A number in [0, 1] that scales each backoff cap (full jitter). Default:
  // uniformly random.
  std::function<double()> jitter;
  // Renews the lease every lease_duration/3 on a background thread.
  bool renew_in_background = true;
};

struct RunOutcome {
  enum class Result {
    kSucceeded,  // CompleteRotation(succeeded=true)
    kFailed,     // CompleteRotation(succeeded=false): retried at the next window
    kBusy,       // another rotator holds the lease (ABORTED on acquire)
    kNotDue,     // the store refused the lease: not due, disabled or gone
    kLeaseLost,  // the lease expired or was taken over mid-way
    kStopped,    // shutdown: the lease was given back, the next holder resumes
    kError,      // the store failed (unreachable...): the lease was given back if possible
  };
  Result result = Result::kError;
  // The secret's rotation_worker ("" when the lease was not taken).
  std::string worker;
  // Why it did not succeed.
  absl::Status status;
  // From CompleteRotation: when the next window starts.
  std::optional<absl::Time> next_rotation_date;
};

const char* ResultName(RunOutcome::Result result);

class RotationRunner {
 public:
  // None is owned; `probe` may be null.
  RotationRunner(RotationControlClient* control, WorkerClient* workers,
                 const WorkerRegistry* registry, RotatorProbe* probe, RunnerOptions options);

  // Runs or resumes the rotation of `secret_id` (name or ARN) if the store
  // grants the lease. Thread-safe: runs of different secrets may overlap.
  RunOutcome Run(const std::string& secret_id, StopSignal* stop);

 private:
  class Run_;
  absl::Duration Backoff(int failed_attempts);

  RotationControlClient* const control_;
  WorkerClient* const workers_;
  const WorkerRegistry* const registry_;
  RotatorProbe* const probe_;
  RunnerOptions options_;
};

}  // namespace coffer::rotator
