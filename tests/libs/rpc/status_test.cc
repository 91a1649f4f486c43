#include "libs/rpc/status.h"

#include <gtest/gtest.h>

#include "coffer/v1/error.pb.h"
#include "google/rpc/status.pb.h"
#include "libs/common/errors.h"
#include "libs/rpc/client_call.h"

namespace coffer::rpc {
namespace {

TEST(StatusTest, OkBothWays) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusTest, RoundTripKeepsCodeMessageAndDetail) {
  absl::Status original = coffer::Error(reason::kDisabled, "Key 'k1' is disabled", "k1", "key_id");
  grpc::Status wire = ToGrpcStatus(original);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(wire.error_message(), "Key 'k1' is disabled");

  absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(back.message(), "Key 'k1' is disabled");
  std::optional<ErrorDetail> detail = GetErrorDetail(back);
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->reason, "DisabledException");
  EXPECT_EQ(detail->resource, "k1");
  EXPECT_EQ(detail->field, "key_id");
  EXPECT_EQ(ErrorReason(back), reason::kDisabled);
}

TEST(StatusTest, BytesThatAreNotUtf8KeepTheReason) {
  // A resource or message with a stray byte (a name the caller sent) must not
  // make the details unparseable: the reason is what clients branch on.
  const std::string bad = std::string("secret-\xff\xc0-name");
  absl::Status original =
      coffer::Error(reason::kResourceNotFound, "can't find " + bad, bad, "secret_id");
  ASSERT_EQ(ErrorReason(original), reason::kResourceNotFound);
  absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(ErrorReason(back), reason::kResourceNotFound);
  std::optional<ErrorDetail> detail = GetErrorDetail(back);
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->resource, "secret-\xef\xbf\xbd\xef\xbf\xbd-name");
  EXPECT_EQ(back.message(), "can't find secret-\xef\xbf\xbd\xef\xbf\xbd-name");
}

TEST(StatusTest, DetailsAreAStandardGoogleRpcStatus) {
  grpc::Status wire = ToGrpcStatus(InvalidField("plaintext", "must be 1-4096 bytes"));
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(wire.error_details()));
  EXPECT_EQ(rich.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(rich.message(), "plaintext: must be 1-4096 bytes");
  ASSERT_EQ(rich.details_size(), 1);
  EXPECT_EQ(rich.details(0).type_url(), kErrorInfoTypeUrl);
  coffer::v1::ErrorInfo info;
  ASSERT_TRUE(rich.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), reason::kValidation);
  EXPECT_EQ(info.field(), "plaintext");
}

TEST(StatusTest, PlainStatusesHaveNoDetail) {
  absl::Status back = FromGrpcStatus(ToGrpcStatus(absl::UnavailableError("down")));
  EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(back.message(), "down");
  EXPECT_FALSE(GetErrorDetail(back).has_value());

  // A foreign status without (or with garbage) details keeps code and text.
  absl::Status foreign =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "nope", "\xff\xff garbage"));
  EXPECT_EQ(foreign.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(foreign.message(), "nope");
  EXPECT_EQ(ErrorReason(foreign), "");
}

TEST(ClientStatusTest, TransportFailuresBecomeUnavailableNamingThePeer) {
  EXPECT_TRUE(ClientStatus(grpc::Status::OK, "coffer-kms").ok());
  for (grpc::StatusCode code :
       {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::DEADLINE_EXCEEDED}) {
    absl::Status s = ClientStatus(grpc::Status(code, "failed to connect"), "coffer-kms");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(s.message(), "coffer-kms unavailable: failed to connect");
    EXPECT_EQ(ErrorReason(s), reason::kUnavailable);
  }
}

TEST(ClientStatusTest, ErrorsOfThePeerKeepCodeAndReason) {
  // UNAVAILABLE with a reason is the peer's own answer, not a transport failure.
  absl::Status kms_down = ErrorWithCode(absl::StatusCode::kUnavailable, reason::kEncryptionFailure,
                                        "the KMS is unreachable");
  absl::Status s = ClientStatus(ToGrpcStatus(kms_down), "coffer-store");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "the KMS is unreachable");
  EXPECT_EQ(ErrorReason(s), reason::kEncryptionFailure);

  s = ClientStatus(ToGrpcStatus(Error(reason::kDisabled, "Key 'k1' is disabled", "k1")),
                   "coffer-kms");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(s), reason::kDisabled);

  // Other codes without a reason pass through unchanged.
  s = ClientStatus(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"), "coffer-kms");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "no");
  EXPECT_EQ(ErrorReason(s), "");
}

}  // namespace
}  // namespace coffer::rpc
