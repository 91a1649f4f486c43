#include "services/rotator/rotator_probe.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace coffer::rotator {

RotatorProbe::RotatorProbe(prometheus::Registry& registry)
    : runs_started_(
          prometheus::BuildCounter()
              .Name("coffer_rotation_runs_started_total")
              .Help("Rotations this rotator took a lease for and started or resumed, by worker")
              .Register(registry)),
      runs_(prometheus::BuildCounter()
                .Name("coffer_rotation_runs_total")
                .Help("Rotations this rotator ended, by worker and result")
                .Register(registry)),
      step_seconds_(prometheus::BuildHistogram()
                        .Name("coffer_rotation_step_seconds")
                        .Help("Duration of worker Step calls, by step")
                        .Register(registry)),
      step_attempts_(prometheus::BuildCounter()
                         .Name("coffer_rotation_step_attempts_total")
                         .Help("Worker Step calls, by step and result")
                         .Register(registry)),
      overdue_(prometheus::BuildGauge()
                   .Name("coffer_rotation_overdue_secrets")
                   .Help("Secrets due more than a minute ago that no rotation is working on")
                   .Register(registry)
                   .Add({})),
      leases_held_(prometheus::BuildGauge()
                       .Name("coffer_rotation_leases_held")
                       .Help("Rotation leases this rotator holds")
                       .Register(registry)
                       .Add({})),
      scheduled_(prometheus::BuildGauge()
                     .Name("coffer_rotation_scheduled_secrets")
                     .Help("Rotation-enabled secrets in this rotator's schedule")
                     .Register(registry)
                     .Add({})) {}

void RotatorProbe::RunStarted(absl::string_view worker) {
  runs_started_.Add({{"worker", std::string(worker)}}).Increment();
}

void RotatorProbe::RunFinished(absl::string_view worker, bool ok) {
  runs_.Add({{"worker", std::string(worker)}, {"result", ok ? "success" : "failure"}}).Increment();
}

void RotatorProbe::StepFinished(absl::string_view step, bool ok, double seconds) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                                   2.5,  5,    10,  30,   60,  120};
  const std::string name(step);
  step_seconds_.Add({{"step", name}}, kBuckets).Observe(seconds);
  step_attempts_.Add({{"step", name}, {"result", ok ? "success" : "failure"}}).Increment();
}

void RotatorProbe::LeaseAcquired() { leases_held_.Increment(); }
void RotatorProbe::LeaseReleased() { leases_held_.Decrement(); }
void RotatorProbe::SetOverdue(size_t count) { overdue_.Set(static_cast<double>(count)); }
void RotatorProbe::SetScheduled(size_t count) { scheduled_.Set(static_cast<double>(count)); }

}  // namespace coffer::rotator
