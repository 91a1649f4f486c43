// utf8.h: UTF-8 checks for text that must be valid UTF-8 where it goes —
// proto3 string fields (an ErrorInfo with a stray byte in its resource
// would not parse, and the caller would lose the error's reason) and JSON.
//
//   size_t n = Utf8SequenceLength(text, i);   // 0: not valid at i
//   info.set_resource(ValidUtf8(resource));   // invalid bytes become U+FFFD
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace coffer {

// Length (1-4) of the valid UTF-8 sequence starting at s[i], or 0 when
// there is none (stray continuation byte, overlong form, surrogate, beyond
// U+10FFFF, cut off by the end).
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// `s` with every byte that starts no valid sequence replaced by U+FFFD.
std::string ValidUtf8(absl::string_view s);

}  // namespace coffer
