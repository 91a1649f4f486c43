// json.h: the small piece of JSON writing that logs and audit records need.
//
//   std::string s = "{\"name\":" + coffer::JsonQuote(name) + "}";
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace coffer {

// `s` as a JSON string literal, with quotes, control characters and
// non-UTF-8 bytes escaped (invalid bytes become \ufffd).
std::string JsonQuote(absl::string_view s);

}  // namespace coffer
