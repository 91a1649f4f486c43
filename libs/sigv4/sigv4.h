// sigv4.h: AWS Signature Version 4 — verifying a signed HTTP request (what
// coffer-gateway will do for every AWS JSON 1.1 call) and signing one (for
// tests and benchmarks), over the same canonicalization code.
//
// Verifying (the gateway):
//   coffer::sigv4::SigV4Options options;  // any region; secretsmanager, ssm, kms; 5 min skew
//   absl::StatusOr<coffer::sigv4::VerifiedCaller> caller =
//       coffer::sigv4::VerifySigV4(request, clock.Now(), access_keys, options);
//   if (!caller.ok()) return ReplyAwsError(caller.status());   // see sigv4_error.h
//   // caller->access_key_id names the identity; caller->scope.service says
//   // which API the client signed for; only caller->signed_headers are trusted.
//
// Signing (a test or benchmark client):
//   COFFER_ASSIGN_OR_RETURN(coffer::sigv4::SignedAuthHeaders auth,
//                           coffer::sigv4::SignRequest(request, {"AKID...", secret, "local",
//                                                                "secretsmanager", now}));
//   headers.push_back({"X-Amz-Date", auth.x_amz_date});
//   headers.push_back({"Authorization", auth.authorization});
//
// What is checked, in order: one Authorization header (none:
// MissingAuthenticationTokenException); its syntax; one well-formed
// X-Amz-Date (both IncompleteSignatureException); no session token
// (Coffer issues none: UnrecognizedClientException); the scope's date is
// X-Amz-Date's day, its region and service are accepted, the time is within
// the skew (InvalidSignatureException); the access key is known
// (UnrecognizedClientException); a signed x-amz-content-sha256 is the body's
// hash (UNSIGNED-PAYLOAD is refused: bodies must be signed); every signed
// header is present; the signature, compared in constant time
// (InvalidSignatureException). Only the Date-less, header-signed form is
// accepted: no presigned query strings, no `Date` header, no chunked
// payload signing.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/sigv4/authorization.h"
#include "libs/sigv4/canonical.h"
#include "libs/sigv4/digest.h"
#include "libs/sigv4/http_request.h"
#include "libs/sigv4/sigv4_error.h"

namespace coffer::sigv4 {

struct SigV4Options {
  // Regions a scope may name; empty accepts any (the AWS CLI signs with
  // whatever region its user configured; Coffer's own is "local").
  std::vector<std::string> regions;
  // Services a scope may name; empty accepts any.
  std::vector<std::string> services = {"secretsmanager", "ssm", "kms"};
  // How far X-Amz-Date may be from the server's clock, either way (AWS: 5
  // minutes for these services).
  absl::Duration max_clock_skew = absl::Minutes(5);
};

// Where secret access keys come from (the gateway: Coffer's access-key
// store, the secrets stored encrypted by the KMS).
class SecretKeyLookup {
 public:
  virtual ~SecretKeyLookup() = default;

  // The secret access key of the enabled access key `access_key_id`.
  // NOT_FOUND when there is no such key; PERMISSION_DENIED,
  // FAILED_PRECONDITION or UNAUTHENTICATED when it is disabled or otherwise
  // refused: VerifySigV4 answers those UnrecognizedClientException. Any other
  // error (UNAVAILABLE when the store cannot be reached...) is returned by
  // VerifySigV4 unchanged: the client's credentials may be fine, so it must
  // not be told they are not.
  virtual absl::StatusOr<crypto::SecureBuffer> FindSecretKey(
      absl::string_view access_key_id) const = 0;
};

// Who signed a request that verified, and for what.
struct VerifiedCaller {
  std::string access_key_id;
  CredentialScope scope;    // date, region and service signed for
  absl::Time request_time;  // X-Amz-Date
  // Lower-case, ascending: the headers whose values the signature covers.
  // The gateway requires "x-amz-target" among them before it believes it.
  std::vector<std::string> signed_headers;

  bool IsSigned(absl::string_view lower_case_name) const;
};

// Verifies the SigV4 signature of `request` at server time `now`. The
// secret returned by `keys` and every key derived from it are wiped before
// this returns. Errors are the SigV4Error statuses of sigv4_error.h, or a
// lookup error passed through (see SecretKeyLookup).
absl::StatusOr<VerifiedCaller> VerifySigV4(const HttpRequestView& request, absl::Time now,
                                           const SecretKeyLookup& keys,
                                           const SigV4Options& options = {});

struct SigningParams {
  absl::string_view access_key_id;
  absl::string_view secret_access_key;
  absl::string_view region;
  absl::string_view service;
  absl::Time time;
};

// The two headers a client adds to sign a request.
struct SignedAuthHeaders {
  std::string x_amz_date;
  std::string authorization;
};

// Signs `request` — every header it has (which must include Host, and not
// Authorization or X-Amz-Date) plus the X-Amz-Date this adds — as botocore
// would. INVALID_ARGUMENT when the request or the parameters cannot be
// signed so that VerifySigV4 parses them (see authorization.h for the
// syntax; at most kMaxSignedHeaders distinct header names).
absl::StatusOr<SignedAuthHeaders> SignRequest(const HttpRequestView& request,
                                              const SigningParams& params);

}  // namespace coffer::sigv4
