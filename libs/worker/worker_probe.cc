#include "libs/worker/worker_probe.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace coffer::worker {

WorkerProbe::WorkerProbe(prometheus::Registry& registry)
    : steps_(prometheus::BuildCounter()
                 .Name("coffer_worker_steps_total")
                 .Help("Rotation steps run by this worker, by step and result")
                 .Register(registry)),
      step_seconds_(prometheus::BuildHistogram()
                        .Name("coffer_worker_step_seconds")
                        .Help("Duration of rotation steps, by step")
                        .Register(registry)) {}

void WorkerProbe::StepDone(absl::string_view step, bool ok, double seconds) {
  const std::string name(step);
  steps_.Add({{"step", name}, {"result", ok ? "success" : "failure"}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                                   2.5,  5,    10,  30,   60,  120};
  step_seconds_.Add({{"step", name}}, kBuckets).Observe(seconds);
}

}  // namespace coffer::worker
