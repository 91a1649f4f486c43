// secret_store.h: the whole of the secrets API's logic, without gRPC.
//
// SecretStore keeps secrets in RocksDB — one SecretRecord per name (metadata,
// tags, version summaries with their staging labels), one VersionRecord per
// version (the value, encrypted by Envelope under its own data key), and two
// indexes (by creation date for ListSecrets, by deletion date for the
// sweeper). Every operation validates its request first and returns errors
// with the AWS exception name; every change is one optimistic transaction,
// committed as one synced atomic write: a crash leaves the old or the new
// state, never a mix. KMS calls happen before the transaction, never inside.
//
//   SecretStore store(db.get(), &envelope, options);
//   COFFER_RETURN_IF_ERROR(store.Load());
//   secrets::v1::CreateSecretRequest create;
//   create.set_name("prod/db");
//   create.set_secret_string("{\"password\":\"...\"}");
//   COFFER_ASSIGN_OR_RETURN(auto created, store.CreateSecret(create));
//   store.PurgeExpired();   // the sweeper, periodically
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coffer/internal/store/v1/store.pb.h"
#include "coffer/rotation/v1/control.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "libs/common/clock.h"
#include "libs/storage/database.h"
#include "services/store/change_log.h"
#include "services/store/envelope.h"
#include "services/store/secret_names.h"

namespace coffer::store {

struct SecretStoreOptions {
  ArnConfig arns;
  // The KMS key of secrets created without kms_key_id (created by the KMS on
  // first use).
  std::string default_kms_key_id = "alias/coffer/secretsmanager";
  // Index entries one ListSecrets/BatchGetSecretValue page may examine.
  size_t list_scan_budget = 5000;
  Clock* clock = nullptr;  // default RealClock()
  // Where every change is also recorded, in the same write (optional).
  ChangeLog* changes = nullptr;
};

class SecretStore {
 public:
  using SecretRecord = ::coffer::internal::store::v1::SecretRecord;

  // Column families the database must be opened with.
  static std::vector<std::string> ColumnFamilies();

  // Neither pointer is owned; both must outlive the store.
  SecretStore(storage::Database* db, Envelope* envelope, SecretStoreOptions options);

  // Counts the stored secrets (for the gauge).
  absl::Status Load();

  absl::StatusOr<secrets::v1::CreateSecretResponse> CreateSecret(
      const secrets::v1::CreateSecretRequest& request);
  absl::StatusOr<secrets::v1::GetSecretValueResponse> GetSecretValue(
      const secrets::v1::GetSecretValueRequest& request);
  absl::StatusOr<secrets::v1::BatchGetSecretValueResponse> BatchGetSecretValue(
      const secrets::v1::BatchGetSecretValueRequest& request);
  absl::StatusOr<secrets::v1::PutSecretValueResponse> PutSecretValue(
      const secrets::v1::PutSecretValueRequest& request);
  absl::StatusOr<secrets::v1::UpdateSecretResponse> UpdateSecret(
      const secrets::v1::UpdateSecretRequest& request);
  absl::StatusOr<secrets::v1::UpdateSecretVersionStageResponse> UpdateSecretVersionStage(
      const secrets::v1::UpdateSecretVersionStageRequest& request);
  absl::StatusOr<secrets::v1::DescribeSecretResponse> DescribeSecret(
      const secrets::v1::DescribeSecretRequest& request);
  absl::StatusOr<secrets::v1::ListSecretsResponse> ListSecrets(
      const secrets::v1::ListSecretsRequest& request);
  absl::StatusOr<secrets::v1::ListSecretVersionIdsResponse> ListSecretVersionIds(
      const secrets::v1::ListSecretVersionIdsRequest& request);
  absl::StatusOr<secrets::v1::DeleteSecretResponse> DeleteSecret(
      const secrets::v1::DeleteSecretRequest& request);
  absl::StatusOr<secrets::v1::RestoreSecretResponse> RestoreSecret(
      const secrets::v1::RestoreSecretRequest& request);
  absl::StatusOr<secrets::v1::TagResourceResponse> TagResource(
      const secrets::v1::TagResourceRequest& request);
  absl::StatusOr<secrets::v1::UntagResourceResponse> UntagResource(
      const secrets::v1::UntagResourceRequest& request);
  absl::StatusOr<secrets::v1::GetRandomPasswordResponse> GetRandomPassword(
      const secrets::v1::GetRandomPasswordRequest& request);
  absl::StatusOr<secrets::v1::PutResourcePolicyResponse> PutResourcePolicy(
      const secrets::v1::PutResourcePolicyRequest& request);
  absl::StatusOr<secrets::v1::GetResourcePolicyResponse> GetResourcePolicy(
      const secrets::v1::GetResourcePolicyRequest& request);
  absl::StatusOr<secrets::v1::DeleteResourcePolicyResponse> DeleteResourcePolicy(
      const secrets::v1::DeleteResourcePolicyRequest& request);

  // Rotation configuration (secrets API; secret_rotation.cc).
  absl::StatusOr<secrets::v1::RotateSecretResponse> RotateSecret(
      const secrets::v1::RotateSecretRequest& request);
  absl::StatusOr<secrets::v1::CancelRotateSecretResponse> CancelRotateSecret(
      const secrets::v1::CancelRotateSecretRequest& request);

  // The rotation-control API for rotators (secret_rotation.cc).
  absl::StatusOr<rotation::v1::ListRotationSchedulesResponse> ListRotationSchedules(
      const rotation::v1::ListRotationSchedulesRequest& request);
  absl::StatusOr<rotation::v1::AcquireRotationLeaseResponse> AcquireRotationLease(
      const rotation::v1::AcquireRotationLeaseRequest& request);
  absl::StatusOr<rotation::v1::RenewRotationLeaseResponse> RenewRotationLease(
      const rotation::v1::RenewRotationLeaseRequest& request);
  absl::StatusOr<rotation::v1::RecordRotationProgressResponse> RecordRotationProgress(
      const rotation::v1::RecordRotationProgressRequest& request);
  absl::StatusOr<rotation::v1::CompleteRotationResponse> CompleteRotation(
      const rotation::v1::CompleteRotationRequest& request);
  absl::StatusOr<rotation::v1::ReleaseRotationLeaseResponse> ReleaseRotationLease(
      const rotation::v1::ReleaseRotationLeaseRequest& request);

  // Purges secrets whose deletion date has passed, with all their versions.
  // Returns how many were purged.
  absl::StatusOr<int> PurgeExpired();

  // Secrets stored, including those scheduled for deletion.
  int64_t secret_count() const { return count_.load(); }

 private:
  absl::StatusOr<std::optional<SecretRecord>> ReadRecord(const std::string& name) const;
  absl::StatusOr<SecretRecord> Resolve(absl::string_view field, const std::string& secret_id) const;
  absl::StatusOr<crypto::SecureBuffer> OpenVersion(const SecretRecord& record,
                                                   const std::string& version_id,
                                                   internal::store::v1::ValueType* type) const;
  // True when the stored version holds exactly this value.
  absl::StatusOr<bool> SameValue(const SecretRecord& record, const std::string& version_id,
                                 bool is_binary, absl::string_view value) const;
  // Runs `mutate` on the freshly read record of `resolved` in a transaction
  // and writes the record (and the index entry) back, with a change event
  // of `kind` (none for CHANGE_KIND_UNSPECIFIED) naming `*version` if given.
  absl::Status Mutate(const SecretRecord& resolved, coffer::v1::ChangeKind kind,
                      const std::function<absl::Status(SecretRecord&, storage::Transaction&)>& mutate,
                      const std::string* version = nullptr);
  // A transaction whose change event (filled by `fn`) goes to the change log
  // in the same write.
  absl::Status Commit(
      const std::function<absl::Status(storage::Transaction&, coffer::v1::ChangeEvent*)>& fn);
  // Validates a WatchSecrets request and returns the event filter.
 public:
  static absl::StatusOr<std::function<bool(const coffer::v1::ChangeEvent&)>> WatchFilter(
      const secrets::v1::WatchSecretsRequest& request);

 private:
  // Deletes the secret, its versions and index entries in one write. With
  // `only_if_due`, only if its deletion date (re-read in the transaction)
  // has passed.
  absl::Status Purge(const SecretRecord& record, bool only_if_due = false);
  void TouchAccessed(const SecretRecord& record, const std::string& version_id);
  std::string KmsKeyOf(const SecretRecord& record) const;
  absl::StatusOr<secrets::v1::GetSecretValueResponse> ValueOf(const SecretRecord& record,
                                                              const std::string& version_id,
                                                              const std::string& version_stage);

  // Runs `mutate` on the record of `secret_id` under a valid lease
  // (ABORTED when `lease_id` is not the current unexpired lease).
  absl::Status MutateUnderLease(
      const std::string& secret_id, const std::string& lease_id,
      const std::function<absl::Status(SecretRecord&, storage::Transaction&)>& mutate,
      SecretRecord* result);
  absl::Time NextRotation(const SecretRecord& record, absl::Time after) const;

  storage::Database* db_;
  Envelope* envelope_;
  SecretStoreOptions options_;
  Clock* clock_;
  std::atomic<int64_t> count_{0};
};

// The "rotations" index entry of a record ("" = not indexed): what a rotator
// needs to schedule it.
std::string RotationIndexEntry(const SecretStore::SecretRecord& record);

}  // namespace coffer::store
