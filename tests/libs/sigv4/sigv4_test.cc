// VerifySigV4 and SignRequest: a request signed by botocore as the AWS CLI
// signs it, and every refusal with its precise error.
#include "libs/sigv4/sigv4.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "tests/libs/sigv4/http_text.h"

namespace coffer::sigv4 {
namespace {

using ::testing::HasSubstr;
using testing::OwnedRequest;

constexpr char kAccessKeyId[] = "AKIACOFFEREXAMPLE01";
constexpr char kSecret[] = "cOfFeR/eXaMpLe+SeCrEt/KeY0123456789abcdE";
constexpr char kAmzDate[] = "20240517T093000Z";
constexpr char kBody[] = "{\"SecretId\": \"prod/orders/db\"}";

absl::Time SignedAt() { return *ParseAmzDate(kAmzDate); }

// The AWS CLI's `secretsmanager get-secret-value --secret-id prod/orders/db`
// against https://127.0.0.1:7704, as botocore 1.29.27 (Debian 12's
// python3-botocore) signed it at a fixed time. Made once with:
//
//   import datetime
//   from unittest import mock
//   import botocore.session
//   class Stop(Exception): pass
//   def before_send(request, **kwargs):
//       print(request.method, request.url)
//       for k, v in request.headers.items(): print(k, v)
//       print(request.body)
//       raise Stop()
//   with mock.patch('botocore.auth.datetime') as dt:
//       dt.datetime.utcnow.return_value = datetime.datetime(2024, 5, 17, 9, 30, 0)
//       client = botocore.session.get_session().create_client(
//           'secretsmanager', region_name='local', endpoint_url='https://127.0.0.1:7704',
//           aws_access_key_id='AKIACOFFEREXAMPLE01',
//           aws_secret_access_key='cOfFeR/eXaMpLe+SeCrEt/KeY0123456789abcdE')
//       client.meta.events.register('before-send', before_send)
//       try: client.get_secret_value(SecretId='prod/orders/db')
//       except Stop: pass
//
// The Host header is the one urllib3 adds from the URL (botocore signs the
// same value, the port included).
OwnedRequest BotocoreRequest() {
  OwnedRequest r;
  r.method = "POST";
  r.path = "/";
  r.Add("X-Amz-Target", "secretsmanager.GetSecretValue");
  r.Add("Content-Type", "application/x-amz-json-1.1");
  r.Add("User-Agent", "Botocore/1.29.27 Python/3.11.2 Linux/6.18.44-fc-v669");
  r.Add("X-Amz-Date", kAmzDate);
  r.Add("Authorization",
        "AWS4-HMAC-SHA256 Credential=AKIACOFFEREXAMPLE01/20240517/local/secretsmanager/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        "Signature=4d24857778aed97b76dbc914bd913a89cafcf48c2adc9341ee032ed1779633a3");
  r.Add("amz-sdk-invocation-id", "92bedc53-51cd-4474-8064-2be9bf3fde10");
  r.Add("amz-sdk-request", "attempt=1");
  r.Add("Content-Length", "30");
  r.Add("Host", "127.0.0.1:7704");
  r.body = kBody;
  return r;
}
constexpr char kBotocoreSignature[] =
    "4d24857778aed97b76dbc914bd913a89cafcf48c2adc9341ee032ed1779633a3";
// botocore's SigV4Auth.canonical_request for it.
constexpr char kBotocoreCanonicalRequest[] =
    "POST\n/\n\n"
    "content-type:application/x-amz-json-1.1\n"
    "host:127.0.0.1:7704\n"
    "x-amz-date:20240517T093000Z\n"
    "x-amz-target:secretsmanager.GetSecretValue\n\n"
    "content-type;host;x-amz-date;x-amz-target\n"
    "9b56a25d1d15aa960e98cf5188843abd6941ef322c4a32b0a14b29d899366dcc";

class FakeKeys : public SecretKeyLookup {
 public:
  FakeKeys() { secrets_[kAccessKeyId] = kSecret; }

  void Fail(std::string id, absl::Status status) { failures_[std::move(id)] = std::move(status); }
  int calls() const { return calls_; }

  absl::StatusOr<crypto::SecureBuffer> FindSecretKey(absl::string_view id) const override {
    ++calls_;
    if (auto f = failures_.find(std::string(id)); f != failures_.end()) return f->second;
    auto it = secrets_.find(std::string(id));
    if (it == secrets_.end()) return absl::NotFoundError("no such access key");
    return crypto::SecureBuffer::Copy(it->second);
  }

 private:
  std::map<std::string, std::string> secrets_;
  std::map<std::string, absl::Status> failures_;
  mutable int calls_ = 0;
};

// A GetSecretValue request signed by SignRequest (Host, Content-Type,
// X-Amz-Target), then an unsigned User-Agent added as clients do.
OwnedRequest SignedRequest(absl::string_view region = "local",
                           absl::string_view service = "secretsmanager",
                           absl::Time at = SignedAt()) {
  OwnedRequest r;
  r.method = "POST";
  r.path = "/";
  r.Add("Host", "127.0.0.1:7704");
  r.Add("Content-Type", "application/x-amz-json-1.1");
  r.Add("X-Amz-Target", "secretsmanager.GetSecretValue");
  r.body = kBody;
  absl::StatusOr<SignedAuthHeaders> auth =
      SignRequest(r.View(), {kAccessKeyId, kSecret, region, service, at});
  EXPECT_TRUE(auth.ok()) << auth.status();
  r.Add("X-Amz-Date", auth->x_amz_date);
  r.Add("Authorization", auth->authorization);
  r.Add("User-Agent", "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0 source/x86_64.debian.12");
  return r;
}

class VerifyTest : public ::testing::Test {
 protected:
  absl::StatusOr<VerifiedCaller> Verify(OwnedRequest& r, absl::Time now = SignedAt()) {
    absl::StatusOr<VerifiedCaller> caller = VerifySigV4(r.View(), now, keys_, options_);
    if (!caller.ok()) CheckMessageLeaksNothing(caller.status());
    return caller;
  }

  // Verify refuses `r` with `error` and a message holding `what`.
  void ExpectRefused(OwnedRequest& r, SigV4Error error, absl::string_view what,
                     absl::Time now = SignedAt()) {
    absl::StatusOr<VerifiedCaller> caller = Verify(r, now);
    ASSERT_FALSE(caller.ok());
    EXPECT_EQ(GetSigV4Error(caller.status()), error) << caller.status();
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(ErrorReason(caller.status()), AwsErrorType(error));
    EXPECT_THAT(caller.status().message(), HasSubstr(what));
  }

  // No message may hold the secret or any signature (64 hex digits): not
  // the one sent, and above all not the one the server computed.
  static void CheckMessageLeaksNothing(const absl::Status& status) {
    const std::string message(status.message());
    EXPECT_FALSE(absl::StrContains(message, kSecret)) << message;
    size_t run = 0;
    for (char c : message) {
      run = absl::ascii_isxdigit(static_cast<unsigned char>(c)) ? run + 1 : 0;
      EXPECT_LT(run, 64u) << message;
    }
  }

  static void ReplaceHeader(OwnedRequest& r, absl::string_view name, std::string value) {
    for (auto& h : r.headers) {
      if (absl::EqualsIgnoreCase(h.first, name)) h.second = value;
    }
  }

  FakeKeys keys_;
  SigV4Options options_;  // any region; secretsmanager, ssm, kms; 5 minutes
};

TEST_F(VerifyTest, AcceptsBotocoresGetSecretValue) {
  OwnedRequest r = BotocoreRequest();
  absl::StatusOr<Authorization> auth = ParseAuthorization(r.Get("Authorization"));
  ASSERT_TRUE(auth.ok());
  absl::StatusOr<std::string> canonical = CanonicalRequest(r.View(), auth->signed_headers);
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(*canonical, kBotocoreCanonicalRequest);

  absl::StatusOr<VerifiedCaller> caller = Verify(r);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->access_key_id, kAccessKeyId);
  EXPECT_EQ(caller->scope.date, "20240517");
  EXPECT_EQ(caller->scope.region, "local");
  EXPECT_EQ(caller->scope.service, "secretsmanager");
  EXPECT_EQ(caller->request_time, SignedAt());
  EXPECT_TRUE(caller->IsSigned("x-amz-target"));
  EXPECT_TRUE(caller->IsSigned("content-type"));
  EXPECT_FALSE(caller->IsSigned("user-agent"));
  EXPECT_FALSE(caller->IsSigned("content-length"));
  EXPECT_EQ(keys_.calls(), 1);

  options_.regions = {"local", "us-east-1"};
  EXPECT_TRUE(Verify(r, SignedAt() + absl::Minutes(4) + absl::Seconds(59)).ok());
}

TEST_F(VerifyTest, SignRequestSignsAsBotocoreDoes) {
  OwnedRequest r = BotocoreRequest();
  const std::string want = r.Get("Authorization");
  for (absl::string_view unsigned_header :
       {"Authorization", "X-Amz-Date", "User-Agent", "amz-sdk-invocation-id", "amz-sdk-request",
        "Content-Length"}) {
    r.Remove(unsigned_header);
  }
  absl::StatusOr<SignedAuthHeaders> auth =
      SignRequest(r.View(), {kAccessKeyId, kSecret, "local", "secretsmanager", SignedAt()});
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->x_amz_date, kAmzDate);
  EXPECT_EQ(auth->authorization, want);
}

TEST_F(VerifyTest, AcceptsWhatSignRequestSigns) {
  OwnedRequest r = SignedRequest();
  absl::StatusOr<VerifiedCaller> caller = Verify(r);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->scope.service, "secretsmanager");
  for (absl::string_view service : {"ssm", "kms"}) {
    OwnedRequest other = SignedRequest("local", service);
    absl::StatusOr<VerifiedCaller> c = Verify(other);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->scope.service, service);  // the caller learns which API was signed for
  }
}

TEST_F(VerifyTest, NoAuthorizationHeaderIsMissingAuthenticationToken) {
  OwnedRequest r = SignedRequest();
  r.Remove("Authorization");
  ExpectRefused(r, SigV4Error::kMissingAuthenticationToken, "Missing Authentication Token");
  EXPECT_EQ(AwsErrorType(SigV4Error::kMissingAuthenticationToken),
            "MissingAuthenticationTokenException");
  EXPECT_EQ(HttpStatus(SigV4Error::kMissingAuthenticationToken), 400);
  EXPECT_EQ(keys_.calls(), 0);
}

TEST_F(VerifyTest, MalformedAuthorizationIsIncompleteSignature) {
  OwnedRequest base = SignedRequest();
  const std::string auth = base.Get("Authorization");
  const std::string sig = auth.substr(auth.find("Signature=") + 10);
  const struct {
    std::string header;
    const char* what;
  } cases[] = {
      {absl::StrReplaceAll(auth, {{"AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"}}), "'AWS4-HMAC-SHA256'"},
      {absl::StrReplaceAll(auth, {{"Credential=", "Cred="}}), "only have the parts"},
      {"AWS4-HMAC-SHA256 SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + sig,
       "requires 'Credential' parameter"},
      {absl::StrReplaceAll(auth,
                           {{", SignedHeaders=content-type;host;x-amz-date;x-amz-target", ""}}),
       "requires 'SignedHeaders' parameter"},
      {auth.substr(0, auth.find(", Signature=")), "requires 'Signature' parameter"},
      {absl::StrCat(auth, ", Signature=", sig), "more than one 'Signature'"},
      {absl::StrReplaceAll(auth, {{"/aws4_request", "/aws4_reques"}}), "valid terminator"},
      {absl::StrReplaceAll(auth, {{"/20240517/", "/2024-05-17/"}}), "date"},
      {absl::StrReplaceAll(auth, {{"content-type;host;", "content-type;"}}), "must include 'host'"},
      {absl::StrReplaceAll(auth, {{"x-amz-date;", ""}}), "must include 'x-amz-date'"},
      {absl::StrReplaceAll(auth, {{"content-type;host", "host;content-type"}}), "sorted"},
      {absl::StrReplaceAll(auth, {{"content-type;", "Content-Type;"}}), "lower case"},
      {auth.substr(0, auth.size() - 1), "64 lower-case hexadecimal"},
      {absl::StrCat(auth.substr(0, auth.size() - 64),
                    absl::AsciiStrToUpper(auth.substr(auth.size() - 64))),
       "64 lower-case hexadecimal"},
  };
  for (const auto& c : cases) {
    OwnedRequest r = base;
    ReplaceHeader(r, "Authorization", c.header);
    SCOPED_TRACE(c.header);
    ExpectRefused(r, SigV4Error::kIncompleteSignature, c.what);
  }
  OwnedRequest twice = base;
  twice.Add("authorization", auth);
  ExpectRefused(twice, SigV4Error::kIncompleteSignature, "more than one Authorization header");
  EXPECT_EQ(keys_.calls(), 0);  // the key store is never asked about malformed requests
}

TEST_F(VerifyTest, MissingRepeatedOrMalformedXAmzDateIsIncompleteSignature) {
  OwnedRequest none = SignedRequest();
  none.Remove("X-Amz-Date");
  ExpectRefused(none, SigV4Error::kIncompleteSignature, "'X-Amz-Date' header");

  OwnedRequest twice = SignedRequest();
  twice.Add("x-amz-date", kAmzDate);
  ExpectRefused(twice, SigV4Error::kIncompleteSignature, "more than one X-Amz-Date");

  OwnedRequest bad = SignedRequest();
  ReplaceHeader(bad, "X-Amz-Date", "Fri, 17 May 2024 09:30:00 GMT");
  ExpectRefused(bad, SigV4Error::kIncompleteSignature, "YYYYMMDD'T'HHMMSS'Z'");

  // Spaces around the value (kept by some servers) are not part of it.
  OwnedRequest spaced = SignedRequest();
  ReplaceHeader(spaced, "X-Amz-Date", absl::StrCat(" ", kAmzDate, " "));
  EXPECT_TRUE(Verify(spaced).ok());
}

TEST_F(VerifyTest, ScopeDateMustBeXAmzDatesDay) {
  // Signed a day earlier, with X-Amz-Date then moved to the server's day.
  OwnedRequest r = SignedRequest("local", "secretsmanager", SignedAt() - absl::Hours(24));
  ReplaceHeader(r, "X-Amz-Date", kAmzDate);
  ExpectRefused(r, SigV4Error::kInvalidSignature,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                "from HTTP: '20240516' != '20240517', from '20240517T093000Z'.");
}

TEST_F(VerifyTest, RegionMustBeAccepted) {
  OwnedRequest r = SignedRequest("us-east-1");
  EXPECT_TRUE(Verify(r).ok());  // no regions configured: any
  options_.regions = {"local"};
  ExpectRefused(r, SigV4Error::kInvalidSignature,
                "Credential should be scoped to a valid region, not 'us-east-1'.");
  options_.regions = {"local", "us-east-1"};
  EXPECT_TRUE(Verify(r).ok());
}

TEST_F(VerifyTest, ServiceMustBeAccepted) {
  OwnedRequest r = SignedRequest("local", "s3");
  ExpectRefused(r, SigV4Error::kInvalidSignature,
                "Credential should be scoped to correct service: one of 'secretsmanager', 'ssm', "
                "'kms', not 's3'.");
  options_.services = {"secretsmanager"};
  OwnedRequest kms = SignedRequest("local", "kms");
  ExpectRefused(kms, SigV4Error::kInvalidSignature, "not 'kms'");
  options_.services = {};  // any
  EXPECT_TRUE(Verify(r).ok());
}

TEST_F(VerifyTest, SignatureChangedByOneHexDigitIsInvalidSignature) {
  OwnedRequest r = SignedRequest();
  std::string auth = r.Get("Authorization");
  for (size_t pos : {auth.size() - 1, auth.size() - 64, auth.size() - 33}) {
    std::string changed = auth;
    changed[pos] = changed[pos] == '0' ? '1' : '0';
    ReplaceHeader(r, "Authorization", changed);
    ExpectRefused(r, SigV4Error::kInvalidSignature,
                  "The request signature we calculated does not match the signature you provided.");
  }
}

TEST_F(VerifyTest, ChangedBodyIsInvalidSignature) {
  OwnedRequest r = SignedRequest();
  r.body = "{\"SecretId\": \"prod/orders/dc\"}";
  ExpectRefused(r, SigV4Error::kInvalidSignature, "does not match");
  r.body = "";
  ExpectRefused(r, SigV4Error::kInvalidSignature, "does not match");
}

TEST_F(VerifyTest, ChangedSignedHeaderIsInvalidSignature) {
  OwnedRequest r = SignedRequest();
  ReplaceHeader(r, "X-Amz-Target", "secretsmanager.DeleteSecret");
  ExpectRefused(r, SigV4Error::kInvalidSignature, "does not match");

  OwnedRequest host = SignedRequest();
  ReplaceHeader(host, "Host", "127.0.0.1:7705");
  ExpectRefused(host, SigV4Error::kInvalidSignature, "does not match");

  // A second value for a signed header changes what was signed.
  OwnedRequest repeated = SignedRequest();
  repeated.Add("x-amz-target", "secretsmanager.DeleteSecret");
  ExpectRefused(repeated, SigV4Error::kInvalidSignature, "does not match");
}

TEST_F(VerifyTest, UnsignedHeadersMayChange) {
  OwnedRequest r = SignedRequest();
  ReplaceHeader(r, "User-Agent", "something else entirely");
  r.Add("X-Forwarded-For", "10.0.0.1");
  r.Add("x-amz-content-sha256", "UNSIGNED-PAYLOAD");  // not signed, so not believed
  absl::StatusOr<VerifiedCaller> caller = Verify(r);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_FALSE(caller->IsSigned("user-agent"));
  EXPECT_FALSE(caller->IsSigned("x-forwarded-for"));
}

TEST_F(VerifyTest, HeaderNamesAnyCaseAndSignedValuesModuloWhitespace) {
  OwnedRequest r = SignedRequest();
  for (auto& h : r.headers) {
    if (h.first != "Authorization") h.first = absl::AsciiStrToUpper(h.first);
  }
  ReplaceHeader(r, "Content-Type", "  application/x-amz-json-1.1\t");
  EXPECT_TRUE(Verify(r).ok());
}

TEST_F(VerifyTest, SignedHeaderMissingFromTheRequestIsInvalidSignature) {
  OwnedRequest r = SignedRequest();
  r.Remove("X-Amz-Target");
  ExpectRefused(r, SigV4Error::kInvalidSignature, "'x-amz-target' is not in the request");
  OwnedRequest no_host = SignedRequest();
  no_host.Remove("Host");
  ExpectRefused(no_host, SigV4Error::kInvalidSignature, "'host' is not in the request");
}

TEST_F(VerifyTest, HostAndXAmzDateMustBeSigned) {
  // A well-formed signature over everything but Host: still refused.
  OwnedRequest r;
  r.method = "POST";
  r.path = "/";
  r.Add("X-Amz-Target", "secretsmanager.GetSecretValue");
  r.Add("Host", "127.0.0.1:7704");
  r.body = kBody;
  absl::StatusOr<Authorization> auth;
  {
    OwnedRequest without_host = r;
    without_host.Remove("Host");
    without_host.Add("X-Amz-Date", kAmzDate);
    CredentialScope scope{"20240517", "local", "secretsmanager"};
    std::vector<std::string> names = {"x-amz-date", "x-amz-target"};
    absl::StatusOr<std::string> canonical = CanonicalRequest(without_host.View(), names);
    ASSERT_TRUE(canonical.ok());
    const std::string signature =
        SignatureHex(DeriveSigningKey(kSecret, scope), StringToSign(kAmzDate, scope, *canonical));
    r.Add("X-Amz-Date", kAmzDate);
    r.Add("Authorization", FormatAuthorization({kAccessKeyId, scope, names, signature}));
  }
  ExpectRefused(r, SigV4Error::kIncompleteSignature, "SignedHeaders must include 'host'");
}

TEST_F(VerifyTest, ClockSkewOfFiveMinutesEitherWay) {
  OwnedRequest r = SignedRequest();
  const absl::Time t = SignedAt();
  for (absl::Duration ok :
       {absl::ZeroDuration(), absl::Minutes(4) + absl::Seconds(59),
        -(absl::Minutes(4) + absl::Seconds(59)), absl::Minutes(5), -absl::Minutes(5)}) {
    EXPECT_TRUE(Verify(r, t + ok).ok()) << ok;
  }
  // The server is 5 min 1 s ahead of the request: expired.
  ExpectRefused(r, SigV4Error::kInvalidSignature,
                "Signature expired: 20240517T093000Z is now earlier than 20240517T093001Z "
                "(20240517T093501Z - 5 min.)",
                t + absl::Minutes(5) + absl::Seconds(1));
  // The server is 5 min 1 s behind: not yet current.
  ExpectRefused(r, SigV4Error::kInvalidSignature,
                "Signature not yet current: 20240517T093000Z is still later than "
                "20240517T092959Z (20240517T092459Z + 5 min.)",
                t - absl::Minutes(5) - absl::Seconds(1));
  EXPECT_EQ(keys_.calls(), 5);  // refused before the key store is asked

  options_.max_clock_skew = absl::Seconds(90);
  EXPECT_TRUE(Verify(r, t + absl::Seconds(90)).ok());
  ExpectRefused(r, SigV4Error::kInvalidSignature, "(20240517T093131Z - 90 s.)",
                t + absl::Seconds(91));
}

TEST_F(VerifyTest, UnknownAccessKeyIsUnrecognizedClient) {
  OwnedRequest r;
  r.method = "POST";
  r.path = "/";
  r.Add("Host", "127.0.0.1:7704");
  absl::StatusOr<SignedAuthHeaders> auth =
      SignRequest(r.View(), {"AKIAUNKNOWN", kSecret, "local", "kms", SignedAt()});
  ASSERT_TRUE(auth.ok());
  r.Add("X-Amz-Date", auth->x_amz_date);
  r.Add("Authorization", auth->authorization);
  ExpectRefused(r, SigV4Error::kUnrecognizedClient,
                "The security token included in the request is invalid.");
  EXPECT_EQ(AwsErrorType(SigV4Error::kUnrecognizedClient), "UnrecognizedClientException");
}

TEST_F(VerifyTest, DisabledKeyIsUnrecognizedClient) {
  OwnedRequest r = SignedRequest();
  for (absl::Status disabled :
       {absl::FailedPreconditionError("access key AKIACOFFEREXAMPLE01 is disabled"),
        absl::PermissionDeniedError("disabled"), absl::UnauthenticatedError("revoked"),
        absl::NotFoundError("deleted")}) {
    keys_.Fail(kAccessKeyId, disabled);
    ExpectRefused(r, SigV4Error::kUnrecognizedClient,
                  "The security token included in the request is invalid.");
  }
}

TEST_F(VerifyTest, StoreFailuresPassThroughUnchanged) {
  // Not the client's fault: the gateway answers 5xx, and the client retries.
  OwnedRequest r = SignedRequest();
  for (absl::Status failure : {absl::UnavailableError("access-key store unreachable"),
                               absl::DeadlineExceededError("slow"), absl::InternalError("bug")}) {
    keys_.Fail(kAccessKeyId, failure);
    absl::StatusOr<VerifiedCaller> caller = Verify(r);
    EXPECT_EQ(caller.status(), failure);
    EXPECT_EQ(GetSigV4Error(caller.status()), std::nullopt);
  }
}

TEST_F(VerifyTest, SessionTokenIsUnrecognizedClient) {
  // Coffer issues no session tokens: signed or not, one is never valid.
  OwnedRequest r;
  r.method = "POST";
  r.path = "/";
  r.Add("Host", "127.0.0.1:7704");
  r.Add("X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLE");
  absl::StatusOr<SignedAuthHeaders> auth =
      SignRequest(r.View(), {kAccessKeyId, kSecret, "local", "secretsmanager", SignedAt()});
  ASSERT_TRUE(auth.ok());
  r.Add("X-Amz-Date", auth->x_amz_date);
  r.Add("Authorization", auth->authorization);
  ExpectRefused(r, SigV4Error::kUnrecognizedClient, "security token");

  OwnedRequest unsigned_token = SignedRequest();
  unsigned_token.Add("x-amz-security-token", "FQoGZXIvYXdzEXAMPLE");
  ExpectRefused(unsigned_token, SigV4Error::kUnrecognizedClient, "security token");
}

TEST_F(VerifyTest, SignedContentSha256MustBeTheBodysHash) {
  auto signed_with = [](absl::string_view content_sha256) {
    OwnedRequest r;
    r.method = "POST";
    r.path = "/";
    r.Add("Host", "127.0.0.1:7704");
    r.Add("X-Amz-Content-Sha256", std::string(content_sha256));
    r.body = kBody;
    absl::StatusOr<SignedAuthHeaders> auth =
        SignRequest(r.View(), {kAccessKeyId, kSecret, "local", "secretsmanager", SignedAt()});
    EXPECT_TRUE(auth.ok());
    r.Add("X-Amz-Date", auth->x_amz_date);
    r.Add("Authorization", auth->authorization);
    return r;
  };
  OwnedRequest good = signed_with(HexSha256(kBody));
  EXPECT_TRUE(Verify(good).ok());
  OwnedRequest unsigned_payload = signed_with("UNSIGNED-PAYLOAD");
  ExpectRefused(unsigned_payload, SigV4Error::kInvalidSignature, "unsigned payloads");
  OwnedRequest other = signed_with(HexSha256("{}"));
  ExpectRefused(other, SigV4Error::kInvalidSignature, "SHA-256 of the body");
}

TEST_F(VerifyTest, TenThousandSignedHeadersRefusedQuickly) {
  OwnedRequest r = SignedRequest();
  std::vector<std::string> names = {"content-type", "host", "x-amz-date", "x-amz-target"};
  for (int i = 0; i < 10000; ++i) {
    names.push_back(absl::StrCat("x-h", 100000 + i));
    r.Add(absl::StrCat("X-H", 100000 + i), "v");
  }
  std::sort(names.begin(), names.end());
  std::string auth = r.Get("Authorization");
  auth = absl::StrReplaceAll(
      auth, {{"content-type;host;x-amz-date;x-amz-target", absl::StrJoin(names, ";")}});
  ReplaceHeader(r, "Authorization", auth);
  const absl::Time start = absl::Now();
  ExpectRefused(r, SigV4Error::kIncompleteSignature, "more than 64 headers");
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST_F(VerifyTest, TenThousandUnsignedHeadersStillVerifyQuickly) {
  OwnedRequest r = SignedRequest();
  for (int i = 0; i < 10000; ++i) r.Add(absl::StrCat("X-H", i), std::string(100, 'v'));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(Verify(r).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(SignRequestTest, RefusesWhatCouldNotBeVerified) {
  OwnedRequest r;
  r.method = "POST";
  r.path = "/";
  r.Add("Host", "127.0.0.1:7704");
  const SigningParams good{kAccessKeyId, kSecret, "local", "secretsmanager", SignedAt()};
  ASSERT_TRUE(SignRequest(r.View(), good).ok());

  SigningParams p = good;
  p.access_key_id = "AKIA/EXAMPLE";
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(r.View(), p).status()));
  p = good;
  p.region = "us east";
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(r.View(), p).status()));
  p = good;
  p.service = "";
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(r.View(), p).status()));
  p = good;
  p.time = absl::FromUnixSeconds(253402300800);  // year 10000
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(r.View(), p).status()));

  OwnedRequest no_host = r;
  no_host.Remove("Host");
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(no_host.View(), good).status()));
  OwnedRequest bad_name = r;
  bad_name.Add("Bad Name", "x");
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(bad_name.View(), good).status()));
  OwnedRequest dated = r;
  dated.Add("x-amz-date", kAmzDate);
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(dated.View(), good).status()));
  OwnedRequest many = r;
  for (int i = 0; i < 63; ++i) many.Add(absl::StrCat("X-H", i), "v");
  EXPECT_TRUE(absl::IsInvalidArgument(SignRequest(many.View(), good).status()));  // 65 with date
  many.Remove("X-H0");
  EXPECT_TRUE(SignRequest(many.View(), good).ok());  // 64
}

TEST(SigV4ErrorTest, NamesAndStatuses) {
  for (SigV4Error e : {SigV4Error::kMissingAuthenticationToken, SigV4Error::kIncompleteSignature,
                       SigV4Error::kInvalidSignature, SigV4Error::kUnrecognizedClient}) {
    absl::Status s = MakeSigV4Error(e, "m");
    EXPECT_EQ(GetSigV4Error(s), e);
    EXPECT_EQ(HttpStatus(e), 400);
    EXPECT_TRUE(absl::EndsWith(AwsErrorType(e), "Exception"));
  }
  EXPECT_EQ(AwsErrorType(SigV4Error::kIncompleteSignature), "IncompleteSignatureException");
  EXPECT_EQ(AwsErrorType(SigV4Error::kInvalidSignature), "InvalidSignatureException");
  EXPECT_EQ(GetSigV4Error(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(GetSigV4Error(absl::UnauthenticatedError("no reason")), std::nullopt);
  EXPECT_EQ(GetSigV4Error(Error(coffer::reason::kAccessDenied, "x")), std::nullopt);
}

}  // namespace
}  // namespace coffer::sigv4
