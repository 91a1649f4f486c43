// access_keys.h: coffer-kms's access keys — the credentials AWS tools sign
// requests with (SigV4), each belonging to one Coffer identity.
//
// A key is an access key id ("AKCO" + 16 base32 characters) and a 40-char
// secret access key. The secret exists in plaintext only in the
// CreateAccessKey response and, briefly, while GetSigningKey derives a
// signing key from it: on disk it is a KMS ciphertext under the built-in key
// alias/coffer/iam with the encryption context {"coffer:access-key-id":
// <id>}, so neither a copy of the database nor a record moved to another id
// yields it. Verifiers (coffer-store, coffer-kms itself) get only the
// derived signing key of one day, region and service.
//
//   AccessKeyStoreOptions opts;
//   opts.db_path = data_dir + "/access_keys";
//   COFFER_ASSIGN_OR_RETURN(auto store, AccessKeyStore::Open(opts, key_manager.get()));
//   iam::v1::CreateAccessKeyRequest create;
//   create.set_identity("spiffe://coffer.local/admin/alice");
//   COFFER_ASSIGN_OR_RETURN(auto created, store->CreateAccessKey(create));
//   ... created.secret_access_key() is shown once ...
//
// Each change is one synced write, applied to memory after it succeeded.
// Thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coffer/iam/v1/access_keys.pb.h"
#include "coffer/internal/iam/v1/access_key_store.pb.h"
#include "libs/common/clock.h"
#include "libs/storage/database.h"
#include "services/kms/key_manager.h"

namespace coffer::kms {

struct AccessKeyStoreOptions {
  std::string db_path;
  bool sync_writes = true;
  // Keys per identity (IAM allows two per user: enough to rotate one).
  int max_keys_per_identity = 2;
  int max_keys = 100000;
  // Identities no access key may belong to: coffer-store's (a key of its
  // would let a signed caller use secrets' encryption contexts), the
  // gateway's own, and the Kubernetes KMS plugin's caller. CreateAccessKey
  // refuses them (ValidationException).
  std::vector<std::string> reserved_identities;
  Clock* clock = nullptr;  // default RealClock()
};

// The built-in key that seals secret access keys.
inline constexpr char kAccessKeySealingKey[] = "alias/coffer/iam";
inline constexpr char kAccessKeyContextKey[] = "coffer:access-key-id";

class AccessKeyStore {
 public:
  // `keys` (not owned) seals and opens the secrets; it must outlive this.
  static absl::StatusOr<std::unique_ptr<AccessKeyStore>> Open(const AccessKeyStoreOptions& options,
                                                              KeyManager* keys);
  // The same on a database opened elsewhere (options.db_path unused). When
  // replicas share it (etcd), a watch applies every replica's changes here.
  static absl::StatusOr<std::unique_ptr<AccessKeyStore>> Open(
      const AccessKeyStoreOptions& options, KeyManager* keys,
      std::unique_ptr<storage::Database> db);
  ~AccessKeyStore();
  // The column families Open's database must have.
  static std::vector<std::string> ColumnFamilies();

  absl::StatusOr<iam::v1::CreateAccessKeyResponse> CreateAccessKey(
      const iam::v1::CreateAccessKeyRequest& request);
  absl::StatusOr<iam::v1::ListAccessKeysResponse> ListAccessKeys(
      const iam::v1::ListAccessKeysRequest& request) const;
  absl::StatusOr<iam::v1::UpdateAccessKeyResponse> UpdateAccessKey(
      const iam::v1::UpdateAccessKeyRequest& request);
  absl::StatusOr<iam::v1::DeleteAccessKeyResponse> DeleteAccessKey(
      const iam::v1::DeleteAccessKeyRequest& request);
  // UnrecognizedClientException for an unknown or inactive key, and for a
  // date more than a day from the clock; ValidationException naming the
  // field for a malformed scope.
  absl::StatusOr<iam::v1::GetSigningKeyResponse> GetSigningKey(
      const iam::v1::GetSigningKeyRequest& request) const;

  // The identity an access key belongs to ("" when there is no such key):
  // the resource its Update and Delete are authorized on.
  std::string IdentityOf(absl::string_view access_key_id) const;

 private:
  AccessKeyStore(const AccessKeyStoreOptions& options, KeyManager* keys);
  absl::Status Load();
  // Replicas: reads one record again ("" = all of them).
  absl::Status Reload(absl::string_view id);

  AccessKeyStoreOptions options_;
  Clock* clock_;
  KeyManager* keys_;
  std::unique_ptr<storage::Database> db_;
  // Held by every change for its whole length: one change at a time.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, internal::iam::v1::AccessKeyRecord> records_ ABSL_GUARDED_BY(mu_);
  // Shared databases: follows other replicas' changes (dropped first).
  std::unique_ptr<storage::Database::FamilyWatch> watch_;
  std::atomic<bool> stopping_{false};
  // Serializes Load and Reload (a Load's older copy must not replace what
  // a Reload read meanwhile).
  absl::Mutex load_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Reload, retried with backoff until it succeeds or stopping_.
  void ReloadUntilDone(absl::string_view id);
};

// A SPIFFE ID as an access key's owner: "spiffe://<trust domain>/<path>",
// at most 2048 printable ASCII characters. ValidationException naming `field`.
absl::Status ValidateIdentity(absl::string_view field, absl::string_view identity);

}  // namespace coffer::kms
