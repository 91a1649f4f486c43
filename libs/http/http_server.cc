#include "libs/http/http_server.h"

#include <civetweb.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::http {

namespace {

constexpr char kComponent[] = "http";

bool LoopbackHost(absl::string_view host) {
  return host == "localhost" || absl::StartsWith(host, "127.") || host == "[::1]";
}

void Send(mg_connection* conn, const HttpResponse& r) {
  std::string head =
      absl::StrCat("HTTP/1.1 ", r.status, " ", mg_get_response_code_text(conn, r.status),
                   "\r\nContent-Type: ", r.content_type, "\r\nContent-Length: ", r.body.size(),
                   "\r\nCache-Control: no-store\r\n");
  for (const auto& [name, value] : r.headers) absl::StrAppend(&head, name, ": ", value, "\r\n");
  head += "\r\n";
  mg_write(conn, head.data(), head.size());
  mg_write(conn, r.body.data(), r.body.size());
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen address must be host:port: ", address));
  }
  return ListenAddress{address.substr(0, colon), port};
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              Handler handler) {
  absl::StatusOr<ListenAddress> address = ParseListenAddress(options.listen_address);
  if (!address.ok()) return address.status();
  const std::string host = address->host;
  const int port = address->port;
  if (!options.allow_remote && !LoopbackHost(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the agent serves loopback only (127.0.0.1, [::1], localhost), not ", host));
  }
  if (options.threads < 1 || options.max_connections < options.threads ||
      options.max_request_bytes < 1024) {
    return absl::InvalidArgumentError(
        "threads >= 1, max_connections >= threads, max_request_bytes >= 1024");
  }
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });

  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(handler)));
  const std::string ports = (host == "localhost" ? "127.0.0.1" : host) + ":" + std::to_string(port);
  const std::string threads = std::to_string(options.threads);
  const std::string queue = std::to_string(std::max(1, options.max_connections - options.threads));
  const std::string max_request = std::to_string(options.max_request_bytes);
  const std::string timeout = std::to_string(absl::ToInt64Milliseconds(options.request_timeout));
  const char* mg_options[] = {"listening_ports",
                              ports.c_str(),
                              "num_threads",
                              threads.c_str(),
                              "connection_queue",
                              queue.c_str(),
                              "max_request_size",
                              max_request.c_str(),
                              "request_timeout_ms",
                              timeout.c_str(),
                              "enable_keep_alive",
                              "yes",
                              "keep_alive_timeout_ms",
                              "5000",
                              nullptr};
  mg_callbacks callbacks{};
  server->ctx_ = mg_start(&callbacks, server.get(), mg_options);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", ports));
  }
  mg_set_request_handler(server->ctx_, "/", &HttpServer::OnRequest, server.get());
  mg_server_port bound[4];
  const int n = mg_get_server_ports(server->ctx_, 4, bound);
  if (n < 1) return absl::UnavailableError(absl::StrCat("no port bound for ", ports));
  server->port_ = bound[0].port;
  log::Info(kComponent, "serving HTTP", {{"address", host}, {"port", absl::StrCat(server->port_)}});
  return server;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int HttpServer::OnRequest(mg_connection* conn, void* self_ptr) {
  auto* self = static_cast<HttpServer*>(self_ptr);
  const mg_request_info* info = mg_get_request_info(conn);
  struct Count {
    std::atomic<int>& n;
    ~Count() { n.fetch_sub(1); }
  } count{self->in_service_};
  if (self->in_service_.fetch_add(1) >= self->options_.max_connections) {
    Send(conn, HttpResponse{429, "text/plain", "Connection limit exceeded"});
    return 429;
  }
  HttpRequest request;
  request.method = info->request_method != nullptr ? info->request_method : "";
  request.path = info->local_uri_raw != nullptr ? info->local_uri_raw : "";
  request.query = info->query_string != nullptr ? info->query_string : "";
  request.peer = info->remote_addr;
  for (int i = 0; i < info->num_headers; ++i) {
    const char* value = info->http_headers[i].value != nullptr ? info->http_headers[i].value : "";
    request.headers[absl::AsciiStrToLower(info->http_headers[i].name)] = value;
    request.header_list.emplace_back(info->http_headers[i].name, value);
  }
  const size_t max_body = self->options_.max_body_bytes;
  if (max_body == 0) {
    if (info->content_length > 0) {
      Send(conn, HttpResponse{413, "text/plain", "Request body not allowed"});
      return 413;
    }
  } else if (info->content_length < 0 && request.headers.count("transfer-encoding") != 0) {
    Send(conn, HttpResponse{411, "text/plain", "Content-Length required"});
    return 411;
  } else if (info->content_length > static_cast<int64_t>(max_body)) {
    Send(conn, HttpResponse{413, "text/plain",
                            absl::StrCat("Request body larger than ", max_body, " bytes")});
    return 413;
  } else if (info->content_length > 0) {
    request.body.resize(static_cast<size_t>(info->content_length));
    size_t got = 0;
    while (got < request.body.size()) {
      const int n = mg_read(conn, request.body.data() + got, request.body.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got != request.body.size()) {
      crypto::Wipe(request.body.data(), request.body.size());
      Send(conn, HttpResponse{400, "text/plain", "Request body shorter than Content-Length"});
      return 400;
    }
  }
  HttpResponse response = self->handler_(request);
  crypto::Wipe(request.body.data(), request.body.size());
  Send(conn, response);
  if (response.sensitive) crypto::Wipe(response.body.data(), response.body.size());
  return response.status;
}

}  // namespace coffer::http
