#include "libs/sigv4/canonical.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/sigv4/sigv4_error.h"
#include "tests/libs/sigv4/http_text.h"

namespace coffer::sigv4 {
namespace {

using ::testing::HasSubstr;
using testing::OwnedRequest;

TEST(CanonicalUriTest, NormalizesLikeAwsForServicesOtherThanS3) {
  EXPECT_EQ(CanonicalUri(""), "/");
  EXPECT_EQ(CanonicalUri("/"), "/");
  EXPECT_EQ(CanonicalUri("//"), "/");
  EXPECT_EQ(CanonicalUri("/./"), "/");
  EXPECT_EQ(CanonicalUri("/example/.."), "/");
  EXPECT_EQ(CanonicalUri("/example1/example2/../.."), "/");
  EXPECT_EQ(CanonicalUri("/../.."), "/");
  EXPECT_EQ(CanonicalUri("//example//"), "/example/");
  EXPECT_EQ(CanonicalUri("/./example"), "/example");
  EXPECT_EQ(CanonicalUri("/a/b/./c/."), "/a/b/c");
  EXPECT_EQ(CanonicalUri("/a/b/../c/"), "/a/c/");
  EXPECT_EQ(CanonicalUri("/..."), "/...");
}

TEST(CanonicalUriTest, EncodesEveryByteButUnreservedAndSlash) {
  EXPECT_EQ(CanonicalUri("/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(CanonicalUri("/example space/"), "/example%20space/");
  EXPECT_EQ(CanonicalUri("/\xe1\x88\xb4"), "/%E1%88%B4");
  EXPECT_EQ(CanonicalUri("/a+b=c&d:e@f"), "/a%2Bb%3Dc%26d%3Ae%40f");
  EXPECT_EQ(CanonicalUri(std::string("/a\0b", 4)), "/a%00b");
  // What arrives on the wire is already encoded; the client signed its
  // encoding (AWS's "double encoding" for every service but S3).
  EXPECT_EQ(CanonicalUri("/example%20space/"), "/example%2520space/");
}

TEST(CanonicalQueryStringTest, SortsAndEncodes) {
  EXPECT_EQ(CanonicalQueryString(""), "");
  EXPECT_EQ(CanonicalQueryString("Param2=value2&Param1=value1"), "Param1=value1&Param2=value2");
  EXPECT_EQ(CanonicalQueryString("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
  EXPECT_EQ(CanonicalQueryString("\xe1\x88\xb4=bar"), "%E1%88%B4=bar");
  // By name, then by value; upper case sorts before lower case (bytes).
  EXPECT_EQ(CanonicalQueryString("b=2&a=2&a=1&A=3"), "A=3&a=1&a=2&b=2");
  // '=' is always written; empty parameters are dropped.
  EXPECT_EQ(CanonicalQueryString("flag&x=&&y=1&"), "flag=&x=&y=1");
  // Decoded, then encoded per RFC 3986: lower-case escapes become upper
  // case, needless ones go, '/' and '+' are escaped, a stray '%' is itself.
  EXPECT_EQ(CanonicalQueryString("a=%2f%7e%41&b=x/y+z&c=100%&d=%zz&e=%4"),
            "a=%2F~A&b=x%2Fy%2Bz&c=100%25&d=%25zz&e=%254");
  // Only the first '=' separates.
  EXPECT_EQ(CanonicalQueryString("k==v=w"), "k=%3Dv%3Dw");
}

// What botocore 1.29.27 (the AWS CLI's signer) computes for the same wire
// request, from:
//   r = AWSRequest(method='GET', url='https://127.0.0.1:7704' + target)
//   SigV4Auth(Credentials('AKIDEXAMPLE', 'secret'), 'service', 'us-east-1')
//       .canonical_request(r).split('\n')[1:3]
TEST(CanonicalTest, AgreesWithBotocoreOnWireRequests) {
  const struct {
    const char* path;
    const char* query;
    const char* uri;
    const char* canonical_query;
  } cases[] = {
      {"/", "", "/", ""},
      {"/some%20path/%E1%88%B4/a%2Bb", "", "/some%2520path/%25E1%2588%25B4/a%252Bb", ""},
      {"/a/./b/../c//d/", "", "/a/c/d/", ""},
      {"/~user/%7E/x", "", "/~user/%257E/x", ""},
      {"/", "b=x%2Fy&a=%20&%E1%88%B4=%C3%A9&A=plus%2Bsign&a2=&k=%3D%26%3F", "/",
       "%E1%88%B4=%C3%A9&A=plus%2Bsign&a=%20&a2=&b=x%2Fy&k=%3D%26%3F"},
      {"/path", "z=1&Z=2&y-_.~=-_.~&z=0", "/path", "Z=2&y-_.~=-_.~&z=0&z=1"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(CanonicalUri(c.path), c.uri) << c.path;
    EXPECT_EQ(CanonicalQueryString(c.query), c.canonical_query) << c.query;
  }
}

TEST(CanonicalHeaderValueTest, TrimsAndCollapsesWhitespace) {
  EXPECT_EQ(CanonicalHeaderValue(""), "");
  EXPECT_EQ(CanonicalHeaderValue("   "), "");
  EXPECT_EQ(CanonicalHeaderValue(" value1"), "value1");
  EXPECT_EQ(CanonicalHeaderValue("\"a   b   c\""), "\"a b c\"");
  EXPECT_EQ(CanonicalHeaderValue("value1\n  value2\n     value3"), "value1 value2 value3");
  EXPECT_EQ(CanonicalHeaderValue("\ta\t\r\n b \v\f"), "a b");
  EXPECT_EQ(CanonicalHeaderValue("VALUE1"), "VALUE1");
}

TEST(CanonicalRequestTest, JoinsRepeatedHeadersInOrderAndIgnoresUnsignedOnes) {
  OwnedRequest r;
  r.method = "POST";
  r.path = "/";
  r.Add("HOST", "example.com");
  r.Add("x-b", " 2 ");
  r.Add("X-Unsigned", "whatever");
  r.Add("x-a", "1");
  r.Add("X-B", "1");
  r.Add("X-Amz-Date", "20150830T123600Z");
  r.body = "{}";
  absl::StatusOr<std::string> c = CanonicalRequest(r.View(), {"host", "x-a", "x-amz-date", "x-b"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c,
            "POST\n/\n\nhost:example.com\nx-a:1\nx-amz-date:20150830T123600Z\nx-b:2,1\n\n"
            "host;x-a;x-amz-date;x-b\n"
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
}

TEST(CanonicalRequestTest, ASignedHeaderMissingFromTheRequestIsInvalidSignature) {
  OwnedRequest r;
  r.method = "GET";
  r.path = "/";
  r.Add("Host", "example.com");
  absl::StatusOr<std::string> c = CanonicalRequest(r.View(), {"host", "x-amz-date"});
  EXPECT_EQ(GetSigV4Error(c.status()), SigV4Error::kInvalidSignature);
  EXPECT_THAT(c.status().message(), HasSubstr("'x-amz-date' is not in the request"));
}

TEST(CanonicalRequestTest, ManyHeadersOnBothSidesStayFast) {
  OwnedRequest r;
  r.method = "GET";
  r.path = "/";
  std::vector<std::string> signed_names;
  for (int i = 0; i < 20000; ++i) {
    r.Add(absl::StrCat("X-H", 100000 + i), "v");
    if (i % 2 == 0) signed_names.push_back(absl::StrCat("x-h", 100000 + i));
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> c = CanonicalRequest(r.View(), signed_names);
  EXPECT_TRUE(c.ok()) << c.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(StringToSignTest, Layout) {
  EXPECT_EQ(StringToSign("20150830T123600Z", {"20150830", "us-east-1", "service"}, ""),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace coffer::sigv4
