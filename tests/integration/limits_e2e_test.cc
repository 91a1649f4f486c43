// Bounded resources with the real binaries: load shedding past the
// in-flight limit, a hung KMS that costs only the calls that need it, the
// per-secret version quota, and the watch-stream caps.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/http_get.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

namespace sm = ::coffer::secrets::v1;
using ::testing::HasSubstr;
using testing::Invoke;
using testing::ServiceProcess;

class LimitsE2ETest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& store_flags) {
    ASSERT_TRUE(testing::StartKmsAndStore(dir_, store_flags, &kms_, &store_).ok())
        << (store_ ? store_->Output() : "");
    secrets_ = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
  }

  grpc::Status Create(const std::string& name, const std::string& value) {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    sm::CreateSecretResponse resp;
    return Invoke(secrets_.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
  }

  grpc::Status Get(const std::string& id) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(id);
    sm::GetSecretValueResponse resp;
    return Invoke(secrets_.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &resp);
  }

  grpc::Status Put(const std::string& id, const std::string& value) {
    sm::PutSecretValueRequest req;
    req.set_secret_id(id);
    req.set_secret_string(value);
    sm::PutSecretValueResponse resp;
    return Invoke(secrets_.get(), &sm::SecretsManager::Stub::PutSecretValue, req, &resp);
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_, store_;
  std::unique_ptr<sm::SecretsManager::Stub> secrets_;
};

TEST_F(LimitsE2ETest, AFloodPastTheInFlightLimitIsShedNotQueued) {
  Start({"--call_threads=1", "--max_calls_in_flight=2"});
  ASSERT_TRUE(Create("flood/db", "v").ok());
  std::mutex mu;
  std::map<grpc::StatusCode, int> codes;
  std::vector<std::thread> clients;
  for (int t = 0; t < 48; ++t) {
    clients.emplace_back([&] {
      auto stub = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
      for (int i = 0; i < 25; ++i) {
        sm::GetSecretValueRequest req;
        req.set_secret_id("flood/db");
        sm::GetSecretValueResponse resp;
        grpc::Status s = Invoke(stub.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &resp);
        std::lock_guard<std::mutex> lock(mu);
        ++codes[s.error_code()];
        if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          EXPECT_THAT(s.error_message(), HasSubstr("too many calls in flight"));
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_GT(codes[grpc::StatusCode::OK], 0);
  EXPECT_GT(codes[grpc::StatusCode::RESOURCE_EXHAUSTED], 0);
  EXPECT_EQ(codes[grpc::StatusCode::OK] + codes[grpc::StatusCode::RESOURCE_EXHAUSTED], 48 * 25)
      << "only OK or shed, nothing else";
  EXPECT_TRUE(store_->running());
  EXPECT_TRUE(Get("flood/db").ok());
}

TEST_F(LimitsE2ETest, AHungKmsCostsOnlyTheCallsThatNeedIt) {
  Start({});
  ASSERT_TRUE(Create("hung/db", "v").ok());
  ASSERT_TRUE(Get("hung/db").ok());            // its data key is now cached
  ASSERT_EQ(::kill(kms_->pid(), SIGSTOP), 0);  // hung, not refused

  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  std::atomic<int> write_failures{0};
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      auto stub = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
      while (!stop.load()) {
        sm::CreateSecretRequest req;
        req.set_name(absl::StrCat("hung/new-", t, "-", absl::ToUnixNanos(absl::Now())));
        req.set_secret_string("x");
        sm::CreateSecretResponse resp;
        const absl::Time start = absl::Now();
        grpc::Status s = Invoke(stub.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
        if (!s.ok()) {
          ++write_failures;
          EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
          EXPECT_LT(absl::Now() - start, absl::Seconds(4)) << "within the KMS deadline";
        }
      }
    });
  }
  // Cached reads keep working while writes wait on the hung KMS.
  absl::Duration slowest = absl::ZeroDuration();
  for (int i = 0; i < 100; ++i) {
    const absl::Time start = absl::Now();
    grpc::Status s = Get("hung/db");
    slowest = std::max(slowest, absl::Now() - start);
    ASSERT_TRUE(s.ok()) << s.error_message();
    absl::SleepFor(absl::Milliseconds(10));
  }
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_GT(write_failures.load(), 0);
  EXPECT_LT(slowest, absl::Milliseconds(500));

  ASSERT_EQ(::kill(kms_->pid(), SIGCONT), 0);
  EXPECT_TRUE(testing::WaitFor([&] { return Create("hung/after", "y").ok(); }, absl::Seconds(15)));
}

// A file-size limit (a soft RLIMIT_FSIZE below the size of RocksDB's log,
// above the audit file's): writes fail with a clear status, reads keep working,
// the process stays up, and once there is room a restart brings writes
// back with nothing lost.
TEST_F(LimitsE2ETest, AFullDiskFailsWritesKeepsReadsAndRecovers) {
  Start({});
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Create(absl::StrCat("full/s", i), std::string(30000, 'a' + i % 26)).ok());
  }
  ASSERT_TRUE(Get("full/s0").ok());
  std::string audit_file;
  for (const auto& e : std::filesystem::directory_iterator(store_->audit_dir())) {
    if (e.path().extension() == ".jsonl") audit_file = e.path().string();
  }
  std::uintmax_t wal = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.Join("store/db"))) {
    if (e.path().extension() == ".log") wal = std::max(wal, std::filesystem::file_size(e.path()));
  }
  const std::uintmax_t limit = std::filesystem::file_size(audit_file) + 100000;
  ASSERT_GT(wal, limit) << "RocksDB's log must be past the limit for this test";
  auto prlimit = [&](const std::string& value) {
    testing::Subprocess p(
        {"/usr/bin/prlimit", "--pid", absl::StrCat(store_->pid()), "--fsize=" + value});
    ASSERT_TRUE(p.Start().ok());
    ASSERT_EQ(p.Wait(), 0) << p.Output();
  };
  prlimit(absl::StrCat(limit, ":unlimited"));

  grpc::Status write = Put("full/s1", "during");
  EXPECT_FALSE(write.ok());
  EXPECT_EQ(write.error_code(), grpc::StatusCode::UNAVAILABLE) << write.error_message();
  for (int i = 0; i < 30; i += 7) EXPECT_TRUE(Get(absl::StrCat("full/s", i)).ok()) << i;
  EXPECT_TRUE(store_->running());

  prlimit("unlimited");
  // A file-size limit (EFBIG) is an I/O error RocksDB does not resume from
  // (unlike ENOSPC, AFullDiskRecoversWithoutARestartOnceThereIsRoom): a
  // restart brings writes back, nothing lost.
  store_->Kill();
  ASSERT_TRUE(store_->Restart().ok()) << store_->Output();
  secrets_ = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
  ASSERT_TRUE(Put("full/s1", "after").ok());
  sm::GetSecretValueRequest req;
  req.set_secret_id("full/s1");
  sm::GetSecretValueResponse resp;
  ASSERT_TRUE(Invoke(secrets_.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &resp).ok());
  EXPECT_TRUE(resp.secret_string() == "after") << "the value written after recovery";
  for (int i = 0; i < 30; ++i) {
    sm::GetSecretValueRequest old;
    old.set_secret_id(absl::StrCat("full/s", i));
    old.set_version_stage(i == 1 ? "AWSPREVIOUS" : "AWSCURRENT");
    sm::GetSecretValueResponse got;
    ASSERT_TRUE(Invoke(secrets_.get(), &sm::SecretsManager::Stub::GetSecretValue, old, &got).ok())
        << i;
    EXPECT_TRUE(got.secret_string() == std::string(30000, 'a' + i % 26)) << i;
  }
}

// A disk that really fills up (a small tmpfs under the store's data
// directory, filled by another file until ENOSPC): writes fail with
// UNAVAILABLE, reads keep working, and once the other file is gone writes
// work again by themselves, with no restart and nothing lost.
TEST_F(LimitsE2ETest, AFullDiskRecoversWithoutARestartOnceThereIsRoom) {
  const std::string data = dir_.Join("store");
  std::filesystem::create_directories(data);
  {
    testing::Subprocess mount({"/bin/mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", data});
    ASSERT_TRUE(mount.Start().ok());
    ASSERT_EQ(mount.Wait(), 0) << "mounting a tmpfs needs root (CI runs as root): "
                               << mount.Output();
  }
  struct Unmount {
    ~Unmount() {
      store->reset();  // the process first: a busy tmpfs does not unmount
      testing::Subprocess umount({"/bin/umount", "-l", path});
      if (umount.Start().ok()) umount.Wait();
    }
    std::unique_ptr<ServiceProcess>* store;
    std::string path;
  } unmount{&store_, data};
  Start({});
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Create(absl::StrCat("enospc/s", i), std::string(2000, 'a' + i)).ok());
  }
  ASSERT_TRUE(Get("enospc/s0").ok());

  // Fill what is left of the disk.
  const std::string filler = data + "/filler";
  {
    std::FILE* f = std::fopen(filler.c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string chunk(1 << 16, 'f');
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) {
    }
    std::fclose(f);
  }
  // RocksDB preallocated its log: writing on until the disk refuses takes
  // tens of megabytes.
  std::atomic<int> failed{0}, next{0};
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&] {
      auto stub = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
      for (int i = next++; i < 4000 && failed.load() < 3; i = next++) {
        sm::CreateSecretRequest req;
        req.set_name(absl::StrCat("enospc/big", i));
        req.set_secret_string(std::string(60000, 'a' + i % 26));
        sm::CreateSecretResponse resp;
        grpc::Status s = Invoke(stub.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
        if (s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.push_back(req.name());
          continue;
        }
        ++failed;
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_GE(failed.load(), 3) << "writes must fail on a full disk";
  for (int i = 0; i < 20; i += 3) EXPECT_TRUE(Get(absl::StrCat("enospc/s", i)).ok()) << i;
  ASSERT_TRUE(store_->running());

  // Room again: writes come back by themselves.
  std::filesystem::remove(filler);
  EXPECT_TRUE(testing::WaitFor([&] { return Put("enospc/s1", "after").ok(); }, absl::Seconds(20)))
      << store_->Output();
  ASSERT_TRUE(Create("enospc/new", "created after").ok());
  // Nothing lost, across a restart too.
  store_->Kill();
  ASSERT_TRUE(store_->Restart().ok()) << store_->Output();
  secrets_ = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
  for (int i = 0; i < 20; ++i) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(absl::StrCat("enospc/s", i));
    if (i == 1) req.set_version_stage("AWSPREVIOUS");  // "after" is current
    sm::GetSecretValueResponse got;
    ASSERT_TRUE(Invoke(secrets_.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &got).ok())
        << i;
    if (i != 1) {
      EXPECT_TRUE(got.secret_string() == std::string(2000, 'a' + i)) << i;
    }
  }
  EXPECT_TRUE(Get("enospc/new").ok());
  for (const std::string& name : acknowledged) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(name);
    sm::GetSecretValueResponse got;
    ASSERT_TRUE(Invoke(secrets_.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &got).ok())
        << name;
    EXPECT_EQ(got.secret_string().size(), 60000u) << name;
  }
  std::printf("full disk: %zu large writes acknowledged before it filled, all there after\n",
              acknowledged.size());
}

// Opens a WatchSecrets stream as `identity`; returns the status it ends
// with within `wait` (DEADLINE_EXCEEDED: it was accepted and stayed open).
struct OpenWatch {
  OpenWatch(ServiceProcess& store, const std::string& identity) {
    stub = sm::SecretsManager::NewStub(store.Channel(identity));
    reader = stub->WatchSecrets(&ctx, sm::WatchSecretsRequest());
  }
  ~OpenWatch() {
    ctx.TryCancel();
    coffer::v1::ChangeEvent e;
    while (reader->Read(&e)) {
    }
    reader->Finish();
  }
  std::unique_ptr<sm::SecretsManager::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<coffer::v1::ChangeEvent>> reader;
};

grpc::Status TryWatch(ServiceProcess& store, const std::string& identity) {
  auto stub = sm::SecretsManager::NewStub(store.Channel(identity));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
  auto reader = stub->WatchSecrets(&ctx, sm::WatchSecretsRequest());
  coffer::v1::ChangeEvent e;
  while (reader->Read(&e)) {
  }
  return reader->Finish();
}

TEST_F(LimitsE2ETest, WatchStreamsAreCappedPerIdentityAndInAll) {
  Start({"--max_watch_streams=5", "--max_watch_streams_per_identity=3"});
  std::vector<std::unique_ptr<OpenWatch>> admin;
  for (int i = 0; i < 3; ++i) admin.push_back(std::make_unique<OpenWatch>(*store_, "cofferctl"));
  absl::SleepFor(absl::Milliseconds(500));
  grpc::Status fourth = TryWatch(*store_, "cofferctl");
  EXPECT_EQ(fourth.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << fourth.error_message();
  EXPECT_THAT(fourth.error_message(), HasSubstr("one identity may hold"));

  std::vector<std::unique_ptr<OpenWatch>> app;
  for (int i = 0; i < 2; ++i) app.push_back(std::make_unique<OpenWatch>(*store_, "app-catagram"));
  absl::SleepFor(absl::Milliseconds(500));
  grpc::Status sixth = TryWatch(*store_, "app-catagram");
  EXPECT_EQ(sixth.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << sixth.error_message();
  EXPECT_THAT(sixth.error_message(), HasSubstr("watch streams, the most it allows"));

  // A closed stream gives its slot back.
  admin.pop_back();
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return TryWatch(*store_, "cofferctl").error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      },
      absl::Seconds(10)));
}

}  // namespace
}  // namespace coffer
