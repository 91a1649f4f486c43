#include "libs/schedule/schedule.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer::schedule {
namespace {

using ::testing::HasSubstr;

constexpr char kDays[] = "rotation_rules.automatically_after_days";
constexpr char kExpr[] = "rotation_rules.schedule_expression";
constexpr char kDuration[] = "rotation_rules.duration";

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

absl::CivilDay UtcDay(absl::Time t) { return absl::ToCivilDay(t, absl::UTCTimeZone()); }

struct ParseCase {
  int64_t days;
  const char* expression;
  const char* duration;
  const char* error_field;   // nullptr: valid
  const char* message = "";  // a substring of the error message
};

TEST(RotationScheduleTest, ParsesAndValidatesRules) {
  const std::vector<ParseCase> cases = {
      // automatically_after_days, and exactly one of it and the expression.
      {1, "", "", nullptr},
      {1000, "", "", nullptr},
      {7, "", "24h", nullptr},
      {1001, "", "", kDays, "1-1000"},
      {-1, "", "", kDays, "1-1000"},
      {0, "", "", kExpr, "one of automatically_after_days and schedule_expression"},
      {0, "   ", "", kExpr, "is required"},
      {7, "rate(7 days)", "", kDays, "cannot be combined"},
      // rate().
      {0, "rate(4 hours)", "", nullptr},
      {0, "rate(23 hours)", "", nullptr},
      {0, "rate(3 hours)", "", kExpr, "at least 4 hours"},
      {0, "rate(1 hour)", "", kExpr, "at least 4 hours"},
      {0, "rate(4 hour)", "", kExpr, "singular for 1 and plural otherwise"},
      {0, "rate(1 day)", "", nullptr},
      {0, "rate(1 days)", "", kExpr, "singular for 1"},
      {0, "rate(10 day)", "", kExpr, "singular for 1"},
      {0, "rate(10 days)", "", nullptr},
      {0, "rate(1000 days)", "", nullptr},
      {0, "rate(0 days)", "", kExpr, "positive integer"},
      {0, "rate(1001 days)", "", kExpr, "1-1000 days"},
      {0, "rate(-4 hours)", "", kExpr, "positive integer"},
      {0, "rate(4.5 hours)", "", kExpr, "positive integer"},
      {0, "rate(30 minutes)", "", kExpr, "hours or days"},
      {0, "rate(4hours)", "", kExpr, "rate(<value> <unit>)"},
      {0, "rate(4 hours", "", kExpr, "is not a rate"},
      {0, "every 4 hours", "", kExpr, "is not a rate"},
      // cron(): lists, ranges, steps, names.
      {0, "cron(0 16 1,15 * ? *)", "", nullptr},
      {0, "cron(0 0 ? * MON-FRI *)", "", nullptr},
      {0, "cron(30 8 ? * sun,sat *)", "", nullptr},
      {0, "cron(0 12 1 JAN-MAR,jul,10-12 ? 2025-2030)", "", nullptr},
      {0, "cron(0 8 1/7 * ? *)", "", nullptr},
      {0, "cron(0 4/12 * * ? *)", "", nullptr},
      {0, "cron(0 */4 * * ? *)", "", nullptr},
      {0, "cron(0 0-20/5 * * ? *)", "", nullptr},
      {0, "cron(0 2 * */2 ? */3)", "", nullptr},
      {0, "cron(0 0 31 2 ? *)", "", nullptr},  // valid, never fires
      {0, "cron(0 1,23 1 * ? *)", "", nullptr},
      {0, "cron(0 1,23 ? * MON,WED,FRI *)", "", nullptr},
      {0, "cron(0  16\t1,15 * ? * )", "", nullptr},
      // cron(): the 4-hour minimum, within a day and across midnight.
      {0, "cron(0 * * * ? *)", "", kExpr, "at least 4 hours apart"},
      {0, "cron(0 */3 * * ? *)", "", kExpr, "rotates at 00:00 and 03:00"},
      {0, "cron(0,30 12 * * ? *)", "", kExpr, "at least 4 hours apart"},
      {0, "cron(* 12 1 * ? *)", "", kExpr, "at least 4 hours apart"},
      {0, "cron(0 1,23 * * ? *)", "", kExpr, "the next day"},
      {0, "cron(0 1,23 1,31 * ? *)", "", kExpr, "the next day"},  // Jan 31 -> Feb 1
      {0, "cron(0 1,23 ? * FRI-SAT *)", "", kExpr, "the next day"},
      // cron(): day-of-month and day-of-week.
      {0, "cron(0 12 * * * *)", "", kExpr, "exactly one of day-of-month and day-of-week"},
      {0, "cron(0 12 1 * MON *)", "", kExpr, "exactly one"},
      {0, "cron(0 12 ? * ? *)", "", kExpr, "exactly one"},
      {0, "cron(0 ? 1 * ? *)", "", kExpr, "only allowed in day-of-month and day-of-week"},
      // cron(): out of range, malformed.
      {0, "cron(60 12 1 * ? *)", "", kExpr, "minutes field '60': 60 is out of range 0-59"},
      {0, "cron(0 24 1 * ? *)", "", kExpr, "out of range 0-23"},
      {0, "cron(0 12 0 * ? *)", "", kExpr, "out of range 1-31"},
      {0, "cron(0 12 32 * ? *)", "", kExpr, "out of range 1-31"},
      {0, "cron(0 12 1 13 ? *)", "", kExpr, "out of range 1-12"},
      {0, "cron(0 12 ? * 0 *)", "", kExpr, "out of range 1-7"},
      {0, "cron(0 12 ? * 8 *)", "", kExpr, "out of range 1-7"},
      {0, "cron(0 12 1 * ? 1969)", "", kExpr, "out of range 1970-2199"},
      {0, "cron(0 12 1 * ? 2200)", "", kExpr, "out of range 1970-2199"},
      {0, "cron(0 12 1 FOO ? *)", "", kExpr, "'FOO' is not a valid value"},
      {0, "cron(0 12 ? * MONDAY *)", "", kExpr, "not a valid value"},
      {0, "cron(0 12 20-10 * ? *)", "", kExpr, "runs backwards"},
      {0, "cron(0 */0 1 * ? *)", "", kExpr, "step '0'"},
      {0, "cron(0 12 1,,2 * ? *)", "", kExpr, "empty list item"},
      {0, "cron(0 12 1-2-3 * ? *)", "", kExpr, "bad range"},
      {0, "cron(0 12 -1 * ? *)", "", kExpr, "not a valid value"},
      {0, "cron(0 12 1 * ?)", "", kExpr, "needs 6 fields"},
      {0, "cron(0 12 1 * ? * *)", "", kExpr, "got 7"},
      {0, "cron()", "", kExpr, "got 0"},
      // cron(): the Quartz extensions are refused by name.
      {0, "cron(0 12 L * ? *)", "", kExpr, "L, W and # are not supported"},
      {0, "cron(0 12 15W * ? *)", "", kExpr, "L, W and # are not supported"},
      {0, "cron(0 12 LW * ? *)", "", kExpr, "L, W and # are not supported"},
      {0, "cron(0 12 ? * 6L *)", "", kExpr, "L, W and # are not supported"},
      {0, "cron(0 12 ? * MON#1 *)", "", kExpr, "L, W and # are not supported"},
      // duration.
      {0, "rate(1 day)", "3h", nullptr},
      {0, "rate(1 day)", "1h", nullptr},
      {0, "rate(1 day)", "24h", nullptr},
      {0, "rate(1 day)", "0h", kDuration, "1-24 hours"},
      {0, "rate(1 day)", "25h", kDuration, "1-24 hours"},
      {0, "rate(1 day)", "3", kDuration, "such as \"3h\""},
      {0, "rate(1 day)", "3m", kDuration, "such as \"3h\""},
      {0, "rate(1 day)", "h", kDuration, "such as \"3h\""},
      {0, "rate(1 day)", "-3h", kDuration, "such as \"3h\""},
      {0, "rate(1 day)", " 3h", kDuration, "such as \"3h\""},
      {0, "rate(4 hours)", "4h", nullptr},
      {0, "rate(4 hours)", "5h", kDuration, "longer than the interval between rotations (4 hours)"},
      {0, "cron(0 0,12 * * ? *)", "12h", nullptr},
      {0, "cron(0 0,12 * * ? *)", "13h", kDuration, "longer than the interval"},
      {0, "cron(0 22 * * ? *)", "2h", nullptr},
      {0, "cron(0 22 * * ? *)", "3h", kDuration,
       "opening at 22:00 would run into the next UTC day"},
      {0, "cron(30 20 1 * ? *)", "4h", kDuration, "opening at 20:30"},
      {0, "cron(0 0 1 * ? *)", "24h", nullptr},
      // A duration is checked even when the schedule is wrong in another way.
      {0, "", "99h", kDuration, "1-24 hours"},
  };
  for (const ParseCase& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << c.days << " '" << c.expression << "' '" << c.duration << "'");
    absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(c.days, c.expression, c.duration);
    if (c.error_field == nullptr) {
      EXPECT_TRUE(s.ok()) << s.status();
      continue;
    }
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(s.status()), reason::kInvalidParameter);
    std::optional<ErrorDetail> detail = GetErrorDetail(s.status());
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->field, c.error_field);
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(c.message));
  }
}

TEST(RotationScheduleTest, CanonicalExpressionAndDefaultWindow) {
  struct Case {
    int64_t days;
    const char* expression;
    const char* duration;
    const char* canonical;
    absl::Duration window;
  };
  const std::vector<Case> cases = {
      {30, "", "", "", absl::Hours(24)},
      {30, "", "2h", "", absl::Hours(2)},
      {0, "  rate( 04   hours ) ", "", "rate(4 hours)", absl::Hours(1)},
      {0, "rate(6 hours)", "6h", "rate(6 hours)", absl::Hours(6)},
      {0, "rate(1 day)", "", "rate(1 day)", absl::Hours(24)},
      {0, "rate(12 days)", "3h", "rate(12 days)", absl::Hours(24) / 8},
      {0, "cron(0  16 1,15 jan,Feb ? *)", "", "cron(0 16 1,15 JAN,FEB ? *)", absl::Hours(24)},
      {0, "cron(0 16 ? * mon-fri *)", "3h", "cron(0 16 ? * MON-FRI *)", absl::Hours(3)},
      // More than once a day is a schedule "in hours": one-hour default window.
      {0, "cron(0 4/12 * * ? *)", "", "cron(0 4/12 * * ? *)", absl::Hours(1)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expression);
    absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(c.days, c.expression, c.duration);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->expression(), c.canonical);
    EXPECT_EQ(s->window(), c.window);
    // The canonical form parses to the same schedule.
    if (!s->expression().empty()) {
      absl::StatusOr<RotationSchedule> again = RotationSchedule::Parse(0, s->expression(), "");
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_EQ(again->expression(), s->expression());
    }
  }
}

struct NextCase {
  int64_t days;
  const char* expression;
  absl::Time after;
  absl::Time want;
};

TEST(RotationScheduleTest, NextWindowStart) {
  const absl::Time never = absl::InfiniteFuture();
  const std::vector<NextCase> cases = {
      // rate(N hours): exactly N hours later.
      {0, "rate(4 hours)", Utc(2024, 1, 1, 10, 17, 30), Utc(2024, 1, 1, 14, 17, 30)},
      {0, "rate(6 hours)", Utc(2024, 12, 31, 20), Utc(2025, 1, 1, 2)},
      // Days: the window opens at 00:00 UTC, N days after the day of `after`.
      {0, "rate(1 day)", Utc(2024, 3, 5, 15, 20), Utc(2024, 3, 6)},
      {0, "rate(1 day)", Utc(2024, 3, 5), Utc(2024, 3, 6)},
      {0, "rate(10 days)", Utc(2024, 2, 25, 0, 0, 1), Utc(2024, 3, 6)},  // leap February
      {0, "rate(10 days)", Utc(2023, 2, 25), Utc(2023, 3, 7)},
      {30, "", Utc(2023, 12, 15, 23, 59, 59), Utc(2024, 1, 14)},
      {1000, "", Utc(2024, 1, 1, 12), Utc(2026, 9, 27)},
      // Cron: the next matching minute strictly after `after`.
      {0, "cron(0 16 1,15 * ? *)", Utc(2024, 1, 1, 15, 59), Utc(2024, 1, 1, 16)},
      {0, "cron(0 16 1,15 * ? *)", Utc(2024, 1, 1, 15, 59, 59), Utc(2024, 1, 1, 16)},
      {0, "cron(0 16 1,15 * ? *)", Utc(2024, 1, 1, 16), Utc(2024, 1, 15, 16)},
      {0, "cron(0 16 1,15 * ? *)", Utc(2024, 12, 15, 16, 0, 1), Utc(2025, 1, 1, 16)},
      {0, "cron(45 7 * * ? *)", Utc(2024, 6, 30, 7, 45), Utc(2024, 7, 1, 7, 45)},
      {0, "cron(45 7 * * ? *)", Utc(2024, 6, 30, 7, 44, 59), Utc(2024, 6, 30, 7, 45)},
      {0, "cron(59 23 31 12 ? *)", Utc(2024, 12, 31, 23, 59), Utc(2025, 12, 31, 23, 59)},
      {0, "cron(0 0 1 * ? *)", Utc(2024, 12, 31, 23, 59, 59), Utc(2025, 1, 1)},
      {0, "cron(0 4/12 * * ? *)", Utc(2024, 1, 1, 4), Utc(2024, 1, 1, 16)},
      {0, "cron(0 4/12 * * ? *)", Utc(2024, 1, 1, 16, 30), Utc(2024, 1, 2, 4)},
      {0, "cron(0 12 */10 * ? *)", Utc(2024, 1, 31, 12), Utc(2024, 2, 1, 12)},
      // Day 31 skips the months that do not have one.
      {0, "cron(30 23 31 * ? *)", Utc(2024, 1, 31, 23, 30), Utc(2024, 3, 31, 23, 30)},
      {0, "cron(30 23 31 * ? *)", Utc(2024, 3, 31, 23, 30), Utc(2024, 5, 31, 23, 30)},
      {0, "cron(0 0 30 * ? *)", Utc(2023, 1, 30, 0, 1), Utc(2023, 3, 30)},
      // February 29 only in leap years.
      {0, "cron(0 12 29 2 ? *)", Utc(2023, 6, 1), Utc(2024, 2, 29, 12)},
      {0, "cron(0 12 29 2 ? *)", Utc(2024, 2, 29, 12), Utc(2028, 2, 29, 12)},
      {0, "cron(0 12 29 FEB ? *)", Utc(2096, 3, 1), Utc(2104, 2, 29, 12)},  // 2100 is not leap
      // Weekdays, by name and number (1 = SUN); 2024-01-01 is a Monday.
      {0, "cron(0 9 ? * MON *)", Utc(2023, 12, 31), Utc(2024, 1, 1, 9)},
      {0, "cron(0 9 ? * MON *)", Utc(2024, 1, 1, 9), Utc(2024, 1, 8, 9)},
      {0, "cron(0 8 ? * 1 *)", Utc(2024, 1, 1), Utc(2024, 1, 7, 8)},
      {0, "cron(0 8 ? * SUN *)", Utc(2024, 1, 1), Utc(2024, 1, 7, 8)},
      {0, "cron(0 8 ? * 7 *)", Utc(2024, 1, 1), Utc(2024, 1, 6, 8)},
      {0, "cron(0 6 ? * MON-FRI *)", Utc(2024, 1, 5, 6), Utc(2024, 1, 8, 6)},
      {0, "cron(0 6 ? JUN SAT *)", Utc(2024, 1, 1), Utc(2024, 6, 1, 6)},
      // Years.
      {0, "cron(0 0 1 JAN ? 2030)", Utc(2024, 6, 1), Utc(2030, 1, 1)},
      {0, "cron(0 0 1 JAN ? 2030)", Utc(2030, 1, 1), never},
      {0, "cron(0 0 1 1 ? 2199)", Utc(2100, 1, 1), Utc(2199, 1, 1)},
      {0, "cron(0 0 1 1 ? 2199)", Utc(2199, 1, 1), never},
      {0, "cron(0 0 * * ? *)", Utc(1900, 5, 5), Utc(1970, 1, 1)},
      {0, "cron(0 0 * * ? *)", Utc(2199, 12, 31, 12), never},
      {0, "cron(0 0 * * ? *)", Utc(2300, 1, 1), never},
      // Never.
      {0, "cron(0 0 31 2 ? *)", Utc(2024, 1, 1), never},
      {0, "cron(0 0 30 FEB ? *)", Utc(1970, 1, 1), never},
      {0, "cron(0 0 1 * ? *)", never, never},
      {0, "rate(4 hours)", never, never},
      {1, "", never, never},
  };
  for (const NextCase& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.days << " '" << c.expression << "' after "
                                      << absl::FormatTime(c.after, absl::UTCTimeZone()));
    absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(c.days, c.expression, "");
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(absl::FormatTime(s->NextWindowStart(c.after), absl::UTCTimeZone()),
              absl::FormatTime(c.want, absl::UTCTimeZone()));
  }
}

TEST(RotationScheduleTest, SuccessiveCronWindows) {
  absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(0, "cron(0 4/12 ? * MON,FRI *)", "");
  ASSERT_TRUE(s.ok()) << s.status();
  std::vector<absl::Time> got;
  absl::Time t = Utc(2024, 1, 1);  // Monday
  for (int i = 0; i < 6; ++i) got.push_back(t = s->NextWindowStart(t));
  EXPECT_EQ(
      got, (std::vector<absl::Time>{Utc(2024, 1, 1, 4), Utc(2024, 1, 1, 16), Utc(2024, 1, 5, 4),
                                    Utc(2024, 1, 5, 16), Utc(2024, 1, 8, 4), Utc(2024, 1, 8, 16)}));
}

TEST(RotationScheduleTest, NoMatchBefore2200IsInfiniteFutureAndQuick) {
  const absl::Time start = absl::Now();
  for (const char* expression :
       {"cron(0 0 31 2 ? *)", "cron(0 0 30,31 2 ? *)", "cron(0 0 31 4,6,9,11 ? *)"}) {
    absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(0, expression, "");
    ASSERT_TRUE(s.ok()) << s.status();
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(s->NextWindowStart(Utc(1970, 1, 1)), absl::InfiniteFuture()) << expression;
    }
  }
  // Parse walks the days when it must look for two consecutive matching days.
  ASSERT_TRUE(RotationSchedule::Parse(0, "cron(0 1,23 ? * MON,WED,FRI *)", "").ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(RotationScheduleTest, StartInWindowStaysInsideTheWindowAndTheUtcDay) {
  struct Case {
    int64_t days;
    const char* expression;
    const char* duration;
    absl::Time window_start;
    absl::Duration effective;  // the window length at that start
  };
  const std::vector<Case> cases = {
      {0, "rate(4 hours)", "", Utc(2024, 1, 1, 13, 17, 30), absl::Hours(1)},
      {0, "rate(8 hours)", "8h", Utc(2024, 1, 1, 20), absl::Hours(8)},  // hourly: not cut
      {0, "rate(1 day)", "", Utc(2024, 2, 29), absl::Hours(24)},
      {0, "rate(3 days)", "3h", Utc(2024, 2, 29), absl::Hours(3)},
      {7, "", "", Utc(2024, 12, 31), absl::Hours(24)},
      {0, "cron(0 16 1,15 * ? *)", "", Utc(2024, 1, 15, 16), absl::Hours(8)},
      {0, "cron(0 16 1,15 * ? *)", "3h", Utc(2024, 1, 15, 16), absl::Hours(3)},
      {0, "cron(30 23 31 * ? *)", "", Utc(2024, 12, 31, 23, 30), absl::Minutes(30)},
      {0, "cron(0 4/12 * * ? *)", "", Utc(2024, 1, 1, 16), absl::Hours(1)},
      {0, "cron(30 11/12 * * ? *)", "", Utc(2024, 1, 1, 23, 30), absl::Minutes(30)},
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expression);
    absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(c.days, c.expression, c.duration);
    ASSERT_TRUE(s.ok()) << s.status();
    const absl::Time end = c.window_start + c.effective;
    EXPECT_EQ(s->StartInWindow(c.window_start, 0), c.window_start);
    EXPECT_EQ(s->StartInWindow(c.window_start, 0.5), c.window_start + c.effective / 2);
    for (double f : {0.0, 0.25, 0.5, 0.999, 0.999999999, 1.0, 2.0, -1.0, nan}) {
      SCOPED_TRACE(f);
      const absl::Time at = s->StartInWindow(c.window_start, f);
      EXPECT_GE(at, c.window_start);
      EXPECT_LT(at, end);
      if (c.expression != std::string("rate(8 hours)")) {
        EXPECT_EQ(UtcDay(at), UtcDay(c.window_start));
      }
    }
    EXPECT_GT(s->StartInWindow(c.window_start, 0.999), end - c.effective / 100);
  }
}

TEST(RotationScheduleTest, StartInWindowAfterNextWindowStartForDays) {
  absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(0, "rate(2 days)", "");
  ASSERT_TRUE(s.ok()) << s.status();
  const absl::Time window = s->NextWindowStart(Utc(2024, 2, 28, 18));
  EXPECT_EQ(window, Utc(2024, 3, 1));
  EXPECT_EQ(UtcDay(s->StartInWindow(window, 0.999)), absl::CivilDay(2024, 3, 1));
  EXPECT_EQ(s->StartInWindow(absl::InfiniteFuture(), 0.5), absl::InfiniteFuture());
}

}  // namespace
}  // namespace coffer::schedule
