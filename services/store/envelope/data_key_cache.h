// data_key_cache.h: a bounded, time-limited cache of unwrapped data keys.
//
// Reads of a secret need its version's data key; asking the KMS every time
// costs a network round trip. The cache trades that for keeping recently
// used data keys in guarded memory (SecureBuffer) for at most `ttl`, and at
// most `max_entries` of them (least recently used evicted first). Evicted
// and expired keys are wiped. ttl == 0 or max_entries == 0 disables it.
// Entries are keyed by a hash of the wrapped key and the encryption
// context, so a wrapped key presented with another context does not hit.
//
//   DataKeyCache cache({.max_entries = 10000, .ttl = absl::Minutes(5)});
//   std::string k = DataKeyCache::Key(wrapped, encoded_context);
//   if (auto key = cache.Get(k)) { ...use *key... }
//   else cache.Put(k, std::move(unwrapped));
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::store {

struct DataKeyCacheOptions {
  size_t max_entries = 10000;
  absl::Duration ttl = absl::Minutes(5);
  Clock* clock = nullptr;  // default RealClock()
};

class DataKeyCache {
 public:
  explicit DataKeyCache(DataKeyCacheOptions options);

  // BLAKE2b of the wrapped key and the encoded context.
  static std::string Key(absl::string_view wrapped, absl::string_view encoded_context);

  // The key, or null when absent or expired. Thread-safe.
  std::shared_ptr<const crypto::SecureBuffer> Get(const std::string& key);
  void Put(const std::string& key, crypto::SecureBuffer data_key);
  // Drops every entry (wiping them).
  void Clear();
  // Drops (wipes) expired entries now; returns how many. Get and Put also do
  // this from time to time, so expired keys never outlive ttl by much.
  size_t PurgeExpired();

  size_t size() const;
  bool enabled() const { return enabled_; }
  const DataKeyCacheOptions& options() const { return options_; }
  Clock* clock() const { return clock_; }
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  struct Entry {
    std::shared_ptr<const crypto::SecureBuffer> key;
    absl::Time expires;
    std::list<std::string>::iterator lru;
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every ttl/2 (or when `force`), drops expired entries.
  size_t PurgeExpiredLocked(absl::Time now, bool force = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DataKeyCacheOptions options_;
  Clock* clock_;
  const bool enabled_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_purge_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace coffer::store
