// http_server.h: coffer-agent's local HTTP listener, on civetweb (already
// in the dependency tree through prometheus-cpp's exposer): a fixed pool of
// threads, bounded request size and time, one handler for every path.
//
//   HttpServerOptions options;            // 127.0.0.1:2773
//   COFFER_ASSIGN_OR_RETURN(auto server, HttpServer::Start(options,
//       [&](const HttpRequest& r) { return handler.Handle(r); }));
//   server->port();
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/agent/agent_handler.h"

struct mg_context;
struct mg_connection;

namespace coffer::agent {

struct HttpServerOptions {
  // host:port; the host must be a loopback address (port 0: pick one).
  std::string listen_address = "127.0.0.1:2773";
  int threads = 16;                   // requests served at once
  int max_connections = 800;          // in service plus queued; beyond: 429
  int max_request_bytes = 16 * 1024;  // request line and headers
  absl::Duration request_timeout = absl::Seconds(61);
};

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

}  // namespace coffer::agent
