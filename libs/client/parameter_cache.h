// parameter_cache.h: a caching parameters client — GetParameter and whole
// GetParametersByPath subtrees — with the same contract as SecretCache
// (secret_cache.h): LRU, TTL, stale-on-error with backoff, RefreshNow, and
// push invalidation from WatchParameters.
//
//   ParameterCache params(ParametersClient(store), {});
//   COFFER_ASSIGN_OR_RETURN(params::v1::Parameter p, params.GetParameter("/app/db/host"));
//   COFFER_ASSIGN_OR_RETURN(std::vector<params::v1::Parameter> all,
//                           params.GetParametersByPath("/app", /*recursive=*/true));
//
// The watch covers hierarchical names (those starting with '/'; WatchParameters
// of watch_path, recursive): a change to /app/db/host marks stale the entry
// of that name (any selector or decryption) and every cached subtree that
// holds it. Parameters outside watch_path rely on the TTL. Values (decrypted
// SecureStrings included) are kept in guarded memory, wiped on eviction.
// Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coffer/params/v1/params.pb.h"
#include "libs/client/change_watcher.h"
#include "libs/client/clients.h"
#include "libs/client/freshness.h"
#include "libs/common/clock.h"

namespace coffer::client {

struct ParameterCacheOptions {
  size_t max_entries = 1024;  // names and subtrees together
  absl::Duration ttl = absl::Hours(1);
  absl::Duration refresh_backoff = absl::Seconds(1);
  bool push_invalidation = true;
  std::string watch_path = "/";
  Clock* clock = nullptr;
};

struct ParameterCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t refresh_failures = 0;
  uint64_t stale_served = 0;
  uint64_t invalidations = 0;
  uint64_t evictions = 0;
};

class ParameterCache {
 public:
  ParameterCache(ParametersClient client, ParameterCacheOptions options = {});
  ~ParameterCache();
  ParameterCache(const ParameterCache&) = delete;
  ParameterCache& operator=(const ParameterCache&) = delete;

  // `name` may carry a selector (":3", ":label").
  absl::StatusOr<params::v1::Parameter> GetParameter(const std::string& name,
                                                     bool with_decryption = true);
  // Every page of GetParametersByPath.
  absl::StatusOr<std::vector<params::v1::Parameter>> GetParametersByPath(
      const std::string& path, bool recursive, bool with_decryption = true);
  // Drops what is cached of `name` (and the subtrees holding it); the next
  // read asks the server.
  void Invalidate(const std::string& name);

  ParameterCacheStats stats() const;
  const ChangeWatcher* watcher() const { return watcher_.get(); }

 private:
  struct Entry;
  using Fetch = std::function<absl::StatusOr<std::vector<params::v1::Parameter>>()>;

  // The cached parameters of `key`, fetching them with `fetch` when the
  // entry is missing, stale or expired.
  absl::StatusOr<std::vector<params::v1::Parameter>> Get(const std::string& key,
                                                         const std::string& name, bool subtree,
                                                         bool recursive, const Fetch& fetch);
  void OnChange(const std::string& name);
  void InvalidateAll();

  ParametersClient client_;
  const ParameterCacheOptions options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
  ParameterCacheStats stats_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ChangeWatcher> watcher_;
};

}  // namespace coffer::client
