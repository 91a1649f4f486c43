// End-to-end tests of Coffer's replicas on etcd: a real 3-member etcd
// cluster (TLS, client certificates), two coffer-kms and two coffer-store
// processes with --storage=etcd:..., each store reaching both KMSs through
// one gRPC target (ipv4:a,b), over mutual TLS.
//
//   HaE2ETest.ReplicasServeOneStore         a write through one replica is
//                                           read through the other: secrets,
//                                           parameters, KMS keys, rotations
//                                           of KMS keys
//   HaE2ETest.WatchResumesOnTheOtherReplica a WatchSecrets stream read on
//                                           one store resumes on the other
//                                           from the same position, missing
//                                           and repeating nothing
//   HaE2ETest.RotationThroughOneStore       the rotator (with both stores as
//                                           its target) rotates a secret
//                                           while the other store serves it
//   HaE2ETest.KillsLoseNoAcknowledgedWrite  SIGKILL of a store, a KMS, an
//                                           etcd follower, the leader, then
//                                           two members
//                                           (UNAVAILABLE without quorum)
//                                           during a mixed load; every
//                                           acknowledged write is read back
//                                           through both stores
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
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
#include "libs/crypto/random.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/rotation_e2e_fixture.h"
#include "tests/integration/service_process.h"
#include "tests/testing/etcd.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

namespace sm = ::coffer::secrets::v1;
namespace pm = ::coffer::params::v1;
namespace kmsv1 = ::coffer::kms::v1;
using ::testing::HasSubstr;
using testing::Invoke;
using testing::ServiceProcess;

std::string Hex(std::mt19937_64& rng) { return absl::StrFormat("%016x%016x", rng(), rng()); }

class HaE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::EtcdCluster::Installed()) << "etcd-server must be installed";
    auto etcd = testing::EtcdCluster::Start(3);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);

    // Every KMS replica unseals with the same root key.
    root_key_ = dir_.Join("root.key");
    std::string key(32, '\0');
    crypto::RandomBytes(key.data(), key.size());
    std::ofstream(root_key_, std::ios::binary) << key;
    ASSERT_EQ(::chmod(root_key_.c_str(), 0600), 0);

    for (int i = 0; i < 2; ++i) {
      std::vector<std::string> args = {"--data_dir=" + dir_.Join(absl::StrCat("kms", i)),
                                       "--root_key_file=" + root_key_, "--maintenance_interval=1s"};
      EtcdArgs(&args);
      testing::TlsArgs(testing::SharedPki().Identity("kms"), &args);
      kms_[i] = std::make_unique<ServiceProcess>("coffer-kms", args);
      ASSERT_TRUE(kms_[i]->Start().ok()) << kms_[i]->Output();
    }
    for (int i = 0; i < 2; ++i) {
      // Its own KMS first, the other one when that one is down.
      std::vector<std::string> args = {
          "--data_dir=" + dir_.Join(absl::StrCat("store", i)),
          absl::StrCat("--kms_address=ipv4:127.0.0.1:", kms_[i]->ports().grpc,
                       ",127.0.0.1:", kms_[1 - i]->ports().grpc),
          "--kms_authority=localhost",
          "--kms_check_interval=200ms",
          "--kms_timeout=2s",
          "--max_versions_per_secret=100000"};
      EtcdArgs(&args);
      testing::TlsArgs(testing::SharedPki().Identity("store"), &args);
      store_[i] = std::make_unique<ServiceProcess>("coffer-store", args);
      ASSERT_TRUE(store_[i]->Start().ok()) << store_[i]->Output();
    }
  }

  void TearDown() override {
    if (HasFailure()) {
      for (int i = 0; i < 2; ++i) {
        if (kms_[i]) std::cerr << "---- kms " << i << "\n" << kms_[i]->Output();
        if (store_[i]) std::cerr << "---- store " << i << "\n" << store_[i]->Output();
      }
    }
  }

  void EtcdArgs(std::vector<std::string>* args) {
    std::string endpoints;
    for (const std::string& e : etcd_->endpoints()) {
      absl::StrAppend(&endpoints, endpoints.empty() ? "" : ",", e);
    }
    const rpc::TlsFiles tls = etcd_->client_tls();
    args->push_back("--storage=etcd:" + endpoints);
    args->push_back("--etcd_ca=" + tls.ca_file);
    args->push_back("--etcd_cert=" + tls.cert_file);
    args->push_back("--etcd_key=" + tls.key_file);
  }

  std::unique_ptr<sm::SecretsManager::Stub> Secrets(int store) {
    return sm::SecretsManager::NewStub(store_[store]->Channel("cofferctl"));
  }

  grpc::Status CreateSecret(int store, const std::string& name, const std::string& value) {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    sm::CreateSecretResponse resp;
    return Invoke(Secrets(store).get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
  }

  // The value of `name` (its AWSCURRENT version, or `version_id`) through
  // `store`, or the error's message.
  std::string Value(int store, const std::string& name, const std::string& version_id = "") {
    sm::GetSecretValueRequest req;
    req.set_secret_id(name);
    req.set_version_id(version_id);
    sm::GetSecretValueResponse resp;
    grpc::Status s =
        Invoke(Secrets(store).get(), &sm::SecretsManager::Stub::GetSecretValue, req, &resp);
    return s.ok() ? resp.secret_string() : "error: " + s.error_message();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::EtcdCluster> etcd_;
  std::string root_key_;
  std::unique_ptr<ServiceProcess> kms_[2];
  std::unique_ptr<ServiceProcess> store_[2];
};

TEST_F(HaE2ETest, ReplicasServeOneStore) {
  // Secrets: created through one store, read and changed through the other.
  ASSERT_TRUE(CreateSecret(0, "ha/db", "first").ok());
  EXPECT_EQ(Value(1, "ha/db"), "first");
  sm::PutSecretValueRequest put;
  put.set_secret_id("ha/db");
  put.set_secret_string("second");
  sm::PutSecretValueResponse put_resp;
  ASSERT_TRUE(
      Invoke(Secrets(1).get(), &sm::SecretsManager::Stub::PutSecretValue, put, &put_resp).ok());
  EXPECT_EQ(Value(0, "ha/db"), "second");
  // Both stores refuse the same name: one record, not one per replica.
  grpc::Status again = CreateSecret(1, "ha/db", "other");
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS) << again.error_message();

  // Parameters, SecureString included (a KMS data key per value).
  auto params0 = pm::ParameterStore::NewStub(store_[0]->Channel("cofferctl"));
  auto params1 = pm::ParameterStore::NewStub(store_[1]->Channel("cofferctl"));
  pm::PutParameterRequest pput;
  pput.set_name("/ha/password");
  pput.set_value("p@ss");
  pput.set_type(pm::PARAMETER_TYPE_SECURE_STRING);
  pm::PutParameterResponse pput_resp;
  ASSERT_TRUE(
      Invoke(params1.get(), &pm::ParameterStore::Stub::PutParameter, pput, &pput_resp).ok());
  pm::GetParameterRequest pget;
  pget.set_name("/ha/password");
  pget.set_with_decryption(true);
  pm::GetParameterResponse pget_resp;
  ASSERT_TRUE(
      Invoke(params0.get(), &pm::ParameterStore::Stub::GetParameter, pget, &pget_resp).ok());
  EXPECT_EQ(pget_resp.parameter().value(), "p@ss");

  // KMS: a key made on one replica encrypts on the other at once, and a
  // rotation on one is used by the other.
  auto kms0 = kmsv1::KeyManagement::NewStub(kms_[0]->Channel("cofferctl"));
  auto kms1 = kmsv1::KeyManagement::NewStub(kms_[1]->Channel("cofferctl"));
  kmsv1::CreateKeyRequest create;
  kmsv1::CreateKeyResponse key;
  ASSERT_TRUE(Invoke(kms0.get(), &kmsv1::KeyManagement::Stub::CreateKey, create, &key).ok());
  kmsv1::EncryptRequest enc;
  enc.set_key_id(key.key_metadata().key_id());
  enc.set_plaintext("hello");
  kmsv1::EncryptResponse sealed;
  grpc::Status s = Invoke(kms1.get(), &kmsv1::KeyManagement::Stub::Encrypt, enc, &sealed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  kmsv1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id(key.key_metadata().key_id());
  kmsv1::RotateKeyOnDemandResponse rotated;
  ASSERT_TRUE(
      Invoke(kms1.get(), &kmsv1::KeyManagement::Stub::RotateKeyOnDemand, rotate, &rotated).ok());
  // The other replica follows within the watch's delay.
  kmsv1::DescribeKeyRequest describe;
  describe.set_key_id(key.key_metadata().key_id());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        kmsv1::DescribeKeyResponse described;
        return Invoke(kms0.get(), &kmsv1::KeyManagement::Stub::DescribeKey, describe, &described)
                   .ok() &&
               described.key_metadata().current_key_material_version() == 2;
      },
      absl::Seconds(2)));
  kmsv1::EncryptResponse sealed2;
  ASSERT_TRUE(Invoke(kms0.get(), &kmsv1::KeyManagement::Stub::Encrypt, enc, &sealed2).ok());
  for (const auto* blob : {&sealed, &sealed2}) {
    for (auto* stub : {kms0.get(), kms1.get()}) {
      kmsv1::DecryptRequest dec;
      dec.set_ciphertext_blob(blob->ciphertext_blob());
      kmsv1::DecryptResponse opened;
      ASSERT_TRUE(Invoke(stub, &kmsv1::KeyManagement::Stub::Decrypt, dec, &opened).ok());
      EXPECT_EQ(opened.plaintext(), "hello");
    }
  }
  // Replicas racing to change one thing: both succeed, one after the other.
  std::vector<grpc::Status> results(2);
  std::vector<std::thread> racers;
  for (int i = 0; i < 2; ++i) {
    racers.emplace_back([&, i] {
      kmsv1::CreateAliasRequest alias;
      alias.set_alias_name(absl::StrCat("alias/ha-", i));
      alias.set_target_key_id(key.key_metadata().key_id());
      kmsv1::CreateAliasResponse made;
      auto stub = kmsv1::KeyManagement::NewStub(kms_[i]->Channel("cofferctl"));
      results[i] = Invoke(stub.get(), &kmsv1::KeyManagement::Stub::CreateAlias, alias, &made);
    });
  }
  for (auto& t : racers) t.join();
  for (const grpc::Status& r : results) EXPECT_TRUE(r.ok()) << r.error_message();
  kmsv1::ListAliasesRequest list;
  list.set_key_id(key.key_metadata().key_id());
  testing::WaitFor(
      [&] {
        kmsv1::ListAliasesResponse aliases;
        return Invoke(kms0.get(), &kmsv1::KeyManagement::Stub::ListAliases, list, &aliases).ok() &&
               aliases.aliases_size() == 2;
      },
      absl::Seconds(5));
  kmsv1::ListAliasesResponse aliases;
  ASSERT_TRUE(Invoke(kms0.get(), &kmsv1::KeyManagement::Stub::ListAliases, list, &aliases).ok());
  EXPECT_EQ(aliases.aliases_size(), 2);
}

// Reads events from `stream` until `count` were read or `timeout` passed.
std::vector<coffer::v1::ChangeEvent> ReadEvents(grpc::ClientReader<coffer::v1::ChangeEvent>* stream,
                                                size_t count) {
  std::vector<coffer::v1::ChangeEvent> events;
  coffer::v1::ChangeEvent event;
  while (events.size() < count && stream->Read(&event)) events.push_back(event);
  return events;
}

TEST_F(HaE2ETest, WatchResumesOnTheOtherReplica) {
  constexpr int kChanges = 30;
  // Changes through both stores, interleaved.
  for (int i = 0; i < kChanges; ++i) {
    ASSERT_TRUE(CreateSecret(i % 2, absl::StrCat("ha-watch/s", i), "v").ok());
  }
  // The whole log, from the start, through store 1: the reference.
  auto open = [&](int store, const std::string& after, grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    sm::WatchSecretsRequest req;
    req.set_name_prefix("ha-watch/");
    req.set_start_after(after);
    return Secrets(store)->WatchSecrets(ctx, req);
  };
  grpc::ClientContext ref_ctx;
  auto ref_stream = open(1, "0", &ref_ctx);
  std::vector<coffer::v1::ChangeEvent> reference = ReadEvents(ref_stream.get(), kChanges);
  ASSERT_EQ(reference.size(), static_cast<size_t>(kChanges));
  ref_ctx.TryCancel();

  // A client reads the first 10 events from store 0 and goes away.
  grpc::ClientContext first_ctx;
  auto first = open(0, "0", &first_ctx);
  std::vector<coffer::v1::ChangeEvent> seen = ReadEvents(first.get(), 10);
  ASSERT_EQ(seen.size(), 10u);
  first_ctx.TryCancel();
  // More changes meanwhile, then it resumes on store 1.
  for (int i = kChanges; i < kChanges + 10; ++i) {
    ASSERT_TRUE(CreateSecret(i % 2, absl::StrCat("ha-watch/s", i), "v").ok());
  }
  grpc::ClientContext resumed_ctx;
  auto resumed = open(1, seen.back().position(), &resumed_ctx);
  std::vector<coffer::v1::ChangeEvent> rest = ReadEvents(resumed.get(), kChanges);
  resumed_ctx.TryCancel();
  seen.insert(seen.end(), rest.begin(), rest.end());

  ASSERT_EQ(seen.size(), static_cast<size_t>(kChanges + 10));
  for (int i = 0; i < kChanges + 10; ++i) {
    if (i < kChanges) {
      EXPECT_EQ(seen[i].position(), reference[i].position()) << i;
    }
    EXPECT_EQ(seen[i].name(), absl::StrCat("ha-watch/s", i)) << i;
  }
}

TEST_F(HaE2ETest, RotationThroughOneStore) {
  // The exec worker rotates through store 0 with cofferctl; the rotator
  // reaches the stores through one target naming both.
  const std::string script = dir_.Join("rotate.sh");
  ASSERT_TRUE(
      rotation_e2e::WriteExecutable(script, rotation_e2e::ExecScript("A", dir_.Join("exec.log"))));
  std::vector<std::string> worker_args = {"--store_address=" + store_[0]->address(),
                                          "--command=" + script, "--step_timeout=20s"};
  testing::TlsArgs(testing::SharedPki().Identity("worker-exec"), &worker_args);
  ServiceProcess worker("coffer-worker-exec", worker_args);
  ASSERT_TRUE(worker.Start().ok()) << worker.Output();
  std::vector<std::string> rotator_args = {
      absl::StrCat("--store_address=ipv4:127.0.0.1:", store_[0]->ports().grpc,
                   ",127.0.0.1:", store_[1]->ports().grpc),
      "--store_authority=localhost",
      "--holder=ha-rotator",
      "--lease_duration=3s",
      "--backoff_initial=100ms",
      "--backoff_max=500ms",
      "--resync_interval=1s",
      "--worker=exec=" + worker.address() + "=" + rotation_e2e::kExecWorkerId};
  testing::TlsArgs(testing::SharedPki().Identity("rotator"), &rotator_args);
  ServiceProcess rotator("coffer-rotator", rotator_args);
  ASSERT_TRUE(rotator.Start().ok()) << rotator.Output();

  ASSERT_TRUE(CreateSecret(1, "ha/rotated", "before").ok());
  // Store 1 serves reads all along: always a whole value, old or new.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::string> bad;
  std::thread reader([&] {
    while (!stop) {
      const std::string v = Value(1, "ha/rotated");
      if (v != "before" && v.rfind("rotated-", 0) != 0) bad.push_back(v);
      ++reads;
    }
  });
  sm::RotateSecretRequest req;
  req.set_secret_id("ha/rotated");
  req.set_rotation_worker("exec");
  req.mutable_rotation_rules()->set_automatically_after_days(30);
  req.set_rotate_immediately(true);
  sm::RotateSecretResponse resp;
  grpc::Status s = Invoke(Secrets(0).get(), &sm::SecretsManager::Stub::RotateSecret, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const bool done = testing::WaitFor(
      [&] { return Value(1, "ha/rotated") == "rotated-" + resp.version_id(); }, absl::Seconds(30));
  stop = true;
  reader.join();
  EXPECT_TRUE(done) << Value(1, "ha/rotated") << "\n" << rotator.Output() << worker.Output();
  EXPECT_THAT(bad, ::testing::IsEmpty());
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(rotator.Stop(), 0) << rotator.Output();
}

TEST_F(HaE2ETest, KillsLoseNoAcknowledgedWrite) {
  std::mt19937_64 rng(20261130);
  constexpr int kSecrets = 8;
  for (int i = 0; i < kSecrets; ++i) {
    ASSERT_TRUE(CreateSecret(i % 2, absl::StrCat("ha-load/s", i), "initial").ok());
  }
  struct Put {
    std::string secret, version, value;
  };
  std::mutex mu;
  std::vector<Put> acked;
  std::map<grpc::StatusCode, int> failures;
  std::atomic<bool> stop{false};
  std::atomic<int> ok_writes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    const uint64_t seed = rng();
    threads.emplace_back([&, t, seed] {
      std::mt19937_64 mine(seed);
      const int store = t % 2;
      for (int n = 0; !stop; ++n) {
        auto stub = Secrets(store);
        const std::string secret = absl::StrCat("ha-load/s", mine() % kSecrets);
        if (n % 3 == 2) {  // a read among the writes
          sm::GetSecretValueRequest req;
          req.set_secret_id(secret);
          sm::GetSecretValueResponse resp;
          Invoke(stub.get(), &sm::SecretsManager::Stub::GetSecretValue, req, &resp);
          continue;
        }
        sm::PutSecretValueRequest req;
        req.set_secret_id(secret);
        req.set_client_request_token(Hex(mine));
        req.set_secret_string(absl::StrCat("v-", t, "-", n, "-", Hex(mine)));
        sm::PutSecretValueResponse resp;
        grpc::Status s = Invoke(stub.get(), &sm::SecretsManager::Stub::PutSecretValue, req, &resp);
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          acked.push_back({secret, resp.version_id(), req.secret_string()});
          ++ok_writes;
        } else {
          ++failures[s.error_code()];
        }
      }
    });
  }
  // Writes go on between faults.
  auto progress = [&](absl::Duration at_least) {
    const int before = ok_writes.load();
    absl::SleepFor(at_least);
    return testing::WaitFor([&] { return ok_writes.load() > before + 5; }, absl::Seconds(30));
  };
  ASSERT_TRUE(progress(absl::Milliseconds(500)));

  store_[0]->Kill();
  EXPECT_TRUE(progress(absl::Milliseconds(500))) << "store 1 alone";
  ASSERT_TRUE(store_[0]->Restart().ok()) << store_[0]->Output();

  kms_[0]->Kill();
  EXPECT_TRUE(progress(absl::Seconds(1))) << "KMS 1 alone";
  ASSERT_TRUE(kms_[0]->Restart().ok()) << kms_[0]->Output();

  int leader = etcd_->Leader();
  ASSERT_GE(leader, 0);
  const int follower = (leader + 1) % 3;
  etcd_->Kill(follower);
  EXPECT_TRUE(progress(absl::Seconds(1))) << "etcd without a follower";
  ASSERT_TRUE(etcd_->Restart(follower).ok());

  ASSERT_TRUE(testing::WaitFor([&] { return (leader = etcd_->Leader()) >= 0; }, absl::Seconds(10)));
  etcd_->Kill(leader);
  EXPECT_TRUE(progress(absl::Seconds(1))) << "etcd without its leader";
  ASSERT_TRUE(etcd_->Restart(leader).ok());
  EXPECT_TRUE(progress(absl::Milliseconds(500)));

  // Two of three members down: no quorum, and the stores say so.
  etcd_->Kill(0);
  etcd_->Kill(1);
  absl::SleepFor(absl::Seconds(2));
  for (int store = 0; store < 2; ++store) {
    sm::PutSecretValueRequest req;
    req.set_secret_id("ha-load/s0");
    req.set_secret_string("without quorum");
    sm::PutSecretValueResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Status s = Secrets(store)->PutSecretValue(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    // Said plainly, without etcd's addresses.
    EXPECT_THAT(s.error_message(), HasSubstr("storage unavailable"));
    EXPECT_THAT(s.error_message(), ::testing::Not(HasSubstr("127.0.0.1")));
  }
  ASSERT_TRUE(etcd_->Restart(0, /*wait_healthy=*/false).ok());
  ASSERT_TRUE(etcd_->Restart(1).ok());
  EXPECT_TRUE(progress(absl::Milliseconds(500))) << "after quorum came back";
  stop = true;
  for (auto& t : threads) t.join();

  // Every acknowledged write, through both stores.
  ASSERT_GT(acked.size(), 20u);
  int lost = 0;
  for (const Put& p : acked) {
    for (int store = 0; store < 2; ++store) {
      const std::string value = Value(store, p.secret, p.version);
      if (value != p.value) {
        ++lost;
        ADD_FAILURE() << p.secret << " " << p.version << " through store " << store << ": "
                      << value;
      }
    }
  }
  EXPECT_EQ(lost, 0);
  std::string failed;
  for (const auto& [code, n] : failures) absl::StrAppend(&failed, code, ":", n, " ");
  std::cerr << "acknowledged writes: " << acked.size() << ", refused: " << failed << "\n";
}

}  // namespace
}  // namespace coffer
