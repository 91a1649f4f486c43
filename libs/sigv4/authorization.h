// authorization.h: the SigV4 Authorization header and X-Amz-Date, parsed
// strictly and written the way botocore writes them.
//
//   AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,
//       SignedHeaders=host;x-amz-date, Signature=5fa00fa3...1d763fbf31   (one line)
//
//   COFFER_ASSIGN_OR_RETURN(Authorization auth, ParseAuthorization(header_value));
//   auth.scope.service   // "service"
//   COFFER_ASSIGN_OR_RETURN(absl::Time t, ParseAmzDate("20150830T123600Z"));
//
// Every parse error is IncompleteSignatureException (sigv4_error.h). Messages
// name what is wrong without repeating the header.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace coffer::sigv4 {

inline constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";
inline constexpr char kScopeTerminator[] = "aws4_request";
// More signed headers than any SDK sends (botocore signs four to six); a
// bound on the work one request can ask for.
inline constexpr size_t kMaxSignedHeaders = 64;
// Longest signed header name accepted.
inline constexpr size_t kMaxHeaderNameBytes = 256;

// The credential scope: the day, region and service a signature is for.
struct CredentialScope {
  std::string date;  // YYYYMMDD
  std::string region;
  std::string service;

  // "<date>/<region>/<service>/aws4_request", as in the string to sign.
  std::string ToString() const;
};

struct Authorization {
  std::string access_key_id;
  CredentialScope scope;
  // Lower-case, strictly ascending (so no repeats); always holds "host" and
  // "x-amz-date".
  std::vector<std::string> signed_headers;
  std::string signature;  // 64 lower-case hex digits
};

// Parses an Authorization header value: the algorithm, one or more spaces,
// then Credential=, SignedHeaders= and Signature=, each exactly once, in any
// order, separated by commas (spaces after a comma allowed). The credential
// is exactly <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request.
absl::StatusOr<Authorization> ParseAuthorization(absl::string_view header);

// The header value for `auth` ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=..."); ParseAuthorization reads it back when `auth` is valid.
std::string FormatAuthorization(const Authorization& auth);

// X-Amz-Date: ISO 8601 basic format in UTC, "YYYYMMDD'T'HHMMSS'Z'", a real
// calendar date and time.
absl::StatusOr<absl::Time> ParseAmzDate(absl::string_view value);
// The X-Amz-Date value of `t` (seconds truncated); `t` must be in years 0-9999.
std::string FormatAmzDate(absl::Time t);
// Whether FormatAmzDate can write `t`.
bool IsWithinAmzDateRange(absl::Time t);

// The syntax the parser accepts, shared with the signer so that whatever it
// signs parses: access key ids are 1-128 of [A-Za-z0-9_] (AWS's are 16-128
// of those); regions and services 1-64 of [A-Za-z0-9_-]; header names an
// RFC 9110 token of at most kMaxHeaderNameBytes (any case here: the signer
// lowercases, and the parser also requires lower case).
bool IsValidAccessKeyId(absl::string_view id);
bool IsValidScopeName(absl::string_view name);
bool IsValidHeaderName(absl::string_view name);

}  // namespace coffer::sigv4
