// matchers.h: GoogleMock matchers for Coffer statuses.
//
//   EXPECT_THAT(store.GetSecretValue(req).status(),
//               coffer::testing::HasReason(coffer::reason::kResourceNotFound));
#pragma once

#include "gmock/gmock.h"
#include "libs/common/errors.h"

namespace coffer::testing {

// The status carries an ErrorInfo with this reason (the AWS exception name).
MATCHER_P(HasReason, reason, "") {
  *result_listener << "status " << arg;
  return ::coffer::ErrorReason(arg) == reason;
}

}  // namespace coffer::testing
