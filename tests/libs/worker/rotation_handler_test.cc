#include "libs/worker/rotation_handler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "libs/common/errors.h"
#include "tests/libs/worker/fake_secrets_client.h"

namespace coffer::worker {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "rotation-token-0123456789abcdef0123";

class RotationHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    arn_ = fake_.AddSecret("app/db", "v1");
    old_ = fake_.VersionAt(arn_, kAwsCurrent);
    fake_.StartRotation(arn_, kToken);
  }

  FakeSecretsClient fake_;
  std::string arn_;
  std::string old_;
  StepContext Ctx() { return StepContext{arn_, kToken, fake_}; }
};

TEST_F(RotationHandlerTest, CreatePendingStoresGeneratedValueOnce) {
  int generated = 0;
  auto generate = [&]() -> absl::StatusOr<std::string> {
    ++generated;
    return std::string("v2");
  };
  ASSERT_TRUE(CreatePendingIfMissing(Ctx(), generate).ok());
  ASSERT_TRUE(CreatePendingIfMissing(Ctx(), generate).ok());
  EXPECT_EQ(generated, 1);
  EXPECT_EQ(fake_.ValueAt(arn_, kAwsPending), "v2");
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsPending), kToken);
  EXPECT_EQ(fake_.ValueAt(arn_, kAwsCurrent), "v1");
}

TEST_F(RotationHandlerTest, CreatePendingPassesErrorsOn) {
  auto generate = []() -> absl::StatusOr<std::string> {
    return absl::FailedPreconditionError("cannot generate");
  };
  absl::Status s = CreatePendingIfMissing(Ctx(), generate);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);

  fake_.FailNext("GetSecretValue", absl::UnavailableError("store down"));
  s = CreatePendingIfMissing(Ctx(), [] { return absl::StatusOr<std::string>("v2"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_.ValueAt(arn_, kAwsPending), "");  // nothing was written
}

TEST_F(RotationHandlerTest, CreatePendingLetsAConcurrentWriterWin) {
  // Another run of the step stores its value between our read and our put.
  fake_.OnPut([&] {
    fake_.OnPut(nullptr);
    fake_.SetValue(arn_, kToken, "theirs");
  });
  ASSERT_TRUE(
      CreatePendingIfMissing(Ctx(), [] { return absl::StatusOr<std::string>("ours"); }).ok());
  EXPECT_EQ(fake_.ValueAt(arn_, kAwsPending), "theirs");
}

TEST_F(RotationHandlerTest, FinishMovesLabelsAndIsIdempotent) {
  fake_.SetValue(arn_, kToken, "v2");
  ASSERT_TRUE(FinishStandard(Ctx()).ok());
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsCurrent), kToken);
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsPrevious), old_);
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsPending), "");
  const auto before = fake_.Versions(arn_);

  ASSERT_TRUE(FinishStandard(Ctx()).ok());
  ASSERT_TRUE(FinishStandard(Ctx()).ok());
  const auto after = fake_.Versions(arn_);
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [id, v] : before) EXPECT_EQ(after.at(id).stages, v.stages) << id;
}

TEST_F(RotationHandlerTest, FinishCompletesAfterACrashBetweenItsTwoCalls) {
  fake_.SetValue(arn_, kToken, "v2");
  ASSERT_TRUE(fake_.UpdateSecretVersionStage(arn_, kAwsCurrent, old_, kToken).ok());
  ASSERT_TRUE(FinishStandard(Ctx()).ok());
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsCurrent), kToken);
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsPrevious), old_);
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsPending), "");
}

TEST_F(RotationHandlerTest, FinishNeverMakesAVersionWithoutValueCurrent) {
  absl::Status s = FinishStandard(Ctx());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("has no value"));
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsCurrent), old_);
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsPending), kToken);
}

TEST_F(RotationHandlerTest, FinishRejectsAnUnknownToken) {
  StepContext other{arn_, "another-token-0123456789abcdef01234", fake_};
  EXPECT_EQ(FinishStandard(other).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsCurrent), old_);
}

TEST_F(RotationHandlerTest, FinishPassesStoreErrorsOn) {
  fake_.SetValue(arn_, kToken, "v2");
  fake_.FailNext("UpdateSecretVersionStage", absl::UnavailableError("store down"));
  EXPECT_EQ(FinishStandard(Ctx()).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsCurrent), old_);
  ASSERT_TRUE(FinishStandard(Ctx()).ok());  // the retry completes it
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsCurrent), kToken);
}

TEST_F(RotationHandlerTest, CheckRotationVersion) {
  auto state = CheckRotationVersion(Ctx());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, PendingState::kPending);

  fake_.SetValue(arn_, kToken, "v2");
  ASSERT_TRUE(FinishStandard(Ctx()).ok());
  state = CheckRotationVersion(Ctx());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, PendingState::kCurrent);

  StepContext stale{arn_, old_, fake_};  // AWSPREVIOUS only
  EXPECT_EQ(CheckRotationVersion(stale).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace coffer::worker
