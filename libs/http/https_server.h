// https_server.h: an HTTPS listener (coffer-gateway) on cpp-httplib, which
// links OpenSSL 3 itself (Debian 12's civetweb loads OpenSSL 1.1 symbols by
// name and crashes on the first TLS connection). Same request and response
// types and handler as http_server.h: a fixed pool of threads, one handler
// for every method and path, TLS 1.2 or later, bounded body, header count
// and time; every request and response body is wiped once the response is
// written (whatever `sensitive` says: they are small).
//
//   HttpsServerOptions options;
//   options.listen_address = "0.0.0.0:7704";
//   options.tls_cert_file = "gateway.crt";
//   options.tls_key_file = "gateway.key";
//   COFFER_ASSIGN_OR_RETURN(auto server, HttpsServer::Start(options, handler));
//   server->port();
//
// The request's path and query are the raw request target split at '?'
// (not decoded: what a SigV4 signature covers).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/http/http_server.h"

namespace httplib {
class SSLServer;
}

namespace coffer::http {

struct HttpsServerOptions {
  std::string listen_address = "127.0.0.1:0";  // host:port (port 0: pick one)
  std::string tls_cert_file;                   // PEM chain
  std::string tls_key_file;                    // PEM key
  int threads = 32;                            // connections served at once
  size_t max_body_bytes = 1 << 20;             // larger: 413
  size_t max_headers = 64;                     // more: 431
  absl::Duration read_timeout = absl::Seconds(10);
  absl::Duration write_timeout = absl::Seconds(10);
  absl::Duration keep_alive_timeout = absl::Seconds(5);
  int keep_alive_max_requests = 1000;
  // The answer to a request refused before the handler (413 body too large,
  // 431 too many headers, 400 malformed HTTP...), from its status; unset:
  // a plain-text reason.
  std::function<HttpResponse(int status)> error_response;
};

class HttpsServer {
 public:
  // INVALID_ARGUMENT for bad options or a certificate and key that do not
  // load or match; UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpsServer>> Start(const HttpsServerOptions& options,
                                                            HttpServer::Handler handler);
  ~HttpsServer();  // stops accepting, finishes the requests in service
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  int port() const { return port_; }

 private:
  HttpsServer() = default;

  std::unique_ptr<httplib::SSLServer> server_;
  std::thread listener_;
  int port_ = 0;
};

}  // namespace coffer::http
