// secret_store.h: the secrets API's logic (AWS Secrets Manager's operations),
// without gRPC, over SecretRecords.
//
// Every operation validates its request first and returns errors with the
// AWS exception name and the field; every change is one call of
// SecretRecords::Mutate (or Insert/Purge), so one synced atomic write.
// Rotation configuration (RotateSecret, CancelRotateSecret) lives in
// SecretRotation (secret_rotation.h). The operations are spread over
// secret_store.cc (reads, listing, tags and policies) and
// secret_store_write.cc (values, versions and the secret's life cycle).
//
//   SecretRecords records(db.get(), &envelope, options);
//   SecretStore store(&records);
//   secrets::v1::CreateSecretRequest create;
//   create.set_name("prod/db");
//   create.set_secret_string("{\"password\":\"...\"}");
//   COFFER_ASSIGN_OR_RETURN(auto created, store.CreateSecret(create));
//
// Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "libs/authz/authorizer.h"
#include "services/store/secrets/secret_records.h"

namespace coffer::store {

class SecretStore {
 public:
  // `records` is not owned and must outlive the store.
  explicit SecretStore(SecretRecords* records) : records_(records) {}

  absl::StatusOr<secrets::v1::CreateSecretResponse> CreateSecret(
      const secrets::v1::CreateSecretRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::GetSecretValueResponse> GetSecretValue(
      const secrets::v1::GetSecretValueRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::BatchGetSecretValueResponse> BatchGetSecretValue(
      const secrets::v1::BatchGetSecretValueRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::PutSecretValueResponse> PutSecretValue(
      const secrets::v1::PutSecretValueRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::UpdateSecretResponse> UpdateSecret(
      const secrets::v1::UpdateSecretRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::UpdateSecretVersionStageResponse> UpdateSecretVersionStage(
      const secrets::v1::UpdateSecretVersionStageRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::DescribeSecretResponse> DescribeSecret(
      const secrets::v1::DescribeSecretRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::ListSecretsResponse> ListSecrets(
      const secrets::v1::ListSecretsRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::ListSecretVersionIdsResponse> ListSecretVersionIds(
      const secrets::v1::ListSecretVersionIdsRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::DeleteSecretResponse> DeleteSecret(
      const secrets::v1::DeleteSecretRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::RestoreSecretResponse> RestoreSecret(
      const secrets::v1::RestoreSecretRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::TagResourceResponse> TagResource(
      const secrets::v1::TagResourceRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::UntagResourceResponse> UntagResource(
      const secrets::v1::UntagResourceRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::GetRandomPasswordResponse> GetRandomPassword(
      const secrets::v1::GetRandomPasswordRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::PutResourcePolicyResponse> PutResourcePolicy(
      const secrets::v1::PutResourcePolicyRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::ValidateResourcePolicyResponse> ValidateResourcePolicy(
      const secrets::v1::ValidateResourcePolicyRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::GetResourcePolicyResponse> GetResourcePolicy(
      const secrets::v1::GetResourcePolicyRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::DeleteResourcePolicyResponse> DeleteResourcePolicy(
      const secrets::v1::DeleteResourcePolicyRequest& request,
      const authz::Access& access = authz::Access::Trusted());

  // Validates a WatchSecrets request and returns the event filter.
  static absl::StatusOr<std::function<bool(const coffer::v1::ChangeEvent&)>> WatchFilter(
      const secrets::v1::WatchSecretsRequest& request,
      const authz::Access& access = authz::Access::Trusted());

 private:
  // The value of one version of `record` (by id, by label, or AWSCURRENT),
  // using the version read with the record when `value` holds it.
  absl::StatusOr<secrets::v1::GetSecretValueResponse> ValueOf(const SecretRecord& record,
                                                              const std::string& version_id,
                                                              const std::string& version_stage,
                                                              const ValueRead* value = nullptr);
  // PutSecretValue's transaction: `sealed` becomes version `token` of `r`
  // (or fills the placeholder of that id); `raced` when the secret changed
  // in a way that needs the value sealed again.
  absl::Status CommitPutValue(SecretRecord& r, storage::Transaction& txn, const SecretRecord& read,
                              const SealedVersion& sealed, const std::vector<std::string>& stages,
                              bool* raced, std::vector<std::string>* final_stages);
  // UpdateSecret's re-wrap of the labelled versions' data keys under
  // `new_key` (KMS ReEncrypt; the values do not change): version id ->
  // (stored bytes read, re-wrapped record).
  using Rewrapped = std::map<std::string, std::pair<std::string, VersionRecord>>;
  absl::StatusOr<Rewrapped> RewrapVersions(const SecretRecord& record, const std::string& new_key);
  // UpdateSecret's transaction.
  absl::Status CommitUpdate(SecretRecord& r, storage::Transaction& txn,
                            const secrets::v1::UpdateSecretRequest& request, bool key_changes,
                            const Rewrapped& rewrapped, const SealedVersion* sealed);

  SecretRecords* records_;
};

}  // namespace coffer::store
