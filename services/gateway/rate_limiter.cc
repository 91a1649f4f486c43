#include "services/gateway/rate_limiter.h"

#include <algorithm>

namespace coffer::gateway {

RateLimiter::RateLimiter(double per_second, double burst, size_t max_keys)
    : per_second_(std::max(0.0, per_second)),
      burst_(std::max(1.0, burst)),
      max_keys_(std::max<size_t>(1, max_keys)) {}

bool RateLimiter::Allow(absl::string_view key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      buckets_.erase(recent_.back());
      recent_.pop_back();
    }
    recent_.emplace_front(key);
    it = buckets_.emplace(std::string(key), Bucket{burst_, now, recent_.begin()}).first;
  } else {
    recent_.splice(recent_.begin(), recent_, it->second.position);
    const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - it->second.updated));
    it->second.tokens = std::min(burst_, it->second.tokens + elapsed * per_second_);
    it->second.updated = std::max(now, it->second.updated);
  }
  if (it->second.tokens < 1.0) return false;
  it->second.tokens -= 1.0;
  return true;
}

size_t RateLimiter::tracked_keys() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

}  // namespace coffer::gateway
