#include "libs/common/clock.h"

#include "absl/time/clock.h"

namespace coffer {
namespace {
class SystemClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};
}  // namespace

Clock* RealClock() {
  static Clock* const clock = new SystemClock();
  return clock;
}

}  // namespace coffer
