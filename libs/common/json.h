// json.h: the small pieces of JSON Coffer writes and reads itself: quoting
// for logs and audit records, and a strict reader that remembers the line
// of every value, so that a policy error can name its line and field and
// the audit verifier can check each record's shape.
//
//   std::string s = "{\"name\":" + coffer::JsonQuote(name) + "}";
//   COFFER_ASSIGN_OR_RETURN(coffer::JsonValue doc, coffer::ParseJson(text));
//   const coffer::JsonValue* statements = doc.Find("statements");
//
// The reader is strict RFC 8259: one value, no comments, no trailing commas,
// no leading zeros; nesting is bounded (64) so a hostile document cannot
// exhaust the stack. Errors are INVALID_ARGUMENT "line N: ...".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coffer {

// `s` as a JSON string literal, with quotes, control characters and
// non-UTF-8 bytes escaped (invalid bytes become \ufffd).
std::string JsonQuote(absl::string_view s);

struct JsonValue {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = kNull;
  int line = 1;
  bool boolean = false;
  std::string text;              // kString: the decoded string; kNumber: the literal
  std::vector<JsonValue> items;  // kArray
  std::vector<std::pair<std::string, JsonValue>> members;  // kObject, in order

  // The member named `key` (the last one when repeated), or nullptr.
  const JsonValue* Find(absl::string_view key) const;
};

// "string", "array", ... for error messages.
const char* JsonTypeName(JsonValue::Type type);

absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

}  // namespace coffer
