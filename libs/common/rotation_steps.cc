#include "libs/common/rotation_steps.h"

#include "coffer/rotation/v1/worker.pb.h"

namespace coffer {

absl::string_view RotationStepName(int step) {
  namespace rv1 = ::coffer::rotation::v1;
  switch (step) {
    case rv1::ROTATION_STEP_CREATE_SECRET:
      return "createSecret";
    case rv1::ROTATION_STEP_SET_SECRET:
      return "setSecret";
    case rv1::ROTATION_STEP_TEST_SECRET:
      return "testSecret";
    case rv1::ROTATION_STEP_FINISH_SECRET:
      return "finishSecret";
    default:
      return "";
  }
}

}  // namespace coffer
