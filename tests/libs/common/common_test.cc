#include <set>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/json.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"

namespace coffer {
namespace {

TEST(ErrorsTest, ReasonsMapToTheSpecifiedCodes) {
  using C = absl::StatusCode;
  const std::vector<std::pair<const char*, C>> table = {
      {reason::kResourceNotFound, C::kNotFound},
      {reason::kResourceExists, C::kAlreadyExists},
      {reason::kInvalidParameter, C::kInvalidArgument},
      {reason::kInvalidRequest, C::kFailedPrecondition},
      {reason::kInvalidNextToken, C::kInvalidArgument},
      {reason::kLimitExceeded, C::kResourceExhausted},
      {reason::kThrottling, C::kResourceExhausted},
      {reason::kNoSuchEntity, C::kNotFound},
      {reason::kIamLimitExceeded, C::kResourceExhausted},
      {reason::kPreconditionNotMet, C::kFailedPrecondition},
      {reason::kMalformedPolicyDocument, C::kInvalidArgument},
      {reason::kDecryptionFailure, C::kDataLoss},
      {reason::kAccessDenied, C::kPermissionDenied},
      {reason::kInternal, C::kInternal},
      {reason::kNotFound, C::kNotFound},
      {reason::kDisabled, C::kFailedPrecondition},
      {reason::kInvalidState, C::kFailedPrecondition},
      {reason::kInvalidCiphertext, C::kInvalidArgument},
      {reason::kIncorrectKey, C::kInvalidArgument},
      {reason::kAlreadyExists, C::kAlreadyExists},
      {reason::kInvalidAliasName, C::kInvalidArgument},
      {reason::kValidation, C::kInvalidArgument},
  };
  for (const auto& [r, code] : table) EXPECT_EQ(ReasonCode(r), code) << r;
  EXPECT_EQ(ReasonCode("SomethingUnknown"), C::kInternal);
}

TEST(ErrorsTest, DetailTravelsWithTheStatus) {
  absl::Status s = Error(reason::kNotFound, "Key 'k' does not exist", "k", "key_id");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "Key 'k' does not exist");
  auto detail = GetErrorDetail(s);
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->reason, reason::kNotFound);
  EXPECT_EQ(detail->resource, "k");
  EXPECT_EQ(detail->field, "key_id");
  EXPECT_EQ(ErrorReason(absl::InternalError("plain")), "");
  EXPECT_EQ(ErrorReason(absl::OkStatus()), "");

  absl::Status field = InvalidField("plaintext", "must be 1-4096 bytes");
  EXPECT_EQ(field.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(field.message(), "plaintext: must be 1-4096 bytes");
  EXPECT_EQ(ErrorReason(field), reason::kValidation);

  absl::Status explicit_code = ErrorWithCode(absl::StatusCode::kFailedPrecondition,
                                             reason::kEncryptionFailure, "key disabled");
  EXPECT_EQ(explicit_code.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(explicit_code), reason::kEncryptionFailure);
}

absl::StatusOr<int> Half(int v) {
  if (v % 2) return absl::InvalidArgumentError("odd");
  return v / 2;
}

absl::Status Quarter(int v, int* out) {
  COFFER_ASSIGN_OR_RETURN(int h, Half(v));
  COFFER_ASSIGN_OR_RETURN(*out, Half(h));
  COFFER_RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, ReturnEarlyOnError) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).code(), absl::StatusCode::kInvalidArgument);
}

TEST(IdsTest, UuidsAreV4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUuid();
    ASSERT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("3f2b1c4d-1234-4abc-8def-0123456789ag"));
}

TEST(IdsTest, RandomAlnumUsesOnlyTheAlphabet) {
  std::string s = RandomAlnum(6000);
  ASSERT_EQ(s.size(), 6000u);
  std::set<char> distinct(s.begin(), s.end());
  for (char c : distinct) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << c;
  EXPECT_EQ(distinct.size(), 62u);
}

TEST(JsonTest, QuotesAndEscapes) {
  EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\te"), "\"a\\\"b\\\\c\\nd\\te\"");
  EXPECT_EQ(JsonQuote(std::string("\x01", 1)), "\"\\u0001\"");
  EXPECT_EQ(JsonQuote("h\xc3\xa9llo"), "\"h\xc3\xa9llo\"");  // valid UTF-8 kept
  EXPECT_EQ(JsonQuote("bad\xff"), "\"bad\\ufffd\"");
  EXPECT_EQ(JsonQuote("\xc3"), "\"\\ufffd\"");  // truncated sequence
}

TEST(LogTest, LinesAreJsonWithFieldsInOrder) {
  std::string line = log::FormatLine(absl::FromUnixSeconds(0), log::Level::kWarn, "kms",
                                     "sweeper \"failed\"", {{"keys", "3"}, {"error", "x"}});
  EXPECT_EQ(line,
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"warn\",\"component\":\"kms\","
            "\"message\":\"sweeper \\\"failed\\\"\",\"keys\":\"3\",\"error\":\"x\"}");
  log::Level level;
  EXPECT_TRUE(log::ParseLevel("debug", &level));
  EXPECT_EQ(level, log::Level::kDebug);
  EXPECT_FALSE(log::ParseLevel("loud", &level));
}

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.Set(absl::FromUnixSeconds(7));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(7));
  EXPECT_GT(RealClock()->Now(), absl::FromUnixSeconds(1'600'000'000));
}

}  // namespace
}  // namespace coffer
