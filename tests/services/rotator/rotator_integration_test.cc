// The real Rotator against a real coffer-store in-process: SecretStore (real
// RocksDB in a temp dir, the real KMS logic in-process) behind the real
// SecretsService (watch) and RotationControlService on an mTLS rpc::Server,
// and a tiny fake worker on its own mTLS server with the worker-postgres
// identity, which does its steps through the store API.
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "coffer/rotation/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/rpc/status.h"
#include "libs/rpc/unary.h"
#include "libs/storage/database.h"
#include "services/kms/key_manager.h"
#include "services/rotator/rotation_clients.h"
#include "services/rotator/rotator.h"
#include "services/store/changes/change_log.h"
#include "services/store/changes/watch_stream.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/envelope.h"
#include "services/store/rotation_control_service.h"
#include "services/store/schema.h"
#include "services/store/secrets/secret_records.h"
#include "services/store/secrets/secret_rotation.h"
#include "services/store/secrets/secret_store.h"
#include "services/store/secrets/secrets_service.h"
#include "tests/services/store/in_process_kms.h"
#include "tests/testing/test_env.h"

namespace coffer::rotator {
namespace {

namespace sm = ::coffer::secrets::v1;
// (staging_labels.h and param_store.h cannot be included together.)
constexpr char kAwsCurrent[] = "AWSCURRENT";
constexpr char kAwsPending[] = "AWSPENDING";
constexpr char kAwsPrevious[] = "AWSPREVIOUS";

constexpr char kWorkerSpiffeId[] = "spiffe://coffer.local/worker/postgres";

// createSecret: PutSecretValue(token, [AWSPENDING]) with a new value unless
// the pending version has one; setSecret/testSecret: nothing; finishSecret:
// AWSCURRENT to the token (AWSPREVIOUS follows), then AWSPENDING off. All
// idempotent, as rotation.md requires. Counts calls per token and step.
class FakeWorkerService final : public rot::RotationWorker::CallbackService {
 public:
  explicit FakeWorkerService(store::SecretStore* store) : store_(store) {}

  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext*, const rot::StepRequest* request,
                                 rot::StepResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_[request->client_request_token()][request->step()];
    }
    return rpc::FinishUnary("Step", DoStep(*request), response);
  }

  int Calls(const std::string& token, rot::RotationStep step) {
    absl::MutexLock lock(&mu_);
    return calls_[token][step];
  }
  std::set<std::string> Tokens() {
    absl::MutexLock lock(&mu_);
    std::set<std::string> out;
    for (const auto& [token, _] : calls_) out.insert(token);
    return out;
  }
  std::string ValueFor(const std::string& token) {
    absl::MutexLock lock(&mu_);
    return values_[token];
  }

 private:
  absl::StatusOr<rot::StepResponse> DoStep(const rot::StepRequest& request) {
    const std::string& id = request.secret_id();
    const std::string& token = request.client_request_token();
    if (request.step() == rot::ROTATION_STEP_CREATE_SECRET) {
      sm::GetSecretValueRequest get;
      get.set_secret_id(id);
      get.set_version_id(token);
      if (store_->GetSecretValue(get).ok()) return rot::StepResponse();  // done before
      std::string value = absl::StrCat("rotated-", token.substr(0, 8));
      sm::PutSecretValueRequest put;
      put.set_secret_id(id);
      put.set_client_request_token(token);
      put.set_secret_string(value);
      put.add_version_stages(kAwsPending);
      auto s = store_->PutSecretValue(put);
      if (!s.ok()) return s.status();
      absl::MutexLock lock(&mu_);
      values_[token] = value;
    } else if (request.step() == rot::ROTATION_STEP_FINISH_SECRET) {
      sm::DescribeSecretRequest describe;
      describe.set_secret_id(id);
      auto d = store_->DescribeSecret(describe);
      if (!d.ok()) return d.status();
      std::string current;
      for (const auto& [version, stages] : d->version_ids_to_stages()) {
        for (const auto& stage : stages.stages()) {
          if (stage == kAwsCurrent) current = version;
        }
      }
      if (current != token) {
        sm::UpdateSecretVersionStageRequest move;
        move.set_secret_id(id);
        move.set_version_stage(kAwsCurrent);
        move.set_move_to_version_id(token);
        move.set_remove_from_version_id(current);
        auto s = store_->UpdateSecretVersionStage(move);
        if (!s.ok()) return s.status();
      }
      sm::UpdateSecretVersionStageRequest unpend;
      unpend.set_secret_id(id);
      unpend.set_version_stage(kAwsPending);
      unpend.set_remove_from_version_id(token);
      auto s = store_->UpdateSecretVersionStage(unpend);
      if (!s.ok()) return s.status();
    }
    return rot::StepResponse();
  }

  store::SecretStore* const store_;
  absl::Mutex mu_;
  std::map<std::string, std::map<int, int>> calls_;
  std::map<std::string, std::string> values_;
};

// One rotator with its clients.
struct RotatorUnderTest {
  std::unique_ptr<RotationControlClient> control;
  std::unique_ptr<SecretsWatchClient> watch;
  std::unique_ptr<WorkerClient> workers;
  std::unique_ptr<Rotator> rotator;
};

class RotatorIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const testing::Pki& pki = testing::SharedPki();
    kms::KeyManagerOptions kms_options;
    kms_options.db_path = dir_.Join("kms");
    kms_options.sync_writes = false;
    keys_ = std::move(kms::KeyManager::Open(kms_options, crypto::SecureBuffer::Random(32))).value();
    kms_ = std::make_unique<store::InProcessKeyService>(keys_.get());
    storage::DatabaseOptions db_options;
    db_options.path = dir_.Join("store");
    db_options.column_families = store::schema::ColumnFamilies();
    db_options.sync_writes = false;
    db_ = std::move(storage::Database::Open(db_options)).value();
    changes_ = std::move(store::ChangeLog::Open(db_.get())).value();
    cache_ = std::make_unique<store::DataKeyCache>(store::DataKeyCacheOptions{});
    envelope_ = std::make_unique<store::Envelope>(kms_.get(), cache_.get());
    store::SecretStoreOptions store_options;
    store_options.changes = changes_.get();
    records_ = std::make_unique<store::SecretRecords>(db_.get(), envelope_.get(), store_options);
    ASSERT_TRUE(records_->Load().ok());
    store_ = std::make_unique<store::SecretStore>(records_.get());
    rotation_ = std::make_unique<store::SecretRotation>(records_.get());

    secrets_service_ = std::make_unique<store::SecretsService>(store_.get(), rotation_.get(),
                                                               changes_.get(), &watches_);
    control_service_ = std::make_unique<store::RotationControlService>(rotation_.get());
    rpc::ServerOptions store_server;
    store_server.tls = pki.Identity("store");
    auto server = rpc::Server::Start(
        std::move(store_server), {secrets_service_.get(), control_service_.get()}, &store_health_);
    ASSERT_TRUE(server.ok()) << server.status();
    store_server_ = *std::move(server);

    worker_service_ = std::make_unique<FakeWorkerService>(store_.get());
    rpc::ServerOptions worker_server;
    worker_server.tls = pki.Identity("worker-postgres");
    server = rpc::Server::Start(std::move(worker_server), {worker_service_.get()}, &worker_health_);
    ASSERT_TRUE(server.ok()) << server.status();
    worker_server_ = *std::move(server);

    RotatorConfig config;
    auto* w = config.add_workers();
    w->set_name("pg");
    w->set_address(absl::StrCat("localhost:", worker_server_->port()));
    w->set_spiffe_id(kWorkerSpiffeId);
    registry_ = WorkerRegistry::FromConfig(config).value();
  }

  void TearDown() override {
    for (auto& r : rotators_) r->rotator->Shutdown(absl::Seconds(2));
    rotators_.clear();
    watches_.StopAll();
    if (store_server_) store_server_->Shutdown(absl::Seconds(1));
    if (worker_server_) worker_server_->Shutdown(absl::Seconds(1));
  }

  Rotator* StartRotator(const std::string& holder) {
    auto r = std::make_unique<RotatorUnderTest>();
    rpc::ChannelOptions options;
    options.target = absl::StrCat("localhost:", store_server_->port());
    options.tls = testing::SharedPki().Identity("rotator");
    auto channel = rpc::MakeChannel(std::move(options));
    EXPECT_TRUE(channel.ok()) << channel.status();
    r->control = MakeGrpcRotationControlClient(*channel, absl::Seconds(5));
    r->watch = MakeGrpcSecretsWatchClient(*channel);
    r->workers = MakeGrpcWorkerClient(testing::SharedPki().Identity("rotator"), nullptr);
    RotatorOptions opts;
    opts.runner.holder = holder;
    opts.runner.lease_duration = absl::Seconds(6);
    opts.runner.backoff_initial = absl::Milliseconds(50);
    opts.runner.backoff_max = absl::Milliseconds(200);
    opts.runner.step_timeout = absl::Seconds(5);
    opts.concurrency = 2;
    opts.resync_interval = absl::Seconds(2);
    opts.retry_initial = absl::Milliseconds(50);
    opts.retry_max = absl::Milliseconds(500);
    opts.refused_retry = absl::Milliseconds(500);
    r->rotator = std::make_unique<Rotator>(r->control.get(), r->watch.get(), r->workers.get(),
                                           &registry_, nullptr, opts);
    r->rotator->Start();
    rotators_.push_back(std::move(r));
    return rotators_.back()->rotator.get();
  }

  void CreateSecret(const std::string& name, const std::string& value) {
    sm::CreateSecretRequest create;
    create.set_name(name);
    create.set_secret_string(value);
    auto created = store_->CreateSecret(create);
    ASSERT_TRUE(created.ok()) << created.status();
  }

  std::string Rotate(const std::string& name) {
    sm::RotateSecretRequest rotate;
    rotate.set_secret_id(name);
    rotate.set_rotation_worker("pg");
    rotate.mutable_rotation_rules()->set_automatically_after_days(30);
    rotate.set_rotate_immediately(true);
    auto rotated = rotation_->RotateSecret(rotate);
    EXPECT_TRUE(rotated.ok()) << rotated.status();
    return rotated.ok() ? rotated->version_id() : "";
  }

  sm::DescribeSecretResponse Describe(const std::string& name) {
    sm::DescribeSecretRequest req;
    req.set_secret_id(name);
    return store_->DescribeSecret(req).value();
  }

  std::string Value(const std::string& name, const std::string& stage) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(name);
    req.set_version_stage(stage);
    auto got = store_->GetSecretValue(req);
    return got.ok() ? got->secret_string() : got.status().ToString();
  }

  bool Succeeded(const std::string& name) {
    return Describe(name).rotation_state().status() == sm::RotationState::STATUS_SUCCEEDED;
  }

  testing::TempDir dir_;
  std::unique_ptr<kms::KeyManager> keys_;
  std::unique_ptr<store::InProcessKeyService> kms_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<store::ChangeLog> changes_;
  std::unique_ptr<store::DataKeyCache> cache_;
  std::unique_ptr<store::Envelope> envelope_;
  std::unique_ptr<store::SecretRecords> records_;
  std::unique_ptr<store::SecretStore> store_;
  std::unique_ptr<store::SecretRotation> rotation_;
  store::WatchRegistry watches_;
  std::unique_ptr<store::SecretsService> secrets_service_;
  std::unique_ptr<store::RotationControlService> control_service_;
  std::unique_ptr<FakeWorkerService> worker_service_;
  rpc::HealthStatus store_health_;
  rpc::HealthStatus worker_health_;
  std::unique_ptr<rpc::Server> store_server_;
  std::unique_ptr<rpc::Server> worker_server_;
  WorkerRegistry registry_;
  std::vector<std::unique_ptr<RotatorUnderTest>> rotators_;
};

TEST_F(RotatorIntegrationTest, RotatesASecretEndToEnd) {
  CreateSecret("db", "old-password");
  Rotator* rotator = StartRotator("rotator-a");
  ASSERT_TRUE(testing::WaitFor([&] { return rotator->ready(); }, absl::Seconds(10)));

  // Enabled after the rotator started: the watch event brings it in.
  const std::string token = Rotate("db");
  ASSERT_FALSE(token.empty());
  ASSERT_TRUE(testing::WaitFor([&] { return Succeeded("db"); }, absl::Seconds(20)))
      << Describe("db").DebugString();
  auto d = Describe("db");
  EXPECT_TRUE(d.has_last_rotated_date());
  EXPECT_GT(d.next_rotation_date().seconds(),
            absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 28)));
  EXPECT_EQ(Value("db", kAwsCurrent), worker_service_->ValueFor(token));
  EXPECT_EQ(Value("db", kAwsCurrent), absl::StrCat("rotated-", token.substr(0, 8)));
  EXPECT_EQ(Value("db", kAwsPrevious), "old-password");
  EXPECT_EQ(worker_service_->Calls(token, rot::ROTATION_STEP_CREATE_SECRET), 1);
  EXPECT_EQ(worker_service_->Calls(token, rot::ROTATION_STEP_FINISH_SECRET), 1);
  // Scheduled again for the next window, nothing in flight.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return rotator->in_flight() == 0 && rotator->scheduled() == 1; }, absl::Seconds(5)));
}

TEST_F(RotatorIntegrationTest, TwoRotatorsRotateEachSecretExactlyOnce) {
  constexpr int kSecrets = 6;
  std::vector<std::string> names;
  std::map<std::string, std::string> tokens;
  // Half enabled before the rotators start (the initial load finds them),
  // half after (the watch does).
  for (int i = 0; i < kSecrets; ++i) {
    names.push_back(absl::StrCat("app/db-", i));
    CreateSecret(names.back(), absl::StrCat("old-", i));
  }
  for (int i = 0; i < kSecrets / 2; ++i) tokens[names[i]] = Rotate(names[i]);
  Rotator* a = StartRotator("rotator-a");
  Rotator* b = StartRotator("rotator-b");
  ASSERT_TRUE(testing::WaitFor([&] { return a->ready() && b->ready(); }, absl::Seconds(10)));
  for (int i = kSecrets / 2; i < kSecrets; ++i) tokens[names[i]] = Rotate(names[i]);

  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& n : names) {
          if (!Succeeded(n)) return false;
        }
        return true;
      },
      absl::Seconds(30)));
  for (int i = 0; i < kSecrets; ++i) {
    const std::string& token = tokens[names[i]];
    SCOPED_TRACE(names[i]);
    // Leases of 6 s renewed every 2 s never expire here, so no step may
    // have run twice for one rotation.
    EXPECT_EQ(worker_service_->Calls(token, rot::ROTATION_STEP_CREATE_SECRET), 1);
    EXPECT_EQ(worker_service_->Calls(token, rot::ROTATION_STEP_FINISH_SECRET), 1);
    EXPECT_EQ(Value(names[i], kAwsCurrent), worker_service_->ValueFor(token));
    EXPECT_EQ(Value(names[i], kAwsPrevious), absl::StrCat("old-", i));
  }
  // One rotation per secret: no other pending version was ever worked on.
  EXPECT_EQ(worker_service_->Tokens().size(), static_cast<size_t>(kSecrets));
}

}  // namespace
}  // namespace coffer::rotator
