#include "tools/cofferctl/failures.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"

namespace coffer::cofferctl {

ExitCode ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    // No answer from the service, or not one that says what went wrong:
    // the same request may succeed later.
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnknown:
      return kExitNoAnswer;
    default:
      return kExitService;
  }
}

std::string ReasonOf(const absl::Status& status) {
  if (std::optional<ErrorDetail> detail = GetErrorDetail(status);
      detail.has_value() && !detail->reason.empty()) {
    return detail->reason;
  }
  return absl::StatusCodeToString(status.code());
}

std::string FormatError(const absl::Status& status) {
  return FormatLocalError(ReasonOf(status), status.message());
}

std::string FormatLocalError(absl::string_view reason, absl::string_view message) {
  if (message.empty()) return std::string(reason);
  return absl::StrCat(reason, ": ", message);
}

}  // namespace coffer::cofferctl
