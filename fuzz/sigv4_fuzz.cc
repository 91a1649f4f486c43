// sigv4_fuzz: VerifySigV4 on fuzzed HTTP requests (sigv4_request_text.h:
// any method, path, query, headers — the Authorization and X-Amz-Date
// among them — and body) against a fixed clock and key store, and the same
// request re-signed by SignRequest. Properties: every refusal is one of the
// four SigV4 errors (or the store's own UNAVAILABLE, passed through) and
// its message never holds the secret; a request that verifies was signed by
// the known key within the skew, and fails once its body changes; whatever
// SignRequest signs verifies, names exactly the request's headers, and fails
// with a changed body; ParseAuthorization and FormatAuthorization round-trip;
// the canonical query string is a fixed point.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/sigv4_request_text.h"
#include "libs/sigv4/sigv4.h"

namespace {

namespace sigv4 = coffer::sigv4;
using coffer::fuzz::kSigv4FuzzAccessKeyId;
using coffer::fuzz::kSigv4FuzzSecret;
using coffer::fuzz::RequestText;

class FixedKeys : public sigv4::SecretKeyLookup {
 public:
  absl::StatusOr<coffer::crypto::SecureBuffer> FindSecretKey(absl::string_view id) const override {
    if (id == kSigv4FuzzAccessKeyId) return coffer::crypto::SecureBuffer::Copy(kSigv4FuzzSecret);
    if (id == coffer::fuzz::kSigv4FuzzUnavailableKeyId) {
      return absl::UnavailableError("access-key store unreachable");
    }
    if (id == coffer::fuzz::kSigv4FuzzDisabledKeyId) {
      return absl::FailedPreconditionError("disabled");
    }
    return absl::NotFoundError("no such access key");
  }
};

absl::StatusOr<sigv4::VerifiedCaller> Verify(RequestText& r, absl::Time now) {
  static const FixedKeys* const kKeys = new FixedKeys;
  return sigv4::VerifySigV4(r.View(), now, *kKeys);
}

void CheckRefusal(const absl::Status& status) {
  FUZZ_CHECK(!absl::StrContains(status.message(), kSigv4FuzzSecret), "message holds the secret");
  if (sigv4::GetSigV4Error(status).has_value()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kUnauthenticated,
               "SigV4 errors: UNAUTHENTICATED");
    return;
  }
  FUZZ_CHECK(absl::IsUnavailable(status), "only the store's UNAVAILABLE passes through");
}

// A changed body changes the signed hash: always refused, as a mismatch.
void CheckBodyTamperRefused(RequestText& r, absl::Time now) {
  r.body.push_back('x');
  absl::StatusOr<sigv4::VerifiedCaller> caller = Verify(r, now);
  r.body.pop_back();
  FUZZ_CHECK(!caller.ok(), "a changed body verifies");
  FUZZ_CHECK(sigv4::GetSigV4Error(caller.status()) == sigv4::SigV4Error::kInvalidSignature,
             "a changed body is InvalidSignatureException");
}

void CheckVerified(const sigv4::VerifiedCaller& caller, absl::Time now) {
  FUZZ_CHECK(caller.access_key_id == kSigv4FuzzAccessKeyId, "only the known key verifies");
  FUZZ_CHECK(caller.scope.service == "secretsmanager" || caller.scope.service == "ssm" ||
                 caller.scope.service == "kms",
             "only the accepted services verify");
  FUZZ_CHECK(absl::AbsDuration(caller.request_time - now) <= absl::Minutes(5), "skew");
  FUZZ_CHECK(caller.IsSigned("host") && caller.IsSigned("x-amz-date"), "host and date signed");
}

bool IsAuthHeader(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "authorization") ||
         absl::EqualsIgnoreCase(name, "x-amz-date") ||
         absl::EqualsIgnoreCase(name, "x-amz-security-token") ||
         absl::EqualsIgnoreCase(name, "x-amz-content-sha256");
}

// The request stripped of its authentication, signed again: it must verify.
void CheckResigned(const RequestText& fuzzed, absl::Time now, absl::string_view service) {
  RequestText r = fuzzed;
  r.headers.erase(std::remove_if(r.headers.begin(), r.headers.end(),
                                 [](const auto& h) { return IsAuthHeader(h.first); }),
                  r.headers.end());
  absl::StatusOr<sigv4::SignedAuthHeaders> auth = sigv4::SignRequest(
      r.View(), {kSigv4FuzzAccessKeyId, kSigv4FuzzSecret, "local", service, now});
  if (!auth.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(auth.status()), "SignRequest refuses as INVALID_ARGUMENT");
    return;
  }
  std::vector<std::string> names = {"x-amz-date"};
  for (const auto& h : r.headers) names.push_back(absl::AsciiStrToLower(h.first));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  r.headers.emplace_back("X-Amz-Date", auth->x_amz_date);
  r.headers.emplace_back("Authorization", auth->authorization);
  for (absl::Time at : {now, now - absl::Minutes(5), now + absl::Minutes(5)}) {
    absl::StatusOr<sigv4::VerifiedCaller> caller = Verify(r, at);
    FUZZ_CHECK(caller.ok(), "a request SignRequest signed does not verify");
    FUZZ_CHECK(caller->scope.service == service && caller->scope.region == "local", "scope");
    FUZZ_CHECK(caller->signed_headers == names, "signed headers are the request's");
  }
  CheckBodyTamperRefused(r, now);
  absl::StatusOr<sigv4::VerifiedCaller> late = Verify(r, now + absl::Minutes(5) + absl::Seconds(1));
  FUZZ_CHECK(sigv4::GetSigV4Error(late.status()) == sigv4::SigV4Error::kInvalidSignature,
             "past the skew is InvalidSignatureException");
}

void CheckAuthorizationRoundTrip(absl::string_view header) {
  absl::StatusOr<sigv4::Authorization> auth = sigv4::ParseAuthorization(header);
  if (!auth.ok()) {
    FUZZ_CHECK(sigv4::GetSigV4Error(auth.status()) == sigv4::SigV4Error::kIncompleteSignature,
               "parse errors are IncompleteSignatureException");
    return;
  }
  FUZZ_CHECK(auth->signed_headers.size() <= sigv4::kMaxSignedHeaders, "signed header bound");
  const std::string formatted = sigv4::FormatAuthorization(*auth);
  absl::StatusOr<sigv4::Authorization> again = sigv4::ParseAuthorization(formatted);
  FUZZ_CHECK(again.ok(), "a formatted Authorization parses");
  FUZZ_CHECK(sigv4::FormatAuthorization(*again) == formatted, "Authorization round trip");
}

void CheckCanonicalForms(const RequestText& r) {
  const std::string query = sigv4::CanonicalQueryString(r.query);
  FUZZ_CHECK(sigv4::CanonicalQueryString(query) == query, "canonical query is a fixed point");
  const std::string uri = sigv4::CanonicalUri(r.path);
  FUZZ_CHECK(!uri.empty(), "canonical URI is never empty");
  for (char c : uri) {
    FUZZ_CHECK(absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                   absl::string_view("-._~/%").find(c) != absl::string_view::npos,
               "canonical URI is encoded");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text = coffer::fuzz::AsText(data, size);
  RequestText r = coffer::fuzz::ParseRequestText(text);
  const absl::Time now = coffer::fuzz::Sigv4FuzzNow();

  absl::StatusOr<sigv4::VerifiedCaller> caller = Verify(r, now);
  if (caller.ok()) {
    CheckVerified(*caller, now);
    CheckBodyTamperRefused(r, now);
  } else {
    CheckRefusal(caller.status());
  }

  for (const auto& h : r.headers) {
    if (absl::EqualsIgnoreCase(h.first, "authorization")) CheckAuthorizationRoundTrip(h.second);
  }
  CheckAuthorizationRoundTrip(text.substr(0, text.find('\n')));
  CheckCanonicalForms(r);

  const absl::string_view services[] = {"secretsmanager", "ssm", "kms"};
  CheckResigned(r, now, services[size % 3]);
  return 0;
}
