// rocksdb_put: the raw storage baseline of the benchmarks — synced Puts of
// --value_size bytes into RocksDB through libs/storage (the same Database,
// options and fsync'ed WAL that coffer-kms and coffer-store write with), from
// --threads threads for --duration, on the disk of --dir. What a durable
// Coffer write costs above the storage it is built on.
//
//   build/bench/rocksdb_put --dir=/tmp/run/rocksdb --threads=64 --duration=10s
//     --json_out=rocksdb.json
//   | rocksdb_put | 64 | 51234 | 0 | 5123.4/s | 11.9 | 14.2 | 18.0 | 25.3 |
//
// Every Put is its own synced write of a new key (RocksDB groups concurrent
// writers into one WAL fsync, as it does for the services). The output has
// the columns and JSON fields of coffer_load, so bench/run.sh reads both the
// same way.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/storage/database.h"

ABSL_FLAG(std::string, dir, "", "directory of the database (made; required)");
ABSL_FLAG(int, threads, 64, "writer threads, one synced Put at a time each");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to measure");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2), "writes made before measuring starts");
ABSL_FLAG(int, value_size, 200, "bytes of each value");
ABSL_FLAG(std::string, label, "rocksdb_put", "name of this measurement in the outputs");
ABSL_FLAG(std::string, json_out, "", "write the JSON result here (default: a line on stdout)");

namespace coffer::bench {
namespace {

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    std::fprintf(stderr, "rocksdb_put: --dir is required\n");
    return 2;
  }
  storage::DatabaseOptions options;
  options.path = dir;
  auto db = storage::Database::Open(options);
  if (!db.ok()) {
    std::fprintf(stderr, "rocksdb_put: %s\n", db.status().ToString().c_str());
    return 2;
  }
  const std::string value(static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_value_size))), 'v');
  const int threads = std::max(1, absl::GetFlag(FLAGS_threads));
  const absl::Time measure_start = absl::Now() + absl::GetFlag(FLAGS_warmup);
  const absl::Time measure_end = measure_start + absl::GetFlag(FLAGS_duration);
  std::vector<std::vector<int64_t>> latencies(threads);
  std::vector<absl::Time> last(threads, measure_start);
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      for (int64_t i = 0;; ++i) {
        const absl::Time start = absl::Now();
        if (start >= measure_end) break;
        absl::Status s = (*db)->Put("default", absl::StrFormat("bench/t%03d-%012d", t, i), value);
        const absl::Time done = absl::Now();
        if (start < measure_start) continue;
        if (!s.ok()) {
          if (errors.fetch_add(1) == 0) {
            std::fprintf(stderr, "rocksdb_put: %s\n", s.ToString().c_str());
          }
          continue;
        }
        latencies[t].push_back(absl::ToInt64Nanoseconds(done - start));
        last[t] = done;
      }
    });
  }
  for (auto& w : writers) w.join();
  std::vector<int64_t> all;
  absl::Time end = measure_start;
  for (int t = 0; t < threads; ++t) {
    all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    end = std::max(end, last[t]);
  }
  std::sort(all.begin(), all.end());
  const double elapsed = absl::ToDoubleSeconds(end - measure_start);
  const double throughput = elapsed > 0 ? static_cast<double>(all.size()) / elapsed : 0;
  auto q = [&all](double p) {
    if (all.empty()) return 0.0;
    size_t rank = std::min(all.size() - 1, static_cast<size_t>(p * all.size()));
    return static_cast<double>(all[rank]) / 1e6;
  };
  double mean = 0;
  for (int64_t l : all) mean += static_cast<double>(l) / 1e6;
  if (!all.empty()) mean /= static_cast<double>(all.size());
  const std::string label = absl::GetFlag(FLAGS_label);
  std::printf("| %s | %d | %zu | %lld | %.1f/s | %.3f | %.3f | %.3f | %.3f |\n", label.c_str(),
              threads, all.size() + static_cast<size_t>(errors.load()),
              static_cast<long long>(errors.load()), throughput, q(0.5), q(0.9), q(0.99), q(0.999));
  const std::string json = absl::StrFormat(
      "{\"label\":\"%s\",\"op\":\"rocksdb_put\",\"in_flight\":%d,\"value_size\":%d,"
      "\"elapsed_s\":%.3f,\"calls\":%d,\"ok\":%d,\"errors\":%d,\"throughput\":%.1f,"
      "\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
      "\"max_ms\":%.3f}",
      label, threads, absl::GetFlag(FLAGS_value_size), elapsed,
      static_cast<int64_t>(all.size()) + errors.load(), static_cast<int64_t>(all.size()),
      errors.load(), throughput, mean, q(0.5), q(0.9), q(0.99), q(0.999),
      all.empty() ? 0.0 : all.back() / 1e6);
  const std::string out = absl::GetFlag(FLAGS_json_out);
  if (out.empty()) {
    std::printf("%s\n", json.c_str());
  } else {
    FILE* f = std::fopen(out.c_str(), "w");
    if (f == nullptr || std::fprintf(f, "%s\n", json.c_str()) < 0 || std::fclose(f) != 0) {
      std::fprintf(stderr, "rocksdb_put: cannot write %s\n", out.c_str());
      return 2;
    }
  }
  return errors.load() > 0 || all.empty() ? 1 : 0;
}

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "rocksdb_put --dir=DIR [--threads=64] [--duration=10s] [--value_size=200]");
  absl::ParseCommandLine(argc, argv);
  return coffer::bench::Main();
}
