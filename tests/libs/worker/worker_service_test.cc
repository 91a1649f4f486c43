#include "libs/worker/worker_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "libs/common/errors.h"
#include "libs/metrics/metrics.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/rpc/status.h"
#include "tests/libs/worker/fake_secrets_client.h"
#include "tests/testing/test_env.h"

namespace coffer::worker {
namespace {

namespace rv1 = ::coffer::rotation::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kToken[] = "rotation-token-0123456789abcdef0123";

// Records the steps it is asked to run; fails the ones it is told to.
class RecordingHandler final : public RotationHandler {
 public:
  absl::Status CreateSecret(const StepContext& ctx) override { return Record("create", ctx); }
  absl::Status SetSecret(const StepContext& ctx) override { return Record("set", ctx); }
  absl::Status TestSecret(const StepContext& ctx) override { return Record("test", ctx); }
  absl::Status FinishSecret(const StepContext& ctx) override {
    absl::Status s = Record("finish", ctx);
    return s.ok() ? FinishStandard(ctx) : s;
  }

  std::vector<std::string> steps() {
    absl::MutexLock lock(&mu_);
    return steps_;
  }
  void FailWith(absl::Status s) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(s);
  }

 private:
  absl::Status Record(const std::string& step, const StepContext& ctx) {
    absl::MutexLock lock(&mu_);
    steps_.push_back(step + " " + ctx.token);
    return fail_;
  }
  absl::Mutex mu_;
  std::vector<std::string> steps_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
};

rv1::StepRequest Request(const std::string& arn, rv1::RotationStep step,
                         const std::string& token = kToken) {
  rv1::StepRequest r;
  r.set_secret_id(arn);
  r.set_client_request_token(token);
  r.set_step(step);
  return r;
}

TEST(WorkerServiceValidationTest, NamesTheField) {
  auto field_of = [](const rv1::StepRequest& r) {
    absl::Status s = WorkerService::ValidateRequest(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    auto detail = GetErrorDetail(s);
    return detail ? detail->field : std::string("<none>");
  };
  EXPECT_EQ(field_of(Request("", rv1::ROTATION_STEP_CREATE_SECRET)), "secret_id");
  EXPECT_EQ(field_of(Request(std::string(2049, 'a'), rv1::ROTATION_STEP_CREATE_SECRET)),
            "secret_id");
  EXPECT_EQ(field_of(Request("app/db", rv1::ROTATION_STEP_CREATE_SECRET, "short")),
            "client_request_token");
  EXPECT_EQ(field_of(Request("app/db", rv1::ROTATION_STEP_CREATE_SECRET,
                             "token with spaces 0123456789abcdef0123")),
            "client_request_token");
  EXPECT_EQ(field_of(Request("app/db", rv1::ROTATION_STEP_UNSPECIFIED)), "step");
  EXPECT_EQ(field_of(Request("app/db", static_cast<rv1::RotationStep>(42))), "step");
  EXPECT_TRUE(
      WorkerService::ValidateRequest(Request("app/db", rv1::ROTATION_STEP_SET_SECRET)).ok());
}

class WorkerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    arn_ = fake_.AddSecret("app/db", "v1");
    fake_.StartRotation(arn_, kToken);
  }
  FakeSecretsClient fake_;
  RecordingHandler handler_;
  std::unique_ptr<metrics::Metrics> metrics_ = metrics::Metrics::Create("worker-test");
  WorkerProbe probe_{*metrics_->registry()};
  std::string arn_;
};

TEST_F(WorkerServiceTest, DispatchesEachStepToItsMethod) {
  WorkerService service(&handler_, &fake_, &probe_, {});
  fake_.SetValue(arn_, kToken, "v2");
  for (auto step : {rv1::ROTATION_STEP_CREATE_SECRET, rv1::ROTATION_STEP_SET_SECRET,
                    rv1::ROTATION_STEP_TEST_SECRET, rv1::ROTATION_STEP_FINISH_SECRET}) {
    absl::Status s = service.RunStep(Request(arn_, step));
    ASSERT_TRUE(s.ok()) << s;
  }
  const std::string t = kToken;
  EXPECT_THAT(handler_.steps(), ElementsAre("create " + t, "set " + t, "test " + t, "finish " + t));
  EXPECT_EQ(fake_.VersionAt(arn_, kAwsCurrent), kToken);

  const std::string scrape = metrics_->Scrape();
  EXPECT_THAT(scrape,
              HasSubstr("coffer_worker_steps_total{result=\"success\",step=\"setSecret\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("coffer_worker_step_seconds_count{step=\"finishSecret\"} 1"));
}

TEST_F(WorkerServiceTest, StepsRepeatedAfterFinishAreNoOps) {
  WorkerService service(&handler_, &fake_, &probe_, {});
  fake_.SetValue(arn_, kToken, "v2");
  ASSERT_TRUE(service.RunStep(Request(arn_, rv1::ROTATION_STEP_FINISH_SECRET)).ok());
  ASSERT_TRUE(service.RunStep(Request(arn_, rv1::ROTATION_STEP_CREATE_SECRET)).ok());
  ASSERT_TRUE(service.RunStep(Request(arn_, rv1::ROTATION_STEP_TEST_SECRET)).ok());
  ASSERT_TRUE(service.RunStep(Request(arn_, rv1::ROTATION_STEP_FINISH_SECRET)).ok());
  const std::string t = kToken;
  // create/test were skipped: the version is AWSCURRENT already.
  EXPECT_THAT(handler_.steps(), ElementsAre("finish " + t, "finish " + t));
}

TEST_F(WorkerServiceTest, RefusesATokenThatIsNotPending) {
  WorkerService service(&handler_, &fake_, &probe_, {});
  absl::Status s = service.RunStep(
      Request(arn_, rv1::ROTATION_STEP_CREATE_SECRET, "not-a-rotation-0123456789abcdef0123"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(handler_.steps(), IsEmpty());
}

TEST_F(WorkerServiceTest, HandlerErrorsFailTheStepAndAreCounted) {
  WorkerService service(&handler_, &fake_, &probe_, {});
  handler_.FailWith(absl::UnavailableError("database down"));
  absl::Status s = service.RunStep(Request(arn_, rv1::ROTATION_STEP_SET_SECRET));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(metrics_->Scrape(),
              HasSubstr("coffer_worker_steps_total{result=\"failure\",step=\"setSecret\"} 1"));
}

TEST_F(WorkerServiceTest, InvalidRequestNeverReachesTheHandler) {
  WorkerService service(&handler_, &fake_, &probe_, {});
  EXPECT_EQ(service.RunStep(Request(arn_, rv1::ROTATION_STEP_UNSPECIFIED)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(handler_.steps(), IsEmpty());
  EXPECT_EQ(fake_.Calls("DescribeSecret"), 0);
}

// Over gRPC with mTLS: the rotator's identity may call Step, others may not.
TEST_F(WorkerServiceTest, ServesStepOverMtlsToAllowedCallersOnly) {
  const auto& pki = coffer::testing::SharedPki();
  WorkerServiceOptions options;
  options.allowed_callers = {"spiffe://coffer.local/rotator"};
  WorkerService service(&handler_, &fake_, &probe_, options);
  rpc::HealthStatus health;
  rpc::ServerOptions server_options;
  server_options.tls = pki.Identity("worker-exec");
  auto server = rpc::Server::Start(std::move(server_options), {&service}, &health);
  ASSERT_TRUE(server.ok()) << server.status();

  auto stub_for = [&](const std::string& identity) {
    rpc::ChannelOptions opts;
    opts.target = absl::StrCat("localhost:", (*server)->port());
    opts.tls = pki.Identity(identity);
    auto channel = rpc::MakeChannel(std::move(opts));
    EXPECT_TRUE(channel.ok());
    return rv1::RotationWorker::NewStub(*channel);
  };
  auto call = [](rv1::RotationWorker::Stub& stub, const rv1::StepRequest& request) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    rv1::StepResponse response;
    return rpc::FromGrpcStatus(stub.Step(&ctx, request, &response));
  };

  auto rotator = stub_for("rotator");
  absl::Status s = call(*rotator, Request(arn_, rv1::ROTATION_STEP_CREATE_SECRET));
  EXPECT_TRUE(s.ok()) << s;

  s = call(*rotator, Request(arn_, rv1::ROTATION_STEP_UNSPECIFIED));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetErrorDetail(s)->field, "step");

  auto app = stub_for("app-catagram");
  s = call(*app, Request(arn_, rv1::ROTATION_STEP_SET_SECRET));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("rotation:Step"));

  handler_.FailWith(absl::FailedPreconditionError("setSecret: nope"));
  s = call(*rotator, Request(arn_, rv1::ROTATION_STEP_SET_SECRET));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("setSecret: nope"));

  const std::string t = kToken;
  EXPECT_THAT(handler_.steps(), ElementsAre("create " + t, "set " + t));
  (*server)->Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace coffer::worker
