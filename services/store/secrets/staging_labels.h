// staging_labels.h: the staging-label rules of secrets-api.md as pure
// functions on a SecretRecord's version list. No I/O: the caller reads the
// record, applies one of these, and writes the record back atomically.
//
//   SecretRecord record = ...;
//   VersionSummary v;
//   v.set_version_id(token);
//   COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(record, v, /*stages=*/{}));
//   // v now has AWSCURRENT; the old current has AWSPREVIOUS.
//   COFFER_RETURN_IF_ERROR(StagingLabels::MoveStage(record, "AWSCURRENT",
//                                                   /*remove_from=*/old, /*move_to=*/token));
//   std::vector<std::string> purged = StagingLabels::RemoveDeprecated(record, now);
//
// Rules:
//  - a label is on at most one version; at most 20 distinct labels over all
//    versions of a secret (LimitExceededException);
//  - AddVersion: no stages means {AWSCURRENT}; the first version always gets
//    AWSCURRENT; every named label moves to the new version; when AWSCURRENT
//    moves, AWSPREVIOUS moves to the version that had AWSCURRENT;
//  - MoveStage (UpdateSecretVersionStage): if the label is on a version,
//    remove_from must name exactly that version (InvalidParameterException
//    otherwise); move_to empty means remove; AWSCURRENT can only be moved,
//    not removed; moving AWSCURRENT moves AWSPREVIOUS too; moving a label to
//    the version that already has it changes nothing;
//  - RemoveDeprecated: while there are more than 100 versions, delete
//    versions without labels that are older than 24 hours, oldest first.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coffer/internal/store/v1/store.pb.h"

namespace coffer::store {

inline constexpr char kAwsCurrent[] = "AWSCURRENT";
inline constexpr char kAwsPrevious[] = "AWSPREVIOUS";
inline constexpr char kAwsPending[] = "AWSPENDING";
inline constexpr int kMaxLabelsPerSecret = 20;
inline constexpr int kMaxVersionsKept = 100;

class StagingLabels {
 public:
  using SecretRecord = ::coffer::internal::store::v1::SecretRecord;
  using VersionSummary = ::coffer::internal::store::v1::VersionSummary;

  // Appends `version` (its id must be new; its stages are replaced; its
  // ordinal follows the last one) and applies the label moves. On error the
  // record is unchanged. `record` must hold all versions, deprecated ones
  // too (SecretRecords::Mutate's records do).
  static absl::Status AddVersion(SecretRecord& record, VersionSummary version,
                                 const std::vector<std::string>& stages);

  // UpdateSecretVersionStage. Unknown version ids are
  // ResourceNotFoundException. On error the record is unchanged.
  static absl::Status MoveStage(SecretRecord& record, const std::string& stage,
                                const std::string& remove_from_version_id,
                                const std::string& move_to_version_id);

  // Returns the ids of the versions it removed from the record.
  // At most `max_removed` (0: all that may go) are removed at once.
  static std::vector<std::string> RemoveDeprecated(SecretRecord& record, absl::Time now,
                                                   size_t max_removed = 0);

  static const VersionSummary* FindVersion(const SecretRecord& record, const std::string& id);
  static const VersionSummary* FindStage(const SecretRecord& record, const std::string& stage);
  // version id -> labels, labelled versions only.
  static std::map<std::string, std::vector<std::string>> Labelled(const SecretRecord& record);
};

}  // namespace coffer::store
