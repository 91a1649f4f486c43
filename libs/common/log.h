// log.h: structured logging, one JSON object per line on stderr.
//
//   coffer::log::Info("kms", "keystore loaded", {{"keys", "12"}});
//   coffer::log::Warn("kms", "sweeper failed", {{"error", status.ToString()}});
//
// Every line has "time" (RFC 3339, UTC), "level", "component" and "message",
// then the given fields in order. Callers pass ids, counts and error texts;
// never a secret value, data key or plaintext.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace coffer::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using Field = std::pair<absl::string_view, std::string>;

// Lines below `level` are dropped. Default kInfo.
void SetLevel(Level level);
// "debug" | "info" | "warn" | "error"; false if unknown.
bool ParseLevel(absl::string_view text, Level* level);

void Write(Level level, absl::string_view component, absl::string_view message,
           std::initializer_list<Field> fields = {});

inline void Debug(absl::string_view c, absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, c, m, f);
}
inline void Info(absl::string_view c, absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, c, m, f);
}
inline void Warn(absl::string_view c, absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, c, m, f);
}
inline void Error(absl::string_view c, absl::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, c, m, f);
}

// Formats one line (without the newline) exactly as Write would print it.
std::string FormatLine(absl::Time time, Level level, absl::string_view component,
                       absl::string_view message, std::initializer_list<Field> fields);

}  // namespace coffer::log
