#include "services/gateway/aws_json.h"

#include <string.h>  // explicit_bzero

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/json.h"
#include "libs/common/status_macros.h"
#include "libs/common/utf8.h"
#include "services/gateway/aws_names.h"

namespace coffer::gateway {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

namespace {

constexpr char kSerializationException[] = "SerializationException";
constexpr char kTimestampType[] = "google.protobuf.Timestamp";
// google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

void Wipe(const std::string& s) {
  if (!s.empty()) explicit_bzero(const_cast<char*>(s.data()), s.size());
}

void WipeJson(JsonValue* v) {
  Wipe(v->text);
  for (JsonValue& item : v->items) WipeJson(&item);
  for (auto& [name, member] : v->members) {
    Wipe(name);
    WipeJson(&member);
  }
}

// ---- Operations ----

std::vector<AwsOperation> BuildOperations() {
  std::vector<AwsOperation> ops;
  for (const internal::ServiceInfo& s : internal::Services()) {
    for (int i = 0; i < s.service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = s.service->method(i);
      // The Watch* change streams have no AWS counterpart.
      if (m->client_streaming() || m->server_streaming()) continue;
      ops.push_back(AwsOperation{absl::StrCat(s.target_prefix, ".", m->name()), s.signing_service,
                                 s.backend, m});
    }
  }
  return ops;
}

// ---- Base64 (standard alphabet, padded), strict ----

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Decodes into a string sized exactly once, so the plaintext is never
// copied by a reallocation.
std::optional<std::string> DecodeBase64(absl::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (!in.empty() && in.back() == '=') ++padding;
  if (in.size() >= 2 && in[in.size() - 2] == '=') ++padding;
  if (padding == 2 && in.back() != '=') return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t group = 0;
    int pads = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = in[i + j];
      int d;
      if (c == '=' && i + 4 == in.size() && j >= 4 - padding) {
        d = 0;
        ++pads;
      } else {
        d = Base64Digit(c);
        if (d < 0) {
          Wipe(out);
          return std::nullopt;
        }
      }
      group = (group << 6) | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<char>(group >> 16));
    if (pads < 2) out.push_back(static_cast<char>((group >> 8) & 0xff));
    if (pads < 1) out.push_back(static_cast<char>(group & 0xff));
  }
  return out;
}

bool ValidUtf8Text(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool IsIntegerLiteral(absl::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); });
}

// ---- Reading requests ----

absl::Status CheckBounds(absl::string_view body) {
  auto refuse = [](absl::string_view what) {
    return ErrorWithCode(absl::StatusCode::kInvalidArgument, kSerializationException, what);
  };
  if (body.size() > kMaxRequestBytes) {
    return refuse(absl::StrCat("the request body is larger than ", kMaxRequestBytes, " bytes"));
  }
  int depth = 0;
  size_t values = 1;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (++depth > kMaxRequestDepth) {
          return refuse(
              absl::StrCat("the request body nests deeper than ", kMaxRequestDepth, " levels"));
        }
        ++values;
        break;
      case '}':
      case ']':
        --depth;
        break;
      case ',':
        ++values;
        break;
      default:
        break;
    }
    if (values > kMaxRequestValues) {
      return refuse(
          absl::StrCat("the request body holds more than ", kMaxRequestValues, " values"));
    }
  }
  return absl::OkStatus();
}

std::string Member(const std::string& parent, absl::string_view name) {
  // Names come from the caller: keep error messages short.
  absl::string_view shown = name.substr(0, 64);
  return parent.empty() ? std::string(shown) : absl::StrCat(parent, ".", shown);
}

class RequestReader {
 public:
  explicit RequestReader(Backend backend) : backend_(backend) {}

  absl::Status Object(JsonValue& object, Message* message, const std::string& path) {
    if (object.type != JsonValue::kObject) return WrongType(path, "an object", object);
    const Descriptor* type = message->GetDescriptor();
    absl::flat_hash_set<absl::string_view> seen;
    absl::flat_hash_map<const FieldDescriptor*, std::string> assigned;  // field -> member
    for (auto& [name, value] : object.members) {
      std::string member_path = Member(path, name);
      if (!seen.insert(name).second) {
        return Serialization(member_path, "given more than once");
      }
      if (value.type == JsonValue::kNull) continue;  // AWS: null is absent
      const FieldDescriptor* field = FieldOf(type, name);
      const internal::ExtraMember* extra = field == nullptr ? ExtraOf(type, name) : nullptr;
      if (extra != nullptr) {
        COFFER_ASSIGN_OR_RETURN(field, Extra(*extra, type, value, member_path));
        if (field == nullptr) continue;  // accepted and ignored
      }
      if (field == nullptr) return Invalid(member_path, "unknown member");
      auto [it, fresh] = assigned.emplace(field, name);
      if (!fresh) {
        return Invalid(member_path, absl::StrCat("names the same setting as ", it->second,
                                                 "; give only one of them"));
      }
      COFFER_RETURN_IF_ERROR(Field(value, message, field, member_path));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Serialization(const std::string& path, absl::string_view problem) const {
    return ErrorWithCode(absl::StatusCode::kInvalidArgument, kSerializationException,
                         absl::StrCat(path, ": ", problem), "", path);
  }
  absl::Status Invalid(const std::string& path, absl::string_view problem) const {
    return ErrorWithCode(absl::StatusCode::kInvalidArgument, internal::ValidationType(backend_),
                         absl::StrCat(path, ": ", problem), "", path);
  }
  absl::Status WrongType(const std::string& path, absl::string_view expected,
                         const JsonValue& got) const {
    if (path.empty()) {
      return ErrorWithCode(
          absl::StatusCode::kInvalidArgument, kSerializationException,
          absl::StrCat("the request body must be a JSON object, got ", JsonTypeName(got.type)));
    }
    return Serialization(path,
                         absl::StrCat("expected ", expected, ", got ", JsonTypeName(got.type)));
  }

  const FieldDescriptor* FieldOf(const Descriptor* type, absl::string_view name) const {
    return internal::FieldByMember(backend_, type, name);
  }

  static const internal::ExtraMember* ExtraOf(const Descriptor* type, absl::string_view name) {
    for (const internal::ExtraMember* e : internal::ExtraMembersOf(type)) {
      if (name == e->member) return e;
    }
    return nullptr;
  }

  // An AWS member Coffer lacks: the field it stands for (kAliasOf), nullptr
  // when accepted and ignored, or an error.
  absl::StatusOr<const FieldDescriptor*> Extra(const internal::ExtraMember& extra,
                                               const Descriptor* type, const JsonValue& value,
                                               const std::string& path) const {
    absl::string_view kind = extra.kind;
    bool ok_type = (kind == "string" && value.type == JsonValue::kString) ||
                   (kind == "boolean" && value.type == JsonValue::kBool) ||
                   (absl::StartsWith(kind, "list<") && value.type == JsonValue::kArray);
    if (!ok_type) {
      const char* expected = kind == "string"    ? "a string"
                             : kind == "boolean" ? "a boolean"
                                                 : "an array";
      return WrongType(path, expected, value);
    }
    if (kind == "list<string>") {
      for (const JsonValue& item : value.items) {
        if (item.type != JsonValue::kString) return WrongType(path + "[]", "a string", item);
      }
    }
    switch (extra.policy) {
      case internal::ExtraPolicy::kIgnore:
        return nullptr;
      case internal::ExtraPolicy::kOnlyEmpty:
        if ((value.type == JsonValue::kString && value.text.empty()) ||
            (value.type == JsonValue::kBool && !value.boolean) ||
            (value.type == JsonValue::kArray && value.items.empty())) {
          return nullptr;
        }
        return Invalid(path, "is not supported by Coffer");
      case internal::ExtraPolicy::kOnlyValue:
        if (value.text == extra.value) return nullptr;
        return Invalid(path, absl::StrCat("must be ", extra.value, " (the only one Coffer has)"));
      case internal::ExtraPolicy::kAliasOf:
        return type->FindFieldByName(extra.value);
    }
    return nullptr;
  }

  absl::Status Field(JsonValue& value, Message* message, const FieldDescriptor* field,
                     const std::string& path) {
    if (field->is_map()) {
      if (value.type != JsonValue::kObject) return WrongType(path, "an object", value);
      const FieldDescriptor* key_field = field->message_type()->map_key();
      const FieldDescriptor* value_field = field->message_type()->map_value();
      absl::flat_hash_set<absl::string_view> keys;
      for (auto& [key, item] : value.members) {
        std::string item_path = Member(path, key);
        if (!keys.insert(key).second) return Serialization(item_path, "given more than once");
        if (!ValidUtf8Text(key)) return Serialization(path, "a key is not valid UTF-8");
        Message* entry = message->GetReflection()->AddMessage(message, field);
        if (key_field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
          return Invalid(item_path, "unsupported map key");  // Coffer's maps are keyed by strings
        }
        entry->GetReflection()->SetString(entry, key_field, key);
        COFFER_RETURN_IF_ERROR(Value(item, entry, value_field, item_path, /*in_map=*/true));
      }
      return absl::OkStatus();
    }
    if (field->is_repeated()) {
      if (value.type != JsonValue::kArray) return WrongType(path, "an array", value);
      for (size_t i = 0; i < value.items.size(); ++i) {
        COFFER_RETURN_IF_ERROR(Value(value.items[i], message, field,
                                     absl::StrCat(path, "[", i, "]"), /*in_map=*/false));
      }
      return absl::OkStatus();
    }
    return Value(value, message, field, path, /*in_map=*/false);
  }

  // One value of `field` (appended when the field is repeated).
  absl::Status Value(JsonValue& value, Message* message, const FieldDescriptor* field,
                     const std::string& path, bool in_map) {
    const Reflection* r = message->GetReflection();
    const bool repeated = field->is_repeated();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        if (value.type != JsonValue::kString) {
          return WrongType(
              path, field->type() == FieldDescriptor::TYPE_BYTES ? "a base64 string" : "a string",
              value);
        }
        std::string data;
        if (field->type() == FieldDescriptor::TYPE_BYTES) {
          std::optional<std::string> decoded = DecodeBase64(value.text);
          if (!decoded) return Serialization(path, "not valid base64");
          data = std::move(*decoded);
        } else {
          if (!ValidUtf8Text(value.text)) return Serialization(path, "not valid UTF-8");
          data = std::move(value.text);  // moved, not copied: it may be a secret
        }
        if (repeated) {
          r->AddString(message, field, std::move(data));
        } else {
          r->SetString(message, field, std::move(data));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_BOOL:
        if (value.type != JsonValue::kBool) return WrongType(path, "a boolean", value);
        repeated ? r->AddBool(message, field, value.boolean)
                 : r->SetBool(message, field, value.boolean);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        return Integer(value, message, field, path);
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double d = 0;
        if (value.type != JsonValue::kNumber) return WrongType(path, "a number", value);
        if (!absl::SimpleAtod(value.text, &d) || !std::isfinite(d)) {
          return Invalid(path, "out of range");
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
          repeated ? r->AddFloat(message, field, static_cast<float>(d))
                   : r->SetFloat(message, field, static_cast<float>(d));
        } else {
          repeated ? r->AddDouble(message, field, d) : r->SetDouble(message, field, d);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        if (value.type != JsonValue::kString) return WrongType(path, "a string", value);
        const internal::EnumTable& table = internal::EnumTableFor(field->enum_type());
        const EnumValueDescriptor* v = table.Find(value.text);
        if (v == nullptr) return Invalid(path, absl::StrCat("must be one of ", table.List()));
        repeated ? r->AddEnum(message, field, v) : r->SetEnum(message, field, v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        Message* sub = repeated ? r->AddMessage(message, field) : r->MutableMessage(message, field);
        const Descriptor* type = field->message_type();
        if (type->full_name() == kTimestampType) return Timestamp(value, sub, path);
        if (const FieldDescriptor* list = internal::ListWrapperField(type); in_map && list) {
          return Field(value, sub, list, path);
        }
        return Object(value, sub, path);
      }
    }
    return Invalid(path, "unsupported field type");
  }

  absl::Status Integer(const JsonValue& value, Message* message, const FieldDescriptor* field,
                       const std::string& path) {
    if (value.type != JsonValue::kNumber) return WrongType(path, "an integer", value);
    if (!IsIntegerLiteral(value.text)) return Serialization(path, "expected an integer");
    const Reflection* r = message->GetReflection();
    const bool repeated = field->is_repeated();
    const bool negative = value.text[0] == '-';
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = 0;
        if (!absl::SimpleAtoi(value.text, &v)) return Invalid(path, "out of range");
        repeated ? r->AddInt32(message, field, v) : r->SetInt32(message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = 0;
        if (!absl::SimpleAtoi(value.text, &v)) return Invalid(path, "out of range");
        repeated ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v = 0;
        if (negative || !absl::SimpleAtoi(value.text, &v)) return Invalid(path, "out of range");
        repeated ? r->AddUInt32(message, field, v) : r->SetUInt32(message, field, v);
        break;
      }
      default: {
        uint64_t v = 0;
        if (negative || !absl::SimpleAtoi(value.text, &v)) return Invalid(path, "out of range");
        repeated ? r->AddUInt64(message, field, v) : r->SetUInt64(message, field, v);
        break;
      }
    }
    return absl::OkStatus();
  }

  // Epoch seconds, fractions allowed: exact for plain decimals, through a
  // double for exponents.
  absl::Status Timestamp(const JsonValue& value, Message* ts, const std::string& path) {
    if (value.type != JsonValue::kNumber) {
      return WrongType(path, "a timestamp (epoch seconds)", value);
    }
    absl::string_view text = value.text;
    int64_t seconds = 0;
    int32_t nanos = 0;
    size_t dot = text.find('.');
    bool exponent = text.find_first_of("eE") != absl::string_view::npos;
    if (!exponent) {
      absl::string_view whole = text.substr(0, dot);
      if (!absl::SimpleAtoi(whole, &seconds)) return Invalid(path, "out of range");
      if (dot != absl::string_view::npos) {
        absl::string_view fraction = text.substr(dot + 1, 9);
        int64_t n = 0;
        (void)absl::SimpleAtoi(fraction, &n);  // digits only: checked by the reader
        for (size_t i = fraction.size(); i < 9; ++i) n *= 10;
        bool negative = !whole.empty() && whole[0] == '-';
        if (negative && n > 0) {
          seconds -= 1;
          n = 1000000000 - n;
        }
        nanos = static_cast<int32_t>(n);
      }
    } else {
      double d = 0;
      if (!absl::SimpleAtod(text, &d) || !std::isfinite(d) ||
          d < static_cast<double>(kMinTimestampSeconds) ||
          d > static_cast<double>(kMaxTimestampSeconds)) {
        return Invalid(path, "out of range");
      }
      double whole = std::floor(d);
      seconds = static_cast<int64_t>(whole);
      nanos = static_cast<int32_t>(std::llround((d - whole) * 1e9));
      if (nanos >= 1000000000) {
        seconds += 1;
        nanos -= 1000000000;
      }
    }
    if (seconds < kMinTimestampSeconds || seconds > kMaxTimestampSeconds) {
      return Invalid(path, "out of range");
    }
    const Descriptor* type = ts->GetDescriptor();
    ts->GetReflection()->SetInt64(ts, type->FindFieldByName("seconds"), seconds);
    ts->GetReflection()->SetInt32(ts, type->FindFieldByName("nanos"), nanos);
    return absl::OkStatus();
  }

  Backend backend_;
};

// ---- Writing responses ----

// Appends to a string, or only counts: the response is measured first and
// written into one buffer of that size, so no reallocation leaves a copy of
// a secret behind.
class JsonOut {
 public:
  explicit JsonOut(std::string* out) : out_(out) {}
  void Put(absl::string_view s) {
    if (out_ != nullptr) out_->append(s.data(), s.size());
    size_ += s.size();
  }
  void Put(char c) {
    if (out_ != nullptr) out_->push_back(c);
    ++size_;
  }
  size_t size() const { return size_; }

  // As JsonQuote, written in place.
  void Quoted(absl::string_view s) {
    Put('"');
    size_t run = 0;  // start of the pending run of plain characters
    for (size_t i = 0; i < s.size();) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      const char* escape = nullptr;
      char buf[8];
      size_t len = 1;
      if (c == '"') {
        escape = "\\\"";
      } else if (c == '\\') {
        escape = "\\\\";
      } else if (c == '\n') {
        escape = "\\n";
      } else if (c == '\r') {
        escape = "\\r";
      } else if (c == '\t') {
        escape = "\\t";
      } else if (c < 0x20 || c == 0x7f) {
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        escape = buf;
      } else {
        len = Utf8SequenceLength(s, i);
        if (len == 0) {
          escape = "\\ufffd";
          len = 1;
        }
      }
      if (escape != nullptr) {
        Put(s.substr(run, i - run));
        Put(escape);
        run = i + len;
      }
      i += len;
    }
    Put(s.substr(run));
    Put('"');
  }

  void Base64(absl::string_view bytes) {
    Put('"');
    char group[4];
    for (size_t i = 0; i < bytes.size(); i += 3) {
      uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
      size_t left = bytes.size() - i;
      if (left > 1) n |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
      if (left > 2) n |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
      group[0] = kBase64Alphabet[(n >> 18) & 63];
      group[1] = kBase64Alphabet[(n >> 12) & 63];
      group[2] = left > 1 ? kBase64Alphabet[(n >> 6) & 63] : '=';
      group[3] = left > 2 ? kBase64Alphabet[n & 63] : '=';
      Put(absl::string_view(group, 4));
    }
    explicit_bzero(group, sizeof group);
    Put('"');
  }

 private:
  std::string* out_;
  size_t size_ = 0;
};

// Epoch seconds with the milliseconds, as AWS sends them: 1700000000.123;
// whole seconds without a fraction.
std::string EpochSeconds(int64_t seconds, int32_t nanos) {
  int64_t millis = nanos / 1000000;
  if (millis == 0) return absl::StrCat(seconds);
  if (seconds < 0 && millis > 0) {  // -0.5 s is seconds -1 + 500 ms
    int64_t total = seconds * 1000 + millis;
    std::string sign = total < 0 ? "-" : "";
    total = total < 0 ? -total : total;
    char frac[8];
    std::snprintf(frac, sizeof frac, "%03d", static_cast<int>(total % 1000));
    std::string f(frac);
    while (!f.empty() && f.back() == '0') f.pop_back();
    return absl::StrCat(sign, total / 1000, f.empty() ? "" : ".", f);
  }
  char frac[8];
  std::snprintf(frac, sizeof frac, "%03d", static_cast<int>(millis));
  std::string f(frac);
  while (f.back() == '0') f.pop_back();
  return absl::StrCat(seconds, ".", f);
}

class ResponseWriter {
 public:
  ResponseWriter(Backend backend, JsonOut* out) : backend_(backend), out_(*out) {}

  void Object(const Message& m) {
    out_.Put('{');
    bool first = true;
    const Descriptor* type = m.GetDescriptor();
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* f = type->field(i);
      if (!Emits(m, f)) continue;
      Key(internal::MemberName(backend_, f), &first);
      FieldValue(m, f);
    }
    for (const internal::DerivedMember* d : internal::DerivedMembersOf(type)) {
      std::optional<std::string> literal = d->value(m);
      if (!literal) continue;
      Key(d->member, &first);
      out_.Put(*literal);
    }
    out_.Put('}');
  }

 private:
  void Key(absl::string_view name, bool* first) {
    if (!*first) out_.Put(',');
    *first = false;
    out_.Quoted(name);
    out_.Put(':');
  }

  static bool IsTimestamp(const Descriptor* type) { return type->full_name() == kTimestampType; }

  bool HasOutput(const Message& m) const {
    const Descriptor* type = m.GetDescriptor();
    for (int i = 0; i < type->field_count(); ++i) {
      if (Emits(m, type->field(i))) return true;
    }
    for (const internal::DerivedMember* d : internal::DerivedMembersOf(type)) {
      if (d->value(m).has_value()) return true;
    }
    return false;
  }

  bool Emits(const Message& m, const FieldDescriptor* f) const {
    if (internal::MemberName(backend_, f).empty()) return false;
    const Reflection* r = m.GetReflection();
    const bool always = internal::AlwaysSent(f);
    if (f->is_repeated()) return always || r->FieldSize(m, f) > 0;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(m, f)) return always;
      const Message& sub = r->GetMessage(m, f);
      return always || IsTimestamp(f->message_type()) || HasOutput(sub);
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
      if (f->has_presence() && !r->HasField(m, f)) return false;
      return !internal::EnumTableFor(f->enum_type()).Name(r->GetEnum(m, f)).empty();
    }
    if (f->has_presence()) return r->HasField(m, f);  // proto3 optional: sent when set
    if (always) return true;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        return !r->GetStringReference(m, f, &scratch).empty();
      }
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->GetBool(m, f);
      case FieldDescriptor::CPPTYPE_INT32:
        return r->GetInt32(m, f) != 0;
      case FieldDescriptor::CPPTYPE_INT64:
        return r->GetInt64(m, f) != 0;
      case FieldDescriptor::CPPTYPE_UINT32:
        return r->GetUInt32(m, f) != 0;
      case FieldDescriptor::CPPTYPE_UINT64:
        return r->GetUInt64(m, f) != 0;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return r->GetDouble(m, f) != 0;
      case FieldDescriptor::CPPTYPE_FLOAT:
        return r->GetFloat(m, f) != 0;
      default:
        return false;
    }
  }

  void FieldValue(const Message& m, const FieldDescriptor* f) {
    const Reflection* r = m.GetReflection();
    if (f->is_map()) {
      const FieldDescriptor* key = f->message_type()->map_key();
      const FieldDescriptor* value = f->message_type()->map_value();
      std::vector<std::pair<std::string, const Message*>> entries;
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        const Message& entry = r->GetRepeatedMessage(m, f, i);
        entries.emplace_back(MapKeyText(entry, key), &entry);
      }
      std::sort(entries.begin(), entries.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      out_.Put('{');
      bool first = true;
      for (const auto& [k, entry] : entries) {
        Key(k, &first);
        Scalar(*entry, value, -1, /*in_map=*/true);
      }
      out_.Put('}');
      return;
    }
    if (f->is_repeated()) {
      out_.Put('[');
      bool first = true;
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM &&
            internal::EnumTableFor(f->enum_type()).Name(r->GetRepeatedEnum(m, f, i)).empty()) {
          continue;  // a value this gateway cannot name
        }
        if (!first) out_.Put(',');
        first = false;
        Scalar(m, f, i, /*in_map=*/false);
      }
      out_.Put(']');
      return;
    }
    Scalar(m, f, -1, /*in_map=*/false);
  }

  static std::string MapKeyText(const Message& entry, const FieldDescriptor* key) {
    const Reflection* r = entry.GetReflection();
    switch (key->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return r->GetString(entry, key);
      case FieldDescriptor::CPPTYPE_INT32:
        return absl::StrCat(r->GetInt32(entry, key));
      case FieldDescriptor::CPPTYPE_INT64:
        return absl::StrCat(r->GetInt64(entry, key));
      case FieldDescriptor::CPPTYPE_UINT32:
        return absl::StrCat(r->GetUInt32(entry, key));
      case FieldDescriptor::CPPTYPE_UINT64:
        return absl::StrCat(r->GetUInt64(entry, key));
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->GetBool(entry, key) ? "true" : "false";
      default:
        return "";
    }
  }

  // One value of `f`: element `index` of a repeated field, or the singular
  // value when index < 0.
  void Scalar(const Message& m, const FieldDescriptor* f, int index, bool in_map) {
    const Reflection* r = m.GetReflection();
    const bool rep = index >= 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;  // used only by fields not stored as std::string
        const std::string& s = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                   : r->GetStringReference(m, f, &scratch);
        if (f->type() == FieldDescriptor::TYPE_BYTES) {
          out_.Base64(s);
        } else {
          out_.Quoted(s);
        }
        Wipe(scratch);
        return;
      }
      case FieldDescriptor::CPPTYPE_BOOL:
        out_.Put((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
        return;
      case FieldDescriptor::CPPTYPE_INT32:
        out_.Put(absl::StrCat(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f)));
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        out_.Put(absl::StrCat(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f)));
        return;
      case FieldDescriptor::CPPTYPE_UINT32:
        out_.Put(absl::StrCat(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f)));
        return;
      case FieldDescriptor::CPPTYPE_UINT64:
        out_.Put(absl::StrCat(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f)));
        return;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double d = f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
                       ? (rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f))
                       : (rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
        if (!std::isfinite(d)) {
          out_.Put("null");
          return;
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", d);
        out_.Put(buf);
        return;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumValueDescriptor* v = rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
        out_.Quoted(internal::EnumTableFor(f->enum_type()).Name(v));
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        const Message& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
        const Descriptor* type = f->message_type();
        if (IsTimestamp(type)) {
          const Reflection* tr = sub.GetReflection();
          out_.Put(EpochSeconds(tr->GetInt64(sub, type->FindFieldByName("seconds")),
                                tr->GetInt32(sub, type->FindFieldByName("nanos"))));
          return;
        }
        if (const FieldDescriptor* list = internal::ListWrapperField(type); in_map && list) {
          FieldValue(sub, list);
          return;
        }
        Object(sub);
        return;
      }
    }
  }

  Backend backend_;
  JsonOut& out_;
};

void WipeFields(Message* m) {
  const Reflection* r = m->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->is_map()) continue;  // encryption contexts, stage lists: not secret
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      std::string scratch;
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          Wipe(r->GetRepeatedStringReference(*m, f, i, &scratch));
        }
      } else {
        Wipe(r->GetStringReference(*m, f, &scratch));
      }
      Wipe(scratch);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          WipeFields(r->MutableRepeatedMessage(m, f, i));
        }
      } else {
        WipeFields(r->MutableMessage(m, f));
      }
    }
  }
}

}  // namespace

const std::vector<AwsOperation>& AllAwsOperations() {
  static const auto* const kOps = new std::vector<AwsOperation>(BuildOperations());
  return *kOps;
}

const AwsOperation* FindAwsOperation(absl::string_view target) {
  static const auto* const kByTarget = [] {
    auto* map = new absl::flat_hash_map<std::string, const AwsOperation*>;
    for (const AwsOperation& op : AllAwsOperations()) map->emplace(op.target, &op);
    return map;
  }();
  auto it = kByTarget->find(target);
  return it == kByTarget->end() ? nullptr : it->second;
}

absl::StatusOr<std::unique_ptr<Message>> RequestFromAwsJson(const AwsOperation& op,
                                                            absl::string_view body) {
  std::unique_ptr<Message> message(google::protobuf::MessageFactory::generated_factory()
                                       ->GetPrototype(op.method->input_type())
                                       ->New());
  COFFER_RETURN_IF_ERROR(internal::MessageFromAwsJson(op.backend, body, message.get()));
  return message;
}

absl::Status internal::MessageFromAwsJson(Backend backend, absl::string_view body,
                                          Message* message) {
  if (absl::StripAsciiWhitespace(body).empty()) return absl::OkStatus();
  COFFER_RETURN_IF_ERROR(CheckBounds(body));
  absl::StatusOr<JsonValue> doc = ParseJson(body);
  if (!doc.ok()) {
    return ErrorWithCode(
        absl::StatusCode::kInvalidArgument, kSerializationException,
        absl::StrCat("the request body is not valid JSON: ", doc.status().message()));
  }
  absl::Status read = RequestReader(backend).Object(*doc, message, "");
  WipeJson(&*doc);
  if (!read.ok()) WipeMessage(message);
  return read;
}

absl::StatusOr<std::string> ResponseToAwsJson(const AwsOperation& op, const Message& response) {
  if (response.GetDescriptor() != op.method->output_type()) {
    return absl::InvalidArgumentError(absl::StrCat(op.target, " answers ",
                                                   op.method->output_type()->full_name(), ", not ",
                                                   response.GetDescriptor()->full_name()));
  }
  return internal::MessageToAwsJson(op.backend, response);
}

std::string internal::MessageToAwsJson(Backend backend, const Message& message) {
  JsonOut counter(nullptr);
  ResponseWriter(backend, &counter).Object(message);
  std::string json;
  json.reserve(counter.size());
  JsonOut writer(&json);
  ResponseWriter(backend, &writer).Object(message);
  return json;
}

void WipeMessage(Message* message) {
  if (message != nullptr) WipeFields(message);
}

}  // namespace coffer::gateway
