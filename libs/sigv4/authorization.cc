#include "libs/sigv4/authorization.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/sigv4/sigv4_error.h"

namespace coffer::sigv4 {
namespace {

absl::Status Incomplete(absl::string_view message) {
  return MakeSigV4Error(SigV4Error::kIncompleteSignature, message);
}

bool IsDigits(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

int Number(absl::string_view digits) {
  int n = 0;
  for (char c : digits) n = n * 10 + (c - '0');
  return n;
}

// A real calendar date "YYYYMMDD" (the scope's date).
bool IsValidScopeDate(absl::string_view date) {
  if (date.size() != 8 || !IsDigits(date)) return false;
  const int y = Number(date.substr(0, 4));
  const int m = Number(date.substr(4, 2));
  const int d = Number(date.substr(6, 2));
  const absl::CivilDay day(y, m, d);  // normalizes 2015-02-30 to March
  return day.year() == y && day.month() == m && day.day() == d;
}

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

absl::string_view TrimOws(absl::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

bool HasWhitespace(absl::string_view s) {
  for (char c : s) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

absl::Status ParseCredential(absl::string_view value, Authorization& out) {
  std::vector<absl::string_view> parts = absl::StrSplit(value, '/');
  if (parts.size() != 5) {
    return Incomplete(
        "Credential must have exactly 5 slash-delimited elements, e.g. "
        "keyid/date/region/service/term");
  }
  if (!IsValidAccessKeyId(parts[0])) {
    return Incomplete("Credential's access key id must be 1-128 letters, digits or '_'");
  }
  if (!IsValidScopeDate(parts[1])) {
    return Incomplete("Credential's date must be a date as YYYYMMDD");
  }
  if (!IsValidScopeName(parts[2])) {
    return Incomplete("Credential's region must be 1-64 letters, digits, '-' or '_'");
  }
  if (!IsValidScopeName(parts[3])) {
    return Incomplete("Credential's service must be 1-64 letters, digits, '-' or '_'");
  }
  if (parts[4] != kScopeTerminator) {
    return Incomplete("Credential should be scoped with a valid terminator: 'aws4_request'");
  }
  out.access_key_id = std::string(parts[0]);
  out.scope = CredentialScope{std::string(parts[1]), std::string(parts[2]), std::string(parts[3])};
  return absl::OkStatus();
}

absl::Status ParseSignedHeaders(absl::string_view value, Authorization& out) {
  // Counted before splitting: a header listing 10,000 names costs one pass.
  size_t count = 1;
  for (char c : value) count += c == ';';
  if (count > kMaxSignedHeaders) {
    return Incomplete(
        absl::StrCat("SignedHeaders lists more than ", kMaxSignedHeaders, " headers"));
  }
  std::vector<std::string> names;
  names.reserve(count);
  for (absl::string_view name : absl::StrSplit(value, ';')) {
    if (!IsValidHeaderName(name)) {
      return Incomplete("SignedHeaders must be header names separated by ';'");
    }
    for (char c : name) {
      if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
        return Incomplete("SignedHeaders must be lower case");
      }
    }
    if (!names.empty() && !(names.back() < name)) {
      return Incomplete("SignedHeaders must be sorted and without repeats");
    }
    names.emplace_back(name);
  }
  for (absl::string_view required : {"host", "x-amz-date"}) {
    bool found = false;
    for (const std::string& n : names) found = found || n == required;
    if (!found) return Incomplete(absl::StrCat("SignedHeaders must include '", required, "'"));
  }
  out.signed_headers = std::move(names);
  return absl::OkStatus();
}

absl::Status ParseSignature(absl::string_view value, Authorization& out) {
  bool ok = value.size() == 64;
  for (char c : value)
    ok = ok && (absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'));
  if (!ok) return Incomplete("Signature must be 64 lower-case hexadecimal digits");
  out.signature = std::string(value);
  return absl::OkStatus();
}

}  // namespace

std::string CredentialScope::ToString() const {
  return absl::StrCat(date, "/", region, "/", service, "/", kScopeTerminator);
}

bool IsValidAccessKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool IsValidScopeName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsValidHeaderName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxHeaderNameBytes) return false;
  for (char c : name) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

absl::StatusOr<Authorization> ParseAuthorization(absl::string_view header) {
  header = TrimOws(header);
  const size_t space = header.find(' ');
  if (header.substr(0, space) != kAlgorithm) {
    return Incomplete("Authorization header must start with the algorithm 'AWS4-HMAC-SHA256'");
  }
  absl::string_view rest = header.substr(space == absl::string_view::npos ? header.size() : space);
  rest = TrimOws(rest);

  std::optional<absl::string_view> credential, signed_headers, signature;
  if (!rest.empty()) {
    for (absl::string_view part : absl::StrSplit(rest, ',')) {
      part = TrimOws(part);
      const size_t eq = part.find('=');
      if (eq == absl::string_view::npos) {
        return Incomplete("Authorization header parts must be key=value pairs separated by commas");
      }
      const absl::string_view key = part.substr(0, eq);
      const absl::string_view value = part.substr(eq + 1);
      std::optional<absl::string_view>* slot = key == "Credential"      ? &credential
                                               : key == "SignedHeaders" ? &signed_headers
                                               : key == "Signature"     ? &signature
                                                                        : nullptr;
      if (slot == nullptr) {
        return Incomplete(
            "Authorization header may only have the parts Credential, SignedHeaders and "
            "Signature");
      }
      if (slot->has_value()) {
        return Incomplete(
            absl::StrCat("Authorization header has more than one '", key, "' parameter"));
      }
      if (value.empty() || HasWhitespace(value)) {
        return Incomplete(absl::StrCat("Authorization header's '", key,
                                       "' parameter must be a value without spaces"));
      }
      *slot = value;
    }
  }
  // All missing parts at once, in AWS's words.
  std::string missing;
  if (!credential)
    absl::StrAppend(&missing, "Authorization header requires 'Credential' parameter. ");
  if (!signed_headers) {
    absl::StrAppend(&missing, "Authorization header requires 'SignedHeaders' parameter. ");
  }
  if (!signature)
    absl::StrAppend(&missing, "Authorization header requires 'Signature' parameter. ");
  if (!missing.empty()) {
    missing.pop_back();
    return Incomplete(missing);
  }

  Authorization out;
  if (absl::Status s = ParseCredential(*credential, out); !s.ok()) return s;
  if (absl::Status s = ParseSignedHeaders(*signed_headers, out); !s.ok()) return s;
  if (absl::Status s = ParseSignature(*signature, out); !s.ok()) return s;
  return out;
}

std::string FormatAuthorization(const Authorization& auth) {
  return absl::StrCat(kAlgorithm, " Credential=", auth.access_key_id, "/", auth.scope.ToString(),
                      ", SignedHeaders=", absl::StrJoin(auth.signed_headers, ";"),
                      ", Signature=", auth.signature);
}

absl::StatusOr<absl::Time> ParseAmzDate(absl::string_view value) {
  // "YYYYMMDDTHHMMSSZ"
  const bool shaped = value.size() == 16 && IsDigits(value.substr(0, 8)) && value[8] == 'T' &&
                      IsDigits(value.substr(9, 6)) && value[15] == 'Z';
  if (shaped) {
    const int y = Number(value.substr(0, 4));
    const int mo = Number(value.substr(4, 2));
    const int d = Number(value.substr(6, 2));
    const int h = Number(value.substr(9, 2));
    const int mi = Number(value.substr(11, 2));
    const int s = Number(value.substr(13, 2));
    const absl::CivilSecond cs(y, mo, d, h, mi, s);  // normalizes out-of-range fields
    if (cs.year() == y && cs.month() == mo && cs.day() == d && cs.hour() == h &&
        cs.minute() == mi && cs.second() == s) {
      return absl::FromCivil(cs, absl::UTCTimeZone());
    }
  }
  return Incomplete("X-Amz-Date must be a UTC date and time as YYYYMMDD'T'HHMMSS'Z'");
}

bool IsWithinAmzDateRange(absl::Time t) {
  const absl::CivilSecond cs = absl::ToCivilSecond(t, absl::UTCTimeZone());
  return cs.year() >= 0 && cs.year() <= 9999;
}

std::string FormatAmzDate(absl::Time t) {
  // Zero-padded by hand: FormatTime's %Y does not pad years before 1000.
  const absl::CivilSecond cs = absl::ToCivilSecond(t, absl::UTCTimeZone());
  return absl::StrFormat("%04d%02d%02dT%02d%02d%02dZ", cs.year(), cs.month(), cs.day(), cs.hour(),
                         cs.minute(), cs.second());
}

}  // namespace coffer::sigv4
