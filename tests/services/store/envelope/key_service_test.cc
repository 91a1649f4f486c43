// GrpcKeyService and KmsMonitor against a real KMS (KeyManager + KmsService)
// served in-process over mTLS, stopped and restarted on the same port.
#include "services/store/envelope/key_service.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "services/kms/key_manager.h"
#include "services/kms/kms_service.h"
#include "services/store/envelope/kms_monitor.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

constexpr char kAlias[] = "alias/coffer/secretsmanager";

// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
int PickPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class KeyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kms::KeyManagerOptions options;
    options.db_path = dir_.Join("keystore");
    options.sync_writes = false;
    auto store = kms::KeyManager::Open(options, crypto::SecureBuffer::Random(32));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    service_ = std::make_unique<kms::KmsService>(store_.get(), nullptr);
    port_ = PickPort();
    StartKms();
    channel_ = Channel(port_);
    key_service_ = MakeGrpcKeyService(channel_, absl::Seconds(2));
  }

  void TearDown() override { StopKms(); }

  // (Re)starts serving on port_; every start gets a fresh HealthStatus since
  // Server::Shutdown marks the old one NOT_SERVING for good.
  void StartKms() {
    health_ = std::make_unique<rpc::HealthStatus>();
    health_->Set("", true);
    health_->Set("coffer.kms.v1.KeyManagement", true);
    rpc::ServerOptions options;
    options.listen_address = absl::StrCat("127.0.0.1:", port_);
    options.tls = testing::SharedPki().Identity(kms_identity_);
    absl::StatusOr<std::unique_ptr<rpc::Server>> server;
    // The port was released by PickPort or by the previous server: binding
    // it again normally works at once; retry briefly in case it does not.
    for (int attempt = 0; attempt < 50; ++attempt) {
      server = rpc::Server::Start(std::move(options), {service_.get()}, health_.get());
      if (server.ok()) break;
      absl::SleepFor(absl::Milliseconds(100));
      options = rpc::ServerOptions();
      options.listen_address = absl::StrCat("127.0.0.1:", port_);
      options.tls = testing::SharedPki().Identity(kms_identity_);
    }
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  void StopKms() {
    if (server_ == nullptr) return;
    server_->Shutdown(absl::ZeroDuration());
    server_.reset();
  }

  static std::shared_ptr<grpc::Channel> Channel(int port) {
    rpc::ChannelOptions options;
    options.target = absl::StrCat("localhost:", port);
    options.tls = testing::SharedPki().Identity("store");
    options.expected_spiffe_id = "spiffe://coffer.local/kms";  // as coffer-store pins it
    auto channel = rpc::MakeChannel(std::move(options));
    EXPECT_TRUE(channel.ok()) << channel.status();
    return *channel;
  }

  testing::TempDir dir_;
  std::unique_ptr<kms::KeyManager> store_;
  std::unique_ptr<kms::KmsService> service_;
  std::unique_ptr<rpc::HealthStatus> health_;
  std::unique_ptr<rpc::Server> server_;
  int port_ = 0;
  std::string kms_identity_ = "kms";  // the certificate the KMS serves with
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<KeyService> key_service_;
  const EncryptionContext ctx_{{"SecretARN", "arn:secret"}, {"SecretVersionId", "v1"}};
};

TEST_F(KeyServiceTest, GenerateDataKeyAndDecrypt) {
  auto data_key = key_service_->GenerateDataKey(kAlias, ctx_);
  ASSERT_TRUE(data_key.ok()) << data_key.status();
  EXPECT_EQ(data_key->plaintext.size(), 32u);
  EXPECT_FALSE(data_key->wrapped.empty());
  EXPECT_EQ(data_key->key_arn.rfind("arn:coffer:kms:", 0), 0u) << data_key->key_arn;

  auto unwrapped = key_service_->Decrypt(data_key->wrapped, ctx_);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
  EXPECT_EQ(unwrapped->view(), data_key->plaintext.view());
}

TEST_F(KeyServiceTest, KmsReasonsSurvive) {
  auto data_key = key_service_->GenerateDataKey(kAlias, ctx_);
  ASSERT_TRUE(data_key.ok()) << data_key.status();
  EncryptionContext other = ctx_;
  other["SecretVersionId"] = "v2";
  auto wrong = key_service_->Decrypt(data_key->wrapped, other);
  EXPECT_EQ(ErrorReason(wrong.status()), reason::kInvalidCiphertext) << wrong.status();

  auto missing = key_service_->GenerateDataKey("alias/nope", ctx_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_EQ(ErrorReason(missing.status()), reason::kNotFound);
}

TEST_F(KeyServiceTest, ReEncryptUnderAnotherKey) {
  auto created = store_->CreateKey(kms::v1::CreateKeyRequest());
  ASSERT_TRUE(created.ok()) << created.status();
  auto data_key = key_service_->GenerateDataKey(kAlias, ctx_);
  ASSERT_TRUE(data_key.ok()) << data_key.status();

  auto rewrapped =
      key_service_->ReEncrypt(data_key->wrapped, ctx_, created->key_metadata().key_id());
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status();
  EXPECT_EQ(rewrapped->second, created->key_metadata().arn());
  auto unwrapped = key_service_->Decrypt(rewrapped->first, ctx_);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
  EXPECT_EQ(unwrapped->view(), data_key->plaintext.view());
}

TEST_F(KeyServiceTest, UnreachableKmsIsUnavailableAndFast) {
  StopKms();
  const absl::Time start = absl::Now();
  auto data_key = key_service_->GenerateDataKey(kAlias, ctx_);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(data_key.status().code(), absl::StatusCode::kUnavailable) << data_key.status();
  EXPECT_EQ(ErrorReason(data_key.status()), reason::kUnavailable);
  EXPECT_EQ(data_key.status().message().rfind("KMS unavailable: ", 0), 0u) << data_key.status();

  auto unwrapped = key_service_->Decrypt("blob", ctx_);
  EXPECT_EQ(ErrorReason(unwrapped.status()), reason::kUnavailable) << unwrapped.status();
}

// A server with a valid certificate of the same CA but another identity
// (here an application's) on the KMS's port never receives a request: the
// handshake fails, so no wrapped key or context reaches it.
TEST_F(KeyServiceTest, ImpostorKmsIsRefusedInTheHandshake) {
  StopKms();
  kms_identity_ = "app-catagram";
  StartKms();
  auto data_key = key_service_->GenerateDataKey(kAlias, ctx_);
  EXPECT_EQ(data_key.status().code(), absl::StatusCode::kUnavailable) << data_key.status();
  EXPECT_EQ(data_key.status().message().rfind("KMS unavailable: ", 0), 0u) << data_key.status();
  auto unwrapped = key_service_->Decrypt("wrapped-key", ctx_);
  EXPECT_EQ(unwrapped.status().code(), absl::StatusCode::kUnavailable) << unwrapped.status();
  // The impostor saw nothing: the first GenerateDataKey naming the alias
  // would have created the built-in key.
  auto keys = store_->ListKeys(kms::v1::ListKeysRequest());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->keys_size(), 0);

  StopKms();
  kms_identity_ = "kms";
  StartKms();
  EXPECT_TRUE(testing::WaitFor([&] { return key_service_->GenerateDataKey(kAlias, ctx_).ok(); },
                               absl::Seconds(10)));
}

class Recorder {
 public:
  void Record(bool up) {
    absl::MutexLock lock(&mu_);
    events_.push_back(up);
  }
  std::vector<bool> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  bool LastIs(bool up) const {
    absl::MutexLock lock(&mu_);
    return !events_.empty() && events_.back() == up;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<bool> events_;
};

TEST_F(KeyServiceTest, MonitorFollowsTheKms) {
  Recorder recorder;
  KmsMonitor monitor(channel_, absl::Milliseconds(100), [&](bool up) { recorder.Record(up); });
  EXPECT_FALSE(monitor.reachable());
  monitor.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.LastIs(true); }, absl::Seconds(5)));
  EXPECT_TRUE(monitor.reachable());

  StopKms();
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.LastIs(false); }, absl::Seconds(5)));
  EXPECT_FALSE(monitor.reachable());

  StartKms();  // same port; the channel reconnects after its backoff
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.LastIs(true); }, absl::Seconds(8)));
  EXPECT_TRUE(monitor.reachable());

  monitor.Stop();
  // One call per change, none for unchanged answers.
  EXPECT_EQ(recorder.events(), (std::vector<bool>{true, false, true}));
}

TEST_F(KeyServiceTest, MonitorReportsNotServing) {
  health_->Set("coffer.kms.v1.KeyManagement", false);
  KmsMonitor monitor(channel_, absl::Hours(1), nullptr);
  EXPECT_FALSE(monitor.CheckNow());
  health_->Set("coffer.kms.v1.KeyManagement", true);
  EXPECT_TRUE(monitor.CheckNow());
  EXPECT_TRUE(monitor.reachable());
}

TEST_F(KeyServiceTest, MonitorStopsPromptly) {
  Recorder recorder;
  KmsMonitor monitor(channel_, absl::Hours(1), [&](bool up) { recorder.Record(up); });
  monitor.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return !recorder.events().empty(); }, absl::Seconds(5)));
  const absl::Time start = absl::Now();
  monitor.Stop();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  monitor.Stop();  // idempotent
}

}  // namespace
}  // namespace coffer::store
