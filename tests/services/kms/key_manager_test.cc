#include "services/kms/key_manager.h"

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/crypto/random.h"
#include "libs/storage/engine.h"
#include "services/kms/ciphertext.h"
#include "services/kms/root_key.h"
#include "tests/testing/etcd.h"
#include "tests/testing/matchers.h"
#include "tests/testing/test_env.h"

namespace coffer::kms {
namespace {

using ::testing::HasSubstr;

// The engines every KeyManagerTest runs on: RocksDB in a temp dir, and a
// real etcd member (one for the whole program) under a prefix of the test's.
class KeyManagerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    root_ = std::string(crypto::RandomString(32));
    if (GetParam() == "etcd") {
      auto made = testing::EtcdCluster::SharedEngine("kms");
      ASSERT_TRUE(made.ok()) << made.status();
      engine_ = std::move(made).value();
    }
    Reopen();
  }

  // A KeyManager on this test's database and engine.
  absl::StatusOr<std::unique_ptr<KeyManager>> OpenWith(KeyManagerOptions options,
                                                       crypto::SecureBuffer root) {
    options.db_path = dir_.Join("keystore");
    if (engine_ == nullptr) return KeyManager::Open(options, std::move(root));
    auto db = engine_->Open("keystore", KeyManager::ColumnFamilies());
    if (!db.ok()) return db.status();
    return KeyManager::Open(options, std::move(root), std::move(db).value());
  }

  void Reopen(KeyManagerOptions options = {}) {
    store_.reset();
    options.clock = &clock_;
    options.sync_writes = false;
    if (options_override_) options.max_keys = max_keys_, options.max_aliases_per_key = max_aliases_;
    auto store = OpenWith(options, crypto::SecureBuffer::Copy(root_));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  std::string NewKey() {
    v1::CreateKeyRequest req;
    auto resp = store_->CreateKey(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp->key_metadata().key_id();
  }

  absl::StatusOr<std::string> EncryptWith(const std::string& key, const std::string& plaintext,
                                          std::map<std::string, std::string> ctx = {}) {
    v1::EncryptRequest req;
    req.set_key_id(key);
    req.set_plaintext(plaintext);
    req.mutable_encryption_context()->insert(ctx.begin(), ctx.end());
    auto resp = store_->Encrypt(req);
    if (!resp.ok()) return resp.status();
    return resp->ciphertext_blob();
  }

  absl::StatusOr<std::string> DecryptWith(const std::string& blob,
                                          std::map<std::string, std::string> ctx = {},
                                          const std::string& key = "") {
    v1::DecryptRequest req;
    req.set_ciphertext_blob(blob);
    req.set_key_id(key);
    req.mutable_encryption_context()->insert(ctx.begin(), ctx.end());
    auto resp = store_->Decrypt(req);
    if (!resp.ok()) return resp.status();
    return resp->plaintext();
  }

  v1::KeyState State(const std::string& key) {
    v1::DescribeKeyRequest req;
    req.set_key_id(key);
    auto resp = store_->DescribeKey(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp->key_metadata().key_state();
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Engine> engine_;  // etcd only
  FakeClock clock_;
  std::string root_;
  std::unique_ptr<KeyManager> store_;
  bool options_override_ = false;
  int max_keys_ = 0;
  int max_aliases_ = 0;
};

using ::coffer::testing::HasReason;

INSTANTIATE_TEST_SUITE_P(Engines, KeyManagerTest, ::testing::Values("rocksdb", "etcd"),
                         [](const auto& info) { return info.param; });

TEST_P(KeyManagerTest, CreateKeyDescribesItself) {
  v1::CreateKeyRequest req;
  req.set_description("orders database");
  auto* tag = req.add_tags();
  tag->set_tag_key("team");
  tag->set_tag_value("payments");
  auto resp = store_->CreateKey(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  const auto& md = resp->key_metadata();
  EXPECT_TRUE(IsUuid(md.key_id()));
  EXPECT_EQ(md.arn(), "arn:coffer:kms:local:000000000000:key/" + md.key_id());
  EXPECT_EQ(md.key_state(), v1::KEY_STATE_ENABLED);
  EXPECT_TRUE(md.enabled());
  EXPECT_EQ(md.description(), "orders database");
  EXPECT_EQ(md.key_manager(), v1::KEY_MANAGER_CUSTOMER);
  EXPECT_EQ(md.current_key_material_version(), 1u);
  EXPECT_EQ(md.creation_date().seconds(), absl::ToUnixSeconds(clock_.Now()));

  // Every accepted form of key_id resolves to the same key.
  v1::CreateAliasRequest alias;
  alias.set_alias_name("alias/orders");
  alias.set_target_key_id(md.key_id());
  ASSERT_TRUE(store_->CreateAlias(alias).ok());
  for (const std::string& ref : {md.key_id(), md.arn(), std::string("alias/orders"),
                                 std::string("arn:coffer:kms:local:000000000000:alias/orders")}) {
    v1::DescribeKeyRequest d;
    d.set_key_id(ref);
    auto described = store_->DescribeKey(d);
    ASSERT_TRUE(described.ok()) << ref << ": " << described.status();
    EXPECT_EQ(described->key_metadata().key_id(), md.key_id());
  }
  v1::DescribeKeyRequest other_account;
  other_account.set_key_id("arn:coffer:kms:local:111111111111:key/" + md.key_id());
  EXPECT_THAT(store_->DescribeKey(other_account).status(), HasReason(reason::kNotFound));
}

TEST_P(KeyManagerTest, RoundTripWithAndWithoutContext) {
  std::string key = NewKey();
  auto blob = EncryptWith(key, "hello");
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(*DecryptWith(*blob), "hello");

  std::map<std::string, std::string> ctx{{"SecretARN", "arn:x"}, {"SecretVersionId", "v1"}};
  auto bound = EncryptWith(key, "bound", ctx);
  ASSERT_TRUE(bound.ok());
  EXPECT_EQ(*DecryptWith(*bound, ctx), "bound");
  EXPECT_THAT(DecryptWith(*bound).status(), HasReason(reason::kInvalidCiphertext));
  EXPECT_THAT(DecryptWith(*bound, {{"SecretARN", "arn:x"}, {"SecretVersionId", "v2"}}).status(),
              HasReason(reason::kInvalidCiphertext));
  EXPECT_THAT(DecryptWith(*blob, ctx).status(), HasReason(reason::kInvalidCiphertext));
}

TEST_P(KeyManagerTest, EveryTamperedByteIsInvalidCiphertext) {
  std::string key = NewKey();
  std::string blob = *EncryptWith(key, "attack at dawn");
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] ^= 0x01;
    auto result = DecryptWith(bad);
    EXPECT_FALSE(result.ok()) << "byte " << i;
    // Flipping the key id may name a key that does not exist; either way the
    // answer is InvalidCiphertextException and never plaintext.
    EXPECT_THAT(result.status(), HasReason(reason::kInvalidCiphertext)) << "byte " << i;
  }
  EXPECT_THAT(DecryptWith(blob.substr(0, blob.size() - 1)).status(),
              HasReason(reason::kInvalidCiphertext));
  EXPECT_THAT(DecryptWith("x").status(), HasReason(reason::kInvalidCiphertext));
}

TEST_P(KeyManagerTest, DecryptWithOtherKeyIdIsIncorrectKey) {
  std::string a = NewKey();
  std::string b = NewKey();
  std::string blob = *EncryptWith(a, "data");
  EXPECT_EQ(*DecryptWith(blob, {}, a), "data");
  EXPECT_THAT(DecryptWith(blob, {}, b).status(), HasReason(reason::kIncorrectKey));
  EXPECT_THAT(DecryptWith(blob, {}, "alias/none").status(), HasReason(reason::kNotFound));
}

TEST_P(KeyManagerTest, RotationKeepsOldCiphertextAndReEncryptMovesToNewest) {
  std::string key = NewKey();
  std::string old_blob = *EncryptWith(key, "v1 data", {{"a", "b"}});
  EXPECT_EQ(ParseCiphertext(old_blob)->version, 1u);

  v1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id(key);
  auto rotated = store_->RotateKeyOnDemand(rotate);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->key_material_version(), 2u);
  ASSERT_TRUE(store_->RotateKeyOnDemand(rotate).ok());  // version 3

  std::string new_blob = *EncryptWith(key, "v3 data");
  EXPECT_EQ(ParseCiphertext(new_blob)->version, 3u);
  EXPECT_EQ(*DecryptWith(old_blob, {{"a", "b"}}), "v1 data");
  EXPECT_EQ(*DecryptWith(new_blob), "v3 data");

  v1::ReEncryptRequest re;
  re.set_ciphertext_blob(old_blob);
  (*re.mutable_source_encryption_context())["a"] = "b";
  re.set_destination_key_id(key);
  (*re.mutable_destination_encryption_context())["c"] = "d";
  auto moved = store_->ReEncrypt(re);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->source_key_material_version(), 1u);
  EXPECT_EQ(moved->destination_key_material_version(), 3u);
  EXPECT_EQ(ParseCiphertext(moved->ciphertext_blob())->version, 3u);
  EXPECT_EQ(*DecryptWith(moved->ciphertext_blob(), {{"c", "d"}}), "v1 data");

  // To another key: only that key decrypts it now.
  std::string other = NewKey();
  re.set_destination_key_id(other);
  auto to_other = store_->ReEncrypt(re);
  ASSERT_TRUE(to_other.ok());
  EXPECT_EQ(ParseCiphertext(to_other->ciphertext_blob())->key_id, other);
  EXPECT_THAT(DecryptWith(to_other->ciphertext_blob(), {{"c", "d"}}, key).status(),
              HasReason(reason::kIncorrectKey));

  v1::ListKeyRotationsRequest list;
  list.set_key_id(key);
  auto rotations = store_->ListKeyRotations(list);
  ASSERT_TRUE(rotations.ok());
  ASSERT_EQ(rotations->rotations_size(), 2);
  EXPECT_EQ(rotations->rotations(0).rotation_type(), v1::ROTATION_TYPE_ON_DEMAND);
  EXPECT_EQ(rotations->rotations(1).key_material_version(), 3u);
}

TEST_P(KeyManagerTest, DisabledAndPendingDeletionKeysRefuseCrypto) {
  std::string key = NewKey();
  std::string blob = *EncryptWith(key, "data");
  v1::DisableKeyRequest disable;
  disable.set_key_id(key);
  ASSERT_TRUE(store_->DisableKey(disable).ok());
  EXPECT_EQ(State(key), v1::KEY_STATE_DISABLED);
  EXPECT_THAT(EncryptWith(key, "x").status(), HasReason(reason::kDisabled));
  EXPECT_THAT(DecryptWith(blob).status(), HasReason(reason::kDisabled));
  v1::GenerateDataKeyRequest gen;
  gen.set_key_id(key);
  gen.set_key_spec(v1::DATA_KEY_SPEC_AES_256);
  EXPECT_THAT(store_->GenerateDataKey(gen).status(), HasReason(reason::kDisabled));
  EXPECT_EQ(store_->GenerateDataKey(gen).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::EnableKeyRequest enable;
  enable.set_key_id(key);
  ASSERT_TRUE(store_->EnableKey(enable).ok());
  EXPECT_EQ(*DecryptWith(blob), "data");

  v1::ScheduleKeyDeletionRequest del;
  del.set_key_id(key);
  del.set_pending_window_in_days(7);
  auto scheduled = store_->ScheduleKeyDeletion(del);
  ASSERT_TRUE(scheduled.ok()) << scheduled.status();
  EXPECT_EQ(scheduled->deletion_date().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(24 * 7)));
  EXPECT_EQ(State(key), v1::KEY_STATE_PENDING_DELETION);
  EXPECT_THAT(EncryptWith(key, "x").status(), HasReason(reason::kInvalidState));
  EXPECT_THAT(DecryptWith(blob).status(), HasReason(reason::kInvalidState));
  EXPECT_THAT(store_->EnableKey(enable).status(), HasReason(reason::kInvalidState));
  EXPECT_THAT(store_->ScheduleKeyDeletion(del).status(), HasReason(reason::kInvalidState));

  v1::CancelKeyDeletionRequest cancel;
  cancel.set_key_id(key);
  ASSERT_TRUE(store_->CancelKeyDeletion(cancel).ok());
  EXPECT_EQ(State(key), v1::KEY_STATE_DISABLED);
  EXPECT_THAT(store_->CancelKeyDeletion(cancel).status(), HasReason(reason::kInvalidState));
}

TEST_P(KeyManagerTest, SweeperDestroysDueKeysWithTheirAliasesAndMaterial) {
  std::string doomed = NewKey();
  std::string kept = NewKey();
  v1::CreateAliasRequest alias;
  alias.set_alias_name("alias/doomed");
  alias.set_target_key_id(doomed);
  ASSERT_TRUE(store_->CreateAlias(alias).ok());
  v1::ScheduleKeyDeletionRequest del;
  del.set_key_id(doomed);  // default window: 30 days
  auto scheduled = store_->ScheduleKeyDeletion(del);
  ASSERT_TRUE(scheduled.ok());
  EXPECT_EQ(scheduled->pending_window_in_days(), 30);

  clock_.Advance(absl::Hours(24 * 29));
  EXPECT_EQ(store_->RunMaintenance()->keys_deleted, 0);
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(store_->RunMaintenance()->keys_deleted, 1);

  v1::DescribeKeyRequest d;
  d.set_key_id(doomed);
  EXPECT_THAT(store_->DescribeKey(d).status(), HasReason(reason::kNotFound));
  d.set_key_id("alias/doomed");
  EXPECT_THAT(store_->DescribeKey(d).status(), HasReason(reason::kNotFound));
  EXPECT_EQ(State(kept), v1::KEY_STATE_ENABLED);
  size_t material_records = 0;
  ASSERT_TRUE(store_->database()
                  ->Scan("material", {},
                         [&](absl::string_view k, absl::string_view) {
                           EXPECT_FALSE(absl::StartsWith(k, doomed));
                           ++material_records;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(material_records, 1u);

  Reopen();  // and it stays gone
  d.set_key_id(doomed);
  EXPECT_THAT(store_->DescribeKey(d).status(), HasReason(reason::kNotFound));
}

TEST_P(KeyManagerTest, AutomaticRotationFollowsThePeriod) {
  std::string key = NewKey();
  v1::EnableKeyRotationRequest enable;
  enable.set_key_id(key);
  enable.set_rotation_period_in_days(90);
  ASSERT_TRUE(store_->EnableKeyRotation(enable).ok());
  v1::GetKeyRotationStatusRequest status_req;
  status_req.set_key_id(key);
  auto status = store_->GetKeyRotationStatus(status_req);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->key_rotation_enabled());
  EXPECT_EQ(status->rotation_period_in_days(), 90);
  EXPECT_EQ(status->next_rotation_date().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(24 * 90)));

  // On-demand rotation does not shift the schedule.
  v1::RotateKeyOnDemandRequest now;
  now.set_key_id(key);
  ASSERT_TRUE(store_->RotateKeyOnDemand(now).ok());
  EXPECT_EQ(store_->GetKeyRotationStatus(status_req)->next_rotation_date().seconds(),
            status->next_rotation_date().seconds());

  clock_.Advance(absl::Hours(24 * 89));
  EXPECT_EQ(store_->RunMaintenance()->keys_rotated, 0);
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(store_->RunMaintenance()->keys_rotated, 1);
  EXPECT_EQ(store_->RunMaintenance()->keys_rotated, 0);
  v1::ListKeyRotationsRequest list;
  list.set_key_id(key);
  auto rotations = store_->ListKeyRotations(list);
  ASSERT_EQ(rotations->rotations_size(), 2);
  EXPECT_EQ(rotations->rotations(1).rotation_type(), v1::ROTATION_TYPE_AUTOMATIC);
  EXPECT_EQ(rotations->rotations(1).key_material_version(), 3u);
  EXPECT_GT(store_->GetKeyRotationStatus(status_req)->next_rotation_date().seconds(),
            absl::ToUnixSeconds(clock_.Now()));

  v1::DisableKeyRotationRequest off;
  off.set_key_id(key);
  ASSERT_TRUE(store_->DisableKeyRotation(off).ok());
  EXPECT_FALSE(store_->GetKeyRotationStatus(status_req)->key_rotation_enabled());
  clock_.Advance(absl::Hours(24 * 400));
  EXPECT_EQ(store_->RunMaintenance()->keys_rotated, 0);
}

// The 26th on-demand rotation of a key is refused (AWS KMS's limit) and
// changes nothing; automatic rotations do not count.
TEST_P(KeyManagerTest, OnDemandRotationsStopAtTheLimit) {
  ASSERT_EQ(kMaxOnDemandRotations, 25);
  std::string key = NewKey();
  v1::EnableKeyRotationRequest enable;
  enable.set_key_id(key);
  enable.set_rotation_period_in_days(90);
  ASSERT_TRUE(store_->EnableKeyRotation(enable).ok());
  v1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id(key);
  for (int i = 0; i < kMaxOnDemandRotations; ++i) {
    auto rotated = store_->RotateKeyOnDemand(rotate);
    ASSERT_TRUE(rotated.ok()) << i << ": " << rotated.status();
    EXPECT_EQ(rotated->key_material_version(), static_cast<uint32_t>(i + 2));
  }

  v1::DescribeKeyRequest describe;
  describe.set_key_id(key);
  const v1::KeyMetadata before = store_->DescribeKey(describe)->key_metadata();
  ASSERT_EQ(before.current_key_material_version(), 26u);
  auto refused = store_->RotateKeyOnDemand(rotate);
  EXPECT_THAT(refused.status(), HasReason(reason::kLimitExceeded));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("25 on-demand rotations"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(before.arn()));

  // Nothing changed: metadata, history, material, the version Encrypt uses.
  EXPECT_EQ(store_->DescribeKey(describe)->key_metadata().SerializeAsString(),
            before.SerializeAsString());
  size_t material_records = 0;
  ASSERT_TRUE(store_->database()
                  ->Scan("material", {},
                         [&](absl::string_view, absl::string_view) {
                           ++material_records;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(material_records, 26u);
  EXPECT_EQ(ParseCiphertext(*EncryptWith(key, "x"))->version, 26u);

  // ListKeyRotations pages through all 25, each naming the key's ARN.
  v1::ListKeyRotationsRequest list;
  list.set_key_id(key);
  list.set_limit(10);
  std::vector<uint32_t> versions;
  for (int page = 0; page < 5; ++page) {
    auto rotations = store_->ListKeyRotations(list);
    ASSERT_TRUE(rotations.ok()) << rotations.status();
    for (const auto& r : rotations->rotations()) {
      EXPECT_EQ(r.key_id(), before.arn());
      EXPECT_EQ(r.rotation_type(), v1::ROTATION_TYPE_ON_DEMAND);
      versions.push_back(r.key_material_version());
    }
    if (!rotations->truncated()) break;
    list.set_marker(rotations->next_marker());
  }
  ASSERT_EQ(versions.size(), 25u);
  for (uint32_t i = 0; i < versions.size(); ++i) EXPECT_EQ(versions[i], i + 2);

  // An automatic rotation still happens and does not count.
  clock_.Advance(absl::Hours(24 * 91));
  auto maintenance = store_->RunMaintenance();
  ASSERT_TRUE(maintenance.ok()) << maintenance.status();
  EXPECT_EQ(maintenance->keys_rotated, 1);
  EXPECT_EQ(maintenance->rotations_refused, 0);
  EXPECT_EQ(store_->DescribeKey(describe)->key_metadata().current_key_material_version(), 27u);
  EXPECT_THAT(store_->RotateKeyOnDemand(rotate).status(), HasReason(reason::kLimitExceeded));

  // The count is on disk; other keys have their own.
  Reopen();
  EXPECT_THAT(store_->RotateKeyOnDemand(rotate).status(), HasReason(reason::kLimitExceeded));
  v1::RotateKeyOnDemandRequest other;
  other.set_key_id(NewKey());
  EXPECT_TRUE(store_->RotateKeyOnDemand(other).ok());
}

TEST_P(KeyManagerTest, OnDemandCountOfOlderRecordsComesFromTheirHistory) {
  std::string key = NewKey();
  v1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id(key);
  for (int i = 0; i < kMaxOnDemandRotations; ++i)
    ASSERT_TRUE(store_->RotateKeyOnDemand(rotate).ok());

  // As written before on_demand_rotations existed: no count, ARNs in the
  // history.
  auto stored = store_->database()->Get("keys", key);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  ::coffer::internal::kms::v1::KeyRecord record;
  ASSERT_TRUE(record.ParseFromString(**stored));
  EXPECT_EQ(record.on_demand_rotations(), 25u);
  record.clear_on_demand_rotations();
  for (auto& r : *record.mutable_rotations()) r.set_key_id(record.metadata().arn());
  ASSERT_TRUE(store_->database()->Put("keys", key, record.SerializeAsString()).ok());
  Reopen();

  EXPECT_THAT(store_->RotateKeyOnDemand(rotate).status(), HasReason(reason::kLimitExceeded));
  v1::ListKeyRotationsRequest list;
  list.set_key_id(key);
  auto rotations = store_->ListKeyRotations(list);
  ASSERT_TRUE(rotations.ok()) << rotations.status();
  EXPECT_EQ(rotations->rotations_size(), 25);
  EXPECT_EQ(rotations->rotations(0).key_id(), record.metadata().arn());
}

// max_key_versions bounds every rotation, and so the rotation history;
// maintenance counts a refused automatic rotation and goes on.
TEST_P(KeyManagerTest, MaterialVersionsAreBounded) {
  KeyManagerOptions options;
  options.max_key_versions = 4;
  Reopen(options);
  std::string full = NewKey();
  std::string other = NewKey();
  v1::EnableKeyRotationRequest enable;
  enable.set_rotation_period_in_days(90);
  for (const std::string& key : {full, other}) {
    enable.set_key_id(key);
    ASSERT_TRUE(store_->EnableKeyRotation(enable).ok());
  }
  v1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id(full);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->RotateKeyOnDemand(rotate).ok());
  auto refused = store_->RotateKeyOnDemand(rotate);
  EXPECT_THAT(refused.status(), HasReason(reason::kLimitExceeded));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("4 key material versions"));

  clock_.Advance(absl::Hours(24 * 91));
  for (int pass = 0; pass < 2; ++pass) {
    auto maintenance = store_->RunMaintenance();
    ASSERT_TRUE(maintenance.ok()) << maintenance.status();
    EXPECT_EQ(maintenance->keys_rotated, pass == 0 ? 1 : 0);  // `other` rotates once
    EXPECT_EQ(maintenance->rotations_refused, 1);             // `full` stays due
  }
  v1::DescribeKeyRequest describe;
  describe.set_key_id(full);
  EXPECT_EQ(store_->DescribeKey(describe)->key_metadata().current_key_material_version(), 4u);
  describe.set_key_id(other);
  EXPECT_EQ(store_->DescribeKey(describe)->key_metadata().current_key_material_version(), 2u);
  std::string blob = *EncryptWith(full, "still usable");
  EXPECT_EQ(ParseCiphertext(blob)->version, 4u);
  EXPECT_EQ(*DecryptWith(blob), "still usable");
  v1::ListKeyRotationsRequest list;
  list.set_key_id(full);
  EXPECT_EQ(store_->ListKeyRotations(list)->rotations_size(), 3);

  // A higher limit lets the overdue rotation run.
  options.max_key_versions = 5;
  Reopen(options);
  auto maintenance = store_->RunMaintenance();
  ASSERT_TRUE(maintenance.ok());
  EXPECT_EQ(maintenance->keys_rotated, 1);
  EXPECT_EQ(maintenance->rotations_refused, 0);
  describe.set_key_id(full);
  EXPECT_EQ(store_->DescribeKey(describe)->key_metadata().current_key_material_version(), 5u);
  EXPECT_EQ(store_->ListKeyRotations(list)->rotations_size(), 4);
  EXPECT_EQ(*DecryptWith(blob), "still usable");
}

TEST_P(KeyManagerTest, MaxKeyVersionsMustBePositive) {
  store_.reset();
  KeyManagerOptions options;
  options.max_key_versions = 0;
  auto store = OpenWith(options, crypto::SecureBuffer::Copy(root_));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(KeyManagerTest, AliasRules) {
  std::string a = NewKey();
  std::string b = NewKey();
  struct Case {
    std::string name;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"alias/ok-name_1:2/x", ""},
      {"orders", reason::kInvalidAliasName},
      {"alias/", reason::kInvalidAliasName},
      {"alias/has space", reason::kInvalidAliasName},
      {"alias/semi;colon", reason::kInvalidAliasName},
      {"alias/" + std::string(251, 'a'), reason::kInvalidAliasName},  // 257 chars
      {"alias/" + std::string(250, 'a'), ""},                         // 256 chars
      {"alias/aws/secretsmanager", reason::kInvalidAliasName},
      {"alias/coffer/secretsmanager", reason::kInvalidAliasName},
  };
  for (const auto& c : cases) {
    v1::CreateAliasRequest req;
    req.set_alias_name(c.name);
    req.set_target_key_id(a);
    auto result = store_->CreateAlias(req);
    if (c.reason.empty()) {
      EXPECT_TRUE(result.ok()) << c.name << ": " << result.status();
    } else {
      EXPECT_THAT(result.status(), HasReason(c.reason)) << c.name;
      EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(result.status().message()), HasSubstr("alias_name"));
    }
  }
  v1::CreateAliasRequest dup;
  dup.set_alias_name("alias/ok-name_1:2/x");
  dup.set_target_key_id(b);
  EXPECT_THAT(store_->CreateAlias(dup).status(), HasReason(reason::kAlreadyExists));
  dup.set_alias_name("alias/to-alias");
  dup.set_target_key_id("alias/ok-name_1:2/x");
  EXPECT_THAT(store_->CreateAlias(dup).status(), HasReason(reason::kValidation));
  dup.set_target_key_id("00000000-0000-4000-8000-000000000000");
  EXPECT_THAT(store_->CreateAlias(dup).status(), HasReason(reason::kNotFound));

  // Update moves an alias; encryption through it then uses the new key.
  v1::UpdateAliasRequest update;
  update.set_alias_name("alias/ok-name_1:2/x");
  update.set_target_key_id(b);
  ASSERT_TRUE(store_->UpdateAlias(update).ok());
  auto blob = EncryptWith("alias/ok-name_1:2/x", "via alias");
  EXPECT_EQ(ParseCiphertext(*blob)->key_id, b);
  update.set_alias_name("alias/missing");
  EXPECT_THAT(store_->UpdateAlias(update).status(), HasReason(reason::kNotFound));

  v1::ListAliasesRequest list;
  list.set_key_id(a);
  auto of_a = store_->ListAliases(list);
  ASSERT_TRUE(of_a.ok());
  ASSERT_EQ(of_a->aliases_size(), 1);
  EXPECT_EQ(of_a->aliases(0).target_key_id(), a);
  EXPECT_EQ(of_a->aliases(0).alias_arn(),
            "arn:coffer:kms:local:000000000000:" + of_a->aliases(0).alias_name());

  v1::DeleteAliasRequest del;
  del.set_alias_name("alias/ok-name_1:2/x");
  ASSERT_TRUE(store_->DeleteAlias(del).ok());
  EXPECT_THAT(store_->DeleteAlias(del).status(), HasReason(reason::kNotFound));
  v1::DescribeKeyRequest d;
  d.set_key_id("alias/ok-name_1:2/x");
  EXPECT_THAT(store_->DescribeKey(d).status(), HasReason(reason::kNotFound));
}

TEST_P(KeyManagerTest, AliasAndKeyCountLimits) {
  options_override_ = true;
  max_keys_ = 3;
  max_aliases_ = 2;
  Reopen();
  std::string a = NewKey();
  for (int i = 0; i < 2; ++i) {
    v1::CreateAliasRequest req;
    req.set_alias_name(absl::StrCat("alias/a", i));
    req.set_target_key_id(a);
    ASSERT_TRUE(store_->CreateAlias(req).ok());
  }
  v1::CreateAliasRequest third;
  third.set_alias_name("alias/a2");
  third.set_target_key_id(a);
  EXPECT_THAT(store_->CreateAlias(third).status(), HasReason(reason::kLimitExceeded));
  EXPECT_EQ(store_->CreateAlias(third).status().code(), absl::StatusCode::kResourceExhausted);
  NewKey();
  NewKey();
  EXPECT_THAT(store_->CreateKey({}).status(), HasReason(reason::kLimitExceeded));
}

TEST_P(KeyManagerTest, EveryLimitIsRejectedWithTheRightReason) {
  std::string key = NewKey();
  struct Case {
    std::string what;
    absl::Status status;
    std::string reason;
    std::string field;
  };
  auto encrypt = [&](std::string plaintext, std::map<std::string, std::string> ctx = {}) {
    v1::EncryptRequest r;
    r.set_key_id(key);
    r.set_plaintext(plaintext);
    r.mutable_encryption_context()->insert(ctx.begin(), ctx.end());
    return store_->Encrypt(r).status();
  };
  auto gen = [&](int n, v1::DataKeySpec spec) {
    v1::GenerateDataKeyRequest r;
    r.set_key_id(key);
    r.set_number_of_bytes(n);
    r.set_key_spec(spec);
    return store_->GenerateDataKey(r).status();
  };
  auto random = [&](int n) {
    v1::GenerateRandomRequest r;
    r.set_number_of_bytes(n);
    return store_->GenerateRandom(r).status();
  };
  auto schedule = [&](int days) {
    v1::ScheduleKeyDeletionRequest r;
    r.set_key_id(key);
    r.set_pending_window_in_days(days);
    return store_->ScheduleKeyDeletion(r).status();
  };
  auto rotation = [&](int days) {
    v1::EnableKeyRotationRequest r;
    r.set_key_id(key);
    r.set_rotation_period_in_days(days);
    return store_->EnableKeyRotation(r).status();
  };
  auto tags = [&](int n, size_t key_len, size_t value_len, std::string prefix = "") {
    v1::TagResourceRequest r;
    r.set_key_id(key);
    for (int i = 0; i < n; ++i) {
      auto* t = r.add_tags();
      std::string k = prefix + absl::StrCat(i);
      if (k.size() < key_len) k.resize(key_len, 'k');
      t->set_tag_key(k);
      t->set_tag_value(std::string(value_len, 'v'));
    }
    return store_->TagResource(r).status();
  };
  v1::CreateKeyRequest long_description;
  long_description.set_description(std::string(8193, 'd'));
  v1::ListKeysRequest list_keys;
  list_keys.set_limit(1001);
  v1::ListAliasesRequest list_aliases;
  list_aliases.set_limit(101);
  v1::ListResourceTagsRequest list_tags;
  list_tags.set_key_id(key);
  list_tags.set_limit(51);
  v1::ListKeysRequest bad_marker;
  bad_marker.set_marker("not-a-marker!");
  v1::DescribeKeyRequest empty_id;
  v1::DescribeKeyRequest long_id;
  long_id.set_key_id(std::string(2049, 'k'));
  v1::DecryptRequest huge;
  huge.set_ciphertext_blob(std::string(6145, 'c'));
  v1::DecryptRequest empty_blob;
  v1::CreateKeyRequest dup_tags;
  for (int i = 0; i < 2; ++i) {
    auto* t = dup_tags.add_tags();
    t->set_tag_key("same");
  }
  v1::CreateKeyRequest bad_usage;
  bad_usage.set_key_usage(static_cast<v1::KeyUsage>(7));

  const std::vector<Case> cases = {
      {"plaintext empty", encrypt(""), reason::kValidation, "plaintext"},
      {"plaintext 4097", encrypt(std::string(4097, 'p')), reason::kValidation, "plaintext"},
      {"context empty key", encrypt("p", {{"", "v"}}), reason::kValidation, "encryption_context"},
      {"context too big", encrypt("p", {{"k", std::string(8200, 'v')}}), reason::kValidation,
       "encryption_context"},
      {"data key 0 bytes, no spec", gen(0, v1::DATA_KEY_SPEC_UNSPECIFIED), reason::kValidation,
       "number_of_bytes"},
      {"data key 1025 bytes", gen(1025, v1::DATA_KEY_SPEC_UNSPECIFIED), reason::kValidation,
       "number_of_bytes"},
      {"data key bytes and spec", gen(32, v1::DATA_KEY_SPEC_AES_256), reason::kValidation,
       "number_of_bytes"},
      {"random 0", random(0), reason::kValidation, "number_of_bytes"},
      {"random 1025", random(1025), reason::kValidation, "number_of_bytes"},
      {"deletion window 6", schedule(6), reason::kValidation, "pending_window_in_days"},
      {"deletion window 31", schedule(31), reason::kValidation, "pending_window_in_days"},
      {"rotation period 89", rotation(89), reason::kValidation, "rotation_period_in_days"},
      {"rotation period 2561", rotation(2561), reason::kValidation, "rotation_period_in_days"},
      {"description 8193", store_->CreateKey(long_description).status(), reason::kValidation,
       "description"},
      {"key usage", store_->CreateKey(bad_usage).status(), reason::kValidation, "key_usage"},
      {"51 tags", tags(51, 3, 1), reason::kLimitExceeded, "tags"},
      {"tag key 129", tags(1, 129, 1), reason::kTag, "tags"},
      {"tag value 257", tags(1, 3, 257), reason::kTag, "tags"},
      {"tag aws: prefix", tags(1, 3, 1, "aws:"), reason::kTag, "tags"},
      {"duplicate tag keys", store_->CreateKey(dup_tags).status(), reason::kTag, "tags"},
      {"list keys limit", store_->ListKeys(list_keys).status(), reason::kValidation, "limit"},
      {"list aliases limit", store_->ListAliases(list_aliases).status(), reason::kValidation,
       "limit"},
      {"list tags limit", store_->ListResourceTags(list_tags).status(), reason::kValidation,
       "limit"},
      {"bad marker", store_->ListKeys(bad_marker).status(), reason::kInvalidMarker, "marker"},
      {"key id missing", store_->DescribeKey(empty_id).status(), reason::kValidation, "key_id"},
      {"key id 2049", store_->DescribeKey(long_id).status(), reason::kValidation, "key_id"},
      {"ciphertext 6145", store_->Decrypt(huge).status(), reason::kValidation, "ciphertext_blob"},
      {"ciphertext empty", store_->Decrypt(empty_blob).status(), reason::kValidation,
       "ciphertext_blob"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(c.status, HasReason(c.reason)) << c.what;
    auto detail = GetErrorDetail(c.status);
    ASSERT_TRUE(detail.has_value()) << c.what;
    EXPECT_EQ(detail->field, c.field) << c.what;
    EXPECT_THAT(std::string(c.status.message()), HasSubstr(c.field)) << c.what;
    EXPECT_NE(c.status.code(), absl::StatusCode::kOk) << c.what;
  }
  // Boundaries that are allowed.
  EXPECT_TRUE(encrypt(std::string(4096, 'p')).ok());
  EXPECT_TRUE(gen(1024, v1::DATA_KEY_SPEC_UNSPECIFIED).ok());
  EXPECT_TRUE(gen(0, v1::DATA_KEY_SPEC_AES_128).ok());
  EXPECT_TRUE(random(1024).ok());
  EXPECT_TRUE(rotation(2560).ok());
  EXPECT_TRUE(tags(50, 3, 256).ok());
}

TEST_P(KeyManagerTest, ListKeysPagesWithoutGapsOrRepeats) {
  std::set<std::string> created;
  for (int i = 0; i < 25; ++i) created.insert(NewKey());
  std::set<std::string> seen;
  std::string marker;
  int pages = 0;
  do {
    v1::ListKeysRequest req;
    req.set_limit(10);
    req.set_marker(marker);
    auto page = store_->ListKeys(req);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& k : page->keys()) EXPECT_TRUE(seen.insert(k.key_id()).second) << k.key_id();
    marker = page->next_marker();
    EXPECT_EQ(page->truncated(), !marker.empty());
    ++pages;
  } while (!marker.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, created);
}

TEST_P(KeyManagerTest, TagsMergeRemoveAndPage) {
  std::string key = NewKey();
  v1::TagResourceRequest tag;
  tag.set_key_id(key);
  for (const char* k : {"b", "a", "c"}) {
    auto* t = tag.add_tags();
    t->set_tag_key(k);
    t->set_tag_value(std::string("v") + k);
  }
  ASSERT_TRUE(store_->TagResource(tag).ok());
  tag.clear_tags();
  auto* t = tag.add_tags();
  t->set_tag_key("a");
  t->set_tag_value("new");
  ASSERT_TRUE(store_->TagResource(tag).ok());
  v1::UntagResourceRequest untag;
  untag.set_key_id(key);
  untag.add_tag_keys("c");
  untag.add_tag_keys("absent");
  ASSERT_TRUE(store_->UntagResource(untag).ok());
  v1::ListResourceTagsRequest list;
  list.set_key_id(key);
  list.set_limit(1);
  auto first = store_->ListResourceTags(list);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->tags_size(), 1);
  EXPECT_EQ(first->tags(0).tag_key(), "a");
  EXPECT_EQ(first->tags(0).tag_value(), "new");
  list.set_marker(first->next_marker());
  auto second = store_->ListResourceTags(list);
  ASSERT_EQ(second->tags_size(), 1);
  EXPECT_EQ(second->tags(0).tag_key(), "b");
  EXPECT_FALSE(second->truncated());
}

TEST_P(KeyManagerTest, DataKeysDecryptToThePlaintextCopy) {
  std::string key = NewKey();
  v1::GenerateDataKeyRequest gen;
  gen.set_key_id(key);
  gen.set_key_spec(v1::DATA_KEY_SPEC_AES_256);
  (*gen.mutable_encryption_context())["SecretARN"] = "arn:s";
  auto dk = store_->GenerateDataKey(gen);
  ASSERT_TRUE(dk.ok()) << dk.status();
  EXPECT_EQ(dk->plaintext().size(), 32u);
  EXPECT_EQ(*DecryptWith(dk->ciphertext_blob(), {{"SecretARN", "arn:s"}}), dk->plaintext());

  v1::GenerateDataKeyWithoutPlaintextRequest gen2;
  gen2.set_key_id(key);
  gen2.set_number_of_bytes(64);
  auto wrapped = store_->GenerateDataKeyWithoutPlaintext(gen2);
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(DecryptWith(wrapped->ciphertext_blob())->size(), 64u);
}

TEST_P(KeyManagerTest, BuiltInAliasCreatesAManagedKeyOnFirstUse) {
  auto blob = EncryptWith("alias/coffer/secretsmanager", "secret");
  ASSERT_TRUE(blob.ok()) << blob.status();
  auto again = EncryptWith("alias/coffer/secretsmanager", "secret");
  EXPECT_EQ(ParseCiphertext(*blob)->key_id, ParseCiphertext(*again)->key_id);
  v1::DescribeKeyRequest d;
  d.set_key_id("alias/coffer/secretsmanager");
  auto md = store_->DescribeKey(d);
  ASSERT_TRUE(md.ok());
  EXPECT_EQ(md->key_metadata().key_manager(), v1::KEY_MANAGER_COFFER);
  v1::ScheduleKeyDeletionRequest del;
  del.set_key_id("alias/coffer/secretsmanager");
  EXPECT_THAT(store_->ScheduleKeyDeletion(del).status(), HasReason(reason::kUnsupportedOperation));
  // Other unknown aliases are not invented.
  EXPECT_THAT(EncryptWith("alias/made-up", "x").status(), HasReason(reason::kNotFound));
}

TEST_P(KeyManagerTest, KeysAliasesAndVersionsSurviveReopen) {
  std::string key = NewKey();
  std::string blob = *EncryptWith(key, "persisted");
  v1::RotateKeyOnDemandRequest rotate;
  rotate.set_key_id(key);
  ASSERT_TRUE(store_->RotateKeyOnDemand(rotate).ok());
  v1::CreateAliasRequest alias;
  alias.set_alias_name("alias/kept");
  alias.set_target_key_id(key);
  ASSERT_TRUE(store_->CreateAlias(alias).ok());
  Reopen();
  EXPECT_EQ(*DecryptWith(blob, {}, "alias/kept"), "persisted");
  EXPECT_EQ(ParseCiphertext(*EncryptWith("alias/kept", "x"))->version, 2u);

  // The wrong root key unseals nothing.
  store_.reset();
  auto wrong = OpenWith(KeyManagerOptions(), crypto::SecureBuffer::Random(32));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CiphertextTest, MalformedBlobsAreInvalidCiphertext) {
  for (const std::string& blob :
       {std::string(), std::string("\x01"), std::string("\x02\x01k"),
        std::string("\x01\x00", 2) + std::string(60, 'x'),
        std::string("\x01\x01k\x00\x00\x00\x00", 7) + std::string(40, 'x'),  // version 0
        std::string("\x01\x41", 2) + std::string(200, 'x')}) {               // id too long
    EXPECT_EQ(ErrorReason(ParseCiphertext(blob).status()), reason::kInvalidCiphertext);
  }
}

TEST(RootKeyTest, FileSourceRefusesPermissiveOrMalformedFiles) {
  testing::TempDir dir;
  std::string path = dir.Join("root.key");
  {
    std::ofstream out(path);
    out << std::string(32, 'k');
  }
  ::chmod(path.c_str(), 0644);
  auto loaded = FileRootKeySource(path)->Load();
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("group or others"));
  ::chmod(path.c_str(), 0600);
  EXPECT_TRUE(FileRootKeySource(path)->Load().ok());
  // As Kubernetes mounts a Secret: through a symlink, group-readable by a
  // group of this process (the pod's fsGroup).
  ASSERT_EQ(::symlink(path.c_str(), dir.Join("linked.key").c_str()), 0);
  EXPECT_TRUE(FileRootKeySource(dir.Join("linked.key"))->Load().ok());
  ::chmod(path.c_str(), 0440);
  EXPECT_TRUE(FileRootKeySource(dir.Join("linked.key"))->Load().ok());
  // But not writable by the group, nor readable by a group it is not in.
  ::chmod(path.c_str(), 0460);
  EXPECT_FALSE(FileRootKeySource(path)->Load().ok());
  ::chmod(path.c_str(), 0440);
  // nogroup (only root may give a file away; the suite runs as root in CI)
  if (::chown(path.c_str(), static_cast<uid_t>(-1), 65534) == 0 && ::getegid() != 65534) {
    EXPECT_THAT(std::string(FileRootKeySource(path)->Load().status().message()),
                HasSubstr("group or others"));
  }
  ::chmod(path.c_str(), 0600);
  {
    std::ofstream out(path);
    out << std::string(31, 'k');
  }
  EXPECT_EQ(FileRootKeySource(path)->Load().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(FileRootKeySource(dir.Join("missing"))->Load().ok());
}

TEST(RootKeyTest, DevelopmentSourceCreatesAPrivateKeyOnceAndReusesIt) {
  testing::TempDir dir;
  auto first = DevelopmentRootKeySource(dir.path())->Load();
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(::stat(dir.Join("root.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = DevelopmentRootKeySource(dir.path())->Load();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->view(), second->view());
}

// A change's synced write does not hold up crypto calls: while a rotation's
// write is stuck, Encrypt, Decrypt and GenerateDataKey still answer (with
// the state before the change), and the change lands once the write does.
TEST_P(KeyManagerTest, CryptoCallsDoNotWaitForAChangesWrite) {
  std::atomic<bool> hold{false};
  absl::Notification in_write, release;
  KeyManagerOptions options;
  options.before_write_for_test = [&] {
    if (!hold.load()) return;
    in_write.Notify();
    release.WaitForNotification();
  };
  Reopen(options);
  const std::string key = NewKey();
  auto blob = EncryptWith(key, "before");
  ASSERT_TRUE(blob.ok()) << blob.status();

  hold = true;
  absl::StatusOr<v1::RotateKeyOnDemandResponse> rotated;
  std::thread rotation([&] {
    v1::RotateKeyOnDemandRequest req;
    req.set_key_id(key);
    rotated = store_->RotateKeyOnDemand(req);
  });
  in_write.WaitForNotification();
  // The rotation is inside its write now; the reads must not wait for it
  // (were they to, they would finish only after the release below).
  absl::Notification reads_done;
  absl::StatusOr<std::string> during = absl::UnknownError("not run");
  std::string decrypted;
  bool generated = false;
  uint32_t version_during = 0;
  std::thread reads([&] {
    decrypted = DecryptWith(*blob).value_or("?");
    during = EncryptWith(key, "during");
    v1::GenerateDataKeyRequest gdk;
    gdk.set_key_id(key);
    gdk.set_number_of_bytes(32);
    generated = store_->GenerateDataKey(gdk).ok();
    v1::DescribeKeyRequest describe;
    describe.set_key_id(key);
    version_during = store_->DescribeKey(describe)->key_metadata().current_key_material_version();
    reads_done.Notify();
  });
  EXPECT_TRUE(reads_done.WaitForNotificationWithTimeout(absl::Seconds(10)))
      << "crypto calls waited for the rotation's write";
  release.Notify();
  reads.join();
  EXPECT_EQ(decrypted, "before");
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_TRUE(generated);
  EXPECT_EQ(version_during, 1u);  // the state before the change
  v1::DescribeKeyRequest describe;
  describe.set_key_id(key);
  rotation.join();
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->key_material_version(), 2u);
  EXPECT_EQ(store_->DescribeKey(describe)->key_metadata().current_key_material_version(), 2u);
  EXPECT_EQ(DecryptWith(*during).value_or("?"), "during");
}

}  // namespace
}  // namespace coffer::kms

namespace coffer::kms {
namespace {

// Two replicas on one etcd keystore.
using KeyManagerReplicaTest = KeyManagerTest;
INSTANTIATE_TEST_SUITE_P(Etcd, KeyManagerReplicaTest, ::testing::Values("etcd"),
                         [](const auto& info) { return info.param; });

TEST_P(KeyManagerReplicaTest, AChangeOnAStaleReplicaConflictsAndRunsAgainAfterRefresh) {
  // Replica B makes its change only after A changed the keystore.
  KeyManagerOptions options;
  options.sync_writes = false;
  std::atomic<bool> race{false};
  options.before_write_for_test = [&] {
    if (race.exchange(false)) NewKey();  // on A
  };
  auto replica_b = OpenWith(options, crypto::SecureBuffer::Copy(root_));
  ASSERT_TRUE(replica_b.ok()) << replica_b.status();
  KeyManager& b = **replica_b;

  // B learns of A's key through the watch.
  const std::string key = NewKey();
  v1::DescribeKeyRequest describe;
  describe.set_key_id(key);
  ASSERT_TRUE(testing::WaitFor([&] { return b.DescribeKey(describe).ok(); }, absl::Seconds(5)));

  v1::CreateAliasRequest alias;
  alias.set_alias_name("alias/raced");
  alias.set_target_key_id(key);
  race = true;
  auto raced = b.CreateAlias(alias);
  ASSERT_FALSE(raced.ok());
  EXPECT_TRUE(IsReplicaConflict(raced.status())) << raced.status();
  ASSERT_TRUE(b.Refresh().ok());
  auto again = b.CreateAlias(alias);
  ASSERT_TRUE(again.ok()) << again.status();

  // Nothing of either change was lost: A sees B's alias, B has A's 2 keys.
  v1::DescribeKeyRequest by_alias;
  by_alias.set_key_id("alias/raced");
  EXPECT_TRUE(
      testing::WaitFor([&] { return store_->DescribeKey(by_alias).ok(); }, absl::Seconds(5)));
  v1::ListKeysRequest list;
  EXPECT_EQ(b.ListKeys(list)->keys_size(), 2);
}

// Calls for keys that do not exist refresh before they answer: a flood of
// them shares checks instead of reading etcd once each, and a key made on
// another replica is still found by the first call after it was made.
TEST_P(KeyManagerReplicaTest, ConcurrentRefreshesShareOneCheck) {
  testing::EtcdCluster* etcd = testing::EtcdCluster::Shared();
  auto ranges = [&] {
    return etcd->Metric(0,
                        "grpc_server_started_total{grpc_method=\"Range\",grpc_service="
                        "\"etcdserverpb.KV\",grpc_type=\"unary\"}");
  };
  constexpr int kRounds = 5, kCallers = 32;
  const double before = ranges();
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> callers;
    std::atomic<int> failed{0};
    std::atomic<int> ready{0};
    for (int i = 0; i < kCallers; ++i) {
      callers.emplace_back([&] {
        ++ready;  // all call at once, not as fast as threads start
        while (ready.load() < kCallers) std::this_thread::yield();
        if (!store_->Refresh().ok()) ++failed;
      });
    }
    for (auto& t : callers) t.join();
    EXPECT_EQ(failed.load(), 0);
  }
  const double reads = ranges() - before;
  EXPECT_LT(reads, kRounds * kCallers / 2)
      << reads << " generation reads for " << kRounds * kCallers << " refreshes";

  // Sharing never hides a change made before the call: B makes a key, A's
  // next refresh (with others racing it) finds it.
  KeyManagerOptions options;
  options.sync_writes = false;
  auto replica_b = OpenWith(options, crypto::SecureBuffer::Copy(root_));
  ASSERT_TRUE(replica_b.ok()) << replica_b.status();
  for (int i = 0; i < 10; ++i) {
    v1::CreateKeyRequest create;
    auto made = (*replica_b)->CreateKey(create);
    ASSERT_TRUE(made.ok()) << made.status();
    std::vector<std::thread> racers;
    for (int j = 0; j < 4; ++j) racers.emplace_back([&] { (void)store_->Refresh(); });
    ASSERT_TRUE(store_->Refresh().ok());
    v1::DescribeKeyRequest describe;
    describe.set_key_id(made->key_metadata().key_id());
    EXPECT_TRUE(store_->DescribeKey(describe).ok()) << i;
    for (auto& t : racers) t.join();
  }
}

}  // namespace
}  // namespace coffer::kms
