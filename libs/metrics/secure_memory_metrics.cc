#include "libs/metrics/secure_memory_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace coffer::metrics {
namespace {

prometheus::Family<prometheus::Gauge>& BytesFamily(prometheus::Registry& r) {
  return prometheus::BuildGauge()
      .Name("coffer_secure_memory_bytes")
      .Help(
          "Guarded memory for keys and values, by state: mapped (guarded regions), in_use "
          "(handed out), unlocked (mlock failed; may be swapped), fallback (heap memory used "
          "because no region could be mapped)")
      .Register(r);
}

}  // namespace

SecureMemoryMetrics::SecureMemoryMetrics(prometheus::Registry& r)
    : mapped_(BytesFamily(r).Add({{"state", "mapped"}})),
      in_use_(BytesFamily(r).Add({{"state", "in_use"}})),
      unlocked_(BytesFamily(r).Add({{"state", "unlocked"}})),
      fallback_(BytesFamily(r).Add({{"state", "fallback"}})),
      regions_(prometheus::BuildGauge()
                   .Name("coffer_secure_memory_regions")
                   .Help("Guarded memory regions mapped for keys and values")
                   .Register(r)
                   .Add({})),
      lock_failures_(prometheus::BuildCounter()
                         .Name("coffer_secure_memory_lock_failures_total")
                         .Help("mlock calls on guarded memory that failed (RLIMIT_MEMLOCK "
                               "without CAP_IPC_LOCK): that memory may be swapped to disk")
                         .Register(r)
                         .Add({})),
      fallback_allocations_(prometheus::BuildCounter()
                                .Name("coffer_secure_memory_fallback_allocations_total")
                                .Help("Secure buffers given heap memory because no guarded region "
                                      "could be mapped (vm.max_map_count, out of memory)")
                                .Register(r)
                                .Add({})) {}

void SecureMemoryMetrics::Update() { Update(crypto::GetSecureMemoryStats()); }

void SecureMemoryMetrics::Update(const crypto::SecureMemoryStats& stats) {
  absl::MutexLock lock(&mu_);
  mapped_.Set(static_cast<double>(stats.mapped_bytes));
  in_use_.Set(static_cast<double>(stats.in_use_bytes));
  unlocked_.Set(static_cast<double>(stats.unlocked_bytes));
  fallback_.Set(static_cast<double>(stats.fallback_bytes));
  regions_.Set(static_cast<double>(stats.regions));
  if (stats.lock_failures > seen_lock_failures_) {
    lock_failures_.Increment(static_cast<double>(stats.lock_failures - seen_lock_failures_));
    seen_lock_failures_ = stats.lock_failures;
  }
  if (stats.fallback_allocations > seen_fallback_allocations_) {
    fallback_allocations_.Increment(
        static_cast<double>(stats.fallback_allocations - seen_fallback_allocations_));
    seen_fallback_allocations_ = stats.fallback_allocations;
  }
}

}  // namespace coffer::metrics
