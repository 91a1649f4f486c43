#include "services/store/secrets/staging_labels.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "services/store/secrets/secret_names.h"

namespace coffer::store {

namespace {

using SecretRecord = StagingLabels::SecretRecord;
using VersionSummary = StagingLabels::VersionSummary;
using Versions = google::protobuf::RepeatedPtrField<VersionSummary>;

constexpr absl::Duration kDeprecatedGrace = absl::Hours(24);

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

VersionSummary* Find(Versions& versions, const std::string& id) {
  for (VersionSummary& v : versions) {
    if (v.version_id() == id) return &v;
  }
  return nullptr;
}

VersionSummary* Holder(Versions& versions, const std::string& stage) {
  for (VersionSummary& v : versions) {
    for (const std::string& s : v.stages()) {
      if (s == stage) return &v;
    }
  }
  return nullptr;
}

bool HasStage(const VersionSummary& v, const std::string& stage) {
  return std::find(v.stages().begin(), v.stages().end(), stage) != v.stages().end();
}

void RemoveStage(VersionSummary& v, const std::string& stage) {
  auto* stages = v.mutable_stages();
  stages->erase(std::remove(stages->begin(), stages->end(), stage), stages->end());
}

void AddStage(VersionSummary& v, const std::string& stage) {
  if (!HasStage(v, stage)) v.add_stages(stage);
}

// Puts `stage` on `target` only, taking it off whichever version had it.
void Attach(Versions& versions, VersionSummary& target, const std::string& stage) {
  for (VersionSummary& v : versions) {
    if (&v != &target) RemoveStage(v, stage);
  }
  AddStage(target, stage);
}

absl::Status CheckLabelLimit(const Versions& versions) {
  std::set<std::string> labels;
  for (const VersionSummary& v : versions) labels.insert(v.stages().begin(), v.stages().end());
  if (labels.size() > static_cast<size_t>(kMaxLabelsPerSecret)) {
    return Error(reason::kLimitExceeded,
                 absl::StrCat("version_stages: a secret can have at most ", kMaxLabelsPerSecret,
                              " staging labels over all its versions"),
                 "", "version_stages");
  }
  return absl::OkStatus();
}

absl::Status VersionNotFound(absl::string_view field, absl::string_view id) {
  return Error(reason::kResourceNotFound,
               absl::StrCat(field, ": the secret has no version '", id, "'"), id, field);
}

absl::Status InvalidParameter(absl::string_view field, absl::string_view problem) {
  return InvalidField(field, problem, reason::kInvalidParameter);
}

}  // namespace

absl::Status StagingLabels::AddVersion(SecretRecord& record, VersionSummary version,
                                       const std::vector<std::string>& stages) {
  if (version.version_id().empty()) {
    return InvalidParameter("client_request_token", "a version id is required");
  }
  if (FindVersion(record, version.version_id()) != nullptr) {
    return InvalidParameter(
        "client_request_token",
        absl::StrCat("the secret already has a version '", version.version_id(), "'"));
  }
  // The rules apply to named labels in order; duplicates collapse.
  std::vector<std::string> labels;
  for (const std::string& s : stages) {
    if (std::find(labels.begin(), labels.end(), s) == labels.end()) labels.push_back(s);
  }
  if (labels.empty()) labels.push_back(kAwsCurrent);
  const bool named_current = std::find(labels.begin(), labels.end(), kAwsCurrent) != labels.end();
  const bool named_previous = std::find(labels.begin(), labels.end(), kAwsPrevious) != labels.end();

  Versions versions = record.versions();
  const VersionSummary* old_current_ptr = Holder(versions, kAwsCurrent);
  const std::string old_current = old_current_ptr ? old_current_ptr->version_id() : "";
  // The first version of a secret always becomes current.
  if (old_current_ptr == nullptr && !named_current) labels.push_back(kAwsCurrent);

  version.clear_stages();
  int64_t last_ordinal = 0;
  for (const VersionSummary& v : versions) last_ordinal = std::max(last_ordinal, v.ordinal());
  version.set_ordinal(last_ordinal + 1);
  VersionSummary& added = *versions.Add();
  added = std::move(version);
  for (const std::string& label : labels) Attach(versions, added, label);
  // AWSPREVIOUS follows the old current version, unless the caller put it on
  // the new version explicitly.
  if (!old_current.empty() && HasStage(added, kAwsCurrent) && !named_previous) {
    Attach(versions, *Find(versions, old_current), kAwsPrevious);
  }
  COFFER_RETURN_IF_ERROR(CheckLabelLimit(versions));
  record.mutable_versions()->Swap(&versions);
  return absl::OkStatus();
}

absl::Status StagingLabels::MoveStage(SecretRecord& record, const std::string& stage,
                                      const std::string& remove_from_version_id,
                                      const std::string& move_to_version_id) {
  COFFER_RETURN_IF_ERROR(ValidateStage("version_stage", stage));
  if (remove_from_version_id.empty() && move_to_version_id.empty()) {
    return InvalidParameter("move_to_version_id",
                            "one of move_to_version_id or remove_from_version_id is required");
  }
  if (stage == kAwsCurrent && move_to_version_id.empty()) {
    return InvalidParameter("move_to_version_id",
                            "AWSCURRENT can only be moved to another version, not removed");
  }

  Versions versions = record.versions();
  VersionSummary* target = nullptr;
  if (!move_to_version_id.empty()) {
    target = Find(versions, move_to_version_id);
    if (target == nullptr) return VersionNotFound("move_to_version_id", move_to_version_id);
    // Readers follow AWSCURRENT (and fall back to AWSPREVIOUS): a version
    // without a value, such as a rotation's placeholder, must never get them.
    if ((stage == kAwsCurrent || stage == kAwsPrevious) && !target->has_value()) {
      return InvalidParameter("move_to_version_id",
                              absl::StrCat("version '", move_to_version_id,
                                           "' has no value yet; it cannot become ", stage));
    }
  }
  if (!remove_from_version_id.empty() && Find(versions, remove_from_version_id) == nullptr) {
    return VersionNotFound("remove_from_version_id", remove_from_version_id);
  }

  VersionSummary* holder = Holder(versions, stage);
  // Already there: nothing to do (a retried call must not fail).
  if (holder != nullptr && holder == target &&
      (remove_from_version_id.empty() || remove_from_version_id == holder->version_id())) {
    return absl::OkStatus();
  }
  if (holder != nullptr && remove_from_version_id != holder->version_id()) {
    return InvalidParameter(
        "remove_from_version_id",
        absl::StrCat("the label '", stage, "' is attached to version '", holder->version_id(),
                     "'; remove_from_version_id must name that version"));
  }
  if (holder == nullptr && !remove_from_version_id.empty()) {
    return InvalidParameter("remove_from_version_id",
                            absl::StrCat("the label '", stage, "' is not attached to version '",
                                         remove_from_version_id, "'"));
  }

  const std::string old_holder = holder ? holder->version_id() : "";
  if (holder != nullptr) RemoveStage(*holder, stage);
  if (target != nullptr) AddStage(*target, stage);
  if (stage == kAwsCurrent && !old_holder.empty()) {
    Attach(versions, *Find(versions, old_holder), kAwsPrevious);
  }
  COFFER_RETURN_IF_ERROR(CheckLabelLimit(versions));
  record.mutable_versions()->Swap(&versions);
  return absl::OkStatus();
}

std::vector<std::string> StagingLabels::RemoveDeprecated(SecretRecord& record, absl::Time now,
                                                         size_t max_removed) {
  std::vector<std::string> removed;
  int excess = record.versions_size() - kMaxVersionsKept;
  if (excess <= 0) return removed;
  if (max_removed > 0) excess = std::min(excess, static_cast<int>(max_removed));

  // (created, position) of each deletable version, oldest first.
  std::vector<std::pair<absl::Time, int>> eligible;
  for (int i = 0; i < record.versions_size(); ++i) {
    const VersionSummary& v = record.versions(i);
    absl::Time created = FromProto(v.created_date());
    if (v.stages().empty() && now - created > kDeprecatedGrace) eligible.emplace_back(created, i);
  }
  std::sort(eligible.begin(), eligible.end());
  if (eligible.size() > static_cast<size_t>(excess)) eligible.resize(excess);
  if (eligible.empty()) return removed;

  std::vector<bool> drop(record.versions_size(), false);
  for (const auto& [created, i] : eligible) {
    drop[i] = true;
    removed.push_back(record.versions(i).version_id());
  }
  Versions kept;
  kept.Reserve(record.versions_size() - static_cast<int>(eligible.size()));
  for (int i = 0; i < record.versions_size(); ++i) {
    if (!drop[i]) *kept.Add() = std::move(*record.mutable_versions(i));
  }
  record.mutable_versions()->Swap(&kept);
  return removed;
}

const StagingLabels::VersionSummary* StagingLabels::FindVersion(const SecretRecord& record,
                                                                const std::string& id) {
  for (const VersionSummary& v : record.versions()) {
    if (v.version_id() == id) return &v;
  }
  return nullptr;
}

const StagingLabels::VersionSummary* StagingLabels::FindStage(const SecretRecord& record,
                                                              const std::string& stage) {
  for (const VersionSummary& v : record.versions()) {
    if (HasStage(v, stage)) return &v;
  }
  return nullptr;
}

std::map<std::string, std::vector<std::string>> StagingLabels::Labelled(
    const SecretRecord& record) {
  std::map<std::string, std::vector<std::string>> out;
  for (const VersionSummary& v : record.versions()) {
    if (v.stages().empty()) continue;
    out[v.version_id()].assign(v.stages().begin(), v.stages().end());
  }
  return out;
}

}  // namespace coffer::store
