// End-to-end tests of the real coffer-store binary, backed by the real
// coffer-kms, over mutual TLS.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "coffer/internal/store/v1/store.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/crypto/random.h"
#include "libs/rpc/status.h"
#include "libs/storage/database.h"
#include "libs/storage/engine.h"
#include "services/store/schema.h"
#include "tests/integration/http_get.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/etcd.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ServiceProcess;
using ::testing::UnorderedElementsAre;
namespace sm = ::coffer::secrets::v1;
namespace storev1 = ::coffer::internal::store::v1;
using HealthResponse = ::grpc::health::v1::HealthCheckResponse;

constexpr char kCurrent[] = "AWSCURRENT";
constexpr char kPrevious[] = "AWSPREVIOUS";
constexpr char kSecretsService[] = "coffer.secrets.v1.SecretsManager";

std::string Reason(const grpc::Status& status) { return ErrorReason(rpc::FromGrpcStatus(status)); }

std::string Hex(size_t bytes) { return absl::BytesToHexString(crypto::RandomString(bytes)); }

// A client request token (32-64 characters).
std::string Token() { return "token-" + Hex(16); }

std::string VersionKey(const std::string& name, const std::string& version_id) {
  return absl::StrCat(name, std::string(1, '\0'), version_id);
}

// The value of an unlabelled metric on a Prometheus text page; -1 if absent.
double MetricValue(const std::string& page, const std::string& name) {
  const std::string prefix = name + " ";
  size_t pos = 0;
  while (pos < page.size()) {
    size_t end = page.find('\n', pos);
    if (end == std::string::npos) end = page.size();
    absl::string_view line(page.data() + pos, end - pos);
    double value;
    if (absl::StartsWith(line, prefix) && absl::SimpleAtod(line.substr(prefix.size()), &value)) {
      return value;
    }
    pos = end + 1;
  }
  return -1;
}

// Every test runs twice: the KMS and the store on RocksDB, and both on a
// real etcd member (under a prefix of the test's own).
class StoreE2ETest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::vector<std::string> storage;
    if (GetParam() == "etcd") {
      etcd_ = testing::EtcdCluster::Shared();
      ASSERT_NE(etcd_, nullptr);
      etcd_prefix_ = absl::StrCat("store-e2e/", Hex(8), "/");
      const rpc::TlsFiles tls = etcd_->client_tls();
      storage = {"--storage=etcd:" + etcd_->endpoint(0), "--etcd_ca=" + tls.ca_file,
                 "--etcd_cert=" + tls.cert_file, "--etcd_key=" + tls.key_file,
                 "--etcd_prefix=" + etcd_prefix_};
    }
    // The strictest log level, for the "nothing secret in logs" test.
    absl::Status started =
        testing::StartKmsAndStore(dir_, storage, {"--log_level=debug"}, &kms_, &store_);
    ASSERT_TRUE(started.ok()) << started;
    channel_ = store_->Channel("cofferctl");
    stub_ = sm::SecretsManager::NewStub(channel_);
    ASSERT_TRUE(WaitForHealth(HealthResponse::SERVING)) << store_->Output();
  }

  void TearDown() override {
    if (store_ && store_->running()) {
      EXPECT_EQ(store_->Stop(), 0) << store_->Output();
    }
    if (kms_ && kms_->running()) {
      EXPECT_EQ(kms_->Stop(), 0) << kms_->Output();
    }
  }

  template <typename Req, typename Resp, typename Call>
  grpc::Status Invoke(Call call, const Req& req, Resp* resp) {
    return testing::Invoke(stub_.get(), call, req, resp);
  }

  // The store's health as grpc.health.v1 reports it over mTLS; -1 when the
  // call fails.
  int Health() {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(kSecretsService);
    HealthResponse resp;
    if (!health->Check(&ctx, req, &resp).ok()) return -1;
    return resp.status();
  }

  bool WaitForHealth(int status, absl::Duration timeout = absl::Seconds(20)) {
    return testing::WaitFor([&] { return Health() == status; }, timeout);
  }

  // Stops the store (cleanly), runs `offline` and starts the store again on
  // the same port; its data key cache starts empty.
  void WithStoreStopped(const std::function<void()>& offline) {
    ASSERT_EQ(store_->Stop(), 0) << store_->Output();
    offline();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(store_->Restart().ok()) << store_->Output();
    ASSERT_TRUE(WaitForHealth(HealthResponse::SERVING)) << store_->Output();
  }

  // The store's database, opened by the test while the store is stopped.
  std::unique_ptr<storage::Database> OpenStoreDb() {
    if (etcd_ != nullptr) {
      storage::EngineOptions engine;
      engine.storage = "etcd:" + etcd_->endpoint(0);
      engine.etcd_tls = etcd_->client_tls();
      engine.etcd_prefix = etcd_prefix_;
      engine.service = "store";
      auto made = storage::Engine::Create(engine);
      EXPECT_TRUE(made.ok()) << made.status();
      if (!made.ok()) return nullptr;
      engine_ = std::move(made).value();
      auto db = engine_->Open("db", store::schema::ColumnFamilies());
      EXPECT_TRUE(db.ok()) << db.status();
      return db.ok() ? *std::move(db) : nullptr;
    }
    storage::DatabaseOptions options;
    options.path = dir_.Join("store") + "/db";
    options.create_if_missing = false;
    options.column_families = store::schema::ColumnFamilies();
    auto db = storage::Database::Open(options);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? *std::move(db) : nullptr;
  }

  sm::CreateSecretResponse Create(const std::string& name, const std::string& value,
                                  const std::string& description = "") {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    req.set_description(description);
    sm::CreateSecretResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::CreateSecret, req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    return resp;
  }

  sm::PutSecretValueResponse Put(const std::string& id, const std::string& value,
                                 const std::string& token = "") {
    sm::PutSecretValueRequest req;
    req.set_secret_id(id);
    req.set_secret_string(value);
    req.set_client_request_token(token);
    sm::PutSecretValueResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::PutSecretValue, req, &resp);
    EXPECT_TRUE(s.ok()) << id << ": " << s.error_message();
    return resp;
  }

  grpc::Status Get(const std::string& id, sm::GetSecretValueResponse* resp,
                   const std::string& version_id = "", const std::string& stage = "") {
    sm::GetSecretValueRequest req;
    req.set_secret_id(id);
    req.set_version_id(version_id);
    req.set_version_stage(stage);
    return Invoke(&sm::SecretsManager::Stub::GetSecretValue, req, resp);
  }

  // The string value, or "<error: ...>".
  std::string Value(const std::string& id, const std::string& version_id = "",
                    const std::string& stage = "") {
    sm::GetSecretValueResponse resp;
    grpc::Status s = Get(id, &resp, version_id, stage);
    if (!s.ok()) return absl::StrCat("<error: ", s.error_code(), " ", s.error_message(), ">");
    return resp.secret_string();
  }

  sm::DescribeSecretResponse Describe(const std::string& id) {
    sm::DescribeSecretRequest req;
    req.set_secret_id(id);
    sm::DescribeSecretResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::DescribeSecret, req, &resp);
    EXPECT_TRUE(s.ok()) << id << ": " << s.error_message();
    return resp;
  }

  std::map<std::string, std::vector<std::string>> Stages(const std::string& id) {
    std::map<std::string, std::vector<std::string>> out;
    const sm::DescribeSecretResponse described = Describe(id);
    for (const auto& [version, stages] : described.version_ids_to_stages()) {
      out[version].assign(stages.stages().begin(), stages.stages().end());
    }
    return out;
  }

  std::vector<std::string> VersionIds(const std::string& id, bool include_deprecated = true) {
    sm::ListSecretVersionIdsRequest req;
    req.set_secret_id(id);
    req.set_include_deprecated(include_deprecated);
    sm::ListSecretVersionIdsResponse resp;
    grpc::Status s = Invoke(&sm::SecretsManager::Stub::ListSecretVersionIds, req, &resp);
    EXPECT_TRUE(s.ok()) << id << ": " << s.error_message();
    std::vector<std::string> ids;
    for (const auto& v : resp.versions()) ids.push_back(v.version_id());
    return ids;
  }

  testing::TempDir dir_;
  testing::EtcdCluster* etcd_ = nullptr;  // etcd runs only
  std::string etcd_prefix_;
  std::unique_ptr<storage::Engine> engine_;  // OpenStoreDb's, on etcd
  std::unique_ptr<ServiceProcess> kms_;
  std::unique_ptr<ServiceProcess> store_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<sm::SecretsManager::Stub> stub_;
};
INSTANTIATE_TEST_SUITE_P(Engines, StoreE2ETest, ::testing::Values("rocksdb", "etcd"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreE2ETest, CreateGetPutAndStagingLabels) {
  sm::CreateSecretResponse created = Create("prod/app/db", "first", "the app's database");
  EXPECT_EQ(created.name(), "prod/app/db");
  EXPECT_THAT(
      created.arn(),
      ::testing::MatchesRegex(
          "arn:coffer:secretsmanager:local:000000000000:secret:prod/app/db-[A-Za-z0-9]{6}"));
  ASSERT_FALSE(created.version_id().empty());

  sm::GetSecretValueResponse got;
  ASSERT_TRUE(Get("prod/app/db", &got).ok());
  EXPECT_EQ(got.secret_string(), "first");
  EXPECT_FALSE(got.has_secret_binary());
  EXPECT_EQ(got.version_id(), created.version_id());
  EXPECT_EQ(got.arn(), created.arn());
  EXPECT_THAT(got.version_stages(), UnorderedElementsAre(kCurrent));

  sm::PutSecretValueResponse put = Put("prod/app/db", "second");
  ASSERT_FALSE(put.version_id().empty());
  EXPECT_NE(put.version_id(), created.version_id());
  EXPECT_THAT(put.version_stages(), UnorderedElementsAre(kCurrent));

  EXPECT_EQ(Value("prod/app/db"), "second");
  EXPECT_EQ(Value("prod/app/db", "", kCurrent), "second");
  EXPECT_EQ(Value("prod/app/db", "", kPrevious), "first");
  EXPECT_EQ(Value("prod/app/db", created.version_id()), "first");
  EXPECT_EQ(Value("prod/app/db", put.version_id()), "second");
  EXPECT_EQ(Value("prod/app/db", put.version_id(), kCurrent), "second");
  ASSERT_TRUE(Get("prod/app/db", &got, "", kPrevious).ok());
  EXPECT_EQ(got.version_id(), created.version_id());
  EXPECT_THAT(got.version_stages(), UnorderedElementsAre(kPrevious));

  // Version id and stage naming different versions.
  EXPECT_EQ(Get("prod/app/db", &got, created.version_id(), kCurrent).error_code(),
            grpc::StatusCode::NOT_FOUND);

  auto stages = Stages("prod/app/db");
  EXPECT_EQ(stages.size(), 2u);
  EXPECT_THAT(stages[put.version_id()], UnorderedElementsAre(kCurrent));
  EXPECT_THAT(stages[created.version_id()], UnorderedElementsAre(kPrevious));

  // A third value deprecates the first version.
  sm::PutSecretValueResponse third = Put("prod/app/db", "third");
  EXPECT_EQ(Value("prod/app/db"), "third");
  EXPECT_EQ(Value("prod/app/db", "", kPrevious), "second");
  EXPECT_EQ(Stages("prod/app/db").count(created.version_id()), 0u);
  EXPECT_THAT(VersionIds("prod/app/db", false),
              UnorderedElementsAre(third.version_id(), put.version_id()));
  EXPECT_THAT(VersionIds("prod/app/db", true),
              UnorderedElementsAre(third.version_id(), put.version_id(), created.version_id()));

  // Binary values round-trip as bytes.
  sm::CreateSecretRequest binary;
  binary.set_name("prod/app/tls-key");
  const std::string bytes("\x00\x01\xfe\xff binary", 11);
  binary.set_secret_binary(bytes);
  sm::CreateSecretResponse binary_created;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::CreateSecret, binary, &binary_created).ok());
  ASSERT_TRUE(Get("prod/app/tls-key", &got).ok());
  EXPECT_TRUE(got.has_secret_binary());
  EXPECT_FALSE(got.has_secret_string());
  EXPECT_EQ(got.secret_binary(), bytes);

  // Missing secrets and stages.
  grpc::Status missing = Get("prod/app/none", &got);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(missing), reason::kResourceNotFound);
  EXPECT_EQ(Get("prod/app/db", &got, "", "AWSPENDING").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(StoreE2ETest, IdempotentRetriesWithAClientRequestToken) {
  const std::string create_token = Token();
  sm::CreateSecretRequest create;
  create.set_name("retry/me");
  create.set_secret_string("v1");
  create.set_client_request_token(create_token);
  sm::CreateSecretResponse created;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::CreateSecret, create, &created).ok());
  EXPECT_EQ(created.version_id(), create_token);
  // The same create again: success, same version.
  sm::CreateSecretResponse again;
  grpc::Status s = Invoke(&sm::SecretsManager::Stub::CreateSecret, create, &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.version_id(), create_token);
  EXPECT_EQ(again.arn(), created.arn());
  // Same token, other value.
  create.set_secret_string("v1-changed");
  s = Invoke(&sm::SecretsManager::Stub::CreateSecret, create, &again);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(s), reason::kResourceExists);

  const std::string token = Token();
  sm::PutSecretValueResponse put = Put("retry/me", "v2", token);
  EXPECT_EQ(put.version_id(), token);
  sm::PutSecretValueResponse retried = Put("retry/me", "v2", token);
  EXPECT_EQ(retried.version_id(), token);
  EXPECT_THAT(retried.version_stages(), UnorderedElementsAre(kCurrent));
  EXPECT_THAT(VersionIds("retry/me"), UnorderedElementsAre(create_token, token));
  // The retry did not move the labels either.
  EXPECT_EQ(Value("retry/me", "", kPrevious), "v1");

  sm::PutSecretValueRequest conflicting;
  conflicting.set_secret_id("retry/me");
  conflicting.set_client_request_token(token);
  conflicting.set_secret_string("v2-but-different");
  sm::PutSecretValueResponse resp;
  s = Invoke(&sm::SecretsManager::Stub::PutSecretValue, conflicting, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(s), reason::kResourceExists);
  EXPECT_THAT(s.error_message(), Not(HasSubstr("v2-but-different")));
  // Same bytes as binary are another value.
  conflicting.clear_secret_string();
  conflicting.set_secret_binary("v2");
  s = Invoke(&sm::SecretsManager::Stub::PutSecretValue, conflicting, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(VersionIds("retry/me"), UnorderedElementsAre(create_token, token));
  EXPECT_EQ(Value("retry/me"), "v2");
  EXPECT_EQ(Value("retry/me", token), "v2");
}

TEST_P(StoreE2ETest, LookupsByNameFullArnAndPartialArn) {
  sm::CreateSecretResponse created = Create("team/svc/api-key", "k-1");
  const std::string partial =
      "arn:coffer:secretsmanager:local:000000000000:secret:team/svc/api-key";
  ASSERT_EQ(created.arn().substr(0, partial.size()), partial);
  EXPECT_EQ(created.arn().size(), partial.size() + 7);
  for (const std::string& id : {std::string("team/svc/api-key"), created.arn(), partial}) {
    sm::GetSecretValueResponse got;
    grpc::Status s = Get(id, &got);
    ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
    EXPECT_EQ(got.secret_string(), "k-1") << id;
    EXPECT_EQ(got.name(), "team/svc/api-key") << id;
    EXPECT_EQ(Describe(id).arn(), created.arn()) << id;
  }
  Put(created.arn(), "k-2");
  EXPECT_EQ(Value(partial), "k-2");
  // An ARN with another suffix names no secret.
  std::string wrong = created.arn();
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  sm::GetSecretValueResponse got;
  EXPECT_EQ(Get(wrong, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(StoreE2ETest, DeleteWithRecoveryWindowRestoreAndForceDelete) {
  sm::CreateSecretResponse created = Create("gone/soon", "still here");
  sm::DeleteSecretRequest del;
  del.set_secret_id("gone/soon");
  del.set_recovery_window_in_days(7);
  sm::DeleteSecretResponse deleted;
  const absl::Time before = absl::Now();
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::DeleteSecret, del, &deleted).ok());
  EXPECT_EQ(deleted.arn(), created.arn());
  const absl::Time deletion = absl::FromUnixSeconds(deleted.deletion_date().seconds());
  EXPECT_GE(deletion, before + absl::Hours(24 * 7) - absl::Minutes(1));
  EXPECT_LE(deletion, absl::Now() + absl::Hours(24 * 7) + absl::Minutes(1));

  sm::GetSecretValueResponse got;
  grpc::Status s = Get("gone/soon", &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(s), reason::kInvalidRequest);
  sm::PutSecretValueRequest put;
  put.set_secret_id("gone/soon");
  put.set_secret_string("x");
  sm::PutSecretValueResponse put_resp;
  s = Invoke(&sm::SecretsManager::Stub::PutSecretValue, put, &put_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(s), reason::kInvalidRequest);
  sm::DescribeSecretResponse described = Describe("gone/soon");
  EXPECT_TRUE(described.has_deleted_date());
  EXPECT_EQ(described.deletion_date().seconds(), deleted.deletion_date().seconds());

  // Hidden from ListSecrets unless asked for.
  auto listed = [&](bool include_planned_deletion) {
    sm::ListSecretsRequest req;
    req.set_include_planned_deletion(include_planned_deletion);
    sm::ListSecretsResponse resp;
    EXPECT_TRUE(Invoke(&sm::SecretsManager::Stub::ListSecrets, req, &resp).ok());
    for (const auto& e : resp.secret_list()) {
      if (e.name() == "gone/soon") return true;
    }
    return false;
  };
  EXPECT_FALSE(listed(false));
  EXPECT_TRUE(listed(true));

  sm::RestoreSecretRequest restore;
  restore.set_secret_id(created.arn());
  sm::RestoreSecretResponse restored;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::RestoreSecret, restore, &restored).ok());
  EXPECT_EQ(Value("gone/soon"), "still here");
  EXPECT_FALSE(Describe("gone/soon").has_deleted_date());
  EXPECT_TRUE(listed(false));

  sm::DeleteSecretRequest force;
  force.set_secret_id("gone/soon");
  force.set_force_delete_without_recovery(true);
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::DeleteSecret, force, &deleted).ok());
  s = Get("gone/soon", &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), reason::kResourceNotFound);
  sm::DescribeSecretRequest describe;
  describe.set_secret_id(created.arn());
  sm::DescribeSecretResponse described_gone;
  EXPECT_EQ(
      Invoke(&sm::SecretsManager::Stub::DescribeSecret, describe, &described_gone).error_code(),
      grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(listed(true));

  // The name is free again, under a new ARN; the old ARN does not find it.
  sm::CreateSecretResponse recreated = Create("gone/soon", "new life");
  EXPECT_NE(recreated.arn(), created.arn());
  EXPECT_EQ(Value("gone/soon"), "new life");
  EXPECT_EQ(Get(created.arn(), &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Value(recreated.arn()), "new life");
}

TEST_P(StoreE2ETest, EverythingSurvivesARestartOfBothServices) {
  sm::CreateSecretRequest create;
  create.set_name("keep/me");
  create.set_description("kept across restarts");
  create.set_secret_string("old value");
  auto* tag = create.add_tags();
  tag->set_key("env");
  tag->set_value("prod");
  tag = create.add_tags();
  tag->set_key("team");
  tag->set_value("payments");
  sm::CreateSecretResponse created;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::CreateSecret, create, &created).ok());
  sm::PutSecretValueResponse put = Put("keep/me", "new value");
  sm::CreateSecretRequest binary;
  binary.set_name("keep/binary");
  binary.set_secret_binary(std::string("\x00\xff\x10", 3));
  sm::CreateSecretResponse binary_created;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::CreateSecret, binary, &binary_created).ok());
  sm::DeleteSecretRequest del;
  del.set_secret_id("keep/binary");
  sm::DeleteSecretResponse deleted;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::DeleteSecret, del, &deleted).ok());
  const auto stages_before = Stages("keep/me");

  ASSERT_EQ(store_->Stop(), 0) << store_->Output();
  ASSERT_EQ(kms_->Stop(), 0) << kms_->Output();
  ASSERT_TRUE(kms_->Restart().ok()) << kms_->Output();
  ASSERT_TRUE(store_->Restart().ok()) << store_->Output();
  ASSERT_TRUE(WaitForHealth(HealthResponse::SERVING)) << store_->Output();

  // The data key cache is empty: these reads go to the restarted KMS.
  EXPECT_EQ(Value("keep/me"), "new value");
  EXPECT_EQ(Value("keep/me", "", kPrevious), "old value");
  EXPECT_EQ(Value("keep/me", created.version_id()), "old value");
  EXPECT_EQ(Stages("keep/me"), stages_before);
  sm::DescribeSecretResponse described = Describe("keep/me");
  EXPECT_EQ(described.arn(), created.arn());
  EXPECT_EQ(described.description(), "kept across restarts");
  ASSERT_EQ(described.tags_size(), 2);
  EXPECT_EQ(described.tags(0).key(), "env");
  EXPECT_EQ(described.tags(0).value(), "prod");
  EXPECT_EQ(described.tags(1).key(), "team");
  EXPECT_EQ(described.tags(1).value(), "payments");
  EXPECT_EQ(described.version_ids_to_stages().at(put.version_id()).stages(0), kCurrent);

  // The scheduled deletion too.
  sm::DescribeSecretResponse binary_described = Describe("keep/binary");
  EXPECT_TRUE(binary_described.has_deleted_date());
  EXPECT_EQ(binary_described.deletion_date().seconds(), deleted.deletion_date().seconds());
  sm::RestoreSecretRequest restore;
  restore.set_secret_id("keep/binary");
  sm::RestoreSecretResponse restored;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::RestoreSecret, restore, &restored).ok());
  sm::GetSecretValueResponse got;
  ASSERT_TRUE(Get("keep/binary", &got).ok());
  EXPECT_EQ(got.secret_binary(), std::string("\x00\xff\x10", 3));

  // And writes work against the restarted pair.
  Put("keep/me", "newest value");
  EXPECT_EQ(Value("keep/me"), "newest value");
  EXPECT_EQ(Value("keep/me", "", kPrevious), "new value");
}

TEST_P(StoreE2ETest, AFlippedCiphertextByteIsDataLossNotGarbage) {
  sm::CreateSecretResponse victim = Create("tamper/victim", "the original value");
  Create("tamper/bystander", "untouched");
  ASSERT_NO_FATAL_FAILURE(WithStoreStopped([&] {
    auto db = OpenStoreDb();
    ASSERT_NE(db, nullptr);
    const std::string key = VersionKey("tamper/victim", victim.version_id());
    auto bytes = db->Get("versions", key);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    ASSERT_TRUE(bytes->has_value());
    storev1::VersionRecord record;
    ASSERT_TRUE(record.ParseFromString(**bytes));
    ASSERT_GT(record.ciphertext().size(), 24u + 16u);  // nonce + tag at least
    std::string ciphertext = record.ciphertext();
    ciphertext[24] ^= 0x01;  // the first byte of the sealed value, after the 24-byte nonce
    record.set_ciphertext(ciphertext);
    ASSERT_TRUE(db->Put("versions", key, record.SerializeAsString()).ok());
  }));

  sm::GetSecretValueResponse got;
  grpc::Status s = Get("tamper/victim", &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kDecryptionFailure);
  EXPECT_FALSE(got.has_secret_string());
  EXPECT_THAT(s.error_message(), Not(HasSubstr("original")));
  // Again: still refused.
  s = Get("tamper/victim", &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(Reason(s), reason::kDecryptionFailure);
  EXPECT_EQ(Value("tamper/bystander"), "untouched");
}

TEST_P(StoreE2ETest, AVersionRecordMovedToAnotherSecretOrVersionFailsToDecrypt) {
  sm::CreateSecretResponse a = Create("moved/a", "value of a");
  sm::PutSecretValueResponse a2 = Put("moved/a", "value of a, second");
  sm::CreateSecretResponse b = Create("moved/b", "value of b");
  ASSERT_NO_FATAL_FAILURE(WithStoreStopped([&] {
    auto db = OpenStoreDb();
    ASSERT_NE(db, nullptr);
    auto a_current = db->Get("versions", VersionKey("moved/a", a2.version_id()));
    ASSERT_TRUE(a_current.ok() && a_current->has_value());
    // Onto another secret's current version...
    ASSERT_TRUE(db->Put("versions", VersionKey("moved/b", b.version_id()), **a_current).ok());
    // ...and onto another version of the same secret.
    ASSERT_TRUE(db->Put("versions", VersionKey("moved/a", a.version_id()), **a_current).ok());
  }));

  sm::GetSecretValueResponse got;
  grpc::Status s = Get("moved/b", &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kDecryptionFailure);
  EXPECT_FALSE(got.has_secret_string());
  s = Get("moved/a", &got, "", kPrevious);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kDecryptionFailure);
  // The record in its own place still opens (so its data key is cached now),
  // and the copies keep failing with the key cached.
  EXPECT_EQ(Value("moved/a"), "value of a, second");
  s = Get("moved/b", &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  s = Get("moved/a", &got, a.version_id());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
}

TEST_P(StoreE2ETest, SecretValuesNeverReachDiskOrLogsInPlaintext) {
  const std::string marker = "DISTINCTIVE-" + Hex(12);
  const std::string marker2 = "DISTINCTIVE-" + Hex(12);
  const std::string token = Token();
  sm::CreateSecretRequest create;
  create.set_name("plain/check");
  create.set_secret_string(marker);
  create.set_client_request_token(token);
  sm::CreateSecretResponse created;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::CreateSecret, create, &created).ok());
  EXPECT_EQ(Value("plain/check"), marker);
  sm::PutSecretValueRequest put;
  put.set_secret_id("plain/check");
  put.set_secret_binary(marker2);
  sm::PutSecretValueResponse put_resp;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::PutSecretValue, put, &put_resp).ok());
  sm::GetSecretValueResponse got;
  ASSERT_TRUE(Get("plain/check", &got).ok());
  EXPECT_EQ(got.secret_binary(), marker2);
  // A failing call carrying the value must not echo it either.
  put.set_client_request_token(token);
  grpc::Status s = Invoke(&sm::SecretsManager::Stub::PutSecretValue, put, &put_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(s.error_message(), Not(HasSubstr(marker2)));
  // A second secret and a force delete run the other write paths.
  create.set_name("plain/other");
  create.clear_client_request_token();
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::CreateSecret, create, &created).ok());

  ASSERT_EQ(store_->Stop(), 0) << store_->Output();  // flushes memtables to SST files
  ASSERT_EQ(kms_->Stop(), 0) << kms_->Output();

  std::vector<std::string> needles = {marker,
                                      marker2,
                                      absl::Base64Escape(marker),
                                      absl::Base64Escape(marker2),
                                      absl::WebSafeBase64Escape(marker),
                                      absl::WebSafeBase64Escape(marker2),
                                      absl::BytesToHexString(marker)};
  int files = 0;
  int wal_files = 0;  // etcd's: every write is in its WAL first
  std::vector<std::string> dirs = {dir_.Join("kms"), dir_.Join("store")};
  if (etcd_ != nullptr) dirs.push_back(etcd_->data_dir(0));  // its WAL and database
  for (const std::string& dir : dirs) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      ++files;
      if (absl::EndsWith(entry.path().string(), ".wal")) {
        ++wal_files;
        // The scan reads what etcd wrote: the secret's name is there.
        EXPECT_NE(testing::ReadFile(entry.path().string()).find("plain/check"), std::string::npos);
      }
      const std::string contents = testing::ReadFile(entry.path().string());
      for (const std::string& needle : needles) {
        EXPECT_EQ(contents.find(needle), std::string::npos) << entry.path() << " holds " << needle;
      }
    }
  }
  if (etcd_ == nullptr) {
    EXPECT_GT(files, 6);  // RocksDB's WAL, SST, manifest... of both services
  } else {
    EXPECT_GE(wal_files, 1);
  }
  const std::string logs = store_->Output() + kms_->Output();
  EXPECT_THAT(logs, HasSubstr("serving"));  // the logs are there at all
  for (const std::string& needle : needles) {
    EXPECT_EQ(logs.find(needle), std::string::npos) << "logs hold " << needle;
  }
}

TEST_P(StoreE2ETest, WithoutTheKmsCachedReadsWorkWritesFailFastAndHealthFollows) {
  sm::CreateSecretResponse created = Create("outage/app", "readable offline");
  EXPECT_EQ(Value("outage/app"), "readable offline");
  ASSERT_EQ(Health(), HealthResponse::SERVING);

  ASSERT_EQ(kms_->Stop(), 0) << kms_->Output();

  // The data key is cached: reads go on.
  EXPECT_EQ(Value("outage/app"), "readable offline");

  // A secret whose key-encryption key the store holds takes new versions
  // without the KMS (for the data-key cache's ttl)...
  Put("outage/app", "written during the outage");
  const std::vector<std::string> during = VersionIds("outage/app");
  ASSERT_EQ(during.size(), 2u);
  // ...any other write of a value needs the KMS: UNAVAILABLE, quickly.
  sm::CreateSecretRequest empty;
  empty.set_name("outage/empty");
  sm::CreateSecretResponse empty_resp;
  ASSERT_TRUE(Invoke(&sm::SecretsManager::Stub::CreateSecret, empty, &empty_resp).ok());
  for (int i = 0; i < 2; ++i) {
    const absl::Time start = absl::Now();
    grpc::Status s;
    if (i == 0) {
      sm::PutSecretValueRequest put;
      put.set_secret_id("outage/empty");
      put.set_secret_string("lost");
      sm::PutSecretValueResponse resp;
      s = Invoke(&sm::SecretsManager::Stub::PutSecretValue, put, &resp);
    } else {
      sm::CreateSecretRequest create;
      create.set_name("outage/new");
      create.set_secret_string("lost too");
      sm::CreateSecretResponse resp;
      s = Invoke(&sm::SecretsManager::Stub::CreateSecret, create, &resp);
    }
    const absl::Duration took = absl::Now() - start;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << i << ": " << s.error_message();
    EXPECT_EQ(Reason(s), reason::kEncryptionFailure) << i;
    EXPECT_LT(took, absl::Seconds(3)) << i;
  }
  EXPECT_TRUE(WaitForHealth(HealthResponse::NOT_SERVING, absl::Seconds(10)))
      << "health: " << Health();
  // Nothing half-written: the failed create left no secret behind.
  sm::GetSecretValueResponse got;
  EXPECT_EQ(Get("outage/new", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(VersionIds("outage/empty").empty());

  // The KMS comes back on the same port; the store notices by itself.
  ASSERT_TRUE(kms_->Restart().ok()) << kms_->Output();
  EXPECT_TRUE(WaitForHealth(HealthResponse::SERVING, absl::Seconds(30)))
      << "health: " << Health() << "\n"
      << store_->Output();
  Put("outage/app", "written after recovery");
  EXPECT_EQ(Value("outage/app"), "written after recovery");
  EXPECT_EQ(Value("outage/app", "", kPrevious), "written during the outage");
  EXPECT_EQ(Value("outage/app", created.version_id()), "readable offline");
  Create("outage/new", "created after recovery");
  EXPECT_EQ(Value("outage/new"), "created after recovery");
}

// A cofferctl secrets session through the real binary.
TEST_P(StoreE2ETest, CofferctlSecretsSession) {
  auto run = [&](std::vector<std::string> args,
                 const std::map<std::string, std::string>& extra_env = {}) {
    std::map<std::string, std::string> env = {{"COFFER_ADDRESS", store_->address()}};
    for (const auto& [k, v] : extra_env) env[k] = v;
    args.insert(args.begin(), "secrets");
    return testing::RunCofferctl(args, env);
  };

  auto [code, created] = run({"create-secret", "--name=cli/demo", "--secret-string=hello there",
                              "--description=made by cofferctl", "--tags", "env=dev"});
  ASSERT_EQ(code, 0) << created;
  EXPECT_THAT(created, HasSubstr("\"name\": \"cli/demo\""));
  EXPECT_THAT(
      created,
      HasSubstr("\"arn\": \"arn:coffer:secretsmanager:local:000000000000:secret:cli/demo-"));

  auto [get_code, got] = run({"get-secret-value", "--secret-id=cli/demo"});
  ASSERT_EQ(get_code, 0) << got;
  EXPECT_THAT(got, HasSubstr("\"secret_string\": \"hello there\""));
  EXPECT_THAT(got, HasSubstr("\"AWSCURRENT\""));

  auto [put_code, put] =
      run({"put-secret-value", "--secret-id=cli/demo", "--secret-string=second"});
  ASSERT_EQ(put_code, 0) << put;
  EXPECT_THAT(put, HasSubstr("\"version_id\": \""));

  auto [cur_code, current] = run({"get-secret-value", "--secret-id=cli/demo"});
  ASSERT_EQ(cur_code, 0) << current;
  EXPECT_THAT(current, HasSubstr("\"secret_string\": \"second\""));
  auto [prev_code, previous] =
      run({"get-secret-value", "--secret-id=cli/demo", "--version-stage=AWSPREVIOUS"});
  ASSERT_EQ(prev_code, 0) << previous;
  EXPECT_THAT(previous, HasSubstr("\"secret_string\": \"hello there\""));

  auto [list_code, listed] = run({"list-secrets"});
  ASSERT_EQ(list_code, 0) << listed;
  EXPECT_THAT(listed, HasSubstr("\"name\": \"cli/demo\""));
  EXPECT_THAT(listed, HasSubstr("\"description\": \"made by cofferctl\""));

  auto [desc_code, described] = run({"describe-secret", "--secret-id=cli/demo"});
  ASSERT_EQ(desc_code, 0) << described;
  EXPECT_THAT(described, HasSubstr("\"description\": \"made by cofferctl\""));
  EXPECT_THAT(described, HasSubstr("\"AWSPREVIOUS\""));
  EXPECT_THAT(described, HasSubstr("\"key\": \"env\""));
  EXPECT_THAT(described, Not(HasSubstr("hello there")));

  // COFFER_SECRETS_ADDRESS wins over COFFER_ADDRESS (here the KMS's).
  auto [group_code, by_group] =
      run({"describe-secret", "--secret-id=cli/demo"},
          {{"COFFER_ADDRESS", kms_->address()}, {"COFFER_SECRETS_ADDRESS", store_->address()}});
  EXPECT_EQ(group_code, 0) << by_group;

  auto [del_code, deleted] =
      run({"delete-secret", "--secret-id=cli/demo", "--force-delete-without-recovery"});
  ASSERT_EQ(del_code, 0) << deleted;
  EXPECT_THAT(deleted, HasSubstr("\"deletion_date\""));

  auto [gone_code, gone] = run({"get-secret-value", "--secret-id=cli/demo"});
  EXPECT_EQ(gone_code, 254) << gone;  // the service's error (README: exit codes)
  EXPECT_THAT(gone, HasSubstr("ResourceNotFoundException: "));
}

// What the README promises about cofferctl, through the real binary against
// the real store: values from stdin and files, --output=text printing the
// value alone, tables, `Reason: message` on stderr and the exit codes.
TEST_P(StoreE2ETest, CofferctlStdinFilesOutputFormatsAndExitCodes) {
  const std::map<std::string, std::string> env = {{"COFFER_ADDRESS", store_->address()}};
  auto run = [&](std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), "secrets");
    return testing::RunCofferctlIo(args, env, input);
  };
  // A multi-line value with a final newline, from stdin: nothing on the
  // command line, and every byte kept.
  const std::string pem = "-----BEGIN KEY-----\nc2VjcmV0\n-----END KEY-----\n";
  testing::CofferctlResult created =
      run({"create-secret", "--name", "cli/pem", "--secret-string", "-", "--output", "text"}, pem);
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(created.err, "");
  std::vector<std::string> columns = absl::StrSplit(created.out, '\t');  // arn, name, version
  ASSERT_EQ(columns.size(), 3u) << created.out;
  EXPECT_TRUE(absl::StartsWith(columns[0], "arn:coffer:secretsmanager:")) << created.out;
  EXPECT_EQ(columns[1], "cli/pem");

  testing::CofferctlResult got =
      run({"get-secret-value", "--secret-id", "cli/pem", "--output", "text"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(got.out, pem + "\n");  // the value as stored, then exactly one newline
  EXPECT_EQ(got.err, "");
  EXPECT_EQ(Value("cli/pem"), pem);  // what the CLI stored, the API reads

  // Binary from a file (fileb://), read back as base64 text.
  const std::string der = dir_.Join("key.der");
  std::ofstream(der, std::ios::binary) << std::string("\x30\x82\x00\xff", 4);
  ASSERT_EQ(run({"create-secret", "--name=cli/der", "--secret-binary=fileb://" + der}).code, 0);
  testing::CofferctlResult binary =
      run({"get-secret-value", "--secret-id=cli/der", "--output=text"});
  ASSERT_EQ(binary.code, 0) << binary.err;
  EXPECT_EQ(binary.out, "MIIA/w==\n");

  // A new version from a file; the table shows it with its label.
  const std::string value_file = dir_.Join("v2.txt");
  std::ofstream(value_file) << "second";
  ASSERT_EQ(
      run({"put-secret-value", "--secret-id=cli/pem", "--secret-string=file://" + value_file}).code,
      0);
  testing::CofferctlResult table =
      run({"get-secret-value", "--secret-id=cli/pem", "--output=table"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("\nsecret_string   second\n"));
  EXPECT_THAT(table.out, HasSubstr("\nversion_stages  AWSCURRENT\n"));
  testing::CofferctlResult list = run({"list-secrets", "--output=table"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("name"));
  EXPECT_THAT(list.out, HasSubstr("\ncli/der "));
  EXPECT_THAT(list.out, Not(HasSubstr("second")));  // lists never carry values

  // 254: the service said no; its reason, one line, on stderr only.
  testing::CofferctlResult missing = run({"describe-secret", "--secret-id=cli/none"});
  EXPECT_EQ(missing.code, 254);
  EXPECT_EQ(missing.out, "");
  EXPECT_TRUE(absl::StartsWith(missing.err, "ResourceNotFoundException: ")) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;

  // 252: the command line, before anything is sent; the value is not echoed.
  testing::CofferctlResult usage =
      run({"delete-secret", "--secret-id=cli/pem", "--recovery-window-in-days=hunter2-pw"});
  EXPECT_EQ(usage.code, 252);
  EXPECT_THAT(usage.err, HasSubstr("UsageError: --recovery-window-in-days: not a valid int64"));
  EXPECT_THAT(usage.err, Not(HasSubstr("hunter2")));
  EXPECT_EQ(run({"get-secret-value"}).code, 252);  // --secret-id: required
  EXPECT_EQ(run({"get-secret-value", "--secret-id=x", "--output=yaml"}).code, 252);
  EXPECT_EQ(Value("cli/pem"), "second");  // the bad delete did nothing

  // 253: the TLS files; 255: nobody answers.
  testing::CofferctlResult config = run({"describe-secret", "--secret-id=x", "--ca=/nonexistent"});
  EXPECT_EQ(config.code, 253);
  EXPECT_TRUE(absl::StartsWith(config.err, "ConfigurationError: ")) << config.err;
  testing::CofferctlResult down =
      run({"describe-secret", "--secret-id=x", "--address=127.0.0.1:1", "--timeout=5s"});
  EXPECT_EQ(down.code, 255);
  EXPECT_TRUE(absl::StartsWith(down.err, "UNAVAILABLE: ")) << down.err;

  // Standard input is read once: two flags cannot both ask for it.
  testing::CofferctlResult twice = run({"create-secret", "--name=-", "--secret-string=-"}, "x");
  EXPECT_EQ(twice.code, 252);
  EXPECT_THAT(twice.err, HasSubstr("standard input (-) is already read by --name"));
}

TEST_P(StoreE2ETest, MetricsShowSecretsCallsCacheHitsAndTheSecretCount) {
  Create("metrics/one", "1");
  Create("metrics/two", "2");
  EXPECT_EQ(Value("metrics/one"), "1");  // data key from the cache (put there by the create)
  sm::GetSecretValueResponse got;
  EXPECT_EQ(Get("metrics/none", &got).error_code(), grpc::StatusCode::NOT_FOUND);

  std::string page;
  // The store's gauges and cache counters are synced once a second.
  bool synced = testing::WaitFor(
      [&] {
        auto p = testing::HttpGet(store_->ports().metrics, "/metrics");
        if (!p.ok()) return false;
        page = *p;
        return MetricValue(page, "coffer_store_secrets") == 2 &&
               MetricValue(page, "coffer_store_dek_cache_hits_total") >= 1;
      },
      absl::Seconds(5));
  EXPECT_TRUE(synced) << page;
  EXPECT_THAT(page, HasSubstr("grpc_server_handled_total{"));
  EXPECT_THAT(page, HasSubstr("grpc_service=\"coffer.secrets.v1.SecretsManager\""));
  EXPECT_THAT(page, HasSubstr("grpc_method=\"CreateSecret\""));
  EXPECT_THAT(page, HasSubstr("grpc_method=\"GetSecretValue\""));
  EXPECT_THAT(page, HasSubstr("grpc_code=\"NotFound\""));
  EXPECT_THAT(page, HasSubstr("coffer_store_dek_cache_hits_total"));
  EXPECT_THAT(page, HasSubstr("coffer_store_secrets"));
  EXPECT_THAT(page, HasSubstr("coffer_build_info{"));
  EXPECT_THAT(page, Not(HasSubstr("metrics/one")));  // no secret names as labels
}

}  // namespace
}  // namespace coffer
