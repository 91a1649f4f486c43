// AccessKeyStore: access keys made, listed, turned off and on, deleted;
// the secret shown once and on disk only sealed; signing keys as SigV4
// derives them; IAM's limits; every malformed field named.
#include "services/kms/access_keys.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "libs/common/errors.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/sigv4/digest.h"
#include "libs/sigv4/sigv4_error.h"
#include "services/kms/kms_access.h"
#include "tests/testing/matchers.h"
#include "tests/testing/test_env.h"

namespace coffer::kms {
namespace {

using ::coffer::testing::HasReason;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
namespace iamv1 = ::coffer::iam::v1;

constexpr char kAlice[] = "spiffe://coffer.local/admin/alice";
constexpr char kApp[] = "spiffe://coffer.local/app/catagram";

// Every byte of every file under `dir`.
std::string AllFiles(const std::string& dir) {
  std::string all;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return all;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    if (e->d_type == DT_DIR) {
      all += AllFiles(path);
    } else {
      all += testing::ReadFile(path);
    }
  }
  ::closedir(d);
  return all;
}

class AccessKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KeyManagerOptions options;
    options.db_path = dir_.Join("keystore");
    options.clock = &clock_;
    auto keys = KeyManager::Open(options, crypto::SecureBuffer::Copy(std::string(32, 'r')));
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = std::move(keys).value();
    Reopen();
  }

  void Reopen() {
    store_.reset();
    AccessKeyStoreOptions options;
    options.db_path = dir_.Join("access_keys");
    options.clock = &clock_;
    options.reserved_identities = {"spiffe://coffer.local/store", "spiffe://coffer.local/gateway"};
    auto store = AccessKeyStore::Open(options, keys_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  iamv1::CreateAccessKeyResponse Create(const std::string& identity) {
    iamv1::CreateAccessKeyRequest request;
    request.set_identity(identity);
    request.set_description("for the AWS CLI");
    auto created = store_->CreateAccessKey(request);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : iamv1::CreateAccessKeyResponse();
  }

  absl::StatusOr<iamv1::GetSigningKeyResponse> SigningKey(const std::string& id,
                                                          const std::string& date = "20261130") {
    iamv1::GetSigningKeyRequest request;
    request.set_access_key_id(id);
    request.set_date(date);
    request.set_region("local");
    request.set_service("secretsmanager");
    return store_->GetSigningKey(request);
  }

  absl::Status SetStatus(const std::string& id, iamv1::AccessKeyStatus status) {
    iamv1::UpdateAccessKeyRequest request;
    request.set_access_key_id(id);
    request.set_status(status);
    return store_->UpdateAccessKey(request).status();
  }

  testing::TempDir dir_;
  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2026, 11, 30, 12, 0, 0), absl::UTCTimeZone())};
  std::unique_ptr<KeyManager> keys_;
  std::unique_ptr<AccessKeyStore> store_;
};

TEST_F(AccessKeysTest, TheSecretIsShownOnceAndKeptOnlySealed) {
  const iamv1::CreateAccessKeyResponse created = Create(kAlice);
  const std::string id = created.access_key().access_key_id();
  const std::string secret = created.secret_access_key();
  EXPECT_THAT(id, MatchesRegex("AKCO[A-Z2-7]{16}"));
  EXPECT_EQ(secret.size(), 40u);
  std::string raw;
  EXPECT_TRUE(absl::Base64Unescape(secret, &raw));
  EXPECT_EQ(raw.size(), 30u);
  EXPECT_EQ(created.access_key().identity(), kAlice);
  EXPECT_EQ(created.access_key().status(), iamv1::ACCESS_KEY_STATUS_ACTIVE);
  EXPECT_EQ(created.access_key().description(), "for the AWS CLI");
  EXPECT_EQ(created.access_key().create_date().seconds(), absl::ToUnixSeconds(clock_.Now()));

  // Listing never shows it; neither does anything on disk (after a flush
  // and a reopen, so the data is in the files, not only the WAL).
  auto listed = store_->ListAccessKeys(iamv1::ListAccessKeysRequest());
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->access_keys_size(), 1);
  EXPECT_EQ(listed->access_keys(0).access_key_id(), id);
  EXPECT_THAT(listed->DebugString(), Not(HasSubstr(secret)));
  Reopen();
  ASSERT_TRUE(keys_->database()->Flush().ok());
  EXPECT_THAT(AllFiles(dir_.Join("access_keys")), Not(HasSubstr(secret)));
  EXPECT_THAT(AllFiles(dir_.Join("access_keys")), HasSubstr(id));  // the record is there

  // The signing key is the one SigV4 derives from the secret, for the
  // identity; the key survives the reopen.
  auto signing = SigningKey(id);
  ASSERT_TRUE(signing.ok()) << signing.status();
  EXPECT_EQ(signing->identity(), kAlice);
  crypto::SecureBuffer expected =
      sigv4::DeriveSigningKey(secret, {"20261130", "local", "secretsmanager"});
  EXPECT_EQ(signing->signing_key(),
            std::string(reinterpret_cast<const char*>(expected.data()), expected.size()));
  EXPECT_NE(signing->signing_key(), SigningKey(id, "20261129")->signing_key());
}

TEST_F(AccessKeysTest, NoCallerOpensASealedSecretThroughTheKmsApi) {
  auto policy = authz::Policy::Parse(
      R"({"statements": [{"effect": "Allow", "principals": ["*"], "actions": ["*"],
                          "resources": ["*"]}]})",
      authz::Policy::kIdentity);
  ASSERT_TRUE(policy.ok());
  authz::Authorizer authorizer(std::move(policy).value());
  KmsAccess guard(keys_.get(), {"spiffe://coffer.local/store"});
  KmsAccess::ProtoContext context;
  context[kAccessKeyContextKey] = Create(kAlice).access_key().access_key_id();
  for (const char* who : {"spiffe://coffer.local/store", kAlice}) {
    for (const char* action : {"kms:Decrypt", "kms:ReEncryptFrom", "kms:Encrypt"}) {
      EXPECT_THAT(
          guard.Check(authz::Access(&authorizer, who), action, kAccessKeySealingKey, &context),
          HasReason(reason::kAccessDenied))
          << who << " " << action;
    }
  }
}

TEST_F(AccessKeysTest, InactiveAndDeletedKeysSignNothing) {
  const std::string id = Create(kApp).access_key().access_key_id();
  ASSERT_TRUE(SigningKey(id).ok());
  ASSERT_TRUE(SetStatus(id, iamv1::ACCESS_KEY_STATUS_INACTIVE).ok());
  EXPECT_THAT(SigningKey(id).status(), HasReason(sigv4::reason::kUnrecognizedClient));
  Reopen();  // the status is durable
  EXPECT_THAT(SigningKey(id).status(), HasReason(sigv4::reason::kUnrecognizedClient));
  ASSERT_TRUE(SetStatus(id, iamv1::ACCESS_KEY_STATUS_ACTIVE).ok());
  EXPECT_TRUE(SigningKey(id).ok());

  iamv1::DeleteAccessKeyRequest del;
  del.set_access_key_id(id);
  ASSERT_TRUE(store_->DeleteAccessKey(del).ok());
  EXPECT_THAT(SigningKey(id).status(), HasReason(sigv4::reason::kUnrecognizedClient));
  EXPECT_THAT(store_->DeleteAccessKey(del).status(), HasReason(reason::kNoSuchEntity));
  EXPECT_THAT(SetStatus(id, iamv1::ACCESS_KEY_STATUS_INACTIVE), HasReason(reason::kNoSuchEntity));
  EXPECT_EQ(store_->IdentityOf(id), "");
  Reopen();
  EXPECT_THAT(SigningKey(id).status(), HasReason(sigv4::reason::kUnrecognizedClient));
  // Unknown and malformed ids are equally unknown to a verifier.
  EXPECT_THAT(SigningKey("AKCOAAAAAAAAAAAAAAAA").status(),
              HasReason(sigv4::reason::kUnrecognizedClient));
  EXPECT_THAT(SigningKey("AKIAIOSFODNN7EXAMPLE").status(),
              HasReason(sigv4::reason::kUnrecognizedClient));
}

TEST_F(AccessKeysTest, TwoKeysPerIdentityAndPagesOfKeys) {
  Create(kAlice);
  Create(kAlice);
  iamv1::CreateAccessKeyRequest third;
  third.set_identity(kAlice);
  absl::Status s = store_->CreateAccessKey(third).status();
  EXPECT_THAT(s, HasReason(reason::kIamLimitExceeded));
  EXPECT_THAT(std::string(s.message()), HasSubstr("AccessKeysPerUser: 2"));

  for (int i = 0; i < 3; ++i) Create(absl::StrCat("spiffe://coffer.local/app/a", i));
  iamv1::ListAccessKeysRequest page;
  page.set_max_items(2);
  std::vector<std::string> seen;
  for (int n = 0; n < 10; ++n) {
    auto listed = store_->ListAccessKeys(page);
    ASSERT_TRUE(listed.ok()) << listed.status();
    for (const auto& key : listed->access_keys()) seen.push_back(key.access_key_id());
    if (!listed->is_truncated()) break;
    page.set_marker(listed->marker());
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  iamv1::ListAccessKeysRequest mine;
  mine.set_identity(kAlice);
  EXPECT_EQ(store_->ListAccessKeys(mine)->access_keys_size(), 2);
}

TEST_F(AccessKeysTest, MalformedRequestsNameTheirField) {
  struct Case {
    absl::Status status;
    std::string field;
  };
  auto create = [&](const std::string& identity, const std::string& description = "") {
    iamv1::CreateAccessKeyRequest r;
    r.set_identity(identity);
    r.set_description(description);
    return store_->CreateAccessKey(r).status();
  };
  iamv1::GetSigningKeyRequest bad_date;
  const std::string id = Create(kApp).access_key().access_key_id();
  const std::vector<Case> cases = {
      {create(""), "identity: is required"},
      {create("alice"), "identity: must be a SPIFFE ID"},
      {create("spiffe://coffer.local"), "identity: must be a SPIFFE ID"},
      {create("spiffe://coffer.local/a b"), "identity: must be printable ASCII"},
      {create("spiffe://coffer.local/" + std::string(2100, 'x')), "identity: must be at most"},
      {create(kAlice, std::string(257, 'd')), "description: must be at most 256"},
      {create("spiffe://coffer.local/store"), "identity: is one of Coffer's own services"},
      {create("spiffe://coffer.local/gateway"), "identity: is one of Coffer's own services"},
      {SetStatus("AKCO", iamv1::ACCESS_KEY_STATUS_ACTIVE), "access_key_id: must be 20"},
      {SetStatus(id, iamv1::ACCESS_KEY_STATUS_UNSPECIFIED), "status: must be ACTIVE or INACTIVE"},
      {SigningKey(id, "2026-11-30").status(), "date: must be yyyymmdd"},
      {SigningKey(id, "20261340").status(), "date: must be yyyymmdd"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(c.status, HasReason(reason::kValidation)) << c.field;
    EXPECT_THAT(std::string(c.status.message()), HasSubstr(c.field));
  }
  // A signing key for a day far from now is refused; so is a bad region.
  EXPECT_THAT(SigningKey(id, "20261127").status(), HasReason(sigv4::reason::kInvalidSignature));
  EXPECT_THAT(SigningKey(id, "20261202").status(), HasReason(sigv4::reason::kInvalidSignature));
  EXPECT_TRUE(SigningKey(id, "20261201").ok());
  iamv1::GetSigningKeyRequest upper;
  upper.set_access_key_id(id);
  upper.set_date("20261130");
  upper.set_region("US-EAST-1");
  upper.set_service("kms");
  EXPECT_THAT(store_->GetSigningKey(upper).status(), HasReason(reason::kValidation));
  iamv1::ListAccessKeysRequest list;
  list.set_marker("garbage");
  EXPECT_THAT(store_->ListAccessKeys(list).status(), HasReason(reason::kValidation));
}

}  // namespace
}  // namespace coffer::kms
