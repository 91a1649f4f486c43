// SecretStore: values, versions and the secret's life cycle (create, put,
// update, move labels, delete, restore).
#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/random.h"
#include "services/store/secrets/secret_access.h"
#include "services/store/secrets/secret_store.h"
#include "services/store/secrets/staging_labels.h"

namespace coffer::store {

namespace sm = ::coffer::secrets::v1;

namespace {

constexpr size_t kMaxKmsKeyId = 2048;
constexpr int kMaxTags = 50;

struct Value {
  bool present = false;
  bool is_binary = false;
  std::string bytes;
};

// At most one of the two value fields (exactly one when `required`).
template <typename Req>
absl::StatusOr<Value> OneValue(const Req& req, bool required) {
  if (req.has_secret_string() && req.has_secret_binary()) {
    return InvalidField("secret_string", "secret_string and secret_binary are mutually exclusive",
                        reason::kInvalidParameter);
  }
  if (!req.has_secret_string() && !req.has_secret_binary()) {
    if (required) {
      return InvalidField("secret_string", "one of secret_string and secret_binary is required",
                          reason::kInvalidParameter);
    }
    return Value();
  }
  if (req.has_secret_binary()) {
    COFFER_RETURN_IF_ERROR(ValidateValueSize("secret_binary", req.secret_binary().size()));
    return Value{true, true, req.secret_binary()};
  }
  COFFER_RETURN_IF_ERROR(ValidateValueSize("secret_string", req.secret_string().size()));
  return Value{true, false, req.secret_string()};
}

absl::Status ValidateKmsKeyId(absl::string_view id) {
  if (id.size() > kMaxKmsKeyId) {
    return InvalidField("kms_key_id", "must be at most 2048 characters", reason::kInvalidParameter);
  }
  return absl::OkStatus();
}

// Raced: the secret changed between the read and the commit in a way that
// needs the value sealed again.
absl::Status Raced() { return absl::AbortedError("raced"); }

}  // namespace

absl::StatusOr<sm::CreateSecretResponse> SecretStore::CreateSecret(
    const sm::CreateSecretRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateSecretName("name", request.name()));
  COFFER_ASSIGN_OR_RETURN(const std::string token,
                          RequestToken("client_request_token", request.client_request_token()));
  COFFER_RETURN_IF_ERROR(ValidateDescription("description", request.description()));
  COFFER_RETURN_IF_ERROR(ValidateKmsKeyId(request.kms_key_id()));
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", request.tags(), kMaxTags));
  COFFER_ASSIGN_OR_RETURN(Value value, OneValue(request, /*required=*/false));
  COFFER_RETURN_IF_ERROR(access.Check("secretsmanager:CreateSecret", request.name()));

  sm::CreateSecretResponse response;
  response.set_name(request.name());
  COFFER_ASSIGN_OR_RETURN(auto existing, records_->Read(request.name()));
  if (existing) {
    if (IsDeleted(*existing)) {
      return Error(reason::kInvalidRequest,
                   absl::StrCat("You can't create this secret because a secret with the name ",
                                request.name(), " is already scheduled for deletion."),
                   request.name());
    }
    // An idempotent retry of the same create: same token, same value.
    COFFER_RETURN_IF_ERROR(records_->WithDeprecated(*existing));
    const VersionSummary* v = StagingLabels::FindVersion(*existing, token);
    if (value.present && v != nullptr && v->has_value() &&
        !request.client_request_token().empty()) {
      COFFER_ASSIGN_OR_RETURN(bool same,
                              records_->SameValue(*existing, token, value.is_binary, value.bytes));
      if (same) {
        response.set_arn(existing->arn());
        response.set_version_id(token);
        return response;
      }
    }
    return Error(reason::kResourceExists,
                 absl::StrCat("The operation failed because the secret ", request.name(),
                              " already exists."),
                 request.name());
  }

  absl::Time now = records_->clock()->Now();
  SecretRecord record;
  record.set_name(request.name());
  record.set_arn(
      SecretArn(records_->options().arns, request.name(), RandomAlnum(kArnSuffixLength)));
  record.set_description(request.description());
  record.set_kms_key_id(request.kms_key_id());
  *record.mutable_created_date() = ToProto(now);
  record.set_created_micros(absl::ToUnixMicros(now));
  *record.mutable_last_changed_date() = ToProto(now);
  *record.mutable_tags() = request.tags();
  std::sort(record.mutable_tags()->begin(), record.mutable_tags()->end(),
            [](const sm::Tag& a, const sm::Tag& b) { return a.key() < b.key(); });

  std::optional<SealedVersion> sealed;
  if (value.present) {
    COFFER_ASSIGN_OR_RETURN(sealed, records_->Seal(record, records_->KmsKeyOf(record), token,
                                                   value.is_binary, value.bytes));
    *sealed->summary.mutable_created_date() = record.created_date();
    COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(record, sealed->summary, {}));
  }
  COFFER_RETURN_IF_ERROR(records_->Insert(record, sealed ? &sealed->record : nullptr));
  response.set_arn(record.arn());
  if (sealed) response.set_version_id(token);
  return response;
}

absl::StatusOr<sm::PutSecretValueResponse> SecretStore::PutSecretValue(
    const sm::PutSecretValueRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(const std::string token,
                          RequestToken("client_request_token", request.client_request_token()));
  COFFER_RETURN_IF_ERROR(ValidateStages("version_stages", request.version_stages(), false));
  COFFER_ASSIGN_OR_RETURN(Value value, OneValue(request, /*required=*/true));
  const std::vector<std::string> stages(request.version_stages().begin(),
                                        request.version_stages().end());

  for (int attempt = 0; attempt < 3; ++attempt) {
    // Whether the token's version exists is read with the record.
    ValueRead token_version;
    token_version.version_id = token;
    COFFER_ASSIGN_OR_RETURN(SecretRecord record,
                            AuthorizeSecret(*records_, access, "secretsmanager:PutSecretValue",
                                            request.secret_id(), &token_version));
    if (IsDeleted(record)) return MarkedForDeletion(record.name());
    sm::PutSecretValueResponse response;
    response.set_arn(record.arn());
    response.set_name(record.name());
    response.set_version_id(token);
    COFFER_RETURN_IF_ERROR(CheckPendingOwnership(*records_, access, record, token, stages));
    const VersionSummary* existing = StagingLabels::FindVersion(record, token);
    // A retried put finds its version even after it lost its labels: a
    // stored value under the token that no labelled version names is a
    // deprecated one (looked up by key, not by reading every deprecated
    // summary).
    bool stored = existing != nullptr && existing->has_value();
    if (existing == nullptr) {
      COFFER_ASSIGN_OR_RETURN(auto version, records_->ReadVersion(record, token, &token_version));
      stored = version.has_value();
    }
    if (stored) {
      COFFER_ASSIGN_OR_RETURN(bool same,
                              records_->SameValue(record, token, value.is_binary, value.bytes));
      if (!same) return VersionExists(record.name());
      if (existing != nullptr) *response.mutable_version_stages() = existing->stages();
      return response;
    }
    COFFER_ASSIGN_OR_RETURN(
        SealedVersion sealed,
        records_->Seal(record, records_->KmsKeyOf(record), token, value.is_binary, value.bytes));
    bool raced = false;
    std::vector<std::string> final_stages;
    absl::Status s = records_->Mutate(
        record, coffer::v1::CHANGE_KIND_UPDATED,
        [&](SecretRecord& r, storage::Transaction& txn) {
          COFFER_RETURN_IF_ERROR(CheckPendingOwnership(*records_, access, r, token, stages));
          return CommitPutValue(r, txn, record, sealed, stages, &raced, &final_stages);
        },
        token);
    if (raced) continue;
    COFFER_RETURN_IF_ERROR(s);
    for (const auto& st : final_stages) response.add_version_stages(st);
    return response;
  }
  return Error(reason::kInternal, "too many concurrent writers of this version",
               request.secret_id());
}

absl::Status SecretStore::CommitPutValue(SecretRecord& r, storage::Transaction& txn,
                                         const SecretRecord& read, const SealedVersion& sealed,
                                         const std::vector<std::string>& stages, bool* raced,
                                         std::vector<std::string>* final_stages) {
  *raced = false;
  if (IsDeleted(r)) return MarkedForDeletion(r.name());
  const std::string& token = sealed.summary.version_id();
  if (records_->KmsKeyOf(r) != records_->KmsKeyOf(read)) {
    *raced = true;  // the secret's KMS key changed meanwhile: seal again under the new one
    return Raced();
  }
  const VersionSummary* now_existing = StagingLabels::FindVersion(r, token);
  if (now_existing != nullptr && now_existing->has_value()) {
    *raced = true;  // someone wrote this token meanwhile: start over
    return Raced();
  }
  // A version without a value under the token (e.g. rotation's AWSPENDING):
  // this put gives it one.
  const bool fills_placeholder = now_existing != nullptr;
  absl::Time now = records_->clock()->Now();
  VersionSummary summary;
  std::vector<std::string> wanted = stages;
  if (fills_placeholder) {
    summary = *now_existing;
    // The placeholder keeps its labels unless the caller names others.
    if (wanted.empty()) wanted.assign(summary.stages().begin(), summary.stages().end());
    auto* versions = r.mutable_versions();
    versions->erase(
        std::remove_if(versions->begin(), versions->end(),
                       [&](const VersionSummary& v) { return v.version_id() == token; }),
        versions->end());
  } else {
    summary.set_version_id(token);
    *summary.mutable_created_date() = ToProto(now);
  }
  summary.set_kms_key_arn(sealed.summary.kms_key_arn());
  summary.set_has_value(true);
  COFFER_RETURN_IF_ERROR(records_->AddVersion(r, txn, sealed.record, summary, wanted, now));
  *r.mutable_last_changed_date() = ToProto(now);
  const VersionSummary* added = StagingLabels::FindVersion(r, token);
  final_stages->assign(added->stages().begin(), added->stages().end());
  return absl::OkStatus();
}

absl::StatusOr<sm::UpdateSecretResponse> SecretStore::UpdateSecret(
    const sm::UpdateSecretRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(const std::string token,
                          RequestToken("client_request_token", request.client_request_token()));
  if (request.has_description()) {
    COFFER_RETURN_IF_ERROR(ValidateDescription("description", request.description()));
  }
  COFFER_RETURN_IF_ERROR(ValidateKmsKeyId(request.kms_key_id()));
  COFFER_ASSIGN_OR_RETURN(Value value, OneValue(request, /*required=*/false));
  if (!value.present && !request.has_description() && request.kms_key_id().empty()) {
    return InvalidField("secret_id",
                        "nothing to update: give description, kms_key_id, secret_string or "
                        "secret_binary",
                        reason::kInvalidParameter);
  }

  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:UpdateSecret", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  if (value.present) {
    COFFER_RETURN_IF_ERROR(records_->WithDeprecated(record));
    if (StagingLabels::FindVersion(record, token) != nullptr) return VersionExists(record.name());
  }
  const bool key_changes =
      !request.kms_key_id().empty() && request.kms_key_id() != record.kms_key_id();
  const std::string new_key = key_changes ? request.kms_key_id() : records_->KmsKeyOf(record);
  Rewrapped rewrapped;
  if (key_changes) {
    COFFER_ASSIGN_OR_RETURN(rewrapped, RewrapVersions(record, new_key));
  }
  std::optional<SealedVersion> sealed;
  if (value.present) {
    COFFER_ASSIGN_OR_RETURN(sealed,
                            records_->Seal(record, new_key, token, value.is_binary, value.bytes));
  }

  COFFER_RETURN_IF_ERROR(records_->Mutate(
      record,
      value.present ? coffer::v1::CHANGE_KIND_UPDATED : coffer::v1::CHANGE_KIND_METADATA_UPDATED,
      [&](SecretRecord& r, storage::Transaction& txn) {
        return CommitUpdate(r, txn, request, key_changes, rewrapped, sealed ? &*sealed : nullptr);
      },
      value.present ? token : ""));
  sm::UpdateSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  if (value.present) response.set_version_id(token);
  return response;
}

absl::StatusOr<SecretStore::Rewrapped> SecretStore::RewrapVersions(const SecretRecord& record,
                                                                   const std::string& new_key) {
  Rewrapped rewrapped;
  for (const auto& v : record.versions()) {
    if (v.stages().empty() || !v.has_value()) continue;
    COFFER_ASSIGN_OR_RETURN(auto stored, records_->ReadVersion(record, v.version_id()));
    if (!stored) continue;
    VersionRecord& version = stored->second;
    COFFER_ASSIGN_OR_RETURN(auto wrapped, records_->Rewrap(record, v.version_id(),
                                                           version.wrapped_data_key(), new_key));
    version.set_wrapped_data_key(wrapped.first);
    version.set_kms_key_arn(wrapped.second);
    rewrapped[v.version_id()] = *std::move(stored);
  }
  return rewrapped;
}

absl::Status SecretStore::CommitUpdate(SecretRecord& r, storage::Transaction& txn,
                                       const sm::UpdateSecretRequest& request, bool key_changes,
                                       const Rewrapped& rewrapped, const SealedVersion* sealed) {
  if (IsDeleted(r)) return MarkedForDeletion(r.name());
  absl::Time now = records_->clock()->Now();
  if (request.has_description()) r.set_description(request.description());
  if (key_changes) {
    for (const auto& v : r.versions()) {
      if (!v.stages().empty() && v.has_value() && rewrapped.count(v.version_id()) == 0) {
        return ErrorWithCode(absl::StatusCode::kAborted, reason::kInternal,
                             "a version was added while the key was being changed; retry",
                             r.name());
      }
    }
    r.set_kms_key_id(request.kms_key_id());
    for (const auto& [id, change] : rewrapped) {
      COFFER_RETURN_IF_ERROR(records_->ReplaceVersion(r, txn, change.first, change.second));
    }
  }
  if (sealed != nullptr) {
    if (StagingLabels::FindVersion(r, sealed->summary.version_id()) != nullptr) {
      return VersionExists(r.name());
    }
    VersionSummary summary = sealed->summary;
    *summary.mutable_created_date() = ToProto(now);
    COFFER_RETURN_IF_ERROR(records_->AddVersion(r, txn, sealed->record, summary, {}, now));
  }
  *r.mutable_last_changed_date() = ToProto(now);
  return absl::OkStatus();
}

absl::StatusOr<sm::UpdateSecretVersionStageResponse> SecretStore::UpdateSecretVersionStage(
    const sm::UpdateSecretVersionStageRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateStage("version_stage", request.version_stage()));
  if (!request.remove_from_version_id().empty()) {
    COFFER_RETURN_IF_ERROR(
        ValidateVersionId("remove_from_version_id", request.remove_from_version_id()));
  }
  if (!request.move_to_version_id().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("move_to_version_id", request.move_to_version_id()));
  }
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:UpdateSecretVersionStage",
                      request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(records_->Mutate(
      record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
      [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
        if (IsDeleted(r)) return MarkedForDeletion(r.name());
        COFFER_RETURN_IF_ERROR(CheckPendingOwnership(
            *records_, access, r, request.move_to_version_id(), {request.version_stage()}));
        COFFER_RETURN_IF_ERROR(StagingLabels::MoveStage(r, request.version_stage(),
                                                        request.remove_from_version_id(),
                                                        request.move_to_version_id()));
        *r.mutable_last_changed_date() = ToProto(records_->clock()->Now());
        return absl::OkStatus();
      }));
  sm::UpdateSecretVersionStageResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

absl::StatusOr<sm::DeleteSecretResponse> SecretStore::DeleteSecret(
    const sm::DeleteSecretRequest& request, const authz::Access& access) {
  if (request.force_delete_without_recovery() && request.recovery_window_in_days() != 0) {
    return InvalidField("recovery_window_in_days",
                        "recovery_window_in_days and force_delete_without_recovery are mutually "
                        "exclusive",
                        reason::kInvalidParameter);
  }
  int64_t days = request.recovery_window_in_days() == 0 ? 30 : request.recovery_window_in_days();
  if (days < 7 || days > 30) {
    return InvalidField("recovery_window_in_days", "must be between 7 and 30",
                        reason::kInvalidParameter);
  }
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:DeleteSecret", request.secret_id()));
  absl::Time now = records_->clock()->Now();
  sm::DeleteSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  if (request.force_delete_without_recovery()) {
    COFFER_RETURN_IF_ERROR(records_->Purge(record));
    *response.mutable_deletion_date() = ToProto(now);
    return response;
  }
  if (IsDeleted(record)) {
    return Error(reason::kInvalidRequest,
                 "The secret is already scheduled for deletion; restore it first or force the "
                 "deletion.",
                 record.name());
  }
  absl::Time deletion = now + absl::Hours(24 * days);
  COFFER_RETURN_IF_ERROR(
      records_->Mutate(record, coffer::v1::CHANGE_KIND_DELETION_SCHEDULED,
                       [&](SecretRecord& r, storage::Transaction& txn) -> absl::Status {
                         if (IsDeleted(r)) return MarkedForDeletion(r.name());
                         records_->ScheduleDeletion(r, txn, now, deletion);
                         return absl::OkStatus();
                       }));
  *response.mutable_deletion_date() = ToProto(deletion);
  return response;
}

absl::StatusOr<sm::RestoreSecretResponse> SecretStore::RestoreSecret(
    const sm::RestoreSecretRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:RestoreSecret", request.secret_id()));
  if (IsDeleted(record)) {
    COFFER_RETURN_IF_ERROR(records_->Mutate(
        record, coffer::v1::CHANGE_KIND_RESTORED, [&](SecretRecord& r, storage::Transaction& txn) {
          records_->CancelDeletion(r, txn);
          *r.mutable_last_changed_date() = ToProto(records_->clock()->Now());
          return absl::OkStatus();
        }));
  }
  sm::RestoreSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

}  // namespace coffer::store
