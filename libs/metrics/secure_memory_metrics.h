// secure_memory_metrics.h: the process's guarded memory (libs/crypto's
// SecureArena) as Prometheus metrics, for every service that holds keys or
// values (coffer-kms, coffer-store).
//
//   metrics::SecureMemoryMetrics memory(*metrics->registry());
//   PeriodicTask refresh("kms-status", absl::Seconds(1), [&] { memory.Update(); });
//
// Series (no other labels):
//   coffer_secure_memory_bytes{state="mapped"}     guarded regions mapped
//   coffer_secure_memory_bytes{state="in_use"}     handed out to buffers
//   coffer_secure_memory_bytes{state="unlocked"}   whose mlock failed (may be swapped)
//   coffer_secure_memory_bytes{state="fallback"}   ordinary heap memory used instead
//   coffer_secure_memory_regions                   guarded regions mapped
//   coffer_secure_memory_lock_failures_total       mlock calls that failed
//   coffer_secure_memory_fallback_allocations_total  buffers that got heap memory
// Counters follow the library's totals (Update adds the difference).
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/secure_arena.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace coffer::metrics {

class SecureMemoryMetrics {
 public:
  explicit SecureMemoryMetrics(prometheus::Registry& registry);

  // Reads crypto::GetSecureMemoryStats(). Thread-safe.
  void Update();
  // The same from given numbers (tests).
  void Update(const crypto::SecureMemoryStats& stats);

 private:
  prometheus::Gauge& mapped_;
  prometheus::Gauge& in_use_;
  prometheus::Gauge& unlocked_;
  prometheus::Gauge& fallback_;
  prometheus::Gauge& regions_;
  prometheus::Counter& lock_failures_;
  prometheus::Counter& fallback_allocations_;
  absl::Mutex mu_;
  uint64_t seen_lock_failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seen_fallback_allocations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace coffer::metrics
