// KmsAccess: the identity policy on keys plus the rules no policy can widen
// (secrets contexts are the store's, built-in keys are Coffer's).
#include "services/kms/kms_access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "libs/common/errors.h"
#include "libs/crypto/secure_buffer.h"
#include "tests/testing/matchers.h"
#include "tests/testing/test_env.h"

namespace coffer::kms {
namespace {

using ::coffer::testing::HasReason;
using ::testing::HasSubstr;

constexpr char kStore[] = "spiffe://coffer.local/store";
constexpr char kAdmin[] = "spiffe://coffer.local/admin/cofferctl";
constexpr char kApp[] = "spiffe://coffer.local/app/catagram";

class KmsAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KeyManagerOptions options;
    options.db_path = dir_.Join("keystore");
    options.sync_writes = false;
    auto keys = KeyManager::Open(options, crypto::SecureBuffer::Random(32));
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = std::move(keys).value();
    auto policy = authz::Policy::Parse(R"({"statements": [
        {"effect": "Allow", "principals": ["spiffe://coffer.local/admin/*",
                                           "spiffe://coffer.local/store"],
         "actions": ["kms:*"], "resources": ["*"]},
        {"effect": "Allow", "principals": ["spiffe://coffer.local/app/catagram"],
         "actions": ["kms:Encrypt", "kms:Decrypt"], "resources": ["alias/catagram"],
         "condition": {"StringEquals": {"kms:EncryptionContext:app": "catagram"}}}]})",
                                       authz::Policy::kIdentity);
    ASSERT_TRUE(policy.ok()) << policy.status();
    authorizer_ = std::make_unique<authz::Authorizer>(std::move(policy).value());
    access_ = std::make_unique<KmsAccess>(keys_.get(), KmsAccessOptions{kStore});
  }

  authz::Access As(const std::string& principal) {
    return authz::Access(authorizer_.get(), principal);
  }

  KmsAccess::ProtoContext Context(std::initializer_list<std::pair<std::string, std::string>> kv) {
    KmsAccess::ProtoContext c;
    for (const auto& [k, v] : kv) c[k] = v;
    return c;
  }

  testing::TempDir dir_;
  std::unique_ptr<KeyManager> keys_;
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<KmsAccess> access_;
};

TEST_F(KmsAccessTest, OnlyTheStoreUsesSecretsAndParameterContexts) {
  for (const auto& context :
       {Context({{"SecretARN", "arn:coffer:secretsmanager:local:0:secret:x-AbCdEf"},
                 {"SecretVersionId", "v"}}),
        Context({{"PARAMETER_ARN", "arn:coffer:ssm:local:0:parameter/x"}})}) {
    for (const char* action :
         {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom"}) {
      absl::Status s = access_->Check(As(kAdmin), action, "alias/coffer/secretsmanager", &context);
      EXPECT_THAT(s, HasReason(reason::kAccessDenied)) << action;
      EXPECT_THAT(std::string(s.message()), HasSubstr("only coffer-store")) << action;
      EXPECT_TRUE(access_->Check(As(kStore), action, "alias/coffer/secretsmanager", &context).ok())
          << action;
    }
  }
  // The administrator may use its own contexts.
  auto mine = Context({{"purpose", "backup"}});
  EXPECT_TRUE(access_->Check(As(kAdmin), "kms:GenerateDataKey", "", &mine).ok());
}

TEST_F(KmsAccessTest, OnlyTheStoreCausesABuiltInKeysCreation) {
  auto context = Context({{"purpose", "x"}});
  EXPECT_THAT(access_->Check(As(kAdmin), "kms:GenerateDataKey", "alias/coffer/other", &context),
              HasReason(reason::kAccessDenied));
  EXPECT_TRUE(
      access_->Check(As(kStore), "kms:GenerateDataKey", "alias/coffer/other", &context).ok());
}

TEST_F(KmsAccessTest, BuiltInKeysAreCoffersAlone) {
  // First use by the store creates the built-in key.
  v1::GenerateDataKeyRequest gen;
  gen.set_key_id("alias/coffer/secretsmanager");
  gen.set_number_of_bytes(32);
  ASSERT_TRUE(keys_->GenerateDataKey(gen).ok());
  for (const char* action :
       {"kms:DisableKey", "kms:RotateKeyOnDemand", "kms:TagResource", "kms:UntagResource",
        "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion", "kms:DisableKeyRotation"}) {
    EXPECT_THAT(access_->Check(As(kAdmin), action, "alias/coffer/secretsmanager"),
                HasReason(reason::kAccessDenied))
        << action;
    EXPECT_THAT(access_->Check(authz::Access::Trusted(), action, "alias/coffer/secretsmanager"),
                HasReason(reason::kAccessDenied))
        << action;
  }
  EXPECT_TRUE(access_->Check(As(kAdmin), "kms:DescribeKey", "alias/coffer/secretsmanager").ok());
  // A customer key is the administrator's to disable.
  auto created = keys_->CreateKey(v1::CreateKeyRequest());
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(access_->Check(As(kAdmin), "kms:DisableKey", created->key_metadata().key_id()).ok());
}

TEST_F(KmsAccessTest, PoliciesNameKeysByAliasAndConditionsTestTheContext) {
  auto created = keys_->CreateKey(v1::CreateKeyRequest());
  ASSERT_TRUE(created.ok());
  v1::CreateAliasRequest alias;
  alias.set_alias_name("alias/catagram");
  alias.set_target_key_id(created->key_metadata().key_id());
  ASSERT_TRUE(keys_->CreateAlias(alias).ok());
  auto ours = Context({{"app", "catagram"}});
  auto theirs = Context({{"app", "other"}});
  EXPECT_TRUE(access_->Check(As(kApp), "kms:Encrypt", "alias/catagram", &ours).ok());
  EXPECT_THAT(access_->Check(As(kApp), "kms:Encrypt", "alias/catagram", &theirs),
              HasReason(reason::kAccessDenied));
  EXPECT_THAT(access_->Check(As(kApp), "kms:Encrypt", "alias/catagram"),
              HasReason(reason::kAccessDenied));
  // The same key by its id is not what the policy names.
  EXPECT_THAT(access_->Check(As(kApp), "kms:Encrypt", created->key_metadata().key_id(), &ours),
              HasReason(reason::kAccessDenied));
  EXPECT_THAT(access_->Check(As(kApp), "kms:ScheduleKeyDeletion", "alias/catagram"),
              HasReason(reason::kAccessDenied));
}

}  // namespace
}  // namespace coffer::kms
