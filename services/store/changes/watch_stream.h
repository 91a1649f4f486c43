// watch_stream.h: the server side of WatchSecrets / WatchParameters — one
// gRPC server-streaming reactor that follows a ChangeLog.
//
//   grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* ParamsService::WatchParameters(
//       grpc::CallbackServerContext*, const WatchParametersRequest* request) {
//     auto start = WatchReactor::StartPosition(*log_, request->start_after());
//     if (!start.ok()) return WatchReactor::Failed(start.status());
//     return new WatchReactor(log_, *start, [path = request->path()](const ChangeEvent& e) {
//       return IsUnder(e.name(), path);
//     }, &watch_registry_);
//   }
//
//   // At shutdown, before grpc::Server::Shutdown (which would otherwise wait
//   // out its grace period for these endless calls):
//   watch_registry_.StopAll();
//
// The stream sends its initial metadata at once (the client knows the watch
// is anchored at its start position), then every event after the start position that passes the
// filter, in position order, one write at a time, and waits for the log's
// watermark to advance when caught up. It ends with OK on StopAll, with
// OUT_OF_RANGE when the log was trimmed past its position (the client is too
// slow or resumed too late), and CANCELLED when the client goes away.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coffer/v1/change_event.pb.h"
#include "libs/runtime/call_gate.h"
#include "services/store/changes/change_log.h"

namespace coffer::store {

class WatchReactor;

// The open watch streams of a server, so shutdown can end them. Reactors
// add and remove themselves.
// Watch streams held open at once: in all, and per caller identity.
struct WatchLimits {
  size_t max_total = 10000;
  size_t max_per_identity = 100;
};

class WatchRegistry {
 public:
  // Starts the dispatcher thread: a commit only marks the streams to
  // advance; the dispatcher reads the log for them, never the committing
  // thread.
  explicit WatchRegistry(WatchLimits limits = {});
  // Waits (briefly) for streams still ending; call StopAll and shut the
  // gRPC server down before destroying.
  ~WatchRegistry();
  WatchRegistry(const WatchRegistry&) = delete;
  WatchRegistry& operator=(const WatchRegistry&) = delete;

  // Ends every open stream with OK (after its current write) and every
  // stream started from now on at once.
  void StopAll();
  // Streams not yet done.
  size_t size() const;

  // A slot for one more stream of `principal`: RESOURCE_EXHAUSTED
  // (LimitExceededException) past either limit. Released when the stream
  // (created with this principal) is done, or by Release if none is made.
  absl::Status Reserve(const std::string& principal);
  void Release(const std::string& principal);

 private:
  friend class WatchReactor;
  // False once StopAll ran: the reactor must end at once.
  bool Add(WatchReactor* reactor);
  void Remove(WatchReactor* reactor);
  // Asks the dispatcher to advance `reactor` (a change-log callback).
  void Wake(WatchReactor* reactor);
  void Dispatch();

  const WatchLimits limits_;
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::set<WatchReactor*> reactors_ ABSL_GUARDED_BY(mu_);
  size_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<WatchReactor*> dirty_ ABSL_GUARDED_BY(mu_);  // to advance
  bool dispatcher_stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread dispatcher_;
  std::map<std::string, size_t> per_identity_ ABSL_GUARDED_BY(mu_);
};

class WatchReactor final : public grpc::ServerWriteReactor<coffer::v1::ChangeEvent> {
 public:
  using Filter = std::function<bool(const coffer::v1::ChangeEvent&)>;

  // Streams events after `start_after` that pass `filter` (null: all).
  // `log` and `registry` (optional) must outlive the call. The reactor
  // deletes itself after OnDone.
  // `principal`: whose slot in `registry` (Reserve) the stream holds; ""
  // when none was reserved.
  WatchReactor(ChangeLog* log, uint64_t start_after, Filter filter,
               WatchRegistry* registry = nullptr, std::string principal = "");

  // The position to stream after for a request's start_after: "" = now
  // (the watermark); otherwise a decoded position — INVALID_ARGUMENT naming
  // start_after when malformed, OUT_OF_RANGE when older than the retained log
  // or newer than the watermark (not a position this log handed out).
  static absl::StatusOr<uint64_t> StartPosition(ChangeLog& log, const std::string& start_after);

  // A reactor that only finishes with `status` (a request rejected before
  // streaming); deletes itself after OnDone.
  static grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* Failed(const absl::Status& status);

  // A watch call through `gate`: the caller's Access makes the filter
  // (`make_filter` validates the request and filters by what the caller may
  // see), the start is audited and durable before the first event, and a
  // failing audit log refuses the stream. `log` null: UNIMPLEMENTED.
  static grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* Start(
      runtime::CallGate& gate, grpc::CallbackServerContext& context, absl::string_view action,
      ChangeLog* log, WatchRegistry* registry, const std::string& start_after,
      const std::function<absl::StatusOr<Filter>(const authz::Access&)>& make_filter);

  // Ends the stream with OK after the write in flight, if any.
  void Stop();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  friend class WatchRegistry;
  ~WatchReactor() override;
  // Refs keep the reactor alive past OnDone while the registry uses it.
  void Ref();
  void Unref();
  // Does the next step (read, write or finish); never holds mu_ while
  // calling into gRPC or the log, and never touches `this` after a
  // StartWrite or Finish (their reactions may run inline and delete it).
  void Pump();

  ChangeLog* const log_;
  const Filter filter_;
  WatchRegistry* const registry_;
  const std::string principal_;  // holds a reserved slot when not empty
  std::unique_ptr<ChangeLog::Subscription> subscription_;

  absl::Mutex mu_;
  // Events up to here were read (sent, buffered or filtered out).
  uint64_t read_position_ ABSL_GUARDED_BY(mu_);
  std::deque<coffer::v1::ChangeEvent> buffered_ ABSL_GUARDED_BY(mu_);
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool pump_again_ ABSL_GUARDED_BY(mu_) = false;  // something changed while pumping
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  int refs_ ABSL_GUARDED_BY(mu_) = 0;
  // Untouched while a write is in flight (writing_).
  coffer::v1::ChangeEvent response_;
};

}  // namespace coffer::store
