// store_probe.h: coffer-store's domain metrics in one place.
//
//   StoreProbe probe(*metrics->registry());
//   probe.SetSecrets(store.secret_count());
//   probe.SyncCache(cache);            // copies hit/miss counts
//   probe.SetKmsReachable(true);
//   probe.Purged(3);
//
// Metrics: coffer_store_secrets, coffer_store_dek_cache_hits_total,
// coffer_store_dek_cache_misses_total, coffer_store_dek_cache_entries,
// coffer_store_kms_reachable, coffer_store_secrets_purged_total. No labels
// with names or ARNs.
#pragma once

#include <cstdint>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace coffer::store {

class DataKeyCache;

class StoreProbe {
 public:
  explicit StoreProbe(prometheus::Registry& registry);

  void SetSecrets(int64_t n);
  // Brings the cache counters up to the cache's own totals.
  void SyncCache(const DataKeyCache& cache);
  void SetKmsReachable(bool up);
  void Purged(int n);
  // coffer_params_expired_total, coffer_params_policy_notifications_total
  void PolicyRun(int expired, int notifications);

 private:
  prometheus::Gauge& secrets_;
  prometheus::Counter& cache_hits_;
  prometheus::Counter& cache_misses_;
  prometheus::Gauge& cache_entries_;
  prometheus::Gauge& kms_reachable_;
  prometheus::Counter& purged_;
  prometheus::Counter& params_expired_;
  prometheus::Counter& params_notifications_;
  uint64_t seen_hits_ = 0;
  uint64_t seen_misses_ = 0;
};

}  // namespace coffer::store
