#include "tools/cofferctl/request_builder.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/json.h"
#include "libs/common/status_macros.h"
#include "libs/common/utf8.h"
#include "tools/cofferctl/api_docs.h"
#include "tools/cofferctl/command_table.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

constexpr char kCliInputJson[] = "cli-input-json";

absl::Status BadFlag(absl::string_view flag, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", problem));
}

// ---- Scalars ----------------------------------------------------------

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Digits with an optional leading '-': no spaces, no '+', no hex.
template <typename T>
bool StrictInt(absl::string_view s, T* out) {
  absl::string_view digits = absl::StartsWith(s, "-") ? s.substr(1) : s;
  return AllDigits(digits) && absl::SimpleAtoi(s, out);
}

bool StrictDouble(absl::string_view s, double* out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s.front())) ||
      std::isspace(static_cast<unsigned char>(s.back()))) {
    return false;
  }
  return absl::SimpleAtod(s, out);
}

std::string EnumPrefix(const pb::EnumDescriptor& type) {
  // Preferred: the type name in UPPER_SNAKE (DataKeySpec -> DATA_KEY_SPEC_).
  std::string candidate = OperationName(type.name());
  for (char& c : candidate) c = c == '-' ? '_' : absl::ascii_toupper(static_cast<unsigned char>(c));
  candidate += "_";
  bool all = true;
  for (int i = 0; i < type.value_count(); ++i) {
    const std::string& name = type.value(i)->name();
    if (!absl::StartsWith(name, candidate) || name.size() == candidate.size()) all = false;
  }
  if (all) return candidate;
  // Otherwise the longest common prefix that ends with '_'.
  std::string common = type.value(0)->name();
  for (int i = 1; i < type.value_count(); ++i) {
    const std::string& name = type.value(i)->name();
    size_t n = 0;
    while (n < common.size() && n < name.size() && common[n] == name[n]) ++n;
    common.resize(n);
  }
  const size_t underscore = common.rfind('_');
  if (underscore == std::string::npos) return "";
  common.resize(underscore + 1);
  for (int i = 0; i < type.value_count(); ++i) {
    if (type.value(i)->name().size() == common.size()) return "";
  }
  return common;
}

std::string EnumChoices(const pb::EnumDescriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.value_count(); ++i) {
    if (absl::EndsWith(type.value(i)->name(), "_UNSPECIFIED")) continue;
    names.push_back(EnumShortName(*type.value(i)));
  }
  return absl::StrJoin(names, ", ");
}

const pb::EnumValueDescriptor* FindEnumValue(const pb::EnumDescriptor& type,
                                             absl::string_view text) {
  std::string wanted = absl::AsciiStrToUpper(text);
  for (char& c : wanted) {
    if (c == '-') c = '_';
  }
  for (int i = 0; i < type.value_count(); ++i) {
    const pb::EnumValueDescriptor* value = type.value(i);
    if (value->name() == wanted || EnumShortName(*value) == wanted) return value;
  }
  // The AWS spelling without separators ("SecureString" for SECURE_STRING),
  // when it names exactly one value.
  auto squeeze = [](std::string name) {
    name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
    return name;
  };
  const std::string squeezed = squeeze(wanted);
  const pb::EnumValueDescriptor* found = nullptr;
  for (int i = 0; i < type.value_count(); ++i) {
    const pb::EnumValueDescriptor* value = type.value(i);
    if (squeeze(value->name()) == squeezed || squeeze(EnumShortName(*value)) == squeezed) {
      if (found != nullptr && found != value) return nullptr;
      found = value;
    }
  }
  return found;
}

// Parses `text` for the scalar `field` of `msg` and sets it (or appends it
// when the field is repeated).
absl::Status StoreScalar(pb::Message& msg, const FD& field, absl::string_view flag,
                         absl::string_view text) {
  const pb::Reflection& r = *msg.GetReflection();
  const bool rep = field.is_repeated();
  // Never the value itself: it may be a secret given to the wrong flag.
  auto invalid = [&](absl::string_view what) {
    return BadFlag(flag, absl::StrCat("not a valid ", what));
  };
  switch (field.cpp_type()) {
    case FD::CPPTYPE_STRING: {
      std::string value(text);
      if (field.type() == FD::TYPE_BYTES) {
        value.clear();
        if (!absl::Base64Unescape(text, &value)) {
          return BadFlag(flag, "not valid base64; give raw bytes with fileb://<path> or - (stdin)");
        }
      }
      rep ? r.AddString(&msg, &field, std::move(value))
          : r.SetString(&msg, &field, std::move(value));
      return absl::OkStatus();
    }
    case FD::CPPTYPE_INT32: {
      int32_t v;
      if (!StrictInt(text, &v)) return invalid(field.type_name());
      rep ? r.AddInt32(&msg, &field, v) : r.SetInt32(&msg, &field, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_INT64: {
      int64_t v;
      if (!StrictInt(text, &v)) return invalid(field.type_name());
      rep ? r.AddInt64(&msg, &field, v) : r.SetInt64(&msg, &field, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_UINT32: {
      uint32_t v;
      if (!AllDigits(text) || !absl::SimpleAtoi(text, &v)) return invalid(field.type_name());
      rep ? r.AddUInt32(&msg, &field, v) : r.SetUInt32(&msg, &field, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_UINT64: {
      uint64_t v;
      if (!AllDigits(text) || !absl::SimpleAtoi(text, &v)) return invalid(field.type_name());
      rep ? r.AddUInt64(&msg, &field, v) : r.SetUInt64(&msg, &field, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_DOUBLE:
    case FD::CPPTYPE_FLOAT: {
      double v;
      if (!StrictDouble(text, &v)) return invalid(field.type_name());
      if (field.cpp_type() == FD::CPPTYPE_DOUBLE) {
        rep ? r.AddDouble(&msg, &field, v) : r.SetDouble(&msg, &field, v);
      } else {
        const float f = static_cast<float>(v);
        rep ? r.AddFloat(&msg, &field, f) : r.SetFloat(&msg, &field, f);
      }
      return absl::OkStatus();
    }
    case FD::CPPTYPE_BOOL: {
      const std::string lower = absl::AsciiStrToLower(text);
      bool v;
      if (lower == "true" || lower == "1") {
        v = true;
      } else if (lower == "false" || lower == "0") {
        v = false;
      } else {
        return invalid("bool (use true or false)");
      }
      rep ? r.AddBool(&msg, &field, v) : r.SetBool(&msg, &field, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* v = FindEnumValue(*field.enum_type(), text);
      if (v == nullptr) {
        return BadFlag(flag,
                       absl::StrCat("not a ", field.enum_type()->name(),
                                    " value; expected one of: ", EnumChoices(*field.enum_type())));
      }
      rep ? r.AddEnum(&msg, &field, v) : r.SetEnum(&msg, &field, v);
      return absl::OkStatus();
    }
    case FD::CPPTYPE_MESSAGE:
      break;
  }
  return BadFlag(flag, "is a message field");  // Callers handle messages.
}

// ---- JSON -------------------------------------------------------------

// The first line of a protobuf JSON parse error without the value it may
// quote: `(secret_binary): invalid value "..." for type TYPE_BYTES` names the
// field and the type, and the value can be a secret. The later lines quote
// the input around the error and are dropped whole.
std::string WithoutValue(std::string why) {
  why = why.substr(0, why.find('\n'));
  const size_t start = why.find("invalid value ");
  const size_t end = why.rfind(" for type ");
  if (start != std::string::npos && end != std::string::npos && end > start) {
    why.replace(start, end - start, "invalid value");
  }
  return why;
}

absl::Status ParseJson(absl::string_view json, pb::Message& msg, absl::string_view flag) {
  pb::util::JsonParseOptions options;
  auto status =
      pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), &msg, options);
  if (!status.ok()) {
    // The parser's later lines quote the input around the error, and the
    // input may hold a secret value: keep only the first line.
    const std::string why = WithoutValue(status.message().ToString());
    return BadFlag(flag,
                   absl::StrCat("invalid JSON for ", msg.GetDescriptor()->full_name(), ": ", why));
  }
  return absl::OkStatus();
}

// Merges `json` (the JSON value of `field`) into `msg`: a map gets its
// entries, a repeated field its elements appended, a message is merged.
absl::Status MergeJsonField(pb::Message& msg, const FD& field, absl::string_view flag,
                            absl::string_view json) {
  std::unique_ptr<pb::Message> holder(msg.New());
  COFFER_RETURN_IF_ERROR(
      ParseJson(absl::StrCat("{", JsonQuote(field.name()), ":", json, "}"), *holder, flag));
  msg.MergeFrom(*holder);
  return absl::OkStatus();
}

// Well-known types whose proto3 JSON form is a string (Timestamp is RFC 3339).
bool IsJsonStringType(const pb::Descriptor& type) {
  const std::string& n = type.full_name();
  return n == "google.protobuf.Timestamp" || n == "google.protobuf.Duration" ||
         n == "google.protobuf.FieldMask";
}

bool IsWrapperType(const pb::Descriptor& type) {
  return type.file()->name() == "google/protobuf/wrappers.proto";
}

bool IsStringPair(const pb::Descriptor& type) {
  return type.field_count() == 2 && type.field(0)->type() == FD::TYPE_STRING &&
         !type.field(0)->is_repeated() && type.field(1)->type() == FD::TYPE_STRING &&
         !type.field(1)->is_repeated();
}

// Fills one message (a singular field or a new element) from a flag value.
absl::Status FillMessage(pb::Message& msg, absl::string_view flag, absl::string_view text) {
  const pb::Descriptor& type = *msg.GetDescriptor();
  if (absl::StartsWith(text, "{")) return ParseJson(text, msg, flag);
  if (IsJsonStringType(type)) return ParseJson(JsonQuote(text), msg, flag);
  if (IsWrapperType(type)) return StoreScalar(msg, *type.FindFieldByNumber(1), flag, text);
  if (IsStringPair(type)) {
    std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('=', 1));
    if (parts.size() != 2) {
      return BadFlag(flag, absl::StrCat("expected ", type.field(0)->name(), "=",
                                        type.field(1)->name(), " or a JSON object"));
    }
    msg.GetReflection()->SetString(&msg, type.field(0), parts[0]);
    msg.GetReflection()->SetString(&msg, type.field(1), parts[1]);
    return absl::OkStatus();
  }
  return BadFlag(flag, absl::StrCat("expected a JSON object for ", type.full_name()));
}

// ---- Fields -----------------------------------------------------------

absl::Status StoreMapEntry(pb::Message& msg, const FD& field, absl::string_view flag,
                           absl::string_view text) {
  const FD& key = *field.message_type()->map_key();
  const FD& value = *field.message_type()->map_value();
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('=', 1));
  if (parts.size() != 2) {
    return BadFlag(flag, "expected key=value or a JSON object");
  }
  // Reject a repeated key instead of silently keeping one of the two.
  const pb::Reflection& r = *msg.GetReflection();
  for (int i = 0; i < r.FieldSize(msg, &field); ++i) {
    const pb::Message& entry = r.GetRepeatedMessage(msg, &field, i);
    if (key.cpp_type() == FD::CPPTYPE_STRING &&
        entry.GetReflection()->GetString(entry, &key) == parts[0]) {
      return BadFlag(flag, absl::StrCat("key '", parts[0], "' given more than once"));
    }
  }
  pb::Message* entry = r.AddMessage(&msg, &field);
  COFFER_RETURN_IF_ERROR(StoreScalar(*entry, key, flag, parts[0]));
  if (value.cpp_type() == FD::CPPTYPE_MESSAGE) {
    return FillMessage(*entry->GetReflection()->MutableMessage(entry, &value), flag, parts[1]);
  }
  return StoreScalar(*entry, value, flag, parts[1]);
}

// Applies one flag value (already read from a file when `raw` is set).
absl::Status ApplyValue(pb::Message& msg, const FD& field, absl::string_view flag,
                        const std::string& text, bool raw) {
  const pb::Reflection& r = *msg.GetReflection();
  if (raw) {  // --<field>-file: the bytes as they are.
    field.is_repeated() ? r.AddString(&msg, &field, text) : r.SetString(&msg, &field, text);
    return absl::OkStatus();
  }
  if (field.is_map()) {
    if (absl::StartsWith(text, "{")) return MergeJsonField(msg, field, flag, text);
    return StoreMapEntry(msg, field, flag, text);
  }
  if (field.is_repeated()) {
    if (absl::StartsWith(text, "[")) return MergeJsonField(msg, field, flag, text);
    if (field.cpp_type() == FD::CPPTYPE_MESSAGE) {
      return FillMessage(*r.AddMessage(&msg, &field), flag, text);
    }
    for (absl::string_view item : absl::StrSplit(text, ',')) {
      COFFER_RETURN_IF_ERROR(StoreScalar(msg, field, flag, item));
    }
    return absl::OkStatus();
  }
  if (field.cpp_type() == FD::CPPTYPE_MESSAGE) {
    return FillMessage(*r.MutableMessage(&msg, &field), flag, text);
  }
  return StoreScalar(msg, field, flag, text);
}

struct FlagUse {
  std::string flag;  // as typed, without the leading "--"
  const FD* field = nullptr;
  bool from_file = false;  // --<field>-file=<path>
  std::string value;
};

absl::StatusOr<FlagUse> ResolveFlag(const pb::Descriptor& type, absl::string_view flag) {
  std::string name(flag);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  FlagUse use;
  use.flag = std::string(flag);
  use.field = type.FindFieldByName(name);
  if (use.field == nullptr && absl::EndsWith(name, "_file")) {
    const FD* stem = type.FindFieldByName(name.substr(0, name.size() - 5));
    if (stem != nullptr && stem->cpp_type() == FD::CPPTYPE_STRING) {
      use.field = stem;
      use.from_file = true;
    }
  }
  if (use.field == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown flag --", flag, ": ", type.full_name(),
                                                   " has no field '", name, "' (see --help)"));
  }
  return use;
}

// Where a flag's value comes from: the command line, a file or stdin.
struct ValueSource {
  enum Kind { kInline, kFile, kFileBinary, kStdin } kind = kInline;
  std::string path;  // kFile, kFileBinary; "-" for kStdin
};

ValueSource SourceOf(absl::string_view value) {
  if (value == kStdinPath) return {ValueSource::kStdin, kStdinPath};
  if (absl::StartsWith(value, "fileb://")) {
    return {ValueSource::kFileBinary, std::string(value.substr(8))};
  }
  if (absl::StartsWith(value, "file://")) return {ValueSource::kFile, std::string(value.substr(7))};
  return {};
}

// Reads values from files and stdin for one request; stdin only once, since
// a second read would silently see nothing.
class ValueReader {
 public:
  explicit ValueReader(const FileReader& read_file) : read_file_(read_file) {}

  absl::StatusOr<std::string> Read(absl::string_view flag, const std::string& path) {
    if (path == kStdinPath) {
      if (!stdin_flag_.empty()) {
        return BadFlag(flag, absl::StrCat("standard input (-) is already read by --", stdin_flag_));
      }
      stdin_flag_ = std::string(flag);
    }
    absl::StatusOr<std::string> content = read_file_(path);
    if (!content.ok()) return BadFlag(flag, content.status().message());
    return content;
  }

 private:
  const FileReader& read_file_;
  std::string stdin_flag_;  // the flag that read stdin, if any
};

bool IsText(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Sets a string or bytes field to `content` as it is (from a file or stdin).
// A string field must get UTF-8: proto3 would carry other bytes to the
// server, which refuses the whole request without saying which field.
absl::Status ApplyRaw(pb::Message& msg, const FD& field, absl::string_view flag,
                      const std::string& content) {
  if (field.type() == FD::TYPE_STRING && !IsText(content)) {
    return BadFlag(flag, "the content is not UTF-8 text (binary belongs in a bytes field)");
  }
  return ApplyValue(msg, field, flag, content, /*raw=*/true);
}

// Applies one flag: its value as typed, or what file://, fileb:// or - name.
// String and bytes fields take the content exactly as it is (every byte,
// a final newline included); any other field parses it as if it had been
// typed, without surrounding whitespace ("24\n" is 24).
absl::Status ApplyFlag(pb::Message& msg, const FlagUse& use, ValueReader& reader) {
  const FD& field = *use.field;
  if (use.from_file) {
    COFFER_ASSIGN_OR_RETURN(std::string content, reader.Read(use.flag, use.value));
    return ApplyRaw(msg, field, use.flag, content);
  }
  const ValueSource source = SourceOf(use.value);
  if (source.kind == ValueSource::kInline) {
    if (field.type() == FD::TYPE_STRING && !IsText(use.value)) {
      return BadFlag(use.flag, "not UTF-8 text");
    }
    return ApplyValue(msg, field, use.flag, use.value, /*raw=*/false);
  }
  if (source.kind == ValueSource::kFileBinary && field.type() != FD::TYPE_BYTES) {
    return BadFlag(use.flag, "fileb:// is for bytes fields; use file://<path>");
  }
  COFFER_ASSIGN_OR_RETURN(std::string content, reader.Read(use.flag, source.path));
  if (field.cpp_type() == FD::CPPTYPE_STRING && !field.is_map()) {
    return ApplyRaw(msg, field, use.flag, content);
  }
  return ApplyValue(msg, field, use.flag, std::string(absl::StripAsciiWhitespace(content)),
                    /*raw=*/false);
}

// Splits `args` into --cli-input-json (if any) and the flag uses, in order.
absl::Status ParseFlags(const pb::Descriptor& type, const std::vector<std::string>& args,
                        std::optional<std::string>* input_json, std::vector<FlagUse>* uses) {
  std::string last_flag;  // the flag before a stray value, to say where it is
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      // Never quoted: the stray word may be part of a secret (a value with a
      // space, unquoted), so say where it is, not what it is.
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected value", last_flag.empty() ? "" : absl::StrCat(" after --", last_flag),
          " (a value without a flag); quote a value that contains spaces"));
    }
    std::vector<std::string> parts = absl::StrSplit(arg.substr(2), absl::MaxSplits('=', 1));
    last_flag = parts[0];
    std::optional<std::string> value;
    if (parts.size() == 2) value = parts[1];
    const std::string& flag = parts[0];
    const bool is_json = flag == kCliInputJson || flag == "cli_input_json";
    FlagUse use;
    if (!is_json) {
      COFFER_ASSIGN_OR_RETURN(use, ResolveFlag(type, flag));
    }
    if (!value.has_value()) {
      const bool is_bool = !is_json && !use.from_file && !use.field->is_repeated() &&
                           use.field->cpp_type() == FD::CPPTYPE_BOOL;
      if (is_bool) {
        value = "true";
      } else if (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) {
        value = args[++i];
      } else {
        return BadFlag(flag, "needs a value");
      }
    }
    if (is_json) {
      if (input_json->has_value()) return BadFlag(flag, "given more than once");
      *input_json = *std::move(value);
      continue;
    }
    use.value = *std::move(value);
    uses->push_back(std::move(use));
  }
  return absl::OkStatus();
}

}  // namespace

std::string EnumShortName(const pb::EnumValueDescriptor& value) {
  const std::string prefix = EnumPrefix(*value.type());
  return value.name().substr(prefix.size());
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read file '", path, "'"));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading file '", path, "'"));
  return out.str();
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path != kStdinPath) return ReadWholeFile(path);
  std::ostringstream out;
  out << std::cin.rdbuf();
  if (std::cin.bad()) return absl::DataLossError("error reading standard input");
  return out.str();
}

absl::Status FillRequest(const std::vector<std::string>& args, pb::Message& request,
                         const FileReader& read_file) {
  std::optional<std::string> input_json;
  std::vector<FlagUse> uses;
  COFFER_RETURN_IF_ERROR(ParseFlags(*request.GetDescriptor(), args, &input_json, &uses));

  ValueReader reader(read_file);
  if (input_json.has_value()) {
    std::string json = *input_json;
    const ValueSource source = SourceOf(json);
    if (source.kind == ValueSource::kFileBinary) {
      return BadFlag(kCliInputJson, "takes '{...}', file://<path> or -");
    }
    if (source.kind != ValueSource::kInline) {
      COFFER_ASSIGN_OR_RETURN(json, reader.Read(kCliInputJson, source.path));
    }
    COFFER_RETURN_IF_ERROR(ParseJson(json, request, kCliInputJson));
  }

  const pb::Reflection& r = *request.GetReflection();
  std::set<const FD*> named;  // fields already given by a flag
  std::map<const pb::OneofDescriptor*, std::pair<const FD*, std::string>> oneof_flag;
  for (const FlagUse& use : uses) {
    const FD& field = *use.field;
    if (named.count(&field) == 0) {
      named.insert(&field);
      r.ClearField(&request, &field);  // a flag replaces what the JSON said
    } else if (!field.is_repeated()) {
      return BadFlag(use.flag, "given more than once");
    }
    if (const pb::OneofDescriptor* oneof = field.real_containing_oneof()) {
      auto [it, inserted] = oneof_flag.emplace(oneof, std::make_pair(&field, use.flag));
      if (!inserted && it->second.first != &field) {
        return BadFlag(use.flag, absl::StrCat("cannot be combined with --", it->second.second,
                                              " (both set ", oneof->name(), ")"));
      }
    }
    COFFER_RETURN_IF_ERROR(ApplyFlag(request, use, reader));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::set<std::string>> FieldsNamedByFlags(const pb::Descriptor& type,
                                                         const std::vector<std::string>& args) {
  std::optional<std::string> input_json;
  std::vector<FlagUse> uses;
  COFFER_RETURN_IF_ERROR(ParseFlags(type, args, &input_json, &uses));
  std::set<std::string> fields;
  for (const FlagUse& use : uses) fields.insert(use.field->name());
  return fields;
}

absl::StatusOr<std::unique_ptr<pb::Message>> BuildRequest(const pb::Descriptor& type,
                                                          const std::vector<std::string>& args,
                                                          const FileReader& read_file) {
  const pb::Message* prototype = pb::MessageFactory::generated_factory()->GetPrototype(&type);
  if (prototype == nullptr) {
    return absl::InternalError(absl::StrCat("no generated code for ", type.full_name()));
  }
  std::unique_ptr<pb::Message> request(prototype->New());
  COFFER_RETURN_IF_ERROR(FillRequest(args, *request, read_file));
  return request;
}

namespace {

std::string FieldUsage(const FD& field, bool required) {
  const std::string flag = absl::StrCat("--", FlagName(field.name()));
  std::string shape;
  std::string type;
  const char* repeated = "repeated: repeat the flag or separate values with commas";
  if (field.is_map()) {
    const FD& key = *field.message_type()->map_key();
    const FD& value = *field.message_type()->map_value();
    shape = " <key>=<value>";
    type = absl::StrCat("map<", key.type_name(), ", ",
                        value.cpp_type() == FD::CPPTYPE_MESSAGE ? value.message_type()->full_name()
                                                                : std::string(value.type_name()),
                        ">: repeat the flag, or a JSON object");
    repeated = "";
  } else if (field.cpp_type() == FD::CPPTYPE_MESSAGE) {
    const pb::Descriptor& m = *field.message_type();
    if (m.full_name() == "google.protobuf.Timestamp") {
      shape = "=<RFC 3339 time>";
      type = "google.protobuf.Timestamp, e.g. 2030-01-01T00:00:00Z";
    } else if (IsStringPair(m)) {
      shape = absl::StrCat(" ", m.field(0)->name(), "=", m.field(1)->name());
      type = absl::StrCat(m.full_name(), ": ", m.field(0)->name(), "=", m.field(1)->name(),
                          " or a JSON object");
    } else {
      shape = "=<JSON>";
      type = absl::StrCat(m.full_name(), " as a JSON object");
    }
    repeated = "repeated: repeat the flag, or a JSON array";
  } else {
    switch (field.cpp_type()) {
      case FD::CPPTYPE_BOOL:
        shape = "[=true|false]";
        type = "bool";
        break;
      case FD::CPPTYPE_ENUM:
        shape = "=<enum>";
        type =
            absl::StrCat("enum ", field.enum_type()->name(), ": ", EnumChoices(*field.enum_type()));
        break;
      case FD::CPPTYPE_STRING:
        if (field.type() == FD::TYPE_BYTES) {
          shape = "=<base64>";
          type = absl::StrCat("bytes: base64, or raw bytes from fileb://<path>, - (stdin) or ",
                              flag, "-file=<path>");
        } else {
          shape = "=<string>";
          type = "string";
        }
        break;
      default:
        shape = absl::StrCat("=<", field.type_name(), ">");
        type = field.type_name();
    }
  }
  if (field.is_repeated() && *repeated != '\0') absl::StrAppend(&type, "; ", repeated);
  return absl::StrCat("  ", flag, shape, required ? "  (required)" : "", "\n      ", type, "\n",
                      Indented(FieldComment(field), 6));
}

}  // namespace

std::string RequestFlagsUsage(const pb::Descriptor& type, const std::set<std::string>& required,
                              const std::set<std::string>& omitted) {
  std::string out;
  for (int i = 0; i < type.field_count(); ++i) {
    const FD& field = *type.field(i);
    if (omitted.count(field.name()) > 0) continue;
    absl::StrAppend(&out, FieldUsage(field, required.count(field.name()) > 0));
  }
  if (out.empty()) absl::StrAppend(&out, "  (none)\n");
  absl::StrAppend(&out, "  --cli-input-json='{...}' | --cli-input-json=file://<path> | -\n",
                  "      the whole ", type.full_name(),
                  " as proto3 JSON; applied first, flags override\n");
  return out;
}

}  // namespace coffer::cofferctl
