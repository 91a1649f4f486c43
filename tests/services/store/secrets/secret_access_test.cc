// Authorization of the secrets API (secret_access.h) with real policies:
// identity and resource policies, filtered lists, the rotation rules no
// policy can widen (workers, leases, the pending version).
#include "services/store/secrets/secret_access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "libs/authz/authorizer.h"
#include "libs/common/errors.h"
#include "services/store/secrets/staging_labels.h"
#include "tests/services/store/store_fixture.h"
#include "tests/testing/matchers.h"

namespace coffer::store {
namespace {

namespace sm = ::coffer::secrets::v1;
namespace rot = ::coffer::rotation::v1;
using ::coffer::testing::HasReason;
using ::testing::HasSubstr;

constexpr char kAdmin[] = "spiffe://coffer.local/admin/cofferctl";
constexpr char kApp[] = "spiffe://coffer.local/app/catagram";
constexpr char kOther[] = "spiffe://coffer.local/app/other";
constexpr char kRotator[] = "spiffe://coffer.local/rotator";
constexpr char kWorker[] = "spiffe://coffer.local/worker/postgres";
constexpr char kOtherWorker[] = "spiffe://coffer.local/worker/exec";

constexpr char kPolicy[] = R"({"statements": [
  {"effect": "Allow", "principals": ["spiffe://coffer.local/admin/*"], "actions": ["*"],
   "resources": ["*"]},
  {"effect": "Allow", "principals": ["spiffe://coffer.local/app/catagram"],
   "actions": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
   "resources": ["demo/catagram/*"]},
  {"effect": "Allow", "principals": ["spiffe://coffer.local/rotator"],
   "actions": ["rotation:*"], "resources": ["*"]},
  {"effect": "Allow", "principals": ["spiffe://coffer.local/worker/*"],
   "actions": ["secretsmanager:*"], "resources": ["*"]},
  {"effect": "Deny", "principals": ["*"], "actions": ["secretsmanager:DeleteSecret"],
   "resources": ["demo/catagram/keep"]}
]})";

class SecretAccessTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    auto policy = authz::Policy::Parse(kPolicy, authz::Policy::kIdentity);
    ASSERT_TRUE(policy.ok()) << policy.status();
    authorizer_ = std::make_unique<authz::Authorizer>(std::move(policy).value());
    for (const char* name : {"demo/catagram/db", "demo/catagram/keep", "demo/postgres/master"}) {
      Create(name, "value-of-" + std::string(name));
    }
  }

  authz::Access As(const std::string& principal, const std::string& token = "") {
    authz::Access access(authorizer_.get(), principal);
    access.set_rotation_token(token);
    return access;
  }

  void Create(const std::string& name, const std::string& value) {
    sm::CreateSecretRequest create;
    create.set_name(name);
    create.set_secret_string(value);
    ASSERT_TRUE(store_->CreateSecret(create).ok());
  }

  absl::Status Get(const std::string& id, const authz::Access& access) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(id);
    return store_->GetSecretValue(req, access).status();
  }

  absl::Status Put(const std::string& id, const authz::Access& access, const std::string& token,
                   std::vector<std::string> stages = {}) {
    sm::PutSecretValueRequest put;
    put.set_secret_id(id);
    put.set_client_request_token(token);
    put.set_secret_string("written-by-" + access.principal());
    for (const auto& s : stages) put.add_version_stages(s);
    return store_->PutSecretValue(put, access).status();
  }

  // Starts a rotation of `name` by the rotator; returns the run's token.
  std::string StartRotation(const std::string& name) {
    sm::RotateSecretRequest rotate;
    rotate.set_secret_id(name);
    rotate.set_rotation_worker("pg");
    rotate.mutable_rotation_rules()->set_automatically_after_days(30);
    rotate.set_rotate_immediately(false);
    EXPECT_TRUE(rotation_->RotateSecret(rotate).ok());
    clock_.Advance(absl::Hours(24 * 40));
    rot::AcquireRotationLeaseRequest acquire;
    acquire.set_secret_id(name);
    acquire.set_holder("rotator-1");
    acquire.mutable_lease_duration()->set_seconds(60);
    (*acquire.mutable_worker_spiffe_ids())["pg"] = kWorker;
    auto lease = rotation_->AcquireRotationLease(acquire, As(kRotator));
    EXPECT_TRUE(lease.ok()) << lease.status();
    lease_id_ = lease.ok() ? lease->lease_id() : "";
    return lease.ok() ? lease->client_request_token() : "";
  }

  std::unique_ptr<authz::Authorizer> authorizer_;
  std::string lease_id_;
};
COFFER_STORE_ENGINES(SecretAccessTest);

TEST_P(SecretAccessTest, AppReadsItsSecretsAndNothingElseAndCannotWrite) {
  EXPECT_TRUE(Get("demo/catagram/db", As(kApp)).ok());
  // By ARN too: policies name secrets by name or ARN.
  sm::DescribeSecretRequest describe;
  describe.set_secret_id("demo/catagram/db");
  const std::string arn = store_->DescribeSecret(describe)->arn();
  EXPECT_TRUE(Get(arn, As(kApp)).ok());
  absl::Status denied = Get("demo/postgres/master", As(kApp));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.message()),
              HasSubstr("is not authorized to perform secretsmanager:GetSecretValue on "
                        "demo/postgres/master"));
  EXPECT_THAT(Put("demo/catagram/db", As(kApp), std::string(32, 'p')),
              HasReason(reason::kAccessDenied));
  for (const char* id : {"demo/catagram/db", "demo/postgres/master", "missing"}) {
    EXPECT_EQ(Get(id, As(kOther)).code(), absl::StatusCode::kPermissionDenied) << id;
  }
}

TEST_P(SecretAccessTest, NoExistenceOracle) {
  // Without a right, a missing secret and an existing one look the same;
  // with the right, a missing one is ResourceNotFound.
  EXPECT_EQ(Get("demo/postgres/nope", As(kApp)).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Get("demo/postgres/master", As(kApp)).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Get("demo/catagram/nope", As(kApp)), HasReason(reason::kResourceNotFound));
}

TEST_P(SecretAccessTest, DenyWinsOverTheAdministratorsAllow) {
  sm::DeleteSecretRequest del;
  del.set_secret_id("demo/catagram/keep");
  EXPECT_THAT(store_->DeleteSecret(del, As(kAdmin)).status(), HasReason(reason::kAccessDenied));
  del.set_secret_id("demo/catagram/db");
  EXPECT_TRUE(store_->DeleteSecret(del, As(kAdmin)).ok());
}

TEST_P(SecretAccessTest, ResourcePoliciesTakePartAndExplicitDenyInEitherWins) {
  sm::PutResourcePolicyRequest put;
  put.set_secret_id("demo/postgres/master");
  put.set_resource_policy(R"({"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Principal": {"Coffer": "spiffe://coffer.local/app/other"},
       "Action": "secretsmanager:GetSecretValue"},
      {"Effect": "Deny", "Principal": {"Coffer": "spiffe://coffer.local/admin/cofferctl"},
       "Action": "secretsmanager:GetSecretValue"}]})");
  ASSERT_TRUE(store_->PutResourcePolicy(put, As(kAdmin)).ok());
  EXPECT_TRUE(Get("demo/postgres/master", As(kOther)).ok());  // granted by the secret
  EXPECT_THAT(Get("demo/postgres/master", As(kAdmin)), HasReason(reason::kAccessDenied));
  EXPECT_EQ(Get("demo/catagram/db", As(kOther)).code(), absl::StatusCode::kPermissionDenied);
}

TEST_P(SecretAccessTest, PublicPoliciesAreReportedAndCanBeBlocked) {
  const std::string open =
      R"({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*"}]})";
  sm::ValidateResourcePolicyRequest validate;
  validate.set_resource_policy(open);
  auto report = store_->ValidateResourcePolicy(validate, As(kAdmin));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->policy_validation_passed());
  ASSERT_EQ(report->validation_errors_size(), 1);
  EXPECT_EQ(report->validation_errors(0).check_name(), "public_policy");
  validate.set_resource_policy("{\"Statement\": [\n{\"Effect\": \"Maybe\"}]}");
  report = store_->ValidateResourcePolicy(validate, As(kAdmin));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->validation_errors(0).check_name(), "syntax");
  EXPECT_THAT(report->validation_errors(0).error_message(),
              HasSubstr("line 2: Statement[0].Effect"));

  sm::PutResourcePolicyRequest put;
  put.set_secret_id("demo/catagram/db");
  put.set_resource_policy(open);
  put.set_block_public_policy(true);
  EXPECT_THAT(store_->PutResourcePolicy(put, As(kAdmin)).status(),
              HasReason(reason::kPublicPolicy));
  put.set_resource_policy("{\"Statement\": [{\"Effect\": \"Allow\"}]}");
  EXPECT_THAT(store_->PutResourcePolicy(put, As(kAdmin)).status(),
              HasReason(reason::kMalformedPolicyDocument));
}

TEST_P(SecretAccessTest, ListingShowsOnlyWhatTheCallerMayDescribe) {
  auto names = [&](const authz::Access& access) {
    std::vector<std::string> out;
    auto list = store_->ListSecrets(sm::ListSecretsRequest(), access);
    EXPECT_TRUE(list.ok()) << list.status();
    if (list.ok()) {
      for (const auto& e : list->secret_list()) out.push_back(e.name());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_THAT(names(As(kApp)), ::testing::ElementsAre("demo/catagram/db", "demo/catagram/keep"));
  EXPECT_THAT(names(As(kOther)), ::testing::IsEmpty());
  EXPECT_EQ(names(As(kAdmin)).size(), 3u);

  sm::BatchGetSecretValueRequest batch;
  batch.add_filters()->set_key("name");
  batch.mutable_filters(0)->add_values("demo");
  auto got = store_->BatchGetSecretValue(batch, As(kApp));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_values_size(), 2);
  sm::BatchGetSecretValueRequest by_id;
  by_id.add_secret_id_list("demo/catagram/db");
  by_id.add_secret_id_list("demo/postgres/master");
  got = store_->BatchGetSecretValue(by_id, As(kApp));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->secret_values_size(), 1);
  ASSERT_EQ(got->errors_size(), 1);
  EXPECT_EQ(got->errors(0).error_code(), reason::kAccessDenied);

  auto filter = SecretStore::WatchFilter(sm::WatchSecretsRequest(), As(kApp));
  ASSERT_TRUE(filter.ok());
  coffer::v1::ChangeEvent event;
  event.set_resource_kind(coffer::v1::RESOURCE_KIND_SECRET);
  event.set_name("demo/catagram/db");
  EXPECT_TRUE((*filter)(event));
  event.set_name("demo/postgres/master");
  EXPECT_FALSE((*filter)(event));
}

TEST_P(SecretAccessTest, WorkersWriteOnlyTheSecretTheyRotateWithItsToken) {
  const std::string token = StartRotation("demo/catagram/db");
  ASSERT_FALSE(token.empty());
  // The rotation's worker, with the token: writes the pending version.
  EXPECT_TRUE(Put("demo/catagram/db", As(kWorker, token), token, {"AWSPENDING"}).ok());
  // Without the token, with another token, or as another worker: refused,
  // although the policy lets workers do secretsmanager:*.
  EXPECT_THAT(Put("demo/catagram/db", As(kWorker), token, {"AWSPENDING"}),
              HasReason(reason::kAccessDenied));
  EXPECT_THAT(Put("demo/catagram/db", As(kWorker, std::string(32, 'x')), token, {"AWSPENDING"}),
              HasReason(reason::kAccessDenied));
  EXPECT_THAT(Put("demo/catagram/db", As(kOtherWorker, token), token, {"AWSPENDING"}),
              HasReason(reason::kAccessDenied));
  // Another secret (not rotating): no writes, reads only by policy.
  EXPECT_THAT(Put("demo/postgres/master", As(kWorker, token), std::string(32, 'q')),
              HasReason(reason::kAccessDenied));
  EXPECT_TRUE(Get("demo/postgres/master", As(kWorker, token)).ok());
  sm::DeleteSecretRequest del;
  del.set_secret_id("demo/catagram/db");
  EXPECT_THAT(store_->DeleteSecret(del, As(kWorker, token)).status(),
              HasReason(reason::kAccessDenied));
}

TEST_P(SecretAccessTest, AClientCannotChooseTheNextPassword) {
  const std::string token = StartRotation("demo/catagram/db");
  // The administrator may write the secret, but not the rotation's version
  // nor AWSPENDING while it runs.
  EXPECT_THAT(Put("demo/catagram/db", As(kAdmin), token), HasReason(reason::kInvalidRequest));
  EXPECT_THAT(Put("demo/catagram/db", As(kAdmin), std::string(32, 'c'), {"AWSPENDING"}),
              HasReason(reason::kInvalidRequest));
  sm::UpdateSecretVersionStageRequest move;
  move.set_secret_id("demo/catagram/db");
  move.set_version_stage("AWSCURRENT");
  move.set_move_to_version_id(token);
  EXPECT_THAT(store_->UpdateSecretVersionStage(move, As(kAdmin)).status(),
              HasReason(reason::kInvalidRequest));
  // Other versions and labels stay the administrator's.
  EXPECT_TRUE(Put("demo/catagram/db", As(kAdmin), std::string(32, 'd'), {"MINE"}).ok());
}

TEST_P(SecretAccessTest, APendingVersionAClientWroteIsReplacedNotAdopted) {
  const std::string planted = std::string(32, 'e');
  ASSERT_TRUE(Put("demo/catagram/db", As(kAdmin), planted, {"AWSPENDING"}).ok());
  const std::string token = StartRotation("demo/catagram/db");
  EXPECT_NE(token, planted);
  sm::DescribeSecretRequest describe;
  describe.set_secret_id("demo/catagram/db");
  auto d = store_->DescribeSecret(describe);
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->version_ids_to_stages().at(token).stages(), ::testing::Contains("AWSPENDING"));
  auto planted_stages = d->version_ids_to_stages().find(planted);
  if (planted_stages != d->version_ids_to_stages().end()) {
    EXPECT_THAT(planted_stages->second.stages(), ::testing::Not(::testing::Contains("AWSPENDING")));
  }
}

TEST_P(SecretAccessTest, RotateSecretRestartsOverAStalePendingVersion) {
  const std::string stale = std::string(32, 'f');
  ASSERT_TRUE(Put("demo/catagram/db", As(kAdmin), stale, {"AWSPENDING"}).ok());
  sm::RotateSecretRequest rotate;
  rotate.set_secret_id("demo/catagram/db");
  rotate.set_rotation_worker("pg");
  rotate.mutable_rotation_rules()->set_automatically_after_days(30);
  auto started = rotation_->RotateSecret(rotate, As(kAdmin));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_NE(started->version_id(), stale);
}

TEST_P(SecretAccessTest, ALeaseBelongsToTheIdentityThatTookIt) {
  StartRotation("demo/catagram/db");
  rot::RenewRotationLeaseRequest renew;
  renew.set_secret_id("demo/catagram/db");
  renew.set_lease_id(lease_id_);
  renew.mutable_lease_duration()->set_seconds(60);
  EXPECT_TRUE(rotation_->RenewRotationLease(renew, As(kRotator)).ok());
  // An administrator who knows the lease id still cannot act under it.
  EXPECT_THAT(rotation_->RenewRotationLease(renew, As(kAdmin)).status(),
              HasReason(reason::kAccessDenied));
  // And a second holder with the same holder string but another identity
  // cannot take it over.
  rot::AcquireRotationLeaseRequest acquire;
  acquire.set_secret_id("demo/catagram/db");
  acquire.set_holder("rotator-1");
  acquire.mutable_lease_duration()->set_seconds(60);
  EXPECT_EQ(rotation_->AcquireRotationLease(acquire, As(kAdmin)).status().code(),
            absl::StatusCode::kAborted);
}

}  // namespace
}  // namespace coffer::store
