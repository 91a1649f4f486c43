#include "tools/cofferctl/failures.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer::cofferctl {
namespace {

// The exit statuses are documented in the README: changing one breaks
// scripts, so each is pinned here.
TEST(FailuresTest, ExitCodesAreTheAwsClisNumbers) {
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitAuditBroken, 1);
  EXPECT_EQ(kExitUsage, 252);
  EXPECT_EQ(kExitConfig, 253);
  EXPECT_EQ(kExitService, 254);
  EXPECT_EQ(kExitNoAnswer, 255);
}

TEST(FailuresTest, EveryCodeMapsToServiceErrorOrNoAnswer) {
  struct Row {
    absl::StatusCode code;
    ExitCode exit;
  };
  const Row table[] = {
      {absl::StatusCode::kOk, kExitOk},
      {absl::StatusCode::kCancelled, kExitNoAnswer},
      {absl::StatusCode::kUnknown, kExitNoAnswer},
      {absl::StatusCode::kInvalidArgument, kExitService},
      {absl::StatusCode::kDeadlineExceeded, kExitNoAnswer},
      {absl::StatusCode::kNotFound, kExitService},
      {absl::StatusCode::kAlreadyExists, kExitService},
      {absl::StatusCode::kPermissionDenied, kExitService},
      {absl::StatusCode::kResourceExhausted, kExitService},
      {absl::StatusCode::kFailedPrecondition, kExitService},
      {absl::StatusCode::kAborted, kExitService},
      {absl::StatusCode::kOutOfRange, kExitService},
      {absl::StatusCode::kUnimplemented, kExitService},
      {absl::StatusCode::kInternal, kExitService},
      {absl::StatusCode::kUnavailable, kExitNoAnswer},
      {absl::StatusCode::kDataLoss, kExitService},
      {absl::StatusCode::kUnauthenticated, kExitService},
  };
  for (const Row& row : table) {
    SCOPED_TRACE(absl::StatusCodeToString(row.code));
    EXPECT_EQ(ExitCodeFor(absl::Status(row.code, row.code == absl::StatusCode::kOk ? "" : "x")),
              row.exit);
  }
  // The reason does not change the class: the code decides.
  EXPECT_EQ(ExitCodeFor(Error(reason::kUnavailable, "KMS down")), kExitNoAnswer);
  EXPECT_EQ(ExitCodeFor(Error(reason::kResourceNotFound, "gone")), kExitService);
}

TEST(FailuresTest, ReasonColonMessage) {
  EXPECT_EQ(FormatError(Error(reason::kDisabled, "Key 'k' is disabled", "k")),
            "DisabledException: Key 'k' is disabled");
  EXPECT_EQ(ReasonOf(Error(reason::kResourceNotFound, "x")), "ResourceNotFoundException");
  // Without an ErrorInfo (a transport error): the code's name.
  EXPECT_EQ(FormatError(absl::UnavailableError("failed to connect")),
            "UNAVAILABLE: failed to connect");
  EXPECT_EQ(FormatError(absl::UnimplementedError("")), "UNIMPLEMENTED");
  EXPECT_EQ(FormatLocalError(kUsageReason, "--secret-id: required"),
            "UsageError: --secret-id: required");
  EXPECT_EQ(FormatLocalError(kConfigReason, ""), "ConfigurationError");
}

}  // namespace
}  // namespace coffer::cofferctl
