// CallGate over a real mTLS gRPC server: where a call's work runs (the
// callback thread first for reads, the executor otherwise) and that work
// which would block is run again where it may, invisibly to the caller.
#include "libs/runtime/call_gate.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/common/blocking.h"
#include "libs/common/executor.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "tests/testing/test_env.h"

namespace coffer::runtime {
namespace {

namespace sm = ::coffer::secrets::v1;

TEST(BlockingTest, ScopesNestAndTheStatusIsRecognized) {
  EXPECT_TRUE(MayBlock());
  {
    NonBlockingScope outer;
    EXPECT_FALSE(MayBlock());
    {
      NonBlockingScope inner;
      EXPECT_FALSE(MayBlock());
    }
    EXPECT_FALSE(MayBlock());
  }
  EXPECT_TRUE(MayBlock());
  absl::Status status = WouldBlockError("a synced write");
  EXPECT_TRUE(IsWouldBlock(status));
  absl::Status copy = status;
  EXPECT_TRUE(IsWouldBlock(copy));
  EXPECT_FALSE(IsWouldBlock(absl::UnavailableError("would block: a synced write")));
  EXPECT_FALSE(IsWouldBlock(absl::OkStatus()));
}

// GetSecretValue (a read) and PutSecretValue through a gate; each answer
// says where its work ran. The secret "needs-kms" stands for a read whose
// key is not cached: it would block.
class Service final : public sm::SecretsManager::CallbackService {
 public:
  explicit Service(CallGate* gate) : gate_(gate) {}

  grpc::ServerUnaryReactor* GetSecretValue(grpc::CallbackServerContext* context,
                                           const sm::GetSecretValueRequest* request,
                                           sm::GetSecretValueResponse* response) override {
    const std::string id = request->secret_id();
    return gate_->Unary<sm::GetSecretValueResponse>(
        context, "secretsmanager:GetSecretValue",
        [this, id](const authz::Access&) -> absl::StatusOr<sm::GetSecretValueResponse> {
          ++runs;
          if (id == "needs-kms" && !MayBlock()) return WouldBlockError("a KMS call");
          if (id == "fails") return absl::NotFoundError("no such secret");
          sm::GetSecretValueResponse r;
          r.set_secret_string(MayBlock() ? "executor" : "callback thread");
          return r;
        },
        response);
  }

  grpc::ServerUnaryReactor* PutSecretValue(grpc::CallbackServerContext* context,
                                           const sm::PutSecretValueRequest*,
                                           sm::PutSecretValueResponse* response) override {
    return gate_->Unary<sm::PutSecretValueResponse>(
        context, "secretsmanager:PutSecretValue",
        [this](const authz::Access&) -> absl::StatusOr<sm::PutSecretValueResponse> {
          ++runs;
          sm::PutSecretValueResponse r;
          r.set_version_id(MayBlock() ? "executor" : "callback thread");
          return r;
        },
        response);
  }

  std::atomic<int> runs{0};

 private:
  CallGate* gate_;
};

class CallGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rpc::ServerOptions options;
    options.tls = testing::SharedPki().Identity("store");
    auto server = rpc::Server::Start(std::move(options), {&service_}, &health_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    rpc::ChannelOptions channel;
    channel.target = absl::StrCat("localhost:", server_->port());
    channel.tls = testing::SharedPki().Identity("cofferctl");
    auto made = rpc::MakeChannel(std::move(channel));
    ASSERT_TRUE(made.ok()) << made.status();
    stub_ = sm::SecretsManager::NewStub(*made);
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  grpc::Status Get(const std::string& id, std::string* where) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    sm::GetSecretValueRequest req;
    req.set_secret_id(id);
    sm::GetSecretValueResponse resp;
    grpc::Status s = stub_->GetSecretValue(&ctx, req, &resp);
    *where = resp.secret_string();
    return s;
  }

  BoundedExecutor executor_{"test-calls", 2, 100};
  CallGate gate_{nullptr, nullptr, nullptr, &executor_};
  Service service_{&gate_};
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<sm::SecretsManager::Stub> stub_;
};

TEST_F(CallGateTest, AReadThatNeedNotWaitRunsOnTheCallbackThread) {
  std::string where;
  grpc::Status s = Get("cached", &where);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(where, "callback thread");
  EXPECT_EQ(service_.runs.load(), 1);
}

TEST_F(CallGateTest, AReadThatWouldBlockRunsAgainOnTheExecutor) {
  std::string where;
  grpc::Status s = Get("needs-kms", &where);
  ASSERT_TRUE(s.ok()) << s.error_message();  // the caller never sees "would block"
  EXPECT_EQ(where, "executor");
  EXPECT_EQ(service_.runs.load(), 2);
}

TEST_F(CallGateTest, ErrorsOfAnInlineReadAreAnswered) {
  std::string where;
  grpc::Status s = Get("fails", &where);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(service_.runs.load(), 1);
}

TEST_F(CallGateTest, WritesGoStraightToTheExecutor) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  sm::PutSecretValueRequest req;
  sm::PutSecretValueResponse resp;
  ASSERT_TRUE(stub_->PutSecretValue(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.version_id(), "executor");
  EXPECT_EQ(service_.runs.load(), 1);
  EXPECT_FALSE(CallGate::InlineFirst("secretsmanager:PutSecretValue"));
  EXPECT_FALSE(CallGate::InlineFirst("secretsmanager:BatchGetSecretValue"));
  EXPECT_TRUE(CallGate::InlineFirst("kms:Decrypt"));
}

}  // namespace
}  // namespace coffer::runtime
