#include "libs/rpc/health.h"

#include <optional>
#include <utility>
#include <vector>

namespace coffer::rpc {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ServingStatus = HealthCheckResponse::ServingStatus;

namespace {
ServingStatus ToServingStatus(bool serving) {
  return serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}
}  // namespace

// One Watch stream. gRPC deletes a reactor only after OnDone; the owner may
// still hold a pointer taken under its mu_ at that moment, so deletion waits
// until OnDone has happened AND no such reference is outstanding (refs_).
//
// Locking: state_mu_ guards the state below and is never held while calling
// StartWrite/Finish, whose reactions (OnWriteDone, OnDone) may run inline on
// the calling thread and take state_mu_ or the owner's mu_ themselves; for the
// same reason the owner's mu_ is never held around them either. Only one
// write is in flight at a time; the latest status waits in pending_.
class HealthStatus::Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthStatus* owner, std::string service) : owner_(owner), service_(std::move(service)) {}

  const std::string& service() const { return service_; }

  // Taken by the owner under its mu_ while this watcher is in watchers_.
  void Ref() {
    absl::MutexLock lock(&state_mu_);
    ++refs_;
  }
  void Unref() {
    bool destroy;
    {
      absl::MutexLock lock(&state_mu_);
      --refs_;
      destroy = done_ && refs_ == 0;
    }
    if (destroy) delete this;
  }

  // Queue* only record what should happen and may be called under the
  // owner's mu_ (lock order: owner mu_, then state_mu_); Pump() then acts
  // and must be called without either lock.

  // Queues `status` to be written (only the latest pending status is kept).
  void QueueUpdate(ServingStatus status) {
    absl::MutexLock lock(&state_mu_);
    if (!finish_requested_) pending_ = status;
  }
  // Ends the stream with OK once the pending status has been written.
  void QueueFinish() {
    absl::MutexLock lock(&state_mu_);
    finish_requested_ = true;
  }

  void Pump() {
    Action action = Action::kNone;
    {
      absl::MutexLock lock(&state_mu_);
      if (finished_ || writing_) return;
      if (!cancelled_ && pending_.has_value() && *pending_ != last_sent_) {
        response_.set_status(*pending_);
        last_sent_ = *pending_;
        pending_.reset();
        writing_ = true;
        action = Action::kWrite;
      } else if (cancelled_ || finish_requested_) {
        finished_ = true;
        action = Action::kFinish;
      } else {
        pending_.reset();
      }
    }
    if (action == Action::kWrite) StartWrite(&response_);
    if (action == Action::kFinish) Finish(grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&state_mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;  // the stream is broken: only Finish is left
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&state_mu_);
      cancelled_ = true;
    }
    Pump();
  }

  void OnDone() override {
    owner_->RemoveWatcher(this);
    bool destroy;
    {
      absl::MutexLock lock(&state_mu_);
      done_ = true;
      destroy = refs_ == 0;
    }
    if (destroy) delete this;
  }

 private:
  enum class Action { kNone, kWrite, kFinish };

  HealthStatus* const owner_;
  const std::string service_;
  absl::Mutex state_mu_;
  int refs_ ABSL_GUARDED_BY(state_mu_) = 0;
  bool done_ ABSL_GUARDED_BY(state_mu_) = false;
  bool writing_ ABSL_GUARDED_BY(state_mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(state_mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(state_mu_) = false;
  bool finished_ ABSL_GUARDED_BY(state_mu_) = false;
  std::optional<ServingStatus> pending_ ABSL_GUARDED_BY(state_mu_);
  // Nothing sent yet: any first status differs from this.
  ServingStatus last_sent_ ABSL_GUARDED_BY(state_mu_) = static_cast<ServingStatus>(-1);
  // Must stay untouched while a write is in flight (writing_).
  HealthCheckResponse response_;
};

HealthStatus::HealthStatus(size_t max_watchers) : max_watchers_(max_watchers) {}

HealthStatus::~HealthStatus() {
  Shutdown();
  // Streams end once their last write completes; the servers using this
  // object are normally shut down (cancelling every call) before this runs.
  absl::MutexLock lock(&mu_);
  auto no_watchers = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return watchers_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&no_watchers), absl::Seconds(5));
}

void HealthStatus::Set(const std::string& service, bool serving) {
  std::vector<Watcher*> to_notify;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;  // NOT_SERVING for good
    status_[service] = serving;
    auto range = watchers_.equal_range(service);
    for (auto it = range.first; it != range.second; ++it) {
      it->second->QueueUpdate(ToServingStatus(serving));
      it->second->Ref();
      to_notify.push_back(it->second);
    }
  }
  for (Watcher* watcher : to_notify) {
    watcher->Pump();
    watcher->Unref();
  }
}

ServingStatus HealthStatus::Get(const std::string& service) const {
  absl::MutexLock lock(&mu_);
  auto it = status_.find(service);
  if (it == status_.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
  return ToServingStatus(it->second);
}

void HealthStatus::Shutdown() {
  std::vector<Watcher*> to_end;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    for (auto& [service, serving] : status_) serving = false;
    for (auto& [service, watcher] : watchers_) {
      auto it = status_.find(service);
      watcher->QueueUpdate(it == status_.end() ? HealthCheckResponse::SERVICE_UNKNOWN
                                               : HealthCheckResponse::NOT_SERVING);
      watcher->QueueFinish();
      watcher->Ref();
      to_end.push_back(watcher);
    }
  }
  for (Watcher* watcher : to_end) {
    watcher->Pump();
    watcher->Unref();
  }
}

void HealthStatus::RemoveWatcher(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  auto range = watchers_.equal_range(watcher->service());
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == watcher) {
      watchers_.erase(it);
      return;
    }
  }
}

grpc::ServerUnaryReactor* HealthStatus::Check(grpc::CallbackServerContext* context,
                                              const HealthCheckRequest* request,
                                              HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ServingStatus status = Get(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service '" + request->service() + "'"));
  } else {
    response->set_status(status);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthStatus::Watch(
    grpc::CallbackServerContext* context, const HealthCheckRequest* request) {
  {
    absl::MutexLock lock(&mu_);
    if (watchers_.size() >= max_watchers_) {
      // A reactor that only refuses; it deletes itself when done.
      class Refused final : public grpc::ServerWriteReactor<HealthCheckResponse> {
       public:
        explicit Refused(size_t limit) {
          Finish(
              grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           "too many health Watch streams (limit " + std::to_string(limit) + ")"));
        }
        void OnDone() override { delete this; }
      };
      return new Refused(max_watchers_);
    }
  }
  auto* watcher = new Watcher(this, request->service());
  // gRPC binds the reactor (and may run OnDone) only after we return, so the
  // watcher stays valid here whatever happens below.
  {
    absl::MutexLock lock(&mu_);
    const bool shut_down = shut_down_;
    auto it = status_.find(request->service());
    ServingStatus current =
        it == status_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : ToServingStatus(it->second);
    if (!shut_down) watchers_.emplace(request->service(), watcher);
    // Queued under mu_ so that a concurrent Set cannot be overtaken by this
    // older status.
    watcher->QueueUpdate(current);
    if (shut_down) watcher->QueueFinish();
  }
  // Before binding, StartWrite/Finish are only recorded by gRPC.
  watcher->Pump();
  return watcher;
}

}  // namespace coffer::rpc
