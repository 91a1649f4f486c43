// schema.h: coffer-store's on-disk schema — every RocksDB column family and
// every key layout, in one place. Values are the protobuf messages of
// proto/coffer/internal/store/v1/store.proto unless noted. Integers in keys
// are 8-byte big-endian (libs/storage/key_encoding.h), so key order is
// numeric order; "\0" separates a name from what follows (names never hold
// NUL).
//
//   family            key                                   value
//   secrets           name                                  SecretRecord
//   versions          name \0 version_id                    VersionRecord (sealed value)
//   deprecated_versions name                                DeprecatedVersions (no labels)
//   by_created        be64(created micros) name             ListIndexEntry (ListSecrets)
//   by_deletion       be64(deletion micros) name            "" (the deletion sweeper)
//   rotations         name                                  RotationScheduleEntry (rotators)
//   params            name                                  ParameterRecord
//   param_values      name \0 be64(version)                 ParameterValue
//   param_children    parent path \0 name                   "" (one-level GetParametersByPath)
//   param_policy_due  be64(due micros) name \0 policy type  "" (the policy scanner)
//   changes           be64(sequence)                        StoredChange (watch streams)
//
//   storage::DatabaseOptions options;
//   options.column_families = schema::ColumnFamilies();
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/storage/key_encoding.h"

namespace coffer::store::schema {

inline constexpr char kSecrets[] = "secrets";
inline constexpr char kVersions[] = "versions";
inline constexpr char kDeprecatedVersions[] = "deprecated_versions";
inline constexpr char kByCreated[] = "by_created";
inline constexpr char kByDeletion[] = "by_deletion";
inline constexpr char kRotations[] = "rotations";
inline constexpr char kParams[] = "params";
inline constexpr char kParamValues[] = "param_values";
inline constexpr char kParamChildren[] = "param_children";
inline constexpr char kParamPolicyDue[] = "param_policy_due";
inline constexpr char kChanges[] = "changes";

// Bytes of the big-endian integer that starts a time- or sequence-ordered key.
inline constexpr size_t kTimeBytes = 8;

// Every family the store's database is opened with.
inline std::vector<std::string> ColumnFamilies() {
  return {kSecrets, kVersions,    kDeprecatedVersions, kByCreated,      kByDeletion, kRotations,
          kParams,  kParamValues, kParamChildren,      kParamPolicyDue, kChanges};
}

// versions: one secret version.
inline std::string VersionKey(absl::string_view name, absl::string_view version_id) {
  return absl::StrCat(name, absl::string_view("\0", 1), version_id);
}
// versions: the prefix of all versions of one secret.
inline std::string VersionPrefix(absl::string_view name) {
  return absl::StrCat(name, absl::string_view("\0", 1));
}

// by_created and by_deletion: a time in microseconds, then the name.
inline std::string TimeKey(int64_t micros, absl::string_view name) {
  std::string key;
  key.reserve(kTimeBytes + name.size());
  storage::AppendBigEndian64(static_cast<uint64_t>(micros), &key);
  key.append(name.data(), name.size());
  return key;
}
inline std::string CreatedKey(int64_t created_micros, absl::string_view name) {
  return TimeKey(created_micros, name);
}
inline std::string DeletionKey(absl::Time when, absl::string_view name) {
  return TimeKey(absl::ToUnixMicros(when), name);
}

// param_values: one parameter version.
inline std::string ParamValueKey(absl::string_view name, int64_t version) {
  return absl::StrCat(name, absl::string_view("\0", 1),
                      storage::BigEndian64(static_cast<uint64_t>(version)));
}

// param_children: `name` under its parent path.
inline std::string ChildKey(absl::string_view parent, absl::string_view name) {
  return absl::StrCat(parent, absl::string_view("\0", 1), name);
}

// param_policy_due: when a parameter's policy of `type` is next due
// (times before the epoch are stored as the epoch).
inline std::string PolicyDueKey(absl::Time due, absl::string_view name, absl::string_view type) {
  const int64_t micros = std::max<int64_t>(0, absl::ToUnixMicros(due));
  return absl::StrCat(storage::BigEndian64(static_cast<uint64_t>(micros)), name,
                      absl::string_view("\0", 1), type);
}

// changes: one event.
inline std::string ChangeKey(uint64_t sequence) { return storage::BigEndian64(sequence); }

}  // namespace coffer::store::schema
