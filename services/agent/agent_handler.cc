#include "services/agent/agent_handler.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/errors.h"
#include "libs/common/json.h"
#include "libs/common/proto_time.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::agent {

namespace {

constexpr const char* kTokenHeaders[] = {"x-aws-parameters-secrets-token", "x-vault-token"};

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse Json(std::string body) {
  HttpResponse r;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding ('+' is a space in a query); false on a bad escape.
bool UrlDecode(absl::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

// The query's parameters; an error response when one is malformed,
// repeated or not in `allowed`.
absl::StatusOr<std::map<std::string, std::string>> ParseQuery(
    const std::string& query, std::initializer_list<absl::string_view> allowed) {
  std::map<std::string, std::string> out;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    std::string key, value;
    if (!UrlDecode(kv.first, true, &key) || !UrlDecode(kv.second, true, &value)) {
      return absl::InvalidArgumentError("malformed query string");
    }
    bool known = false;
    for (absl::string_view a : allowed) known = known || a == key;
    if (!known) return absl::InvalidArgumentError(absl::StrCat("unknown parameter: ", key));
    if (!out.emplace(key, value).second) {
      return absl::InvalidArgumentError(absl::StrCat("repeated parameter: ", key));
    }
  }
  return out;
}

// refreshNow / withDecryption: true, false, 1, 0 (any case); `missing` when absent.
absl::StatusOr<bool> BoolParam(const std::map<std::string, std::string>& q, const std::string& key,
                               bool missing) {
  auto it = q.find(key);
  if (it == q.end()) return missing;
  const std::string v = absl::AsciiStrToLower(it->second);
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return absl::InvalidArgumentError(absl::StrCat("invalid ", key, " value"));
}

std::string Param(const std::map<std::string, std::string>& q, const std::string& key) {
  auto it = q.find(key);
  return it == q.end() ? "" : it->second;
}

// "1717191744.207": AWS's agent writes CreatedDate as seconds with a fraction.
std::string EpochWithMillis(const google::protobuf::Timestamp& t) {
  return absl::StrFormat("%d.%03d", t.seconds(), t.nanos() / 1000000);
}

bool SameToken(const std::string& given, const std::string& expected) {
  return !expected.empty() && crypto::ConstantTimeEquals(given, expected);
}

std::string ParameterTypeName(params::v1::ParameterType t) {
  switch (t) {
    case params::v1::PARAMETER_TYPE_STRING_LIST:
      return "StringList";
    case params::v1::PARAMETER_TYPE_SECURE_STRING:
      return "SecureString";
    default:
      return "String";
  }
}

}  // namespace

bool IsLoopbackPeer(const std::string& peer) {
  std::string host = peer;
  if (absl::StartsWith(host, "[")) {
    host =
        host.substr(1, host.find(']') == std::string::npos ? host.size() - 1 : host.find(']') - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  return absl::StartsWith(host, "127.") || host == "::1" || host == "::ffff:127.0.0.1" ||
         absl::StartsWith(host, "::ffff:127.");
}

std::string SecretJson(const secrets::v1::GetSecretValueResponse& r) {
  // Members in the order AWS's agent writes them.
  std::string out = "{";
  absl::StrAppend(&out, "\"ARN\":", JsonQuote(r.arn()), ",\"Name\":", JsonQuote(r.name()),
                  ",\"VersionId\":", JsonQuote(r.version_id()));
  if (r.has_secret_string())
    absl::StrAppend(&out, ",\"SecretString\":", JsonQuote(r.secret_string()));
  if (r.has_secret_binary()) {
    absl::StrAppend(&out, ",\"SecretBinary\":", JsonQuote(absl::Base64Escape(r.secret_binary())));
  }
  std::vector<std::string> stages;
  for (const std::string& s : r.version_stages()) stages.push_back(JsonQuote(s));
  absl::StrAppend(&out, ",\"VersionStages\":[", absl::StrJoin(stages, ","), "]");
  if (r.has_created_date()) {
    absl::StrAppend(&out, ",\"CreatedDate\":", JsonQuote(EpochWithMillis(r.created_date())));
  }
  out += "}";
  return out;
}

std::string ParameterJson(const params::v1::Parameter& p) {
  std::string out = "{\"Parameter\":{";
  absl::StrAppend(&out, "\"ARN\":", JsonQuote(p.arn()),
                  ",\"DataType\":", JsonQuote(p.data_type().empty() ? "text" : p.data_type()));
  if (p.has_last_modified_date()) {
    absl::StrAppend(&out, ",\"LastModifiedDate\":", EpochWithMillis(p.last_modified_date()));
  }
  absl::StrAppend(&out, ",\"Name\":", JsonQuote(p.name()));
  if (!p.selector().empty()) absl::StrAppend(&out, ",\"Selector\":", JsonQuote(p.selector()));
  absl::StrAppend(&out, ",\"Type\":", JsonQuote(ParameterTypeName(p.type())),
                  ",\"Value\":", JsonQuote(p.value()), ",\"Version\":", p.version(), "}}");
  return out;
}

HttpResponse ErrorResponse(const absl::Status& status) {
  HttpResponse r;
  r.content_type = "application/json";
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      r.status = 502;
      r.body = R"({"__type":"ConnectionError", "message":"Read Error"})";
      return r;
    case absl::StatusCode::kDeadlineExceeded:
      r.status = 504;
      r.body = R"({"__type":"TimeoutError", "message":"Timeout"})";
      return r;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      r.status = 500;
      r.body = R"({"__type":"InternalFailure"})";
      return r;
    default:
      break;
  }
  std::string reason = ErrorReason(status);
  if (reason.empty()) reason = "InvalidRequestException";
  r.status = 400;
  r.body = absl::StrCat("{\"__type\":", JsonQuote(reason),
                        ", \"message\":", JsonQuote(status.message()), "}");
  return r;
}

AgentHandler::AgentHandler(client::SecretCache* secrets, client::ParameterCache* parameters,
                           AgentHandlerOptions options)
    : secrets_(secrets), parameters_(parameters), options_(std::move(options)) {}

HttpResponse AgentHandler::Handle(const HttpRequest& request) {
  if (!IsLoopbackPeer(request.peer)) return Text(403, "Not local");
  if (request.path == "/ping") {
    if (request.method != "GET") return Text(405, "Not allowed");
    return Text(200, "healthy");
  }
  if (request.headers.count("x-forwarded-for")) return Text(400, "Forwarded");
  bool authorized = false;
  for (const char* h : kTokenHeaders) {
    auto it = request.headers.find(h);
    if (it != request.headers.end() && SameToken(it->second, options_.token)) authorized = true;
  }
  if (!authorized) return Text(403, "Bad Token");
  if (request.method != "GET") return Text(405, "Not allowed");

  if (request.path == "/secretsmanager/get") {
    auto q = ParseQuery(request.query, {"secretId", "versionId", "versionStage", "refreshNow"});
    if (!q.ok()) return Text(400, std::string(q.status().message()));
    const std::string id = Param(*q, "secretId");
    if (id.empty()) return Text(400, "missing parameter secretId");
    return GetSecret(id, *q);
  }
  if (absl::StartsWith(request.path, options_.path_prefix)) {
    const std::string id = request.path.substr(options_.path_prefix.size());
    if (id.empty()) return Text(400, "missing secret ID");
    auto q = ParseQuery(request.query, {"versionId", "versionStage", "refreshNow"});
    if (!q.ok()) return Text(400, std::string(q.status().message()));
    return GetSecret(id, *q);
  }
  if (request.path == "/systemsmanager/parameters/get") {
    auto q = ParseQuery(request.query, {"name", "withDecryption"});
    if (!q.ok()) return Text(400, std::string(q.status().message()));
    return GetParameter(*q);
  }
  return Text(404, "Not found");
}

HttpResponse AgentHandler::GetSecret(const std::string& secret_id,
                                     const std::map<std::string, std::string>& q) {
  absl::StatusOr<bool> refresh = BoolParam(q, "refreshNow", false);
  if (!refresh.ok()) return Text(400, std::string(refresh.status().message()));
  const std::string version_id = Param(q, "versionId");
  const std::string stage = Param(q, "versionStage");
  if (*refresh) {
    absl::Status s = secrets_->RefreshNow(secret_id);
    if (!s.ok()) return ErrorResponse(s);
  }
  absl::StatusOr<secrets::v1::GetSecretValueResponse> value =
      version_id.empty() ? secrets_->GetSecretValue(secret_id, stage)
                         : secrets_->GetSecretVersion(secret_id, version_id, stage);
  if (!value.ok()) return ErrorResponse(value.status());
  HttpResponse r = Json(SecretJson(*value));
  // The response proto held the plaintext too.
  for (std::string* s : {value->mutable_secret_string(), value->mutable_secret_binary()}) {
    if (!s->empty()) crypto::Wipe(s->data(), s->size());
  }
  return r;
}

HttpResponse AgentHandler::GetParameter(const std::map<std::string, std::string>& q) {
  const std::string name = Param(q, "name");
  if (name.empty()) return Text(400, "missing parameter name");
  absl::StatusOr<bool> decrypt = BoolParam(q, "withDecryption", false);
  if (!decrypt.ok()) return Text(400, std::string(decrypt.status().message()));
  absl::StatusOr<params::v1::Parameter> p = parameters_->GetParameter(name, *decrypt);
  if (!p.ok()) return ErrorResponse(p.status());
  HttpResponse r = Json(ParameterJson(*p));
  if (!p->value().empty()) crypto::Wipe(p->mutable_value()->data(), p->value().size());
  return r;
}

}  // namespace coffer::agent
