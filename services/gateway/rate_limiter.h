// rate_limiter.h: a token bucket per key (coffer-gateway: per access key),
// so that one caller cannot take the gateway, the store or the KMS for
// itself. Thread-safe; memory bounded by `max_keys` (the least recently
// seen key is forgotten first: it starts again with a full bucket).
//
//   RateLimiter limiter(100, 200, 100000);      // 100/s, bursts of 200
//   if (!limiter.Allow("AKCO...", clock->Now())) return Throttled();
#pragma once

#include <list>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace coffer::gateway {

class RateLimiter {
 public:
  RateLimiter(double per_second, double burst, size_t max_keys);

  // Takes one token from `key`'s bucket at `now`; false when it is empty.
  bool Allow(absl::string_view key, absl::Time now);

  size_t tracked_keys() const;

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
    std::list<std::string>::iterator position;  // in recent_
  };
  const double per_second_;
  const double burst_;
  const size_t max_keys_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> recent_ ABSL_GUARDED_BY(mu_);  // most recent first
};

}  // namespace coffer::gateway
