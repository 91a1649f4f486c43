#include "services/store/changes/watch_stream.h"

#include <pthread.h>

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/status.h"

namespace coffer::store {

namespace {

// Events read from the log at a time.
constexpr size_t kReadBatch = 100;

// Rejects a watch before it streams anything.
class FailedWatch final : public grpc::ServerWriteReactor<coffer::v1::ChangeEvent> {
 public:
  explicit FailedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

// --- WatchRegistry -------------------------------------------------------

WatchRegistry::WatchRegistry(WatchLimits limits) : limits_(limits) {
  dispatcher_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "watch-dispatch");
    Dispatch();
  });
}

WatchRegistry::~WatchRegistry() {
  StopAll();
  {
    absl::MutexLock lock(&mu_);
    auto none_left = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reactors_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&none_left), absl::Seconds(5));
    dispatcher_stopping_ = true;
  }
  dispatcher_.join();
}

void WatchRegistry::Wake(WatchReactor* reactor) {
  absl::MutexLock lock(&mu_);
  if (reactors_.count(reactor) != 0) dirty_.insert(reactor);
}

void WatchRegistry::Dispatch() {
  while (true) {
    std::vector<WatchReactor*> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WatchRegistry* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->dispatcher_stopping_ || !self->dirty_.empty();
          },
          this));
      if (dispatcher_stopping_) return;
      // Still registered (Remove drops them from dirty_ too), so alive: a
      // reference keeps them so until their pump is over.
      for (WatchReactor* reactor : dirty_) {
        reactor->Ref();
        batch.push_back(reactor);
      }
      dirty_.clear();
    }
    for (WatchReactor* reactor : batch) {
      reactor->Pump();
      reactor->Unref();
    }
  }
}

void WatchRegistry::StopAll() {
  std::vector<WatchReactor*> to_stop;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (WatchReactor* reactor : reactors_) {
      reactor->Ref();  // Keeps it alive even if its OnDone runs meanwhile.
      to_stop.push_back(reactor);
    }
  }
  // Without mu_: Stop may run OnDone inline, which calls Remove.
  for (WatchReactor* reactor : to_stop) {
    reactor->Stop();
    reactor->Unref();
  }
}

size_t WatchRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return reactors_.size();
}

absl::Status WatchRegistry::Reserve(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  size_t& mine = per_identity_[principal];
  if (reserved_ >= limits_.max_total || mine >= limits_.max_per_identity) {
    const bool total = reserved_ >= limits_.max_total;
    if (mine == 0) per_identity_.erase(principal);
    return ErrorWithCode(absl::StatusCode::kResourceExhausted, reason::kLimitExceeded,
                         total ? absl::StrCat("this server holds ", limits_.max_total,
                                              " watch streams, the most it allows")
                               : absl::StrCat("this caller holds ", limits_.max_per_identity,
                                              " watch streams, the most one identity may hold"));
  }
  ++mine;
  ++reserved_;
  return absl::OkStatus();
}

void WatchRegistry::Release(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  auto it = per_identity_.find(principal);
  if (it == per_identity_.end()) return;
  if (--it->second == 0) per_identity_.erase(it);
  --reserved_;
}

bool WatchRegistry::Add(WatchReactor* reactor) {
  absl::MutexLock lock(&mu_);
  reactors_.insert(reactor);
  return !stopped_;
}

void WatchRegistry::Remove(WatchReactor* reactor) {
  absl::MutexLock lock(&mu_);
  reactors_.erase(reactor);
  dirty_.erase(reactor);
}

// --- WatchReactor --------------------------------------------------------

WatchReactor::WatchReactor(ChangeLog* log, uint64_t start_after, Filter filter,
                           WatchRegistry* registry, std::string principal)
    : log_(log), filter_(std::move(filter)), registry_(registry), principal_(std::move(principal)) {
  {
    absl::MutexLock lock(&mu_);
    read_position_ = start_after;
  }
  // Tells the client the stream is anchored: from here on it misses nothing
  // after `start_after` (a client watching "from now" waits for this before
  // it trusts what it read earlier).
  StartSendInitialMetadata();
  if (registry_ != nullptr && !registry_->Add(this)) Stop();
  // Before the handler returns the reactor, gRPC only records StartWrite and
  // Finish, so the callback may pump from here on.
  // A commit only marks this stream to advance; the registry's dispatcher
  // reads the log (without a registry, the committing thread does).
  subscription_ = log_->Subscribe([this] {
    if (registry_ != nullptr) {
      registry_->Wake(this);
    } else {
      Pump();
    }
  });
  Pump();
}

WatchReactor::~WatchReactor() = default;

absl::StatusOr<uint64_t> WatchReactor::StartPosition(ChangeLog& log,
                                                     const std::string& start_after) {
  if (start_after.empty()) return log.Watermark();
  COFFER_ASSIGN_OR_RETURN(uint64_t position, ChangeLog::DecodePosition("start_after", start_after));
  const uint64_t oldest = log.Oldest();
  const uint64_t watermark = log.Watermark();
  // A position from another replica may be a little ahead of this one:
  // the client tries again (here or elsewhere) with the same position.
  if (position > watermark && log.shared()) {
    return absl::UnavailableError(absl::StrCat("start_after: position ", position,
                                               " is ahead of what this replica has seen (newest ",
                                               watermark, "); try again"));
  }
  // Every position ever sent is <= the watermark (restarts included), so a
  // bigger one is not from this log (or from a restored older copy of it).
  if (position > watermark) {
    return absl::OutOfRangeError(absl::StrCat("start_after: position ", position,
                                              " is ahead of the change log (newest ", watermark,
                                              ")"));
  }
  if (position + 1 < oldest) {
    return absl::OutOfRangeError(absl::StrCat("start_after: position ", position,
                                              " is older than the retained change log (oldest ",
                                              oldest, ")"));
  }
  return position;
}

grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* WatchReactor::Start(
    runtime::CallGate& gate, grpc::CallbackServerContext& context, absl::string_view action,
    ChangeLog* log, WatchRegistry* registry, const std::string& start_after,
    const std::function<absl::StatusOr<Filter>(const authz::Access&)>& make_filter) {
  authz::Access access = gate.AccessFor(context);
  absl::Status admitted = gate.Admit();
  if (admitted.ok() && log == nullptr) {
    admitted = absl::UnimplementedError("this server keeps no change log");
  }
  absl::StatusOr<Filter> filter =
      admitted.ok() ? make_filter(access) : absl::StatusOr<Filter>(admitted);
  absl::StatusOr<uint64_t> start =
      filter.ok() ? StartPosition(*log, start_after) : absl::StatusOr<uint64_t>(filter.status());
  // A slot under the caps (per identity and in all); the principal names it
  // ("-" for a caller without an identity, never an empty key).
  const std::string holder = access.principal().empty() ? "-" : access.principal();
  bool reserved = false;
  if (start.ok() && registry != nullptr) {
    absl::Status slot = registry->Reserve(holder);
    if (!slot.ok()) start = slot;
    reserved = slot.ok();
  }
  absl::Status status = gate.RecordAndWait(context, action, access, start.status());
  if (!status.ok()) {
    if (reserved) registry->Release(holder);
    return Failed(status);
  }
  return new WatchReactor(log, *start, std::move(filter).value(), registry, reserved ? holder : "");
}

grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* WatchReactor::Failed(
    const absl::Status& status) {
  return new FailedWatch(rpc::ToGrpcStatus(status));
}

void WatchReactor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_requested_ = true;
  }
  Pump();
}

void WatchReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;  // The stream is broken: only Finish is left.
  }
  Pump();
}

void WatchReactor::OnCancel() {
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  Pump();
}

void WatchReactor::OnDone() {
  if (registry_ != nullptr) {
    registry_->Remove(this);
    if (!principal_.empty()) registry_->Release(principal_);
  }
  // Waits for a callback running on another thread; after this none runs.
  subscription_.reset();
  bool destroy;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    destroy = refs_ == 0;
  }
  if (destroy) delete this;
}

void WatchReactor::Ref() {
  absl::MutexLock lock(&mu_);
  ++refs_;
}

void WatchReactor::Unref() {
  bool destroy;
  {
    absl::MutexLock lock(&mu_);
    --refs_;
    destroy = done_ && refs_ == 0;
  }
  if (destroy) delete this;
}

void WatchReactor::Pump() {
  mu_.Lock();
  if (pumping_) {
    // The pumping thread looks again before it stops.
    pump_again_ = true;
    mu_.Unlock();
    return;
  }
  pumping_ = true;
  for (;;) {
    pump_again_ = false;
    if (finished_ || writing_) break;  // OnWriteDone pumps again.
    if (cancelled_ || stop_requested_ || !error_.ok()) {
      grpc::Status status = grpc::Status::OK;
      if (cancelled_) {
        status = grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
      } else if (!error_.ok()) {
        status = rpc::ToGrpcStatus(error_);
      }
      finished_ = true;
      pumping_ = false;
      mu_.Unlock();
      Finish(status);  // May delete this.
      return;
    }
    if (!buffered_.empty()) {
      response_ = std::move(buffered_.front());
      buffered_.pop_front();
      writing_ = true;
      pumping_ = false;
      mu_.Unlock();
      StartWrite(&response_);  // May delete this (via an inline OnDone).
      return;
    }

    // Caught up with what was read: read on, without mu_ (the log's
    // callbacks only need pump_again_).
    const uint64_t after = read_position_;
    mu_.Unlock();
    absl::StatusOr<std::vector<coffer::v1::ChangeEvent>> events = log_->Read(after, kReadBatch);
    uint64_t last = after;
    std::vector<coffer::v1::ChangeEvent> passed;
    absl::Status status = events.status();
    if (status.ok()) {
      for (coffer::v1::ChangeEvent& event : *events) {
        if (!absl::SimpleAtoi(event.position(), &last)) {
          status = absl::InternalError(
              absl::StrCat("change log returned position '", event.position(), "'"));
          break;
        }
        if (!filter_ || filter_(event)) passed.push_back(std::move(event));
      }
    }
    mu_.Lock();
    if (!status.ok()) {
      error_ = status;
      continue;
    }
    read_position_ = last;
    for (coffer::v1::ChangeEvent& event : passed) buffered_.push_back(std::move(event));
    // Nothing new and no wake-up meanwhile: wait for the next advance.
    if (events->empty() && !pump_again_) break;
  }
  pumping_ = false;
  mu_.Unlock();
}

}  // namespace coffer::store
