#include "libs/common/rotation_steps.h"

#include "coffer/rotation/v1/worker.pb.h"
#include "gtest/gtest.h"

namespace coffer {
namespace {

namespace rv1 = ::coffer::rotation::v1;

TEST(RotationStepNameTest, ProtocolNames) {
  EXPECT_EQ(RotationStepName(rv1::ROTATION_STEP_CREATE_SECRET), "createSecret");
  EXPECT_EQ(RotationStepName(rv1::ROTATION_STEP_SET_SECRET), "setSecret");
  EXPECT_EQ(RotationStepName(rv1::ROTATION_STEP_TEST_SECRET), "testSecret");
  EXPECT_EQ(RotationStepName(rv1::ROTATION_STEP_FINISH_SECRET), "finishSecret");
}

TEST(RotationStepNameTest, AnythingElseIsEmpty) {
  EXPECT_EQ(RotationStepName(rv1::ROTATION_STEP_UNSPECIFIED), "");
  EXPECT_EQ(RotationStepName(5), "");
  EXPECT_EQ(RotationStepName(-1), "");
}

}  // namespace
}  // namespace coffer
