// Gateway::Handle with the backends replaced: what the gateway answers by
// itself (unknown operations, unsigned, malformed or mis-scoped signatures,
// throttled keys, bad JSON, HTTP-level refusals), what it forwards (the
// signature and the canonical request the backend verifies) and how a
// backend's answer or error comes back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "libs/common/errors.h"
#include "libs/sigv4/sigv4.h"
#include "services/gateway/gateway.h"

namespace coffer::gateway {
namespace {

using ::testing::HasSubstr;
namespace sm = ::coffer::secrets::v1;

constexpr char kAkid[] = "AKCOEXAMPLEEXAMPLE22";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEYX";

class FakeBackends final : public Backends {
 public:
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> Call(
      const AwsOperation& op, const google::protobuf::Message& request,
      const runtime::ForwardedSignature& signature) override {
    calls.push_back(op.target);
    last_signature = signature;
    last_request = request.SerializeAsString();
    if (!error.ok()) return error;
    auto response = std::make_unique<sm::GetSecretValueResponse>();
    response->set_name("prod/db");
    response->set_secret_string("hunter2");
    response->add_version_stages("AWSCURRENT");
    return response;
  }
  std::vector<std::string> calls;
  runtime::ForwardedSignature last_signature;
  std::string last_request;
  absl::Status error;
};

class GatewayServerTest : public ::testing::Test {
 protected:
  GatewayServerTest() : gateway_(Options(), &backends_, nullptr) {}

  GatewayOptions Options() {
    GatewayOptions options;
    options.requests_per_second = 1;
    options.burst = 3;
    options.clock = &clock_;
    return options;
  }

  // A request as the AWS CLI sends it, signed with SignRequest.
  http::HttpRequest Signed(const std::string& target, const std::string& body,
                           const std::string& service = "secretsmanager") {
    http::HttpRequest request;
    request.method = "POST";
    request.path = "/";
    request.body = body;
    request.header_list = {{"Content-Type", "application/x-amz-json-1.1"},
                           {"Host", "127.0.0.1:7704"},
                           {"X-Amz-Target", target}};
    std::vector<sigv4::HttpHeader> headers;
    for (const auto& [name, value] : request.header_list) headers.push_back({name, value});
    auto auth = sigv4::SignRequest({"POST", "/", "", headers, body},
                                   {kAkid, kSecret, "local", service, clock_.Now()});
    EXPECT_TRUE(auth.ok()) << auth.status();
    request.header_list.emplace_back("X-Amz-Date", auth->x_amz_date);
    request.header_list.emplace_back("Authorization", auth->authorization);
    for (const auto& [name, value] : request.header_list) {
      request.headers[absl::AsciiStrToLower(name)] = value;
    }
    return request;
  }

  static std::string Header(const http::HttpResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "";
  }

  FakeClock clock_{absl::FromUnixSeconds(1796040000)};
  FakeBackends backends_;
  Gateway gateway_;
};

TEST_F(GatewayServerTest, ASignedCallIsForwardedWithWhatTheBackendVerifies) {
  const std::string body = R"({"SecretId":"prod/db"})";
  http::HttpRequest request = Signed("secretsmanager.GetSecretValue", body);
  http::HttpResponse response = gateway_.Handle(request);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.content_type, "application/x-amz-json-1.1");
  EXPECT_TRUE(response.sensitive);
  EXPECT_THAT(response.body, HasSubstr(R"("SecretString":"hunter2")"));
  EXPECT_FALSE(Header(response, "x-amzn-RequestId").empty());
  ASSERT_EQ(backends_.calls, std::vector<std::string>{"secretsmanager.GetSecretValue"});
  sm::GetSecretValueRequest sent;
  ASSERT_TRUE(sent.ParseFromString(backends_.last_request));
  EXPECT_EQ(sent.secret_id(), "prod/db");

  // The backend gets the Authorization, X-Amz-Date and the canonical
  // request over exactly the signed headers, with the body's hash.
  EXPECT_EQ(backends_.last_signature.authorization, request.headers["authorization"]);
  EXPECT_EQ(backends_.last_signature.amz_date, request.headers["x-amz-date"]);
  EXPECT_EQ(backends_.last_signature.canonical_request,
            absl::StrCat("POST\n/\n\ncontent-type:application/x-amz-json-1.1\n"
                         "host:127.0.0.1:7704\nx-amz-date:",
                         request.headers["x-amz-date"],
                         "\nx-amz-target:secretsmanager.GetSecretValue\n\n"
                         "content-type;host;x-amz-date;x-amz-target\n",
                         sigv4::HexSha256(body)));
}

TEST_F(GatewayServerTest, WhatTheGatewayRefusesItselfIsAwsShaped) {
  struct Case {
    std::string what;
    http::HttpRequest request;
    int status;
    std::string type;
  };
  http::HttpRequest unsigned_request = Signed("secretsmanager.GetSecretValue", "{}");
  unsigned_request.headers.erase("authorization");
  http::HttpRequest garbled = Signed("secretsmanager.GetSecretValue", "{}");
  garbled.headers["authorization"] = "AWS4-HMAC-SHA256 Credential=nonsense";
  http::HttpRequest no_date = Signed("secretsmanager.GetSecretValue", "{}");
  no_date.headers.erase("x-amz-date");
  http::HttpRequest get = Signed("secretsmanager.GetSecretValue", "{}");
  get.method = "GET";
  const std::vector<Case> cases = {
      {"unknown target", Signed("secretsmanager.ReplicateSecretToRegions", "{}"), 400,
       "UnknownOperationException"},
      {"no target", Signed("", "{}"), 400, "UnknownOperationException"},
      {"GET", get, 400, "UnknownOperationException"},
      {"unsigned", unsigned_request, 400, "MissingAuthenticationTokenException"},
      {"garbled", garbled, 400, "IncompleteSignatureException"},
      {"no X-Amz-Date", no_date, 400, "IncompleteSignatureException"},
      {"scoped to kms", Signed("secretsmanager.GetSecretValue", "{}", "kms"), 400,
       "InvalidSignatureException"},
      {"not JSON", Signed("secretsmanager.GetSecretValue", "{nope"), 400, "SerializationException"},
      {"unknown member", Signed("secretsmanager.GetSecretValue", R"({"Nope":1})"), 400,
       "InvalidParameterException"},
  };
  for (const Case& c : cases) {
    http::HttpResponse response = gateway_.Handle(c.request);
    EXPECT_EQ(response.status, c.status) << c.what << ": " << response.body;
    EXPECT_THAT(response.body, HasSubstr(absl::StrCat(R"({"__type":")", c.type, "\""))) << c.what;
    EXPECT_FALSE(Header(response, "x-amzn-RequestId").empty()) << c.what;
    EXPECT_FALSE(response.sensitive) << c.what;
  }
  EXPECT_TRUE(backends_.calls.empty());
  EXPECT_EQ(gateway_.Handle(http::HttpRequest{}).status, 400);

  for (int status : {413, 431, 400}) {
    http::HttpResponse refused = HttpRefusal(status);
    EXPECT_EQ(refused.status, status);
    EXPECT_THAT(refused.body, HasSubstr(R"({"__type":"SerializationException")"));
  }
}

TEST_F(GatewayServerTest, EachAccessKeyHasItsRate) {
  // Burst 3, then one a second.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(gateway_.Handle(Signed("secretsmanager.GetSecretValue", "{}")).status, 200) << i;
  }
  http::HttpResponse throttled = gateway_.Handle(Signed("secretsmanager.GetSecretValue", "{}"));
  EXPECT_EQ(throttled.status, 400);
  EXPECT_THAT(throttled.body, HasSubstr(R"({"__type":"ThrottlingException")"));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(gateway_.Handle(Signed("secretsmanager.GetSecretValue", "{}")).status, 200);
  EXPECT_EQ(backends_.calls.size(), 4u);
}

TEST_F(GatewayServerTest, BackendErrorsComeBackAsTheServicesAwsErrors) {
  backends_.error = Error(reason::kResourceNotFound, "Secrets Manager can't find prod/db");
  http::HttpResponse missing = gateway_.Handle(Signed("secretsmanager.GetSecretValue", "{}"));
  EXPECT_EQ(missing.status, 400);
  EXPECT_THAT(missing.body, HasSubstr(R"({"__type":"ResourceNotFoundException")"));
  backends_.error = absl::UnavailableError("coffer-store unavailable: connection refused");
  http::HttpResponse down = gateway_.Handle(Signed("secretsmanager.GetSecretValue", "{}"));
  EXPECT_EQ(down.status, 503);
  backends_.error = sigv4::MakeSigV4Error(sigv4::SigV4Error::kInvalidSignature, "mismatch");
  http::HttpResponse forged = gateway_.Handle(Signed("secretsmanager.GetSecretValue", "{}"));
  EXPECT_EQ(forged.status, 400);
  EXPECT_THAT(forged.body, HasSubstr(R"({"__type":"InvalidSignatureException")"));
}

TEST(RateLimiterTest, BucketsRefillAndTheOldestKeyIsForgotten) {
  RateLimiter limiter(2, 2, 2);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.Allow("a", t0));
  EXPECT_TRUE(limiter.Allow("a", t0));
  EXPECT_FALSE(limiter.Allow("a", t0));
  EXPECT_TRUE(limiter.Allow("a", t0 + absl::Milliseconds(500)));  // one token back
  EXPECT_FALSE(limiter.Allow("a", t0 + absl::Milliseconds(500)));
  EXPECT_TRUE(limiter.Allow("b", t0));
  EXPECT_TRUE(limiter.Allow("c", t0));  // forgets "a", the least recently seen
  EXPECT_EQ(limiter.tracked_keys(), 2u);
  EXPECT_TRUE(limiter.Allow("a", t0 + absl::Milliseconds(500)));  // a fresh bucket
  // Time going backwards never adds tokens ("c" has one left).
  EXPECT_TRUE(limiter.Allow("c", t0 - absl::Seconds(10)));
  EXPECT_FALSE(limiter.Allow("c", t0 - absl::Seconds(10)));
}

}  // namespace
}  // namespace coffer::gateway
