#include "libs/sigv4/canonical.h"

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/sigv4/digest.h"
#include "libs/sigv4/sigv4_error.h"

namespace coffer::sigv4 {
namespace {

bool IsUnreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

// Percent-encodes every byte but the unreserved ones (and '/' when
// `keep_slash`), with upper-case hex.
void AppendEncoded(absl::string_view s, bool keep_slash, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : s) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      const auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xf]);
    }
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string QueryComponent(absl::string_view raw) {
  std::string out;
  AppendEncoded(PercentDecode(raw), /*keep_slash=*/false, out);
  return out;
}

bool IsHeaderSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

}  // namespace

std::string CanonicalUri(absl::string_view raw_path) {
  // botocore's remove_dot_segments: RFC 3986 section 5.2.4, and empty
  // segments dropped as AWS requires.
  std::vector<absl::string_view> kept;
  for (absl::string_view segment : absl::StrSplit(raw_path, '/')) {
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      if (!kept.empty()) kept.pop_back();
      continue;
    }
    kept.push_back(segment);
  }
  std::string normalized;
  if (!raw_path.empty() && raw_path.front() == '/') normalized.push_back('/');
  normalized += absl::StrJoin(kept, "/");
  if (!raw_path.empty() && raw_path.back() == '/' && !kept.empty()) normalized.push_back('/');
  if (normalized.empty()) normalized = "/";

  std::string out;
  out.reserve(normalized.size());
  AppendEncoded(normalized, /*keep_slash=*/true, out);
  return out;
}

std::string CanonicalQueryString(absl::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> params;
  for (absl::string_view param : absl::StrSplit(raw_query, '&', absl::SkipEmpty())) {
    const size_t eq = param.find('=');
    if (eq == absl::string_view::npos) {
      params.emplace_back(QueryComponent(param), "");
    } else {
      params.emplace_back(QueryComponent(param.substr(0, eq)),
                          QueryComponent(param.substr(eq + 1)));
    }
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    absl::StrAppend(&out, name, "=", value);
  }
  return out;
}

std::string CanonicalHeaderValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsHeaderSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::string> CanonicalRequest(const HttpRequestView& request,
                                             absl::Span<const std::string> signed_headers) {
  return CanonicalRequest(request, signed_headers, HexSha256(request.body));
}

absl::StatusOr<std::string> CanonicalRequest(const HttpRequestView& request,
                                             absl::Span<const std::string> signed_headers,
                                             absl::string_view payload_hash_hex) {
  // Every received header by lower-case name, repeats in arrival order
  // (stable sort), then one merge with the sorted signed names: O(n log n)
  // however many headers either side has.
  struct Named {
    std::string name;
    size_t index;
  };
  std::vector<Named> received;
  received.reserve(request.headers.size());
  for (size_t i = 0; i < request.headers.size(); ++i) {
    received.push_back({absl::AsciiStrToLower(request.headers[i].name), i});
  }
  std::stable_sort(received.begin(), received.end(),
                   [](const Named& a, const Named& b) { return a.name < b.name; });

  std::string out = absl::StrCat(request.method, "\n", CanonicalUri(request.path), "\n",
                                 CanonicalQueryString(request.query), "\n");
  size_t r = 0;
  for (const std::string& name : signed_headers) {
    while (r < received.size() && received[r].name < name) ++r;
    if (r == received.size() || received[r].name != name) {
      return MakeSigV4Error(SigV4Error::kInvalidSignature,
                            absl::StrCat("The signed header '", name, "' is not in the request"));
    }
    absl::StrAppend(&out, name, ":");
    bool first = true;
    for (; r < received.size() && received[r].name == name; ++r) {
      if (!first) out.push_back(',');
      first = false;
      out += CanonicalHeaderValue(request.headers[received[r].index].value);
    }
    out.push_back('\n');
  }
  absl::StrAppend(&out, "\n", absl::StrJoin(signed_headers, ";"), "\n", payload_hash_hex);
  return out;
}

std::string StringToSign(absl::string_view amz_date, const CredentialScope& scope,
                         absl::string_view canonical_request) {
  return absl::StrCat(kAlgorithm, "\n", amz_date, "\n", scope.ToString(), "\n",
                      HexSha256(canonical_request));
}

}  // namespace coffer::sigv4
