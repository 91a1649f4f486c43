// fuzz_check.h: what the fuzz targets share — a property check that
// aborts (libFuzzer records the input as a crash) and input helpers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "libs/common/errors.h"

namespace coffer::fuzz {

// Called, when set, by a failing FUZZ_CHECK before it aborts: a stateful
// target saves what it takes to replay the failure (api_world.h).
inline void (*on_check_failure)() = nullptr;

}  // namespace coffer::fuzz

// FUZZ_CHECK(cond, "what") — a broken property is a finding, like a crash.
#define FUZZ_CHECK(cond, what)                                                                \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: %s\n", __FILE__, __LINE__, #cond, \
                   what);                                                                     \
      if (::coffer::fuzz::on_check_failure != nullptr) ::coffer::fuzz::on_check_failure();    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace coffer::fuzz {

inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// The input cut at each '\n' (at most `max_parts` parts; the last one keeps
// the rest, newlines included).
inline std::vector<absl::string_view> SplitLines(absl::string_view text, size_t max_parts) {
  std::vector<absl::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    size_t nl = text.find('\n');
    if (nl == absl::string_view::npos) break;
    parts.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  parts.push_back(text);
  return parts;
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
inline bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80             ? 1
                 : (c & 0xe0) == 0xc0 ? 2
                 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4
                                      : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

// Every error of the APIs' rule functions carries a Coffer reason (the AWS
// exception name clients branch on).
inline void CheckHasReason(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  FUZZ_CHECK(!coffer::ErrorReason(status).empty(), what);
}

}  // namespace coffer::fuzz
