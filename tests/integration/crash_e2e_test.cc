// Crash durability with the real binaries: concurrent writers while
// coffer-store (or coffer-kms) is killed with SIGKILL at a random moment and
// restarted, round after round. Every acknowledged write must be there and
// decrypt; labels stay consistent (exactly one AWSCURRENT); every version
// that is there decrypts (nothing half-written).
//
// Rounds: $COFFER_CRASH_ROUNDS (default 10 per service in the suite; more by
// hand, e.g. COFFER_CRASH_ROUNDS=100 ./build/tests/integration/integration_test
// --gtest_filter='CrashE2E*').
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

namespace sm = ::coffer::secrets::v1;
namespace pm = ::coffer::params::v1;
namespace kmsv1 = ::coffer::kms::v1;
using testing::Invoke;
using testing::ServiceProcess;

int Rounds() {
  const char* v = std::getenv("COFFER_CRASH_ROUNDS");
  int n = v != nullptr ? std::atoi(v) : 0;
  return n > 0 ? n : 10;
}

std::string Token(std::mt19937_64& rng) { return absl::StrFormat("%016x%016x", rng(), rng()); }

class CrashE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        testing::StartKmsAndStore(dir_, {"--max_versions_per_secret=100000"}, &kms_, &store_).ok())
        << (store_ ? store_->Output() : "");
  }

  // Runs `writer(thread, n, rng)` from 4 threads until `victim` has been
  // SIGKILLed at a random moment in [150, 500) ms, then restarts it.
  void KillDuringWrites(ServiceProcess& victim, std::mt19937_64& rng,
                        const std::function<void(int, int, std::mt19937_64&)>& writer) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      const uint64_t seed = rng();
      threads.emplace_back([&, t, seed] {
        std::mt19937_64 mine(seed);
        for (int n = 0; !stop.load(); ++n) writer(t, n, mine);
      });
    }
    absl::SleepFor(absl::Milliseconds(150 + static_cast<int>(rng() % 350)));
    victim.Kill();
    stop = true;
    for (auto& t : threads) t.join();
    ASSERT_TRUE(victim.Restart().ok()) << victim.Output();
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_, store_;
};

TEST_F(CrashE2ETest, StoreKilledDuringWritesLosesNoAcknowledgedWrite) {
  std::mt19937_64 rng(20261130);
  auto secrets = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
  auto params = pm::ParameterStore::NewStub(store_->Channel("cofferctl"));
  constexpr int kSecrets = 16;
  for (int i = 0; i < kSecrets; ++i) {
    sm::CreateSecretRequest req;
    req.set_name(absl::StrCat("crash/s", i));
    req.set_secret_string("initial");
    sm::CreateSecretResponse resp;
    ASSERT_TRUE(Invoke(secrets.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp).ok());
  }
  struct Put {
    std::string secret, version, value;
  };
  struct Param {
    std::string name, value;
    int64_t version;
  };
  std::mutex mu;
  std::vector<Put> puts;
  std::vector<std::string> created;
  std::vector<Param> param_puts;
  int64_t attempted = 0;

  const int rounds = Rounds();
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    KillDuringWrites(*store_, rng, [&](int t, int n, std::mt19937_64& r) {
      auto stub = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
      auto pstub = pm::ParameterStore::NewStub(store_->Channel("cofferctl"));
      const std::string value = absl::StrCat("v-", round, "-", t, "-", n, "-", r() % 1000000);
      {
        std::lock_guard<std::mutex> lock(mu);
        ++attempted;
      }
      switch (n % 4) {
        case 0:
        case 1: {
          sm::PutSecretValueRequest req;
          req.set_secret_id(absl::StrCat("crash/s", r() % kSecrets));
          req.set_client_request_token(Token(r));
          req.set_secret_string(value);
          sm::PutSecretValueResponse resp;
          if (Invoke(stub.get(), &sm::SecretsManager::Stub::PutSecretValue, req, &resp).ok()) {
            std::lock_guard<std::mutex> lock(mu);
            puts.push_back({req.secret_id(), resp.version_id(), value});
          }
          break;
        }
        case 2: {
          sm::CreateSecretRequest req;
          req.set_name(absl::StrCat("crash/new-", round, "-", t, "-", n));
          req.set_secret_string(value);
          sm::CreateSecretResponse resp;
          if (Invoke(stub.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp).ok()) {
            std::lock_guard<std::mutex> lock(mu);
            created.push_back(req.name());
          }
          break;
        }
        default: {
          pm::PutParameterRequest req;
          req.set_name(absl::StrCat("/crash/p", t));
          req.set_value(value);
          req.set_type(pm::PARAMETER_TYPE_SECURE_STRING);
          req.set_overwrite(true);
          pm::PutParameterResponse resp;
          if (Invoke(pstub.get(), &pm::ParameterStore::Stub::PutParameter, req, &resp).ok()) {
            std::lock_guard<std::mutex> lock(mu);
            param_puts.push_back({req.name(), value, resp.version()});
          }
        }
      }
    });
  }
  ASSERT_GT(puts.size(), 0u);

  // Every acknowledged version is there, by id, and decrypts to its value.
  for (const Put& p : puts) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(p.secret);
    req.set_version_id(p.version);
    sm::GetSecretValueResponse resp;
    grpc::Status s = Invoke(secrets.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &resp);
    ASSERT_TRUE(s.ok()) << p.secret << " " << p.version << ": " << s.error_message();
    EXPECT_EQ(resp.secret_string(), p.value);
  }
  for (const std::string& name : created) {
    sm::DescribeSecretRequest req;
    req.set_secret_id(name);
    sm::DescribeSecretResponse resp;
    EXPECT_TRUE(Invoke(secrets.get(), &sm::SecretsManager::Stub::DescribeSecret, req, &resp).ok())
        << name;
  }
  for (const Param& p : param_puts) {
    pm::GetParameterRequest req;
    req.set_name(absl::StrCat(p.name, ":", p.version));
    req.set_with_decryption(true);
    pm::GetParameterResponse resp;
    grpc::Status s = Invoke(params.get(), &pm::ParameterStore::Stub::GetParameter, req, &resp);
    ASSERT_TRUE(s.ok()) << req.name() << ": " << s.error_message();
    EXPECT_EQ(resp.parameter().value(), p.value);
  }
  // Labels are consistent and every version that exists decrypts.
  for (int i = 0; i < kSecrets; ++i) {
    sm::DescribeSecretRequest req;
    req.set_secret_id(absl::StrCat("crash/s", i));
    sm::DescribeSecretResponse resp;
    ASSERT_TRUE(Invoke(secrets.get(), &sm::SecretsManager::Stub::DescribeSecret, req, &resp).ok());
    int current = 0;
    for (const auto& [version, stages] : resp.version_ids_to_stages()) {
      for (const std::string& stage : stages.stages()) current += stage == "AWSCURRENT";
      sm::GetSecretValueRequest get;
      get.set_secret_id(req.secret_id());
      get.set_version_id(version);
      sm::GetSecretValueResponse value;
      EXPECT_TRUE(
          Invoke(secrets.get(), &sm::SecretsManager::Stub::GetSecretValue, get, &value).ok())
          << req.secret_id() << " " << version;
    }
    EXPECT_EQ(current, 1) << req.secret_id();
  }
  std::printf(
      "[          ] %d store kills; %lld writes attempted; found every acknowledged one: %zu "
      "secret versions, %zu new secrets, %zu parameter versions\n",
      rounds, static_cast<long long>(attempted), puts.size(), created.size(), param_puts.size());
}

TEST_F(CrashE2ETest, KmsKilledDuringWritesLosesNoAcknowledgedKeyOrCiphertext) {
  std::mt19937_64 rng(1130);
  auto kms = kmsv1::KeyManagement::NewStub(kms_->Channel("cofferctl"));
  kmsv1::CreateKeyResponse base;
  ASSERT_TRUE(
      Invoke(kms.get(), &kmsv1::KeyManagement::Stub::CreateKey, kmsv1::CreateKeyRequest(), &base)
          .ok());
  struct Sealed {
    std::string blob, plaintext, purpose;
  };
  std::mutex mu;
  std::vector<Sealed> sealed;
  std::vector<std::string> keys;
  std::map<std::string, std::string> aliases;  // alias -> key id
  int64_t attempted = 0;

  const int rounds = Rounds();
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    KillDuringWrites(*kms_, rng, [&](int t, int n, std::mt19937_64& r) {
      auto stub = kmsv1::KeyManagement::NewStub(kms_->Channel("cofferctl"));
      {
        std::lock_guard<std::mutex> lock(mu);
        ++attempted;
      }
      if (n % 5 == 4) {
        kmsv1::CreateKeyResponse key;
        if (!Invoke(stub.get(), &kmsv1::KeyManagement::Stub::CreateKey, kmsv1::CreateKeyRequest(),
                    &key)
                 .ok()) {
          return;
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          keys.push_back(key.key_metadata().key_id());
        }
        kmsv1::CreateAliasRequest alias;
        alias.set_alias_name(absl::StrCat("alias/crash-", round, "-", t, "-", n));
        alias.set_target_key_id(key.key_metadata().key_id());
        kmsv1::CreateAliasResponse done;
        if (Invoke(stub.get(), &kmsv1::KeyManagement::Stub::CreateAlias, alias, &done).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          aliases[alias.alias_name()] = key.key_metadata().key_id();
        }
        return;
      }
      kmsv1::EncryptRequest req;
      req.set_key_id(base.key_metadata().key_id());
      req.set_plaintext(absl::StrCat("plain-", round, "-", t, "-", n, "-", r() % 1000));
      (*req.mutable_encryption_context())["purpose"] = absl::StrCat("crash-", t);
      kmsv1::EncryptResponse resp;
      if (Invoke(stub.get(), &kmsv1::KeyManagement::Stub::Encrypt, req, &resp).ok()) {
        std::lock_guard<std::mutex> lock(mu);
        sealed.push_back({resp.ciphertext_blob(), req.plaintext(), absl::StrCat("crash-", t)});
      }
    });
  }
  ASSERT_GT(sealed.size(), 0u);
  for (const Sealed& s : sealed) {
    kmsv1::DecryptRequest req;
    req.set_ciphertext_blob(s.blob);
    (*req.mutable_encryption_context())["purpose"] = s.purpose;
    kmsv1::DecryptResponse resp;
    grpc::Status status = Invoke(kms.get(), &kmsv1::KeyManagement::Stub::Decrypt, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.plaintext(), s.plaintext);
  }
  for (const std::string& key : keys) {
    kmsv1::DescribeKeyRequest req;
    req.set_key_id(key);
    kmsv1::DescribeKeyResponse resp;
    EXPECT_TRUE(Invoke(kms.get(), &kmsv1::KeyManagement::Stub::DescribeKey, req, &resp).ok())
        << key;
  }
  for (const auto& [alias, key] : aliases) {
    kmsv1::DescribeKeyRequest req;
    req.set_key_id(alias);
    kmsv1::DescribeKeyResponse resp;
    ASSERT_TRUE(Invoke(kms.get(), &kmsv1::KeyManagement::Stub::DescribeKey, req, &resp).ok())
        << alias;
    EXPECT_EQ(resp.key_metadata().key_id(), key);
  }
  std::printf(
      "[          ] %d KMS kills; %lld write calls attempted; found every acknowledged one: "
      "%zu ciphertexts, %zu keys, %zu aliases\n",
      rounds, static_cast<long long>(attempted), sealed.size(), keys.size(), aliases.size());
}

}  // namespace
}  // namespace coffer
