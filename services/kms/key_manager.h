// key_manager.h: the whole of coffer-kms's logic, without gRPC.
//
// KeyManager owns the keys, their numbered material versions, aliases and
// tags; persists them in RocksDB (material only sealed under the root key)
// and keeps unsealed material in guarded memory. Each method takes and
// returns the public API messages, validates every field first, and returns
// errors carrying the AWS exception name (libs/common/errors.h), so that the
// gRPC handlers in kms_service.cc only map results.
//
//   KeyManagerOptions opts;
//   opts.db_path = data_dir + "/keystore";
//   COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer root, source->Load());
//   COFFER_ASSIGN_OR_RETURN(auto keys, KeyManager::Open(opts, std::move(root)));
//   v1::CreateKeyRequest create;
//   COFFER_ASSIGN_OR_RETURN(v1::CreateKeyResponse key, keys->CreateKey(create));
//   v1::EncryptRequest enc;
//   enc.set_key_id(key.key_metadata().key_id());
//   enc.set_plaintext("hello");
//   COFFER_ASSIGN_OR_RETURN(v1::EncryptResponse out, keys->Encrypt(enc));
//
//   keys->RunMaintenance();   // due deletions and automatic rotations
//
// Thread-safe. Crypto operations take a shared lock only long enough to pick
// up the material; metadata changes are serialized and each is one synced,
// atomic RocksDB write applied to memory only after it succeeded.
//
// The implementation is spread over key_manager.cc, key_manager_aliases.cc and
// key_manager_crypto.cc (key_manager_internal.h says what goes where).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coffer/internal/kms/v1/keystore.pb.h"
#include "coffer/kms/v1/kms.pb.h"
#include "libs/common/clock.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/storage/database.h"

namespace coffer::kms {

struct KeyManagerOptions {
  std::string db_path;
  // ARN parts: arn:<partition>:kms:<region>:<account>:key/<id>.
  std::string partition = "coffer";
  std::string region = "local";
  std::string account = "000000000000";
  // LimitExceededException beyond these.
  int max_keys = 100000;
  int max_aliases_per_key = 50;
  // Material versions per key (the first one included), and so also the
  // length of its rotation history: a rotation, on demand or automatic, that
  // would add version max_key_versions + 1 is refused. At least 1.
  int max_key_versions = 1000;
  Clock* clock = nullptr;  // default RealClock()
  bool sync_writes = true;
  // Tests only: runs before each keystore write, with the key lock released
  // (crypto calls proceed meanwhile).
  std::function<void()> before_write_for_test;
};

// RotateKeyOnDemand calls per key (AWS KMS's limit); the next one is
// LimitExceededException. Automatic rotations do not count.
inline constexpr int kMaxOnDemandRotations = 25;

struct MaintenanceResult {
  int keys_deleted = 0;
  int keys_rotated = 0;
  // Due automatic rotations refused because the key has max_key_versions
  // versions (the key stays usable; logged once per key and process).
  int rotations_refused = 0;
};

class KeyManager {
 public:
  // Opens the database and unseals every key's material with `root_key`.
  // FAILED_PRECONDITION when material does not unseal (wrong root key).
  static absl::StatusOr<std::unique_ptr<KeyManager>> Open(const KeyManagerOptions& options,
                                                          crypto::SecureBuffer root_key);
  // The same on a database opened elsewhere (options.db_path unused), such
  // as etcd's, which KMS replicas share (storage::Engine). Then every change
  // commits only if no replica changed the keystore since this one last
  // read it (else ABORTED, IsReplicaConflict: Refresh and run it again),
  // and a watch refreshes this replica whenever another one changes it.
  static absl::StatusOr<std::unique_ptr<KeyManager>> Open(const KeyManagerOptions& options,
                                                          crypto::SecureBuffer root_key,
                                                          std::unique_ptr<storage::Database> db);
  ~KeyManager();
  // The column families Open's database must have.
  static std::vector<std::string> ColumnFamilies();

  // Replicas: reads the keystore again when another replica changed it
  // since this one last read it (cheap otherwise: one read). Never needed
  // on a database of this process's own. Concurrent calls share one check:
  // a call returns without reading when a check that began after the call
  // did has finished meanwhile (so a flood of calls for keys that do not
  // exist costs a read per wave, not one each).
  absl::Status Refresh();
  // Whether the keystore is shared with other replicas.
  bool shared() const { return db_->shared(); }

  absl::StatusOr<v1::CreateKeyResponse> CreateKey(const v1::CreateKeyRequest& request);
  absl::StatusOr<v1::DescribeKeyResponse> DescribeKey(const v1::DescribeKeyRequest& request);
  absl::StatusOr<v1::ListKeysResponse> ListKeys(const v1::ListKeysRequest& request);
  absl::StatusOr<v1::UpdateKeyDescriptionResponse> UpdateKeyDescription(
      const v1::UpdateKeyDescriptionRequest& request);
  absl::StatusOr<v1::EnableKeyResponse> EnableKey(const v1::EnableKeyRequest& request);
  absl::StatusOr<v1::DisableKeyResponse> DisableKey(const v1::DisableKeyRequest& request);
  absl::StatusOr<v1::ScheduleKeyDeletionResponse> ScheduleKeyDeletion(
      const v1::ScheduleKeyDeletionRequest& request);
  absl::StatusOr<v1::CancelKeyDeletionResponse> CancelKeyDeletion(
      const v1::CancelKeyDeletionRequest& request);
  absl::StatusOr<v1::EnableKeyRotationResponse> EnableKeyRotation(
      const v1::EnableKeyRotationRequest& request);
  absl::StatusOr<v1::DisableKeyRotationResponse> DisableKeyRotation(
      const v1::DisableKeyRotationRequest& request);
  absl::StatusOr<v1::GetKeyRotationStatusResponse> GetKeyRotationStatus(
      const v1::GetKeyRotationStatusRequest& request);
  absl::StatusOr<v1::RotateKeyOnDemandResponse> RotateKeyOnDemand(
      const v1::RotateKeyOnDemandRequest& request);
  absl::StatusOr<v1::ListKeyRotationsResponse> ListKeyRotations(
      const v1::ListKeyRotationsRequest& request);
  absl::StatusOr<v1::CreateAliasResponse> CreateAlias(const v1::CreateAliasRequest& request);
  absl::StatusOr<v1::UpdateAliasResponse> UpdateAlias(const v1::UpdateAliasRequest& request);
  absl::StatusOr<v1::DeleteAliasResponse> DeleteAlias(const v1::DeleteAliasRequest& request);
  absl::StatusOr<v1::ListAliasesResponse> ListAliases(const v1::ListAliasesRequest& request);
  absl::StatusOr<v1::EncryptResponse> Encrypt(const v1::EncryptRequest& request);
  absl::StatusOr<v1::DecryptResponse> Decrypt(const v1::DecryptRequest& request);
  absl::StatusOr<v1::ReEncryptResponse> ReEncrypt(const v1::ReEncryptRequest& request);
  absl::StatusOr<v1::GenerateDataKeyResponse> GenerateDataKey(
      const v1::GenerateDataKeyRequest& request);
  absl::StatusOr<v1::GenerateDataKeyWithoutPlaintextResponse> GenerateDataKeyWithoutPlaintext(
      const v1::GenerateDataKeyWithoutPlaintextRequest& request);
  absl::StatusOr<v1::GenerateRandomResponse> GenerateRandom(
      const v1::GenerateRandomRequest& request);
  absl::StatusOr<v1::TagResourceResponse> TagResource(const v1::TagResourceRequest& request);
  absl::StatusOr<v1::UntagResourceResponse> UntagResource(const v1::UntagResourceRequest& request);
  absl::StatusOr<v1::ListResourceTagsResponse> ListResourceTags(
      const v1::ListResourceTagsRequest& request);

  // Destroys keys whose deletion date has passed (key, material, aliases in
  // one write) and rotates enabled keys whose automatic rotation is due; a
  // rotation refused by max_key_versions is counted and skipped, not an error.
  absl::StatusOr<MaintenanceResult> RunMaintenance();

  // What a key reference (key id, key ARN, alias/<name>, alias ARN) names,
  // for authorization: the key's ARN ("" when it names no key), the alias
  // it went by ("" when none), and whether Coffer owns the key
  // (KEY_MANAGER_COFFER: the built-in alias/coffer/<service> keys).
  struct KeyNames {
    std::string arn;
    std::string alias;
    bool coffer_managed = false;
  };
  KeyNames NamesOf(absl::string_view ref) const;

  // Number of keys per state, for the metrics gauge.
  std::map<v1::KeyState, int> CountKeysByState() const;

  // The database, for tests that inspect what is on disk.
  storage::Database* database() { return db_.get(); }

 private:
  struct LoadedKey;
  struct Material;
  struct ResolvedKey;
  using Context = std::map<std::string, std::string>;

  KeyManager(const KeyManagerOptions& options, crypto::SecureBuffer root_key);
  // Reads and unseals the whole keystore into `keys` and `aliases`.
  absl::Status LoadFrom(std::map<std::string, std::unique_ptr<LoadedKey>>& keys,
                        std::map<std::string, ::coffer::internal::kms::v1::AliasRecord>& aliases);

  // "arn:<partition>:kms:<region>:<account>:", the start of every ARN here.
  std::string ArnPrefix() const;
  std::string KeyArn(const std::string& key_id) const;
  std::string AliasArn(const std::string& alias_name) const;
  // key id, key ARN, alias/<name> or alias ARN -> key id. NotFoundException.
  absl::StatusOr<std::string> ResolveLocked(absl::string_view field, absl::string_view ref) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // As ResolveLocked; an unknown alias/coffer/<name> creates the built-in key.
  absl::StatusOr<std::string> ResolveForEncrypt(absl::string_view field, absl::string_view ref);
  absl::StatusOr<LoadedKey*> FindKeyLocked(absl::string_view field, absl::string_view ref)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The newest material of an Enabled key (DisabledException /
  // KMSInvalidStateException otherwise).
  absl::StatusOr<ResolvedKey> KeyForEncrypt(absl::string_view field, absl::string_view ref);
  absl::StatusOr<ResolvedKey> KeyForDecrypt(absl::string_view ciphertext_blob,
                                            absl::string_view field, absl::string_view ref);
  absl::StatusOr<crypto::SecureBuffer> DecryptBlob(absl::string_view blob, const Context& context,
                                                   absl::string_view key_field,
                                                   absl::string_view key_ref, ResolvedKey* used);
  // GenerateDataKey and GenerateDataKeyWithoutPlaintext: a new data key
  // sealed under request.key_id(); fills the response's ciphertext_blob and
  // key_id and returns the plaintext key.
  template <typename Request, typename Response>
  absl::StatusOr<crypto::SecureBuffer> NewDataKey(const Request& request, Response& response);

  // Appends a new material version to `key` (in `batch`) and returns it.
  absl::StatusOr<std::shared_ptr<Material>> NewMaterial(const std::string& key_id, uint32_t version,
                                                        storage::WriteBatch& batch);
  // The one keystore write of a change. Called holding write_mu_ and mu_
  // (exclusively); releases mu_ while the synced write runs, so Encrypt,
  // Decrypt and GenerateDataKey (which take mu_ shared) never wait for the
  // disk. Safe because every change holds write_mu_ throughout and changes
  // memory only after its write: readers meanwhile see the state before it.
  absl::Status WriteOrInternal(const storage::WriteBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_);
  absl::StatusOr<std::string> CreateKeyLocked(v1::KeyManager manager,
                                              const std::string& description,
                                              const std::vector<v1::Tag>& tags,
                                              const std::string& alias)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillMetadata(LoadedKey& key) const;
  // Takes the writer lock, finds key `ref` (field "key_id") and lets
  // `change` edit a copy of its record; if `change` returns OK, writes the
  // copy (one synced write) and only then applies it to memory.
  absl::Status UpdateKey(
      absl::string_view ref,
      const std::function<absl::Status(::coffer::internal::kms::v1::KeyRecord&)>& change);
  // Adds a material version (one synced write) and records the rotation;
  // LimitExceededException when the key has max_key_versions versions, or
  // for ROTATION_TYPE_ON_DEMAND kMaxOnDemandRotations on-demand rotations.
  absl::StatusOr<uint32_t> RotateLocked(LoadedKey& key, v1::RotationType type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // LimitExceededException when `key` has max_aliases_per_key aliases.
  absl::Status CheckAliasLimitLocked(const LoadedKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  KeyManagerOptions options_;
  Clock* clock_;
  crypto::SecureBuffer root_key_;
  std::unique_ptr<storage::Database> db_;

  // Held by every change for its whole length (before mu_): one change at a
  // time, so a change may release mu_ during its write (WriteOrInternal).
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Shared keystores: the generation this replica's memory reflects (each
  // change writes a new one; see Open).
  std::string generation_ ABSL_GUARDED_BY(write_mu_);
  // Refresh's checks: how many began, and the number of the last that
  // finished (each under write_mu_, one at a time).
  std::atomic<uint64_t> checks_begun_{0};
  uint64_t last_check_done_ ABSL_GUARDED_BY(write_mu_) = 0;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<LoadedKey>> keys_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ::coffer::internal::kms::v1::AliasRecord> aliases_ ABSL_GUARDED_BY(mu_);
  // Keys whose refused automatic rotation maintenance has logged (once per
  // key and process; erased with the key).
  std::set<std::string> refusal_logged_ ABSL_GUARDED_BY(mu_);
  // Shared keystores: follows the generation (dropped first).
  std::unique_ptr<storage::Database::FamilyWatch> watch_;
  std::atomic<bool> stopping_{false};
  // Refresh's check and reload, holding write_mu_.
  absl::Status RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Refresh, retried with backoff until it succeeds or stopping_.
  void RefreshUntilDone();
};

// A change refused because another replica changed the keystore first.
bool IsReplicaConflict(const absl::Status& status);

}  // namespace coffer::kms
