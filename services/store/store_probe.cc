#include "services/store/store_probe.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "services/store/envelope/data_key_cache.h"

namespace coffer::store {
namespace {
prometheus::Gauge& NewGauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter& NewCounter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
}  // namespace

StoreProbe::StoreProbe(prometheus::Registry& r)
    : secrets_(NewGauge(r, "coffer_store_secrets",
                        "Secrets stored, including those scheduled for deletion")),
      cache_hits_(
          NewCounter(r, "coffer_store_dek_cache_hits_total", "Data keys served from the cache")),
      cache_misses_(NewCounter(r, "coffer_store_dek_cache_misses_total",
                               "Data keys that had to be unwrapped by the KMS")),
      cache_entries_(NewGauge(r, "coffer_store_dek_cache_entries", "Data keys held in the cache")),
      kms_reachable_(
          NewGauge(r, "coffer_store_kms_reachable", "1 when the KMS answers health checks")),
      purged_(NewCounter(r, "coffer_store_secrets_purged_total",
                         "Secrets purged by the sweeper after their recovery window")),
      params_expired_(NewCounter(r, "coffer_params_expired_total",
                                 "Parameters deleted by their Expiration policy")),
      params_notifications_(NewCounter(r, "coffer_params_policy_notifications_total",
                                       "ExpirationNotification and NoChangeNotification events")) {}

void StoreProbe::SetSecrets(int64_t n) { secrets_.Set(static_cast<double>(n)); }

void StoreProbe::SyncCache(const DataKeyCache& cache) {
  uint64_t hits = cache.hits();
  uint64_t misses = cache.misses();
  if (hits > seen_hits_) cache_hits_.Increment(static_cast<double>(hits - seen_hits_));
  if (misses > seen_misses_) cache_misses_.Increment(static_cast<double>(misses - seen_misses_));
  seen_hits_ = hits;
  seen_misses_ = misses;
  cache_entries_.Set(static_cast<double>(cache.size()));
}

void StoreProbe::SetKmsReachable(bool up) { kms_reachable_.Set(up ? 1 : 0); }

void StoreProbe::PolicyRun(int expired, int notifications) {
  if (expired > 0) params_expired_.Increment(expired);
  if (notifications > 0) params_notifications_.Increment(notifications);
}

void StoreProbe::Purged(int n) {
  if (n > 0) purged_.Increment(n);
}

}  // namespace coffer::store
