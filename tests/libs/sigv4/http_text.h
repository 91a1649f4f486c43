// http_text.h: a request written as HTTP/1.1 text (the AWS test suite's
// format) turned into the HttpRequestView the library takes, for tests.
//
//   OwnedRequest r = ParseHttpText("GET /?a=b HTTP/1.1\nHost:example.com\n\n");
//   VerifySigV4(r.View(), ...);
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "libs/sigv4/http_request.h"

namespace coffer::sigv4::testing {

// Owns what an HttpRequestView points into; View() is valid while it lives
// and is not changed.
struct OwnedRequest {
  std::string method;
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::vector<HttpHeader> header_views;

  HttpRequestView View() {
    header_views.clear();
    for (const auto& [name, value] : headers) header_views.push_back({name, value});
    return HttpRequestView{method, path, query, header_views, body};
  }
  void Add(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  // Removes every header named `name` (any case).
  void Remove(absl::string_view name) {
    std::vector<std::pair<std::string, std::string>> kept;
    for (auto& h : headers) {
      if (!absl::EqualsIgnoreCase(h.first, name)) kept.push_back(std::move(h));
    }
    headers = std::move(kept);
  }
  // The value of the first header `name` (any case), or "".
  std::string Get(absl::string_view name) const {
    for (const auto& h : headers) {
      if (absl::EqualsIgnoreCase(h.first, name)) return h.second;
    }
    return "";
  }
};

// "<method> <target> HTTP/1.1" (the target may hold spaces), header lines
// "Name:value" whose continuation lines start with a space (kept, joined by
// '\n', as a server that does not unfold would pass them), an empty line,
// the body.
inline OwnedRequest ParseHttpText(absl::string_view text) {
  OwnedRequest r;
  const size_t head_end = text.find("\n\n");
  absl::string_view head = text.substr(0, head_end);
  if (head_end != absl::string_view::npos) r.body = std::string(text.substr(head_end + 2));
  std::vector<absl::string_view> lines = absl::StrSplit(head, '\n');
  absl::string_view request_line = lines[0];
  const size_t sp = request_line.find(' ');
  r.method = std::string(request_line.substr(0, sp));
  absl::string_view target = request_line.substr(sp + 1);
  EXPECT_TRUE(absl::ConsumeSuffix(&target, " HTTP/1.1")) << request_line;
  const size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != absl::string_view::npos) r.query = std::string(target.substr(q + 1));
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    if (!line.empty() && line[0] == ' ') {
      r.headers.back().second += "\n" + std::string(line);
      continue;
    }
    const size_t colon = line.find(':');
    r.Add(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return r;
}

}  // namespace coffer::sigv4::testing
