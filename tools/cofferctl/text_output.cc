#include "tools/cofferctl/text_output.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "tools/cofferctl/request_builder.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

// ---- Cells ------------------------------------------------------------

bool IsStringPair(const pb::Descriptor& type) {
  return type.field_count() == 2 && type.field(0)->type() == FD::TYPE_STRING &&
         !type.field(0)->is_repeated() && type.field(1)->type() == FD::TYPE_STRING &&
         !type.field(1)->is_repeated();
}

bool IsTimeType(const pb::Descriptor& type) {
  return type.full_name() == "google.protobuf.Timestamp" ||
         type.full_name() == "google.protobuf.Duration";
}

bool IsWrapper(const pb::Descriptor& type) {
  return type.file()->name() == "google/protobuf/wrappers.proto";
}

bool IsCellField(const FD& field);

// A message that reads as one piece of text.
bool IsCellMessage(const pb::Descriptor& type) {
  if (IsTimeType(type) || IsWrapper(type) || IsStringPair(type)) return true;
  return type.field_count() == 1 && IsCellField(*type.field(0));  // VersionStages {stages}
}

bool IsCellField(const FD& field) {
  if (field.is_map()) {
    const FD& value = *field.message_type()->map_value();
    return value.cpp_type() != FD::CPPTYPE_MESSAGE || IsCellMessage(*value.message_type());
  }
  if (field.cpp_type() != FD::CPPTYPE_MESSAGE) return true;
  return IsCellMessage(*field.message_type());
}

std::vector<const FD*> CellFields(const pb::Descriptor& type) {
  std::vector<const FD*> out;
  for (int i = 0; i < type.field_count(); ++i) {
    if (IsCellField(*type.field(i))) out.push_back(type.field(i));
  }
  return out;
}

bool IsSet(const pb::Message& msg, const FD& field) {
  const pb::Reflection& r = *msg.GetReflection();
  return field.is_repeated() ? r.FieldSize(msg, &field) > 0 : r.HasField(msg, &field);
}

std::string MessageCell(const pb::Message& msg);

// One value of `field` (element `index` when repeated).
std::string ScalarText(const pb::Message& msg, const FD& field, int index) {
  const pb::Reflection& r = *msg.GetReflection();
  const bool rep = field.is_repeated();
  switch (field.cpp_type()) {
    case FD::CPPTYPE_STRING: {
      std::string v = rep ? r.GetRepeatedString(msg, &field, index) : r.GetString(msg, &field);
      return field.type() == FD::TYPE_BYTES ? absl::Base64Escape(v) : v;
    }
    case FD::CPPTYPE_INT32:
      return absl::StrCat(rep ? r.GetRepeatedInt32(msg, &field, index) : r.GetInt32(msg, &field));
    case FD::CPPTYPE_INT64:
      return absl::StrCat(rep ? r.GetRepeatedInt64(msg, &field, index) : r.GetInt64(msg, &field));
    case FD::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r.GetRepeatedUInt32(msg, &field, index) : r.GetUInt32(msg, &field));
    case FD::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r.GetRepeatedUInt64(msg, &field, index) : r.GetUInt64(msg, &field));
    case FD::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r.GetRepeatedDouble(msg, &field, index) : r.GetDouble(msg, &field));
    case FD::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r.GetRepeatedFloat(msg, &field, index) : r.GetFloat(msg, &field));
    case FD::CPPTYPE_BOOL:
      return (rep ? r.GetRepeatedBool(msg, &field, index) : r.GetBool(msg, &field)) ? "true"
                                                                                    : "false";
    case FD::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* v =
          rep ? r.GetRepeatedEnum(msg, &field, index) : r.GetEnum(msg, &field);
      return v->number() == 0 ? "" : EnumShortName(*v);
    }
    case FD::CPPTYPE_MESSAGE:
      return MessageCell(rep ? r.GetRepeatedMessage(msg, &field, index)
                             : r.GetMessage(msg, &field));
  }
  return "";
}

// A cell message as text: a time, a wrapped value, key=value, or its one
// field.
std::string MessageCell(const pb::Message& msg) {
  const pb::Descriptor& type = *msg.GetDescriptor();
  if (type.full_name() == "google.protobuf.Timestamp") {
    pb::Timestamp ts;
    ts.CopyFrom(msg);
    return pb::util::TimeUtil::ToString(ts);
  }
  if (type.full_name() == "google.protobuf.Duration") {
    pb::Duration d;
    d.CopyFrom(msg);
    return pb::util::TimeUtil::ToString(d);
  }
  if (IsStringPair(type)) {
    return absl::StrCat(ScalarText(msg, *type.field(0), -1), "=",
                        ScalarText(msg, *type.field(1), -1));
  }
  if (type.field_count() == 0) return "";
  const FD& only = *type.field(0);
  if (!only.is_repeated()) return ScalarText(msg, only, -1);
  std::vector<std::string> items;
  for (int i = 0; i < msg.GetReflection()->FieldSize(msg, &only); ++i) {
    items.push_back(ScalarText(msg, only, i));
  }
  return absl::StrJoin(items, ",");
}

// A cell field as text: "" when a message is unset; lists joined with ',',
// maps and key/value pairs with ';' (sorted by key, as maps have no order).
std::string CellText(const pb::Message& msg, const FD& field) {
  const pb::Reflection& r = *msg.GetReflection();
  if (field.cpp_type() == FD::CPPTYPE_MESSAGE && !field.is_repeated()) {
    return r.HasField(msg, &field) ? MessageCell(r.GetMessage(msg, &field)) : "";
  }
  if (!field.is_repeated()) return ScalarText(msg, field, -1);
  std::vector<std::string> items;
  for (int i = 0; i < r.FieldSize(msg, &field); ++i) {
    if (field.is_map()) {
      const pb::Message& entry = r.GetRepeatedMessage(msg, &field, i);
      const pb::Descriptor& e = *entry.GetDescriptor();
      items.push_back(absl::StrCat(ScalarText(entry, *e.map_key(), -1), "=",
                                   ScalarText(entry, *e.map_value(), -1)));
    } else {
      items.push_back(ScalarText(msg, field, i));
    }
  }
  const bool pairs = field.is_map() || field.cpp_type() == FD::CPPTYPE_MESSAGE;
  if (pairs) std::sort(items.begin(), items.end());
  return absl::StrJoin(items, pairs ? ";" : ",");
}

// The message a response stands for: its only field when that is a message
// (DescribeKeyResponse -> key_metadata), else itself.
const pb::Message& Unwrap(const pb::Message& response) {
  const pb::Descriptor& type = *response.GetDescriptor();
  if (type.field_count() != 1) return response;
  const FD& only = *type.field(0);
  if (only.is_repeated() || only.cpp_type() != FD::CPPTYPE_MESSAGE || IsCellField(only)) {
    return response;
  }
  return response.GetReflection()->GetMessage(response, &only);
}

// The list field of a list response: its first field, when that is a
// repeated message.
const FD* ListField(const pb::Descriptor& type) {
  if (type.field_count() == 0) return nullptr;
  const FD* first = type.field(0);
  return first->is_repeated() && !first->is_map() && first->cpp_type() == FD::CPPTYPE_MESSAGE
             ? first
             : nullptr;
}

// ---- text ---------------------------------------------------------------

// Keeps a multi-column line a line: a tab or newline in a value would move
// every later column.
std::string EscapeForText(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string Label(const FD& field) { return absl::AsciiStrToUpper(field.name()); }

// Every cell of `msg`, tab-separated, with `label` first when not empty.
std::string TextRow(const pb::Message& msg, absl::string_view label = "") {
  std::vector<std::string> cells;
  if (!label.empty()) cells.emplace_back(label);
  for (const FD* field : CellFields(*msg.GetDescriptor())) {
    cells.push_back(EscapeForText(CellText(msg, *field)));
  }
  return absl::StrJoin(cells, "\t") + "\n";
}

// Labelled lines for every field of `msg` that is set and not in `skip`
// (cells: one line; objects: a row of their cells; lists and maps of
// objects: a line per element).
std::string LabelledLines(const pb::Message& msg, const FD* skip, bool cells_too) {
  std::string out;
  const pb::Descriptor& type = *msg.GetDescriptor();
  const pb::Reflection& r = *msg.GetReflection();
  for (int i = 0; i < type.field_count(); ++i) {
    const FD& field = *type.field(i);
    if (&field == skip || !IsSet(msg, field)) continue;
    if (IsCellField(field)) {
      if (cells_too)
        absl::StrAppend(&out, Label(field), "\t", EscapeForText(CellText(msg, field)), "\n");
    } else if (field.is_map()) {
      for (int j = 0; j < r.FieldSize(msg, &field); ++j) {
        const pb::Message& entry = r.GetRepeatedMessage(msg, &field, j);
        const pb::Descriptor& e = *entry.GetDescriptor();
        const pb::Message& value = entry.GetReflection()->GetMessage(entry, e.map_value());
        absl::StrAppend(&out, Label(field), "\t",
                        EscapeForText(ScalarText(entry, *e.map_key(), -1)), "\t", TextRow(value));
      }
    } else if (field.is_repeated()) {
      for (int j = 0; j < r.FieldSize(msg, &field); ++j) {
        absl::StrAppend(&out, TextRow(r.GetRepeatedMessage(msg, &field, j), Label(field)));
      }
    } else {
      absl::StrAppend(&out, TextRow(r.GetMessage(msg, &field), Label(field)));
    }
  }
  return out;
}

// The value at `path` ("parameter.value") when every step of it is set.
std::optional<std::string> ValueAt(const pb::Message& msg, absl::string_view path) {
  const pb::Message* at = &msg;
  std::vector<std::string> steps = absl::StrSplit(path, '.');
  for (size_t i = 0; i < steps.size(); ++i) {
    const FD* field = at->GetDescriptor()->FindFieldByName(steps[i]);
    if (field == nullptr || field->is_repeated() || !IsSet(*at, *field)) return std::nullopt;
    if (i + 1 == steps.size()) return CellText(*at, *field);
    if (field->cpp_type() != FD::CPPTYPE_MESSAGE) return std::nullopt;
    at = &at->GetReflection()->GetMessage(*at, field);
  }
  return std::nullopt;
}

// ---- table --------------------------------------------------------------

// Terminal control characters in a value (an escape sequence in a
// description) must not reach the terminal.
std::string EscapeForTable(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// Width on a terminal, counting UTF-8 code points.
size_t Width(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Pad(const std::string& s, size_t width) {
  return s + std::string(width > Width(s) ? width - Width(s) : 0, ' ');
}

// Rows of cells under a header, columns two spaces apart.
std::string Grid(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const std::string& h : header) widths.push_back(Width(h));
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], Width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      absl::StrAppend(&out, c + 1 == cells.size() ? cells[c] : Pad(cells[c], widths[c] + 2));
    }
    out.erase(out.find_last_not_of(' ') + 1);  // an empty last cell leaves padding
    return out + "\n";
  };
  std::vector<std::string> rule;
  for (size_t w : widths) rule.push_back(std::string(w, '-'));
  std::string out = line(header) + line(rule);
  for (const auto& row : rows) out += line(row);
  return out;
}

// A table of the elements of the repeated message `field` of `msg`.
std::string ListTable(const pb::Message& msg, const FD& field,
                      const std::vector<std::string>& wanted) {
  const pb::Reflection& r = *msg.GetReflection();
  const int n = r.FieldSize(msg, &field);
  if (n == 0) return "(none)\n";
  const pb::Descriptor& type = *field.message_type();
  std::vector<const FD*> candidates;
  for (const std::string& name : wanted) {
    const FD* f = type.FindFieldByName(name);
    if (f != nullptr && IsCellField(*f)) candidates.push_back(f);
  }
  if (candidates.empty()) candidates = CellFields(type);
  // A column empty in every row says nothing; a named bool column does
  // (false everywhere).
  std::vector<const FD*> columns;
  for (const FD* f : candidates) {
    bool shown = !wanted.empty() && f->cpp_type() == FD::CPPTYPE_BOOL && !f->is_repeated();
    for (int i = 0; i < n && !shown; ++i) shown = IsSet(r.GetRepeatedMessage(msg, &field, i), *f);
    if (shown) columns.push_back(f);
  }
  std::vector<std::string> header;
  for (const FD* f : columns) header.push_back(f->name());
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < n; ++i) {
    const pb::Message& element = r.GetRepeatedMessage(msg, &field, i);
    std::vector<std::string> row;
    for (const FD* f : columns) {
      row.push_back(IsSet(element, *f) || f->cpp_type() == FD::CPPTYPE_BOOL
                        ? EscapeForTable(CellText(element, *f))
                        : "");
    }
    rows.push_back(std::move(row));
  }
  return Grid(header, rows);
}

struct KeyValues {
  std::vector<std::pair<std::string, std::string>> rows;
  std::string tables;  // nested lists, below the rows
};

// Key/value rows for every set field of `msg` but `skip`, nested objects
// flattened under `prefix`.
void Collect(const pb::Message& msg, const std::string& prefix, const FD* skip, KeyValues* out) {
  const pb::Descriptor& type = *msg.GetDescriptor();
  const pb::Reflection& r = *msg.GetReflection();
  for (int i = 0; i < type.field_count(); ++i) {
    const FD& field = *type.field(i);
    if (&field == skip || !IsSet(msg, field)) continue;
    const std::string key = prefix + field.name();
    if (IsCellField(field)) {
      out->rows.emplace_back(key, EscapeForTable(CellText(msg, field)));
    } else if (field.is_map()) {
      for (int j = 0; j < r.FieldSize(msg, &field); ++j) {
        const pb::Message& entry = r.GetRepeatedMessage(msg, &field, j);
        const pb::Descriptor& e = *entry.GetDescriptor();
        Collect(entry.GetReflection()->GetMessage(entry, e.map_value()),
                absl::StrCat(key, ".", EscapeForTable(ScalarText(entry, *e.map_key(), -1)), "."),
                nullptr, out);
      }
    } else if (field.is_repeated()) {
      absl::StrAppend(&out->tables, "\n", key, ":\n", ListTable(msg, field, {}));
    } else {
      Collect(r.GetMessage(msg, &field), key + ".", nullptr, out);
    }
  }
}

std::string KeyValueTable(const pb::Message& msg, const FD* skip) {
  KeyValues kv;
  Collect(msg, "", skip, &kv);
  size_t width = 0;
  for (const auto& [key, value] : kv.rows) width = std::max(width, Width(key));
  std::string out;
  for (const auto& [key, value] : kv.rows) {
    absl::StrAppend(&out, value.empty() ? key : Pad(key, width + 2) + value, "\n");
  }
  if (out.empty() && !kv.tables.empty()) return kv.tables.substr(1);  // no blank line first
  return out + kv.tables;
}

}  // namespace

std::string FormatText(const pb::Message& response, absl::string_view text_value) {
  for (absl::string_view choice : absl::StrSplit(text_value, '|', absl::SkipEmpty())) {
    std::vector<std::string> values;
    bool complete = true;
    for (absl::string_view path : absl::StrSplit(choice, ',')) {
      std::optional<std::string> value = ValueAt(response, path);
      complete = value.has_value();
      if (!complete) break;
      values.push_back(*std::move(value));
    }
    if (!complete) continue;
    if (values.size() == 1) return values[0] + "\n";  // the value exactly as it is
    for (std::string& value : values) value = EscapeForText(value);
    return absl::StrJoin(values, "\t") + "\n";
  }
  if (const FD* list = ListField(*response.GetDescriptor())) {
    std::string out;
    const pb::Reflection& r = *response.GetReflection();
    for (int i = 0; i < r.FieldSize(response, list); ++i) {
      out += TextRow(r.GetRepeatedMessage(response, list, i));
    }
    return out + LabelledLines(response, list, /*cells_too=*/true);
  }
  const pb::Message& object = Unwrap(response);
  if (object.GetDescriptor()->field_count() == 0) return "";
  std::string out = CellFields(*object.GetDescriptor()).empty() ? "" : TextRow(object);
  return out + LabelledLines(object, nullptr, /*cells_too=*/false);
}

std::string FormatTextLine(const pb::Message& message) { return TextRow(message); }

std::string FormatTable(const pb::Message& response, const std::vector<std::string>& columns) {
  if (const FD* list = ListField(*response.GetDescriptor())) {
    const std::string rest = KeyValueTable(response, list);
    return ListTable(response, *list, columns) + (rest.empty() ? "" : "\n" + rest);
  }
  return KeyValueTable(Unwrap(response), nullptr);
}

}  // namespace coffer::cofferctl
