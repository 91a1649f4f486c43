// worker_probe.h: a rotation worker's metrics in one place (Redpanda's probe
// pattern), so metric code stays out of the service and the handlers.
//
//   WorkerProbe probe(*metrics->registry());
//   probe.StepDone("setSecret", /*ok=*/true, /*seconds=*/0.25);
//
// Labels are bounded: the four step names and success|failure.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace coffer::worker {

class WorkerProbe {
 public:
  explicit WorkerProbe(prometheus::Registry& registry);

  // coffer_worker_steps_total{step,result="success"|"failure"} and
  // coffer_worker_step_seconds{step}.
  void StepDone(absl::string_view step, bool ok, double seconds);

 private:
  prometheus::Family<prometheus::Counter>& steps_;
  prometheus::Family<prometheus::Histogram>& step_seconds_;
};

}  // namespace coffer::worker
