// AWS's SigV4 test suite (aws_suite_vectors.h): for every case the canonical
// request, the string to sign and the signature match AWS's, SignRequest
// writes AWS's Authorization header, and VerifySigV4 accepts the signed
// request at its time.
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "libs/sigv4/sigv4.h"
#include "tests/libs/sigv4/aws_suite_vectors.h"
#include "tests/libs/sigv4/http_text.h"

namespace coffer::sigv4 {
namespace {

using testing::AwsSuiteVector;
using testing::kAwsSuiteVectors;
using testing::OwnedRequest;
using testing::ParseHttpText;

class SuiteKeys : public SecretKeyLookup {
 public:
  absl::StatusOr<crypto::SecureBuffer> FindSecretKey(absl::string_view id) const override {
    if (id != testing::kSuiteAccessKeyId) return absl::NotFoundError("no such key");
    return crypto::SecureBuffer::Copy(testing::kSuiteSecretKey);
  }
};

absl::Time SuiteTime() { return *ParseAmzDate(testing::kSuiteTime); }

SigV4Options SuiteOptions() {
  SigV4Options options;
  options.regions = {testing::kSuiteRegion};
  options.services = {testing::kSuiteService};
  return options;
}

class AwsSuiteTest : public ::testing::TestWithParam<AwsSuiteVector> {};

TEST_P(AwsSuiteTest, CanonicalRequestStringToSignAndSignature) {
  const AwsSuiteVector& v = GetParam();
  OwnedRequest request = ParseHttpText(v.signed_request);
  absl::StatusOr<Authorization> auth = ParseAuthorization(request.Get("Authorization"));
  ASSERT_TRUE(auth.ok()) << auth.status();

  absl::StatusOr<std::string> canonical = CanonicalRequest(request.View(), auth->signed_headers);
  ASSERT_TRUE(canonical.ok()) << canonical.status();
  EXPECT_EQ(*canonical, v.canonical_request);

  const std::string sts = StringToSign(request.Get("X-Amz-Date"), auth->scope, *canonical);
  EXPECT_EQ(sts, v.string_to_sign);

  const crypto::SecureBuffer key = DeriveSigningKey(testing::kSuiteSecretKey, auth->scope);
  EXPECT_EQ(SignatureHex(key, sts), v.signature);
  EXPECT_EQ(auth->signature, v.signature);
}

TEST_P(AwsSuiteTest, SignRequestWritesTheSameAuthorization) {
  const AwsSuiteVector& v = GetParam();
  OwnedRequest request = ParseHttpText(v.signed_request);
  const std::string want = request.Get("Authorization");
  request.Remove("Authorization");
  request.Remove("X-Amz-Date");
  // SignRequest signs every header it is given: sign before adding the token.
  if (v.token_added_after_signing) request.Remove("X-Amz-Security-Token");
  absl::StatusOr<SignedAuthHeaders> signed_headers =
      SignRequest(request.View(), {testing::kSuiteAccessKeyId, testing::kSuiteSecretKey,
                                   testing::kSuiteRegion, testing::kSuiteService, SuiteTime()});
  ASSERT_TRUE(signed_headers.ok()) << signed_headers.status();
  EXPECT_EQ(signed_headers->x_amz_date, testing::kSuiteTime);
  EXPECT_EQ(signed_headers->authorization, want);
}

TEST_P(AwsSuiteTest, VerifySigV4AcceptsAtItsTime) {
  const AwsSuiteVector& v = GetParam();
  OwnedRequest request = ParseHttpText(v.signed_request);
  absl::StatusOr<VerifiedCaller> caller =
      VerifySigV4(request.View(), SuiteTime(), SuiteKeys(), SuiteOptions());
  if (!request.Get("X-Amz-Security-Token").empty()) {
    // Coffer issues no session tokens, so a request carrying one is refused
    // however well it is signed.
    EXPECT_EQ(GetSigV4Error(caller.status()), SigV4Error::kUnrecognizedClient);
    return;
  }
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->access_key_id, testing::kSuiteAccessKeyId);
  EXPECT_EQ(caller->scope.date, "20150830");
  EXPECT_EQ(caller->scope.region, testing::kSuiteRegion);
  EXPECT_EQ(caller->scope.service, testing::kSuiteService);
  EXPECT_EQ(caller->request_time, SuiteTime());
}

TEST_P(AwsSuiteTest, VerifySigV4RefusesTheRequestOneSecondPastTheSkew) {
  const AwsSuiteVector& v = GetParam();
  OwnedRequest request = ParseHttpText(v.signed_request);
  request.Remove("X-Amz-Security-Token");
  absl::StatusOr<VerifiedCaller> caller =
      VerifySigV4(request.View(), SuiteTime() + absl::Minutes(5) + absl::Seconds(1), SuiteKeys(),
                  SuiteOptions());
  EXPECT_EQ(GetSigV4Error(caller.status()), SigV4Error::kInvalidSignature);
}

INSTANTIATE_TEST_SUITE_P(Vectors, AwsSuiteTest, ::testing::ValuesIn(kAwsSuiteVectors),
                         [](const ::testing::TestParamInfo<AwsSuiteVector>& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// The signing keys of AWS's documentation (General Reference, "Examples of
// how to derive a signing key"), recomputed with Python's hmac module.
TEST(DeriveSigningKeyTest, KnownAnswers) {
  const struct {
    CredentialScope scope;
    const char* key_hex;
  } cases[] = {
      {{"20120215", "us-east-1", "iam"},
       "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"},
      {{"20150830", "us-east-1", "iam"},
       "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"},
      {{"20150830", "us-east-1", "service"},
       "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75"},
  };
  for (const auto& c : cases) {
    const crypto::SecureBuffer key = DeriveSigningKey(testing::kSuiteSecretKey, c.scope);
    EXPECT_EQ(absl::BytesToHexString(key.view()), c.key_hex) << c.scope.ToString();
  }
}

TEST(HexSha256Test, KnownAnswers) {
  EXPECT_EQ(HexSha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexSha256("Param1=value1"),
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
}

}  // namespace
}  // namespace coffer::sigv4
