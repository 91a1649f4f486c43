#include "services/store/secret_store.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/errors.h"
#include "libs/common/proto_time.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/password.h"
#include "libs/crypto/random.h"
#include "libs/schedule/schedule.h"
#include "libs/crypto/secure_buffer.h"
#include "services/store/secret_list.h"
#include "services/store/staging_labels.h"

namespace coffer::store {

using ::coffer::internal::store::v1::ListIndexEntry;
using ::coffer::internal::store::v1::ValueType;
using ::coffer::internal::store::v1::VersionRecord;
using ::coffer::internal::store::v1::VersionSummary;
namespace sm = ::coffer::secrets::v1;

namespace {

constexpr char kSecretsFamily[] = "secrets";
constexpr char kVersionsFamily[] = "versions";
constexpr char kByDeletionFamily[] = "by_deletion";
constexpr char kRotationsFamily[] = "rotations";
constexpr size_t kMaxKmsKeyId = 2048;
constexpr size_t kMaxPolicy = 20480;
constexpr int kMaxTags = 50;

std::string VersionKey(absl::string_view name, absl::string_view version_id) {
  return absl::StrCat(name, std::string(1, '\0'), version_id);
}

std::string DeletionKey(absl::Time when, absl::string_view name) {
  return IndexKey(absl::ToUnixMicros(when), name);
}

EncryptionContext ContextOf(const std::string& arn, const std::string& version_id) {
  return {{"SecretARN", arn}, {"SecretVersionId", version_id}};
}

absl::Status NotFound(absl::string_view secret_id) {
  return Error(reason::kResourceNotFound, "Secrets Manager can't find the specified secret.",
               secret_id);
}

absl::Status MarkedForDeletion(const std::string& name) {
  return Error(reason::kInvalidRequest,
               "You can't perform this operation on the secret because it was marked for "
               "deletion.",
               name);
}

bool IsDeleted(const SecretStore::SecretRecord& r) { return r.has_deletion_date(); }

ListIndexEntry IndexEntryOf(const SecretStore::SecretRecord& r) {
  ListIndexEntry e;
  e.set_name(r.name());
  e.set_description(r.description());
  *e.mutable_tags() = r.tags();
  e.set_planned_deletion(IsDeleted(r));
  return e;
}

}  // namespace

// The rotations index entry of a record ("" = not in the index): what a
// rotator needs to schedule it.
std::string RotationIndexEntry(const SecretStore::SecretRecord& r) {
  if (!r.rotation().enabled() || IsDeleted(r)) return "";
  rotation::v1::RotationScheduleEntry e;
  e.set_secret_arn(r.arn());
  e.set_name(r.name());
  e.set_rotation_worker(r.rotation().worker());
  *e.mutable_next_rotation_date() = r.rotation().next_rotation_date();
  e.set_in_progress(r.rotation_run().next_step() != 0);
  if (r.rotation_run().has_lease_expires()) *e.mutable_lease_expires() = r.rotation_run().lease_expires();
  return e.SerializeAsString();
}

namespace {

// Exactly one of the two value fields; returns (is_binary, bytes).
template <typename Req>
absl::StatusOr<std::pair<bool, std::string>> OneValue(const Req& req, bool required) {
  if (req.has_secret_string() && req.has_secret_binary()) {
    return InvalidField("secret_string",
                        "secret_string and secret_binary are mutually exclusive",
                        reason::kInvalidParameter);
  }
  if (!req.has_secret_string() && !req.has_secret_binary()) {
    if (required) {
      return InvalidField("secret_string", "one of secret_string and secret_binary is required",
                          reason::kInvalidParameter);
    }
    return std::make_pair(false, std::string());
  }
  if (req.has_secret_binary()) {
    COFFER_RETURN_IF_ERROR(ValidateValueSize("secret_binary", req.secret_binary().size()));
    return std::make_pair(true, req.secret_binary());
  }
  COFFER_RETURN_IF_ERROR(ValidateValueSize("secret_string", req.secret_string().size()));
  return std::make_pair(false, req.secret_string());
}

absl::Status ValidateKmsKeyId(absl::string_view id) {
  if (id.size() > kMaxKmsKeyId) {
    return InvalidField("kms_key_id", "must be at most 2048 characters", reason::kInvalidParameter);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageSize(absl::string_view field, int value, int max, int dflt) {
  if (value == 0) return dflt;
  if (value < 1 || value > max) {
    return InvalidField(field, absl::StrCat("must be between 1 and ", max),
                        reason::kInvalidParameter);
  }
  return value;
}

template <typename Entry>
void FillRotationAndDates(const SecretStore::SecretRecord& r, Entry* e) {
  e->set_rotation_enabled(r.rotation().enabled());
  e->set_rotation_worker(r.rotation().worker());
  if (r.rotation().has_rules()) *e->mutable_rotation_rules() = r.rotation().rules();
  if (r.rotation().has_last_rotated_date()) *e->mutable_last_rotated_date() = r.rotation().last_rotated_date();
  if (r.rotation().enabled() && r.rotation().has_next_rotation_date()) {
    *e->mutable_next_rotation_date() = r.rotation().next_rotation_date();
  }
  e->set_arn(r.arn());
  e->set_name(r.name());
  e->set_description(r.description());
  e->set_kms_key_id(r.kms_key_id());
  *e->mutable_created_date() = r.created_date();
  if (r.has_last_changed_date()) *e->mutable_last_changed_date() = r.last_changed_date();
  if (r.has_last_accessed_date()) *e->mutable_last_accessed_date() = r.last_accessed_date();
  if (r.has_deleted_date()) *e->mutable_deleted_date() = r.deleted_date();
  *e->mutable_tags() = r.tags();
}

void SortTags(google::protobuf::RepeatedPtrField<sm::Tag>* tags) {
  std::sort(tags->begin(), tags->end(),
            [](const sm::Tag& a, const sm::Tag& b) { return a.key() < b.key(); });
}

// Version list tokens: base64url("v1:" + last version id returned).
std::string EncodeVersionToken(absl::string_view id) {
  return absl::WebSafeBase64Escape(absl::StrCat("v1:", id));
}

}  // namespace

std::vector<std::string> SecretStore::ColumnFamilies() {
  return {kSecretsFamily, kVersionsFamily, kByCreatedFamily, kByDeletionFamily, kRotationsFamily};
}

SecretStore::SecretStore(storage::Database* db, Envelope* envelope, SecretStoreOptions options)
    : db_(db),
      envelope_(envelope),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : RealClock()) {}

absl::Status SecretStore::Load() {
  int64_t n = 0;
  COFFER_RETURN_IF_ERROR(db_->Scan(kSecretsFamily, {}, [&](absl::string_view, absl::string_view) {
    ++n;
    return true;
  }));
  count_.store(n);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<SecretStore::SecretRecord>> SecretStore::ReadRecord(
    const std::string& name) const {
  COFFER_ASSIGN_OR_RETURN(auto bytes, db_->Get(kSecretsFamily, name));
  if (!bytes) return std::optional<SecretRecord>();
  SecretRecord record;
  if (!record.ParseFromString(*bytes)) {
    return Error(reason::kInternal, "stored secret record is unreadable", name);
  }
  return std::optional<SecretRecord>(std::move(record));
}

absl::StatusOr<SecretStore::SecretRecord> SecretStore::Resolve(absl::string_view field,
                                                               const std::string& secret_id) const {
  COFFER_ASSIGN_OR_RETURN(SecretRef ref, ParseSecretId(options_.arns, field, secret_id));
  for (const auto& candidate : ref.candidates) {
    COFFER_ASSIGN_OR_RETURN(auto record, ReadRecord(candidate.name));
    if (record && (candidate.required_arn.empty() || record->arn() == candidate.required_arn)) {
      return *std::move(record);
    }
  }
  return NotFound(secret_id);
}

std::string SecretStore::KmsKeyOf(const SecretRecord& record) const {
  return record.kms_key_id().empty() ? options_.default_kms_key_id : record.kms_key_id();
}

absl::StatusOr<crypto::SecureBuffer> SecretStore::OpenVersion(const SecretRecord& record,
                                                              const std::string& version_id,
                                                              ValueType* type) const {
  COFFER_ASSIGN_OR_RETURN(auto bytes, db_->Get(kVersionsFamily, VersionKey(record.name(), version_id)));
  VersionRecord version;
  if (!bytes || !version.ParseFromString(*bytes)) {
    return ErrorWithCode(absl::StatusCode::kDataLoss, reason::kDecryptionFailure,
                         "the stored version of the secret is missing or unreadable",
                         record.name());
  }
  if (type != nullptr) *type = version.value_type();
  return envelope_->Open(ContextOf(record.arn(), version_id), version.wrapped_data_key(),
                         version.ciphertext());
}

absl::StatusOr<bool> SecretStore::SameValue(const SecretRecord& record,
                                            const std::string& version_id, bool is_binary,
                                            absl::string_view value) const {
  ValueType type;
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer stored, OpenVersion(record, version_id, &type));
  bool same_type = (type == internal::store::v1::VALUE_TYPE_BINARY) == is_binary;
  return same_type && crypto::ConstantTimeEquals(stored.view(), value);
}

absl::Status SecretStore::Commit(
    const std::function<absl::Status(storage::Transaction&, coffer::v1::ChangeEvent*)>& fn) {
  ChangeLog::Ticket ticket;
  if (options_.changes != nullptr) ticket = options_.changes->Reserve();
  absl::Status s = db_->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    coffer::v1::ChangeEvent event;
    COFFER_RETURN_IF_ERROR(fn(txn, &event));
    if (options_.changes != nullptr && event.kind() != coffer::v1::CHANGE_KIND_UNSPECIFIED) {
      event.set_resource_kind(coffer::v1::RESOURCE_KIND_SECRET);
      *event.mutable_time() = ToProto(clock_->Now());
      options_.changes->Stage(txn, ticket, event);
    }
    return absl::OkStatus();
  });
  if (options_.changes != nullptr) options_.changes->Finish(ticket);
  return s;
}

absl::StatusOr<std::function<bool(const coffer::v1::ChangeEvent&)>> SecretStore::WatchFilter(
    const sm::WatchSecretsRequest& request) {
  if (request.name_prefix().size() > kMaxSecretNameLength) {
    return InvalidField("name_prefix", "must be at most 512 characters", reason::kInvalidParameter);
  }
  std::string prefix = request.name_prefix();
  return std::function<bool(const coffer::v1::ChangeEvent&)>(
      [prefix](const coffer::v1::ChangeEvent& e) {
        return e.resource_kind() == coffer::v1::RESOURCE_KIND_SECRET &&
               absl::StartsWith(e.name(), prefix);
      });
}

absl::Status SecretStore::Mutate(
    const SecretRecord& resolved, coffer::v1::ChangeKind kind,
    const std::function<absl::Status(SecretRecord&, storage::Transaction&)>& mutate,
    const std::string* version) {
  return Commit([&](storage::Transaction& txn, coffer::v1::ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kSecretsFamily, resolved.name()));
    SecretRecord record;
    if (!bytes || !record.ParseFromString(*bytes) || record.arn() != resolved.arn()) {
      return NotFound(resolved.name());  // purged (and maybe re-created) meanwhile
    }
    const ListIndexEntry before = IndexEntryOf(record);
    const std::string rotation_before = RotationIndexEntry(record);
    COFFER_RETURN_IF_ERROR(mutate(record, txn));
    txn.Put(kSecretsFamily, record.name(), record.SerializeAsString());
    const std::string rotation_after = RotationIndexEntry(record);
    if (rotation_after != rotation_before) {
      if (rotation_after.empty()) {
        txn.Delete(kRotationsFamily, record.name());
      } else {
        txn.Put(kRotationsFamily, record.name(), rotation_after);
      }
    }
    ListIndexEntry after = IndexEntryOf(record);
    if (after.SerializeAsString() != before.SerializeAsString()) {
      txn.Put(kByCreatedFamily, IndexKey(record.created_micros(), record.name()),
              after.SerializeAsString());
    }
    event->set_kind(kind);
    event->set_name(record.name());
    if (version != nullptr) event->set_version(*version);
    return absl::OkStatus();
  });
}

absl::StatusOr<sm::CreateSecretResponse> SecretStore::CreateSecret(
    const sm::CreateSecretRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateSecretName("name", request.name()));
  if (!request.client_request_token().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("client_request_token", request.client_request_token()));
  }
  COFFER_RETURN_IF_ERROR(ValidateDescription("description", request.description()));
  COFFER_RETURN_IF_ERROR(ValidateKmsKeyId(request.kms_key_id()));
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", request.tags(), kMaxTags));
  COFFER_ASSIGN_OR_RETURN(auto value, OneValue(request, /*required=*/false));
  const bool has_value = request.has_secret_string() || request.has_secret_binary();
  const std::string token =
      request.client_request_token().empty() ? NewUuid() : request.client_request_token();

  COFFER_ASSIGN_OR_RETURN(auto existing, ReadRecord(request.name()));
  if (existing) {
    if (IsDeleted(*existing)) {
      return Error(reason::kInvalidRequest,
                   absl::StrCat("You can't create this secret because a secret with the name ",
                                request.name(), " is already scheduled for deletion."),
                   request.name());
    }
    // An idempotent retry of the same create: same token, same value.
    const VersionSummary* v = StagingLabels::FindVersion(*existing, token);
    if (has_value && v != nullptr && v->has_value() && !request.client_request_token().empty()) {
      COFFER_ASSIGN_OR_RETURN(bool same, SameValue(*existing, token, value.first, value.second));
      if (same) {
        sm::CreateSecretResponse response;
        response.set_arn(existing->arn());
        response.set_name(existing->name());
        response.set_version_id(token);
        return response;
      }
    }
    return Error(reason::kResourceExists,
                 absl::StrCat("The operation failed because the secret ", request.name(),
                              " already exists."),
                 request.name());
  }

  absl::Time now = clock_->Now();
  SecretRecord record;
  record.set_name(request.name());
  record.set_arn(SecretArn(options_.arns, request.name(), RandomAlnum(kArnSuffixLength)));
  record.set_description(request.description());
  record.set_kms_key_id(request.kms_key_id());
  *record.mutable_created_date() = ToProto(now);
  record.set_created_micros(absl::ToUnixMicros(now));
  *record.mutable_last_changed_date() = ToProto(now);
  *record.mutable_tags() = request.tags();
  SortTags(record.mutable_tags());

  VersionRecord version;
  if (has_value) {
    COFFER_ASSIGN_OR_RETURN(
        Envelope::Sealed sealed,
        envelope_->Seal(KmsKeyOf(record), ContextOf(record.arn(), token), value.second));
    version.set_version_id(token);
    version.set_value_type(value.first ? internal::store::v1::VALUE_TYPE_BINARY
                                       : internal::store::v1::VALUE_TYPE_STRING);
    version.set_ciphertext(std::move(sealed.ciphertext));
    version.set_wrapped_data_key(std::move(sealed.wrapped_data_key));
    version.set_kms_key_arn(sealed.kms_key_arn);
    VersionSummary summary;
    summary.set_version_id(token);
    *summary.mutable_created_date() = ToProto(now);
    summary.set_kms_key_arn(sealed.kms_key_arn);
    summary.set_has_value(true);
    COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(record, summary, {}));
  }

  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, coffer::v1::ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto current, txn.GetForUpdate(kSecretsFamily, record.name()));
    if (current) {
      return Error(reason::kResourceExists,
                   absl::StrCat("The operation failed because the secret ", request.name(),
                                " already exists."),
                   request.name());
    }
    txn.Put(kSecretsFamily, record.name(), record.SerializeAsString());
    if (has_value) txn.Put(kVersionsFamily, VersionKey(record.name(), token), version.SerializeAsString());
    txn.Put(kByCreatedFamily, IndexKey(record.created_micros(), record.name()),
            IndexEntryOf(record).SerializeAsString());
    event->set_kind(coffer::v1::CHANGE_KIND_CREATED);
    event->set_name(record.name());
    if (has_value) event->set_version(token);
    return absl::OkStatus();
  }));
  count_.fetch_add(1);
  sm::CreateSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  if (has_value) response.set_version_id(token);
  return response;
}

absl::StatusOr<sm::GetSecretValueResponse> SecretStore::ValueOf(const SecretRecord& record,
                                                                const std::string& version_id,
                                                                const std::string& version_stage) {
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  const VersionSummary* version = nullptr;
  if (!version_id.empty()) {
    version = StagingLabels::FindVersion(record, version_id);
    if (version == nullptr) {
      return Error(reason::kResourceNotFound,
                   absl::StrCat("Secrets Manager can't find the specified secret value for "
                                "VersionId: ",
                                version_id),
                   record.name());
    }
    if (!version_stage.empty() &&
        std::find(version->stages().begin(), version->stages().end(), version_stage) ==
            version->stages().end()) {
      return Error(reason::kResourceNotFound,
                   absl::StrCat("Secrets Manager can't find the specified secret value for "
                                "VersionId: ",
                                version_id, " and staging label: ", version_stage),
                   record.name());
    }
  } else {
    const std::string stage = version_stage.empty() ? kAwsCurrent : version_stage;
    version = StagingLabels::FindStage(record, stage);
    if (version == nullptr) {
      return Error(reason::kResourceNotFound,
                   absl::StrCat("Secrets Manager can't find the specified secret value for "
                                "staging label: ",
                                stage),
                   record.name());
    }
  }
  if (!version->has_value()) {
    return Error(reason::kResourceNotFound,
                 absl::StrCat("Secrets Manager can't find the specified secret value for "
                              "VersionId: ",
                              version->version_id()),
                 record.name());
  }
  ValueType type;
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plaintext,
                          OpenVersion(record, version->version_id(), &type));
  sm::GetSecretValueResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  response.set_version_id(version->version_id());
  if (type == internal::store::v1::VALUE_TYPE_BINARY) {
    response.set_secret_binary(std::string(plaintext.view()));
  } else {
    response.set_secret_string(std::string(plaintext.view()));
  }
  *response.mutable_version_stages() = version->stages();
  *response.mutable_created_date() = version->created_date();
  TouchAccessed(record, version->version_id());
  return response;
}

void SecretStore::TouchAccessed(const SecretRecord& record, const std::string& version_id) {
  // Day granularity, as AWS: at most one write per secret and day.
  absl::Time now = clock_->Now();
  absl::Time today = absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 86400 * 86400);
  if (record.has_last_accessed_date() && FromProto(record.last_accessed_date()) >= today) return;
  absl::Status s = Mutate(record, coffer::v1::CHANGE_KIND_UNSPECIFIED, [&](SecretRecord& r, storage::Transaction&) {
    *r.mutable_last_accessed_date() = ToProto(today);
    for (auto& v : *r.mutable_versions()) {
      if (v.version_id() == version_id) *v.mutable_last_accessed_date() = ToProto(today);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) log::Debug("store", "last accessed date not updated", {{"error", s.ToString()}});
}

absl::StatusOr<sm::GetSecretValueResponse> SecretStore::GetSecretValue(
    const sm::GetSecretValueRequest& request) {
  if (!request.version_id().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("version_id", request.version_id()));
  }
  if (!request.version_stage().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateStage("version_stage", request.version_stage()));
  }
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  return ValueOf(record, request.version_id(), request.version_stage());
}

absl::StatusOr<sm::BatchGetSecretValueResponse> SecretStore::BatchGetSecretValue(
    const sm::BatchGetSecretValueRequest& request) {
  const bool by_ids = request.secret_id_list_size() > 0;
  const bool by_filters = request.filters_size() > 0;
  if (by_ids == by_filters) {
    return InvalidField("secret_id_list", "give either secret_id_list or filters, not both",
                        reason::kInvalidParameter);
  }
  sm::BatchGetSecretValueResponse response;
  auto add = [&](const std::string& id, absl::StatusOr<sm::GetSecretValueResponse> got) {
    if (got.ok()) {
      auto* entry = response.add_secret_values();
      entry->set_arn(got->arn());
      entry->set_name(got->name());
      entry->set_version_id(got->version_id());
      // Moved, not copied: no second plaintext copy is freed unwiped.
      if (got->has_secret_binary()) entry->set_secret_binary(std::move(*got->mutable_secret_binary()));
      if (got->has_secret_string()) entry->set_secret_string(std::move(*got->mutable_secret_string()));
      *entry->mutable_version_stages() = got->version_stages();
      *entry->mutable_created_date() = got->created_date();
    } else {
      auto* error = response.add_errors();
      error->set_secret_id(id);
      std::string r = ErrorReason(got.status());
      error->set_error_code(r.empty() ? reason::kInternal : r);
      error->set_message(std::string(got.status().message()));
    }
  };
  if (by_ids) {
    if (request.secret_id_list_size() > 20) {
      return InvalidField("secret_id_list", "at most 20 secret ids", reason::kInvalidParameter);
    }
    std::set<std::string> seen;
    for (const std::string& id : request.secret_id_list()) {
      if (!seen.insert(id).second) {
        return InvalidField("secret_id_list", "secret ids must be unique", reason::kInvalidParameter);
      }
      sm::GetSecretValueRequest get;
      get.set_secret_id(id);
      add(id, GetSecretValue(get));
    }
    return response;
  }
  COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", request.max_results(), 20, 20));
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseFilters(request.filters()));
  ListQuery query;
  query.filters = std::move(filters);
  query.max_results = max;
  query.scan_budget = options_.list_scan_budget;
  std::string fingerprint = "batch|";
  for (const auto& f : request.filters()) fingerprint += f.SerializeAsString() + "|";
  COFFER_ASSIGN_OR_RETURN(ListPage page, ListIndex(*db_, query, fingerprint, request.next_token()));
  for (const std::string& name : page.names) {
    COFFER_ASSIGN_OR_RETURN(auto record, ReadRecord(name));
    if (!record) continue;  // purged meanwhile
    add(name, ValueOf(*record, "", ""));
  }
  response.set_next_token(page.next_token);
  return response;
}

absl::StatusOr<sm::PutSecretValueResponse> SecretStore::PutSecretValue(
    const sm::PutSecretValueRequest& request) {
  if (!request.client_request_token().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("client_request_token", request.client_request_token()));
  }
  COFFER_RETURN_IF_ERROR(ValidateStages("version_stages", request.version_stages(), false));
  COFFER_ASSIGN_OR_RETURN(auto value, OneValue(request, /*required=*/true));
  const std::string token =
      request.client_request_token().empty() ? NewUuid() : request.client_request_token();
  const std::vector<std::string> stages(request.version_stages().begin(),
                                        request.version_stages().end());

  for (int attempt = 0; attempt < 3; ++attempt) {
    COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
    if (IsDeleted(record)) return MarkedForDeletion(record.name());
    const VersionSummary* existing = StagingLabels::FindVersion(record, token);
    if (existing != nullptr && existing->has_value()) {
      COFFER_ASSIGN_OR_RETURN(bool same, SameValue(record, token, value.first, value.second));
      if (!same) {
        return Error(reason::kResourceExists,
                     "You can't modify an existing version, you can only create new versions.",
                     record.name());
      }
      sm::PutSecretValueResponse response;
      response.set_arn(record.arn());
      response.set_name(record.name());
      response.set_version_id(token);
      *response.mutable_version_stages() = existing->stages();
      return response;
    }
    const bool fills_placeholder = existing != nullptr;  // e.g. rotation's AWSPENDING

    COFFER_ASSIGN_OR_RETURN(
        Envelope::Sealed sealed,
        envelope_->Seal(KmsKeyOf(record), ContextOf(record.arn(), token), value.second));
    VersionRecord version;
    version.set_version_id(token);
    version.set_value_type(value.first ? internal::store::v1::VALUE_TYPE_BINARY
                                       : internal::store::v1::VALUE_TYPE_STRING);
    version.set_ciphertext(std::move(sealed.ciphertext));
    version.set_wrapped_data_key(std::move(sealed.wrapped_data_key));
    version.set_kms_key_arn(sealed.kms_key_arn);

    bool raced = false;
    std::vector<std::string> final_stages;
    absl::Status s = Mutate(record, coffer::v1::CHANGE_KIND_UPDATED, [&](SecretRecord& r, storage::Transaction& txn) -> absl::Status {
      raced = false;
      if (IsDeleted(r)) return MarkedForDeletion(r.name());
      if (KmsKeyOf(r) != KmsKeyOf(record)) {
        raced = true;  // the secret's KMS key changed meanwhile: seal again under the new one
        return absl::AbortedError("raced");
      }
      const VersionSummary* now_existing = StagingLabels::FindVersion(r, token);
      if ((now_existing != nullptr) != fills_placeholder ||
          (now_existing != nullptr && now_existing->has_value())) {
        raced = true;  // someone wrote this token meanwhile: start over
        return absl::AbortedError("raced");
      }
      absl::Time now = clock_->Now();
      VersionSummary summary;
      std::vector<std::string> wanted = stages;
      if (fills_placeholder) {
        summary = *now_existing;
        // The placeholder keeps its labels unless the caller names others.
        if (wanted.empty()) wanted.assign(summary.stages().begin(), summary.stages().end());
        auto* versions = r.mutable_versions();
        versions->erase(std::remove_if(versions->begin(), versions->end(),
                                       [&](const VersionSummary& v) { return v.version_id() == token; }),
                        versions->end());
      } else {
        summary.set_version_id(token);
        *summary.mutable_created_date() = ToProto(now);
      }
      summary.set_kms_key_arn(version.kms_key_arn());
      summary.set_has_value(true);
      COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(r, summary, wanted));
      for (const std::string& removed : StagingLabels::RemoveDeprecated(r, now)) {
        txn.Delete(kVersionsFamily, VersionKey(r.name(), removed));
      }
      *r.mutable_last_changed_date() = ToProto(now);
      txn.Put(kVersionsFamily, VersionKey(r.name(), token), version.SerializeAsString());
      const VersionSummary* added = StagingLabels::FindVersion(r, token);
      final_stages.assign(added->stages().begin(), added->stages().end());
      return absl::OkStatus();
    }, &token);
    if (raced) continue;
    COFFER_RETURN_IF_ERROR(s);
    sm::PutSecretValueResponse response;
    response.set_arn(record.arn());
    response.set_name(record.name());
    response.set_version_id(token);
    for (const auto& st : final_stages) response.add_version_stages(st);
    return response;
  }
  return Error(reason::kInternal, "too many concurrent writers of this version", request.secret_id());
}

absl::StatusOr<sm::UpdateSecretResponse> SecretStore::UpdateSecret(
    const sm::UpdateSecretRequest& request) {
  if (!request.client_request_token().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("client_request_token", request.client_request_token()));
  }
  if (request.has_description()) {
    COFFER_RETURN_IF_ERROR(ValidateDescription("description", request.description()));
  }
  COFFER_RETURN_IF_ERROR(ValidateKmsKeyId(request.kms_key_id()));
  COFFER_ASSIGN_OR_RETURN(auto value, OneValue(request, /*required=*/false));
  const bool has_value = request.has_secret_string() || request.has_secret_binary();
  if (!has_value && !request.has_description() && request.kms_key_id().empty()) {
    return InvalidField("secret_id",
                        "nothing to update: give description, kms_key_id, secret_string or "
                        "secret_binary",
                        reason::kInvalidParameter);
  }
  const std::string token =
      request.client_request_token().empty() ? NewUuid() : request.client_request_token();

  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  if (has_value && StagingLabels::FindVersion(record, token) != nullptr) {
    return Error(reason::kResourceExists,
                 "You can't modify an existing version, you can only create new versions.",
                 record.name());
  }
  const bool key_changes =
      !request.kms_key_id().empty() && request.kms_key_id() != record.kms_key_id();
  const std::string new_key = key_changes ? request.kms_key_id() : KmsKeyOf(record);

  // Changing the key re-wraps the labelled versions' data keys in the KMS
  // (ReEncrypt); the values themselves do not change.
  std::map<std::string, std::pair<std::string, VersionRecord>> rewrapped;  // id -> (old bytes, new)
  if (key_changes) {
    for (const auto& v : record.versions()) {
      if (v.stages().empty() || !v.has_value()) continue;
      COFFER_ASSIGN_OR_RETURN(auto bytes,
                              db_->Get(kVersionsFamily, VersionKey(record.name(), v.version_id())));
      VersionRecord version;
      if (!bytes || !version.ParseFromString(*bytes)) continue;
      COFFER_ASSIGN_OR_RETURN(auto wrapped,
                              envelope_->Rewrap(ContextOf(record.arn(), v.version_id()),
                                                version.wrapped_data_key(), new_key));
      version.set_wrapped_data_key(wrapped.first);
      version.set_kms_key_arn(wrapped.second);
      rewrapped[v.version_id()] = {*bytes, std::move(version)};
    }
  }
  VersionRecord new_version;
  if (has_value) {
    COFFER_ASSIGN_OR_RETURN(Envelope::Sealed sealed,
                            envelope_->Seal(new_key, ContextOf(record.arn(), token), value.second));
    new_version.set_version_id(token);
    new_version.set_value_type(value.first ? internal::store::v1::VALUE_TYPE_BINARY
                                           : internal::store::v1::VALUE_TYPE_STRING);
    new_version.set_ciphertext(std::move(sealed.ciphertext));
    new_version.set_wrapped_data_key(std::move(sealed.wrapped_data_key));
    new_version.set_kms_key_arn(sealed.kms_key_arn);
  }

  const std::string event_version = has_value ? token : "";
  COFFER_RETURN_IF_ERROR(Mutate(record,
                                has_value ? coffer::v1::CHANGE_KIND_UPDATED
                                          : coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                [&](SecretRecord& r, storage::Transaction& txn) -> absl::Status {
    if (IsDeleted(r)) return MarkedForDeletion(r.name());
    absl::Time now = clock_->Now();
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
      for (auto& [id, change] : rewrapped) {
        COFFER_ASSIGN_OR_RETURN(auto current, txn.GetForUpdate(kVersionsFamily, VersionKey(r.name(), id)));
        if (!current || *current != change.first) {
          return absl::AbortedError("a version changed while its key was being changed; retry");
        }
        txn.Put(kVersionsFamily, VersionKey(r.name(), id), change.second.SerializeAsString());
        for (auto& v : *r.mutable_versions()) {
          if (v.version_id() == id) v.set_kms_key_arn(change.second.kms_key_arn());
        }
      }
    }
    if (has_value) {
      if (StagingLabels::FindVersion(r, token) != nullptr) {
        return Error(reason::kResourceExists,
                     "You can't modify an existing version, you can only create new versions.",
                     r.name());
      }
      VersionSummary summary;
      summary.set_version_id(token);
      *summary.mutable_created_date() = ToProto(now);
      summary.set_kms_key_arn(new_version.kms_key_arn());
      summary.set_has_value(true);
      COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(r, summary, {}));
      for (const std::string& removed : StagingLabels::RemoveDeprecated(r, now)) {
        txn.Delete(kVersionsFamily, VersionKey(r.name(), removed));
      }
      txn.Put(kVersionsFamily, VersionKey(r.name(), token), new_version.SerializeAsString());
    }
    *r.mutable_last_changed_date() = ToProto(now);
    return absl::OkStatus();
  }, &event_version));
  sm::UpdateSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  if (has_value) response.set_version_id(token);
  return response;
}

absl::StatusOr<sm::UpdateSecretVersionStageResponse> SecretStore::UpdateSecretVersionStage(
    const sm::UpdateSecretVersionStageRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateStage("version_stage", request.version_stage()));
  if (!request.remove_from_version_id().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("remove_from_version_id", request.remove_from_version_id()));
  }
  if (!request.move_to_version_id().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("move_to_version_id", request.move_to_version_id()));
  }
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED, [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
    if (IsDeleted(r)) return MarkedForDeletion(r.name());
    COFFER_RETURN_IF_ERROR(StagingLabels::MoveStage(r, request.version_stage(),
                                                    request.remove_from_version_id(),
                                                    request.move_to_version_id()));
    *r.mutable_last_changed_date() = ToProto(clock_->Now());
    return absl::OkStatus();
  }));
  sm::UpdateSecretVersionStageResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

absl::StatusOr<sm::DescribeSecretResponse> SecretStore::DescribeSecret(
    const sm::DescribeSecretRequest& request) {
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  sm::DescribeSecretResponse response;
  FillRotationAndDates(record, &response);
  if (record.has_deletion_date()) *response.mutable_deletion_date() = record.deletion_date();
  if (record.rotation_run().has_state()) *response.mutable_rotation_state() = record.rotation_run().state();
  for (const auto& v : record.versions()) {
    if (v.stages().empty()) continue;
    *(*response.mutable_version_ids_to_stages())[v.version_id()].mutable_stages() = v.stages();
  }
  return response;
}

absl::StatusOr<sm::ListSecretsResponse> SecretStore::ListSecrets(
    const sm::ListSecretsRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", request.max_results(), 100, 100));
  if (!sm::SortOrder_IsValid(request.sort_order())) {
    return InvalidField("sort_order", "must be asc or desc", reason::kInvalidParameter);
  }
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseFilters(request.filters()));
  ListQuery query;
  query.filters = std::move(filters);
  query.include_planned_deletion = request.include_planned_deletion();
  query.ascending = request.sort_order() == sm::SORT_ORDER_ASC;
  query.max_results = max;
  query.scan_budget = options_.list_scan_budget;
  std::string fingerprint = absl::StrCat("list|", request.include_planned_deletion(), "|",
                                         query.ascending, "|");
  for (const auto& f : request.filters()) fingerprint += f.SerializeAsString() + "|";
  COFFER_ASSIGN_OR_RETURN(ListPage page, ListIndex(*db_, query, fingerprint, request.next_token()));
  sm::ListSecretsResponse response;
  for (const std::string& name : page.names) {
    COFFER_ASSIGN_OR_RETURN(auto record, ReadRecord(name));
    if (!record) continue;  // purged between the index scan and now
    auto* entry = response.add_secret_list();
    FillRotationAndDates(*record, entry);
    for (const auto& v : record->versions()) {
      if (v.stages().empty()) continue;
      *(*entry->mutable_secret_versions_to_stages())[v.version_id()].mutable_stages() = v.stages();
    }
  }
  response.set_next_token(page.next_token);
  return response;
}

absl::StatusOr<sm::ListSecretVersionIdsResponse> SecretStore::ListSecretVersionIds(
    const sm::ListSecretVersionIdsRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", request.max_results(), 100, 100));
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  std::vector<const VersionSummary*> versions;  // newest first
  for (int i = record.versions_size() - 1; i >= 0; --i) {
    const auto& v = record.versions(i);
    if (v.stages().empty() && !request.include_deprecated()) continue;
    versions.push_back(&v);
  }
  size_t start = 0;
  if (!request.next_token().empty()) {
    std::string raw;
    if (!absl::WebSafeBase64Unescape(request.next_token(), &raw) || !absl::StartsWith(raw, "v1:")) {
      return Error(reason::kInvalidNextToken, "next_token: is not a token returned by this operation",
                   "", "next_token");
    }
    std::string last = raw.substr(3);
    auto it = std::find_if(versions.begin(), versions.end(),
                           [&](const VersionSummary* v) { return v->version_id() == last; });
    if (it == versions.end()) {
      return Error(reason::kInvalidNextToken,
                   "next_token: the version it continues from no longer exists", "", "next_token");
    }
    start = static_cast<size_t>(it - versions.begin()) + 1;
  }
  sm::ListSecretVersionIdsResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  size_t i = start;
  for (; i < versions.size() && response.versions_size() < max; ++i) {
    const VersionSummary& v = *versions[i];
    auto* entry = response.add_versions();
    entry->set_version_id(v.version_id());
    *entry->mutable_version_stages() = v.stages();
    *entry->mutable_created_date() = v.created_date();
    if (v.has_last_accessed_date()) *entry->mutable_last_accessed_date() = v.last_accessed_date();
    if (!v.kms_key_arn().empty()) entry->add_kms_key_ids(v.kms_key_arn());
  }
  if (i < versions.size()) {
    response.set_next_token(EncodeVersionToken(versions[i - 1]->version_id()));
  }
  return response;
}

absl::Status SecretStore::Purge(const SecretRecord& resolved, bool only_if_due) {
  std::vector<std::string> version_keys;
  storage::ScanOptions scan;
  scan.prefix = resolved.name() + std::string(1, '\0');
  COFFER_RETURN_IF_ERROR(db_->Scan(kVersionsFamily, scan, [&](absl::string_view k, absl::string_view) {
    version_keys.emplace_back(k);
    return true;
  }));
  bool purged = false;
  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, coffer::v1::ChangeEvent* event) -> absl::Status {
    purged = false;
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kSecretsFamily, resolved.name()));
    SecretRecord record;
    if (!bytes || !record.ParseFromString(*bytes) || record.arn() != resolved.arn()) {
      return absl::OkStatus();  // already gone
    }
    // The sweeper decided from a read outside this transaction: a secret
    // restored (or re-scheduled) since then must not be purged.
    if (only_if_due && (!record.has_deletion_date() ||
                        FromProto(record.deletion_date()) > clock_->Now())) {
      return absl::OkStatus();
    }
    txn.Delete(kSecretsFamily, record.name());
    for (const auto& k : version_keys) txn.Delete(kVersionsFamily, k);
    // Versions committed between the scan above and this transaction's read
    // are in the record read here.
    for (const auto& v : record.versions()) {
      txn.Delete(kVersionsFamily, VersionKey(record.name(), v.version_id()));
    }
    txn.Delete(kByCreatedFamily, IndexKey(record.created_micros(), record.name()));
    txn.Delete(kRotationsFamily, record.name());
    if (record.has_deletion_date()) {
      txn.Delete(kByDeletionFamily, DeletionKey(FromProto(record.deletion_date()), record.name()));
    }
    event->set_kind(coffer::v1::CHANGE_KIND_DELETED);
    event->set_name(record.name());
    purged = true;
    return absl::OkStatus();
  }));
  if (purged) count_.fetch_sub(1);
  return absl::OkStatus();
}

absl::StatusOr<sm::DeleteSecretResponse> SecretStore::DeleteSecret(
    const sm::DeleteSecretRequest& request) {
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
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  absl::Time now = clock_->Now();
  sm::DeleteSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  if (request.force_delete_without_recovery()) {
    COFFER_RETURN_IF_ERROR(Purge(record));
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
  COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_DELETION_SCHEDULED, [&](SecretRecord& r, storage::Transaction& txn) -> absl::Status {
    if (IsDeleted(r)) return MarkedForDeletion(r.name());
    *r.mutable_deleted_date() = ToProto(now);
    *r.mutable_deletion_date() = ToProto(deletion);
    txn.Put(kByDeletionFamily, DeletionKey(deletion, r.name()), "");
    return absl::OkStatus();
  }));
  *response.mutable_deletion_date() = ToProto(deletion);
  return response;
}

absl::StatusOr<sm::RestoreSecretResponse> SecretStore::RestoreSecret(
    const sm::RestoreSecretRequest& request) {
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) {
    COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_RESTORED, [&](SecretRecord& r, storage::Transaction& txn) {
      if (r.has_deletion_date()) {
        txn.Delete(kByDeletionFamily, DeletionKey(FromProto(r.deletion_date()), r.name()));
      }
      r.clear_deleted_date();
      r.clear_deletion_date();
      *r.mutable_last_changed_date() = ToProto(clock_->Now());
      return absl::OkStatus();
    }));
  }
  sm::RestoreSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

absl::StatusOr<sm::TagResourceResponse> SecretStore::TagResource(const sm::TagResourceRequest& request) {
  if (request.tags().empty()) {
    return InvalidField("tags", "at least one tag is required", reason::kInvalidParameter);
  }
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", request.tags(), kMaxTags));
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED, [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
    std::map<std::string, std::string> merged;
    for (const auto& t : r.tags()) merged[t.key()] = t.value();
    for (const auto& t : request.tags()) merged[t.key()] = t.value();
    if (static_cast<int>(merged.size()) > kMaxTags) {
      return Error(reason::kLimitExceeded,
                   absl::StrCat("tags: a secret may have at most ", kMaxTags, " tags"), r.name(),
                   "tags");
    }
    r.clear_tags();
    for (const auto& [k, v] : merged) {
      auto* t = r.add_tags();
      t->set_key(k);
      t->set_value(v);
    }
    *r.mutable_last_changed_date() = ToProto(clock_->Now());
    return absl::OkStatus();
  }));
  return sm::TagResourceResponse();
}

absl::StatusOr<sm::UntagResourceResponse> SecretStore::UntagResource(
    const sm::UntagResourceRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateTagKeys("tag_keys", request.tag_keys()));
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED, [&](SecretRecord& r, storage::Transaction&) {
    std::set<std::string> remove(request.tag_keys().begin(), request.tag_keys().end());
    auto* tags = r.mutable_tags();
    tags->erase(std::remove_if(tags->begin(), tags->end(),
                               [&](const sm::Tag& t) { return remove.count(t.key()) > 0; }),
                tags->end());
    *r.mutable_last_changed_date() = ToProto(clock_->Now());
    return absl::OkStatus();
  }));
  return sm::UntagResourceResponse();
}

absl::StatusOr<sm::GetRandomPasswordResponse> SecretStore::GetRandomPassword(
    const sm::GetRandomPasswordRequest& request) {
  if (request.exclude_characters().size() > 4096) {
    return InvalidField("exclude_characters", "must be at most 4096 characters",
                        reason::kInvalidParameter);
  }
  crypto::PasswordOptions options;
  if (request.password_length() != 0) {
    if (request.password_length() < 1 || request.password_length() > 4096) {
      return InvalidField("password_length", "must be between 1 and 4096", reason::kInvalidParameter);
    }
    options.length = static_cast<int>(request.password_length());
  }
  options.exclude_characters = request.exclude_characters();
  options.exclude_numbers = request.exclude_numbers();
  options.exclude_punctuation = request.exclude_punctuation();
  options.exclude_uppercase = request.exclude_uppercase();
  options.exclude_lowercase = request.exclude_lowercase();
  options.include_space = request.include_space();
  options.require_each_included_type =
      request.has_require_each_included_type() ? request.require_each_included_type() : true;
  COFFER_ASSIGN_OR_RETURN(std::string password, crypto::GeneratePassword(options));
  sm::GetRandomPasswordResponse response;
  response.set_random_password(std::move(password));
  return response;
}

absl::StatusOr<sm::PutResourcePolicyResponse> SecretStore::PutResourcePolicy(
    const sm::PutResourcePolicyRequest& request) {
  const std::string& policy = request.resource_policy();
  if (policy.empty() || policy.size() > kMaxPolicy) {
    return InvalidField("resource_policy", "must be 1-20480 characters", reason::kInvalidParameter);
  }
  google::protobuf::Value parsed;
  if (!google::protobuf::util::JsonStringToMessage(policy, &parsed).ok() ||
      parsed.kind_case() != google::protobuf::Value::kStructValue) {
    return Error(reason::kMalformedPolicyDocument,
                 "resource_policy: must be a JSON object (a policy document)", "",
                 "resource_policy");
  }
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED, [&](SecretRecord& r, storage::Transaction&) {
    r.set_resource_policy(policy);
    *r.mutable_last_changed_date() = ToProto(clock_->Now());
    return absl::OkStatus();
  }));
  sm::PutResourcePolicyResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

absl::StatusOr<sm::GetResourcePolicyResponse> SecretStore::GetResourcePolicy(
    const sm::GetResourcePolicyRequest& request) {
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  sm::GetResourcePolicyResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  response.set_resource_policy(record.resource_policy());
  return response;
}

absl::StatusOr<sm::DeleteResourcePolicyResponse> SecretStore::DeleteResourcePolicy(
    const sm::DeleteResourcePolicyRequest& request) {
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (!record.resource_policy().empty()) {
    COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED, [&](SecretRecord& r, storage::Transaction&) {
      r.clear_resource_policy();
      *r.mutable_last_changed_date() = ToProto(clock_->Now());
      return absl::OkStatus();
    }));
  }
  sm::DeleteResourcePolicyResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

absl::StatusOr<int> SecretStore::PurgeExpired() {
  absl::Time now = clock_->Now();
  std::vector<std::string> keys;
  storage::ScanOptions scan;
  scan.end_before = DeletionKey(now + absl::Microseconds(1), "");
  scan.limit = 1000;
  COFFER_RETURN_IF_ERROR(db_->Scan(kByDeletionFamily, scan, [&](absl::string_view k, absl::string_view) {
    keys.emplace_back(k);
    return true;
  }));
  int purged = 0;
  for (const std::string& key : keys) {
    std::string name = key.substr(8);
    COFFER_ASSIGN_OR_RETURN(auto record, ReadRecord(name));
    if (!record || !record->has_deletion_date() ||
        DeletionKey(FromProto(record->deletion_date()), name) != key) {
      // A leftover entry (restored or re-scheduled secret): drop it so it
      // never crowds out due ones.
      COFFER_RETURN_IF_ERROR(db_->Delete(kByDeletionFamily, key));
      continue;
    }
    COFFER_RETURN_IF_ERROR(Purge(*record, /*only_if_due=*/true));
    ++purged;
  }
  return purged;
}

}  // namespace coffer::store

// ---- Rotation (rotation.md) ----

namespace coffer::store {
namespace {

namespace rot = ::coffer::rotation::v1;

const char* StepName(int step) {
  switch (step) {
    case rot::ROTATION_STEP_CREATE_SECRET: return "createSecret";
    case rot::ROTATION_STEP_SET_SECRET: return "setSecret";
    case rot::ROTATION_STEP_TEST_SECRET: return "testSecret";
    case rot::ROTATION_STEP_FINISH_SECRET: return "finishSecret";
    default: return "";
  }
}

absl::Status ValidateWorkerName(absl::string_view name) {
  if (name.empty() || name.size() > 256) {
    return InvalidField("rotation_worker", "must be 1-256 characters", reason::kInvalidParameter);
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) {
      return InvalidField("rotation_worker", "may contain only letters, digits and _.-",
                          reason::kInvalidParameter);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> LeaseDuration(const google::protobuf::Duration& d) {
  absl::Duration duration = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  if (duration < absl::Seconds(1) || duration > absl::Minutes(10)) {
    return InvalidField("lease_duration", "must be between 1 second and 10 minutes",
                        reason::kInvalidParameter);
  }
  return duration;
}

absl::Status LeaseLost(absl::string_view name) {
  return ErrorWithCode(absl::StatusCode::kAborted, reason::kPreconditionNotMet,
                       "the rotation lease was lost (expired or taken over by another rotator)",
                       name);
}

}  // namespace

absl::Time SecretStore::NextRotation(const SecretRecord& record, absl::Time after) const {
  const auto& rules = record.rotation().rules();
  auto schedule = schedule::RotationSchedule::Parse(rules.automatically_after_days(),
                                                    rules.schedule_expression(), rules.duration());
  if (!schedule.ok()) return absl::InfiniteFuture();
  absl::Time window = schedule->NextWindowStart(after);
  if (window == absl::InfiniteFuture()) return window;
  // A random moment inside the window, so secrets sharing a schedule do not
  // all rotate in the same second.
  double fraction = static_cast<double>(crypto::RandomUniform(1u << 30)) / (1u << 30);
  return schedule->StartInWindow(window, fraction);
}

absl::StatusOr<sm::RotateSecretResponse> SecretStore::RotateSecret(
    const sm::RotateSecretRequest& request) {
  if (!request.client_request_token().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("client_request_token", request.client_request_token()));
  }
  if (!request.rotation_worker().empty()) COFFER_RETURN_IF_ERROR(ValidateWorkerName(request.rotation_worker()));
  if (request.has_rotation_rules()) {
    const auto& rules = request.rotation_rules();
    COFFER_RETURN_IF_ERROR(schedule::RotationSchedule::Parse(rules.automatically_after_days(),
                                                             rules.schedule_expression(),
                                                             rules.duration())
                               .status());
  }
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  const std::string worker =
      request.rotation_worker().empty() ? record.rotation().worker() : request.rotation_worker();
  if (worker.empty()) {
    return InvalidField("rotation_worker", "is required to enable rotation", reason::kInvalidParameter);
  }
  if (!request.has_rotation_rules() && !record.rotation().has_rules()) {
    return InvalidField("rotation_rules", "are required to enable rotation", reason::kInvalidParameter);
  }
  const bool immediately = request.has_rotate_immediately() ? request.rotate_immediately() : true;
  const std::string token =
      request.client_request_token().empty() ? NewUuid() : request.client_request_token();

  COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
    if (IsDeleted(r)) return MarkedForDeletion(r.name());
    const VersionSummary* current = StagingLabels::FindStage(r, kAwsCurrent);
    const VersionSummary* pending = StagingLabels::FindStage(r, kAwsPending);
    if (pending != nullptr && pending != current) {
      return Error(reason::kInvalidRequest,
                   "A previous rotation isn't complete. That rotation will be reattempted.",
                   r.name());
    }
    if (r.rotation_run().next_step() != 0) {
      return Error(reason::kInvalidRequest, "A rotation of this secret is already in progress.",
                   r.name());
    }
    absl::Time now = clock_->Now();
    auto* rotation = r.mutable_rotation();
    rotation->set_enabled(true);
    rotation->set_worker(worker);
    if (request.has_rotation_rules()) *rotation->mutable_rules() = request.rotation_rules();
    if (!immediately) {
      *rotation->mutable_next_rotation_date() = ToProto(NextRotation(r, now));
      return absl::OkStatus();
    }
    if (current == nullptr || !current->has_value()) {
      return Error(reason::kInvalidRequest,
                   "The secret has no AWSCURRENT value to rotate; store one with PutSecretValue "
                   "first.",
                   r.name());
    }
    if (StagingLabels::FindVersion(r, token) != nullptr) {
      return Error(reason::kResourceExists,
                   "client_request_token: a version with this id already exists", r.name(),
                   "client_request_token");
    }
    // The pending placeholder: id = token, label AWSPENDING, no value yet.
    VersionSummary placeholder;
    placeholder.set_version_id(token);
    *placeholder.mutable_created_date() = ToProto(now);
    COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(r, placeholder, {kAwsPending}));
    *rotation->mutable_next_rotation_date() = ToProto(now);
    auto* run = r.mutable_rotation_run();
    run->Clear();
    run->set_next_step(rot::ROTATION_STEP_CREATE_SECRET);
    auto* state = run->mutable_state();
    state->set_status(sm::RotationState::STATUS_IN_PROGRESS);
    state->set_version_id(token);
    state->set_next_step(StepName(rot::ROTATION_STEP_CREATE_SECRET));
    *state->mutable_started_date() = ToProto(now);
    *r.mutable_last_changed_date() = ToProto(now);
    return absl::OkStatus();
  }));
  sm::RotateSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  if (immediately) response.set_version_id(token);
  return response;
}

absl::StatusOr<sm::CancelRotateSecretResponse> SecretStore::CancelRotateSecret(
    const sm::CancelRotateSecretRequest& request) {
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  std::string pending_version;
  COFFER_RETURN_IF_ERROR(Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
    absl::Time now = clock_->Now();
    auto* rotation = r.mutable_rotation();
    rotation->set_enabled(false);
    rotation->clear_next_rotation_date();
    auto* run = r.mutable_rotation_run();
    if (run->next_step() != 0) {
      pending_version = run->state().version_id();
      run->mutable_state()->set_status(sm::RotationState::STATUS_CANCELLED);
      run->mutable_state()->clear_next_step();
      *run->mutable_state()->mutable_finished_date() = ToProto(now);
    }
    run->set_next_step(0);
    run->clear_lease_id();
    run->clear_lease_holder();
    run->clear_lease_expires();
    *r.mutable_last_changed_date() = ToProto(now);
    return absl::OkStatus();
  }));
  sm::CancelRotateSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  response.set_version_id(pending_version);
  return response;
}

absl::StatusOr<rot::ListRotationSchedulesResponse> SecretStore::ListRotationSchedules(
    const rot::ListRotationSchedulesRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", request.max_results(), 1000, 1000));
  rot::ListRotationSchedulesResponse response;
  if (!request.secret_id().empty()) {
    COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
    std::string entry = RotationIndexEntry(record);
    if (!entry.empty()) response.add_schedules()->ParseFromString(entry);
    return response;
  }
  storage::ScanOptions scan;
  if (!request.next_token().empty()) {
    std::string raw;
    if (!absl::WebSafeBase64Unescape(request.next_token(), &raw) || !absl::StartsWith(raw, "r1:")) {
      return Error(reason::kInvalidNextToken, "next_token: is not a token returned by this operation",
                   "", "next_token");
    }
    scan.start_after = raw.substr(3);
  }
  scan.limit = static_cast<size_t>(max) + 1;
  bool more = false;
  COFFER_RETURN_IF_ERROR(db_->Scan(kRotationsFamily, scan, [&](absl::string_view, absl::string_view v) {
    if (response.schedules_size() == max) {
      more = true;
      return false;
    }
    response.add_schedules()->ParseFromArray(v.data(), static_cast<int>(v.size()));
    return true;
  }));
  if (more) {
    response.set_next_token(absl::WebSafeBase64Escape(
        absl::StrCat("r1:", response.schedules(response.schedules_size() - 1).name())));
  }
  return response;
}

absl::StatusOr<rot::AcquireRotationLeaseResponse> SecretStore::AcquireRotationLease(
    const rot::AcquireRotationLeaseRequest& request) {
  if (request.holder().empty() || request.holder().size() > 256) {
    return InvalidField("holder", "must be 1-256 characters", reason::kInvalidParameter);
  }
  COFFER_ASSIGN_OR_RETURN(absl::Duration duration, LeaseDuration(request.lease_duration()));
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", request.secret_id()));
  rot::AcquireRotationLeaseResponse response;
  bool started = false;
  absl::Status s = Mutate(record, coffer::v1::CHANGE_KIND_UNSPECIFIED,
                          [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
    started = false;
    if (IsDeleted(r)) return MarkedForDeletion(r.name());
    if (!r.rotation().enabled()) {
      return Error(reason::kInvalidRequest, "rotation is not enabled for this secret", r.name());
    }
    absl::Time now = clock_->Now();
    auto* run = r.mutable_rotation_run();
    if (!run->lease_id().empty() && FromProto(run->lease_expires()) > now &&
        run->lease_holder() != request.holder()) {
      return ErrorWithCode(absl::StatusCode::kAborted, reason::kPreconditionNotMet,
                           absl::StrCat("the rotation lease is held by ", run->lease_holder()),
                           r.name());
    }
    if (run->next_step() == 0) {
      if (FromProto(r.rotation().next_rotation_date()) > now) {
        return Error(reason::kInvalidRequest,
                     absl::StrCat("the rotation is not due until ",
                                  absl::FormatTime(FromProto(r.rotation().next_rotation_date()))),
                     r.name());
      }
      const VersionSummary* current = StagingLabels::FindStage(r, kAwsCurrent);
      const VersionSummary* pending = StagingLabels::FindStage(r, kAwsPending);
      if (current == nullptr || !current->has_value()) {
        return Error(reason::kInvalidRequest, "the secret has no AWSCURRENT value to rotate",
                     r.name());
      }
      std::string token;
      if (pending != nullptr && pending != current) {
        token = pending->version_id();  // an earlier rotation that did not finish: resume it
      } else {
        token = NewUuid();
        VersionSummary placeholder;
        placeholder.set_version_id(token);
        *placeholder.mutable_created_date() = ToProto(now);
        COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(r, placeholder, {kAwsPending}));
      }
      run->Clear();
      run->set_next_step(rot::ROTATION_STEP_CREATE_SECRET);
      auto* state = run->mutable_state();
      state->set_status(sm::RotationState::STATUS_IN_PROGRESS);
      state->set_version_id(token);
      state->set_next_step(StepName(rot::ROTATION_STEP_CREATE_SECRET));
      *state->mutable_started_date() = ToProto(now);
      started = true;
    }
    run->set_lease_id(NewUuid());
    run->set_lease_holder(request.holder());
    *run->mutable_lease_expires() = ToProto(now + duration);
    response.set_lease_id(run->lease_id());
    *response.mutable_lease_expires() = run->lease_expires();
    response.set_secret_arn(r.arn());
    response.set_client_request_token(run->state().version_id());
    response.set_rotation_worker(r.rotation().worker());
    response.set_next_step(static_cast<rot::RotationStep>(std::min(run->next_step(), 4)));
    response.set_attempts(run->state().attempts());
    return absl::OkStatus();
  });
  COFFER_RETURN_IF_ERROR(s);
  return response;
}

absl::Status SecretStore::MutateUnderLease(
    const std::string& secret_id, const std::string& lease_id,
    const std::function<absl::Status(SecretRecord&, storage::Transaction&)>& mutate,
    SecretRecord* result) {
  if (lease_id.empty()) return InvalidField("lease_id", "is required", reason::kInvalidParameter);
  COFFER_ASSIGN_OR_RETURN(SecretRecord record, Resolve("secret_id", secret_id));
  return Mutate(record, coffer::v1::CHANGE_KIND_UNSPECIFIED,
                [&](SecretRecord& r, storage::Transaction& txn) -> absl::Status {
    const auto& run = r.rotation_run();
    if (run.lease_id() != lease_id || FromProto(run.lease_expires()) <= clock_->Now()) {
      return LeaseLost(r.name());
    }
    COFFER_RETURN_IF_ERROR(mutate(r, txn));
    if (result != nullptr) *result = r;
    return absl::OkStatus();
  });
}

absl::StatusOr<rot::RenewRotationLeaseResponse> SecretStore::RenewRotationLease(
    const rot::RenewRotationLeaseRequest& request) {
  COFFER_ASSIGN_OR_RETURN(absl::Duration duration, LeaseDuration(request.lease_duration()));
  SecretRecord updated;
  COFFER_RETURN_IF_ERROR(MutateUnderLease(request.secret_id(), request.lease_id(),
                                          [&](SecretRecord& r, storage::Transaction&) {
    *r.mutable_rotation_run()->mutable_lease_expires() = ToProto(clock_->Now() + duration);
    return absl::OkStatus();
  }, &updated));
  rot::RenewRotationLeaseResponse response;
  *response.mutable_lease_expires() = updated.rotation_run().lease_expires();
  return response;
}

absl::StatusOr<rot::RecordRotationProgressResponse> SecretStore::RecordRotationProgress(
    const rot::RecordRotationProgressRequest& request) {
  if (request.step() < rot::ROTATION_STEP_CREATE_SECRET ||
      request.step() > rot::ROTATION_STEP_FINISH_SECRET) {
    return InvalidField("step", "must be one of the four rotation steps", reason::kInvalidParameter);
  }
  SecretRecord updated;
  COFFER_RETURN_IF_ERROR(MutateUnderLease(request.secret_id(), request.lease_id(),
                                          [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
    auto* run = r.mutable_rotation_run();
    if (run->next_step() == 0) {
      return Error(reason::kInvalidRequest, "no rotation is in progress", r.name());
    }
    auto* state = run->mutable_state();
    if (request.completed()) {
      if (request.step() == run->next_step()) {
        run->set_next_step(run->next_step() + 1);
        state->set_attempts(0);
        state->set_next_step(StepName(run->next_step()));
      }
    } else if (request.step() == run->next_step()) {
      state->set_attempts(state->attempts() + 1);
      state->set_last_error(request.error().substr(0, 1024));
    }
    return absl::OkStatus();
  }, &updated));
  rot::RecordRotationProgressResponse response;
  response.set_next_step(static_cast<rot::RotationStep>(std::min(updated.rotation_run().next_step(), 4)));
  response.set_attempts(updated.rotation_run().state().attempts());
  return response;
}

absl::StatusOr<rot::CompleteRotationResponse> SecretStore::CompleteRotation(
    const rot::CompleteRotationRequest& request) {
  SecretRecord updated;
  COFFER_RETURN_IF_ERROR(MutateUnderLease(request.secret_id(), request.lease_id(),
                                          [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
    absl::Time now = clock_->Now();
    auto* run = r.mutable_rotation_run();
    auto* state = run->mutable_state();
    const VersionSummary* current = StagingLabels::FindStage(r, kAwsCurrent);
    // A finishSecret that completed after the rotator gave up (a timed-out
    // step still running on the worker) did move AWSCURRENT: record the truth.
    const bool finished = current != nullptr && current->version_id() == state->version_id();
    if (request.succeeded() || finished) {
      if (!finished) {
        return Error(reason::kInvalidRequest,
                     "finishSecret has not made the pending version AWSCURRENT", r.name());
      }
      state->set_status(sm::RotationState::STATUS_SUCCEEDED);
      state->clear_last_error();
      state->set_attempts(0);
      *r.mutable_rotation()->mutable_last_rotated_date() = ToProto(now);
    } else {
      // AWSCURRENT stays where it is; the pending version stays too, and the
      // next window resumes it.
      state->set_status(sm::RotationState::STATUS_FAILED);
      if (!request.error().empty()) state->set_last_error(request.error().substr(0, 1024));
    }
    state->clear_next_step();
    *state->mutable_finished_date() = ToProto(now);
    run->set_next_step(0);
    run->clear_lease_id();
    run->clear_lease_holder();
    run->clear_lease_expires();
    *r.mutable_rotation()->mutable_next_rotation_date() = ToProto(NextRotation(r, now));
    *r.mutable_last_changed_date() = ToProto(now);
    return absl::OkStatus();
  }, &updated));
  rot::CompleteRotationResponse response;
  *response.mutable_next_rotation_date() = updated.rotation().next_rotation_date();
  return response;
}

absl::StatusOr<rot::ReleaseRotationLeaseResponse> SecretStore::ReleaseRotationLease(
    const rot::ReleaseRotationLeaseRequest& request) {
  COFFER_RETURN_IF_ERROR(MutateUnderLease(request.secret_id(), request.lease_id(),
                                          [&](SecretRecord& r, storage::Transaction&) {
    auto* run = r.mutable_rotation_run();
    run->clear_lease_id();
    run->clear_lease_holder();
    run->clear_lease_expires();
    return absl::OkStatus();
  }, nullptr));
  return rot::ReleaseRotationLeaseResponse();
}

}  // namespace coffer::store
