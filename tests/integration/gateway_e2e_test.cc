// coffer-gateway end to end: the real kms, store and gateway, and the real
// AWS CLI and boto3 (tests/integration/aws_session.py) running a scripted
// session of Secrets Manager, SSM and KMS calls, each answer checked field
// by field, then the refusals, signed by botocore itself. Here: the keys
// the session uses, and what the audit logs say afterwards.
#include "absl/strings/str_cat.h"
#include "coffer/iam/v1/access_keys.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using ::testing::HasSubstr;
using testing::Invoke;
using ::testing::Not;
using testing::ServiceProcess;
namespace iamv1 = ::coffer::iam::v1;

class GatewayE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::StartKmsAndStore(dir_, {"--signing_key_ttl=1s"}, &kms_, &store_).ok())
        << (kms_ ? kms_->Output() : "") << (store_ ? store_->Output() : "");
    std::vector<std::string> args = {
        absl::StrCat("--store_address=localhost:", store_->ports().grpc),
        absl::StrCat("--kms_address=localhost:", kms_->ports().grpc)};
    testing::TlsArgs(testing::SharedPki().Identity("gateway"), &args);
    gateway_ = std::make_unique<ServiceProcess>("coffer-gateway", args);
    ASSERT_TRUE(gateway_->Start().ok()) << gateway_->Output();
    keys_ = iamv1::AccessKeys::NewStub(kms_->Channel("cofferctl"));
  }

  // "AKID:SECRET" of a new key for `identity`.
  std::string NewKey(const std::string& identity) {
    iamv1::CreateAccessKeyRequest request;
    request.set_identity(identity);
    iamv1::CreateAccessKeyResponse key;
    grpc::Status s = Invoke(keys_.get(), &iamv1::AccessKeys::Stub::CreateAccessKey, request, &key);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return key.access_key().access_key_id() + ":" + key.secret_access_key();
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_, store_, gateway_;
  std::unique_ptr<iamv1::AccessKeys::Stub> keys_;
};

TEST_F(GatewayE2ETest, TheAwsCliAndBoto3UseCofferUnchanged) {
  const std::string admin = NewKey("spiffe://coffer.local/admin/cofferctl");
  const std::string denied = NewKey("spiffe://coffer.local/app/other");
  const std::string disabled = NewKey("spiffe://coffer.local/app/catagram");
  iamv1::UpdateAccessKeyRequest disable;
  disable.set_access_key_id(disabled.substr(0, disabled.find(':')));
  disable.set_status(iamv1::ACCESS_KEY_STATUS_INACTIVE);
  iamv1::UpdateAccessKeyResponse updated;
  ASSERT_TRUE(
      Invoke(keys_.get(), &iamv1::AccessKeys::Stub::UpdateAccessKey, disable, &updated).ok());

  // Probes see a gRPC health-only port, plaintext.
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", gateway_->ports().health), grpc::InsecureChannelCredentials()));
  grpc::health::v1::HealthCheckResponse serving;
  ASSERT_TRUE(Invoke(health.get(), &grpc::health::v1::Health::Stub::Check,
                     grpc::health::v1::HealthCheckRequest(), &serving)
                  .ok());
  EXPECT_EQ(serving.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  testing::Subprocess session(
      {"/usr/bin/python3", testing::SourceDir() + "/tests/integration/aws_session.py", "--endpoint",
       absl::StrCat("https://127.0.0.1:", gateway_->ports().grpc), "--ca",
       testing::SharedPki().ca_file(), "--key", admin, "--denied-key", denied, "--disabled-key",
       disabled});
  ASSERT_TRUE(session.Start().ok());
  const int code = session.Wait(absl::Minutes(8));
  const std::string output = session.Output();
  EXPECT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr(" 0 failures")) << output;

  // Signed calls ran as the key's identity; refused ones are on record too.
  const std::string audit = testing::ReadAllFiles(store_->audit_dir());
  EXPECT_THAT(audit, HasSubstr("\"principal\":\"spiffe://coffer.local/admin/cofferctl\","
                               "\"action\":\"secretsmanager:GetSecretValue\""));
  EXPECT_THAT(audit, HasSubstr("\"principal\":\"spiffe://coffer.local/app/other\","
                               "\"action\":\"secretsmanager:GetSecretValue\""));
  EXPECT_THAT(audit, HasSubstr("\"code\":\"PERMISSION_DENIED\""));
  EXPECT_THAT(audit, HasSubstr("\"principal\":\"spiffe://coffer.local/gateway\","
                               "\"action\":\"secretsmanager:GetSecretValue\""));
  EXPECT_THAT(audit, HasSubstr("\"code\":\"UNAUTHENTICATED\""));
  EXPECT_THAT(testing::ReadAllFiles(kms_->audit_dir()),
              HasSubstr("\"principal\":\"spiffe://coffer.local/admin/cofferctl\","
                        "\"action\":\"kms:Encrypt\""));
  // No value or secret access key in any audit record or log.
  const std::string everything = audit + testing::ReadAllFiles(kms_->audit_dir()) +
                                 store_->Output() + kms_->Output() + gateway_->Output();
  for (const std::string& secret : {std::string("hunter2"), std::string("meow, in confidence"),
                                    admin.substr(admin.find(':') + 1)}) {
    EXPECT_THAT(everything, Not(HasSubstr(secret))) << secret;
  }
}

}  // namespace
}  // namespace coffer
