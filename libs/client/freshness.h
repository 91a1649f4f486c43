// freshness.h: when an entry of a caching client must be fetched again —
// the TTL, invalidations by the watch, and backing off after a failed
// refresh. One implementation for SecretCache and ParameterCache; not
// thread-safe on its own (the caches hold their lock).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace coffer::client {

struct Freshness {
  absl::Time expires = absl::InfinitePast();  // the TTL of what is held
  // Bumped by every invalidation; a refresh that started before one does
  // not make the entry fresh.
  uint64_t generation = 0;
  bool stale = false;  // invalidated since the last refresh
  absl::Time retry_after = absl::InfinitePast();
  absl::Duration backoff = absl::ZeroDuration();
  absl::Status last_error;  // of the last failed refresh

  // What is held may be answered without asking the server.
  bool Fresh(absl::Time now) const { return !stale && now < expires; }
  // A refresh failed a moment ago: do not ask again yet.
  bool BackingOff(absl::Time now) const { return now < retry_after; }

  // The server says it changed (or may have). `retry_now`: ask at once,
  // even while backing off.
  void Invalidate(bool retry_now) {
    stale = true;
    ++generation;
    if (retry_now) retry_after = absl::InfinitePast();
  }

  // A refresh failed with `error`: wait `first`, then twice as long each
  // time, at most `ttl`.
  void Failed(absl::Time now, absl::Duration first, absl::Duration ttl, absl::Status error) {
    backoff = backoff == absl::ZeroDuration() ? first : std::min(ttl, backoff * 2);
    retry_after = now + backoff;
    last_error = std::move(error);
  }

  // A refresh that began at generation `started` succeeded.
  void Refreshed(absl::Time now, absl::Duration ttl, uint64_t started) {
    expires = now + ttl;
    stale = generation != started;  // changed again while refreshing
    retry_after = absl::InfinitePast();
    backoff = absl::ZeroDuration();
    last_error = absl::OkStatus();
  }
};

}  // namespace coffer::client
