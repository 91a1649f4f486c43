// The rotation-control API over real mTLS: only rotator identities may call.
#include "services/store/rotation_control_service.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/rpc/status.h"
#include "tests/services/store/in_process_kms.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

namespace rot = ::coffer::rotation::v1;

class RotationControlServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kms::KeyStoreOptions kms_options;
    kms_options.db_path = dir_.Join("kms");
    kms_options.sync_writes = false;
    keys_ = std::move(kms::KeyStore::Open(kms_options, crypto::SecureBuffer::Random(32))).value();
    kms_ = std::make_unique<InProcessKeyService>(keys_.get());
    storage::DatabaseOptions db_options;
    db_options.path = dir_.Join("store");
    db_options.column_families = SecretStore::ColumnFamilies();
    db_options.sync_writes = false;
    db_ = std::move(storage::Database::Open(db_options)).value();
    cache_ = std::make_unique<DataKeyCache>(DataKeyCacheOptions{});
    envelope_ = std::make_unique<Envelope>(kms_.get(), cache_.get());
    store_ = std::make_unique<SecretStore>(db_.get(), envelope_.get(), SecretStoreOptions{});
    service_ = std::make_unique<RotationControlService>(
        store_.get(), std::vector<std::string>{"spiffe://coffer.local/rotator"});
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

  testing::TempDir dir_;
  std::unique_ptr<kms::KeyStore> keys_;
  std::unique_ptr<InProcessKeyService> kms_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<DataKeyCache> cache_;
  std::unique_ptr<Envelope> envelope_;
  std::unique_ptr<SecretStore> store_;
  std::unique_ptr<RotationControlService> service_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
};

TEST_F(RotationControlServiceTest, OnlyRotatorsMayCall) {
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
