// The rotation-control API over real mTLS: only rotator identities may call.
#include "services/store/rotation_control_service.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/rpc/status.h"
#include "tests/services/store/store_fixture.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

namespace rot = ::coffer::rotation::v1;

class RotationControlServiceTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    service_ = std::make_unique<RotationControlService>(
        rotation_.get(), std::vector<std::string>{"spiffe://coffer.local/rotator"});
    rpc::ServerOptions options;
    options.tls = testing::SharedPki().Identity("store");
    server_ = std::move(rpc::Server::Start(std::move(options), {service_.get()}, &health_)).value();
  }

  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  grpc::Status List(const std::string& identity) {
    rpc::ChannelOptions options;
    options.target = absl::StrCat("localhost:", server_->port());
    options.tls = testing::SharedPki().Identity(identity);
    auto stub = rot::RotationControl::NewStub(*rpc::MakeChannel(std::move(options)));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    rot::ListRotationSchedulesRequest request;
    rot::ListRotationSchedulesResponse response;
    return stub->ListRotationSchedules(&context, request, &response);
  }

  std::unique_ptr<RotationControlService> service_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
};
COFFER_STORE_ENGINES(RotationControlServiceTest);

TEST_P(RotationControlServiceTest, OnlyRotatorsMayCall) {
  EXPECT_TRUE(List("rotator").ok());
  grpc::Status denied = List("app-catagram");
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  absl::Status back = rpc::FromGrpcStatus(denied);
  EXPECT_EQ(ErrorReason(back), reason::kAccessDenied);
  EXPECT_THAT(std::string(back.message()), ::testing::HasSubstr("rotation:ListRotationSchedules"));
  EXPECT_EQ(List("worker-postgres").error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace coffer::store
