// json_tree.h: a small JSON reader that remembers where each value was, so
// that a policy error can name its line and field ("line 12: statements[2].
// effect: must be Allow or Deny").
//
//   COFFER_ASSIGN_OR_RETURN(JsonValue doc, ParseJson(text));
//   const JsonValue* statements = doc.Find("statements");
//   if (statements != nullptr && statements->type != JsonValue::kArray) ...
//
// Strict RFC 8259: one value, no comments, no trailing commas; nesting is
// bounded (64) so a hostile document cannot exhaust the stack. Errors are
// INVALID_ARGUMENT "line N: ...". Internal to libs/authz.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coffer::authz {

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

}  // namespace coffer::authz
