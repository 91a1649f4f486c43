#include "libs/sigv4/authorization.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/sigv4/sigv4_error.h"

namespace coffer::sigv4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSig[] = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
constexpr char kCred[] = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

std::string Header(absl::string_view credential, absl::string_view signed_headers,
                   absl::string_view signature) {
  return absl::StrCat("AWS4-HMAC-SHA256 ", credential, ", ", signed_headers, ", ", signature);
}
std::string Valid() {
  return Header(kCred, "SignedHeaders=host;x-amz-date", absl::StrCat("Signature=", kSig));
}

// The status is IncompleteSignatureException and its message says `what`.
void ExpectIncomplete(absl::string_view header, absl::string_view what) {
  absl::StatusOr<Authorization> auth = ParseAuthorization(header);
  ASSERT_FALSE(auth.ok()) << header;
  EXPECT_EQ(GetSigV4Error(auth.status()), SigV4Error::kIncompleteSignature) << auth.status();
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(auth.status().message(), HasSubstr(what)) << header;
}

TEST(ParseAuthorizationTest, ReadsEveryPart) {
  absl::StatusOr<Authorization> auth = ParseAuthorization(Valid());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(auth->scope.date, "20150830");
  EXPECT_EQ(auth->scope.region, "us-east-1");
  EXPECT_EQ(auth->scope.service, "service");
  EXPECT_EQ(auth->scope.ToString(), "20150830/us-east-1/service/aws4_request");
  EXPECT_THAT(auth->signed_headers, ElementsAre("host", "x-amz-date"));
  EXPECT_EQ(auth->signature, kSig);
  EXPECT_EQ(FormatAuthorization(*auth), Valid());
}

TEST(ParseAuthorizationTest, AcceptsAnyOrderAndSpacing) {
  for (const std::string& h :
       {absl::StrCat("AWS4-HMAC-SHA256 Signature=", kSig, ",SignedHeaders=host;x-amz-date,", kCred),
        absl::StrCat("  AWS4-HMAC-SHA256   ", kCred,
                     " ,  SignedHeaders=host;x-amz-date,Signature=", kSig, "\t")}) {
    absl::StatusOr<Authorization> auth = ParseAuthorization(h);
    ASSERT_TRUE(auth.ok()) << h << ": " << auth.status();
    EXPECT_EQ(FormatAuthorization(*auth), Valid());
  }
}

TEST(ParseAuthorizationTest, RefusesOtherAlgorithms) {
  ExpectIncomplete("AWS AKIDEXAMPLE:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=", "'AWS4-HMAC-SHA256'");
  ExpectIncomplete(absl::StrCat("AWS4-HMAC-SHA512 ", kCred), "'AWS4-HMAC-SHA256'");
  ExpectIncomplete(absl::StrCat("aws4-hmac-sha256 ", kCred), "'AWS4-HMAC-SHA256'");
  ExpectIncomplete(absl::StrCat("AWS4-HMAC-SHA256,", kCred), "'AWS4-HMAC-SHA256'");
  ExpectIncomplete("Bearer eyJhbGciOiJIUzI1NiJ9", "'AWS4-HMAC-SHA256'");
  ExpectIncomplete("", "'AWS4-HMAC-SHA256'");
}

TEST(ParseAuthorizationTest, NamesEveryMissingPart) {
  ExpectIncomplete("AWS4-HMAC-SHA256",
                   "Authorization header requires 'Credential' parameter. Authorization header "
                   "requires 'SignedHeaders' parameter. Authorization header requires "
                   "'Signature' parameter.");
  ExpectIncomplete(absl::StrCat("AWS4-HMAC-SHA256 ", kCred, ", SignedHeaders=host;x-amz-date"),
                   "requires 'Signature' parameter.");
  ExpectIncomplete(absl::StrCat("AWS4-HMAC-SHA256 ", kCred, ", Signature=", kSig),
                   "requires 'SignedHeaders' parameter.");
  ExpectIncomplete(absl::StrCat("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=", kSig),
                   "requires 'Credential' parameter.");
}

TEST(ParseAuthorizationTest, RefusesRepeatedUnknownAndMalformedParts) {
  ExpectIncomplete(absl::StrCat(Valid(), ", Signature=", kSig), "more than one 'Signature'");
  ExpectIncomplete(absl::StrCat(Valid(), ", ", kCred), "more than one 'Credential'");
  ExpectIncomplete(absl::StrCat(Valid(), ", Extra=1"), "only have the parts");
  ExpectIncomplete(absl::StrCat(Valid(), ","), "key=value");
  ExpectIncomplete(absl::StrCat(Valid(), ",,"), "key=value");
  ExpectIncomplete(Header(kCred, "SignedHeaders", absl::StrCat("Signature=", kSig)), "key=value");
  ExpectIncomplete(Header(kCred, "SignedHeaders=", absl::StrCat("Signature=", kSig)),
                   "without spaces");
  ExpectIncomplete(Header("Credential= AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
                          "SignedHeaders=host;x-amz-date", absl::StrCat("Signature=", kSig)),
                   "without spaces");
  ExpectIncomplete(Header(kCred, "signedheaders=host;x-amz-date", absl::StrCat("Signature=", kSig)),
                   "only have the parts");
}

TEST(ParseAuthorizationTest, RefusesMalformedCredentials) {
  auto with_credential = [](absl::string_view c) {
    return Header(absl::StrCat("Credential=", c), "SignedHeaders=host;x-amz-date",
                  absl::StrCat("Signature=", kSig));
  };
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150830/us-east-1/service"),
                   "exactly 5 slash-delimited elements");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x"),
                   "exactly 5 slash-delimited elements");
  ExpectIncomplete(with_credential("/20150830/us-east-1/service/aws4_request"), "access key id");
  ExpectIncomplete(with_credential("AKID.EXAMPLE/20150830/us-east-1/service/aws4_request"),
                   "access key id");
  ExpectIncomplete(with_credential(absl::StrCat(std::string(129, 'A'),
                                                "/20150830/us-east-1/service/aws4_request")),
                   "access key id");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/2015083/us-east-1/service/aws4_request"), "date");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150230/us-east-1/service/aws4_request"), "date");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/2015-08-30/us-east-1/service/aws4_request"),
                   "date");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150830//service/aws4_request"), "region");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150830/us.east.1/service/aws4_request"),
                   "region");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150830/us-east-1//aws4_request"), "service");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150830/us-east-1/service/aws4_requesT"),
                   "valid terminator: 'aws4_request'");
  ExpectIncomplete(with_credential("AKIDEXAMPLE/20150830/us-east-1/service/aws5_request"),
                   "valid terminator");
}

TEST(ParseAuthorizationTest, RefusesBadSignedHeaders) {
  auto with_signed = [](absl::string_view s) {
    return Header(kCred, absl::StrCat("SignedHeaders=", s), absl::StrCat("Signature=", kSig));
  };
  ExpectIncomplete(with_signed("x-amz-date;host"), "sorted");
  ExpectIncomplete(with_signed("host;host;x-amz-date"), "sorted and without repeats");
  ExpectIncomplete(with_signed("Host;x-amz-date"), "lower case");
  ExpectIncomplete(with_signed("host;;x-amz-date"), "header names");
  ExpectIncomplete(with_signed("host;x-amz-date;"), "header names");
  ExpectIncomplete(with_signed("host;x(amz);x-amz-date"), "header names");
  ExpectIncomplete(with_signed("x-amz-date"), "must include 'host'");
  ExpectIncomplete(with_signed("content-type;host"), "must include 'x-amz-date'");
  ExpectIncomplete(with_signed(absl::StrCat("host;", std::string(257, 'x'), ";x-amz-date")),
                   "header names");
}

TEST(ParseAuthorizationTest, RefusesTooManySignedHeadersInLinearTime) {
  std::vector<std::string> names = {"host", "x-amz-date"};
  for (int i = 0; i < 10000; ++i) names.push_back(absl::StrCat("x-h", 100000 + i));
  std::sort(names.begin(), names.end());
  const absl::Time start = absl::Now();
  ExpectIncomplete(Header(kCred, absl::StrCat("SignedHeaders=", absl::StrJoin(names, ";")),
                          absl::StrCat("Signature=", kSig)),
                   "more than 64 headers");
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  names.resize(kMaxSignedHeaders);  // still sorted, still holds host and x-amz-date
  ASSERT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_TRUE(
      ParseAuthorization(Header(kCred, absl::StrCat("SignedHeaders=", absl::StrJoin(names, ";")),
                                absl::StrCat("Signature=", kSig)))
          .ok());
}

TEST(ParseAuthorizationTest, RefusesSignaturesThatAreNot64LowerCaseHexDigits) {
  const std::string sig = kSig;
  for (const std::string& bad :
       {sig.substr(1), sig + "0", absl::StrCat("A", sig.substr(1)),
        absl::StrCat("g", sig.substr(1)), absl::StrCat("0x", sig.substr(2))}) {
    ExpectIncomplete(
        Header(kCred, "SignedHeaders=host;x-amz-date", absl::StrCat("Signature=", bad)),
        "64 lower-case hexadecimal");
  }
}

TEST(AmzDateTest, ParsesAndFormats) {
  absl::StatusOr<absl::Time> t = ParseAmzDate("20150830T123600Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, absl::FromCivil(absl::CivilSecond(2015, 8, 30, 12, 36, 0), absl::UTCTimeZone()));
  EXPECT_EQ(FormatAmzDate(*t), "20150830T123600Z");
  EXPECT_EQ(FormatAmzDate(*t + absl::Milliseconds(999)), "20150830T123600Z");
  EXPECT_EQ(
      FormatAmzDate(absl::FromCivil(absl::CivilSecond(999, 1, 2, 3, 4, 5), absl::UTCTimeZone())),
      "09990102T030405Z");
  EXPECT_TRUE(ParseAmzDate("20240229T235959Z").ok());
}

TEST(AmzDateTest, RefusesAnythingElse) {
  for (absl::string_view bad :
       {"", "20150830T123600", "20150830T123600z", "20150830t123600Z", "2015-08-30T12:36:00Z",
        "20150830T123600Z ", " 20150830T123600Z", "20150830T243600Z", "20150830T126000Z",
        "20150830T123660Z", "20150230T123600Z", "20230229T000000Z", "20151301T000000Z",
        "20150800T000000Z", "2015083OT123600Z", "Sun, 30 Aug 2015 12:36:00 GMT"}) {
    absl::StatusOr<absl::Time> t = ParseAmzDate(bad);
    EXPECT_EQ(GetSigV4Error(t.status()), SigV4Error::kIncompleteSignature) << bad;
  }
}

TEST(SyntaxTest, SharedRules) {
  EXPECT_TRUE(IsValidAccessKeyId("AKIAIOSFODNN7EXAMPLE"));
  EXPECT_TRUE(IsValidAccessKeyId("coffer_key_1"));
  EXPECT_FALSE(IsValidAccessKeyId(""));
  EXPECT_FALSE(IsValidAccessKeyId("a/b"));
  EXPECT_TRUE(IsValidScopeName("us-east-1"));
  EXPECT_TRUE(IsValidScopeName("local"));
  EXPECT_FALSE(IsValidScopeName("a b"));
  EXPECT_FALSE(IsValidScopeName(std::string(65, 'a')));
  EXPECT_TRUE(IsValidHeaderName("X-Amz-Target"));
  EXPECT_FALSE(IsValidHeaderName("X Amz"));
  EXPECT_FALSE(IsValidHeaderName("a;b"));
  EXPECT_FALSE(IsValidHeaderName("a:b"));
  EXPECT_FALSE(IsValidHeaderName(""));
}

}  // namespace
}  // namespace coffer::sigv4
