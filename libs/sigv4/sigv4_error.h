// sigv4_error.h: the four ways a SigV4 check fails, as AWS names them on the
// wire of its JSON 1.1 services (the "__type" of the error body), so the
// gateway can answer exactly what the AWS CLI and SDKs expect.
//
//   absl::StatusOr<VerifiedCaller> caller = VerifySigV4(...);
//   if (!caller.ok()) {
//     if (std::optional<SigV4Error> e = GetSigV4Error(caller.status())) {
//       Reply(HttpStatus(*e), AwsErrorType(*e), caller.status().message());
//     } else {
//       ...  // the key lookup's own failure (UNAVAILABLE...): a server error
//     }
//   }
//
// Every such status is UNAUTHENTICATED with the AWS name as its Coffer reason
// (libs/common/errors.h's ErrorDetail), like every other Coffer error.
// Messages never hold a secret key or the signature the server computed.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coffer::sigv4 {

namespace reason {
// Spelled as AWS's JSON services send them. AWS's "Common Errors" pages list
// the query-protocol codes ("IncompleteSignature", "MissingAuthenticationToken")
// with HTTP 403 for some; the JSON services (Secrets Manager, DynamoDB, KMS,
// Cloud9...) answer these "...Exception" types, all with HTTP 400, as seen in
// SDK bug reports (aws-sdk-cpp#2466, aws-sdk-js#254, aws-sdk-php#1780,
// cloud9-sync#10, dynalite#105).
inline constexpr char kMissingAuthenticationToken[] = "MissingAuthenticationTokenException";
inline constexpr char kIncompleteSignature[] = "IncompleteSignatureException";
inline constexpr char kInvalidSignature[] = "InvalidSignatureException";
inline constexpr char kUnrecognizedClient[] = "UnrecognizedClientException";
}  // namespace reason

enum class SigV4Error {
  // No Authorization header at all.
  kMissingAuthenticationToken,
  // The Authorization or X-Amz-Date header is malformed or incomplete.
  kIncompleteSignature,
  // The signature does not match, or the request is outside the allowed
  // clock skew, or its scope (date, region, service) is not accepted.
  kInvalidSignature,
  // The access key id is unknown or disabled, or a session token was sent.
  kUnrecognizedClient,
};

// The AWS exception name (the reason:: constant above).
absl::string_view AwsErrorType(SigV4Error error);

// The HTTP status AWS's JSON services answer: 400 for all four.
int HttpStatus(SigV4Error error);

// An UNAUTHENTICATED status with `error`'s reason and `message`.
absl::Status MakeSigV4Error(SigV4Error error, absl::string_view message);

// The SigV4Error of `status`, or nullopt when it is OK or is not one.
std::optional<SigV4Error> GetSigV4Error(const absl::Status& status);

}  // namespace coffer::sigv4
