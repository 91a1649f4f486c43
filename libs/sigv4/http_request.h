// http_request.h: the HTTP request as SigV4 sees it — plain views over what
// the HTTP server received, nothing parsed or decoded.
//
//   std::vector<coffer::sigv4::HttpHeader> headers = {
//       {"Host", "127.0.0.1:7704"}, {"X-Amz-Date", "20240517T093000Z"}, ...};
//   coffer::sigv4::HttpRequestView request{"POST", "/", "", headers, body};
//
// The views must outlive the calls they are passed to.
#pragma once

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace coffer::sigv4 {

// One header line as received: any case, names may repeat (in the order they
// came; SigV4 joins repeated headers in that order).
struct HttpHeader {
  absl::string_view name;
  absl::string_view value;
};

struct HttpRequestView {
  absl::string_view method;  // "POST"
  // The path exactly as in the request line, still percent-encoded, without
  // the query: "/" for every AWS JSON call.
  absl::string_view path;
  // The raw query after '?', without it; "" when there is none.
  absl::string_view query;
  absl::Span<const HttpHeader> headers;
  absl::string_view body;
};

}  // namespace coffer::sigv4
