// schedule_fuzz: RotationSchedule::Parse on "<expression>\n<duration>\n<days>"
// (later lines optional; <days> a decimal automatically_after_days). A
// schedule that parses is run from fixed times. Properties: errors are
// INVALID_ARGUMENT with a reason; the window is 1-24 hours; the next window
// starts strictly after the time it is asked from, at a whole minute for
// cron, and its random start lies inside the window; the canonical
// expression parses again to the same schedule.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_check.h"
#include "libs/schedule/schedule.h"

namespace {

using coffer::schedule::RotationSchedule;

const std::vector<absl::Time>& Times() {
  static const auto* const kTimes = [] {
    const absl::TimeZone utc = absl::UTCTimeZone();
    return new std::vector<absl::Time>{
        absl::FromCivil(absl::CivilSecond(2024, 2, 29, 12, 34, 56), utc),
        absl::FromCivil(absl::CivilSecond(2026, 12, 31, 23, 59, 59), utc),
        absl::FromCivil(absl::CivilSecond(1969, 12, 31, 23, 59, 0), utc),
        absl::FromCivil(absl::CivilSecond(2199, 12, 31, 20, 0, 0), utc),
    };
  }();
  return *kTimes;
}

void Run(const RotationSchedule& s, std::vector<absl::Time>* starts) {
  FUZZ_CHECK(s.window() >= absl::Hours(1) && s.window() <= absl::Hours(24), "window 1-24h");
  const bool cron = s.expression().rfind("cron(", 0) == 0;
  for (absl::Time t : Times()) {
    absl::Time next = s.NextWindowStart(t);
    starts->push_back(next);
    FUZZ_CHECK(next > t, "the next window starts after the time asked from");
    if (next == absl::InfiniteFuture()) continue;
    if (cron) {
      FUZZ_CHECK(
          absl::Trunc(next - absl::UnixEpoch(), absl::Minutes(1)) == next - absl::UnixEpoch(),
          "cron windows start on a whole minute");
    }
    for (double fraction : {0.0, 0.5, 0.999999, -1.0, 2.0}) {
      absl::Time at = s.StartInWindow(next, fraction);
      FUZZ_CHECK(at >= next && at < next + s.window(), "the start lies inside the window");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<absl::string_view> parts =
      coffer::fuzz::SplitLines(coffer::fuzz::AsText(data, size), 3);
  const absl::string_view expression = parts[0];
  const absl::string_view duration = parts.size() > 1 ? parts[1] : "";
  int64_t days = 0;
  if (parts.size() > 2 && !absl::SimpleAtoi(parts[2], &days)) days = 0;

  absl::StatusOr<RotationSchedule> s = RotationSchedule::Parse(days, expression, duration);
  if (!s.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(s.status()), "error code");
    coffer::fuzz::CheckHasReason(s.status(), "Parse error reason");
    return 0;
  }
  std::vector<absl::Time> starts;
  Run(*s, &starts);
  if (days != 0) {
    FUZZ_CHECK(s->expression().empty(), "automatically_after_days has no expression");
    return 0;
  }
  absl::StatusOr<RotationSchedule> again = RotationSchedule::Parse(0, s->expression(), duration);
  FUZZ_CHECK(again.ok(), "the canonical expression parses");
  FUZZ_CHECK(again->expression() == s->expression(), "canonical form is stable");
  FUZZ_CHECK(again->window() == s->window(), "same window");
  std::vector<absl::Time> starts_again;
  Run(*again, &starts_again);
  FUZZ_CHECK(starts == starts_again, "same windows");
  return 0;
}
