// SecretStore: reads, listing, tags, resource policies and passwords. The
// writes of values and of the life cycle are in secret_store_write.cc.
#include "services/store/secrets/secret_store.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/blocking.h"
#include "libs/common/errors.h"
#include "libs/common/paging.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/password.h"
#include "services/store/secrets/secret_access.h"
#include "services/store/secrets/secret_list.h"
#include "services/store/secrets/staging_labels.h"

namespace coffer::store {

using ::coffer::internal::store::v1::ValueType;
namespace sm = ::coffer::secrets::v1;

namespace {

constexpr size_t kMaxPolicy = 20480;
constexpr int kMaxTags = 50;
constexpr PagingErrors kMaxResultsErrors{"max_results", reason::kInvalidParameter};
constexpr PagingErrors kNextTokenErrors{"next_token", reason::kInvalidNextToken};

template <typename Entry>
void FillRotationAndDates(const SecretRecord& r, Entry* e) {
  e->set_rotation_enabled(r.rotation().enabled());
  e->set_rotation_worker(r.rotation().worker());
  if (r.rotation().has_rules()) *e->mutable_rotation_rules() = r.rotation().rules();
  if (r.rotation().has_last_rotated_date()) {
    *e->mutable_last_rotated_date() = r.rotation().last_rotated_date();
  }
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

// Version id -> its labels, for the versions that have any.
template <typename Map>
void FillVersionStages(const SecretRecord& r, Map* out) {
  for (const auto& v : r.versions()) {
    if (v.stages().empty()) continue;
    *(*out)[v.version_id()].mutable_stages() = v.stages();
  }
}

absl::Status ValueNotFound(absl::string_view name, absl::string_view what) {
  return Error(reason::kResourceNotFound,
               absl::StrCat("Secrets Manager can't find the specified secret value for ", what),
               name);
}

// The query of a filtered page as the token fingerprint sees it.
template <typename Filters>
std::string Fingerprint(absl::string_view prefix, const Filters& filters) {
  std::string fingerprint(prefix);
  for (const auto& f : filters) fingerprint += f.SerializeAsString() + "|";
  return fingerprint;
}

}  // namespace

absl::StatusOr<std::function<bool(const coffer::v1::ChangeEvent&)>> SecretStore::WatchFilter(
    const sm::WatchSecretsRequest& request, const authz::Access& access) {
  if (request.name_prefix().size() > kMaxSecretNameLength) {
    return InvalidField("name_prefix", "must be at most 512 characters", reason::kInvalidParameter);
  }
  access.set_resource("*");
  std::string prefix = request.name_prefix();
  // Only the secrets the caller may describe (by name: events carry no
  // resource policy).
  return std::function<bool(const coffer::v1::ChangeEvent&)>(
      [prefix, access](const coffer::v1::ChangeEvent& e) {
        return e.resource_kind() == coffer::v1::RESOURCE_KIND_SECRET &&
               absl::StartsWith(e.name(), prefix) &&
               access.Allows("secretsmanager:DescribeSecret", authz::Resource(e.name()));
      });
}

absl::StatusOr<sm::GetSecretValueResponse> SecretStore::ValueOf(const SecretRecord& record,
                                                                const std::string& version_id,
                                                                const std::string& version_stage,
                                                                const ValueRead* value) {
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  const VersionSummary* version = nullptr;
  SecretRecord all;  // every version, when the one asked for has no label
  if (!version_id.empty()) {
    version = StagingLabels::FindVersion(record, version_id);
    if (version == nullptr) {
      all = record;
      COFFER_RETURN_IF_ERROR(records_->WithDeprecated(all));
      version = StagingLabels::FindVersion(all, version_id);
      // Found by a later read than the record's: so is its value.
      value = nullptr;
    }
    if (version == nullptr) return ValueNotFound(record.name(), "VersionId: " + version_id);
    if (!version_stage.empty() && std::find(version->stages().begin(), version->stages().end(),
                                            version_stage) == version->stages().end()) {
      return ValueNotFound(record.name(), absl::StrCat("VersionId: ", version_id,
                                                       " and staging label: ", version_stage));
    }
  } else {
    const std::string stage = version_stage.empty() ? kAwsCurrent : version_stage;
    version = StagingLabels::FindStage(record, stage);
    if (version == nullptr) return ValueNotFound(record.name(), "staging label: " + stage);
  }
  if (!version->has_value()) {
    return ValueNotFound(record.name(), "VersionId: " + version->version_id());
  }
  // The first read of the day writes the last-accessed date: not on a thread
  // that must not block (blocking.h), and before any plaintext exists.
  if (!MayBlock() && records_->NeedsTouch(record)) {
    return WouldBlockError("the last-accessed date");
  }
  ValueType type;
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plaintext,
                          records_->Open(record, version->version_id(), &type, value));
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
  records_->TouchAccessed(record, version->version_id());
  return response;
}

absl::StatusOr<sm::GetSecretValueResponse> SecretStore::GetSecretValue(
    const sm::GetSecretValueRequest& request, const authz::Access& access) {
  if (!request.version_id().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateVersionId("version_id", request.version_id()));
  }
  if (!request.version_stage().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateStage("version_stage", request.version_stage()));
  }
  ValueRead value;
  value.version_id = request.version_id();
  value.version_stage = request.version_stage();
  COFFER_ASSIGN_OR_RETURN(SecretRecord record,
                          AuthorizeSecret(*records_, access, "secretsmanager:GetSecretValue",
                                          request.secret_id(), &value));
  records_->RememberCurrent(record);  // authorized: a guess for the next read
  return ValueOf(record, request.version_id(), request.version_stage(), &value);
}

absl::StatusOr<sm::BatchGetSecretValueResponse> SecretStore::BatchGetSecretValue(
    const sm::BatchGetSecretValueRequest& request, const authz::Access& access) {
  const bool by_ids = request.secret_id_list_size() > 0;
  const bool by_filters = request.filters_size() > 0;
  if (by_ids == by_filters) {
    return InvalidField("secret_id_list", "give either secret_id_list or filters, not both",
                        reason::kInvalidParameter);
  }
  access.set_resource("*");
  sm::BatchGetSecretValueResponse response;
  auto add = [&](const std::string& id, absl::StatusOr<sm::GetSecretValueResponse> got) {
    if (got.ok()) {
      auto* entry = response.add_secret_values();
      entry->set_arn(got->arn());
      entry->set_name(got->name());
      entry->set_version_id(got->version_id());
      // Moved, not copied: no second plaintext copy is freed unwiped.
      if (got->has_secret_binary()) {
        entry->set_secret_binary(std::move(*got->mutable_secret_binary()));
      }
      if (got->has_secret_string()) {
        entry->set_secret_string(std::move(*got->mutable_secret_string()));
      }
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
        return InvalidField("secret_id_list", "secret ids must be unique",
                            reason::kInvalidParameter);
      }
      sm::GetSecretValueRequest get;
      get.set_secret_id(id);
      add(id, GetSecretValue(get, access));
    }
    return response;
  }
  COFFER_ASSIGN_OR_RETURN(int max, PageSize(request.max_results(), {20, 20}, kMaxResultsErrors));
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseFilters(request.filters()));
  ListQuery query;
  query.filters = std::move(filters);
  query.max_results = max;
  query.scan_budget = records_->options().list_scan_budget;
  COFFER_ASSIGN_OR_RETURN(
      ListPage page, ListIndex(*records_->db(), query, Fingerprint("batch|", request.filters()),
                               request.next_token()));
  for (const std::string& name : page.names) {
    COFFER_ASSIGN_OR_RETURN(auto record, records_->Read(name));
    if (!record) continue;  // purged meanwhile
    // Filters return only what the caller may read.
    if (!access.Allows("secretsmanager:GetSecretValue",
                       authz::Resource(record->name(), record->arn(), record->name()), nullptr,
                       record->resource_policy())) {
      continue;
    }
    add(name, ValueOf(*record, "", ""));
  }
  response.set_next_token(page.next_token);
  return response;
}

absl::StatusOr<sm::DescribeSecretResponse> SecretStore::DescribeSecret(
    const sm::DescribeSecretRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:DescribeSecret", request.secret_id()));
  sm::DescribeSecretResponse response;
  FillRotationAndDates(record, &response);
  if (record.has_deletion_date()) *response.mutable_deletion_date() = record.deletion_date();
  if (record.rotation_run().has_state()) {
    *response.mutable_rotation_state() = record.rotation_run().state();
  }
  FillVersionStages(record, response.mutable_version_ids_to_stages());
  return response;
}

absl::StatusOr<sm::ListSecretsResponse> SecretStore::ListSecrets(
    const sm::ListSecretsRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize(request.max_results(), {100, 100}, kMaxResultsErrors));
  if (!sm::SortOrder_IsValid(request.sort_order())) {
    return InvalidField("sort_order", "must be asc or desc", reason::kInvalidParameter);
  }
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseFilters(request.filters()));
  access.set_resource("*");  // listing is filtered: only what the caller may describe
  ListQuery query;
  query.filters = std::move(filters);
  query.include_planned_deletion = request.include_planned_deletion();
  query.ascending = request.sort_order() == sm::SORT_ORDER_ASC;
  query.max_results = max;
  query.scan_budget = records_->options().list_scan_budget;
  const std::string fingerprint = Fingerprint(
      absl::StrCat("list|", request.include_planned_deletion(), "|", query.ascending, "|"),
      request.filters());
  COFFER_ASSIGN_OR_RETURN(ListPage page,
                          ListIndex(*records_->db(), query, fingerprint, request.next_token()));
  sm::ListSecretsResponse response;
  for (const std::string& name : page.names) {
    COFFER_ASSIGN_OR_RETURN(auto record, records_->Read(name));
    if (!record) continue;  // purged between the index scan and now
    if (!MayDescribe(access, *record)) continue;
    auto* entry = response.add_secret_list();
    FillRotationAndDates(*record, entry);
    FillVersionStages(*record, entry->mutable_secret_versions_to_stages());
  }
  response.set_next_token(page.next_token);
  return response;
}

absl::StatusOr<sm::ListSecretVersionIdsResponse> SecretStore::ListSecretVersionIds(
    const sm::ListSecretVersionIdsRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize(request.max_results(), {100, 100}, kMaxResultsErrors));
  COFFER_ASSIGN_OR_RETURN(SecretRecord record,
                          AuthorizeSecret(*records_, access, "secretsmanager:ListSecretVersionIds",
                                          request.secret_id()));
  COFFER_ASSIGN_OR_RETURN(std::string last,
                          DecodePageToken("versions", request.next_token(), kNextTokenErrors));
  if (request.include_deprecated()) COFFER_RETURN_IF_ERROR(records_->WithDeprecated(record));
  std::vector<const VersionSummary*> versions;  // newest first
  for (int i = record.versions_size() - 1; i >= 0; --i) {
    const auto& v = record.versions(i);
    if (v.stages().empty() && !request.include_deprecated()) continue;
    versions.push_back(&v);
  }
  size_t start = 0;
  if (!last.empty()) {
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
    response.set_next_token(EncodePageToken("versions", versions[i - 1]->version_id()));
  }
  return response;
}

absl::StatusOr<sm::TagResourceResponse> SecretStore::TagResource(
    const sm::TagResourceRequest& request, const authz::Access& access) {
  if (request.tags().empty()) {
    return InvalidField("tags", "at least one tag is required", reason::kInvalidParameter);
  }
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", request.tags(), kMaxTags));
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:TagResource", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(records_->Mutate(
      record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
      [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
        std::map<std::string, std::string> merged;
        for (const auto& t : r.tags()) merged[t.key()] = t.value();
        for (const auto& t : request.tags()) merged[t.key()] = t.value();
        if (static_cast<int>(merged.size()) > kMaxTags) {
          return Error(reason::kLimitExceeded,
                       absl::StrCat("tags: a secret may have at most ", kMaxTags, " tags"),
                       r.name(), "tags");
        }
        r.clear_tags();
        for (const auto& [k, v] : merged) {
          auto* t = r.add_tags();
          t->set_key(k);
          t->set_value(v);
        }
        *r.mutable_last_changed_date() = ToProto(records_->clock()->Now());
        return absl::OkStatus();
      }));
  return sm::TagResourceResponse();
}

absl::StatusOr<sm::UntagResourceResponse> SecretStore::UntagResource(
    const sm::UntagResourceRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateTagKeys("tag_keys", request.tag_keys()));
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:UntagResource", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(records_->Mutate(
      record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
      [&](SecretRecord& r, storage::Transaction&) {
        std::set<std::string> remove(request.tag_keys().begin(), request.tag_keys().end());
        auto* tags = r.mutable_tags();
        tags->erase(std::remove_if(tags->begin(), tags->end(),
                                   [&](const sm::Tag& t) { return remove.count(t.key()) > 0; }),
                    tags->end());
        *r.mutable_last_changed_date() = ToProto(records_->clock()->Now());
        return absl::OkStatus();
      }));
  return sm::UntagResourceResponse();
}

absl::StatusOr<sm::GetRandomPasswordResponse> SecretStore::GetRandomPassword(
    const sm::GetRandomPasswordRequest& request, const authz::Access& access) {
  if (request.exclude_characters().size() > 4096) {
    return InvalidField("exclude_characters", "must be at most 4096 characters",
                        reason::kInvalidParameter);
  }
  COFFER_RETURN_IF_ERROR(access.Check("secretsmanager:GetRandomPassword", authz::Resource("*")));
  crypto::PasswordOptions options;
  if (request.password_length() != 0) {
    if (request.password_length() < 1 || request.password_length() > 4096) {
      return InvalidField("password_length", "must be between 1 and 4096",
                          reason::kInvalidParameter);
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
    const sm::PutResourcePolicyRequest& request, const authz::Access& access) {
  const std::string& policy = request.resource_policy();
  if (policy.empty() || policy.size() > kMaxPolicy) {
    return InvalidField("resource_policy", "must be 1-20480 characters", reason::kInvalidParameter);
  }
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:PutResourcePolicy", request.secret_id()));
  auto parsed = authz::Policy::Parse(policy, authz::Policy::kResource);
  if (!parsed.ok()) {
    return Error(reason::kMalformedPolicyDocument,
                 absl::StrCat("resource_policy: ", parsed.status().message()), "",
                 "resource_policy");
  }
  if (request.block_public_policy() && parsed->GrantsEveryone()) {
    return Error(reason::kPublicPolicy,
                 "resource_policy: grants every caller (Principal \"*\") while "
                 "block_public_policy is set",
                 record.name(), "resource_policy");
  }
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  COFFER_RETURN_IF_ERROR(records_->Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                          [&](SecretRecord& r, storage::Transaction&) {
                                            r.set_resource_policy(policy);
                                            *r.mutable_last_changed_date() =
                                                ToProto(records_->clock()->Now());
                                            return absl::OkStatus();
                                          }));
  sm::PutResourcePolicyResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

absl::StatusOr<sm::ValidateResourcePolicyResponse> SecretStore::ValidateResourcePolicy(
    const sm::ValidateResourcePolicyRequest& request, const authz::Access& access) {
  const std::string& policy = request.resource_policy();
  if (policy.empty() || policy.size() > kMaxPolicy) {
    return InvalidField("resource_policy", "must be 1-20480 characters", reason::kInvalidParameter);
  }
  if (request.secret_id().empty()) {
    COFFER_RETURN_IF_ERROR(
        access.Check("secretsmanager:ValidateResourcePolicy", authz::Resource("*")));
  } else {
    COFFER_RETURN_IF_ERROR(AuthorizeSecret(*records_, access,
                                           "secretsmanager:ValidateResourcePolicy",
                                           request.secret_id())
                               .status());
  }
  sm::ValidateResourcePolicyResponse response;
  auto parsed = authz::Policy::Parse(policy, authz::Policy::kResource);
  if (!parsed.ok()) {
    auto* e = response.add_validation_errors();
    e->set_check_name("syntax");
    e->set_error_message(std::string(parsed.status().message()));
  } else if (parsed->GrantsEveryone()) {
    auto* e = response.add_validation_errors();
    e->set_check_name("public_policy");
    e->set_error_message(
        "the policy grants every caller with a certificate from the CA (Principal \"*\")");
  }
  response.set_policy_validation_passed(response.validation_errors_size() == 0);
  return response;
}

absl::StatusOr<sm::GetResourcePolicyResponse> SecretStore::GetResourcePolicy(
    const sm::GetResourcePolicyRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:GetResourcePolicy", request.secret_id()));
  sm::GetResourcePolicyResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  response.set_resource_policy(record.resource_policy());
  return response;
}

absl::StatusOr<sm::DeleteResourcePolicyResponse> SecretStore::DeleteResourcePolicy(
    const sm::DeleteResourcePolicyRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(SecretRecord record,
                          AuthorizeSecret(*records_, access, "secretsmanager:DeleteResourcePolicy",
                                          request.secret_id()));
  if (!record.resource_policy().empty()) {
    COFFER_RETURN_IF_ERROR(records_->Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                                            [&](SecretRecord& r, storage::Transaction&) {
                                              r.clear_resource_policy();
                                              *r.mutable_last_changed_date() =
                                                  ToProto(records_->clock()->Now());
                                              return absl::OkStatus();
                                            }));
  }
  sm::DeleteResourcePolicyResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  return response;
}

}  // namespace coffer::store
