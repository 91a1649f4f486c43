#include "libs/common/log.h"

#include <atomic>
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/common/json.h"

namespace coffer::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
absl::Mutex g_write_mu;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}
}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }

bool ParseLevel(absl::string_view text, Level* level) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

std::string FormatLine(absl::Time time, Level level, absl::string_view component,
                       absl::string_view message, std::initializer_list<Field> fields) {
  std::string line = "{\"time\":";
  line += JsonQuote(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone()));
  line += ",\"level\":\"";
  line += LevelName(level);
  line += "\",\"component\":";
  line += JsonQuote(component);
  line += ",\"message\":";
  line += JsonQuote(message);
  for (const auto& [key, value] : fields) {
    line += ',';
    line += JsonQuote(key);
    line += ':';
    line += JsonQuote(value);
  }
  line += '}';
  return line;
}

void Write(Level level, absl::string_view component, absl::string_view message,
           std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string line = FormatLine(absl::Now(), level, component, message, fields);
  line += '\n';
  absl::MutexLock lock(&g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace coffer::log
