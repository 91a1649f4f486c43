// change_watcher.h: keeps one watch stream (WatchSecrets or WatchParameters)
// open in the background, resuming after a failure from the last position
// it saw, so that nothing between is missed.
//
//   ChangeWatcher watcher(
//       [&](const std::string& start_after) {
//         secrets::v1::WatchSecretsRequest r;
//         r.set_start_after(start_after);
//         return client.WatchSecrets(r);
//       },
//       [&](const coffer::v1::ChangeEvent& e) { cache.Invalidate(e.name()); },
//       [&] { cache.InvalidateAll(); },   // changes may have been missed
//       options.retry);
//
// `on_gap` runs whenever changes may have been missed: when a stream starts
// without a position (first start: "from now") and when the server no
// longer keeps the position (OUT_OF_RANGE). Callbacks run on the watcher's
// thread, one at a time. Reconnects back off exponentially with jitter
// (policy.initial_backoff .. policy.max_backoff).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coffer/v1/change_event.pb.h"
#include "libs/client/client_options.h"
#include "libs/client/stub.h"

namespace coffer::client {

class ChangeWatcher {
 public:
  using Open = std::function<std::unique_ptr<ChangeStream>(const std::string& start_after)>;
  using OnEvent = std::function<void(const coffer::v1::ChangeEvent&)>;

  ChangeWatcher(Open open, OnEvent on_event, std::function<void()> on_gap, RetryPolicy backoff);
  ~ChangeWatcher();  // cancels the stream, joins the thread
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;

  // True while a stream is open (it may not have delivered anything yet).
  bool streaming() const;
  // The position of the last event delivered ("" before the first).
  std::string position() const;
  // Streams opened so far (1 + reconnects).
  int opens() const;
  // Times on_gap ran: 1 for the first start, plus one per position lost.
  int gaps() const;

 private:
  void Run();

  const Open open_;
  const OnEvent on_event_;
  const std::function<void()> on_gap_;
  const RetryPolicy backoff_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool streaming_ ABSL_GUARDED_BY(mu_) = false;
  int opens_ ABSL_GUARDED_BY(mu_) = 0;
  int gaps_ ABSL_GUARDED_BY(mu_) = 0;
  std::string position_ ABSL_GUARDED_BY(mu_);
  ChangeStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // to cancel
  std::thread thread_;
};

}  // namespace coffer::client
