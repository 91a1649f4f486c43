// sigv4_request_text.h: sigv4_fuzz's input — an HTTP request as text — and
// the fixed world it is verified in (clock, access keys), shared with
// make_seeds, which writes correctly signed seeds in the same format.
//
//   POST /?a=b            (method, a space, the raw path and query)
//   Host:127.0.0.1:7704   (header lines "name:value", as received)
//   X-Amz-Date:20240517T093000Z
//                         (an empty line)
//   {"SecretId": "x"}     (the body: the rest, newlines included)
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/sigv4/http_request.h"

namespace coffer::fuzz {

// The fuzzed server's clock, and its one enabled key (plus one whose store
// is down and one disabled: the lookup's other answers).
inline absl::Time Sigv4FuzzNow() {
  return absl::FromCivil(absl::CivilSecond(2024, 5, 17, 9, 30, 0), absl::UTCTimeZone());
}
inline constexpr char kSigv4FuzzAccessKeyId[] = "AKIACOFFEREXAMPLE01";
inline constexpr char kSigv4FuzzSecret[] = "cOfFeR/eXaMpLe+SeCrEt/KeY0123456789abcdE";
inline constexpr char kSigv4FuzzUnavailableKeyId[] = "AKIASTOREDOWN";
inline constexpr char kSigv4FuzzDisabledKeyId[] = "AKIADISABLED";

// At most this many header lines are read (the library is linear in them;
// this keeps each run short).
inline constexpr size_t kSigv4FuzzMaxHeaders = 256;

struct RequestText {
  std::string method, path, query, body;
  std::vector<std::pair<std::string, std::string>> headers;

  std::vector<sigv4::HttpHeader> views;
  // Valid while this lives and is not changed.
  sigv4::HttpRequestView View() {
    views.clear();
    for (const auto& [name, value] : headers) views.push_back({name, value});
    return sigv4::HttpRequestView{method, path, query, views, body};
  }
};

inline RequestText ParseRequestText(absl::string_view text) {
  RequestText r;
  auto next_line = [&text]() {
    const size_t nl = text.find('\n');
    absl::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == absl::string_view::npos ? text.size() : nl + 1);
    return line;
  };
  absl::string_view first = next_line();
  const size_t sp = first.find(' ');
  r.method = std::string(first.substr(0, sp));
  absl::string_view target = sp == absl::string_view::npos ? "" : first.substr(sp + 1);
  const size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != absl::string_view::npos) r.query = std::string(target.substr(q + 1));
  while (!text.empty() && r.headers.size() < kSigv4FuzzMaxHeaders) {
    absl::string_view line = next_line();
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      r.headers.emplace_back(std::string(line), "");
    } else {
      r.headers.emplace_back(std::string(line.substr(0, colon)),
                             std::string(line.substr(colon + 1)));
    }
  }
  r.body = std::string(text);
  return r;
}

// The text ParseRequestText reads back as `r` (when no header line holds a
// newline and the headers fit).
inline std::string FormatRequestText(const RequestText& r) {
  std::string out = absl::StrCat(r.method, " ", r.path, r.query.empty() ? "" : "?", r.query, "\n");
  for (const auto& [name, value] : r.headers) absl::StrAppend(&out, name, ":", value, "\n");
  absl::StrAppend(&out, "\n", r.body);
  return out;
}

}  // namespace coffer::fuzz
