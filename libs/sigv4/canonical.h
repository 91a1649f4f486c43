// canonical.h: the SigV4 canonical request and string to sign, built the way
// AWS builds them for every service but S3 (and as botocore does), from the
// request exactly as received.
//
//   std::vector<std::string> signed_headers = {"host", "x-amz-date"};
//   COFFER_ASSIGN_OR_RETURN(std::string creq, CanonicalRequest(request, signed_headers));
//   std::string sts = StringToSign("20150830T123600Z", scope, creq);
//
// The canonical request is, one per line: the method; the canonical URI; the
// canonical query string; one "name:value" line per signed header; an empty
// line; the signed header names joined by ';'; the hex SHA-256 of the body.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "libs/sigv4/authorization.h"
#include "libs/sigv4/http_request.h"

namespace coffer::sigv4 {

// The canonical URI of a raw path (as in the request line, still
// percent-encoded): empty and "." segments and repeated slashes removed, ".."
// applied, then every byte but A-Z a-z 0-9 - . _ ~ and '/' percent-encoded
// (upper-case hex). An already-encoded path is thus encoded a second time
// ("/a%20b" -> "/a%2520b"): the client signed the encoding of the path it
// put on the wire, as AWS requires of every service but S3.
std::string CanonicalUri(absl::string_view raw_path);

// The canonical query string of a raw query (without '?'): parameters split
// at '&' (empty ones dropped) and at their first '=', names and values
// percent-decoded ('+' stays '+'; a '%' not followed by two hex digits stays
// itself) and re-encoded per RFC 3986 as above (and '/' too), sorted by name
// then value, each written "name=value" (the '=' even for an empty value).
std::string CanonicalQueryString(absl::string_view raw_query);

// A header value as signed: leading and trailing whitespace removed and
// each inner run of whitespace (space, tab, CR, LF, VT, FF) made one space.
std::string CanonicalHeaderValue(absl::string_view value);

// The canonical request over `signed_headers` (lower case, strictly
// ascending; the caller checked them). A header that repeats is one line,
// its canonical values joined by ',' in the order received. A signed header
// the request does not have is InvalidSignatureException.
absl::StatusOr<std::string> CanonicalRequest(const HttpRequestView& request,
                                             absl::Span<const std::string> signed_headers);
// The same with the body's hash given (what VerifySigV4 already computed).
absl::StatusOr<std::string> CanonicalRequest(const HttpRequestView& request,
                                             absl::Span<const std::string> signed_headers,
                                             absl::string_view payload_hash_hex);

// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex SHA-256 of the canonical request>".
std::string StringToSign(absl::string_view amz_date, const CredentialScope& scope,
                         absl::string_view canonical_request);

}  // namespace coffer::sigv4
