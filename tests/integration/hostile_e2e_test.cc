// Hostile load and a KMS that dies, with the real binaries.
//
// HostileProbes: an ordinary client certificate tries every way the issue
// tracker found to grow coffer-store or coffer-kms without bound — made-up
// method names, thousands of versions of one secret, ten thousand watch
// streams, a thousand on-demand key rotations, a flood far past the
// in-flight limit — against the default limits. Each ends in a clear error;
// the processes' resident memory and their /metrics stay bounded; ordinary
// calls keep working. The counts go to the test's output (and its XML
// properties) for the record.
//
// KmsKilledDuringMixedLoad: SIGKILL of coffer-kms under readers and
// writers: cached reads keep their latency, calls that need the KMS fail
// within the deadline with UNAVAILABLE, health turns NOT_SERVING, and after
// a restart everything recovers with every acknowledged write there.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/rpc/status.h"
#include "tests/integration/http_get.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

namespace sm = ::coffer::secrets::v1;
namespace kmsv1 = ::coffer::kms::v1;
using ::testing::HasSubstr;
using testing::Invoke;
using testing::ServiceProcess;

std::string Reason(const grpc::Status& s) { return ErrorReason(rpc::FromGrpcStatus(s)); }

// Resident memory of a process in KiB (VmRSS), 0 if unknown.
int64_t RssKib(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));  // size 0: read it as a stream
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string status = buffer.str();
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, "VmRSS:")) {
      int64_t kib = 0;
      std::vector<std::string> parts =
          absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib;
    }
  }
  return 0;
}

// Lines of a /metrics scrape.
size_t MetricLines(const ServiceProcess& p) {
  auto body = testing::HttpGet(p.ports().metrics, "/metrics");
  EXPECT_TRUE(body.ok()) << body.status();
  return body.ok() ? std::count(body->begin(), body->end(), '\n') : 0;
}

// Runs `fn(thread, i)` for i in [0, n) on `threads` threads.
void Parallel(int threads, int n, const std::function<void(int, int)>& fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = next++; i < n; i = next++) fn(t, i);
    });
  }
  for (auto& t : pool) t.join();
}

// status code -> count, shared by probe threads.
struct Codes {
  void Add(const grpc::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    ++counts[s.error_code()];
  }
  int operator[](grpc::StatusCode c) {
    std::lock_guard<std::mutex> lock(mu);
    return counts[c];
  }
  int total() {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (const auto& [code, count] : counts) n += count;
    return n;
  }
  std::mutex mu;
  std::map<grpc::StatusCode, int> counts;
};

class HostileE2ETest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& store_flags) {
    ASSERT_TRUE(testing::StartKmsAndStore(dir_, store_flags, &kms_, &store_).ok())
        << (store_ ? store_->Output() : "");
    channel_ = store_->Channel("app-catagram");
    admin_ = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
  }

  grpc::Status Create(const std::string& name, const std::string& value) {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    sm::CreateSecretResponse resp;
    return Invoke(admin_.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
  }

  grpc::Status Put(sm::SecretsManager::Stub* stub, const std::string& id,
                   const std::string& value) {
    sm::PutSecretValueRequest req;
    req.set_secret_id(id);
    req.set_secret_string(value);
    sm::PutSecretValueResponse resp;
    return Invoke(stub, &sm::SecretsManager::Stub::PutSecretValue, req, &resp);
  }

  absl::StatusOr<std::string> Value(sm::SecretsManager::Stub* stub, const std::string& id) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(id);
    sm::GetSecretValueResponse resp;
    grpc::Status s = Invoke(stub, &sm::SecretsManager::Stub::GetSecretValue, req, &resp);
    if (!s.ok()) return rpc::FromGrpcStatus(s);
    return resp.secret_string();
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health() {
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", store_->ports().health), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckResponse resp;
    if (!stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
      return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    }
    return resp.status();
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_, store_;
  std::shared_ptr<grpc::Channel> channel_;  // an ordinary application's
  std::unique_ptr<sm::SecretsManager::Stub> admin_;
};

TEST_F(HostileE2ETest, HostileProbesEndInClearErrorsWithMemoryAndMetricsBounded) {
  // The defaults, except an in-flight limit small enough for one test
  // process to flood.
  Start({"--max_calls_in_flight=64", "--call_threads=4"});
  ASSERT_TRUE(Create("demo/catagram/busy", "v0").ok());
  ASSERT_TRUE(Create("demo/catagram/steady", "steady value").ok());
  auto app = sm::SecretsManager::NewStub(channel_);
  ASSERT_EQ(*Value(app.get(), "demo/catagram/steady"), "steady value");
  // Warm up: the series of the methods the probes use exist before.
  ASSERT_TRUE(Put(admin_.get(), "demo/catagram/busy", "v1").ok());
  const int64_t store_rss_before = RssKib(store_->pid());
  const int64_t kms_rss_before = RssKib(kms_->pid());
  ASSERT_GT(store_rss_before, 0);
  ASSERT_GT(kms_rss_before, 0);
  int64_t hostile = 0;

  // 1. Made-up method names: one "unknown" series, never the raw path.
  grpc::GenericStub generic(channel_);
  const size_t metric_lines_before = MetricLines(*store_);
  Codes unknown;
  constexpr int kUnknownCalls = 2000;
  for (int i = 0; i < kUnknownCalls; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<grpc::Status> done;
    generic.UnaryCall(&ctx, absl::StrCat("/x.Y/M", i, "z", absl::ToUnixNanos(absl::Now())),
                      grpc::StubOptions(), &request, &response,
                      [&done](grpc::Status s) { done.set_value(std::move(s)); });
    unknown.Add(done.get_future().get());
  }
  hostile += kUnknownCalls;
  EXPECT_EQ(unknown[grpc::StatusCode::UNIMPLEMENTED], kUnknownCalls);
  EXPECT_LE(MetricLines(*store_), metric_lines_before + 30) << "metrics grew with made-up names";
  auto scrape = testing::HttpGet(store_->ports().metrics, "/metrics");
  ASSERT_TRUE(scrape.ok());
  EXPECT_FALSE(absl::StrContains(*scrape, "x.Y")) << "a raw method name reached /metrics";

  // 2. Thousands of versions of one secret: the quota answers, reads stay.
  constexpr int kPuts = 5000;
  Codes puts;
  Parallel(8, kPuts, [&](int, int i) {
    grpc::Status s = Put(admin_.get(), "demo/catagram/busy", absl::StrCat("v", i + 2));
    if (!s.ok()) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      EXPECT_EQ(Reason(s), reason::kLimitExceeded);
    }
    puts.Add(s);
  });
  hostile += kPuts;
  EXPECT_EQ(puts[grpc::StatusCode::OK], 198) << "200 versions per secret by default";
  EXPECT_EQ(puts[grpc::StatusCode::RESOURCE_EXHAUSTED], kPuts - 198);
  EXPECT_TRUE(Value(app.get(), "demo/catagram/busy").ok());

  // 3. Ten thousand watch streams from one identity: 100 are held, the
  // rest refused at once.
  constexpr int kWatches = 10000;
  std::vector<std::unique_ptr<grpc::ClientContext>> held_contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<coffer::v1::ChangeEvent>>> held;
  for (int i = 0; i < 100; ++i) {
    held_contexts.push_back(std::make_unique<grpc::ClientContext>());
    held.push_back(app->WatchSecrets(held_contexts.back().get(), sm::WatchSecretsRequest()));
  }
  absl::SleepFor(absl::Milliseconds(500));
  Codes watches;
  Parallel(4, kWatches - 100, [&](int, int) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    auto reader = app->WatchSecrets(&ctx, sm::WatchSecretsRequest());
    coffer::v1::ChangeEvent e;
    while (reader->Read(&e)) {
    }
    grpc::Status s = reader->Finish();
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      EXPECT_THAT(s.error_message(), HasSubstr("one identity may hold"));
    }
    watches.Add(s);
  });
  hostile += kWatches;
  EXPECT_EQ(watches[grpc::StatusCode::RESOURCE_EXHAUSTED], kWatches - 100);
  const int64_t store_rss_watching = RssKib(store_->pid());
  for (auto& ctx : held_contexts) ctx->TryCancel();
  for (auto& r : held) r->Finish();
  held.clear();

  // 4. A thousand on-demand rotations of one key: 25, then LimitExceeded.
  auto kms = kmsv1::KeyManagement::NewStub(kms_->Channel("cofferctl"));
  kmsv1::CreateKeyRequest create_key;
  create_key.set_description("hostile");
  kmsv1::CreateKeyResponse key;
  ASSERT_TRUE(Invoke(kms.get(), &kmsv1::KeyManagement::Stub::CreateKey, create_key, &key).ok());
  constexpr int kRotations = 1000;
  Codes rotations;
  Parallel(4, kRotations, [&](int, int) {
    kmsv1::RotateKeyOnDemandRequest req;
    req.set_key_id(key.key_metadata().key_id());
    kmsv1::RotateKeyOnDemandResponse resp;
    grpc::Status s = Invoke(kms.get(), &kmsv1::KeyManagement::Stub::RotateKeyOnDemand, req, &resp);
    if (!s.ok()) {
      EXPECT_EQ(Reason(s), reason::kLimitExceeded) << s.error_message();
    }
    rotations.Add(s);
  });
  hostile += kRotations;
  EXPECT_EQ(rotations[grpc::StatusCode::OK], 25);
  EXPECT_EQ(rotations[grpc::StatusCode::RESOURCE_EXHAUSTED], kRotations - 25);

  // 5. A flood far past the in-flight limit: shed quickly, never queued.
  constexpr int kFloodThreads = 160, kFloodCalls = 25;
  Codes flood;
  std::vector<std::thread> flooders;
  for (int t = 0; t < kFloodThreads; ++t) {
    flooders.emplace_back([&] {
      for (int i = 0; i < kFloodCalls; ++i) {
        sm::GetSecretValueRequest req;
        req.set_secret_id("demo/catagram/steady");
        sm::GetSecretValueResponse resp;
        grpc::Status s = Invoke(app.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &resp);
        if (!s.ok()) {
          EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
        }
        flood.Add(s);
      }
    });
  }
  for (auto& t : flooders) t.join();
  hostile += kFloodThreads * kFloodCalls;
  EXPECT_GT(flood[grpc::StatusCode::RESOURCE_EXHAUSTED], 0);
  EXPECT_EQ(flood[grpc::StatusCode::OK] + flood[grpc::StatusCode::RESOURCE_EXHAUSTED],
            kFloodThreads * kFloodCalls);

  // Still up, still answering, memory and metrics bounded.
  ASSERT_TRUE(store_->running() && kms_->running());
  EXPECT_EQ(*Value(app.get(), "demo/catagram/steady"), "steady value");
  const int64_t store_rss_after = RssKib(store_->pid());
  const int64_t kms_rss_after = RssKib(kms_->pid());
  EXPECT_LT(store_rss_watching - store_rss_before, 64 * 1024) << "KiB held by 100 watch streams";
  EXPECT_LT(store_rss_after - store_rss_before, 64 * 1024) << "KiB the store grew";
  EXPECT_LT(kms_rss_after - kms_rss_before, 32 * 1024) << "KiB the KMS grew";
  EXPECT_LE(MetricLines(*store_), metric_lines_before + 60);
  std::printf(
      "hostile requests: %lld (unknown methods %d, puts %d, watch streams %d, key rotations %d, "
      "flood %d: %d shed)\nstore RSS %lld -> %lld KiB (%lld with 100 watches), KMS RSS %lld -> "
      "%lld KiB\n",
      static_cast<long long>(hostile), kUnknownCalls, kPuts, kWatches, kRotations,
      kFloodThreads * kFloodCalls, flood[grpc::StatusCode::RESOURCE_EXHAUSTED],
      static_cast<long long>(store_rss_before), static_cast<long long>(store_rss_after),
      static_cast<long long>(store_rss_watching), static_cast<long long>(kms_rss_before),
      static_cast<long long>(kms_rss_after));
  RecordProperty("hostile_requests", std::to_string(hostile));
}

TEST_F(HostileE2ETest, KmsKilledDuringMixedLoadRecoversWithNothingLost) {
  Start({});
  constexpr int kCached = 8;
  for (int i = 0; i < kCached; ++i) {
    ASSERT_TRUE(Create(absl::StrCat("demo/catagram/cached", i), absl::StrCat("value ", i)).ok());
  }
  auto app = sm::SecretsManager::NewStub(channel_);
  for (int i = 0; i < kCached; ++i)
    ASSERT_TRUE(Value(app.get(), "demo/catagram/cached" + std::to_string(i)).ok());
  ASSERT_EQ(Health(), grpc::health::v1::HealthCheckResponse::SERVING);

  std::atomic<bool> stop{false}, kms_down{false};
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;  // secret -> last acknowledged value
  std::atomic<int> reads{0}, writes_ok{0}, writes_unavailable{0};
  absl::Duration slowest_read_down = absl::ZeroDuration();
  absl::Duration slowest_failure = absl::ZeroDuration();
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t) {  // readers of cached secrets
    load.emplace_back([&, t] {
      auto stub = sm::SecretsManager::NewStub(channel_);
      for (int i = 0; !stop.load(); ++i) {
        const bool down = kms_down.load();
        const absl::Time start = absl::Now();
        auto v = Value(stub.get(), absl::StrCat("demo/catagram/cached", (i + t) % kCached));
        const absl::Duration took = absl::Now() - start;
        ASSERT_TRUE(v.ok()) << v.status();
        ++reads;
        if (down) {
          std::lock_guard<std::mutex> lock(mu);
          slowest_read_down = std::max(slowest_read_down, took);
        }
      }
    });
  }
  for (int t = 0; t < 2; ++t) {  // writers: new secrets, and new versions of them
    load.emplace_back([&, t] {
      auto stub = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
      std::vector<std::string> mine;  // secrets this writer created
      for (int i = 0; !stop.load(); ++i) {
        // Two creates (they need the KMS), then a put to one of them (its
        // key-encryption key may be cached: the KMS may not be needed).
        const bool put = i % 3 == 2 && !mine.empty();
        const std::string name = put ? mine[i % mine.size()] : absl::StrCat("mixed/w", t, "-", i);
        const std::string value = absl::StrCat("w", t, "-", i);
        const absl::Time start = absl::Now();
        grpc::Status s;
        if (!put) {
          sm::CreateSecretRequest req;
          req.set_name(name);
          req.set_secret_string(value);
          sm::CreateSecretResponse resp;
          s = Invoke(stub.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
        } else {
          s = Put(stub.get(), name, value);
        }
        const absl::Duration took = absl::Now() - start;
        if (s.ok()) {
          ++writes_ok;
          if (!put) mine.push_back(name);
          std::lock_guard<std::mutex> lock(mu);
          acknowledged[name] = value;
        } else {
          ASSERT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
          ++writes_unavailable;
          std::lock_guard<std::mutex> lock(mu);
          slowest_failure = std::max(slowest_failure, took);
        }
      }
    });
  }

  absl::SleepFor(absl::Seconds(1));
  kms_->Kill();
  kms_down = true;
  const int reads_before_outage = reads.load();
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Health() == grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
      absl::Seconds(10)));
  absl::SleepFor(absl::Seconds(2));
  const int reads_during_outage = reads.load() - reads_before_outage;
  ASSERT_TRUE(kms_->Restart().ok()) << kms_->Output();
  kms_down = false;
  EXPECT_TRUE(
      testing::WaitFor([&] { return Health() == grpc::health::v1::HealthCheckResponse::SERVING; },
                       absl::Seconds(30)));
  const int ok_before_recovery = writes_ok.load();
  EXPECT_TRUE(testing::WaitFor([&] { return writes_ok.load() > ok_before_recovery + 5; },
                               absl::Seconds(15)))
      << "writes came back";
  stop = true;
  for (auto& t : load) t.join();

  EXPECT_GT(reads_during_outage, 50) << "cached reads went on";
  EXPECT_LT(slowest_read_down, absl::Milliseconds(500));
  EXPECT_GT(writes_unavailable.load(), 0);
  EXPECT_LT(slowest_failure, absl::Seconds(4)) << "failures within the KMS deadline";
  // Every acknowledged write is there and decrypts, after a restart of the
  // store too.
  store_->Kill();
  ASSERT_TRUE(store_->Restart().ok()) << store_->Output();
  app = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
  for (const auto& [name, value] : acknowledged) {
    auto got = Value(app.get(), name);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_EQ(*got, value) << name;
  }
  std::printf(
      "KMS outage: %d cached reads during it (slowest %s), %d writes refused "
      "(slowest %s), %zu secrets checked\n",
      reads_during_outage, absl::FormatDuration(slowest_read_down).c_str(),
      writes_unavailable.load(), absl::FormatDuration(slowest_failure).c_str(),
      acknowledged.size());
}

}  // namespace
}  // namespace coffer
