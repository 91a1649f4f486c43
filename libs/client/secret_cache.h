// secret_cache.h: a caching secrets client with the AWS caching clients'
// contract, plus push invalidation.
//
//   SecretCacheOptions options;            // 1,024 entries, 1 hour, AWSCURRENT
//   SecretCache cache(secrets_client, options);
//   COFFER_ASSIGN_OR_RETURN(std::string password, cache.GetSecretString("prod/db"));
//   ...login fails after a rotation...
//   COFFER_RETURN_IF_ERROR(cache.RefreshNow("prod/db"));
//
// Contract (as the AWS caching clients):
//  - An LRU of at most max_entries secrets; an entry is refreshed after ttl
//    through DescribeSecret's version map, then GetSecretValue by version id
//    only when the stage's version changed (values are cached per version).
//  - A failed refresh serves the value already cached (stale) and retries
//    after a backoff that doubles from refresh_backoff up to ttl; with
//    nothing cached, the error is returned.
//  - RefreshNow refreshes at once (and reports the error).
// And what none of them has: with push_invalidation, a background
// WatchSecrets stream marks an entry stale as soon as its secret changes,
// so the next read fetches the new value (a rotated value reaches the
// application within about a second, not a TTL). While the stream is down
// the TTL still applies; it resumes from the last position it saw, and when
// changes may have been missed (first start, position too old) every entry
// is marked stale.
//
// Values are held in guarded memory (crypto::SecureBuffer) that is wiped
// when an entry is evicted or replaced; what a Get returns is the caller's
// copy. Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "libs/client/change_watcher.h"
#include "libs/client/clients.h"
#include "libs/client/freshness.h"
#include "libs/common/clock.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::client {

struct SecretCacheOptions {
  size_t max_entries = 1024;
  absl::Duration ttl = absl::Hours(1);
  std::string default_version_stage = "AWSCURRENT";
  // First wait after a failed refresh; doubles up to ttl.
  absl::Duration refresh_backoff = absl::Seconds(1);
  bool push_invalidation = true;
  // WatchSecrets' name_prefix ("" = every secret the caller may watch).
  std::string watch_name_prefix;
  Clock* clock = nullptr;  // default RealClock(); TTLs and backoffs only
};

struct SecretCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // reads that called the server
  uint64_t refresh_failures = 0;
  uint64_t stale_served = 0;   // reads answered from cache after a failed refresh
  uint64_t invalidations = 0;  // entries marked stale by the watch
  uint64_t evictions = 0;
};

class SecretCache {
 public:
  SecretCache(SecretsClient client, SecretCacheOptions options = {});
  ~SecretCache();
  SecretCache(const SecretCache&) = delete;
  SecretCache& operator=(const SecretCache&) = delete;

  // GetSecretValue's answer for `secret_id` (name or ARN) at
  // `version_stage` (default: options.default_version_stage).
  absl::StatusOr<secrets::v1::GetSecretValueResponse> GetSecretValue(
      const std::string& secret_id, const std::string& version_stage = "");
  // Version `version_id` (and `version_stage`, when given, must label it):
  // from the cache when it holds that version fresh, else asked of the
  // store (versions outside the cached labels are not kept).
  absl::StatusOr<secrets::v1::GetSecretValueResponse> GetSecretVersion(
      const std::string& secret_id, const std::string& version_id,
      const std::string& version_stage = "");
  // The string value; FAILED_PRECONDITION for a binary secret.
  absl::StatusOr<std::string> GetSecretString(const std::string& secret_id,
                                              const std::string& version_stage = "");
  // The binary value; FAILED_PRECONDITION for a string secret.
  absl::StatusOr<std::string> GetSecretBinary(const std::string& secret_id,
                                              const std::string& version_stage = "");
  // Refreshes `secret_id` now (e.g. after a login failed with the cached
  // password); the error when the refresh failed.
  absl::Status RefreshNow(const std::string& secret_id);

  SecretCacheStats stats() const;
  // The watch stream, or nullptr without push invalidation.
  const ChangeWatcher* watcher() const { return watcher_.get(); }

 private:
  struct Version;
  struct Entry;
  using Lru = std::list<std::string>;

  // The entry of `secret_id`, made and/or moved to the front of the LRU.
  Entry& Touch(const std::string& secret_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DescribeSecret, then GetSecretValue of each stage's version not cached.
  absl::Status Refresh(const std::string& secret_id, const std::string& stage);
  void OnChange(const coffer::v1::ChangeEvent& event);
  void InvalidateAll();

  SecretsClient client_;
  const SecretCacheOptions options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  Lru lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  SecretCacheStats stats_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ChangeWatcher> watcher_;  // last: stopped first
};

}  // namespace coffer::client
