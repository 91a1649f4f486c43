#include "bench/aws_json_client.h"

#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/sigv4/sigv4.h"

namespace coffer::bench {
namespace {

constexpr char kContentType[] = "application/x-amz-json-1.1";

absl::StatusCode CodeOf(absl::string_view type, int http_status) {
  if (type == "ResourceExistsException") return absl::StatusCode::kAlreadyExists;
  if (type == "ResourceNotFoundException") return absl::StatusCode::kNotFound;
  if (type == "ThrottlingException") return absl::StatusCode::kResourceExhausted;
  if (absl::StartsWith(type, "AccessDenied")) return absl::StatusCode::kPermissionDenied;
  if (type == "UnrecognizedClientException" || type == "InvalidSignatureException" ||
      type == "IncompleteSignatureException" || type == "MissingAuthenticationTokenException") {
    return absl::StatusCode::kUnauthenticated;
  }
  if (http_status == 503) return absl::StatusCode::kUnavailable;
  if (http_status >= 500) return absl::StatusCode::kInternal;
  return absl::StatusCode::kInvalidArgument;
}

}  // namespace

absl::StatusOr<AwsCredentials> LoadAwsCredentials(const std::string& file) {
  AwsCredentials c;
  if (file.empty()) {
    const char* id = std::getenv("AWS_ACCESS_KEY_ID");
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    if (id == nullptr || secret == nullptr || *id == '\0' || *secret == '\0') {
      return absl::InvalidArgumentError(
          "AWS operations need an access key: --aws_key_file, or AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY");
    }
    c.access_key_id = id;
    c.secret_access_key = secret;
    return c;
  }
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file));
  if (!(in >> c.access_key_id >> c.secret_access_key)) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, " must hold \"<access key id> <secret access key>\""));
  }
  return c;
}

absl::StatusOr<AwsEndpoint> ParseAwsTarget(absl::string_view target) {
  const size_t colon = target.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(target.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("target must be host:port: ", target));
  }
  AwsEndpoint e;
  e.host = std::string(target.substr(0, colon));
  e.port = port;
  return e;
}

AwsJsonClient::AwsJsonClient(AwsEndpoint endpoint)
    : endpoint_(std::move(endpoint)),
      host_header_(absl::StrCat(endpoint_.host, ":", endpoint_.port)) {
  std::string connect_host = endpoint_.host;
  if (connect_host.size() > 1 && connect_host.front() == '[' && connect_host.back() == ']') {
    connect_host = connect_host.substr(1, connect_host.size() - 2);
  }
  client_ = std::make_unique<httplib::SSLClient>(connect_host, endpoint_.port);
  client_->set_ca_cert_path(endpoint_.ca_file);
  client_->enable_server_certificate_verification(true);
  client_->set_keep_alive(true);
  // As the SDKs' HTTP stacks do (urllib3, the CRT): no Nagle delay between
  // the headers and the body.
  client_->set_tcp_nodelay(true);
  const auto timeout = absl::ToChronoMicroseconds(endpoint_.timeout);
  client_->set_connection_timeout(timeout);
  client_->set_read_timeout(timeout);
  client_->set_write_timeout(timeout);
}

AwsJsonClient::~AwsJsonClient() = default;

absl::StatusOr<AwsAnswer> AwsJsonClient::Call(absl::string_view service, absl::string_view target,
                                              const std::string& body) {
  // What is signed: every header below plus X-Amz-Date, as botocore signs
  // a JSON 1.1 request (Content-Type, Host, X-Amz-Date, X-Amz-Target).
  const std::vector<sigv4::HttpHeader> signed_headers = {
      {"Content-Type", kContentType}, {"Host", host_header_}, {"X-Amz-Target", target}};
  const sigv4::HttpRequestView request{"POST", "/", "", signed_headers, body};
  absl::StatusOr<sigv4::SignedAuthHeaders> auth = sigv4::SignRequest(
      request, {endpoint_.credentials.access_key_id, endpoint_.credentials.secret_access_key,
                endpoint_.region, service, absl::Now()});
  if (!auth.ok()) return auth.status();
  // Content-Type goes in through Post's argument (once); the rest here.
  // Accept-Encoding: identity, as urllib3 sends it (cpp-httplib would ask
  // for gzip and brotli otherwise).
  httplib::Headers headers = {{"Host", host_header_},
                              {"X-Amz-Target", std::string(target)},
                              {"X-Amz-Date", auth->x_amz_date},
                              {"Authorization", auth->authorization},
                              {"Accept-Encoding", "identity"}};
  httplib::Result result = client_->Post("/", headers, body, kContentType);
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("no answer from ", host_header_, ": ", httplib::to_string(result.error())));
  }
  return AwsAnswer{result->status, std::move(result->body)};
}

bool FindJsonString(absl::string_view json, absl::string_view name, std::string* value) {
  const std::string key = absl::StrCat("\"", name, "\":\"");
  const size_t at = json.find(key);
  if (at == absl::string_view::npos) return false;
  value->clear();
  for (size_t i = at + key.size(); i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') return true;
    if (c == '\\' && i + 1 < json.size() && (json[i + 1] == '"' || json[i + 1] == '\\')) {
      value->push_back(json[++i]);
    } else {
      value->push_back(c);
    }
  }
  return false;
}

absl::Status AwsErrorStatus(const AwsAnswer& answer) {
  std::string type, message;
  FindJsonString(answer.body, "__type", &type);
  if (!FindJsonString(answer.body, "message", &message)) {
    FindJsonString(answer.body, "Message", &message);
  }
  if (type.empty() && message.empty()) message = answer.body.substr(0, 200);
  return absl::Status(CodeOf(type, answer.http_status),
                      absl::StrCat("HTTP ", answer.http_status, " ", type, ": ", message));
}

}  // namespace coffer::bench
