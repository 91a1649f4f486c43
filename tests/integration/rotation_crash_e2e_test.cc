// End-to-end tests of rotation through crashes (shared spec rotation.md,
// "What must hold"): the rotator SIGKILLed after each step (before and after
// it recorded the step) or SIGTERMed, the worker SIGKILLed after each step or
// inside setSecret; the rotation completes and AWSCURRENT logs in
// throughout. Cluster and fixture: rotation_e2e_fixture.h.
//
//   RotationCrash/RotationCrashE2ETest.*  one case per crash point
//   RotationWorkerCrashE2ETest.*          the worker SIGKILLed inside setSecret
//
// Crash points are made deterministic by GatedWorker: an in-process
// RotationWorker (with the postgres worker's certificate) registered with
// the rotator in front of the real worker. It forwards each Step and can
// hold a chosen step (before forwarding it, or after the real worker did it
// and before the rotator hears back) until the test has killed what it
// wants to kill.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/rotation_steps.h"
#include "tests/integration/rotation_e2e_fixture.h"
#include "tests/testing/test_env.h"

namespace coffer::rotation_e2e {
namespace {

// ---- Crashes ----

enum class Crash {
  // The worker did the step; the rotator is SIGKILLed before it hears back
  // (the step is done but not recorded: the next rotator repeats it).
  kRotatorAfterStep,
  // The step is recorded and the next one is on its way to the worker.
  kRotatorAfterRecord,
  // The worker did the step and is SIGKILLed before it answers; it is
  // started again (same port) while the rotator retries.
  kWorkerAfterStep,
  // The worker did the step; the rotator gets SIGTERM before it hears back:
  // it waits --shutdown_grace for the step, cancels it, gives the lease back
  // and exits 0, so the next rotator resumes at once (no lease expiry).
  kRotatorStoppedAfterStep,
};

struct CrashCase {
  Crash crash;
  rv1::RotationStep step;
};

std::string CaseName(const ::testing::TestParamInfo<CrashCase>& info) {
  const char* crash = info.param.crash == Crash::kRotatorAfterStep     ? "RotatorKilledAfter"
                      : info.param.crash == Crash::kRotatorAfterRecord ? "RotatorKilledRecorded"
                      : info.param.crash == Crash::kWorkerAfterStep    ? "WorkerKilledAfter"
                                                                       : "RotatorStoppedAfter";
  return absl::StrCat(crash, "_", RotationStepName(info.param.step));
}

class RotationCrashFixture : public RotationE2ETest {
 protected:
  // A role and its alternating-users secret; the ARN.
  std::string MakeSecret(const std::string& role) {
    EnsureDataTable();
    CreateRole(role, "crash-initial-pw");
    return CreateSecret("rotation-e2e/" + role,
                        CredentialJson(pg(), role, "crash-initial-pw", true));
  }

  // After the rotation to `token` (alternating users, first rotation).
  void ExpectCompleted(const std::string& arn, const std::string& role,
                       const std::string& first_version, const std::string& token) {
    const sm::RotationState state = WaitRotationEnd(arn, token);
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << state.DebugString();
    ExpectRotatedLabels(arn, first_version, token);
    const Credential now = GetCredential(arn, "AWSCURRENT");
    EXPECT_EQ(now.username, role + "_clone");
    EXPECT_TRUE(pg().CanLogin(now.username, now.password));
    EXPECT_EQ(Query(absl::StrCat("SELECT pg_has_role('", role, "_clone', '", role, "', 'MEMBER')"))
                  .value_or("?"),
              "t");
  }
};

class RotationCrashE2ETest : public RotationCrashFixture,
                             public ::testing::WithParamInterface<CrashCase> {};
class RotationWorkerCrashE2ETest : public RotationCrashFixture {};

TEST_P(RotationCrashE2ETest, RotationCompletesAndCurrentAlwaysLogsIn) {
  const CrashCase param = GetParam();
  const char* kind = param.crash == Crash::kRotatorAfterStep     ? "a"
                     : param.crash == Crash::kRotatorAfterRecord ? "r"
                     : param.crash == Crash::kWorkerAfterStep    ? "w"
                                                                 : "s";
  const std::string role = absl::StrCat("crash_", kind, static_cast<int>(param.step));
  const std::string arn = MakeSecret(role);
  const std::string first_version = Get(arn, "AWSCURRENT").version_id();

  GatedWorker gate(c_->pg_alt->Channel("rotator"));
  ASSERT_TRUE(gate.Start().ok());
  const std::vector<std::string> workers = {
      WorkerFlag("pg-gated", gate.address(), kPostgresWorkerId)};
  // Worker restarts take a moment: more attempts than the default 3.
  // A graceful stop must give the lease back: then a long lease costs the
  // next rotator nothing.
  const std::vector<std::string> extra = {param.crash == Crash::kRotatorStoppedAfterStep
                                              ? "--lease_duration=20s"
                                              : "--lease_duration=2s",
                                          "--max_attempts=20", "--shutdown_grace=1s"};
  ServiceProcess* first = NewRotator(role + "-1", workers, extra);
  ASSERT_TRUE(first->Start().ok()) << first->Output();

  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));

  switch (param.crash) {
    case Crash::kRotatorAfterStep:
    case Crash::kRotatorStoppedAfterStep:
      gate.Arm(GatedWorker::Gate::kHoldAfter, param.step);
      break;
    case Crash::kRotatorAfterRecord:
      gate.Arm(GatedWorker::Gate::kHoldBefore,
               static_cast<rv1::RotationStep>(static_cast<int>(param.step) + 1));
      break;
    case Crash::kWorkerAfterStep:
      gate.Arm(GatedWorker::Gate::kKillWorkerAfter, param.step, [this] {
        c_->pg_alt->Kill();
        EXPECT_TRUE(c_->pg_alt->Restart().ok()) << c_->pg_alt->Output();
      });
      break;
  }
  const std::string token = Rotate(arn, "pg-gated");

  if (param.crash != Crash::kWorkerAfterStep) {
    ASSERT_TRUE(gate.WaitHeld(absl::Seconds(20))) << "the rotator never reached the crash point";
    const std::string next(param.crash == Crash::kRotatorAfterRecord
                               ? RotationStepName(param.step + 1)
                               : RotationStepName(param.step));
    EXPECT_TRUE(testing::WaitFor([&] { return Describe(arn).rotation_state().next_step() == next; },
                                 absl::Seconds(5)))
        << Describe(arn).rotation_state().DebugString();
    if (param.crash == Crash::kRotatorStoppedAfterStep) {
      EXPECT_EQ(first->Stop(), 0) << first->Output();
    } else {
      first->Kill();
    }
    gate.Release();
    const sm::RotationState mid = Describe(arn).rotation_state();
    EXPECT_EQ(StatusName(mid.status()), "STATUS_IN_PROGRESS");
    EXPECT_EQ(mid.version_id(), token);
    EXPECT_EQ(mid.next_step(), next);
    // Some logins while nobody is rotating.
    ASSERT_TRUE(loop.WaitLogins(5));
    // Started again (a new holder: it waits for the dead one's lease).
    ServiceProcess* second = NewRotator(role + "-2", workers, extra);
    ASSERT_TRUE(second->Start().ok()) << second->Output();
    if (param.crash == Crash::kRotatorStoppedAfterStep) {
      const absl::Time restarted = absl::Now();
      const sm::RotationState state = WaitRotationEnd(arn, token);
      EXPECT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED");
      EXPECT_LT(absl::Now() - restarted, absl::Seconds(10))
          << "the stopped rotator kept its lease (20 s) instead of giving it back";
    }
  }

  ExpectCompleted(arn, role, first_version, token);
  ASSERT_TRUE(loop.WaitLogins(3));
  loop.Stop();
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());
  EXPECT_GT(loop.logins(), 5);

  // Every step was done; the crashed one (when the worker did it) twice.
  for (int s = rv1::ROTATION_STEP_CREATE_SECRET; s <= rv1::ROTATION_STEP_FINISH_SECRET; ++s) {
    const auto step = static_cast<rv1::RotationStep>(s);
    const int want_min = param.crash != Crash::kRotatorAfterRecord && step == param.step ? 2 : 1;
    EXPECT_GE(gate.Done(step), want_min) << RotationStepName(step);
  }
  for (const GatedWorker::Call& call : gate.calls()) EXPECT_EQ(call.token, token);
}

INSTANTIATE_TEST_SUITE_P(
    RotationCrash, RotationCrashE2ETest,
    ::testing::Values(CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_CREATE_SECRET},
                      CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_SET_SECRET},
                      CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_TEST_SECRET},
                      CrashCase{Crash::kRotatorAfterStep, rv1::ROTATION_STEP_FINISH_SECRET},
                      CrashCase{Crash::kRotatorAfterRecord, rv1::ROTATION_STEP_CREATE_SECRET},
                      CrashCase{Crash::kRotatorAfterRecord, rv1::ROTATION_STEP_SET_SECRET},
                      CrashCase{Crash::kRotatorAfterRecord, rv1::ROTATION_STEP_TEST_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_CREATE_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_SET_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_TEST_SECRET},
                      CrashCase{Crash::kWorkerAfterStep, rv1::ROTATION_STEP_FINISH_SECRET},
                      CrashCase{Crash::kRotatorStoppedAfterStep, rv1::ROTATION_STEP_SET_SECRET}),
    CaseName);

// The worker is SIGKILLed while it is inside setSecret: its CREATE ROLE
// waits on a lock the test holds. The rotator calls the worker directly.
TEST_F(RotationWorkerCrashE2ETest, WorkerKilledInsideSetSecret) {
  const std::string arn = MakeSecret("crash_inside");
  const std::string first_version = Get(arn, "AWSCURRENT").version_id();
  ServiceProcess* rotator =
      NewRotator("inside-1", {WorkerFlag("pg-alt", c_->pg_alt->address(), kPostgresWorkerId)},
                 {"--max_attempts=20"});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));

  // An uncommitted role of the same name: the worker's CREATE ROLE blocks
  // on it.
  PgConnection blocker(pg());
  ASSERT_TRUE(blocker.ok()) << blocker.error();
  ASSERT_TRUE(blocker.Query("BEGIN").ok());
  ASSERT_TRUE(blocker.Query("CREATE ROLE crash_inside_clone").ok());

  const std::string token = Rotate(arn, "pg-alt");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return Query(
                   "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND query ILIKE '%CREATE ROLE%crash_inside_clone%'")
                   .value_or("0") != "0";
      },
      absl::Seconds(20)))
      << "the worker never blocked in setSecret";
  EXPECT_EQ(Describe(arn).rotation_state().next_step(), "setSecret");
  c_->pg_alt->Kill();
  ASSERT_TRUE(blocker.Query("ROLLBACK").ok());
  ASSERT_TRUE(loop.WaitLogins(3));
  ASSERT_TRUE(c_->pg_alt->Restart().ok()) << c_->pg_alt->Output();

  ExpectCompleted(arn, "crash_inside", first_version, token);
  ASSERT_TRUE(loop.WaitLogins(3));
  loop.Stop();
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace coffer::rotation_e2e
