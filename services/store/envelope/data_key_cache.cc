#include "services/store/envelope/data_key_cache.h"

#include <cstdint>
#include <utility>

#include "libs/crypto/hash.h"

namespace coffer::store {
namespace {

void AppendLength(std::string& out, uint64_t n) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
}

}  // namespace

DataKeyCache::DataKeyCache(DataKeyCacheOptions options)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : RealClock()),
      enabled_(options.max_entries > 0 && options.ttl > absl::ZeroDuration()) {}

std::string DataKeyCache::Key(absl::string_view wrapped, absl::string_view encoded_context) {
  // The wrapped key's length goes first, so that moving bytes between the
  // two parts changes the input (wrapped="ab",ctx="c" vs wrapped="a",ctx="bc").
  std::string input;
  input.reserve(8 + wrapped.size() + encoded_context.size());
  AppendLength(input, wrapped.size());
  input.append(wrapped.data(), wrapped.size());
  input.append(encoded_context.data(), encoded_context.size());
  return crypto::Blake2b(input);
}

std::shared_ptr<const crypto::SecureBuffer> DataKeyCache::Get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (!enabled_) {
    ++misses_;
    return nullptr;
  }
  const absl::Time now = clock_->Now();
  PurgeExpiredLocked(now);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return nullptr;
  }
  if (now >= it->second.expires) {
    // Dropping the last reference wipes the key (SecureBuffer's destructor).
    lru_.erase(it->second.lru);
    entries_.erase(it);
    ++misses_;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  ++hits_;
  return it->second.key;
}

void DataKeyCache::Put(const std::string& key, crypto::SecureBuffer data_key) {
  if (!enabled_) return;  // `data_key` is wiped as it goes out of scope
  auto shared = std::make_shared<const crypto::SecureBuffer>(std::move(data_key));
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  PurgeExpiredLocked(now);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.key = std::move(shared);
    it->second.expires = now + options_.ttl;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{std::move(shared), now + options_.ttl, lru_.begin()});
  EvictLocked();
}

void DataKeyCache::Clear() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
  lru_.clear();
}

size_t DataKeyCache::PurgeExpired() {
  absl::MutexLock lock(&mu_);
  if (!enabled_) return 0;
  return PurgeExpiredLocked(clock_->Now(), /*force=*/true);
}

size_t DataKeyCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

uint64_t DataKeyCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

uint64_t DataKeyCache::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

void DataKeyCache::EvictLocked() {
  while (entries_.size() > options_.max_entries) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
}

size_t DataKeyCache::PurgeExpiredLocked(absl::Time now, bool force) {
  // A full scan, so expired keys do not linger in memory until evicted; done
  // at most about twice per ttl (at most max_entries entries each time).
  if (!force && now - last_purge_ < options_.ttl / 2) return 0;
  last_purge_ = now;
  size_t removed = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto entry = entries_.find(*it);
    if (now >= entry->second.expires) {
      entries_.erase(entry);
      it = lru_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

}  // namespace coffer::store
