#include "services/workers/postgres/postgres_credential.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace coffer::workers {
namespace {

using google::protobuf::Value;

absl::Status Invalid(absl::string_view what, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("secret value (", what, "): ", problem));
}

// A string field: required ones must be present and non-empty.
absl::Status ReadString(const google::protobuf::Struct& s, const std::string& key,
                        absl::string_view what, bool required, std::string* out) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || it->second.kind_case() == Value::kNullValue) {
    if (required) return Invalid(what, absl::StrCat("\"", key, "\" is required"));
    return absl::OkStatus();
  }
  if (it->second.kind_case() != Value::kStringValue) {
    return Invalid(what, absl::StrCat("\"", key, "\" must be a string"));
  }
  if (required && it->second.string_value().empty()) {
    return Invalid(what, absl::StrCat("\"", key, "\" must not be empty"));
  }
  *out = it->second.string_value();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PostgresCredential> ParseCredential(absl::string_view json, absl::string_view what) {
  PostgresCredential c;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  // The parser's message may quote the input: never pass it on.
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &c.fields, options).ok()) {
    return Invalid(what, "not a JSON object");
  }
  const auto& f = c.fields;
  std::string engine;
  if (absl::Status s = ReadString(f, "engine", what, false, &engine); !s.ok()) return s;
  if (!engine.empty() && engine != "postgres" && engine != "postgresql") {
    return Invalid(what, "\"engine\" must be \"postgres\"");
  }
  if (absl::Status s = ReadString(f, "host", what, true, &c.host); !s.ok()) return s;
  if (absl::Status s = ReadString(f, "username", what, true, &c.username); !s.ok()) return s;
  if (absl::Status s = ReadString(f, "password", what, true, &c.password); !s.ok()) return s;
  if (absl::Status s = ReadString(f, "dbname", what, false, &c.dbname); !s.ok()) return s;
  if (c.dbname.empty()) c.dbname = "postgres";
  if (absl::Status s = ReadString(f, "master_secret", what, false, &c.master_secret); !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadString(f, "sslmode", what, false, &c.sslmode); !s.ok()) return s;
  if (!c.sslmode.empty() && c.sslmode != "disable" && c.sslmode != "allow" &&
      c.sslmode != "prefer" && c.sslmode != "require" && c.sslmode != "verify-ca" &&
      c.sslmode != "verify-full") {
    return Invalid(what,
                   "\"sslmode\" must be disable, allow, prefer, require, verify-ca or verify-full");
  }

  auto port = f.fields().find("port");
  if (port != f.fields().end()) {
    double n = 0;
    if (port->second.kind_case() == Value::kNumberValue) {
      n = port->second.number_value();
    } else if (port->second.kind_case() == Value::kStringValue) {
      if (!absl::SimpleAtod(port->second.string_value(), &n)) n = -1;
    } else {
      n = -1;
    }
    if (!(n >= 1 && n <= 65535) || std::floor(n) != n) {
      return Invalid(what, "\"port\" must be a number 1-65535");
    }
    c.port = static_cast<int>(n);
  }
  return c;
}

absl::StatusOr<std::string> SerializeCredential(const PostgresCredential& c) {
  google::protobuf::Struct out = c.fields;
  auto& f = *out.mutable_fields();
  f["engine"].set_string_value("postgres");
  f["host"].set_string_value(c.host);
  f["port"].set_number_value(c.port);
  f["dbname"].set_string_value(c.dbname);
  f["username"].set_string_value(c.username);
  f["password"].set_string_value(c.password);
  if (!c.master_secret.empty()) f["master_secret"].set_string_value(c.master_secret);
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(out, &json).ok()) {
    return absl::InternalError("cannot write the secret value as JSON");
  }
  return json;
}

}  // namespace coffer::workers
