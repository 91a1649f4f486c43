// json_tree_fuzz: coffer::ParseJson on arbitrary text. Properties: errors are
// INVALID_ARGUMENT "line N: ..."; a document that parses, written back out
// compactly, parses again to the same tree (types, strings, number
// literals, member order); line numbers never run past the input's lines.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "fuzz/fuzz_check.h"
#include "libs/common/json.h"

namespace {

using coffer::JsonValue;

void WriteString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
      out->append(buf);
    } else {
      out->push_back(c);  // bytes >= 0x20 as they are, as the reader keeps them
    }
  }
  out->push_back('"');
}

void Write(const JsonValue& v, std::string* out) {
  switch (v.type) {
    case JsonValue::kNull:
      out->append("null");
      return;
    case JsonValue::kBool:
      out->append(v.boolean ? "true" : "false");
      return;
    case JsonValue::kNumber:
      out->append(v.text);
      return;
    case JsonValue::kString:
      WriteString(v.text, out);
      return;
    case JsonValue::kArray:
      out->push_back('[');
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) out->push_back(',');
        Write(v.items[i], out);
      }
      out->push_back(']');
      return;
    case JsonValue::kObject:
      out->push_back('{');
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i > 0) out->push_back(',');
        WriteString(v.members[i].first, out);
        out->push_back(':');
        Write(v.members[i].second, out);
      }
      out->push_back('}');
      return;
  }
}

bool Same(const JsonValue& a, const JsonValue& b) {
  if (a.type != b.type || a.boolean != b.boolean || a.text != b.text ||
      a.items.size() != b.items.size() || a.members.size() != b.members.size()) {
    return false;
  }
  for (size_t i = 0; i < a.items.size(); ++i) {
    if (!Same(a.items[i], b.items[i])) return false;
  }
  for (size_t i = 0; i < a.members.size(); ++i) {
    if (a.members[i].first != b.members[i].first) return false;
    if (!Same(a.members[i].second, b.members[i].second)) return false;
  }
  return true;
}

void CheckTree(const JsonValue& v, int max_line) {
  FUZZ_CHECK(v.line >= 1 && v.line <= max_line, "line within the input");
  FUZZ_CHECK(coffer::JsonTypeName(v.type) != nullptr, "type name");
  for (const JsonValue& item : v.items) CheckTree(item, max_line);
  for (const auto& [name, value] : v.members) {
    FUZZ_CHECK(v.Find(name) != nullptr, "Find finds every member");
    CheckTree(value, max_line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text = coffer::fuzz::AsText(data, size);
  absl::StatusOr<JsonValue> doc = coffer::ParseJson(text);
  if (!doc.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(doc.status()), "error code");
    FUZZ_CHECK(absl::StartsWith(doc.status().message(), "line "), "error names a line");
    return 0;
  }
  CheckTree(*doc, 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n')));
  std::string again;
  Write(*doc, &again);
  absl::StatusOr<JsonValue> reparsed = coffer::ParseJson(again);
  FUZZ_CHECK(reparsed.ok(), "a parsed document written back parses");
  FUZZ_CHECK(Same(*doc, *reparsed), "round trip keeps the tree");
  return 0;
}
