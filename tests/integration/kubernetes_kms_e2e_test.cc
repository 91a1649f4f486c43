// The real coffer-kms as a Kubernetes KMS v2 plugin: a gRPC client on the
// Unix socket does what the API server does (Status, Encrypt, Decrypt), an
// operator rotates the key over mTLS, and the plugin keeps opening what it
// sealed before the rotation and before a restart. Calls are authorized by
// the policy shipped for the plugin (deploy/k8s/kms-plugin/policy.json) and
// audited as the kubernetes-apiserver.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "k8s/kms/apis/v2/api.grpc.pb.h"
#include "tests/integration/http_get.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ServiceProcess;
namespace kmsv1 = ::coffer::kms::v1;

constexpr char kKey[] = "alias/kubernetes-secrets";

class KubernetesKmsE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(dir_.Join("run").c_str(), 0700), 0);
    rpc::TlsFiles tls = testing::SharedPki().Identity("kms");
    kms_ = std::make_unique<ServiceProcess>(
        "coffer-kms",
        std::vector<std::string>{
            "--data_dir=" + dir_.Join("kms"), "--dev_mode", "--tls_ca=" + tls.ca_file,
            "--tls_cert=" + tls.cert_file, "--tls_key=" + tls.key_file,
            "--kubernetes_kms_socket=" + socket_path(), std::string("--kubernetes_kms_key=") + kKey,
            "--policy_file=" + testing::SourceDir() + "/deploy/k8s/kms-plugin/policy.json"});
    ASSERT_TRUE(kms_->Start().ok()) << kms_->Output();
    admin_ = kmsv1::KeyManagement::NewStub(kms_->Channel("cofferctl"));
    Connect();
  }
  void TearDown() override {
    if (kms_->running()) EXPECT_EQ(kms_->Stop(), 0) << kms_->Output();
  }

  // As the API server: plaintext gRPC on unix://<socket>.
  void Connect() {
    plugin_ = ::v2::KeyManagementService::NewStub(
        grpc::CreateChannel("unix://" + socket_path(), grpc::InsecureChannelCredentials()));
  }
  std::string socket_path() const { return dir_.Join("run/kms.sock"); }

  template <typename Stub, typename Req, typename Resp, typename Call>
  static grpc::Status Invoke(Stub& stub, Call call, const Req& request, Resp* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub.*call)(&context, request, response);
  }
  grpc::Status Status(::v2::StatusResponse* status) {
    return Invoke(*plugin_, &::v2::KeyManagementService::Stub::Status, ::v2::StatusRequest(),
                  status);
  }
  ::v2::EncryptResponse Encrypt(const std::string& plaintext) {
    ::v2::EncryptRequest request;
    request.set_plaintext(plaintext);
    request.set_uid("4f1c7f0e-e2e");
    ::v2::EncryptResponse response;
    grpc::Status s =
        Invoke(*plugin_, &::v2::KeyManagementService::Stub::Encrypt, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  grpc::Status Decrypt(const ::v2::EncryptResponse& sealed, std::string* plaintext) {
    ::v2::DecryptRequest request;
    request.set_ciphertext(sealed.ciphertext());
    request.set_key_id(sealed.key_id());
    request.set_uid("4f1c7f0e-e2e");
    *request.mutable_annotations() = sealed.annotations();
    ::v2::DecryptResponse response;
    grpc::Status s =
        Invoke(*plugin_, &::v2::KeyManagementService::Stub::Decrypt, request, &response);
    *plaintext = response.plaintext();
    return s;
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_;
  std::unique_ptr<kmsv1::KeyManagement::Stub> admin_;
  std::unique_ptr<::v2::KeyManagementService::Stub> plugin_;
};

TEST_F(KubernetesKmsE2ETest, TheApiServerEncryptsWithACofferKeyThroughRotationsAndRestarts) {
  // The socket is the owner's alone.
  struct stat st {};
  ASSERT_EQ(::lstat(socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  // Until the operator makes the key, Status fails: the API server waits.
  ::v2::StatusResponse status;
  EXPECT_EQ(Status(&status).error_code(), grpc::StatusCode::NOT_FOUND);

  kmsv1::CreateKeyRequest create;
  create.set_description("Kubernetes Secrets in etcd");
  kmsv1::CreateKeyResponse key;
  ASSERT_TRUE(Invoke(*admin_, &kmsv1::KeyManagement::Stub::CreateKey, create, &key).ok());
  const std::string arn = key.key_metadata().arn();
  kmsv1::CreateAliasRequest alias;
  alias.set_alias_name(kKey);
  alias.set_target_key_id(key.key_metadata().key_id());
  kmsv1::CreateAliasResponse aliased;
  ASSERT_TRUE(Invoke(*admin_, &kmsv1::KeyManagement::Stub::CreateAlias, alias, &aliased).ok());

  ASSERT_TRUE(Status(&status).ok());
  EXPECT_EQ(status.version(), "v2");
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_EQ(status.key_id(), arn + ":v1");

  const std::string seed_one(32, '\x11');
  const ::v2::EncryptResponse one = Encrypt(seed_one);
  EXPECT_EQ(one.key_id(), status.key_id());
  std::string opened;
  ASSERT_TRUE(Decrypt(one, &opened).ok());
  EXPECT_EQ(opened, seed_one);

  // The operator manages the key but cannot open what the API server
  // sealed, even naming the plugin's context.
  kmsv1::DecryptRequest peek;
  peek.set_ciphertext_blob(one.ciphertext());
  (*peek.mutable_encryption_context())["coffer:kubernetes-kms"] = "v2";
  kmsv1::DecryptResponse peeked;
  EXPECT_EQ(Invoke(*admin_, &kmsv1::KeyManagement::Stub::Decrypt, peek, &peeked).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // The operator rotates: Status reports a new key_id (the API server then
  // wraps new seeds under it), and the old ciphertext still opens.
  kmsv1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id(kKey);
  kmsv1::RotateKeyOnDemandResponse rotated;
  ASSERT_TRUE(
      Invoke(*admin_, &kmsv1::KeyManagement::Stub::RotateKeyOnDemand, rotate, &rotated).ok());
  ::v2::StatusResponse after;
  ASSERT_TRUE(Status(&after).ok());
  EXPECT_EQ(after.key_id(), arn + ":v2");
  const std::string seed_two(32, '\x22');
  const ::v2::EncryptResponse two = Encrypt(seed_two);
  EXPECT_EQ(two.key_id(), after.key_id());
  ASSERT_TRUE(Decrypt(one, &opened).ok());
  EXPECT_EQ(opened, seed_one);

  // Malformed and oversized requests are refused, naming the field.
  ::v2::EncryptResponse garbage = one;
  garbage.set_ciphertext(std::string(64, '\x7f'));
  EXPECT_EQ(Decrypt(garbage, &opened).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ::v2::EncryptResponse oversized = one;
  oversized.set_ciphertext(std::string(2048, 'c'));
  grpc::Status refused = Decrypt(oversized, &opened);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("ciphertext: is 2048 bytes"));

  // After a restart both generations open and the key_id is unchanged.
  ASSERT_TRUE(kms_->Restart().ok()) << kms_->Output();
  Connect();
  ASSERT_TRUE(Status(&status).ok());
  EXPECT_EQ(status.key_id(), arn + ":v2");
  ASSERT_TRUE(Decrypt(one, &opened).ok());
  EXPECT_EQ(opened, seed_one);
  ASSERT_TRUE(Decrypt(two, &opened).ok());
  EXPECT_EQ(opened, seed_two);

  // Audited as the API server's identity; no seed in the audit log; the
  // plugin's calls appear in the gRPC metrics.
  const std::string audit = testing::ReadAllFiles(kms_->audit_dir());
  for (const char* action : {"kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"}) {
    EXPECT_THAT(audit, HasSubstr(absl::StrCat(
                           "\"principal\":\"spiffe://coffer.local/kubernetes-apiserver\","
                           "\"action\":\"",
                           action, "\"")))
        << action;
  }
  EXPECT_THAT(audit, Not(HasSubstr(seed_one)));
  auto metrics = testing::HttpGet(kms_->ports().metrics, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(*metrics, HasSubstr("grpc_service=\"v2.KeyManagementService\""));
}

TEST_F(KubernetesKmsE2ETest, RefusesToStartWithoutAKeyOrOnAnotherProcesssSocket) {
  rpc::TlsFiles tls = testing::SharedPki().Identity("kms");
  const std::vector<std::string> base = {"--dev_mode", "--tls_ca=" + tls.ca_file,
                                         "--tls_cert=" + tls.cert_file,
                                         "--tls_key=" + tls.key_file};
  auto with = [&](const std::string& data, std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.push_back("--data_dir=" + dir_.Join(data));
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ServiceProcess>("coffer-kms", args);
  };
  auto keyless = with("keyless", {"--kubernetes_kms_socket=" + dir_.Join("run/other.sock")});
  absl::Status s = keyless->Start();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(keyless->Output(), HasSubstr("--kubernetes_kms_key is required"));

  // The running KMS keeps its socket.
  auto second = with("second", {"--kubernetes_kms_socket=" + socket_path(),
                                std::string("--kubernetes_kms_key=") + kKey});
  EXPECT_FALSE(second->Start().ok());
  EXPECT_THAT(second->Output(), HasSubstr("another process listens on it"));
  ::v2::StatusResponse status;
  EXPECT_EQ(Status(&status).error_code(), grpc::StatusCode::NOT_FOUND);  // still the first
}

}  // namespace
}  // namespace coffer
