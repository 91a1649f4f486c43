// SecretStore logic on a real RocksDB, with the real KMS logic in-process
// behind the KeyService interface (no network), and a fake clock.
#include "services/store/secrets/secret_store.h"

#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/crypto/random.h"
#include "services/kms/key_manager.h"
#include "services/store/secrets/staging_labels.h"
#include "tests/services/store/store_fixture.h"
#include "tests/testing/matchers.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
namespace sm = ::coffer::secrets::v1;

using ::coffer::testing::HasReason;

class SecretStoreTest : public StoreFixture {
 protected:
  SecretStoreTest() {
    secret_options_.list_scan_budget = 50;
    cache_options_ = DataKeyCacheOptions{10000, absl::Minutes(5), &clock_};
  }

  sm::CreateSecretResponse Create(const std::string& name, const std::string& value,
                                  const std::string& token = "") {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    req.set_client_request_token(token);
    auto resp = store_->CreateSecret(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.value_or(sm::CreateSecretResponse());
  }

  absl::StatusOr<sm::PutSecretValueResponse> Put(const std::string& id, const std::string& value,
                                                 const std::string& token = "",
                                                 std::vector<std::string> stages = {}) {
    sm::PutSecretValueRequest req;
    req.set_secret_id(id);
    req.set_secret_string(value);
    req.set_client_request_token(token);
    for (const auto& s : stages) req.add_version_stages(s);
    return store_->PutSecretValue(req);
  }

  absl::StatusOr<std::string> Value(const std::string& id, const std::string& stage = "",
                                    const std::string& version = "") {
    sm::GetSecretValueRequest req;
    req.set_secret_id(id);
    req.set_version_stage(stage);
    req.set_version_id(version);
    auto resp = store_->GetSecretValue(req);
    if (!resp.ok()) return resp.status();
    return resp->has_secret_string() ? resp->secret_string() : resp->secret_binary();
  }

  std::map<std::string, std::vector<std::string>> Stages(const std::string& id) {
    sm::DescribeSecretRequest req;
    req.set_secret_id(id);
    auto resp = store_->DescribeSecret(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [v, s] : resp->version_ids_to_stages()) {
      out[v] = std::vector<std::string>(s.stages().begin(), s.stages().end());
      std::sort(out[v].begin(), out[v].end());
    }
    return out;
  }

  std::string Token(char c) { return std::string(32, c); }
};
COFFER_STORE_ENGINES(SecretStoreTest);

TEST_P(SecretStoreTest, CreateReadByIdStageArnAndPartialArn) {
  auto created = Create("prod/db-password", "hunter2", Token('a'));
  EXPECT_EQ(created.version_id(), Token('a'));
  EXPECT_THAT(
      created.arn(),
      ::testing::MatchesRegex(
          "arn:coffer:secretsmanager:local:000000000000:secret:prod/db-password-[A-Za-z0-9]{6}"));
  std::string partial = created.arn().substr(0, created.arn().size() - 7);
  for (const std::string& id : {std::string("prod/db-password"), created.arn(), partial}) {
    EXPECT_EQ(*Value(id), "hunter2") << id;
  }
  EXPECT_EQ(*Value("prod/db-password", "AWSCURRENT", Token('a')), "hunter2");
  EXPECT_THAT(Value("prod/db-password", "AWSPREVIOUS").status(),
              HasReason(reason::kResourceNotFound));
  EXPECT_THAT(Value("prod/db-password", "AWSPREVIOUS", Token('a')).status(),
              HasReason(reason::kResourceNotFound));
  EXPECT_THAT(Value(created.arn() + "x").status(), HasReason(reason::kResourceNotFound));
  EXPECT_THAT(
      Value("arn:coffer:secretsmanager:local:111111111111:secret:prod/db-password").status(),
      HasReason(reason::kResourceNotFound));
  EXPECT_EQ(records_->secret_count(), 1);

  // Binary values come back as binary.
  sm::CreateSecretRequest bin;
  bin.set_name("bin");
  bin.set_secret_binary(std::string("\x00\xff\x10", 3));
  ASSERT_TRUE(store_->CreateSecret(bin).ok());
  sm::GetSecretValueRequest get;
  get.set_secret_id("bin");
  auto got = store_->GetSecretValue(get);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_secret_string());
  EXPECT_EQ(got->secret_binary(), std::string("\x00\xff\x10", 3));
}

TEST_P(SecretStoreTest, PutMovesCurrentAndPrevious) {
  Create("s", "v1", Token('a'));
  auto put = Put("s", "v2", Token('b'));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_THAT(put->version_stages(), ElementsAre("AWSCURRENT"));
  EXPECT_EQ(*Value("s"), "v2");
  EXPECT_EQ(*Value("s", "AWSPREVIOUS"), "v1");
  ASSERT_TRUE(Put("s", "v3", Token('c')).ok());
  EXPECT_EQ(Stages("s"), (std::map<std::string, std::vector<std::string>>{
                             {Token('b'), {"AWSPREVIOUS"}}, {Token('c'), {"AWSCURRENT"}}}));
  // A custom label leaves AWSCURRENT alone.
  ASSERT_TRUE(Put("s", "v4", Token('d'), {"blue"}).ok());
  EXPECT_EQ(*Value("s"), "v3");
  EXPECT_EQ(*Value("s", "blue"), "v4");
}

// On etcd, a warm GetSecretValue (by AWSCURRENT or by version id) reads the
// record and the version in one round trip (one read-only Txn of two
// Ranges, at one revision), and a PutSecretValue takes three (the record
// with the token's version, the record with its deprecated versions in the
// transaction, the commit). The AWSCURRENT version this replica last saw is
// only a guess: when the secret moved on (here or on another replica) the
// read still answers with the new value, and a recreated secret with the
// same version id gives the new value, never the old.
TEST_P(SecretStoreTest, AWarmReadIsOneRoundTripAndAStaleGuessIsNeverServed) {
  testing::EtcdCluster* etcd = GetParam() == "etcd" ? testing::EtcdCluster::Shared() : nullptr;
  // etcd KV requests since the last call.
  double requests = 0;
  auto round_trips = [&] {
    if (etcd == nullptr) return 0.0;
    double now = 0;
    for (const char* method : {"Range", "Txn", "Put", "DeleteRange"}) {
      now +=
          etcd->Metric(0, absl::StrCat("grpc_server_started_total{grpc_method=\"", method,
                                       "\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}"));
    }
    const double trips = now - requests;
    requests = now;
    return trips;
  };
  Create("app/db", "v1", Token('a'));
  EXPECT_EQ(*Value("app/db"), "v1");  // the first read learns AWSCURRENT
  round_trips();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(*Value("app/db"), "v1");
  EXPECT_EQ(*Value("app/db", "", Token('a')), "v1");
  if (etcd != nullptr) EXPECT_EQ(round_trips(), 6);  // 2 per read before

  round_trips();
  ASSERT_TRUE(Put("app/db", "v2", Token('b')).ok());
  if (etcd != nullptr) EXPECT_EQ(round_trips(), 3);  // 5 before
  EXPECT_EQ(*Value("app/db"), "v2");                 // the guess was the old version
  EXPECT_EQ(*Value("app/db", "AWSPREVIOUS"), "v1");
  round_trips();
  EXPECT_EQ(*Value("app/db"), "v2");
  if (etcd != nullptr) EXPECT_EQ(round_trips(), 1);

  // Purged and made again under the same version id, with another value.
  sm::DeleteSecretRequest del;
  del.set_secret_id("app/db");
  del.set_force_delete_without_recovery(true);
  ASSERT_TRUE(store_->DeleteSecret(del).ok());
  EXPECT_THAT(Value("app/db").status(), HasReason(reason::kResourceNotFound));
  Create("app/db", "v3", Token('b'));
  EXPECT_EQ(*Value("app/db"), "v3");
  EXPECT_EQ(*Value("app/db", "", Token('b')), "v3");
  EXPECT_THAT(Value("app/db", "", Token('a')).status(), HasReason(reason::kResourceNotFound));
}

// The secret-count gauge of a replica counts what every replica stored once
// it counts again (the store does every 10 s); on RocksDB, one process
// counts everything anyway.
TEST_P(SecretStoreTest, RecountSeesEveryReplicasSecrets) {
  Create("before", "v");
  std::unique_ptr<storage::Database> other_db;
  if (engine_ != nullptr) {
    auto opened = engine_->Open("db", schema::ColumnFamilies());
    ASSERT_TRUE(opened.ok()) << opened.status();
    other_db = std::move(opened).value();
  }
  SecretRecords other(other_db != nullptr ? other_db.get() : db_.get(), envelope_.get(),
                      secret_options_);
  ASSERT_TRUE(other.Load().ok());
  EXPECT_EQ(other.secret_count(), 1);
  for (int i = 0; i < 3; ++i) Create(absl::StrCat("s", i), "v");
  sm::DeleteSecretRequest del;
  del.set_secret_id("before");
  del.set_force_delete_without_recovery(true);
  ASSERT_TRUE(store_->DeleteSecret(del).ok());
  EXPECT_EQ(records_->secret_count(), 3);
  ASSERT_TRUE(other.Recount().ok());
  // The other replica knows only once it counts again.
  EXPECT_EQ(other.secret_count(), GetParam() == "etcd" ? 3 : 1);
  ASSERT_TRUE(records_->Recount().ok());
  EXPECT_EQ(records_->secret_count(), 3);
}

// Writers queued on one secret commit together: on etcd, in groups that
// stay inside one Txn's 128 operations and 1.5 MiB, even with the largest
// values.
TEST_P(SecretStoreTest, ManyLargestValuesQueuedOnOneSecretAllCommit) {
  Create("big", "v0");
  constexpr int kWriters = 40;
  std::vector<std::string> values(kWriters);
  std::vector<absl::Status> results(kWriters);
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    values[i] = std::string(65536, static_cast<char>('a' + i % 26));
    values[i][0] = static_cast<char>('0' + i % 10);
    writers.emplace_back([&, i] { results[i] = Put("big", values[i]).status(); });
  }
  for (auto& t : writers) t.join();
  for (int i = 0; i < kWriters; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
  sm::ListSecretVersionIdsRequest list;
  list.set_secret_id("big");
  list.set_include_deprecated(true);
  EXPECT_EQ(store_->ListSecretVersionIds(list)->versions_size(), kWriters + 1);
}

// A secret with more versions than etcd takes operations in one Txn: its
// deprecated versions still go, and so does the whole secret when purged.
TEST_P(SecretStoreTest, SecretsWithManyVersionsAreCleanedAndPurgedOnEveryEngine) {
  secret_options_.max_versions_per_secret = 300;
  Open();
  // The versions stored under a name.
  auto stored = [&](const std::string& name) {
    storage::ScanOptions scan;
    scan.prefix = schema::VersionPrefix(name);
    int n = 0;
    EXPECT_TRUE(db_->Scan(schema::kVersions, scan,
                          [&](absl::string_view, absl::string_view) {
                            ++n;
                            return true;
                          })
                    .ok());
    return n;
  };
  // 280 versions, 180 of which may go a day later: more deletions than
  // one etcd Txn takes. RocksDB drops them at once, etcd 4 per change.
  Create("many", "v0");
  for (int i = 1; i < 280; ++i) ASSERT_TRUE(Put("many", absl::StrCat("v", i)).ok()) << i;
  ASSERT_EQ(stored("many"), 280);
  clock_.Advance(absl::Hours(25));
  ASSERT_TRUE(Put("many", "w").ok());
  EXPECT_LT(stored("many"), 280);
  EXPECT_EQ(*Value("many"), "w");

  // Purged with more versions than one etcd Txn takes.
  sm::DeleteSecretRequest force;
  force.set_secret_id("many");
  force.set_force_delete_without_recovery(true);
  auto deleted = store_->DeleteSecret(force);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_THAT(Value("many").status(), HasReason(reason::kResourceNotFound));
  EXPECT_EQ(stored("many"), 0);
}

TEST_P(SecretStoreTest, ClientRequestTokenIsIdempotent) {
  Create("s", "v1", Token('a'));
  auto first = Put("s", "v2", Token('b'));
  ASSERT_TRUE(first.ok());
  auto retry = Put("s", "v2", Token('b'));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version_id(), Token('b'));
  sm::ListSecretVersionIdsRequest list;
  list.set_secret_id("s");
  list.set_include_deprecated(true);
  EXPECT_EQ(store_->ListSecretVersionIds(list)->versions_size(), 2);
  EXPECT_EQ(*Value("s", "AWSPREVIOUS"), "v1");  // the retry moved nothing

  auto conflict = Put("s", "other", Token('b'));
  EXPECT_THAT(conflict.status(), HasReason(reason::kResourceExists));
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*Value("s"), "v2");

  // Create retried with the same token and value: success, same version.
  sm::CreateSecretRequest create;
  create.set_name("s");
  create.set_secret_string("v1");
  create.set_client_request_token(Token('a'));
  auto again = store_->CreateSecret(create);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version_id(), Token('a'));
  create.set_secret_string("different");
  EXPECT_THAT(store_->CreateSecret(create).status(), HasReason(reason::kResourceExists));
  create.set_client_request_token("");
  EXPECT_THAT(store_->CreateSecret(create).status(), HasReason(reason::kResourceExists));
}

TEST_P(SecretStoreTest, EveryLimitAndExclusiveFieldIsRejected) {
  Create("s", "v1");
  struct Case {
    std::string what;
    absl::Status status;
    std::string reason;
    std::string field;
  };
  auto create = [&](std::function<void(sm::CreateSecretRequest&)> edit) {
    sm::CreateSecretRequest r;
    r.set_name("fresh");
    edit(r);
    return store_->CreateSecret(r).status();
  };
  auto put = [&](std::function<void(sm::PutSecretValueRequest&)> edit) {
    sm::PutSecretValueRequest r;
    r.set_secret_id("s");
    r.set_secret_string("x");
    edit(r);
    return store_->PutSecretValue(r).status();
  };
  auto del = [&](int64_t days, bool force) {
    sm::DeleteSecretRequest r;
    r.set_secret_id("s");
    r.set_recovery_window_in_days(days);
    r.set_force_delete_without_recovery(force);
    return store_->DeleteSecret(r).status();
  };
  auto list = [&](std::function<void(sm::ListSecretsRequest&)> edit) {
    sm::ListSecretsRequest r;
    edit(r);
    return store_->ListSecrets(r).status();
  };
  auto password = [&](int64_t length) {
    sm::GetRandomPasswordRequest r;
    r.set_password_length(length);
    return store_->GetRandomPassword(r).status();
  };
  sm::PutResourcePolicyRequest bad_policy;
  bad_policy.set_secret_id("s");
  bad_policy.set_resource_policy("{not json");
  sm::PutResourcePolicyRequest array_policy = bad_policy;
  array_policy.set_resource_policy("[1,2]");
  sm::PutResourcePolicyRequest huge_policy = bad_policy;
  huge_policy.set_resource_policy("{\"a\":\"" + std::string(20480, 'x') + "\"}");
  sm::BatchGetSecretValueRequest batch_both;
  batch_both.add_secret_id_list("s");
  batch_both.add_filters()->set_key("name");
  sm::BatchGetSecretValueRequest batch_none;
  sm::BatchGetSecretValueRequest batch_many;
  for (int i = 0; i < 21; ++i) batch_many.add_secret_id_list(absl::StrCat("s", i));
  sm::UpdateSecretRequest update_nothing;
  update_nothing.set_secret_id("s");

  const std::vector<Case> cases = {
      {"name empty", create([](auto& r) { r.set_name(""); }), reason::kInvalidParameter, "name"},
      {"name 513", create([](auto& r) { r.set_name(std::string(513, 'n')); }),
       reason::kInvalidParameter, "name"},
      {"name bad char", create([](auto& r) { r.set_name("a b"); }), reason::kInvalidParameter,
       "name"},
      {"both values", create([](auto& r) {
         r.set_secret_string("a");
         r.set_secret_binary("b");
       }),
       reason::kInvalidParameter, "secret_string"},
      {"value 65537", create([](auto& r) { r.set_secret_string(std::string(65537, 'v')); }),
       reason::kInvalidParameter, "secret_string"},
      {"binary 65537", create([](auto& r) { r.set_secret_binary(std::string(65537, 'v')); }),
       reason::kInvalidParameter, "secret_binary"},
      {"token 31", create([](auto& r) { r.set_client_request_token(std::string(31, 't')); }),
       reason::kInvalidParameter, "client_request_token"},
      {"token 65", create([](auto& r) { r.set_client_request_token(std::string(65, 't')); }),
       reason::kInvalidParameter, "client_request_token"},
      {"description 2049", create([](auto& r) { r.set_description(std::string(2049, 'd')); }),
       reason::kInvalidParameter, "description"},
      {"kms key 2049", create([](auto& r) { r.set_kms_key_id(std::string(2049, 'k')); }),
       reason::kInvalidParameter, "kms_key_id"},
      {"51 tags", create([](auto& r) {
         for (int i = 0; i < 51; ++i) {
           auto* t = r.add_tags();
           t->set_key(absl::StrCat("k", i));
         }
       }),
       reason::kInvalidParameter, "tags"},
      {"put without value", put([](auto& r) { r.clear_secret_string(); }),
       reason::kInvalidParameter, "secret_string"},
      {"put both values", put([](auto& r) { r.set_secret_binary("b"); }), reason::kInvalidParameter,
       "secret_string"},
      {"put 21 stages", put([](auto& r) {
         for (int i = 0; i < 21; ++i) r.add_version_stages(absl::StrCat("l", i));
       }),
       reason::kInvalidParameter, "version_stages"},
      {"put stage 257", put([](auto& r) { r.add_version_stages(std::string(257, 'l')); }),
       reason::kInvalidParameter, "version_stages"},
      {"window 6", del(6, false), reason::kInvalidParameter, "recovery_window_in_days"},
      {"window 31", del(31, false), reason::kInvalidParameter, "recovery_window_in_days"},
      {"window and force", del(7, true), reason::kInvalidParameter, "recovery_window_in_days"},
      {"list 101", list([](auto& r) { r.set_max_results(101); }), reason::kInvalidParameter,
       "max_results"},
      {"list bad token", list([](auto& r) { r.set_next_token("garbage!"); }),
       reason::kInvalidNextToken, "next_token"},
      {"list bad filter", list([](auto& r) { r.add_filters()->set_key("color"); }),
       reason::kInvalidParameter, "filters"},
      {"password 4097", password(4097), reason::kInvalidParameter, "password_length"},
      {"password -1", password(-1), reason::kInvalidParameter, "password_length"},
      {"policy not json", store_->PutResourcePolicy(bad_policy).status(),
       reason::kMalformedPolicyDocument, "resource_policy"},
      {"policy array", store_->PutResourcePolicy(array_policy).status(),
       reason::kMalformedPolicyDocument, "resource_policy"},
      {"policy too long", store_->PutResourcePolicy(huge_policy).status(),
       reason::kInvalidParameter, "resource_policy"},
      {"batch ids and filters", store_->BatchGetSecretValue(batch_both).status(),
       reason::kInvalidParameter, "secret_id_list"},
      {"batch neither", store_->BatchGetSecretValue(batch_none).status(), reason::kInvalidParameter,
       "secret_id_list"},
      {"batch 21 ids", store_->BatchGetSecretValue(batch_many).status(), reason::kInvalidParameter,
       "secret_id_list"},
      {"update nothing", store_->UpdateSecret(update_nothing).status(), reason::kInvalidParameter,
       "secret_id"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(c.status, HasReason(c.reason)) << c.what;
    EXPECT_EQ(c.status.code(), ReasonCode(c.reason)) << c.what;
    EXPECT_THAT(std::string(c.status.message()), HasSubstr(c.field)) << c.what;
  }
  EXPECT_EQ(*Value("s"), "v1");  // nothing stored was touched
  EXPECT_EQ(records_->secret_count(), 1);
}

TEST_P(SecretStoreTest, UpdateSecretDescriptionValueAndExistingToken) {
  Create("s", "v1", Token('a'));
  sm::UpdateSecretRequest update;
  update.set_secret_id("s");
  update.set_description("the db");
  ASSERT_TRUE(store_->UpdateSecret(update).ok());
  update.clear_description();
  update.set_secret_string("v2");
  update.set_client_request_token(Token('b'));
  auto updated = store_->UpdateSecret(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version_id(), Token('b'));
  EXPECT_EQ(*Value("s"), "v2");
  EXPECT_EQ(*Value("s", "AWSPREVIOUS"), "v1");
  EXPECT_THAT(store_->UpdateSecret(update).status(), HasReason(reason::kResourceExists));
  sm::DescribeSecretRequest describe;
  describe.set_secret_id("s");
  EXPECT_EQ(store_->DescribeSecret(describe)->description(), "the db");
}

TEST_P(SecretStoreTest, UpdateSecretVersionStageRules) {
  Create("s", "v1", Token('a'));
  ASSERT_TRUE(Put("s", "v2", Token('b')).ok());
  sm::UpdateSecretVersionStageRequest move;
  move.set_secret_id("s");
  move.set_version_stage("AWSCURRENT");
  move.set_move_to_version_id(Token('a'));
  EXPECT_THAT(store_->UpdateSecretVersionStage(move).status(),
              HasReason(reason::kInvalidParameter));
  move.set_remove_from_version_id(Token('a'));
  EXPECT_THAT(store_->UpdateSecretVersionStage(move).status(),
              HasReason(reason::kInvalidParameter));
  move.set_remove_from_version_id(Token('b'));
  ASSERT_TRUE(store_->UpdateSecretVersionStage(move).ok());
  EXPECT_EQ(*Value("s"), "v1");
  EXPECT_EQ(*Value("s", "AWSPREVIOUS"), "v2");  // AWSPREVIOUS followed
  move.set_move_to_version_id(Token('z'));
  move.set_remove_from_version_id(Token('a'));
  EXPECT_THAT(store_->UpdateSecretVersionStage(move).status(),
              HasReason(reason::kResourceNotFound));
}

TEST_P(SecretStoreTest, ChangingTheKeyReEncryptsLabelledVersions) {
  Create("s", "v1", Token('a'));
  ASSERT_TRUE(Put("s", "v2", Token('b')).ok());
  ASSERT_TRUE(Put("s", "v3", Token('c')).ok());  // v1 is now deprecated
  kms::v1::CreateKeyRequest create_key;
  auto key = keys_->CreateKey(create_key);
  ASSERT_TRUE(key.ok());
  sm::UpdateSecretRequest update;
  update.set_secret_id("s");
  update.set_kms_key_id(key->key_metadata().key_id());
  ASSERT_TRUE(store_->UpdateSecret(update).ok());

  sm::ListSecretVersionIdsRequest list;
  list.set_secret_id("s");
  list.set_include_deprecated(true);
  auto versions = store_->ListSecretVersionIds(list);
  ASSERT_TRUE(versions.ok());
  for (const auto& v : versions->versions()) {
    ASSERT_EQ(v.kms_key_ids_size(), 1);
    if (v.version_stages_size() > 0) {
      EXPECT_EQ(v.kms_key_ids(0), key->key_metadata().arn()) << v.version_id();
    } else {
      EXPECT_NE(v.kms_key_ids(0), key->key_metadata().arn()) << v.version_id();
    }
  }
  // Reads go through the new key: with the old key disabled and an empty
  // cache, labelled versions still decrypt.
  cache_options_ = DataKeyCacheOptions{0, absl::ZeroDuration(), &clock_};
  Open();
  kms::v1::DisableKeyRequest disable;
  disable.set_key_id("alias/coffer/secretsmanager");
  ASSERT_TRUE(keys_->DisableKey(disable).ok());
  EXPECT_EQ(*Value("s"), "v3");
  EXPECT_EQ(*Value("s", "AWSPREVIOUS"), "v2");
  EXPECT_THAT(Value("s", "", Token('a')).status(), HasReason(reason::kDecryptionFailure));
  // New versions use the new key.
  ASSERT_TRUE(Put("s", "v4").ok());
  EXPECT_EQ(*Value("s"), "v4");
}

TEST_P(SecretStoreTest, DeleteRestoreForceAndSweeper) {
  auto created = Create("s", "v1");
  sm::DeleteSecretRequest del;
  del.set_secret_id("s");
  del.set_recovery_window_in_days(7);
  auto deleted = store_->DeleteSecret(del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->deletion_date().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(24 * 7)));
  EXPECT_THAT(Value("s").status(), HasReason(reason::kInvalidRequest));
  EXPECT_EQ(Value("s").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Put("s", "v2").status(), HasReason(reason::kInvalidRequest));
  EXPECT_THAT(store_->DeleteSecret(del).status(), HasReason(reason::kInvalidRequest));
  sm::DescribeSecretRequest describe;
  describe.set_secret_id("s");
  auto described = store_->DescribeSecret(describe);
  ASSERT_TRUE(described.ok());
  EXPECT_TRUE(described->has_deleted_date());
  sm::CreateSecretRequest same_name;
  same_name.set_name("s");
  EXPECT_THAT(store_->CreateSecret(same_name).status(), HasReason(reason::kInvalidRequest));
  // Hidden from lists unless asked for.
  sm::ListSecretsRequest list;
  EXPECT_EQ(store_->ListSecrets(list)->secret_list_size(), 0);
  list.set_include_planned_deletion(true);
  EXPECT_EQ(store_->ListSecrets(list)->secret_list_size(), 1);

  sm::RestoreSecretRequest restore;
  restore.set_secret_id("s");
  ASSERT_TRUE(store_->RestoreSecret(restore).ok());
  EXPECT_EQ(*Value("s"), "v1");
  EXPECT_FALSE(store_->DescribeSecret(describe)->has_deleted_date());

  // Scheduled again; the sweeper purges only after the window.
  ASSERT_TRUE(store_->DeleteSecret(del).ok());
  clock_.Advance(absl::Hours(24 * 6));
  EXPECT_EQ(*records_->PurgeExpired(), 0);
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(*records_->PurgeExpired(), 1);
  EXPECT_THAT(store_->DescribeSecret(describe).status(), HasReason(reason::kResourceNotFound));
  EXPECT_EQ(records_->secret_count(), 0);
  size_t versions = 0;
  ASSERT_TRUE(db_->Scan(schema::kVersions, {}, [&](auto, auto) { return ++versions, true; }).ok());
  EXPECT_EQ(versions, 0u);

  // The name is free again, with a new ARN.
  auto recreated = Create("s", "new");
  EXPECT_NE(recreated.arn(), created.arn());
  EXPECT_THAT(Value(created.arn()).status(), HasReason(reason::kResourceNotFound));

  // Force delete: gone at once.
  sm::DeleteSecretRequest force;
  force.set_secret_id("s");
  force.set_force_delete_without_recovery(true);
  ASSERT_TRUE(store_->DeleteSecret(force).ok());
  EXPECT_THAT(Value("s").status(), HasReason(reason::kResourceNotFound));
  EXPECT_EQ(records_->secret_count(), 0);
}

TEST_P(SecretStoreTest, MoreThanAHundredVersionsDropOldDeprecatedOnes) {
  Create("s", "v0", Token('a'));
  for (int i = 1; i <= 104; ++i) {
    ASSERT_TRUE(Put("s", absl::StrCat("v", i)).ok()) << i;
    if (i == 50) clock_.Advance(absl::Hours(25));  // the first 50 are now old
  }
  sm::ListSecretVersionIdsRequest list;
  list.set_secret_id("s");
  list.set_include_deprecated(true);
  auto versions = store_->ListSecretVersionIds(list);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->versions_size(), 100);
  EXPECT_FALSE(versions->next_token().empty() && versions->versions_size() > 100);
  // The oldest (token 'a') went first; labelled ones stay.
  EXPECT_THAT(Value("s", "", Token('a')).status(), HasReason(reason::kResourceNotFound));
  EXPECT_EQ(*Value("s"), "v104");
  EXPECT_EQ(*Value("s", "AWSPREVIOUS"), "v103");
  size_t stored = 0;
  ASSERT_TRUE(db_->Scan(schema::kVersions, {}, [&](auto, auto) { return ++stored, true; }).ok());
  EXPECT_EQ(stored, 100u);  // the version records went with them
}

TEST_P(SecretStoreTest, ListSecretVersionIdsPagesAndHidesDeprecated) {
  Create("s", "v0");
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(Put("s", absl::StrCat("v", i)).ok());
  sm::ListSecretVersionIdsRequest list;
  list.set_secret_id("s");
  EXPECT_EQ(store_->ListSecretVersionIds(list)->versions_size(), 2);
  list.set_include_deprecated(true);
  list.set_max_results(2);
  std::set<std::string> seen;
  std::string token;
  do {
    list.set_next_token(token);
    auto page = store_->ListSecretVersionIds(list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& v : page->versions()) EXPECT_TRUE(seen.insert(v.version_id()).second);
    token = page->next_token();
  } while (!token.empty());
  EXPECT_EQ(seen.size(), 5u);
}

TEST_P(SecretStoreTest, ListSecretsPagesWithoutGapsWhileSecretsAreAdded) {
  for (int i = 0; i < 30; ++i) {
    Create(absl::StrCat("app/", i), "v");
    clock_.Advance(absl::Seconds(1));
  }
  sm::ListSecretsRequest list;
  list.set_max_results(7);
  list.set_sort_order(sm::SORT_ORDER_ASC);
  std::vector<std::string> seen;
  std::string token;
  int added = 0;
  do {
    list.set_next_token(token);
    auto page = store_->ListSecrets(list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& s : page->secret_list()) seen.push_back(s.name());
    token = page->next_token();
    Create(absl::StrCat("late/", added++), "v");  // added while paging
    clock_.Advance(absl::Seconds(1));
  } while (!token.empty());
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "duplicates across pages";
  for (int i = 0; i < 30; ++i) EXPECT_TRUE(unique.count(absl::StrCat("app/", i))) << i;

  // Filters: name prefix, negation, tags.
  sm::TagResourceRequest tag;
  tag.set_secret_id("app/3");
  auto* t = tag.add_tags();
  t->set_key("team");
  t->set_value("payments");
  ASSERT_TRUE(store_->TagResource(tag).ok());
  sm::ListSecretsRequest filtered;
  auto* f = filtered.add_filters();
  f->set_key("tag-value");
  f->add_values("pay");
  std::vector<std::string> names;
  token.clear();
  do {
    filtered.set_next_token(token);
    auto page = store_->ListSecrets(filtered);
    ASSERT_TRUE(page.ok());
    for (const auto& s : page->secret_list()) names.push_back(s.name());
    token = page->next_token();
  } while (!token.empty());
  EXPECT_THAT(names, ElementsAre("app/3"));
  sm::ListSecretsRequest negated;
  auto* n = negated.add_filters();
  n->set_key("name");
  n->add_values("!app/");
  negated.set_max_results(100);
  names.clear();
  token.clear();
  do {
    negated.set_next_token(token);
    auto page = store_->ListSecrets(negated);
    ASSERT_TRUE(page.ok());
    for (const auto& s : page->secret_list()) {
      EXPECT_FALSE(absl::StartsWith(s.name(), "app/"));
      names.push_back(s.name());
    }
    token = page->next_token();
  } while (!token.empty());
  EXPECT_EQ(names.size(), static_cast<size_t>(added));
}

TEST_P(SecretStoreTest, BatchGetReportsPerSecretErrors) {
  Create("a", "va");
  Create("b", "vb");
  sm::DeleteSecretRequest del;
  del.set_secret_id("b");
  ASSERT_TRUE(store_->DeleteSecret(del).ok());
  sm::BatchGetSecretValueRequest batch;
  batch.add_secret_id_list("a");
  batch.add_secret_id_list("b");
  batch.add_secret_id_list("missing");
  auto got = store_->BatchGetSecretValue(batch);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->secret_values_size(), 1);
  EXPECT_EQ(got->secret_values(0).secret_string(), "va");
  ASSERT_EQ(got->errors_size(), 2);
  std::map<std::string, std::string> errors;
  for (const auto& e : got->errors()) errors[e.secret_id()] = e.error_code();
  EXPECT_EQ(errors["b"], reason::kInvalidRequest);
  EXPECT_EQ(errors["missing"], reason::kResourceNotFound);

  sm::BatchGetSecretValueRequest by_filter;
  auto* f = by_filter.add_filters();
  f->set_key("name");
  f->add_values("a");
  auto filtered = store_->BatchGetSecretValue(by_filter);
  ASSERT_TRUE(filtered.ok());
  ASSERT_EQ(filtered->secret_values_size(), 1);
  EXPECT_EQ(filtered->secret_values(0).name(), "a");
}

TEST_P(SecretStoreTest, KmsDownWritesFailReadsFromCacheWork) {
  Create("s", "cached");
  EXPECT_EQ(*Value("s"), "cached");
  kms_->down = true;
  EXPECT_EQ(*Value("s"), "cached");  // its key-encryption key cached at write time
  // The secret's KEK is cached too: a new version needs no KMS call...
  EXPECT_TRUE(Put("s", "while down").ok());
  EXPECT_EQ(*Value("s"), "while down");
  // ...but a secret without one needs the KMS.
  sm::CreateSecretRequest fresh;
  fresh.set_name("fresh");
  fresh.set_secret_string("v");
  auto created = store_->CreateSecret(fresh);
  EXPECT_THAT(created.status(), HasReason(reason::kEncryptionFailure));
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnavailable);
  sm::CreateSecretRequest no_value;
  no_value.set_name("metadata-only");
  EXPECT_TRUE(store_->CreateSecret(no_value).ok());  // needs no KMS
  auto put = Put("metadata-only", "first value");
  EXPECT_THAT(put.status(), HasReason(reason::kEncryptionFailure));
  EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable);
  kms_->down = false;
  EXPECT_TRUE(Put("s", "new").ok());

  // With the cache off every read asks the KMS.
  cache_options_ = DataKeyCacheOptions{0, absl::ZeroDuration(), &clock_};
  Open();
  int before = kms_->decrypted;
  EXPECT_EQ(*Value("s"), "new");
  EXPECT_EQ(*Value("s"), "new");
  EXPECT_EQ(kms_->decrypted, before + 2);
  kms_->down = true;
  auto read = Value("s");
  EXPECT_THAT(read.status(), HasReason(reason::kDecryptionFailure));
  EXPECT_EQ(read.status().code(), absl::StatusCode::kUnavailable);
}

TEST_P(SecretStoreTest, TagsPoliciesAndRandomPasswords) {
  Create("s", "v");
  sm::TagResourceRequest tag;
  tag.set_secret_id("s");
  for (int i = 0; i < 50; ++i) {
    auto* t = tag.add_tags();
    t->set_key(absl::StrCat("k", i));
  }
  ASSERT_TRUE(store_->TagResource(tag).ok());
  tag.clear_tags();
  tag.add_tags()->set_key("one-too-many");
  EXPECT_THAT(store_->TagResource(tag).status(), HasReason(reason::kLimitExceeded));
  sm::UntagResourceRequest untag;
  untag.set_secret_id("s");
  untag.add_tag_keys("k0");
  ASSERT_TRUE(store_->UntagResource(untag).ok());
  ASSERT_TRUE(store_->TagResource(tag).ok());

  sm::PutResourcePolicyRequest put;
  put.set_secret_id("s");
  put.set_resource_policy(R"({"Version":"2012-10-17","Statement":[]})");
  ASSERT_TRUE(store_->PutResourcePolicy(put).ok());
  sm::GetResourcePolicyRequest get;
  get.set_secret_id("s");
  EXPECT_EQ(store_->GetResourcePolicy(get)->resource_policy(), put.resource_policy());
  sm::DeleteResourcePolicyRequest del;
  del.set_secret_id("s");
  ASSERT_TRUE(store_->DeleteResourcePolicy(del).ok());
  EXPECT_EQ(store_->GetResourcePolicy(get)->resource_policy(), "");

  sm::GetRandomPasswordRequest pw;
  auto dflt = store_->GetRandomPassword(pw);
  ASSERT_TRUE(dflt.ok());
  EXPECT_EQ(dflt->random_password().size(), 32u);
  pw.set_password_length(20);
  pw.set_exclude_punctuation(true);
  pw.set_exclude_characters("abc");
  auto custom = store_->GetRandomPassword(pw);
  ASSERT_TRUE(custom.ok());
  EXPECT_EQ(custom->random_password().size(), 20u);
  EXPECT_EQ(custom->random_password().find_first_of("abc!#$%"), std::string::npos);
}

// A stale full ARN (its secret deleted) never resolves to another secret,
// even one literally named "<name>-<suffix>".
TEST_P(SecretStoreTest, StaleFullArnNeverResolvesToAnotherSecret) {
  auto created = Create("a", "first");
  const std::string arn = created.arn();
  const std::string suffixed_name = "a" + arn.substr(arn.size() - 7);  // "a-Ab3xQ9"
  sm::DeleteSecretRequest del;
  del.set_secret_id(arn);
  del.set_force_delete_without_recovery(true);
  ASSERT_TRUE(store_->DeleteSecret(del).ok());
  Create(suffixed_name, "someone-elses");
  EXPECT_THAT(Value(arn).status(), HasReason(reason::kResourceNotFound));
  EXPECT_EQ(*Value(suffixed_name), "someone-elses");
  // Re-created under the same name, the secret has a new ARN: the old one
  // still finds nothing.
  auto again = Create("a", "second");
  ASSERT_NE(again.arn(), arn);
  EXPECT_THAT(Value(arn).status(), HasReason(reason::kResourceNotFound));
  EXPECT_EQ(*Value(again.arn()), "second");
}

TEST_P(SecretStoreTest, StagingLabelsOnPlaceholderVersionKeepTheirLabels) {
  // A version without a value (rotation's AWSPENDING placeholder) is filled
  // by PutSecretValue with its token; its labels stay.
  Create("s", "v1", Token('a'));
  // Make the placeholder through the record, as the rotation API will.
  auto bytes = db_->Get(schema::kSecrets, "s");
  ASSERT_TRUE(bytes.ok() && bytes->has_value());
  SecretRecord record;
  ASSERT_TRUE(record.ParseFromString(**bytes));
  internal::store::v1::VersionSummary pending;
  pending.set_version_id(Token('p'));
  *pending.mutable_created_date() = record.created_date();
  ASSERT_TRUE(StagingLabels::AddVersion(record, pending, {kAwsPending}).ok());
  ASSERT_TRUE(db_->Put(schema::kSecrets, "s", record.SerializeAsString()).ok());
  EXPECT_THAT(Value("s", kAwsPending).status(), HasReason(reason::kResourceNotFound));

  auto filled = Put("s", "pending-value", Token('p'), {kAwsPending});
  ASSERT_TRUE(filled.ok()) << filled.status();
  EXPECT_EQ(*Value("s", kAwsPending), "pending-value");
  EXPECT_EQ(*Value("s"), "v1");
}

}  // namespace
}  // namespace coffer::store

namespace coffer::store {
namespace {

TEST_P(SecretStoreTest, VersionsPerSecretAreBoundedInsideThe24HourWindow) {
  secret_options_.max_versions_per_secret = 110;
  Open();
  sm::CreateSecretRequest create;
  create.set_name("busy");
  create.set_secret_string("v0");
  ASSERT_TRUE(store_->CreateSecret(create).ok());
  auto put = [&](int i) {
    sm::PutSecretValueRequest req;
    req.set_secret_id("busy");
    req.set_secret_string(absl::StrCat("v", i));
    return store_->PutSecretValue(req).status();
  };
  for (int i = 1; i < 110; ++i) ASSERT_TRUE(put(i).ok()) << i;
  absl::Status refused = put(110);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused, HasReason(reason::kLimitExceeded));
  sm::GetSecretValueRequest get;
  get.set_secret_id("busy");
  EXPECT_EQ(store_->GetSecretValue(get)->secret_string(), "v109");  // nothing changed
  // A day later the versions without labels may go, and writes work again.
  clock_.Advance(absl::Hours(25));
  EXPECT_TRUE(put(111).ok());
  EXPECT_EQ(store_->GetSecretValue(get)->secret_string(), "v111");
}

}  // namespace
}  // namespace coffer::store
