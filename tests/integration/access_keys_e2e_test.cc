// Access keys end to end, with the real coffer-kms and coffer-store: an
// administrator makes a key for an identity; calls the gateway makes with a
// SigV4 signature of that key run, in the store and in the KMS, as that
// identity — by its policy, in the audit log under its name; the gateway's
// certificate alone can do nothing; a disabled key stops working within the
// store's signing-key TTL; only coffer-store gets signing keys.
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "coffer/iam/v1/access_keys.grpc.pb.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/runtime/signed_callers.h"
#include "libs/sigv4/sigv4.h"
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
namespace kmsv1 = ::coffer::kms::v1;
namespace sm = ::coffer::secrets::v1;

constexpr char kCatagram[] = "spiffe://coffer.local/app/catagram";

class AccessKeysE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::StartKmsAndStore(dir_, {"--signing_key_ttl=1s"}, &kms_, &store_).ok())
        << (kms_ ? kms_->Output() : "") << (store_ ? store_->Output() : "");
    keys_admin_ = iamv1::AccessKeys::NewStub(kms_->Channel("cofferctl"));
    secrets_admin_ = sm::SecretsManager::NewStub(store_->Channel("cofferctl"));
    secrets_gateway_ = sm::SecretsManager::NewStub(store_->Channel("gateway"));
    kms_gateway_ = kmsv1::KeyManagement::NewStub(kms_->Channel("gateway"));
  }

  // The metadata the gateway forwards for `target`, signed with `secret`.
  static void Sign(grpc::ClientContext& context, const std::string& akid, const std::string& secret,
                   const std::string& target, const std::string& service, const std::string& body) {
    std::vector<sigv4::HttpHeader> headers = {{"Content-Type", "application/x-amz-json-1.1"},
                                              {"Host", "127.0.0.1:7704"},
                                              {"X-Amz-Target", target}};
    sigv4::HttpRequestView request{"POST", "/", "", headers, body};
    auto auth_headers = sigv4::SignRequest(request, {akid, secret, "local", service, absl::Now()});
    ASSERT_TRUE(auth_headers.ok()) << auth_headers.status();
    headers.push_back({"X-Amz-Date", auth_headers->x_amz_date});
    request.headers = headers;
    auto auth = sigv4::ParseAuthorization(auth_headers->authorization);
    ASSERT_TRUE(auth.ok());
    auto canonical = sigv4::CanonicalRequest(request, auth->signed_headers);
    ASSERT_TRUE(canonical.ok()) << canonical.status();
    context.AddMetadata(runtime::kSigV4AuthorizationMetadata, auth_headers->authorization);
    context.AddMetadata(runtime::kSigV4DateMetadata, auth_headers->x_amz_date);
    context.AddMetadata(runtime::kSigV4CanonicalRequestMetadata, *canonical);
  }

  grpc::Status GetAsGateway(const std::string& akid, const std::string& secret,
                            const std::string& secret_id, std::string* value,
                            const std::string& target = "secretsmanager.GetSecretValue") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!akid.empty()) {
      Sign(context, akid, secret, target, "secretsmanager",
           absl::StrCat(R"({"SecretId":")", secret_id, R"("})"));
    }
    sm::GetSecretValueRequest request;
    request.set_secret_id(secret_id);
    sm::GetSecretValueResponse response;
    grpc::Status s = secrets_gateway_->GetSecretValue(&context, request, &response);
    *value = response.secret_string();
    return s;
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_, store_;
  std::unique_ptr<iamv1::AccessKeys::Stub> keys_admin_;
  std::unique_ptr<sm::SecretsManager::Stub> secrets_admin_, secrets_gateway_;
  std::unique_ptr<kmsv1::KeyManagement::Stub> kms_gateway_;
};

TEST_F(AccessKeysE2ETest, SignedCallsRunAsTheKeysIdentityAndNothingElseDoes) {
  sm::CreateSecretRequest create;
  create.set_name("demo/catagram/aws");
  create.set_secret_string("meow-credential");
  sm::CreateSecretResponse created;
  ASSERT_TRUE(
      Invoke(secrets_admin_.get(), &sm::SecretsManager::Stub::CreateSecret, create, &created).ok());
  create.set_name("demo/other/aws");
  ASSERT_TRUE(
      Invoke(secrets_admin_.get(), &sm::SecretsManager::Stub::CreateSecret, create, &created).ok());

  iamv1::CreateAccessKeyRequest make;
  make.set_identity(kCatagram);
  iamv1::CreateAccessKeyResponse key;
  ASSERT_TRUE(
      Invoke(keys_admin_.get(), &iamv1::AccessKeys::Stub::CreateAccessKey, make, &key).ok());
  const std::string akid = key.access_key().access_key_id();
  const std::string secret = key.secret_access_key();

  // As Catagram: its own secret, not another's (its policy).
  std::string value;
  grpc::Status s = GetAsGateway(akid, secret, "demo/catagram/aws", &value);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(value, "meow-credential");
  EXPECT_EQ(GetAsGateway(akid, secret, "demo/other/aws", &value).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The gateway alone, a wrong secret, a signature for another operation.
  EXPECT_EQ(GetAsGateway("", "", "demo/catagram/aws", &value).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(
      GetAsGateway(akid, "not-the-secret-access-key-of-this-key!!", "demo/catagram/aws", &value)
          .error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetAsGateway(akid, secret, "demo/catagram/aws", &value, "secretsmanager.DeleteSecret")
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // The KMS verifies the same way (Catagram may not use KMS keys itself).
  grpc::ClientContext kms_context;
  Sign(kms_context, akid, secret, "TrentService.ListKeys", "kms", "{}");
  kmsv1::ListKeysResponse listed;
  EXPECT_EQ(kms_gateway_->ListKeys(&kms_context, kmsv1::ListKeysRequest(), &listed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Audited under Catagram's name, never the secret access key.
  const std::string audit = testing::ReadAllFiles(store_->audit_dir());
  EXPECT_THAT(audit, HasSubstr(absl::StrCat("\"principal\":\"", kCatagram,
                                            "\",\"action\":\"secretsmanager:GetSecretValue\"")));
  EXPECT_THAT(audit + testing::ReadAllFiles(kms_->audit_dir()), Not(HasSubstr(secret)));
  EXPECT_THAT(
      testing::ReadAllFiles(kms_->audit_dir()),
      HasSubstr(absl::StrCat("\"principal\":\"", kCatagram, "\",\"action\":\"kms:ListKeys\"")));

  // Disabled: refused once the store's signing key expires (1 s here).
  iamv1::UpdateAccessKeyRequest disable;
  disable.set_access_key_id(akid);
  disable.set_status(iamv1::ACCESS_KEY_STATUS_INACTIVE);
  iamv1::UpdateAccessKeyResponse updated;
  ASSERT_TRUE(
      Invoke(keys_admin_.get(), &iamv1::AccessKeys::Stub::UpdateAccessKey, disable, &updated).ok());
  absl::SleepFor(absl::Milliseconds(1100));
  s = GetAsGateway(akid, secret, "demo/catagram/aws", &value);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("security token included in the request is invalid"));
}

TEST_F(AccessKeysE2ETest, OnlyTheStoreGetsSigningKeysAndSecretsAreShownOnce) {
  iamv1::CreateAccessKeyRequest make;
  make.set_identity(kCatagram);
  iamv1::CreateAccessKeyResponse key;
  ASSERT_TRUE(
      Invoke(keys_admin_.get(), &iamv1::AccessKeys::Stub::CreateAccessKey, make, &key).ok());
  iamv1::GetSigningKeyRequest get;
  get.set_access_key_id(key.access_key().access_key_id());
  get.set_date(absl::FormatTime("%Y%m%d", absl::Now(), absl::UTCTimeZone()));
  get.set_region("local");
  get.set_service("secretsmanager");
  iamv1::GetSigningKeyResponse signing;
  for (const char* who : {"cofferctl", "app-catagram"}) {
    auto stub = iamv1::AccessKeys::NewStub(kms_->Channel(who));
    EXPECT_EQ(
        Invoke(stub.get(), &iamv1::AccessKeys::Stub::GetSigningKey, get, &signing).error_code(),
        grpc::StatusCode::PERMISSION_DENIED)
        << who;
  }
  // The gateway, unsigned, is nobody.
  auto as_gateway = iamv1::AccessKeys::NewStub(kms_->Channel("gateway"));
  EXPECT_EQ(
      Invoke(as_gateway.get(), &iamv1::AccessKeys::Stub::GetSigningKey, get, &signing).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  auto as_store = iamv1::AccessKeys::NewStub(kms_->Channel("store"));
  ASSERT_TRUE(Invoke(as_store.get(), &iamv1::AccessKeys::Stub::GetSigningKey, get, &signing).ok());
  EXPECT_EQ(signing.identity(), kCatagram);
  EXPECT_EQ(signing.signing_key().size(), 32u);

  iamv1::ListAccessKeysResponse listed;
  ASSERT_TRUE(Invoke(keys_admin_.get(), &iamv1::AccessKeys::Stub::ListAccessKeys,
                     iamv1::ListAccessKeysRequest(), &listed)
                  .ok());
  ASSERT_EQ(listed.access_keys_size(), 1);
  EXPECT_THAT(listed.DebugString(), Not(HasSubstr(key.secret_access_key())));
  // The KMS restarts; the key is still there, still sealed.
  ASSERT_TRUE(kms_->Restart().ok());
  ASSERT_TRUE(Invoke(as_store.get(), &iamv1::AccessKeys::Stub::GetSigningKey, get, &signing).ok());
}

}  // namespace
}  // namespace coffer
