// schedule.h: rotation schedules (rotation.md) — rate() and cron()
// expressions in UTC, the rotation window, and where inside the window a
// rotation starts.
//
//   COFFER_ASSIGN_OR_RETURN(RotationSchedule s,
//       RotationSchedule::Parse(/*automatically_after_days=*/0,
//                               "cron(0 16 1,15 * ? *)", /*duration=*/"3h"));
//   absl::Time window = s.NextWindowStart(last_rotated);   // first window start after it
//   absl::Time at = s.StartInWindow(window, rng_fraction);  // random moment in the window
//
// Rules (AWS Secrets Manager):
//  - exactly one of automatically_after_days (1-1000) and schedule_expression;
//  - rate(N hours) with N 4-24000, rate(N days) with N 1-1000 (singular unit
//    for N = 1: "rate(1 day)");
//  - cron(minutes hours day-of-month month day-of-week year), UTC, with `*`,
//    `?` (in exactly one of day-of-month and day-of-week), lists `a,b`,
//    ranges `a-b`, steps `*/n` and `a-b/n`, month names JAN-DEC and weekday
//    names SUN-SAT (1 = SUN ... 7 = SAT as in AWS), years 1970-2199; `L`,
//    `W` and `#` are not supported (refused with a message saying so);
//  - consecutive rotations at least 4 hours apart;
//  - duration "Nh", 1-24 hours, and not longer than the interval; default: 1
//    hour for hourly rates and for cron expressions that fire more than once
//    a day, the rest of the UTC day otherwise (a window never runs into the
//    next UTC day for day-based schedules and cron).
// Invalid input is InvalidParameterException (INVALID_ARGUMENT) naming the
// field: "rotation_rules.automatically_after_days",
// "rotation_rules.schedule_expression" or "rotation_rules.duration".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace coffer::schedule {

class RotationSchedule {
 public:
  static absl::StatusOr<RotationSchedule> Parse(int64_t automatically_after_days,
                                                absl::string_view schedule_expression,
                                                absl::string_view duration);

  // The start of the first rotation window strictly after `after`. For
  // automatically_after_days and rate(): `after` + interval (days-based
  // schedules start their window at 00:00 UTC of that day). For cron: the
  // next matching minute, or absl::InfiniteFuture() when none comes before
  // the year 2200.
  absl::Time NextWindowStart(absl::Time after) const;
  // window_start + fraction * window length, fraction in [0, 1) (clamped),
  // truncated to whole seconds. For day-based schedules and cron the window
  // ends at the next UTC midnight at the latest.
  absl::Time StartInWindow(absl::Time window_start, double fraction) const;
  // The longest window (the duration, or its default: 1h for hourly rates and
  // for cron expressions that fire more than once a day, 24h otherwise — cut
  // at the next UTC midnight by StartInWindow).
  absl::Duration window() const { return window_; }
  // The expression in canonical form (for DescribeSecret): "rate(4 hours)",
  // "rate(1 day)", "cron(0 16 1,15 * ? *)" with names upper-cased and single
  // spaces; "" for automatically_after_days (there is no expression).
  const std::string& expression() const { return expression_; }

 private:
  enum class Kind { kDays, kRateHours, kRateDays, kCron };
  struct CronField {
    std::vector<bool> allowed;  // index = value
    bool any = false;           // '*' or '?'
  };
  RotationSchedule() = default;
  bool CronMatches(const absl::CivilMinute& m) const;
  bool CronDayMatches(const absl::CivilDay& d) const;
  // The first day >= `from` that matches the year, month, day-of-month and
  // day-of-week fields; nullopt when there is none before 2200.
  std::optional<absl::CivilDay> NextCronDay(absl::CivilDay from) const;

  Kind kind_ = Kind::kDays;
  int64_t every_ = 0;  // hours or days
  std::string expression_;
  absl::Duration window_;
  CronField minute_, hour_, day_of_month_, month_, day_of_week_, year_;
  // Cron: the matching minutes of the day (hour * 60 + minute), ascending.
  std::vector<int> times_;
  // Day-based schedules and cron: windows never run past the next UTC midnight.
  bool ends_by_midnight_ = false;
};

}  // namespace coffer::schedule
