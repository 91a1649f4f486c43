// KubernetesKmsPlugin over a real Unix socket, called as the API server
// calls it: Status, Encrypt and Decrypt; rotation changes the key_id while
// old ciphertexts still open; the API server's limits; authorization and the
// audit record as the kubernetes-apiserver identity; the socket's mode and
// the refusals of StartUnixSocketServer.
#include "services/kms/kubernetes_plugin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "libs/audit/audit_log.h"
#include "libs/authz/authorizer.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/unix_socket_server.h"
#include "tests/testing/test_env.h"

namespace coffer::kms {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kApiServer[] = "spiffe://coffer.local/kubernetes-apiserver";
constexpr char kKey[] = "alias/kubernetes";

// The API server may describe its key and use it, and only with the
// plugin's encryption context.
constexpr char kPolicy[] = R"({"statements": [
    {"effect": "Allow", "principals": ["spiffe://coffer.local/kubernetes-apiserver"],
     "actions": ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"], "resources": ["*"],
     "condition": {"StringEquals": {"kms:EncryptionContext:coffer:kubernetes-kms": "v2"}}},
    {"effect": "Allow", "principals": ["spiffe://coffer.local/kubernetes-apiserver"],
     "actions": ["kms:DescribeKey"], "resources": ["alias/kubernetes"]}]})";

class KubernetesPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KeyManagerOptions options;
    options.db_path = dir_.Join("keystore");
    options.sync_writes = false;
    auto keys = KeyManager::Open(options, crypto::SecureBuffer::Random(32));
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = std::move(keys).value();
    auto key = keys_->CreateKey(v1::CreateKeyRequest());
    ASSERT_TRUE(key.ok()) << key.status();
    key_arn_ = key->key_metadata().arn();
    v1::CreateAliasRequest alias;
    alias.set_alias_name(kKey);
    alias.set_target_key_id(key->key_metadata().key_id());
    ASSERT_TRUE(keys_->CreateAlias(alias).ok());

    auto policy = authz::Policy::Parse(kPolicy, authz::Policy::kIdentity);
    ASSERT_TRUE(policy.ok()) << policy.status();
    authorizer_ = std::make_unique<authz::Authorizer>(std::move(policy).value());
    audit::AuditOptions audit_options;
    audit_options.dir = dir_.Join("audit");
    audit_options.service = "kms";
    auto audit = audit::AuditLog::Open(audit_options);
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(audit).value();
    access_ = std::make_unique<KmsAccess>(keys_.get(), KmsAccessOptions{});
    gate_ = std::make_unique<runtime::CallGate>(authorizer_.get(), audit_.get(), nullptr);
    Serve(kApiServer);
  }

  // (Re)starts the plugin with every call acting as `principal`.
  void Serve(const std::string& principal) {
    server_.reset();
    stub_.reset();
    plugin_gate_ = std::make_unique<runtime::CallGate>(*gate_, principal);
    plugin_ = std::make_unique<KubernetesKmsPlugin>(keys_.get(), access_.get(), plugin_gate_.get(),
                                                    nullptr, kKey);
    rpc::UnixSocketServerOptions options;
    options.path = socket_path();
    options.max_receive_message_bytes = KubernetesKmsPlugin::kMaxRequestBytes;
    auto server = rpc::StartUnixSocketServer(std::move(options), {plugin_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    stub_ = ::v2::KeyManagementService::NewStub(
        grpc::CreateChannel("unix:" + socket_path(), grpc::InsecureChannelCredentials()));
  }

  std::string socket_path() const { return dir_.Join("kms.sock"); }

  grpc::Status Status(::v2::StatusResponse* response) {
    grpc::ClientContext context;
    return stub_->Status(&context, ::v2::StatusRequest(), response);
  }
  grpc::Status Encrypt(const std::string& plaintext, ::v2::EncryptResponse* response,
                       const std::string& uid = "0b7e7a3c-uid") {
    grpc::ClientContext context;
    ::v2::EncryptRequest request;
    request.set_plaintext(plaintext);
    request.set_uid(uid);
    return stub_->Encrypt(&context, request, response);
  }
  grpc::Status Decrypt(const ::v2::DecryptRequest& request, ::v2::DecryptResponse* response) {
    grpc::ClientContext context;
    return stub_->Decrypt(&context, request, response);
  }
  static ::v2::DecryptRequest DecryptRequestFor(const ::v2::EncryptResponse& encrypted) {
    ::v2::DecryptRequest request;
    request.set_ciphertext(encrypted.ciphertext());
    request.set_key_id(encrypted.key_id());
    request.set_uid("0b7e7a3c-uid");
    *request.mutable_annotations() = encrypted.annotations();
    return request;
  }

  void Rotate() {
    v1::RotateKeyOnDemandRequest rotate;
    rotate.set_key_id(kKey);
    ASSERT_TRUE(keys_->RotateKeyOnDemand(rotate).ok());
  }

  std::string AuditText() { return testing::ReadFile(audit_->current_file()); }

  testing::TempDir dir_;
  std::unique_ptr<KeyManager> keys_;
  std::string key_arn_;
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<KmsAccess> access_;
  std::unique_ptr<runtime::CallGate> gate_;
  std::unique_ptr<runtime::CallGate> plugin_gate_;
  std::unique_ptr<KubernetesKmsPlugin> plugin_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<::v2::KeyManagementService::Stub> stub_;
};

TEST_F(KubernetesPluginTest, StatusEncryptDecryptAndANewKeyIdAfterRotation) {
  ::v2::StatusResponse status;
  ASSERT_TRUE(Status(&status).ok());
  EXPECT_EQ(status.version(), "v2");
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_EQ(status.key_id(), key_arn_ + ":v1");

  const std::string seed(32, '\x5a');
  ::v2::EncryptResponse first;
  ASSERT_TRUE(Encrypt(seed, &first).ok());
  EXPECT_EQ(first.key_id(), status.key_id());
  EXPECT_LE(first.ciphertext().size(), KubernetesKmsPlugin::kMaxCiphertextBytes);
  EXPECT_THAT(first.ciphertext(), Not(HasSubstr(seed)));
  ::v2::DecryptResponse opened;
  ASSERT_TRUE(Decrypt(DecryptRequestFor(first), &opened).ok());
  EXPECT_EQ(opened.plaintext(), seed);

  // The largest plaintext still makes a ciphertext the API server accepts.
  ::v2::EncryptResponse largest;
  ASSERT_TRUE(Encrypt(std::string(KubernetesKmsPlugin::kMaxPlaintextBytes, 'x'), &largest).ok());
  EXPECT_LE(largest.ciphertext().size(), KubernetesKmsPlugin::kMaxCiphertextBytes);

  Rotate();
  ::v2::StatusResponse rotated;
  ASSERT_TRUE(Status(&rotated).ok());
  EXPECT_EQ(rotated.key_id(), key_arn_ + ":v2");
  EXPECT_NE(rotated.key_id(), status.key_id());
  ::v2::EncryptResponse second;
  ASSERT_TRUE(Encrypt("another seed", &second).ok());
  EXPECT_EQ(second.key_id(), rotated.key_id());
  // Both generations open.
  ASSERT_TRUE(Decrypt(DecryptRequestFor(first), &opened).ok());
  EXPECT_EQ(opened.plaintext(), seed);
  ASSERT_TRUE(Decrypt(DecryptRequestFor(second), &opened).ok());
  EXPECT_EQ(opened.plaintext(), "another seed");
}

TEST_F(KubernetesPluginTest, StatusIsUnhealthyWhileTheKeyIsDisabled) {
  v1::DisableKeyRequest disable;
  disable.set_key_id(kKey);
  ASSERT_TRUE(keys_->DisableKey(disable).ok());
  ::v2::StatusResponse status;
  ASSERT_TRUE(Status(&status).ok());
  EXPECT_EQ(status.healthz(), "key alias/kubernetes is disabled");
  ::v2::EncryptResponse encrypted;
  EXPECT_EQ(Encrypt("seed", &encrypted).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(KubernetesPluginTest, RefusesOversizedAndMalformedRequestsNamingTheField) {
  ::v2::EncryptResponse good;
  ASSERT_TRUE(Encrypt("seed", &good).ok());
  struct Case {
    std::string name;
    std::function<void(::v2::DecryptRequest&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty ciphertext", [](auto& r) { r.clear_ciphertext(); }, "ciphertext: must not be empty"},
      {"1025-byte ciphertext", [](auto& r) { r.set_ciphertext(std::string(1025, 'c')); },
       "ciphertext: is 1025 bytes"},
      {"empty key_id", [](auto& r) { r.clear_key_id(); }, "key_id: must not be empty"},
      {"1025-byte key_id", [](auto& r) { r.set_key_id(std::string(1025, 'k')); },
       "key_id: is 1025 bytes"},
      {"257-char uid", [](auto& r) { r.set_uid(std::string(257, 'u')); }, "uid: is 257 bytes"},
      {"annotations over 32 KiB",
       [](auto& r) { (*r.mutable_annotations())["a.example.com"] = std::string(32 * 1024, 'a'); },
       "annotations: is 32781 bytes"},
  };
  for (const Case& c : cases) {
    ::v2::DecryptRequest request = DecryptRequestFor(good);
    c.edit(request);
    ::v2::DecryptResponse response;
    grpc::Status s = Decrypt(request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(s.error_message(), HasSubstr(c.field)) << c.name;
  }
  // Exactly at the limits is fine.
  ::v2::DecryptRequest at_limits = DecryptRequestFor(good);
  (*at_limits.mutable_annotations())["a.example.com"] = std::string(32 * 1024 - 13, 'a');
  at_limits.set_uid(std::string(256, 'u'));
  ::v2::DecryptResponse opened;
  EXPECT_TRUE(Decrypt(at_limits, &opened).ok());

  // Garbage, a flipped bit, and a ciphertext made outside the plugin (no
  // plugin context) do not open, and say nothing about why.
  std::string flipped = good.ciphertext();
  flipped[flipped.size() - 3] ^= 0x10;
  v1::EncryptRequest outside;
  outside.set_key_id(kKey);
  outside.set_plaintext("seed");
  auto made_outside = keys_->Encrypt(outside);
  ASSERT_TRUE(made_outside.ok());
  for (const std::string& blob :
       {std::string(100, '\x01'), flipped, made_outside->ciphertext_blob()}) {
    ::v2::DecryptRequest request = DecryptRequestFor(good);
    request.set_ciphertext(blob);
    grpc::Status s = Decrypt(request, &opened);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  ::v2::EncryptResponse encrypted;
  grpc::Status empty = Encrypt("", &encrypted);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.error_message(), HasSubstr("plaintext: must not be empty"));
  grpc::Status big = Encrypt(std::string(513, 'p'), &encrypted);
  EXPECT_EQ(big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(big.error_message(), HasSubstr("plaintext: is 513 bytes"));
  // Beyond the request size gRPC refuses before the plugin sees it.
  EXPECT_EQ(
      Encrypt(std::string(KubernetesKmsPlugin::kMaxRequestBytes, 'p'), &encrypted).error_code(),
      grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(KubernetesPluginTest, CallsAreAuthorizedAndAuditedAsTheApiServer) {
  const std::string seed = "seed-that-never-reaches-the-audit-log";
  ::v2::EncryptResponse encrypted;
  ASSERT_TRUE(Encrypt(seed, &encrypted).ok());
  ::v2::DecryptResponse opened;
  ASSERT_TRUE(Decrypt(DecryptRequestFor(encrypted), &opened).ok());
  ::v2::StatusResponse status;
  ASSERT_TRUE(Status(&status).ok());
  const std::string audit = AuditText();
  for (const char* action : {"kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"}) {
    EXPECT_THAT(audit, HasSubstr(absl::StrCat("\"principal\":\"", kApiServer, "\",\"action\":\"",
                                              action, "\"")))
        << action;
  }
  EXPECT_THAT(audit, Not(HasSubstr(seed)));

  // Another identity on the same socket has no permission.
  Serve("spiffe://coffer.local/app/intruder");
  grpc::Status denied = Encrypt(seed, &encrypted);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status(&status).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(AuditText(),
              HasSubstr(absl::StrCat("\"principal\":\"spiffe://coffer.local/app/intruder\","
                                     "\"action\":\"kms:Encrypt\",\"resource\":\"",
                                     key_arn_, "\",\"code\":\"PERMISSION_DENIED\"")));
}

TEST_F(KubernetesPluginTest, TheSocketIsTheOwnersAloneAndIsNeverStolen) {
  struct stat st {};
  ASSERT_EQ(::lstat(socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  auto start = [](const std::string& path) {
    rpc::UnixSocketServerOptions options;
    options.path = path;
    return rpc::StartUnixSocketServer(std::move(options), {}).status();
  };
  absl::Status in_use = start(socket_path());
  EXPECT_EQ(in_use.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(in_use.message()), HasSubstr("another process listens on it"));
  // The live server still answers.
  ::v2::StatusResponse status;
  EXPECT_TRUE(Status(&status).ok());

  // A stale socket (its server gone) is replaced.
  server_->Shutdown();
  server_.reset();
  Serve(kApiServer);
  EXPECT_TRUE(Status(&status).ok());

  std::ofstream(dir_.Join("regular")) << "not a socket";
  absl::Status regular = start(dir_.Join("regular"));
  EXPECT_EQ(regular.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(regular.message()), HasSubstr("is not a socket"));
  EXPECT_EQ(testing::ReadFile(dir_.Join("regular")), "not a socket");

  ASSERT_EQ(::mkdir(dir_.Join("open").c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir_.Join("open").c_str(), 0777), 0);
  absl::Status open_dir = start(dir_.Join("open/kms.sock"));
  EXPECT_EQ(open_dir.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(open_dir.message()), HasSubstr("without the sticky bit"));

  EXPECT_EQ(start("relative/kms.sock").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(start("/" + std::string(120, 'p')).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(start(dir_.Join("missing/kms.sock")).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace coffer::kms
