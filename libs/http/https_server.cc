#include "libs/http/https_server.h"

#include <httplib.h>
#include <openssl/ssl.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::http {
namespace {

constexpr char kComponent[] = "http";

void Wipe(const std::string& s) { crypto::Wipe(const_cast<char*>(s.data()), s.size()); }

HttpRequest Convert(const httplib::Request& in) {
  HttpRequest out;
  out.method = in.method;
  const size_t question = in.target.find('?');
  out.path = in.target.substr(0, question);
  out.query = question == std::string::npos ? "" : in.target.substr(question + 1);
  out.peer = in.remote_addr;
  out.header_list.reserve(in.headers.size());
  for (const auto& [name, value] : in.headers) {
    out.headers[absl::AsciiStrToLower(name)] = value;
    out.header_list.emplace_back(name, value);
  }
  out.body = in.body;
  return out;
}

void Reply(HttpResponse response, httplib::Response& out) {
  out.status = response.status;
  out.set_header("Cache-Control", "no-store");
  for (const auto& [name, value] : response.headers) out.set_header(name, value);
  out.set_content(response.body, response.content_type.c_str());
  Wipe(response.body);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Start(const HttpsServerOptions& options,
                                                                HttpServer::Handler handler) {
  absl::StatusOr<ListenAddress> address = ParseListenAddress(options.listen_address);
  if (!address.ok()) return address.status();
  std::string host = address->host;
  const int port = address->port;
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (options.threads < 1 || options.max_body_bytes < 1 || options.max_headers < 1) {
    return absl::InvalidArgumentError("threads, max_body_bytes and max_headers must be >= 1");
  }
  std::unique_ptr<HttpsServer> server(new HttpsServer());
  server->server_ = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                         options.tls_key_file.c_str());
  if (!server->server_->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load the TLS certificate ",
                                                   options.tls_cert_file, " and key ",
                                                   options.tls_key_file));
  }
  SSL_CTX_set_min_proto_version(server->server_->ssl_context(), TLS1_2_VERSION);

  httplib::SSLServer& s = *server->server_;
  const int threads = options.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_payload_max_length(options.max_body_bytes);
  // A response is two writes (headers, body): without TCP_NODELAY the body
  // waits for the client's delayed ACK, 40 ms a call on a reused connection.
  s.set_tcp_nodelay(true);
  s.set_read_timeout(std::chrono::microseconds(absl::ToInt64Microseconds(options.read_timeout)));
  s.set_write_timeout(std::chrono::microseconds(absl::ToInt64Microseconds(options.write_timeout)));
  s.set_keep_alive_timeout(std::max<time_t>(1, absl::ToInt64Seconds(options.keep_alive_timeout)));
  s.set_keep_alive_max_count(static_cast<size_t>(std::max(1, options.keep_alive_max_requests)));
  const size_t max_headers = options.max_headers;
  // One handler for every method and path (registered per method: the
  // body is read before these run, unlike a pre-routing handler).
  std::function<HttpResponse(int)> refusal = options.error_response;
  if (!refusal) {
    refusal = [](int status) {
      return HttpResponse{status, "text/plain", absl::StrCat("HTTP ", status, "\n")};
    };
  }
  auto serve = [handler = std::move(handler), max_headers = options.max_headers, refusal](
                   const httplib::Request& request, httplib::Response& response) {
    if (request.headers.size() > max_headers) {
      Reply(refusal(431), response);
    } else {
      HttpRequest converted = Convert(request);
      HttpResponse answer = handler(converted);
      Wipe(converted.body);
      Reply(std::move(answer), response);
    }
    Wipe(request.body);
  };
  // What cpp-httplib refuses itself (a body over the limit, bad HTTP)
  // leaves the response empty; the handler's own answers have a body.
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [refusal](const httplib::Request&, httplib::Response& response) {
        if (!response.body.empty() || response.has_header("Content-Type")) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        Reply(refusal(response.status), response);
        return httplib::Server::HandlerResponse::Handled;
      }));
  // Every request and response body is wiped once the response is written
  // (cpp-httplib calls its logger then). A content provider's releaser would
  // come later still, but cpp-httplib 0.11 never sends such a body to a
  // client that asked for "Connection: close".
  s.set_logger([](const httplib::Request& request, const httplib::Response& response) {
    Wipe(request.body);
    Wipe(response.body);
  });
  s.Get(".*", serve);
  s.Post(".*", serve);
  s.Put(".*", serve);
  s.Patch(".*", serve);
  s.Delete(".*", serve);
  s.Options(".*", serve);

  if (port == 0) {
    server->port_ = s.bind_to_any_port(host);
  } else if (s.bind_to_port(host, port)) {
    server->port_ = port;
  }
  if (server->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address));
  }
  server->listener_ = std::thread([&s] { s.listen_after_bind(); });
  log::Info(kComponent, "serving HTTPS",
            {{"address", host}, {"port", absl::StrCat(server->port_)}});
  return server;
}

HttpsServer::~HttpsServer() {
  if (server_ != nullptr) server_->stop();
  if (listener_.joinable()) listener_.join();
}

}  // namespace coffer::http
