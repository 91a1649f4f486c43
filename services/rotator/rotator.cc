#include "services/rotator/rotator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"

namespace coffer::rotator {
namespace {

// How long the timer sleeps while due work waits for a free pool thread
// (only then: an idle rotator sleeps until the earliest due time).
constexpr absl::Duration kBusyRecheck = absl::Seconds(15);
// An entry due longer ago than this, and not being worked on, is overdue.
constexpr absl::Duration kOverdueAfter = absl::Minutes(1);

// One clock per rotator: the runner reads the rotator's.
RunnerOptions RunnerOptionsWithClock(RunnerOptions options, Clock* clock) {
  options.clock = clock;
  return options;
}

}  // namespace

std::optional<absl::Time> DueTime(const rot::RotationScheduleEntry& entry, absl::Time now) {
  std::optional<absl::Time> due;
  if (entry.has_next_rotation_date()) due = FromProto(entry.next_rotation_date());
  if (entry.in_progress()) due = due ? std::min(*due, now) : now;
  if (!due) return std::nullopt;
  if (entry.has_lease_expires()) due = std::max(*due, FromProto(entry.lease_expires()));
  return due;
}

Rotator::Rotator(RotationControlClient* control, SecretsWatchClient* watch, WorkerClient* workers,
                 const WorkerRegistry* registry, RotatorProbe* probe, RotatorOptions options)
    : control_(control),
      watch_(watch),
      workers_(workers),
      probe_(probe),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      runner_(control, workers, registry, probe, RunnerOptionsWithClock(options_.runner, clock_)) {}

Rotator::~Rotator() { Shutdown(absl::ZeroDuration()); }

void Rotator::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) return;
    started_ = true;
  }
  // The watch first: the resync waits until the stream is open.
  watch_thread_ = std::thread([this] { WatchLoop(); });
  resync_thread_ = std::thread([this] { ResyncLoop(); });
  timer_thread_ = std::thread([this] { TimerLoop(); });
  for (int i = 0; i < std::max(1, options_.concurrency); ++i) {
    pool_.emplace_back([this] { PoolLoop(); });
  }
}

void Rotator::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    if (stream_ != nullptr) stream_->Cancel();
    timer_cv_.SignalAll();
    pool_cv_.SignalAll();
    resync_cv_.SignalAll();
  }
  // Backoff sleeps end at once; a step in flight finishes (runs then give
  // their lease back) until the grace period is over.
  stop_.Stop();
  {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&idle), grace)) {
      log::Warn("rotator", "cancelling rotation steps still running after the grace period",
                {{"running", absl::StrCat(running_)}});
    }
  }
  workers_->CancelAll();
  for (std::thread* t : {&watch_thread_, &resync_thread_, &timer_thread_}) {
    if (t->joinable()) t->join();
  }
  for (auto& t : pool_) {
    if (t.joinable()) t.join();
  }
  pool_.clear();
}

bool Rotator::ready() const {
  absl::MutexLock lock(&mu_);
  return ready_;
}

size_t Rotator::scheduled() const {
  absl::MutexLock lock(&mu_);
  return heap_.size();
}

size_t Rotator::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_.size();
}

void Rotator::UpdateGauges() {
  if (probe_ == nullptr) return;
  probe_->SetScheduled(heap_.size());
  probe_->SetOverdue(heap_.CountDueBefore(Now() - kOverdueAfter));
}

// ---- the watch ----

void Rotator::WatchLoop() {
  std::string position;
  absl::Duration backoff = options_.retry_initial;
  while (!stop_.stopped()) {
    std::unique_ptr<ChangeStream> stream = watch_->Watch(position);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      stream_ = stream.get();
      watch_opened_ = true;
      resync_cv_.SignalAll();
    }
    coffer::v1::ChangeEvent event;
    while (stream->Next(&event)) {
      backoff = options_.retry_initial;
      position = event.position();
      if (event.name().empty()) continue;
      if (event.kind() == coffer::v1::CHANGE_KIND_UPDATED) {
        // A new value cannot turn rotation on: only secrets already
        // scheduled need a look (their pending version may have changed).
        absl::MutexLock lock(&mu_);
        if (!heap_.Contains(event.name())) continue;
      }
      Refresh(event.name(), /*after_run=*/false, absl::InfinitePast());
    }
    absl::Status status = stream->Finish();
    {
      absl::MutexLock lock(&mu_);
      stream_ = nullptr;
      if (stopping_) break;
      if (status.code() == absl::StatusCode::kOutOfRange) {
        // Events were trimmed before we could read them: start over from
        // now and re-read everything.
        position.clear();
        resync_now_ = true;
        resync_cv_.SignalAll();
      }
    }
    log::Warn("rotator", "secrets watch ended; reconnecting",
              {{"error", status.ToString()},
               {"backoff_seconds", absl::StrCat(absl::ToDoubleSeconds(backoff))}});
    if (!stop_.SleepFor(backoff)) break;
    backoff = std::min(backoff * 2, options_.retry_max);
  }
}

void Rotator::Refresh(const std::string& name, bool after_run, absl::Time not_before) {
  {
    absl::MutexLock lock(&mu_);
    if (!after_run && in_flight_.contains(name)) return;  // re-read when its run ends
  }
  rot::ListRotationSchedulesRequest request;
  request.set_secret_id(name);
  auto listed = control_->ListRotationSchedules(request);
  absl::MutexLock lock(&mu_);
  if (after_run) in_flight_.erase(name);
  if (stopping_ || in_flight_.contains(name)) return;
  const absl::Time now = Now();
  if (!listed.ok()) {
    if (listed.status().code() == absl::StatusCode::kNotFound) {
      heap_.Remove(name);
    } else {
      log::Warn("rotator", "could not read a rotation schedule; retrying later",
                {{"secret", name}, {"error", listed.status().ToString()}});
      heap_.Set(name, std::max(heap_.DueOf(name).value_or(now), now + options_.refused_retry),
                epoch_);
    }
  } else {
    std::optional<absl::Time> due;
    for (const auto& entry : listed->schedules()) {
      if (entry.name() == name || entry.secret_arn() == name) due = DueTime(entry, now);
    }
    if (due) {
      heap_.Set(name, std::max(*due, not_before), epoch_);
    } else {
      heap_.Remove(name);
    }
  }
  UpdateGauges();
  timer_cv_.Signal();
}

// ---- full resync ----

absl::Status Rotator::FullResync() {
  uint64_t epoch;
  {
    absl::MutexLock lock(&mu_);
    epoch = ++epoch_;
    resync_now_ = false;
  }
  std::string token;
  size_t seen = 0;
  do {
    rot::ListRotationSchedulesRequest request;
    request.set_max_results(1000);
    request.set_next_token(token);
    auto page = control_->ListRotationSchedules(request);
    if (!page.ok()) return page.status();
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("shutting down");
    const absl::Time now = Now();
    for (const auto& entry : page->schedules()) {
      ++seen;
      if (in_flight_.contains(entry.name())) continue;
      if (auto due = DueTime(entry, now)) {
        heap_.Set(entry.name(), *due, epoch);
      } else {
        heap_.Remove(entry.name());
      }
    }
    timer_cv_.Signal();
    token = page->next_token();
  } while (!token.empty());
  absl::MutexLock lock(&mu_);
  // Entries neither listed nor touched by the watch since the resync began
  // are gone from the store.
  size_t removed = heap_.RemoveTaggedBelow(
      epoch, [this](const std::string& name)
                 ABSL_NO_THREAD_SAFETY_ANALYSIS { return in_flight_.contains(name); });
  UpdateGauges();
  timer_cv_.Signal();
  log::Info("rotator", "rotation schedules loaded",
            {{"listed", absl::StrCat(seen)},
             {"scheduled", absl::StrCat(heap_.size())},
             {"removed", absl::StrCat(removed)}});
  return absl::OkStatus();
}

void Rotator::ResyncLoop() {
  {
    absl::MutexLock lock(&mu_);
    while (!watch_opened_ && !stopping_) resync_cv_.Wait(&mu_);
  }
  absl::Duration backoff = options_.retry_initial;
  for (;;) {
    absl::Status loaded = FullResync();
    if (stop_.stopped()) return;
    if (loaded.ok()) break;
    log::Warn("rotator", "loading the rotation schedules failed; retrying",
              {{"error", loaded.ToString()}});
    if (!stop_.SleepFor(backoff)) return;
    backoff = std::min(backoff * 2, options_.retry_max);
  }
  {
    absl::MutexLock lock(&mu_);
    ready_ = true;
  }
  if (options_.on_ready) options_.on_ready();

  absl::Time next = Now() + options_.resync_interval;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // The clock decides when the interval has passed; the wait in between
      // is on real time (as the timer's).
      for (absl::Time now = Now(); !stopping_ && !resync_now_ && now < next; now = Now()) {
        resync_cv_.WaitWithTimeout(&mu_, next - now);
      }
      if (stopping_) return;
    }
    absl::Status s = FullResync();
    if (stop_.stopped()) return;
    if (!s.ok()) {
      log::Warn("rotator", "rotation schedule resync failed", {{"error", s.ToString()}});
      next = Now() + std::min(options_.resync_interval, options_.retry_max);
    } else {
      next = Now() + options_.resync_interval;
    }
  }
}

// ---- timer and pool ----

void Rotator::TimerLoop() {
  const size_t slots = static_cast<size_t>(std::max(1, options_.concurrency));
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const absl::Time now = Now();
    while (in_flight_.size() < slots) {
      auto due = heap_.PopDue(now);
      if (!due) break;
      in_flight_.insert(due->name);
      queue_.push_back(due->name);
      pool_cv_.Signal();
    }
    UpdateGauges();
    auto top = heap_.Top();
    if (!top) {
      timer_cv_.Wait(&mu_);  // until the schedule changes
    } else if (top->due <= now) {
      timer_cv_.WaitWithTimeout(&mu_, kBusyRecheck);  // the pool is full
    } else {
      timer_cv_.WaitWithTimeout(&mu_, top->due - now);
    }
  }
}

void Rotator::PoolLoop() {
  for (;;) {
    std::string name;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) pool_cv_.Wait(&mu_);
      if (stopping_) {
        // Not started: nothing to give back.
        for (const auto& queued : queue_) in_flight_.erase(queued);
        queue_.clear();
        return;
      }
      name = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    RunOutcome out = runner_.Run(name, &stop_);
    log::Debug(
        "rotator", "rotation run ended",
        {{"secret", name}, {"result", ResultName(out.result)}, {"status", out.status.ToString()}});
    const absl::Time now = Now();
    absl::Time not_before = now + absl::Seconds(1);
    if (out.result == RunOutcome::Result::kNotDue || out.result == RunOutcome::Result::kError) {
      not_before = now + options_.refused_retry;
    }
    if (out.result != RunOutcome::Result::kStopped) {
      Refresh(name, /*after_run=*/true, not_before);  // takes it out of in_flight_
    }
    absl::MutexLock lock(&mu_);
    if (out.result == RunOutcome::Result::kStopped) in_flight_.erase(name);
    --running_;
    timer_cv_.Signal();
  }
}

}  // namespace coffer::rotator
