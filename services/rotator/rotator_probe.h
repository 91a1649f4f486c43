// rotator_probe.h: every metric of coffer-rotator in one place (Redpanda's
// probe idea), so the scheduler and the runner only say what happened.
//
//   RotatorProbe probe(*metrics->registry());
//   probe.StepFinished("setSecret", /*ok=*/false, 0.25);
//   probe.RunFinished("postgres-single-user", /*ok=*/true);
//
// Metrics (operations.md; labels are worker names from the registry and
// step names only — never a secret name):
//   coffer_rotation_runs_started_total{worker}
//   coffer_rotation_runs_total{worker,result="success"|"failure"}
//   coffer_rotation_step_seconds{step}                     histogram
//   coffer_rotation_step_attempts_total{step,result}
//   coffer_rotation_overdue_secrets   due > 1 minute ago and not being worked on
//   coffer_rotation_leases_held
//   coffer_rotation_scheduled_secrets
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace coffer::rotator {

// The label used for a worker name that is not in the registry (such names
// come from secrets and are not bounded).
inline constexpr char kUnregisteredWorker[] = "unregistered";

class RotatorProbe {
 public:
  explicit RotatorProbe(prometheus::Registry& registry);

  void RunStarted(absl::string_view worker);
  void RunFinished(absl::string_view worker, bool ok);
  void StepFinished(absl::string_view step, bool ok, double seconds);
  void LeaseAcquired();
  void LeaseReleased();
  void SetOverdue(size_t count);
  void SetScheduled(size_t count);

 private:
  prometheus::Family<prometheus::Counter>& runs_started_;
  prometheus::Family<prometheus::Counter>& runs_;
  prometheus::Family<prometheus::Histogram>& step_seconds_;
  prometheus::Family<prometheus::Counter>& step_attempts_;
  prometheus::Gauge& overdue_;
  prometheus::Gauge& leases_held_;
  prometheus::Gauge& scheduled_;
};

}  // namespace coffer::rotator
