// Signed callers: a signature the gateway forwards, verified by the service
// that answers (VerifyForwardedSignature); the signing-key cache; and the
// CallGate running a gateway call as the caller who signed it — over a real
// mTLS server, with the gateway's own certificate.
#include "libs/runtime/signed_callers.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/common/executor.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "libs/runtime/call_gate.h"
#include "libs/sigv4/sigv4.h"
#include "tests/testing/matchers.h"
#include "tests/testing/test_env.h"

namespace coffer::runtime {
namespace {

using ::coffer::testing::HasReason;
using ::testing::HasSubstr;
namespace sm = ::coffer::secrets::v1;

constexpr char kAkid[] = "AKCOEXAMPLEEXAMPLE22";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEYX";
constexpr char kAlice[] = "spiffe://coffer.local/admin/alice";
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 30, 12, 0, 0), absl::UTCTimeZone());

// Signing keys derived from kSecret, for kAlice; counts lookups.
class FakeKeys final : public SigningKeySource {
 public:
  absl::StatusOr<SigningKey> Find(absl::string_view access_key_id,
                                  const sigv4::CredentialScope& scope) override {
    ++lookups;
    if (!error.ok()) return error;
    if (access_key_id != kAkid) {
      return sigv4::MakeSigV4Error(sigv4::SigV4Error::kUnrecognizedClient, "unknown");
    }
    return SigningKey{kAlice, sigv4::DeriveSigningKey(kSecret, scope)};
  }
  std::atomic<int> lookups{0};
  absl::Status error;
};

// What the AWS CLI sends, signed as botocore signs it.
struct SignedRequest {
  std::string target = "secretsmanager.GetSecretValue";
  std::string service = "secretsmanager";
  std::string body = R"({"SecretId": "prod/db"})";
  std::string secret = kSecret;
  absl::Time time = kNow;

  ForwardedSignature Forward() const {
    std::vector<sigv4::HttpHeader> headers = {{"Content-Type", "application/x-amz-json-1.1"},
                                              {"Host", "127.0.0.1:7704"},
                                              {"X-Amz-Target", target}};
    sigv4::HttpRequestView request{"POST", "/", "", headers, body};
    auto signed_headers = sigv4::SignRequest(request, {kAkid, secret, "local", service, time});
    EXPECT_TRUE(signed_headers.ok()) << signed_headers.status();
    headers.push_back({"X-Amz-Date", signed_headers->x_amz_date});
    headers.push_back({"Authorization", signed_headers->authorization});
    request.headers = headers;
    auto auth = sigv4::ParseAuthorization(signed_headers->authorization);
    EXPECT_TRUE(auth.ok());
    auto canonical = sigv4::CanonicalRequest(request, auth->signed_headers);
    EXPECT_TRUE(canonical.ok()) << canonical.status();
    return {signed_headers->authorization, signed_headers->x_amz_date, *canonical};
  }
};

TEST(SignedCallersTest, AForwardedSignatureNamesTheCallerWhoSigned) {
  FakeKeys keys;
  auto caller = VerifyForwardedSignature(SignedRequest().Forward(), "secretsmanager:GetSecretValue",
                                         kNow + absl::Minutes(4), keys);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->identity, kAlice);
  EXPECT_EQ(caller->access_key_id, kAkid);

  SignedRequest ssm;
  ssm.target = "AmazonSSM.GetParameter";
  ssm.service = "ssm";
  EXPECT_TRUE(VerifyForwardedSignature(ssm.Forward(), "ssm:GetParameter", kNow, keys).ok());
  SignedRequest kms;
  kms.target = "TrentService.Decrypt";
  kms.service = "kms";
  EXPECT_TRUE(VerifyForwardedSignature(kms.Forward(), "kms:Decrypt", kNow, keys).ok());
}

TEST(SignedCallersTest, EverythingTheSignatureCoversIsChecked) {
  FakeKeys keys;
  const ForwardedSignature good = SignedRequest().Forward();
  auto verify = [&](const ForwardedSignature& f,
                    absl::string_view action =
                        "secretsmanager:"
                        "GetSecretValue",
                    absl::Time now = kNow) {
    return VerifyForwardedSignature(f, action, now, keys).status();
  };
  const auto invalid = HasReason(sigv4::reason::kInvalidSignature);

  // Used for another operation than the one signed.
  EXPECT_THAT(verify(good, "secretsmanager:PutSecretValue"), invalid);
  EXPECT_THAT(verify(good, "kms:GetSecretValue"), invalid);
  // Signed for another service than the target's.
  SignedRequest cross;
  cross.service = "kms";
  EXPECT_THAT(verify(cross.Forward()), invalid);
  // Out of the 5 minutes, either way.
  EXPECT_THAT(
      verify(good, "secretsmanager:GetSecretValue", kNow + absl::Minutes(5) + absl::Seconds(1)),
      invalid);
  EXPECT_THAT(verify(good, "secretsmanager:GetSecretValue", kNow - absl::Minutes(6)), invalid);
  // Another body (its hash is in the canonical request), another header
  // value, another date, another secret.
  ForwardedSignature body = good;
  body.canonical_request.back() = body.canonical_request.back() == 'a' ? 'b' : 'a';
  EXPECT_THAT(verify(body), invalid);
  ForwardedSignature host = good;
  host.canonical_request.replace(host.canonical_request.find("7704"), 4, "7705");
  EXPECT_THAT(verify(host), invalid);
  ForwardedSignature date = good;
  date.amz_date = "20261130T120001Z";
  EXPECT_THAT(verify(date), invalid);
  SignedRequest other_secret;
  other_secret.secret = "another-secret-access-key-of-forty-chars";
  EXPECT_THAT(verify(other_secret.Forward()), invalid);
  // A canonical request that does not list exactly the signed headers.
  ForwardedSignature lines = good;
  lines.canonical_request = "POST\n/\n\n\n\nhost\n" + std::string(64, '0');
  EXPECT_THAT(verify(lines), invalid);
  ForwardedSignature huge = good;
  huge.canonical_request = std::string(kMaxForwardedCanonicalRequest + 1, 'x');
  EXPECT_THAT(verify(huge), invalid);
  // Malformed Authorization or date.
  ForwardedSignature garbled = good;
  garbled.authorization = "AWS4-HMAC-SHA256 Credential=nonsense";
  EXPECT_THAT(verify(garbled), HasReason(sigv4::reason::kIncompleteSignature));
  ForwardedSignature no_date = good;
  no_date.amz_date = "yesterday";
  EXPECT_THAT(verify(no_date), HasReason(sigv4::reason::kIncompleteSignature));
  // Unknown keys, and a source that cannot answer (passed through).
  ForwardedSignature unknown = good;
  unknown.authorization.replace(unknown.authorization.find(kAkid), 20, "AKCOUNKNOWNUNKNOWN22");
  EXPECT_THAT(verify(unknown), HasReason(sigv4::reason::kUnrecognizedClient));
  keys.error = absl::UnavailableError("KMS down");
  EXPECT_EQ(verify(good).code(), absl::StatusCode::kUnavailable);
}

TEST(SignedCallersTest, TheCacheRemembersFoundAndUnknownKeysForAWhile) {
  FakeKeys keys;
  FakeClock clock(kNow);
  auto cache = CachingSigningKeySource(&keys, absl::Seconds(60), absl::Seconds(10), 2, &clock);
  const sigv4::CredentialScope scope{"20261130", "local", "secretsmanager"};
  ASSERT_TRUE(cache->Find(kAkid, scope).ok());
  auto again = cache->Find(kAkid, scope);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->identity, kAlice);
  EXPECT_EQ(keys.lookups.load(), 1);
  clock.Advance(absl::Seconds(61));
  ASSERT_TRUE(cache->Find(kAkid, scope).ok());
  EXPECT_EQ(keys.lookups.load(), 2);

  EXPECT_FALSE(cache->Find("AKCOUNKNOWNUNKNOWN22", scope).ok());
  EXPECT_THAT(cache->Find("AKCOUNKNOWNUNKNOWN22", scope).status(),
              HasReason(sigv4::reason::kUnrecognizedClient));
  EXPECT_EQ(keys.lookups.load(), 3);
  clock.Advance(absl::Seconds(11));
  EXPECT_FALSE(cache->Find("AKCOUNKNOWNUNKNOWN22", scope).ok());
  EXPECT_EQ(keys.lookups.load(), 4);

  // Errors other than "unknown" are not remembered.
  keys.error = absl::UnavailableError("KMS down");
  EXPECT_EQ(cache->Find(kAkid, {"20261130", "local", "kms"}).status().code(),
            absl::StatusCode::kUnavailable);
  keys.error = absl::OkStatus();
  EXPECT_TRUE(cache->Find(kAkid, {"20261130", "local", "kms"}).ok());
  EXPECT_EQ(keys.lookups.load(), 6);
}

TEST(SignedCallersTest, TargetsMapToActionsAndServices) {
  EXPECT_EQ(MapAwsTarget("secretsmanager.ListSecrets")->action, "secretsmanager:ListSecrets");
  EXPECT_EQ(MapAwsTarget("AmazonSSM.GetParametersByPath")->signing_service, "ssm");
  EXPECT_EQ(MapAwsTarget("TrentService.GenerateDataKey")->action, "kms:GenerateDataKey");
  for (const char* bad : {"", "secretsmanager.", "Unknown.Op", "AmazonSSM.Get:Parameter",
                          "TrentService.Decrypt\n", "secretsmanager"}) {
    EXPECT_FALSE(MapAwsTarget(bad).has_value()) << bad;
  }
}

// A gate whose only allowed caller is kAlice; the service answers with the
// principal its work ran as.
class WhoAmI final : public sm::SecretsManager::CallbackService {
 public:
  explicit WhoAmI(CallGate* gate) : gate_(gate) {}
  grpc::ServerUnaryReactor* GetSecretValue(grpc::CallbackServerContext* context,
                                           const sm::GetSecretValueRequest*,
                                           sm::GetSecretValueResponse* response) override {
    return gate_->Unary<sm::GetSecretValueResponse>(
        context, "secretsmanager:GetSecretValue",
        [](const authz::Access& access) -> absl::StatusOr<sm::GetSecretValueResponse> {
          COFFER_RETURN_IF_ERROR(access.Check("secretsmanager:GetSecretValue", "prod/db"));
          sm::GetSecretValueResponse r;
          r.set_secret_string(access.principal());
          return r;
        },
        response);
  }

 private:
  CallGate* gate_;
};

class SignedCallGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto policy = authz::Policy::Parse(
        R"({"statements": [{"effect": "Allow", "principals": ["*"],
            "actions": ["secretsmanager:GetSecretValue"], "resources": ["*"]}]})",
        authz::Policy::kIdentity);
    ASSERT_TRUE(policy.ok()) << policy.status();
    authorizer_ = std::make_unique<authz::Authorizer>(std::move(policy).value());
    gate_ = std::make_unique<CallGate>(authorizer_.get(), nullptr, nullptr, &executor_);
    gate_->set_signed_callers(&signed_callers_);
    service_ = std::make_unique<WhoAmI>(gate_.get());
    rpc::ServerOptions options;
    options.tls = testing::SharedPki().Identity("store");
    auto server = rpc::Server::Start(std::move(options), {service_.get()}, &health_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  grpc::Status Call(const std::string& identity, const ForwardedSignature* forwarded,
                    std::string* principal) {
    rpc::ChannelOptions channel;
    channel.target = absl::StrCat("localhost:", server_->port());
    channel.tls = testing::SharedPki().Identity(identity);
    auto made = rpc::MakeChannel(std::move(channel));
    EXPECT_TRUE(made.ok());
    auto stub = sm::SecretsManager::NewStub(*made);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (forwarded != nullptr) {
      ctx.AddMetadata(kSigV4AuthorizationMetadata, forwarded->authorization);
      ctx.AddMetadata(kSigV4DateMetadata, forwarded->amz_date);
      ctx.AddMetadata(kSigV4CanonicalRequestMetadata, forwarded->canonical_request);
    }
    sm::GetSecretValueResponse response;
    grpc::Status s = stub->GetSecretValue(&ctx, sm::GetSecretValueRequest(), &response);
    *principal = response.secret_string();
    return s;
  }

  FakeKeys keys_;
  SignedCallers signed_callers_{"spiffe://coffer.local/gateway", &keys_};
  BoundedExecutor executor_{"test-calls", 2, 100};
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<CallGate> gate_;
  std::unique_ptr<WhoAmI> service_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
};

TEST_F(SignedCallGateTest, TheGatewayActsOnlyForCallersWhoSigned) {
  SignedRequest now;
  now.time = absl::Now();
  const ForwardedSignature forwarded = now.Forward();
  std::string principal;
  grpc::Status signed_call = Call("gateway", &forwarded, &principal);
  ASSERT_TRUE(signed_call.ok()) << signed_call.error_message();
  EXPECT_EQ(principal, kAlice);

  // The gateway by itself, though the policy allows "*", gets nothing.
  grpc::Status unsigned_call = Call("gateway", nullptr, &principal);
  EXPECT_EQ(unsigned_call.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(unsigned_call.error_message(), HasSubstr("signed"));
  // A forged signature fails.
  ForwardedSignature forged = forwarded;
  forged.authorization.back() = forged.authorization.back() == '0' ? '1' : '0';
  EXPECT_EQ(Call("gateway", &forged, &principal).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Anyone else's certificate is itself: the forwarded headers mean nothing.
  ASSERT_TRUE(Call("app-other", &forwarded, &principal).ok());
  EXPECT_EQ(principal, "spiffe://coffer.local/app/other");
}

}  // namespace
}  // namespace coffer::runtime
