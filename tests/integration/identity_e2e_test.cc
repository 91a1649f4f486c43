// Services pin each other's identities: with real binaries, a server holding
// a valid certificate of the same CA (naming localhost) but the wrong SPIFFE
// ID is refused in the TLS handshake, before any request reaches it.
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "coffer/rotation/v1/worker.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ServiceProcess;
namespace sm = ::coffer::secrets::v1;

// coffer-kms serving with `identity`'s certificate, in `dir`/kms.
std::unique_ptr<ServiceProcess> KmsAs(const testing::TempDir& dir, const std::string& identity) {
  std::vector<std::string> args = {"--data_dir=" + dir.Join("kms"), "--dev_mode"};
  testing::TlsArgs(testing::SharedPki().Identity(identity), &args);
  return std::make_unique<ServiceProcess>("coffer-kms", args);
}

int KeyCount(ServiceProcess& kms) {
  auto stub = kms::v1::KeyManagement::NewStub(kms.Channel("cofferctl"));
  kms::v1::ListKeysResponse keys;
  grpc::Status s = testing::Invoke(stub.get(), &kms::v1::KeyManagement::Stub::ListKeys,
                                   kms::v1::ListKeysRequest(), &keys);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return keys.keys_size();
}

// An application's certificate listening where the store expects its KMS
// (say, during a KMS restart) receives no wrapped key and no context: the
// store's writes fail UNAVAILABLE and its health follows.
TEST(IdentityE2ETest, StoreRefusesAnImpostorKms) {
  testing::TempDir dir;
  std::unique_ptr<ServiceProcess> impostor = KmsAs(dir, "app-catagram");
  ASSERT_TRUE(impostor->Start().ok()) << impostor->Output();
  std::vector<std::string> store_args = {"--data_dir=" + dir.Join("store"),
                                         "--kms_address=" + impostor->address(),
                                         "--kms_check_interval=200ms", "--kms_timeout=1s"};
  testing::TlsArgs(testing::SharedPki().Identity("store"), &store_args);
  ServiceProcess store("coffer-store", store_args);
  ASSERT_TRUE(store.Start().ok()) << store.Output();

  auto stub = sm::SecretsManager::NewStub(store.Channel("cofferctl"));
  sm::CreateSecretRequest create;
  create.set_name("pinned/db");
  create.set_secret_string("value-for-the-real-kms-only");
  sm::CreateSecretResponse created;
  grpc::Status s =
      testing::Invoke(stub.get(), &sm::SecretsManager::Stub::CreateSecret, create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("KMS unavailable"));
  EXPECT_TRUE(testing::WaitFor([&] { return absl::StrContains(store.Output(), "KMS unreachable"); },
                               absl::Seconds(10)))
      << store.Output();
  // The first data key for a secret would have made the built-in key.
  EXPECT_EQ(KeyCount(*impostor), 0);
  EXPECT_EQ(store.Stop(), 0) << store.Output();
  EXPECT_EQ(impostor->Stop(), 0) << impostor->Output();

  // The same store, now with the real KMS on another port, writes.
  testing::TempDir real_dir;
  std::unique_ptr<ServiceProcess> kms = KmsAs(real_dir, "kms");
  ASSERT_TRUE(kms->Start().ok()) << kms->Output();
  store_args[1] = "--kms_address=" + kms->address();
  ServiceProcess fixed("coffer-store", store_args);
  ASSERT_TRUE(fixed.Start().ok()) << fixed.Output();
  auto fixed_stub = sm::SecretsManager::NewStub(fixed.Channel("cofferctl"));
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return testing::Invoke(fixed_stub.get(), &sm::SecretsManager::Stub::CreateSecret, create,
                               &created)
            .ok();
      },
      absl::Seconds(10)));
  EXPECT_EQ(KeyCount(*kms), 1);
}

// The rotator pins the store: a store process serving with an application's
// certificate never gets to list schedules to it (nor watch, nor lease).
TEST(IdentityE2ETest, RotatorRefusesAnImpostorStore) {
  testing::TempDir dir;
  std::unique_ptr<ServiceProcess> kms = KmsAs(dir, "kms");
  ASSERT_TRUE(kms->Start().ok()) << kms->Output();
  auto store_args = [&](const std::string& identity, const std::string& data) {
    std::vector<std::string> args = {"--data_dir=" + dir.Join(data),
                                     "--kms_address=" + kms->address()};
    testing::TlsArgs(testing::SharedPki().Identity(identity), &args);
    return args;
  };
  auto rotator_args = [&](const ServiceProcess& store) {
    std::vector<std::string> args = {"--store_address=" + store.address(), "--resync_interval=1s"};
    testing::TlsArgs(testing::SharedPki().Identity("rotator"), &args);
    return args;
  };

  ServiceProcess impostor("coffer-store", store_args("app-catagram", "impostor"));
  ASSERT_TRUE(impostor.Start().ok()) << impostor.Output();
  ServiceProcess refused("coffer-rotator", rotator_args(impostor));
  ASSERT_TRUE(refused.Start().ok()) << refused.Output();
  EXPECT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(refused.Output(), "coffer-store unavailable"); },
      absl::Seconds(10)))
      << refused.Output();
  EXPECT_THAT(refused.Output(), Not(HasSubstr("rotation schedules loaded")));
  EXPECT_EQ(refused.Stop(), 0) << refused.Output();

  ServiceProcess store("coffer-store", store_args("store", "store"));
  ASSERT_TRUE(store.Start().ok()) << store.Output();
  ServiceProcess rotator("coffer-rotator", rotator_args(store));
  ASSERT_TRUE(rotator.Start().ok()) << rotator.Output();
  EXPECT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(rotator.Output(), "rotation schedules loaded"); },
      absl::Seconds(10)))
      << rotator.Output();
}

// A worker pins the store too: its step fails UNAVAILABLE before the
// impostor hears of the secret.
TEST(IdentityE2ETest, WorkerRefusesAnImpostorStore) {
  testing::TempDir dir;
  std::unique_ptr<ServiceProcess> kms = KmsAs(dir, "kms");
  ASSERT_TRUE(kms->Start().ok()) << kms->Output();
  std::vector<std::string> store_args = {"--data_dir=" + dir.Join("impostor"),
                                         "--kms_address=" + kms->address()};
  testing::TlsArgs(testing::SharedPki().Identity("app-catagram"), &store_args);
  ServiceProcess impostor("coffer-store", store_args);
  ASSERT_TRUE(impostor.Start().ok()) << impostor.Output();
  std::vector<std::string> worker_args = {"--store_address=" + impostor.address(),
                                          "--strategy=single-user"};
  testing::TlsArgs(testing::SharedPki().Identity("worker-postgres"), &worker_args);
  ServiceProcess worker("coffer-worker-postgres", worker_args);
  ASSERT_TRUE(worker.Start().ok()) << worker.Output();

  auto stub = rotation::v1::RotationWorker::NewStub(worker.Channel("rotator"));
  rotation::v1::StepRequest step;
  step.set_secret_id("arn:coffer:secretsmanager:local:000000000000:secret:db-AbCdEf");
  step.set_client_request_token(std::string(32, 't'));
  step.set_step(rotation::v1::ROTATION_STEP_CREATE_SECRET);
  rotation::v1::StepResponse done;
  grpc::Status s =
      testing::Invoke(stub.get(), &rotation::v1::RotationWorker::Stub::Step, step, &done);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("coffer-store unavailable"));
}

// cofferctl pins the store's well-known identity by default; another pin
// (or an impostor) fails before the request is sent.
TEST(IdentityE2ETest, CofferctlPinsTheServersIdentity) {
  testing::TempDir dir;
  std::unique_ptr<ServiceProcess> kms, store;
  absl::Status started = testing::StartKmsAndStore(dir, {}, &kms, &store);
  ASSERT_TRUE(started.ok()) << started;
  const std::map<std::string, std::string> env = {{"COFFER_ADDRESS", store->address()}};

  auto [ok_code, listed] = testing::RunCofferctl({"secrets", "list-secrets"}, env);
  EXPECT_EQ(ok_code, 0) << listed;

  auto [bad_code, refused] = testing::RunCofferctl(
      {"secrets", "list-secrets", "--server-spiffe-id=spiffe://coffer.local/kms"}, env);
  EXPECT_NE(bad_code, 0) << refused;
  EXPECT_THAT(refused, HasSubstr("UNAVAILABLE"));

  std::map<std::string, std::string> env_pin = env;
  env_pin["COFFER_SERVER_SPIFFE_ID"] = "spiffe://coffer.local/app/catagram";
  auto [env_code, env_refused] = testing::RunCofferctl({"secrets", "list-secrets"}, env_pin);
  EXPECT_NE(env_code, 0) << env_refused;

  // The KMS group pins /kms: pointing it at the store is refused too.
  auto [kms_code, kms_refused] = testing::RunCofferctl({"kms", "list-keys"}, env);
  EXPECT_NE(kms_code, 0) << kms_refused;
  std::map<std::string, std::string> kms_env = {{"COFFER_ADDRESS", kms->address()}};
  auto [real_code, keys] = testing::RunCofferctl({"kms", "list-keys"}, kms_env);
  EXPECT_EQ(real_code, 0) << keys;
  EXPECT_THAT(keys, Not(HasSubstr("UNAVAILABLE")));
}

}  // namespace
}  // namespace coffer
