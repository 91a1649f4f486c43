// The store's side of rotation: RotateSecret / CancelRotateSecret and the
// rotation-control API (leases, progress, completion), on a real RocksDB with
// the real KMS logic in-process and a fake clock.
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "services/store/secrets/secret_store.h"
#include "services/store/secrets/staging_labels.h"
#include "tests/services/store/store_fixture.h"
#include "tests/testing/matchers.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

namespace sm = ::coffer::secrets::v1;
namespace rot = ::coffer::rotation::v1;

using ::coffer::testing::HasReason;

class SecretRotationTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    sm::CreateSecretRequest create;
    create.set_name("db");
    create.set_secret_string("old-password");
    create.set_client_request_token(std::string(32, 'a'));
    ASSERT_TRUE(store_->CreateSecret(create).ok());
  }

  absl::StatusOr<sm::RotateSecretResponse> Rotate(const std::string& expression, bool now = true) {
    sm::RotateSecretRequest req;
    req.set_secret_id("db");
    req.set_rotation_worker("postgres-single-user");
    req.mutable_rotation_rules()->set_schedule_expression(expression);
    req.set_rotate_immediately(now);
    return rotation_->RotateSecret(req);
  }

  absl::StatusOr<rot::AcquireRotationLeaseResponse> Acquire(const std::string& holder,
                                                            absl::Duration d = absl::Seconds(30)) {
    rot::AcquireRotationLeaseRequest req;
    req.set_secret_id("db");
    req.set_holder(holder);
    req.mutable_lease_duration()->set_seconds(absl::ToInt64Seconds(d));
    return rotation_->AcquireRotationLease(req);
  }

  absl::Status Progress(const std::string& lease, rot::RotationStep step, bool ok,
                        const std::string& error = "") {
    rot::RecordRotationProgressRequest req;
    req.set_secret_id("db");
    req.set_lease_id(lease);
    req.set_step(step);
    req.set_completed(ok);
    req.set_error(error);
    return rotation_->RecordRotationProgress(req).status();
  }

  absl::StatusOr<rot::CompleteRotationResponse> Complete(const std::string& lease, bool ok,
                                                         const std::string& error = "") {
    rot::CompleteRotationRequest req;
    req.set_secret_id("db");
    req.set_lease_id(lease);
    req.set_succeeded(ok);
    req.set_error(error);
    return rotation_->CompleteRotation(req);
  }

  sm::DescribeSecretResponse Describe() {
    sm::DescribeSecretRequest req;
    req.set_secret_id("db");
    return store_->DescribeSecret(req).value();
  }

  std::string Value(const std::string& stage) {
    sm::GetSecretValueRequest req;
    req.set_secret_id("db");
    req.set_version_stage(stage);
    auto got = store_->GetSecretValue(req);
    return got.ok() ? got->secret_string() : std::string(ErrorReason(got.status()));
  }

  // What a worker does: createSecret then finishSecret.
  void WorkerCreatesAndFinishes(const std::string& token) {
    sm::PutSecretValueRequest put;
    put.set_secret_id("db");
    put.set_client_request_token(token);
    put.set_secret_string("new-password");
    put.add_version_stages(kAwsPending);
    ASSERT_TRUE(store_->PutSecretValue(put).ok());
    sm::UpdateSecretVersionStageRequest move;
    move.set_secret_id("db");
    move.set_version_stage(kAwsCurrent);
    move.set_move_to_version_id(token);
    move.set_remove_from_version_id(std::string(32, 'a'));
    ASSERT_TRUE(store_->UpdateSecretVersionStage(move).ok());
    sm::UpdateSecretVersionStageRequest unpend;
    unpend.set_secret_id("db");
    unpend.set_version_stage(kAwsPending);
    unpend.set_remove_from_version_id(token);
    ASSERT_TRUE(store_->UpdateSecretVersionStage(unpend).ok());
  }
};
COFFER_STORE_ENGINES(SecretRotationTest);

TEST_P(SecretRotationTest, RotateSecretValidatesItsConfiguration) {
  sm::RotateSecretRequest req;
  req.set_secret_id("db");
  req.mutable_rotation_rules()->set_automatically_after_days(30);
  EXPECT_THAT(rotation_->RotateSecret(req).status(),
              HasReason(reason::kInvalidParameter));  // no worker
  req.set_rotation_worker("bad worker!");
  EXPECT_THAT(rotation_->RotateSecret(req).status(), HasReason(reason::kInvalidParameter));
  req.set_rotation_worker("pg");
  req.clear_rotation_rules();
  EXPECT_THAT(rotation_->RotateSecret(req).status(),
              HasReason(reason::kInvalidParameter));  // no rules
  req.mutable_rotation_rules()->set_schedule_expression("rate(1 hours)");
  auto bad = rotation_->RotateSecret(req);
  EXPECT_THAT(bad.status(), HasReason(reason::kInvalidParameter));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("rotation_rules"));
  EXPECT_FALSE(Describe().rotation_enabled());
}

TEST_P(SecretRotationTest, RotateImmediatelyCreatesThePendingPlaceholder) {
  auto rotated = Rotate("rate(10 days)");
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_EQ(rotated->version_id().size(), 36u);
  auto d = Describe();
  EXPECT_TRUE(d.rotation_enabled());
  EXPECT_EQ(d.rotation_worker(), "postgres-single-user");
  EXPECT_EQ(d.rotation_rules().schedule_expression(), "rate(10 days)");
  EXPECT_EQ(d.next_rotation_date().seconds(), absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(d.rotation_state().status(), sm::RotationState::STATUS_IN_PROGRESS);
  EXPECT_EQ(d.rotation_state().next_step(), "createSecret");
  EXPECT_THAT(d.version_ids_to_stages().at(rotated->version_id()).stages(),
              ::testing::ElementsAre("AWSPENDING"));
  // The placeholder has no value yet; AWSCURRENT is untouched.
  EXPECT_EQ(Value(kAwsPending), reason::kResourceNotFound);
  EXPECT_EQ(Value(kAwsCurrent), "old-password");
  // A second rotation while this one is incomplete is refused.
  EXPECT_THAT(Rotate("rate(10 days)").status(), HasReason(reason::kInvalidRequest));
}

TEST_P(SecretRotationTest, LeasesAreExclusiveExpireAndResumeFromTheRecordedStep) {
  ASSERT_TRUE(Rotate("rate(10 days)").ok());
  auto a = Acquire("rotator-a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->next_step(), rot::ROTATION_STEP_CREATE_SECRET);
  EXPECT_EQ(a->rotation_worker(), "postgres-single-user");
  auto b = Acquire("rotator-b");
  EXPECT_EQ(b.status().code(), absl::StatusCode::kAborted);

  ASSERT_TRUE(Progress(a->lease_id(), rot::ROTATION_STEP_CREATE_SECRET, true).ok());
  ASSERT_TRUE(
      Progress(a->lease_id(), rot::ROTATION_STEP_SET_SECRET, false, "connection refused").ok());
  EXPECT_EQ(Describe().rotation_state().attempts(), 1);
  EXPECT_EQ(Describe().rotation_state().last_error(), "connection refused");

  // Rotator A dies; its lease expires; B continues where A stopped.
  clock_.Advance(absl::Seconds(31));
  b = Acquire("rotator-b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->client_request_token(), a->client_request_token());
  EXPECT_EQ(b->next_step(), rot::ROTATION_STEP_SET_SECRET);
  EXPECT_EQ(b->attempts(), 1);
  // A's lease is gone for good.
  EXPECT_EQ(Progress(a->lease_id(), rot::ROTATION_STEP_SET_SECRET, true).code(),
            absl::StatusCode::kAborted);
  rot::RenewRotationLeaseRequest renew;
  renew.set_secret_id("db");
  renew.set_lease_id(a->lease_id());
  renew.mutable_lease_duration()->set_seconds(30);
  EXPECT_EQ(rotation_->RenewRotationLease(renew).status().code(), absl::StatusCode::kAborted);
  renew.set_lease_id(b->lease_id());
  ASSERT_TRUE(rotation_->RenewRotationLease(renew).ok());
}

TEST_P(SecretRotationTest, SuccessMovesTheLabelsAndSchedulesTheNextWindow) {
  auto rotated = Rotate("rate(10 days)");
  auto lease = Acquire("r");
  ASSERT_TRUE(lease.ok());
  // Completing before finishSecret made it current is refused.
  EXPECT_THAT(Complete(lease->lease_id(), true).status(), HasReason(reason::kInvalidRequest));
  WorkerCreatesAndFinishes(lease->client_request_token());
  for (auto step : {rot::ROTATION_STEP_CREATE_SECRET, rot::ROTATION_STEP_SET_SECRET,
                    rot::ROTATION_STEP_TEST_SECRET, rot::ROTATION_STEP_FINISH_SECRET}) {
    ASSERT_TRUE(Progress(lease->lease_id(), step, true).ok());
  }
  auto done = Complete(lease->lease_id(), true);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(Value(kAwsCurrent), "new-password");
  EXPECT_EQ(Value(kAwsPrevious), "old-password");
  auto d = Describe();
  EXPECT_EQ(d.rotation_state().status(), sm::RotationState::STATUS_SUCCEEDED);
  EXPECT_EQ(d.last_rotated_date().seconds(), absl::ToUnixSeconds(clock_.Now()));
  absl::Time next = absl::FromUnixSeconds(d.next_rotation_date().seconds());
  EXPECT_GE(next, clock_.Now() + absl::Hours(24 * 10) - absl::Hours(24));
  EXPECT_LE(next, clock_.Now() + absl::Hours(24 * 11));
  // Not due again until then; the lease was released.
  EXPECT_THAT(Acquire("r").status(), HasReason(reason::kInvalidRequest));
  clock_.Set(next + absl::Seconds(1));
  auto again = Acquire("other");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->client_request_token(), lease->client_request_token());
  EXPECT_EQ(again->next_step(), rot::ROTATION_STEP_CREATE_SECRET);
}

TEST_P(SecretRotationTest, FailureNeverMovesCurrentAndTheNextWindowResumes) {
  ASSERT_TRUE(Rotate("rate(4 hours)").ok());
  auto lease = Acquire("r");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(Progress(lease->lease_id(), rot::ROTATION_STEP_CREATE_SECRET, true).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Progress(lease->lease_id(), rot::ROTATION_STEP_SET_SECRET, false, "boom").ok());
  }
  ASSERT_TRUE(Complete(lease->lease_id(), false, "setSecret failed 3 times: boom").ok());
  auto d = Describe();
  EXPECT_EQ(d.rotation_state().status(), sm::RotationState::STATUS_FAILED);
  EXPECT_EQ(d.rotation_state().last_error(), "setSecret failed 3 times: boom");
  EXPECT_EQ(Value(kAwsCurrent), "old-password");
  EXPECT_GT(absl::FromUnixSeconds(d.next_rotation_date().seconds()), clock_.Now());
  clock_.Advance(absl::Hours(5));
  auto retry = Acquire("r2");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->client_request_token(), lease->client_request_token());  // same pending version
}

TEST_P(SecretRotationTest, ScheduledRotationWithoutImmediateStartAndListing) {
  auto rotated = Rotate("cron(0 3 * * ? *)", /*now=*/false);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->version_id(), "");
  auto d = Describe();
  absl::Time next = absl::FromUnixSeconds(d.next_rotation_date().seconds());
  EXPECT_GT(next, clock_.Now());
  // The window opens at 03:00 UTC and (no duration given) closes at the
  // end of that UTC day; the start is random inside it.
  EXPECT_GE(absl::ToCivilHour(next, absl::UTCTimeZone()).hour(), 3);
  EXPECT_LE(next, clock_.Now() + absl::Hours(48));
  EXPECT_THAT(Acquire("r").status(), HasReason(reason::kInvalidRequest));  // not due

  for (int i = 0; i < 5; ++i) {
    sm::CreateSecretRequest create;
    create.set_name(absl::StrCat("s", i));
    create.set_secret_string("v");
    ASSERT_TRUE(store_->CreateSecret(create).ok());
    sm::RotateSecretRequest req;
    req.set_secret_id(create.name());
    req.set_rotation_worker("exec");
    req.mutable_rotation_rules()->set_automatically_after_days(7);
    req.set_rotate_immediately(false);
    ASSERT_TRUE(rotation_->RotateSecret(req).ok());
  }
  std::set<std::string> names;
  std::string token;
  do {
    rot::ListRotationSchedulesRequest list;
    list.set_max_results(2);
    list.set_next_token(token);
    auto page = rotation_->ListRotationSchedules(list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& s : page->schedules()) EXPECT_TRUE(names.insert(s.name()).second);
    token = page->next_token();
  } while (!token.empty());
  EXPECT_EQ(names.size(), 6u);

  sm::CancelRotateSecretRequest cancel;
  cancel.set_secret_id("s0");
  ASSERT_TRUE(rotation_->CancelRotateSecret(cancel).ok());
  rot::ListRotationSchedulesRequest list;
  EXPECT_EQ(rotation_->ListRotationSchedules(list)->schedules_size(), 5);
}

TEST_P(SecretRotationTest, CancelAbandonsTheRotationButKeepsThePendingVersion) {
  auto rotated = Rotate("rate(10 days)");
  ASSERT_TRUE(rotated.ok());
  auto lease = Acquire("r");
  ASSERT_TRUE(lease.ok());
  sm::CancelRotateSecretRequest cancel;
  cancel.set_secret_id("db");
  auto cancelled = rotation_->CancelRotateSecret(cancel);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->version_id(), rotated->version_id());
  auto d = Describe();
  EXPECT_FALSE(d.rotation_enabled());
  EXPECT_EQ(d.rotation_state().status(), sm::RotationState::STATUS_CANCELLED);
  EXPECT_TRUE(d.version_ids_to_stages().count(rotated->version_id()));
  EXPECT_EQ(Progress(lease->lease_id(), rot::ROTATION_STEP_CREATE_SECRET, true).code(),
            absl::StatusCode::kAborted);
  EXPECT_THAT(Acquire("r").status(), HasReason(reason::kInvalidRequest));
}

}  // namespace
}  // namespace coffer::store
