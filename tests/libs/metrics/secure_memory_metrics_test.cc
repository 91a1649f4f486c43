// The guarded-memory metrics: gauges follow the numbers, counters add what
// the library's totals gained, and the real numbers reach the scrape.
#include "libs/metrics/secure_memory_metrics.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/metrics/metrics.h"

namespace coffer::metrics {
namespace {

// The value of the sample written exactly as `series`, or -1 if absent.
double SampleValue(const std::string& scrape, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double value = 0;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (absl::SimpleAtod(parts[0], &value)) return value;
  }
  return -1;
}

TEST(SecureMemoryMetricsTest, GaugesAndCounters) {
  auto metrics = Metrics::Create("test");
  SecureMemoryMetrics memory(*metrics->registry());
  crypto::SecureMemoryStats stats;
  stats.regions = 3;
  stats.mapped_bytes = 4 << 20;
  stats.in_use_bytes = 12345;
  stats.unlocked_bytes = 65536;
  stats.lock_failures = 2;
  stats.fallback_allocations = 5;
  stats.fallback_bytes = 8192;
  memory.Update(stats);
  std::string scrape = metrics->Scrape();
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_bytes{state=\"mapped\"}"), 4 << 20);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_bytes{state=\"in_use\"}"), 12345);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_bytes{state=\"unlocked\"}"), 65536);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_bytes{state=\"fallback\"}"), 8192);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_regions"), 3);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_lock_failures_total"), 2);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_fallback_allocations_total"), 5);

  // Counters add the difference and never go back; gauges follow.
  stats.lock_failures = 7;
  stats.in_use_bytes = 100;
  memory.Update(stats);
  memory.Update(stats);
  scrape = metrics->Scrape();
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_lock_failures_total"), 7);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_fallback_allocations_total"), 5);
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_bytes{state=\"in_use\"}"), 100);
}

TEST(SecureMemoryMetricsTest, UpdateReadsTheProcessNumbers) {
  auto metrics = Metrics::Create("test");
  SecureMemoryMetrics memory(*metrics->registry());
  memory.Update();
  const double before =
      SampleValue(metrics->Scrape(), "coffer_secure_memory_bytes{state=\"in_use\"}");
  std::vector<crypto::SecureBuffer> keys;
  for (int i = 0; i < 100; ++i) keys.push_back(crypto::SecureBuffer::Random(32));
  memory.Update();
  const std::string scrape = metrics->Scrape();
  EXPECT_EQ(SampleValue(scrape, "coffer_secure_memory_bytes{state=\"in_use\"}"), before + 3200);
  EXPECT_GE(SampleValue(scrape, "coffer_secure_memory_bytes{state=\"mapped\"}"), before + 3200);
  EXPECT_GE(SampleValue(scrape, "coffer_secure_memory_regions"), 1);
}

}  // namespace
}  // namespace coffer::metrics
