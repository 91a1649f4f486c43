// http_server.h: a small plain-HTTP listener (coffer-agent, the Catagram
// example) on civetweb, already in the dependency tree through
// prometheus-cpp's exposer: a fixed pool of threads, bounded request size,
// body and time, one handler for every path, loopback addresses only unless
// asked otherwise. HTTPS is https_server.h (Debian's civetweb cannot serve
// TLS with OpenSSL 3).
//
//   HttpServerOptions options;            // 127.0.0.1:2773
//   COFFER_ASSIGN_OR_RETURN(auto server, HttpServer::Start(options,
//       [&](const HttpRequest& r) { return HttpResponse{200, "text/plain", "hi"}; }));
//   server->port();
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct mg_context;
struct mg_connection;

namespace coffer::http {

struct HttpRequest {
  std::string method;
  std::string path;                            // the path as sent (not decoded), without the query
  std::string query;                           // raw query string, without '?'
  std::map<std::string, std::string> headers;  // names lower-case (the last of repeats)
  // Every header as received, names as sent, repeats kept in order (what a
  // signature over the headers needs).
  std::vector<std::pair<std::string, std::string>> header_list;
  std::string peer;  // remote address
  // The body (only with HttpServerOptions::max_body_bytes > 0); wiped once
  // the handler returns.
  std::string body;
};

struct HttpResponse {
  HttpResponse(int status = 200, std::string content_type = "text/plain", std::string body = "")
      : status(status), content_type(std::move(content_type)), body(std::move(body)) {}
  int status;
  std::string content_type;
  std::string body;
  // Extra response headers.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body holds a secret: wiped once sent.
  bool sensitive = false;
};

struct HttpServerOptions {
  // host:port; the host must be a loopback address (port 0: pick one)
  // unless allow_remote.
  std::string listen_address = "127.0.0.1:2773";
  // Serve other hosts too (an application's own endpoint, e.g. Catagram in
  // a container). Never for coffer-agent, whose contract is localhost only.
  bool allow_remote = false;
  int threads = 16;                   // requests served at once
  int max_connections = 800;          // in service plus queued; beyond: 429
  int max_request_bytes = 16 * 1024;  // request line and headers
  absl::Duration request_timeout = absl::Seconds(61);
  // Largest request body accepted (Content-Length required; larger: 413,
  // none: 411). 0: requests carry no body.
  size_t max_body_bytes = 0;
};

// "host:port" split; INVALID_ARGUMENT unless the port is 0-65535. The host
// keeps IPv6 brackets ("[::1]").
struct ListenAddress {
  std::string host;
  int port = 0;
};
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& address);

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // INVALID_ARGUMENT for a non-loopback address or bad limits; UNAVAILABLE
  // when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           Handler handler);
  ~HttpServer();  // stops accepting, waits for the requests in service
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer(HttpServerOptions options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  static int OnRequest(mg_connection* conn, void* self);

  const HttpServerOptions options_;
  const Handler handler_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::atomic<int> in_service_{0};
};

}  // namespace coffer::http
