// retry.h: run an attempt again, backing off, until it succeeds or the
// caller is stopping — for background work that must not give up (a
// replica re-reading what another one changed), not for requests.
//
//   RetryUntilOk([&] { return Refresh(); }, stopping_,
//                [](const absl::Status& s) { log::Warn("kms", "retrying", {...}); });
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace coffer {

// Calls `attempt` until it returns OK or `stopping` is set; after each
// failure calls `on_failure` and sleeps 50 ms, doubling up to `max_backoff`
// (watching `stopping` every 50 ms). Returns the last status.
inline absl::Status RetryUntilOk(const std::function<absl::Status()>& attempt,
                                 const std::atomic<bool>& stopping,
                                 const std::function<void(const absl::Status&)>& on_failure,
                                 absl::Duration max_backoff = absl::Seconds(2)) {
  constexpr absl::Duration kStep = absl::Milliseconds(50);
  absl::Duration backoff = kStep;
  for (;;) {
    absl::Status s = attempt();
    if (s.ok() || stopping) return s;
    on_failure(s);
    for (absl::Duration slept; slept < backoff && !stopping; slept += kStep) absl::SleepFor(kStep);
    backoff = std::min(backoff * 2, max_backoff);
  }
}

}  // namespace coffer
