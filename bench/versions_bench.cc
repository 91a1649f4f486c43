// versions_bench: what the versions a secret keeps cost its readers — the
// throughput of GetSecretValue and DescribeSecret on a secret written once
// against one written --puts times, in one run, as a ratio (the goal is
// 1.0: a read parses the labelled versions only, never the deprecated ones).
//
//   build/bench/versions_bench [--puts=5000] [--seconds=3] [--threads=2] [--rounds=3]
//
// The store's logic in this process over RocksDB in a temp dir, with the
// real KMS logic in-process behind the KeyService interface (no network, so
// the record's cost is not hidden behind gRPC's); data keys cached.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/storage/database.h"
#include "services/kms/key_manager.h"
#include "services/store/changes/change_log.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/envelope.h"
#include "services/store/schema.h"
#include "services/store/secrets/secret_records.h"
#include "services/store/secrets/secret_store.h"
#include "tests/services/store/in_process_kms.h"

ABSL_FLAG(int, puts, 5000, "PutSecretValue calls on the busy secret");
ABSL_FLAG(int, seconds, 3, "duration of each measurement");
ABSL_FLAG(int, threads, 2, "reader threads");
ABSL_FLAG(int, rounds, 3, "rounds (the table shows medians)");

namespace coffer {
namespace {

namespace sm = ::coffer::secrets::v1;

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "versions_bench: %s\n", v.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(v).value();
}

void OrDie(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "versions_bench: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

// Calls per second of `call` from --threads threads for --seconds.
double Rate(const std::function<bool()>& call) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < absl::GetFlag(FLAGS_threads); ++t) {
    threads.emplace_back([&] {
      int64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!call()) {
          std::fprintf(stderr, "versions_bench: a call failed\n");
          std::exit(1);
        }
        ++n;
      }
      done += n;
    });
  }
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  stop = true;
  for (auto& t : threads) t.join();
  return static_cast<double>(done.load()) / absl::ToDoubleSeconds(absl::Now() - start);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main() {
  log::SetLevel(log::Level::kError);
  // As the services do (runtime::InitProcess): Debian's Abseil leaves mutex
  // deadlock detection on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  char tmpl[] = "/tmp/versions-bench.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const int puts = absl::GetFlag(FLAGS_puts);

  kms::KeyManagerOptions kms_options;
  kms_options.db_path = dir + "/kms";
  kms_options.sync_writes = false;
  auto keys = OrDie(kms::KeyManager::Open(kms_options, crypto::SecureBuffer::Random(32)));
  store::InProcessKeyService kms(keys.get());
  storage::DatabaseOptions db_options;
  db_options.path = dir + "/store";
  db_options.column_families = store::schema::ColumnFamilies();
  db_options.sync_writes = false;  // setup speed; reads are what is measured
  auto db = OrDie(storage::Database::Open(db_options));
  auto changes = OrDie(store::ChangeLog::Open(db.get()));
  store::DataKeyCache cache(store::DataKeyCacheOptions{});
  store::Envelope envelope(&kms, &cache);
  store::SecretStoreOptions options;
  options.changes = changes.get();
  options.max_versions_per_secret = puts + 1;  // keep every version
  store::SecretRecords records(db.get(), &envelope, options);
  OrDie(records.Load());
  store::SecretStore secrets(&records);

  for (const char* name : {"once", "busy"}) {
    sm::CreateSecretRequest create;
    create.set_name(name);
    create.set_secret_string(std::string(200, 'x'));
    OrDie(secrets.CreateSecret(create).status());
  }
  const absl::Time setup = absl::Now();
  for (int i = 0; i < puts; ++i) {
    sm::PutSecretValueRequest put;
    put.set_secret_id("busy");
    put.set_secret_string(absl::StrCat(std::string(190, 'y'), i));
    OrDie(secrets.PutSecretValue(put).status());
  }
  std::fprintf(stderr, "%d puts in %.1f s\n", puts, absl::ToDoubleSeconds(absl::Now() - setup));

  auto get = [&](const char* name) {
    return [&secrets, name] {
      sm::GetSecretValueRequest req;
      req.set_secret_id(name);
      return secrets.GetSecretValue(req).ok();
    };
  };
  auto describe = [&](const char* name) {
    return [&secrets, name] {
      sm::DescribeSecretRequest req;
      req.set_secret_id(name);
      return secrets.DescribeSecret(req).ok();
    };
  };
  std::vector<double> get_once, get_busy, describe_once, describe_busy;
  for (int round = 1; round <= absl::GetFlag(FLAGS_rounds); ++round) {
    get_once.push_back(Rate(get("once")));
    get_busy.push_back(Rate(get("busy")));
    describe_once.push_back(Rate(describe("once")));
    describe_busy.push_back(Rate(describe("busy")));
    std::fprintf(stderr, "round %d: get %.0f / %.0f, describe %.0f / %.0f\n", round,
                 get_once.back(), get_busy.back(), describe_once.back(), describe_busy.back());
  }
  std::printf(
      "versions_bench: %d puts on the busy secret, %d threads, %ds per measurement, "
      "medians of %d rounds\n",
      puts, absl::GetFlag(FLAGS_threads), absl::GetFlag(FLAGS_seconds),
      absl::GetFlag(FLAGS_rounds));
  std::printf("| call | 1 version | %d versions | ratio |\n|---|---|---|---|\n", puts + 1);
  std::printf("| GetSecretValue | %.0f/s | %.0f/s | %.2f |\n", Median(get_once), Median(get_busy),
              Median(get_busy) / Median(get_once));
  std::printf("| DescribeSecret | %.0f/s | %.0f/s | %.2f |\n", Median(describe_once),
              Median(describe_busy), Median(describe_busy) / Median(describe_once));
  std::system(("rm -rf " + dir).c_str());
  return 0;
}

}  // namespace
}  // namespace coffer

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return coffer::Main();
}
