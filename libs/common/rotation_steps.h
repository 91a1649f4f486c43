// rotation_steps.h: the names of the four rotation steps (rotation.md), the
// one copy every component uses in logs, errors, metric labels and stored
// rotation state.
//
//   log::Info("rotator", "rotation step done",
//             {{"step", std::string(coffer::RotationStepName(request.step()))}});
//   coffer::RotationStepName(coffer::rotation::v1::ROTATION_STEP_SET_SECRET);  // "setSecret"
//   coffer::RotationStepName(0);                                               // ""
//
// Contract: `step` is a coffer.rotation.v1.RotationStep value (worker.proto);
// the result is "createSecret", "setSecret", "testSecret" or "finishSecret",
// and "" for ROTATION_STEP_UNSPECIFIED and for any number that is not a step.
// The returned view points to static storage.
#pragma once

#include "absl/strings/string_view.h"

namespace coffer {

absl::string_view RotationStepName(int step);

}  // namespace coffer
