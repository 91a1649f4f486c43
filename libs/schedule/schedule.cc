#include "libs/schedule/schedule.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"

namespace coffer::schedule {
namespace {

constexpr char kDaysField[] = "rotation_rules.automatically_after_days";
constexpr char kExpressionField[] = "rotation_rules.schedule_expression";
constexpr char kDurationField[] = "rotation_rules.duration";

constexpr int kMinYear = 1970;
constexpr int kEndYear = 2200;  // first year no cron expression can match
constexpr int kMaxDays = 1000;
constexpr int kMaxRateHours = kMaxDays * 24;
constexpr int kMinGapMinutes = 4 * 60;
constexpr int kMinutesPerDay = 24 * 60;

absl::Status ExpressionError(absl::string_view problem) {
  return InvalidField(kExpressionField, problem, reason::kInvalidParameter);
}

absl::Status DurationError(absl::string_view problem) {
  return InvalidField(kDurationField, problem, reason::kInvalidParameter);
}

// A decimal number of at most `max_digits` digits, nothing else.
std::optional<int64_t> ParseDecimal(absl::string_view text, size_t max_digits = 9) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// How one cron field is written and what it may hold.
struct FieldSpec {
  const char* name;
  int min;
  int max;
  std::vector<const char*> names;  // names[i] stands for min + i
  bool question_allowed;
};

const FieldSpec kMinuteSpec{"minutes", 0, 59, {}, false};
const FieldSpec kHourSpec{"hours", 0, 23, {}, false};
const FieldSpec kDayOfMonthSpec{"day-of-month", 1, 31, {}, true};
const FieldSpec kMonthSpec{
    "month",
    1,
    12,
    {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"},
    false};
const FieldSpec kDayOfWeekSpec{
    "day-of-week", 1, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, true};
const FieldSpec kYearSpec{"year", kMinYear, kEndYear - 1, {}, false};

struct ParsedField {
  std::vector<bool> allowed;  // index = value
  bool any = false;           // '*' or '?'
  bool question = false;
};

absl::Status FieldError(const FieldSpec& spec, absl::string_view text, absl::string_view problem) {
  return ExpressionError(absl::StrCat("cron ", spec.name, " field '", text, "': ", problem));
}

absl::StatusOr<int> ParseFieldValue(const FieldSpec& spec, absl::string_view field,
                                    absl::string_view token) {
  std::optional<int64_t> number = ParseDecimal(token, 4);
  if (!number.has_value()) {
    for (size_t i = 0; i < spec.names.size(); ++i) {
      if (absl::EqualsIgnoreCase(token, spec.names[i])) return spec.min + static_cast<int>(i);
    }
    // "L", "LW", "5L", "15W": the Quartz extensions AWS has and Coffer does not.
    absl::string_view rest = token;
    while (!rest.empty() && (rest.back() == 'L' || rest.back() == 'W')) rest.remove_suffix(1);
    if (rest.size() < token.size() && (rest.empty() || ParseDecimal(rest, 4).has_value())) {
      return FieldError(spec, field, "L, W and # are not supported");
    }
    return FieldError(spec, field, absl::StrCat("'", token, "' is not a valid value"));
  }
  if (*number < spec.min || *number > spec.max) {
    return FieldError(spec, field,
                      absl::StrCat(*number, " is out of range ", spec.min, "-", spec.max));
  }
  return static_cast<int>(*number);
}

// One field: `*`, `?`, or a comma list of `v`, `a-b`, `*/n`, `v/n`, `a-b/n`.
absl::StatusOr<ParsedField> ParseField(const FieldSpec& spec, absl::string_view text) {
  ParsedField out;
  out.allowed.assign(spec.max + 1, false);
  if (text == "?") {
    if (!spec.question_allowed) {
      return FieldError(spec, text, "'?' is only allowed in day-of-month and day-of-week");
    }
    std::fill(out.allowed.begin() + spec.min, out.allowed.end(), true);
    out.any = out.question = true;
    return out;
  }
  if (absl::StrContains(text, '#')) return FieldError(spec, text, "L, W and # are not supported");
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    if (item.empty()) return FieldError(spec, text, "empty list item");
    std::vector<absl::string_view> parts = absl::StrSplit(item, '/');
    if (parts.size() > 2) return FieldError(spec, text, absl::StrCat("bad step in '", item, "'"));
    int step = 1;
    if (parts.size() == 2) {
      std::optional<int64_t> n = ParseDecimal(parts[1], 4);
      if (!n.has_value() || *n < 1 || *n > spec.max) {
        return FieldError(spec, text, absl::StrCat("step '", parts[1], "' must be 1-", spec.max));
      }
      step = static_cast<int>(*n);
    }
    absl::string_view base = parts[0];
    int first = 0;
    int last = 0;
    if (base == "*") {
      first = spec.min;
      last = spec.max;
    } else if (base == "?") {
      return FieldError(spec, text, "'?' must stand alone");
    } else {
      std::vector<absl::string_view> range = absl::StrSplit(base, '-');
      if (range.size() > 2) {
        return FieldError(spec, text, absl::StrCat("bad range '", base, "'"));
      }
      COFFER_ASSIGN_OR_RETURN(first, ParseFieldValue(spec, text, range[0]));
      if (range.size() == 2) {
        COFFER_ASSIGN_OR_RETURN(last, ParseFieldValue(spec, text, range[1]));
        if (first > last) {
          return FieldError(spec, text, absl::StrCat("range '", base, "' runs backwards"));
        }
      } else {
        last = parts.size() == 2 ? spec.max : first;  // "a/n" runs to the end
      }
    }
    for (int v = first; v <= last; v += step) out.allowed[v] = true;
  }
  out.any =
      std::all_of(out.allowed.begin() + spec.min, out.allowed.end(), [](bool b) { return b; });
  return out;
}

// AWS numbering: 1 = SUN ... 7 = SAT.
int AwsWeekday(const absl::CivilDay& d) {
  switch (absl::GetWeekday(d)) {
    case absl::Weekday::sunday:
      return 1;
    case absl::Weekday::monday:
      return 2;
    case absl::Weekday::tuesday:
      return 3;
    case absl::Weekday::wednesday:
      return 4;
    case absl::Weekday::thursday:
      return 5;
    case absl::Weekday::friday:
      return 6;
    case absl::Weekday::saturday:
      return 7;
  }
  return 1;
}

std::string ClockText(int minute_of_day) {
  return absl::StrCat(absl::Dec(minute_of_day / 60, absl::kZeroPad2), ":",
                      absl::Dec(minute_of_day % 60, absl::kZeroPad2));
}

absl::Time FarFuture() {
  static const absl::Time t = absl::FromCivil(absl::CivilDay(kEndYear, 1, 1), absl::UTCTimeZone());
  return t;
}

absl::Time EpochStart() {
  static const absl::Time t = absl::FromCivil(absl::CivilDay(kMinYear, 1, 1), absl::UTCTimeZone());
  return t;
}

}  // namespace

absl::StatusOr<RotationSchedule> RotationSchedule::Parse(int64_t automatically_after_days,
                                                         absl::string_view schedule_expression,
                                                         absl::string_view duration) {
  // The duration first: its syntax does not depend on the schedule.
  std::optional<int64_t> window_hours;
  if (!duration.empty()) {
    if (duration.size() < 2 || duration.back() != 'h' ||
        !ParseDecimal(duration.substr(0, duration.size() - 1), 3).has_value()) {
      return DurationError(
          absl::StrCat("'", duration, "' is not a number of hours such as \"3h\""));
    }
    window_hours = ParseDecimal(duration.substr(0, duration.size() - 1), 3);
    if (*window_hours < 1 || *window_hours > 24) return DurationError("must be 1-24 hours");
  }

  RotationSchedule s;
  const absl::string_view expr = absl::StripAsciiWhitespace(schedule_expression);
  if (automatically_after_days != 0 && !expr.empty()) {
    return InvalidField(kDaysField, "cannot be combined with schedule_expression",
                        reason::kInvalidParameter);
  }
  if (automatically_after_days == 0 && expr.empty()) {
    return ExpressionError("one of automatically_after_days and schedule_expression is required");
  }

  if (automatically_after_days != 0) {
    if (automatically_after_days < 1 || automatically_after_days > kMaxDays) {
      return InvalidField(kDaysField, "must be 1-1000", reason::kInvalidParameter);
    }
    s.kind_ = Kind::kDays;
    s.every_ = automatically_after_days;
  } else if (absl::StartsWith(expr, "rate(") && absl::EndsWith(expr, ")")) {
    const absl::string_view inner = expr.substr(5, expr.size() - 6);
    std::vector<absl::string_view> words =
        absl::StrSplit(inner, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.size() != 2) return ExpressionError("rate() must be 'rate(<value> <unit>)'");
    std::optional<int64_t> n = ParseDecimal(words[0]);
    if (!n.has_value() || *n < 1) {
      return ExpressionError(
          absl::StrCat("rate value '", words[0], "' must be a positive integer"));
    }
    const absl::string_view unit = words[1];
    const bool hours = unit == "hour" || unit == "hours";
    const bool days = unit == "day" || unit == "days";
    if (!hours && !days) {
      return ExpressionError(absl::StrCat("rate unit '", unit, "' must be hours or days"));
    }
    if ((*n == 1) != (unit == "hour" || unit == "day")) {
      return ExpressionError("the rate unit must be singular for 1 and plural otherwise");
    }
    if (hours) {
      if (*n < 4) return ExpressionError("rotations must be at least 4 hours apart");
      if (*n > kMaxRateHours) return ExpressionError("rate() in hours must be at most 24000 hours");
      s.kind_ = Kind::kRateHours;
      s.every_ = *n;
      s.expression_ = absl::StrCat("rate(", *n, " hours)");
    } else {
      if (*n > kMaxDays) return ExpressionError("rate() in days must be 1-1000 days");
      s.kind_ = Kind::kRateDays;
      s.every_ = *n;
      s.expression_ = *n == 1 ? "rate(1 day)" : absl::StrCat("rate(", *n, " days)");
    }
  } else if (absl::StartsWith(expr, "cron(") && absl::EndsWith(expr, ")")) {
    const absl::string_view inner = expr.substr(5, expr.size() - 6);
    std::vector<std::string> fields =
        absl::StrSplit(inner, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 6) {
      return ExpressionError(absl::StrCat(
          "cron() needs 6 fields (minutes hours day-of-month month day-of-week year), got ",
          fields.size()));
    }
    for (std::string& f : fields) absl::AsciiStrToUpper(&f);
    const FieldSpec* specs[] = {&kMinuteSpec, &kHourSpec,      &kDayOfMonthSpec,
                                &kMonthSpec,  &kDayOfWeekSpec, &kYearSpec};
    CronField* targets[] = {&s.minute_, &s.hour_,        &s.day_of_month_,
                            &s.month_,  &s.day_of_week_, &s.year_};
    bool question[6] = {};
    for (int i = 0; i < 6; ++i) {
      COFFER_ASSIGN_OR_RETURN(ParsedField parsed, ParseField(*specs[i], fields[i]));
      targets[i]->allowed = std::move(parsed.allowed);
      targets[i]->any = parsed.any;
      question[i] = parsed.question;
    }
    if (question[2] == question[4]) {
      return ExpressionError(
          "cron() needs '?' in exactly one of day-of-month and day-of-week (they cannot both be "
          "specified)");
    }
    s.kind_ = Kind::kCron;
    s.expression_ = absl::StrCat("cron(", absl::StrJoin(fields, " "), ")");
    for (int h = 0; h < 24; ++h) {
      if (!s.hour_.allowed[h]) continue;
      for (int m = 0; m < 60; ++m) {
        if (s.minute_.allowed[m]) s.times_.push_back(h * 60 + m);
      }
    }
    // Consecutive rotations at least 4 hours apart: within a day that depends
    // on the times alone; across midnight only when two consecutive days match.
    for (size_t i = 1; i < s.times_.size(); ++i) {
      if (s.times_[i] - s.times_[i - 1] < kMinGapMinutes) {
        return ExpressionError(absl::StrCat(
            "rotations must be at least 4 hours apart; ", s.expression_, " rotates at ",
            ClockText(s.times_[i - 1]), " and ", ClockText(s.times_[i])));
      }
    }
    const int overnight = kMinutesPerDay - (s.times_.back() - s.times_.front());
    if (overnight < kMinGapMinutes) {
      for (std::optional<absl::CivilDay> d = s.NextCronDay(absl::CivilDay(kMinYear, 1, 1));
           d.has_value();) {
        std::optional<absl::CivilDay> next = s.NextCronDay(*d + 1);
        if (next.has_value() && *next == *d + 1) {
          return ExpressionError(absl::StrCat("rotations must be at least 4 hours apart; ",
                                              s.expression_, " rotates at ",
                                              ClockText(s.times_.back()), " and at ",
                                              ClockText(s.times_.front()), " the next day"));
        }
        d = next;
      }
    }
  } else {
    return ExpressionError(
        absl::StrCat("'", expr, "' is not a rate(N hours|days) or cron(...) expression"));
  }

  // The window.
  switch (s.kind_) {
    case Kind::kRateHours:
      if (window_hours.has_value() && *window_hours > s.every_) {
        return DurationError(absl::StrCat(
            "must not be longer than the interval between rotations (", s.every_, " hours)"));
      }
      s.window_ = absl::Hours(window_hours.value_or(1));
      break;
    case Kind::kDays:
    case Kind::kRateDays:
      // Windows open at 00:00 UTC, so any 1-24h window stays inside the day.
      s.window_ = absl::Hours(window_hours.value_or(24));
      s.ends_by_midnight_ = true;
      break;
    case Kind::kCron: {
      const bool hourly = s.times_.size() > 1;
      if (window_hours.has_value()) {
        const int minutes = static_cast<int>(*window_hours) * 60;
        for (size_t i = 1; i < s.times_.size(); ++i) {
          if (s.times_[i] - s.times_[i - 1] < minutes) {
            return DurationError(
                absl::StrCat("must not be longer than the interval between rotations (",
                             ClockText(s.times_[i - 1]), " to ", ClockText(s.times_[i]), ")"));
          }
        }
        if (s.times_.back() + minutes > kMinutesPerDay) {
          return DurationError(absl::StrCat("a window opening at ", ClockText(s.times_.back()),
                                            " would run into the next UTC day"));
        }
      }
      s.window_ = absl::Hours(window_hours.value_or(hourly ? 1 : 24));
      s.ends_by_midnight_ = true;
      break;
    }
  }
  return s;
}

bool RotationSchedule::CronDayMatches(const absl::CivilDay& d) const {
  // One of the two day fields is '?' (all allowed), so both must hold.
  return year_.allowed[d.year()] && month_.allowed[d.month()] && day_of_month_.allowed[d.day()] &&
         day_of_week_.allowed[AwsWeekday(d)];
}

bool RotationSchedule::CronMatches(const absl::CivilMinute& m) const {
  if (m.year() < kMinYear || m.year() >= kEndYear) return false;
  return CronDayMatches(absl::CivilDay(m)) && hour_.allowed[m.hour()] &&
         minute_.allowed[m.minute()];
}

std::optional<absl::CivilDay> RotationSchedule::NextCronDay(absl::CivilDay from) const {
  absl::CivilDay d = std::max(from, absl::CivilDay(kMinYear, 1, 1));
  // Skip whole years and months that cannot match, then day by day.
  while (d.year() < kEndYear) {
    if (!year_.allowed[d.year()]) {
      d = absl::CivilDay(absl::CivilYear(d) + 1);
    } else if (!month_.allowed[d.month()]) {
      d = absl::CivilDay(absl::CivilMonth(d) + 1);
    } else if (!day_of_month_.allowed[d.day()] || !day_of_week_.allowed[AwsWeekday(d)]) {
      ++d;
    } else {
      return d;
    }
  }
  return std::nullopt;
}

absl::Time RotationSchedule::NextWindowStart(absl::Time after) const {
  const absl::TimeZone utc = absl::UTCTimeZone();
  if (after == absl::InfiniteFuture() || after == absl::InfinitePast()) return after;
  switch (kind_) {
    case Kind::kRateHours:
      return after + absl::Hours(every_);
    case Kind::kDays:
    case Kind::kRateDays:
      return absl::FromCivil(absl::ToCivilDay(after, utc) + every_, utc);
    case Kind::kCron:
      break;
  }
  if (after >= FarFuture()) return absl::InfiniteFuture();
  // The first whole minute strictly after `after`.
  absl::CivilMinute m = after < EpochStart() ? absl::CivilMinute(kMinYear, 1, 1)
                                             : absl::ToCivilMinute(after, utc) + 1;
  while (true) {
    std::optional<absl::CivilDay> day = NextCronDay(absl::CivilDay(m));
    if (!day.has_value()) return absl::InfiniteFuture();
    const int from = *day == absl::CivilDay(m) ? m.hour() * 60 + m.minute() : 0;
    auto it = std::lower_bound(times_.begin(), times_.end(), from);
    if (it != times_.end()) return absl::FromCivil(absl::CivilMinute(*day) + *it, utc);
    m = absl::CivilMinute(*day + 1);
  }
}

absl::Time RotationSchedule::StartInWindow(absl::Time window_start, double fraction) const {
  if (window_start == absl::InfiniteFuture() || window_start == absl::InfinitePast()) {
    return window_start;
  }
  if (!(fraction > 0)) fraction = 0;  // also NaN
  if (fraction > 1) fraction = 1;
  absl::Duration length = window_;
  if (ends_by_midnight_) {
    const absl::TimeZone utc = absl::UTCTimeZone();
    const absl::Time midnight = absl::FromCivil(absl::ToCivilDay(window_start, utc) + 1, utc);
    length = std::min(length, midnight - window_start);
  }
  absl::Duration offset = absl::Trunc(length * fraction, absl::Seconds(1));
  if (offset >= length) offset = absl::Trunc(length - absl::Nanoseconds(1), absl::Seconds(1));
  if (offset < absl::ZeroDuration()) offset = absl::ZeroDuration();
  return window_start + offset;
}

}  // namespace coffer::schedule
