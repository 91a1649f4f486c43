// Where the KMS keeps unsealed key material: packed into the read-only
// secure arena, so that thousands of key versions take a handful of memory
// mappings (one sodium_malloc per version used to crash-loop the KMS past
// vm.max_map_count), and the root key in a dedicated read-only allocation.
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/crypto/random.h"
#include "libs/crypto/secure_arena.h"
#include "libs/crypto/secure_buffer.h"
#include "services/kms/key_manager.h"
#include "services/kms/root_key.h"
#include "tests/testing/test_env.h"

namespace coffer::kms {
namespace {

int MapsLines() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

uint64_t ReadOnlyBytesInUse() { return crypto::SecureArena::ReadOnly().Stats().in_use_bytes; }

TEST(KeyMemoryTest, TwentyThousandKeyVersionsTakeAFewMappings) {
  constexpr int kVersions = 20000;
  testing::TempDir dir;
  KeyManagerOptions options;
  options.db_path = dir.Join("keystore");
  options.sync_writes = false;
  const std::string root = crypto::RandomString(32);
  const auto start = std::chrono::steady_clock::now();

  const int before = MapsLines();
  const uint64_t material_before = ReadOnlyBytesInUse();
  auto keys = KeyManager::Open(options, crypto::SecureBuffer::Copy(root));
  ASSERT_TRUE(keys.ok()) << keys.status();
  std::vector<std::string> ids;
  for (int i = 0; i < kVersions; ++i) {
    auto created = (*keys)->CreateKey(v1::CreateKeyRequest());
    ASSERT_TRUE(created.ok()) << created.status();
    ids.push_back(created->key_metadata().key_id());
  }
  const int after_create = MapsLines();
  // Each version's 32 bytes are a slot of the read-only arena.
  EXPECT_EQ(ReadOnlyBytesInUse() - material_before, uint64_t{32} * kVersions);

  std::vector<std::string> blobs;
  for (const std::string& id : {ids.front(), ids[kVersions / 2], ids.back()}) {
    v1::EncryptRequest encrypt;
    encrypt.set_key_id(id);
    encrypt.set_plaintext("kept across the restart");
    auto out = (*keys)->Encrypt(encrypt);
    ASSERT_TRUE(out.ok()) << out.status();
    blobs.push_back(out->ciphertext_blob());
  }
  keys->reset();  // every version wiped and its slot given back
  EXPECT_EQ(ReadOnlyBytesInUse(), material_before);

  // The restart that used to crash-loop: Load unseals every version.
  keys = KeyManager::Open(options, crypto::SecureBuffer::Copy(root));
  ASSERT_TRUE(keys.ok()) << keys.status();
  const int after_reopen = MapsLines();
  EXPECT_EQ(ReadOnlyBytesInUse() - material_before, uint64_t{32} * kVersions);
  for (const std::string& blob : blobs) {
    v1::DecryptRequest decrypt;
    decrypt.set_ciphertext_blob(blob);
    auto out = (*keys)->Decrypt(decrypt);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->plaintext(), "kept across the restart");
  }

  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "maps lines: " << before << " before, " << after_create << " after " << kVersions
            << " key versions, " << after_reopen << " after reopening (" << seconds << " s)\n";
  EXPECT_LT(after_create - before, 200);
  EXPECT_LT(after_reopen - before, 200);
}

TEST(KeyMemoryTest, RootKeyIsDedicatedAndReadOnly) {
  testing::TempDir dir;
  const std::string path = dir.Join("root.key");
  {
    std::ofstream out(path);
    out << std::string(32, 'r');
  }
  ::chmod(path.c_str(), 0600);
  auto key = FileRootKeySource(path)->Load();
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(key->dedicated());  // guard pages and a canary of its own
  EXPECT_EQ(key->view(), std::string(32, 'r'));

  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto loaded = FileRootKeySource(path)->Load();
        // The child (which made a dir of its own) dies without destructors.
        std::error_code ignored;
        std::filesystem::remove_all(dir.path(), ignored);
        volatile uint8_t* p = loaded->data();
        p[0] = 0;
      },
      "");
}

}  // namespace
}  // namespace coffer::kms
