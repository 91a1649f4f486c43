#include "services/rotator/rotation_runner.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/rotation_steps.h"

namespace coffer::rotator {

const char* ResultName(RunOutcome::Result result) {
  switch (result) {
    case RunOutcome::Result::kSucceeded:
      return "succeeded";
    case RunOutcome::Result::kFailed:
      return "failed";
    case RunOutcome::Result::kBusy:
      return "busy";
    case RunOutcome::Result::kNotDue:
      return "not_due";
    case RunOutcome::Result::kLeaseLost:
      return "lease_lost";
    case RunOutcome::Result::kStopped:
      return "stopped";
    case RunOutcome::Result::kError:
      return "error";
  }
  return "";
}

// ---- StopSignal ----

StopSignal::StopSignal(StopSignal* parent) : parent_(parent) {
  if (parent_ == nullptr) return;
  absl::MutexLock lock(&parent_->mu_);
  parent_->children_.insert(this);
  if (parent_->stopped_) {
    absl::MutexLock self(&mu_);
    stopped_ = true;
  }
}

StopSignal::~StopSignal() {
  if (parent_ != nullptr) {
    absl::MutexLock lock(&parent_->mu_);
    parent_->children_.erase(this);
  }
}

void StopSignal::Stop() {
  // Children are stopped under our lock, so none can unregister (and be
  // destroyed) meanwhile. Lock order: parent before child.
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  for (StopSignal* child : children_) child->Stop();
}

bool StopSignal::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

bool StopSignal::SleepFor(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopped_), d);
  return !stopped_;
}

// ---- one run ----

namespace {

std::string SecondsText(absl::Duration d) { return absl::StrCat(absl::ToDoubleSeconds(d)); }

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(out.seconds()))));
  return out;
}

double DefaultJitter() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// Renews a lease every lease_duration/3 (of real time) until stopped; on
// ABORTED marks the lease lost and stops the run. It also tracks, on the
// runner's clock, how long the lease is certainly still ours (from just
// before the last successful acquire/renew): when renewals keep failing and
// that time runs out, the lease counts as lost — another rotator may hold it
// by then.
class LeaseKeeper {
 public:
  LeaseKeeper(RotationControlClient* control, Clock* clock, std::string secret_id,
              std::string lease_id, absl::Duration lease_duration, StopSignal* run, bool background,
              absl::Time acquired_at)
      : control_(control),
        clock_(clock),
        secret_id_(std::move(secret_id)),
        lease_id_(std::move(lease_id)),
        lease_duration_(lease_duration),
        run_(run),
        valid_until_nanos_(absl::ToUnixNanos(acquired_at + lease_duration)) {
    if (background) thread_ = std::thread([this] { Loop(); });
  }

  // How long the lease is still certainly ours (negative: it may be gone).
  absl::Duration Remaining() const {
    return absl::FromUnixNanos(valid_until_nanos_.load()) - clock_->Now();
  }
  ~LeaseKeeper() { Stop(); }

  void Stop() {
    stop_.Stop();
    if (thread_.joinable()) thread_.join();
  }
  void MarkLost() {
    lost_ = true;
    run_->Stop();
  }
  bool lost() const { return lost_; }

 private:
  void Loop() {
    while (stop_.SleepFor(lease_duration_ / 3)) {
      rot::RenewRotationLeaseRequest request;
      request.set_secret_id(secret_id_);
      request.set_lease_id(lease_id_);
      *request.mutable_lease_duration() = ToProtoDuration(lease_duration_);
      const absl::Time sent = clock_->Now();
      auto renewed = control_->RenewRotationLease(request);
      if (renewed.ok()) {
        valid_until_nanos_ = absl::ToUnixNanos(sent + lease_duration_);
        continue;
      }
      if (renewed.status().code() == absl::StatusCode::kAborted) {
        log::Warn("rotator", "rotation lease lost",
                  {{"secret", secret_id_}, {"error", renewed.status().ToString()}});
        MarkLost();
        return;
      }
      // Transient: try again at the next interval (a third of the lease is
      // left twice over).
      log::Warn("rotator", "rotation lease renewal failed",
                {{"secret", secret_id_}, {"error", renewed.status().ToString()}});
      if (Remaining() <= absl::ZeroDuration()) {
        log::Warn("rotator", "rotation lease expired while it could not be renewed",
                  {{"secret", secret_id_}});
        MarkLost();
        return;
      }
    }
  }

  RotationControlClient* const control_;
  Clock* const clock_;
  const std::string secret_id_;
  const std::string lease_id_;
  const absl::Duration lease_duration_;
  StopSignal* const run_;
  StopSignal stop_;
  std::atomic<bool> lost_{false};
  std::atomic<int64_t> valid_until_nanos_;
  std::thread thread_;
};

bool IsRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition ||
         status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kInvalidArgument ||
         ErrorReason(status) == reason::kInvalidRequest;
}

}  // namespace

class RotationRunner::Run_ {
 public:
  Run_(RotationRunner* runner, const std::string& secret_id, StopSignal* stop)
      : r_(*runner), secret_id_(secret_id), stop_(stop) {}

  RunOutcome Go() {
    rot::AcquireRotationLeaseRequest acquire;
    acquire.set_secret_id(secret_id_);
    acquire.set_holder(r_.options_.holder);
    // The store lets only the secret's own worker write its pending version.
    for (const std::string& name : r_.registry_->names()) {
      const WorkerEndpoint* w = r_.registry_->Find(name);
      if (w != nullptr) (*acquire.mutable_worker_spiffe_ids())[name] = w->spiffe_id();
    }
    *acquire.mutable_lease_duration() = ToProtoDuration(r_.options_.lease_duration);
    const absl::Time asked = r_.options_.clock->Now();
    auto lease = r_.control_->AcquireRotationLease(acquire);
    if (!lease.ok()) {
      out_.status = lease.status();
      if (lease.status().code() == absl::StatusCode::kAborted) {
        out_.result = RunOutcome::Result::kBusy;
      } else if (IsRefusal(lease.status())) {
        out_.result = RunOutcome::Result::kNotDue;
      } else {
        out_.result = RunOutcome::Result::kError;
        log::Warn("rotator", "could not take the rotation lease",
                  {{"secret", secret_id_}, {"error", lease.status().ToString()}});
      }
      return out_;
    }
    lease_ = *std::move(lease);
    out_.worker = lease_.rotation_worker();
    if (r_.probe_ != nullptr) r_.probe_->LeaseAcquired();
    keeper_.emplace(r_.control_, r_.options_.clock, secret_id_, lease_.lease_id(),
                    r_.options_.lease_duration, &run_stop_, r_.options_.renew_in_background, asked);
    RunOutcome out = Steps();
    keeper_->Stop();
    if (r_.probe_ != nullptr) r_.probe_->LeaseReleased();
    return out;
  }

 private:
  RunOutcome Steps() {
    const WorkerEndpoint* worker = r_.registry_->Find(lease_.rotation_worker());
    label_ = worker != nullptr ? lease_.rotation_worker() : kUnregisteredWorker;
    rot::RotationStep step = lease_.next_step() == rot::ROTATION_STEP_UNSPECIFIED
                                 ? rot::ROTATION_STEP_CREATE_SECRET
                                 : lease_.next_step();
    int attempts = lease_.attempts();
    if (r_.probe_ != nullptr) r_.probe_->RunStarted(label_);
    log::Info("rotator",
              step == rot::ROTATION_STEP_CREATE_SECRET && attempts == 0 ? "rotation started"
                                                                        : "rotation resumed",
              {{"secret", secret_id_},
               {"worker", lease_.rotation_worker()},
               {"version_id", lease_.client_request_token()},
               {"step", std::string(RotationStepName(step))},
               {"attempts", absl::StrCat(attempts)}});
    if (worker == nullptr) {
      return Complete(false, absl::StrCat("unknown rotation worker ", lease_.rotation_worker()));
    }

    while (step <= rot::ROTATION_STEP_FINISH_SECRET) {
      const std::string step_name(RotationStepName(step));
      if (run_stop_.stopped()) return Abandon();
      // Never start a step on a lease that may already be someone else's.
      if (r_.options_.renew_in_background &&
          keeper_->Remaining() < r_.options_.lease_duration / 3) {
        log::Warn("rotator", "not starting a step: the lease could not be renewed in time",
                  {{"secret", secret_id_}, {"step", step_name}});
        return Abandon();
      }
      rot::StepRequest request;
      request.set_secret_id(lease_.secret_arn());
      request.set_client_request_token(lease_.client_request_token());
      request.set_step(step);
      Clock* clock = r_.options_.clock;
      const absl::Time started = clock->Now();
      StepResult result = r_.workers_->Step(*worker, request, r_.options_.step_timeout);
      const double seconds = absl::ToDoubleSeconds(clock->Now() - started);
      absl::Status status = CheckIdentity(*worker, result);
      if (r_.probe_ != nullptr) r_.probe_->StepFinished(step_name, status.ok(), seconds);

      if (status.ok()) {
        auto recorded = Record(step, true, "");
        if (!recorded.ok()) return ControlFailure(recorded);
        log::Info(
            "rotator", "rotation step done",
            {{"secret", secret_id_}, {"step", step_name}, {"seconds", absl::StrCat(seconds)}});
        step = static_cast<rot::RotationStep>(step + 1);
        attempts = 0;
        continue;
      }
      if (run_stop_.stopped() && status.code() == absl::StatusCode::kCancelled) return Abandon();
      const std::string error = absl::StrCat(step_name, ": ", status.ToString());
      auto recorded = Record(step, false, error);
      if (!recorded.ok()) return ControlFailure(recorded);
      attempts = std::max(attempts + 1, recorded_attempts_);
      log::Warn("rotator", "rotation step failed",
                {{"secret", secret_id_},
                 {"worker", lease_.rotation_worker()},
                 {"step", step_name},
                 {"attempts", absl::StrCat(attempts)},
                 {"error", status.ToString()}});
      if (attempts >= r_.options_.max_attempts) {
        return Complete(false, absl::StrCat(step_name, " failed ", attempts,
                                            " times; last error: ", status.ToString()));
      }
      const absl::Duration delay = r_.Backoff(attempts);
      log::Debug("rotator", "retrying after backoff",
                 {{"secret", secret_id_}, {"step", step_name}, {"seconds", SecondsText(delay)}});
      bool slept =
          r_.options_.sleep ? r_.options_.sleep(delay, &run_stop_) : run_stop_.SleepFor(delay);
      if (!slept || run_stop_.stopped()) return Abandon();
    }
    return Complete(true, "");
  }

  // The call's status, unless the server is not the registered worker: then
  // the result is not trusted at all.
  static absl::Status CheckIdentity(const WorkerEndpoint& worker, const StepResult& result) {
    if (result.peer_spiffe_id == worker.spiffe_id()) return result.status;
    if (result.peer_spiffe_id.empty() && !result.status.ok()) return result.status;  // no session
    return absl::PermissionDeniedError(
        absl::StrCat("rotation worker ", worker.name(), " at ", worker.address(),
                     " presented identity \"", result.peer_spiffe_id, "\", expected \"",
                     worker.spiffe_id(), "\"; its answer was ignored"));
  }

  absl::Status Record(rot::RotationStep step, bool completed, const std::string& error) {
    rot::RecordRotationProgressRequest request;
    request.set_secret_id(secret_id_);
    request.set_lease_id(lease_.lease_id());
    request.set_step(step);
    request.set_completed(completed);
    request.set_error(error);
    auto response = r_.control_->RecordRotationProgress(request);
    if (!response.ok()) return response.status();
    recorded_attempts_ = response->attempts();
    return absl::OkStatus();
  }

  RunOutcome Complete(bool succeeded, const std::string& error) {
    keeper_->Stop();  // no renewal racing the completion
    if (keeper_->lost()) return Lost(absl::AbortedError("the rotation lease was lost"));
    rot::CompleteRotationRequest request;
    request.set_secret_id(secret_id_);
    request.set_lease_id(lease_.lease_id());
    request.set_succeeded(succeeded);
    request.set_error(error);
    auto done = r_.control_->CompleteRotation(request);
    if (!done.ok() && succeeded && IsRefusal(done.status())) {
      // finishSecret returned OK but did not make the pending version
      // current: a worker bug, recorded as a failed rotation.
      return Complete(false, absl::StrCat("finishSecret did not complete the rotation: ",
                                          done.status().message()));
    }
    if (!done.ok()) return ControlFailure(done.status());
    if (done->has_next_rotation_date()) {
      out_.next_rotation_date = FromProto(done->next_rotation_date());
    }
    out_.result = succeeded ? RunOutcome::Result::kSucceeded : RunOutcome::Result::kFailed;
    if (!succeeded) out_.status = absl::AbortedError(error);
    if (r_.probe_ != nullptr) r_.probe_->RunFinished(label_, succeeded);
    if (succeeded) {
      log::Info("rotator", "rotation succeeded",
                {{"secret", secret_id_},
                 {"worker", lease_.rotation_worker()},
                 {"version_id", lease_.client_request_token()}});
    } else {
      log::Error("rotator", "rotation failed",
                 {{"secret", secret_id_}, {"worker", lease_.rotation_worker()}, {"error", error}});
    }
    return out_;
  }

  RunOutcome Lost(const absl::Status& status) {
    keeper_->MarkLost();
    out_.result = RunOutcome::Result::kLeaseLost;
    out_.status = status;
    log::Warn("rotator", "rotation lease lost: another rotator continues",
              {{"secret", secret_id_}, {"error", status.ToString()}});
    return out_;
  }

  // ABORTED: the lease is gone. Anything else: the store failed; give the
  // lease back (best effort) so that the next attempt need not wait for it.
  RunOutcome ControlFailure(const absl::Status& status) {
    if (status.code() == absl::StatusCode::kAborted) return Lost(status);
    Release();
    out_.result = RunOutcome::Result::kError;
    out_.status = status;
    log::Warn("rotator", "rotation interrupted: the store failed",
              {{"secret", secret_id_}, {"error", status.ToString()}});
    return out_;
  }

  // Stopped by shutdown (lease given back) or by a lost lease.
  RunOutcome Abandon() {
    keeper_->Stop();
    if (keeper_->lost()) return Lost(absl::AbortedError("the rotation lease was lost"));
    Release();
    out_.result = RunOutcome::Result::kStopped;
    out_.status = absl::CancelledError("the rotator is shutting down");
    log::Info("rotator", "rotation paused for shutdown; the next holder resumes it",
              {{"secret", secret_id_}});
    return out_;
  }

  void Release() {
    keeper_->Stop();
    rot::ReleaseRotationLeaseRequest request;
    request.set_secret_id(secret_id_);
    request.set_lease_id(lease_.lease_id());
    absl::Status s = r_.control_->ReleaseRotationLease(request);
    if (!s.ok() && s.code() != absl::StatusCode::kAborted) {
      log::Warn("rotator", "could not release the rotation lease (it will expire)",
                {{"secret", secret_id_}, {"error", s.ToString()}});
    }
  }

  RotationRunner& r_;
  const std::string secret_id_;
  StopSignal* const stop_;
  // Stopped by `stop_` (shutdown) or by the lease keeper (lease lost).
  StopSignal run_stop_{stop_};
  rot::AcquireRotationLeaseResponse lease_;
  std::optional<LeaseKeeper> keeper_;
  std::string label_;
  int recorded_attempts_ = 0;
  RunOutcome out_;
};

RotationRunner::RotationRunner(RotationControlClient* control, WorkerClient* workers,
                               const WorkerRegistry* registry, RotatorProbe* probe,
                               RunnerOptions options)
    : control_(control),
      workers_(workers),
      registry_(registry),
      probe_(probe),
      options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = RealClock();
  if (!options_.jitter) options_.jitter = DefaultJitter;
}

absl::Duration RotationRunner::Backoff(int failed_attempts) {
  absl::Duration cap = options_.backoff_initial;
  for (int i = 1; i < failed_attempts && cap < options_.backoff_max; ++i) cap *= 2;
  cap = std::min(cap, options_.backoff_max);
  const double jitter = std::clamp(options_.jitter(), 0.0, 1.0);
  return cap * jitter;
}

RunOutcome RotationRunner::Run(const std::string& secret_id, StopSignal* stop) {
  Run_ run(this, secret_id, stop);
  return run.Go();
}

}  // namespace coffer::rotator
