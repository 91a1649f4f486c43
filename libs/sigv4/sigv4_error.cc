#include "libs/sigv4/sigv4_error.h"

#include <string>

#include "libs/common/errors.h"

namespace coffer::sigv4 {

absl::string_view AwsErrorType(SigV4Error error) {
  switch (error) {
    case SigV4Error::kMissingAuthenticationToken:
      return reason::kMissingAuthenticationToken;
    case SigV4Error::kIncompleteSignature:
      return reason::kIncompleteSignature;
    case SigV4Error::kInvalidSignature:
      return reason::kInvalidSignature;
    case SigV4Error::kUnrecognizedClient:
      return reason::kUnrecognizedClient;
  }
  return reason::kInvalidSignature;  // unreachable: every enumerator is handled
}

int HttpStatus(SigV4Error error) {
  // AWS JSON 1.1 services answer every authentication failure with 400
  // (see sigv4_error.h); kept per error so a change stays in one place.
  (void)error;
  return 400;
}

absl::Status MakeSigV4Error(SigV4Error error, absl::string_view message) {
  return ErrorWithCode(absl::StatusCode::kUnauthenticated, AwsErrorType(error), message);
}

std::optional<SigV4Error> GetSigV4Error(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnauthenticated) return std::nullopt;
  const std::string r = ErrorReason(status);
  for (SigV4Error e : {SigV4Error::kMissingAuthenticationToken, SigV4Error::kIncompleteSignature,
                       SigV4Error::kInvalidSignature, SigV4Error::kUnrecognizedClient}) {
    if (r == AwsErrorType(e)) return e;
  }
  return std::nullopt;
}

}  // namespace coffer::sigv4
