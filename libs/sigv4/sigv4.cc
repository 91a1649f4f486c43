#include "libs/sigv4/sigv4.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/status_macros.h"

namespace coffer::sigv4 {
namespace {

// AWS's words for a mismatch, without the canonical request AWS appends.
constexpr char kMismatch[] =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";
constexpr char kInvalidToken[] = "The security token included in the request is invalid.";

absl::Status Invalid(absl::string_view message) {
  return MakeSigV4Error(SigV4Error::kInvalidSignature, message);
}

// "5 min." as AWS writes the skew, or seconds when it is not whole minutes.
std::string SkewText(absl::Duration skew) {
  const int64_t seconds = absl::ToInt64Seconds(skew);
  if (seconds % 60 == 0) return absl::StrCat(seconds / 60, " min.");
  return absl::StrCat(seconds, " s.");
}

bool Contains(const std::vector<std::string>& list, absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

struct AuthHeaders {
  size_t authorization_count = 0;
  absl::string_view authorization;
  size_t date_count = 0;
  absl::string_view date;
  bool session_token = false;
};

AuthHeaders FindAuthHeaders(absl::Span<const HttpHeader> headers) {
  AuthHeaders found;
  for (const HttpHeader& h : headers) {
    if (absl::EqualsIgnoreCase(h.name, "authorization")) {
      ++found.authorization_count;
      found.authorization = h.value;
    } else if (absl::EqualsIgnoreCase(h.name, "x-amz-date")) {
      ++found.date_count;
      found.date = h.value;
    } else if (absl::EqualsIgnoreCase(h.name, "x-amz-security-token")) {
      found.session_token = true;
    }
  }
  return found;
}

// The signed x-amz-content-sha256, when there is one, must be the body's
// hash: the canonical request holds the real hash either way, but a client
// that claims an unsigned or different payload did not sign this body.
absl::Status CheckContentSha256(const HttpRequestView& request, absl::string_view body_hash) {
  std::string value;
  bool present = false;
  for (const HttpHeader& h : request.headers) {
    if (!absl::EqualsIgnoreCase(h.name, "x-amz-content-sha256")) continue;
    if (present) value.push_back(',');
    present = true;
    value += CanonicalHeaderValue(h.value);
  }
  if (present && value == body_hash) return absl::OkStatus();
  return Invalid(
      "The signed x-amz-content-sha256 header must be the SHA-256 of the body (unsigned payloads "
      "are not accepted)");
}

absl::Status CheckScope(const CredentialScope& scope, absl::string_view amz_date,
                        const SigV4Options& options) {
  if (scope.date != amz_date.substr(0, 8)) {
    return Invalid(absl::StrCat(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '",
        scope.date, "' != '", amz_date.substr(0, 8), "', from '", amz_date, "'."));
  }
  if (!options.regions.empty() && !Contains(options.regions, scope.region)) {
    return Invalid(
        absl::StrCat("Credential should be scoped to a valid region, not '", scope.region, "'."));
  }
  if (!options.services.empty() && !Contains(options.services, scope.service)) {
    return Invalid(absl::StrCat("Credential should be scoped to correct service: one of '",
                                absl::StrJoin(options.services, "', '"), "', not '", scope.service,
                                "'."));
  }
  return absl::OkStatus();
}

absl::Status CheckSkew(absl::Time request_time, absl::string_view amz_date, absl::Time now,
                       absl::Duration skew) {
  if (request_time < now - skew) {
    return Invalid(absl::StrCat("Signature expired: ", amz_date, " is now earlier than ",
                                FormatAmzDate(now - skew), " (", FormatAmzDate(now), " - ",
                                SkewText(skew), ")"));
  }
  if (request_time > now + skew) {
    return Invalid(absl::StrCat("Signature not yet current: ", amz_date, " is still later than ",
                                FormatAmzDate(now + skew), " (", FormatAmzDate(now), " + ",
                                SkewText(skew), ")"));
  }
  return absl::OkStatus();
}

// Unknown and disabled keys are the client's problem; the store's own
// failures are not (see SecretKeyLookup).
absl::Status LookupFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnauthenticated:
      return MakeSigV4Error(SigV4Error::kUnrecognizedClient, kInvalidToken);
    default:
      return status;
  }
}

}  // namespace

bool VerifiedCaller::IsSigned(absl::string_view lower_case_name) const {
  return std::binary_search(signed_headers.begin(), signed_headers.end(), lower_case_name);
}

absl::StatusOr<VerifiedCaller> VerifySigV4(const HttpRequestView& request, absl::Time now,
                                           const SecretKeyLookup& keys,
                                           const SigV4Options& options) {
  const AuthHeaders found = FindAuthHeaders(request.headers);
  if (found.authorization_count == 0) {
    return MakeSigV4Error(SigV4Error::kMissingAuthenticationToken, "Missing Authentication Token");
  }
  if (found.authorization_count > 1) {
    return MakeSigV4Error(SigV4Error::kIncompleteSignature,
                          "The request has more than one Authorization header");
  }
  COFFER_ASSIGN_OR_RETURN(Authorization auth, ParseAuthorization(found.authorization));
  if (found.date_count != 1) {
    return MakeSigV4Error(SigV4Error::kIncompleteSignature,
                          found.date_count == 0
                              ? "Authorization header requires existence of an 'X-Amz-Date' header"
                              : "The request has more than one X-Amz-Date header");
  }
  // The value as signed (a server may keep surrounding spaces).
  const std::string amz_date = CanonicalHeaderValue(found.date);
  COFFER_ASSIGN_OR_RETURN(absl::Time request_time, ParseAmzDate(amz_date));
  if (found.session_token) {
    // Session tokens come from AWS STS; Coffer issues none, so none is valid.
    return MakeSigV4Error(SigV4Error::kUnrecognizedClient, kInvalidToken);
  }
  COFFER_RETURN_IF_ERROR(CheckScope(auth.scope, amz_date, options));
  COFFER_RETURN_IF_ERROR(CheckSkew(request_time, amz_date, now, options.max_clock_skew));

  const std::string body_hash = HexSha256(request.body);
  if (std::binary_search(auth.signed_headers.begin(), auth.signed_headers.end(),
                         "x-amz-content-sha256")) {
    COFFER_RETURN_IF_ERROR(CheckContentSha256(request, body_hash));
  }
  COFFER_ASSIGN_OR_RETURN(std::string canonical,
                          CanonicalRequest(request, auth.signed_headers, body_hash));
  const std::string string_to_sign = StringToSign(amz_date, auth.scope, canonical);

  // Only now, with a well-formed request, is the key store asked.
  absl::StatusOr<crypto::SecureBuffer> secret = keys.FindSecretKey(auth.access_key_id);
  if (!secret.ok()) return LookupFailure(secret.status());
  if (secret->empty()) return MakeSigV4Error(SigV4Error::kUnrecognizedClient, kInvalidToken);
  bool match;
  {
    const crypto::SecureBuffer signing_key = DeriveSigningKey(secret->view(), auth.scope);
    std::string expected = SignatureHex(signing_key, string_to_sign);
    match = crypto::ConstantTimeEquals(expected, auth.signature);
    crypto::Wipe(expected.data(), expected.size());
  }
  *secret = crypto::SecureBuffer();  // wiped now rather than at return
  if (!match) return Invalid(kMismatch);

  VerifiedCaller caller;
  caller.access_key_id = std::move(auth.access_key_id);
  caller.scope = std::move(auth.scope);
  caller.request_time = request_time;
  caller.signed_headers = std::move(auth.signed_headers);
  return caller;
}

absl::StatusOr<SignedAuthHeaders> SignRequest(const HttpRequestView& request,
                                              const SigningParams& params) {
  if (!IsValidAccessKeyId(params.access_key_id)) {
    return absl::InvalidArgumentError("access key id must be 1-128 letters, digits or '_'");
  }
  if (!IsValidScopeName(params.region) || !IsValidScopeName(params.service)) {
    return absl::InvalidArgumentError(
        "region and service must be 1-64 letters, digits, '-' or '_'");
  }
  if (!IsWithinAmzDateRange(params.time)) {
    return absl::InvalidArgumentError("signing time must be in the years 0-9999");
  }
  std::vector<std::string> names;
  names.reserve(request.headers.size() + 1);
  for (const HttpHeader& h : request.headers) {
    if (!IsValidHeaderName(h.name)) {
      return absl::InvalidArgumentError("every header name must be a token of at most 256 bytes");
    }
    std::string name = absl::AsciiStrToLower(h.name);
    if (name == "authorization" || name == "x-amz-date") {
      return absl::InvalidArgumentError("the request is already signed");
    }
    names.push_back(std::move(name));
  }
  names.push_back("x-amz-date");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (!std::binary_search(names.begin(), names.end(), "host")) {
    return absl::InvalidArgumentError("the request must have a Host header");
  }
  if (names.size() > kMaxSignedHeaders) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxSignedHeaders, " distinct headers can be signed"));
  }

  SignedAuthHeaders out;
  out.x_amz_date = FormatAmzDate(params.time);
  std::vector<HttpHeader> headers(request.headers.begin(), request.headers.end());
  headers.push_back({"X-Amz-Date", out.x_amz_date});
  HttpRequestView dated = request;
  dated.headers = headers;
  COFFER_ASSIGN_OR_RETURN(std::string canonical, CanonicalRequest(dated, names));

  Authorization auth;
  auth.access_key_id = std::string(params.access_key_id);
  auth.scope = CredentialScope{out.x_amz_date.substr(0, 8), std::string(params.region),
                               std::string(params.service)};
  auth.signed_headers = std::move(names);
  const crypto::SecureBuffer signing_key = DeriveSigningKey(params.secret_access_key, auth.scope);
  auth.signature = SignatureHex(signing_key, StringToSign(out.x_amz_date, auth.scope, canonical));
  out.authorization = FormatAuthorization(auth);
  return out;
}

}  // namespace coffer::sigv4
