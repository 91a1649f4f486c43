#include "services/store/params/param_store.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"
#include "libs/common/paging.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/common/tags.h"
#include "libs/storage/key_encoding.h"
#include "services/store/schema.h"

namespace coffer::store {

namespace pm = ::coffer::params::v1;
using ::coffer::internal::store::v1::ParameterValue;
using ::coffer::v1::ChangeEvent;

namespace {

constexpr size_t kMaxDescription = 1024;
constexpr int kMaxTags = 50;

// InvalidResourceId: the tag calls name a parameter that does not exist.
absl::Status ResourceNotFound(absl::string_view id) {
  return Error(reason::kInvalidResourceId,
               absl::StrCat("resource_id: parameter ", id, " not found"), id, "resource_id");
}

// Parameter Store reports a malformed tag as ValidationException and too
// many as TooManyTagsError.
constexpr TagRules kParamTagRules{kMaxTags, reason::kValidation, reason::kTooManyTagsError};

void SetTags(ParameterRecord& r, const std::map<std::string, std::string>& tags) {
  r.clear_tags();
  for (const auto& [k, v] : tags) {
    auto* t = r.add_tags();
    t->set_key(k);
    t->set_value(v);
  }
}

absl::Status ValidateResource(const std::string& type, const std::string& id) {
  if (type != "Parameter") {
    return Error(reason::kInvalidResourceType, "resource_type: must be Parameter", "",
                 "resource_type");
  }
  if (id.empty() || id.size() > kMaxParameterName) {
    return Error(reason::kInvalidResourceId,
                 absl::StrCat("resource_id: must be 1-", kMaxParameterName, " characters"), "",
                 "resource_id");
  }
  return absl::OkStatus();
}

}  // namespace

ParamStore::ParamStore(storage::Database* db, Envelope* envelope, ParamStoreOptions options)
    : db_(db),
      envelope_(envelope),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : RealClock()) {}

std::string ParamStore::ParameterArn(absl::string_view name) const {
  absl::string_view path = absl::StartsWith(name, "/") ? name.substr(1) : name;
  return absl::StrCat("arn:", options_.arns.partition, ":ssm:", options_.arns.region, ":",
                      options_.arns.account, ":parameter/", path);
}

absl::Status ParamStore::Authorize(const authz::Access& access, absl::string_view action,
                                   const std::string& name) const {
  const std::string arn = ParameterArn(name);
  return access.Check(action, authz::Resource(name, arn, name));
}

bool ParamStore::Allows(const authz::Access& access, absl::string_view action,
                        const std::string& name) const {
  if (access.trusted()) return true;
  const std::string arn = ParameterArn(name);
  return access.Allows(action, authz::Resource(name, arn, name));
}

absl::StatusOr<std::optional<ParameterRecord>> ParamStore::Read(const std::string& name) const {
  COFFER_ASSIGN_OR_RETURN(auto bytes, db_->Get(schema::kParams, name));
  if (!bytes) return std::optional<ParameterRecord>();
  ParameterRecord record;
  if (!record.ParseFromString(*bytes) || record.versions().empty()) {
    return Error(reason::kInternalServerError, "stored parameter record is unreadable", name);
  }
  return std::optional<ParameterRecord>(std::move(record));
}

absl::StatusOr<ParameterRecord> ParamStore::ReadExisting(const std::string& name) const {
  COFFER_ASSIGN_OR_RETURN(auto record, Read(name));
  if (!record) return ParameterNotFound(name);
  return *std::move(record);
}

absl::Status ParamStore::Commit(const EventfulChange& fn) {
  return CommitWithEvent(db_, options_.changes, clock_, coffer::v1::RESOURCE_KIND_PARAMETER, fn);
}

absl::Status ParamStore::Update(
    const std::string& name, const absl::Status& missing,
    const std::function<absl::Status(ParameterRecord&, ChangeEvent*)>& change) {
  return Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(schema::kParams, name));
    ParameterRecord record;
    if (!bytes || !record.ParseFromString(*bytes)) return missing;
    COFFER_RETURN_IF_ERROR(change(record, event));
    txn.Put(schema::kParams, record.name(), record.SerializeAsString());
    return absl::OkStatus();
  });
}

void ParamStore::IndexPolicies(storage::Transaction& txn, const ParameterRecord& record, bool add) {
  if (record.versions().empty()) return;
  absl::Time modified = FromProto(LatestVersion(record).last_modified_date());
  for (const ParameterPolicy& p : StoredPolicies(record)) {
    std::string key = schema::PolicyDueKey(PolicyDue(p, modified), record.name(), p.type_name());
    if (add) {
      txn.Put(schema::kParamPolicyDue, key, "");
    } else {
      txn.Delete(schema::kParamPolicyDue, key);
    }
  }
}

void ParamStore::DeleteIn(storage::Transaction& txn, const ParameterRecord& record) {
  txn.Delete(schema::kParams, record.name());
  for (const auto& v : record.versions())
    txn.Delete(schema::kParamValues, schema::ParamValueKey(record.name(), v.version()));
  const std::string parent = ParentPath(record.name());
  if (!parent.empty()) txn.Delete(schema::kParamChildren, schema::ChildKey(parent, record.name()));
  IndexPolicies(txn, record, /*add=*/false);
}

absl::StatusOr<pm::PutParameterResponse> ParamStore::PutParameter(
    const pm::PutParameterRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:PutParameter", request.name()));
  if (request.description().size() > kMaxDescription) {
    return Error(reason::kValidation, "description: must be at most 1024 characters",
                 request.name(), "description");
  }
  if (!pm::ParameterType_IsValid(request.type())) {
    return Error(reason::kUnsupportedParameterType, "type: unknown parameter type", request.name(),
                 "type");
  }
  if (!pm::ParameterTier_IsValid(request.tier())) {
    return Error(reason::kValidation, "tier: must be Standard or Advanced", request.name(), "tier");
  }
  if (!request.data_type().empty() && request.data_type() != "text") {
    return Error(reason::kValidation, "data_type: must be text", request.name(), "data_type");
  }
  if (request.overwrite() && !request.tags().empty()) {
    return Error(reason::kValidation,
                 "tags: cannot be combined with overwrite; use AddTagsToResource", request.name(),
                 "tags");
  }
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", TagViews(request.tags()), kParamTagRules));
  absl::Time now = clock_->Now();
  COFFER_ASSIGN_OR_RETURN(std::vector<ParameterPolicy> policies,
                          ParsePolicies(request.policies(), now));

  // Type, key, pattern, tier and encryption are decided from the current
  // record; if another writer changes it before the commit, decide again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    COFFER_ASSIGN_OR_RETURN(PutPlan plan, PlanPut(request, policies));
    bool raced = false;
    absl::StatusOr<int64_t> version = CommitPut(request, plan, now, &raced);
    if (raced) continue;
    COFFER_RETURN_IF_ERROR(version.status());
    pm::PutParameterResponse response;
    response.set_version(*version);
    response.set_tier(plan.tier);
    return response;
  }
  return Error(reason::kInternalServerError, "too many concurrent writers of this parameter; retry",
               request.name());
}

absl::StatusOr<ParamStore::PutPlan> ParamStore::PlanPut(
    const pm::PutParameterRequest& request, const std::vector<ParameterPolicy>& policies) {
  PutPlan plan;
  COFFER_ASSIGN_OR_RETURN(plan.existing, Read(request.name()));
  const std::optional<ParameterRecord>& existing = plan.existing;
  if (existing && !request.overwrite()) {
    return Error(reason::kParameterAlreadyExists,
                 absl::StrCat("The parameter ", request.name(),
                              " already exists. To overwrite it, set overwrite."),
                 request.name());
  }
  const ParameterVersionInfo* previous = existing ? &LatestVersion(*existing) : nullptr;
  plan.type = request.type();
  if (plan.type == pm::PARAMETER_TYPE_UNSPECIFIED) {
    if (previous == nullptr) {
      return Error(reason::kValidation, "type: is required to create a parameter", request.name(),
                   "type");
    }
    plan.type = previous->type();
  }
  if (!request.key_id().empty() && plan.type != pm::PARAMETER_TYPE_SECURE_STRING) {
    return Error(reason::kValidation, "key_id: only SecureString parameters take a key",
                 request.name(), "key_id");
  }
  plan.tier = request.tier();
  const pm::ParameterTier current_tier = existing ? existing->tier() : pm::PARAMETER_TIER_STANDARD;
  if (plan.tier == pm::PARAMETER_TIER_UNSPECIFIED) {
    plan.tier = current_tier;
    if (!policies.empty()) plan.tier = pm::PARAMETER_TIER_ADVANCED;
  }
  if (current_tier == pm::PARAMETER_TIER_ADVANCED && plan.tier == pm::PARAMETER_TIER_STANDARD &&
      existing) {
    return Error(reason::kValidation, "tier: an Advanced parameter cannot go back to Standard",
                 request.name(), "tier");
  }
  if (!policies.empty() && plan.tier != pm::PARAMETER_TIER_ADVANCED) {
    return Error(reason::kValidation, "policies: need the Advanced tier", request.name(),
                 "policies");
  }
  COFFER_RETURN_IF_ERROR(ValidateValue("value", request.value(), plan.tier));
  plan.pattern = request.allowed_pattern();
  if (plan.pattern.empty() && previous != nullptr) plan.pattern = previous->allowed_pattern();
  COFFER_RETURN_IF_ERROR(CheckAllowedPattern(plan.pattern, request.value()));

  plan.arn = existing ? existing->arn() : ParameterArn(request.name());
  if (plan.type == pm::PARAMETER_TYPE_SECURE_STRING) {
    plan.key_id = request.key_id();
    if (plan.key_id.empty() && previous != nullptr) plan.key_id = previous->key_id();
    const std::string kms_key = plan.key_id.empty() ? options_.default_kms_key_id : plan.key_id;
    COFFER_ASSIGN_OR_RETURN(Envelope::Sealed sealed,
                            envelope_->Seal(kms_key, ParameterContext(plan.arn),
                                            ParameterContext(plan.arn), request.value()));
    plan.value.set_ciphertext(std::move(sealed.ciphertext));
    plan.value.set_wrapped_data_key(std::move(sealed.wrapped_data_key));
    plan.value.set_kms_key_arn(sealed.kms_key_arn);
  } else {
    plan.value.set_plain(request.value());
  }
  return plan;
}

absl::StatusOr<int64_t> ParamStore::CommitPut(const pm::PutParameterRequest& request,
                                              const PutPlan& plan, absl::Time now, bool* raced) {
  int64_t version_number = 0;
  absl::Status committed =
      Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
        *raced = false;
        COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(schema::kParams, request.name()));
        ParameterRecord record;
        const bool exists = bytes.has_value();
        if (exists != plan.existing.has_value()) {
          *raced = true;
          return absl::AbortedError("raced");
        }
        if (exists) {
          if (!record.ParseFromString(*bytes)) {
            return Error(reason::kInternalServerError, "unreadable record");
          }
          if (record.versions().empty() ||
              LatestVersion(record).version() != LatestVersion(*plan.existing).version()) {
            *raced = true;
            return absl::AbortedError("raced");
          }
          if (!request.overwrite()) {
            return Error(reason::kParameterAlreadyExists,
                         absl::StrCat("The parameter ", request.name(), " already exists."),
                         request.name());
          }
          IndexPolicies(txn, record, /*add=*/false);
        } else {
          record.set_name(request.name());
          record.set_arn(plan.arn);
          *record.mutable_created_date() = ToProto(now);
          std::map<std::string, std::string> tags;
          for (const auto& t : request.tags()) tags[t.key()] = t.value();
          SetTags(record, tags);
          const std::string parent = ParentPath(request.name());
          if (!parent.empty())
            txn.Put(schema::kParamChildren, schema::ChildKey(parent, request.name()), "");
        }
        record.set_tier(plan.tier);
        if (!request.policies().empty()) {
          record.set_policies(request.policies() == "[]" ? "" : request.policies());
          record.clear_notified();
        }
        ParameterVersionInfo info;
        info.set_type(plan.type);
        info.set_description(request.description());
        info.set_allowed_pattern(plan.pattern);
        info.set_key_id(plan.key_id);
        info.set_data_type("text");
        *info.mutable_last_modified_date() = ToProto(now);
        info.set_tier(plan.tier);
        info.set_policies(record.policies());
        int64_t dropped = 0;
        COFFER_ASSIGN_OR_RETURN(version_number, AddParameterVersion(record, info, &dropped));
        if (dropped != 0)
          txn.Delete(schema::kParamValues, schema::ParamValueKey(record.name(), dropped));
        txn.Put(schema::kParamValues, schema::ParamValueKey(record.name(), version_number),
                plan.value.SerializeAsString());
        txn.Put(schema::kParams, record.name(), record.SerializeAsString());
        IndexPolicies(txn, record, /*add=*/true);
        event->set_name(record.name());
        event->set_version(absl::StrCat(version_number));
        event->set_kind(exists ? coffer::v1::CHANGE_KIND_UPDATED : coffer::v1::CHANGE_KIND_CREATED);
        return absl::OkStatus();
      });
  COFFER_RETURN_IF_ERROR(committed);
  return version_number;
}

absl::StatusOr<pm::DeleteParameterResponse> ParamStore::DeleteByName(const std::string& name,
                                                                     coffer::v1::ChangeKind kind) {
  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(schema::kParams, name));
    ParameterRecord record;
    if (!bytes || !record.ParseFromString(*bytes)) return ParameterNotFound(name);
    DeleteIn(txn, record);
    event->set_name(name);
    event->set_kind(kind);
    return absl::OkStatus();
  }));
  return pm::DeleteParameterResponse();
}

absl::StatusOr<pm::DeleteParameterResponse> ParamStore::DeleteParameter(
    const pm::DeleteParameterRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:DeleteParameter", request.name()));
  return DeleteByName(request.name(), coffer::v1::CHANGE_KIND_DELETED);
}

absl::StatusOr<pm::DeleteParametersResponse> ParamStore::DeleteParameters(
    const pm::DeleteParametersRequest& request, const authz::Access& access) {
  if (request.names().empty() || request.names_size() > 10) {
    return Error(reason::kValidation, "names: give 1-10 names", "", "names");
  }
  pm::DeleteParametersResponse response;
  for (const std::string& name : request.names()) {
    if (ValidateParameterName("names", name).ok()) {
      COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:DeleteParameters", name));
    }
  }
  for (const std::string& name : request.names()) {
    if (!ValidateParameterName("names", name).ok()) {
      response.add_invalid_parameters(name);
      continue;
    }
    auto deleted = DeleteByName(name, coffer::v1::CHANGE_KIND_DELETED);
    if (deleted.ok()) {
      response.add_deleted_parameters(name);
    } else if (deleted.status().code() == absl::StatusCode::kNotFound) {
      response.add_invalid_parameters(name);
    } else {
      return deleted.status();
    }
  }
  return response;
}

absl::StatusOr<pm::LabelParameterVersionResponse> ParamStore::LabelParameterVersion(
    const pm::LabelParameterVersionRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:LabelParameterVersion", request.name()));
  if (request.labels().empty() || request.labels_size() > kMaxLabelsPerVersion) {
    return Error(reason::kValidation, "labels: give 1-10 labels", request.name(), "labels");
  }
  if (request.parameter_version() < 0) {
    return Error(reason::kValidation, "parameter_version: must be positive", request.name(),
                 "parameter_version");
  }
  std::vector<std::string> labels(request.labels().begin(), request.labels().end());
  pm::LabelParameterVersionResponse response;
  COFFER_RETURN_IF_ERROR(
      Update(request.name(), ParameterNotFound(request.name()),
             [&](ParameterRecord& record, ChangeEvent* event) -> absl::Status {
               int64_t version = request.parameter_version() == 0 ? LatestVersion(record).version()
                                                                  : request.parameter_version();
               COFFER_ASSIGN_OR_RETURN(auto invalid, ApplyLabels(record, version, labels));
               response.clear_invalid_labels();
               for (const auto& l : invalid) response.add_invalid_labels(l);
               response.set_parameter_version(version);
               event->set_name(record.name());
               event->set_version(absl::StrCat(version));
               event->set_kind(coffer::v1::CHANGE_KIND_METADATA_UPDATED);
               return absl::OkStatus();
             }));
  return response;
}

absl::StatusOr<pm::UnlabelParameterVersionResponse> ParamStore::UnlabelParameterVersion(
    const pm::UnlabelParameterVersionRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:UnlabelParameterVersion", request.name()));
  if (request.labels().empty() || request.labels_size() > kMaxLabelsPerVersion) {
    return Error(reason::kValidation, "labels: give 1-10 labels", request.name(), "labels");
  }
  if (request.parameter_version() < 1) {
    return Error(reason::kValidation, "parameter_version: is required", request.name(),
                 "parameter_version");
  }
  std::vector<std::string> labels(request.labels().begin(), request.labels().end());
  pm::UnlabelParameterVersionResponse response;
  COFFER_RETURN_IF_ERROR(Update(request.name(), ParameterNotFound(request.name()),
                                [&](ParameterRecord& record, ChangeEvent* event) -> absl::Status {
                                  COFFER_ASSIGN_OR_RETURN(
                                      auto result,
                                      RemoveLabels(record, request.parameter_version(), labels));
                                  response.clear_removed_labels();
                                  response.clear_invalid_labels();
                                  for (const auto& l : result.first) response.add_removed_labels(l);
                                  for (const auto& l : result.second)
                                    response.add_invalid_labels(l);
                                  if (!result.first.empty()) {
                                    event->set_name(record.name());
                                    event->set_version(absl::StrCat(request.parameter_version()));
                                    event->set_kind(coffer::v1::CHANGE_KIND_METADATA_UPDATED);
                                  }
                                  return absl::OkStatus();
                                }));
  return response;
}

absl::StatusOr<pm::AddTagsToResourceResponse> ParamStore::AddTagsToResource(
    const pm::AddTagsToResourceRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateResource(request.resource_type(), request.resource_id()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:AddTagsToResource", request.resource_id()));
  if (request.tags().empty()) {
    return Error(reason::kValidation, "tags: at least one tag is required", "", "tags");
  }
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", TagViews(request.tags()), kParamTagRules));
  COFFER_RETURN_IF_ERROR(Update(request.resource_id(), ResourceNotFound(request.resource_id()),
                                [&](ParameterRecord& record, ChangeEvent* event) -> absl::Status {
                                  std::map<std::string, std::string> tags;
                                  for (const auto& t : record.tags()) tags[t.key()] = t.value();
                                  for (const auto& t : request.tags()) tags[t.key()] = t.value();
                                  if (static_cast<int>(tags.size()) > kMaxTags) {
                                    return Error(reason::kTooManyTagsError,
                                                 "tags: a parameter may have at most 50 tags",
                                                 request.resource_id(), "tags");
                                  }
                                  SetTags(record, tags);
                                  event->set_name(record.name());
                                  event->set_kind(coffer::v1::CHANGE_KIND_METADATA_UPDATED);
                                  return absl::OkStatus();
                                }));
  return pm::AddTagsToResourceResponse();
}

absl::StatusOr<pm::RemoveTagsFromResourceResponse> ParamStore::RemoveTagsFromResource(
    const pm::RemoveTagsFromResourceRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateResource(request.resource_type(), request.resource_id()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:RemoveTagsFromResource", request.resource_id()));
  if (request.tag_keys().empty() || request.tag_keys_size() > kMaxTags) {
    return Error(reason::kValidation, "tag_keys: give 1-50 keys", "", "tag_keys");
  }
  for (const auto& key : request.tag_keys()) {
    COFFER_RETURN_IF_ERROR(ValidateTagKey("tag_keys", key, kParamTagRules));
  }
  COFFER_RETURN_IF_ERROR(Update(request.resource_id(), ResourceNotFound(request.resource_id()),
                                [&](ParameterRecord& record, ChangeEvent* event) {
                                  std::map<std::string, std::string> tags;
                                  for (const auto& t : record.tags()) tags[t.key()] = t.value();
                                  for (const auto& k : request.tag_keys()) tags.erase(k);
                                  SetTags(record, tags);
                                  event->set_name(record.name());
                                  event->set_kind(coffer::v1::CHANGE_KIND_METADATA_UPDATED);
                                  return absl::OkStatus();
                                }));
  return pm::RemoveTagsFromResourceResponse();
}

absl::StatusOr<pm::ListTagsForResourceResponse> ParamStore::ListTagsForResource(
    const pm::ListTagsForResourceRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateResource(request.resource_type(), request.resource_id()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:ListTagsForResource", request.resource_id()));
  COFFER_ASSIGN_OR_RETURN(auto record, Read(request.resource_id()));
  if (!record) return ResourceNotFound(request.resource_id());
  pm::ListTagsForResourceResponse response;
  *response.mutable_tag_list() = record->tags();
  return response;
}

absl::StatusOr<PolicyRunResult> ParamStore::RunPolicies() {
  absl::Time now = clock_->Now();
  std::vector<std::string> due;
  storage::ScanOptions scan;
  scan.end_before = storage::BigEndian64(static_cast<uint64_t>(absl::ToUnixMicros(now) + 1));
  scan.limit = 1000;
  COFFER_RETURN_IF_ERROR(
      db_->Scan(schema::kParamPolicyDue, scan, [&](absl::string_view k, absl::string_view) {
        due.emplace_back(k);
        return true;
      }));
  PolicyRunResult result;
  for (const std::string& key : due) {
    absl::string_view rest = absl::string_view(key).substr(8);
    size_t sep = rest.rfind('\0');
    if (sep == absl::string_view::npos) {
      COFFER_RETURN_IF_ERROR(db_->Delete(schema::kParamPolicyDue, key));
      continue;
    }
    const std::string name(rest.substr(0, sep));
    const std::string type(rest.substr(sep + 1));
    bool expired = false;
    bool notified = false;
    COFFER_RETURN_IF_ERROR(
        Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
          expired = notified = false;
          txn.Delete(schema::kParamPolicyDue, key);
          COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(schema::kParams, name));
          ParameterRecord record;
          if (!bytes || !record.ParseFromString(*bytes) || record.versions().empty()) {
            return absl::OkStatus();  // leftover entry
          }
          absl::Time modified = FromProto(LatestVersion(record).last_modified_date());
          for (const ParameterPolicy& p : StoredPolicies(record)) {
            if (p.type_name() != type) continue;
            absl::Time when = PolicyDue(p, modified);
            if (schema::PolicyDueKey(when, name, type) != key) continue;  // superseded entry
            event->set_name(name);
            event->set_version(absl::StrCat(LatestVersion(record).version()));
            if (p.type == ParameterPolicy::Type::kExpiration) {
              DeleteIn(txn, record);
              event->set_kind(coffer::v1::CHANGE_KIND_EXPIRED);
              event->set_detail("the Expiration policy deleted the parameter");
              expired = true;
              return absl::OkStatus();
            }
            std::string marker = absl::StrCat(type, "@", absl::ToUnixSeconds(when));
            if (std::find(record.notified().begin(), record.notified().end(), marker) !=
                record.notified().end()) {
              return absl::OkStatus();
            }
            record.add_notified(marker);
            txn.Put(schema::kParams, name, record.SerializeAsString());
            if (p.type == ParameterPolicy::Type::kExpirationNotification) {
              event->set_kind(coffer::v1::CHANGE_KIND_EXPIRATION_NOTIFICATION);
              event->set_detail(absl::StrCat("expires at ", absl::FormatTime(p.expiration)));
            } else {
              event->set_kind(coffer::v1::CHANGE_KIND_NO_CHANGE_NOTIFICATION);
              event->set_detail(absl::StrCat("unchanged since ", absl::FormatTime(modified)));
            }
            notified = true;
            return absl::OkStatus();
          }
          return absl::OkStatus();
        }));
    if (expired) {
      ++result.expired;
      log::Info("params", "parameter expired", {{"name", name}});
    }
    if (notified) {
      ++result.notifications;
      log::Info("params", "parameter policy notification", {{"name", name}, {"policy", type}});
    }
  }
  return result;
}

absl::StatusOr<std::function<bool(const ChangeEvent&)>> ParamStore::WatchFilter(
    const pm::WatchParametersRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidatePath("path", request.path()));
  const std::string path = NormalizePath(request.path());
  const bool recursive = request.recursive();
  access.set_resource(path);
  // Only the parameters the caller may describe.
  return std::function<bool(const ChangeEvent&)>([path, recursive, access](const ChangeEvent& e) {
    if (e.resource_kind() != coffer::v1::RESOURCE_KIND_PARAMETER) return false;
    if (!access.Allows("ssm:DescribeParameters", authz::Resource(e.name()))) return false;
    if (recursive) return absl::StartsWith(e.name(), path == "/" ? "/" : path + "/");
    return ParentPath(e.name()) == path;
  });
}

}  // namespace coffer::store
