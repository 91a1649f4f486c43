#include "libs/client/change_watcher.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "libs/common/log.h"

namespace coffer::client {

namespace {
constexpr char kComponent[] = "client";
}

ChangeWatcher::ChangeWatcher(Open open, OnEvent on_event, std::function<void()> on_gap,
                             RetryPolicy backoff)
    : open_(std::move(open)),
      on_event_(std::move(on_event)),
      on_gap_(std::move(on_gap)),
      backoff_(backoff),
      thread_([this] { Run(); }) {}

ChangeWatcher::~ChangeWatcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (stream_ != nullptr) stream_->Cancel();
  }
  thread_.join();
}

bool ChangeWatcher::streaming() const {
  absl::MutexLock lock(&mu_);
  return streaming_;
}

std::string ChangeWatcher::position() const {
  absl::MutexLock lock(&mu_);
  return position_;
}

int ChangeWatcher::gaps() const {
  absl::MutexLock lock(&mu_);
  return gaps_;
}

int ChangeWatcher::opens() const {
  absl::MutexLock lock(&mu_);
  return opens_;
}

void ChangeWatcher::Run() {
  pthread_setname_np(pthread_self(), "coffer-watch");
  absl::BitGen bitgen;
  absl::Duration ceiling = backoff_.initial_backoff;
  while (true) {
    std::string from;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      from = position_;
    }
    std::unique_ptr<ChangeStream> stream = open_(from);
    auto drop = [&] {  // stopping: end the call properly
      stream->Cancel();
      stream->Finish().IgnoreError();
    };
    {
      absl::MutexLock lock(&mu_);
      if (stop_) {
        mu_.Unlock();
        drop();
        mu_.Lock();
        return;
      }
      stream_ = stream.get();  // from here on the destructor can cancel it
    }
    stream->WaitStarted();
    // Anchored "from now": what changed before is unknown. (A change after
    // the anchor comes as an event, so nothing read after this is missed.)
    if (from.empty()) on_gap_();
    {
      absl::MutexLock lock(&mu_);
      if (stop_) {
        stream_ = nullptr;
        mu_.Unlock();
        drop();
        mu_.Lock();
        return;
      }
      streaming_ = true;
      ++opens_;
      if (from.empty()) ++gaps_;
    }
    coffer::v1::ChangeEvent event;
    while (stream->Read(&event)) {
      {
        absl::MutexLock lock(&mu_);
        position_ = event.position();
      }
      on_event_(event);
      ceiling = backoff_.initial_backoff;  // a stream that delivers is healthy
    }
    const absl::Status ended = stream->Finish();
    {
      absl::MutexLock lock(&mu_);
      stream_ = nullptr;
      streaming_ = false;
      if (stop_) return;
      if (absl::IsOutOfRange(ended)) position_.clear();  // too old: start from now
    }
    log::Info(kComponent, "watch stream ended; reconnecting",
              {{"status", ended.ToString()}, {"from", from}});
    const absl::Duration wait = absl::Nanoseconds(
        absl::Uniform<int64_t>(bitgen, 0, std::max<int64_t>(1, absl::ToInt64Nanoseconds(ceiling))));
    ceiling = std::min(backoff_.max_backoff, ceiling * backoff_.multiplier);
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
  }
}

}  // namespace coffer::client
