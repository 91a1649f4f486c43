// param_rules_testing.h: helpers shared by the parameter rules' tests.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer::store {

using C = absl::StatusCode;

inline const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14T22:13:20Z

// "" when the status is OK, else its reason.
inline std::string Reason(const absl::Status& s) { return s.ok() ? "" : ErrorReason(s); }

// The code a reason must come with (the header's table).
inline C CodeFor(absl::string_view r) {
  if (r == reason::kParameterNotFound || r == reason::kParameterVersionNotFound)
    return C::kNotFound;
  if (r == reason::kParameterAlreadyExists) return C::kAlreadyExists;
  if (r == reason::kParameterMaxVersionLimitExceeded) return C::kFailedPrecondition;
  if (r == reason::kParameterVersionLabelLimitExceeded || r == reason::kTooManyTagsError)
    return C::kResourceExhausted;
  return C::kInvalidArgument;
}

// `s` is OK when `reason` is "", else an error with that reason, its code
// and (when given) the field.
inline void ExpectResult(const absl::Status& s, const std::string& reason,
                         const std::string& field = "") {
  if (reason.empty()) {
    EXPECT_TRUE(s.ok()) << s;
    return;
  }
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Reason(s), reason) << s;
  EXPECT_EQ(s.code(), CodeFor(reason)) << s;
  if (!field.empty()) {
    ASSERT_TRUE(GetErrorDetail(s).has_value());
    EXPECT_EQ(GetErrorDetail(s)->field, field);
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(field));
  }
}

// "/l1/l2/.../ln".
inline std::string Levels(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) absl::StrAppend(&out, "/l", i);
  return out;
}

}  // namespace coffer::store
