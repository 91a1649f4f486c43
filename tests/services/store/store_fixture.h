// store_fixture.h: the one test fixture of coffer-store's logic — the
// store's database (every column family of services/store/schema.h) on
// RocksDB in a temp dir and, as a second run of every test, on etcd, the real KMS logic in-process
// behind the KeyService interface (InProcessKeyService, no network), a fake clock, a change log,
// and the secrets, rotation and parameters logic over them.
//
//   class SecretStoreTest : public StoreFixture {};
//   COFFER_STORE_ENGINES(SecretStoreTest);
//   TEST_P(SecretStoreTest, Creates) { store_->CreateSecret(...); }
//
// A test class may change `secret_options_` / `param_options_` /
// `cache_options_` in its constructor, or call Open() again to reopen
// everything over the same files (a restart).
#pragma once

#include <memory>
#include <utility>

#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/storage/database.h"
#include "libs/storage/engine.h"
#include "services/kms/key_manager.h"
#include "services/store/changes/change_log.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/envelope.h"
#include "services/store/params/param_store.h"
#include "services/store/schema.h"
#include "services/store/secrets/secret_records.h"
#include "services/store/secrets/secret_rotation.h"
#include "services/store/secrets/secret_store.h"
#include "tests/services/store/in_process_kms.h"
#include "tests/testing/etcd.h"
#include "tests/testing/test_env.h"

namespace coffer::store {

// Parameterized by the engine: "rocksdb" (a temp dir) or "etcd" (a real
// member, one for the whole program, under a prefix of the test's own).
// Each test class instantiates itself with COFFER_STORE_ENGINES(Class).
class StoreFixture : public ::testing::TestWithParam<std::string> {
 protected:
  StoreFixture() {
    secret_options_.clock = &clock_;
    param_options_.clock = &clock_;
    cache_options_ = DataKeyCacheOptions{100, absl::Minutes(5), &clock_};
  }

  void SetUp() override {
    if (GetParam() == "etcd") {
      auto made = testing::EtcdCluster::SharedEngine("store");
      ASSERT_TRUE(made.ok()) << made.status();
      engine_ = std::move(made).value();
      secret_options_.max_group_commit = 16;
      secret_options_.bounded_writes = true;
    }
    kms::KeyManagerOptions kms_options;
    kms_options.db_path = dir_.Join("kms");
    kms_options.sync_writes = false;
    kms_options.clock = &clock_;
    auto keys = kms::KeyManager::Open(kms_options, crypto::SecureBuffer::Random(32));
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = std::move(*keys);
    kms_ = std::make_unique<InProcessKeyService>(keys_.get());
    Open();
  }

  // (Re)opens the database and everything over it.
  void Open() {
    params_.reset();
    rotation_.reset();
    store_.reset();
    records_.reset();
    envelope_.reset();
    cache_.reset();
    changes_.reset();
    db_.reset();
    absl::StatusOr<std::unique_ptr<storage::Database>> db;
    if (engine_ != nullptr) {
      db = engine_->Open("db", schema::ColumnFamilies());
    } else {
      storage::DatabaseOptions db_options;
      db_options.path = dir_.Join("store");
      db_options.column_families = schema::ColumnFamilies();
      db_options.sync_writes = false;
      db = storage::Database::Open(db_options);
    }
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto changes = ChangeLog::Open(db_.get());
    ASSERT_TRUE(changes.ok()) << changes.status();
    changes_ = std::move(*changes);
    cache_ = std::make_unique<DataKeyCache>(cache_options_);
    envelope_ = std::make_unique<Envelope>(kms_.get(), cache_.get());
    SecretStoreOptions secret_options = secret_options_;
    secret_options.changes = changes_.get();
    records_ = std::make_unique<SecretRecords>(db_.get(), envelope_.get(), secret_options);
    ASSERT_TRUE(records_->Load().ok());
    store_ = std::make_unique<SecretStore>(records_.get());
    rotation_ = std::make_unique<SecretRotation>(records_.get());
    ParamStoreOptions param_options = param_options_;
    param_options.changes = changes_.get();
    params_ = std::make_unique<ParamStore>(db_.get(), envelope_.get(), param_options);
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Engine> engine_;  // etcd only
  FakeClock clock_;
  SecretStoreOptions secret_options_;
  ParamStoreOptions param_options_;
  DataKeyCacheOptions cache_options_;

  std::unique_ptr<kms::KeyManager> keys_;
  std::unique_ptr<InProcessKeyService> kms_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<ChangeLog> changes_;
  std::unique_ptr<DataKeyCache> cache_;
  std::unique_ptr<Envelope> envelope_;
  std::unique_ptr<SecretRecords> records_;
  std::unique_ptr<SecretStore> store_;
  std::unique_ptr<SecretRotation> rotation_;
  std::unique_ptr<ParamStore> params_;
};

#define COFFER_STORE_ENGINES(Class)                                              \
  INSTANTIATE_TEST_SUITE_P(Engines, Class, ::testing::Values("rocksdb", "etcd"), \
                           [](const auto& info) { return info.param; })

}  // namespace coffer::store
