// param_rules.h: the rules of the parameters API (parameters-api.md) as
// pure functions. Errors carry the SSM exception names (reasons below),
// INVALID_ARGUMENT unless noted, and name the field.
//
//   COFFER_RETURN_IF_ERROR(ValidateParameterName("name", "/prod/db/url"));
//   COFFER_ASSIGN_OR_RETURN(Selector sel, ParseSelector("name", "/prod/db/url:3"));
//   bool ok = IsValidLabel("release-2024");
//   COFFER_ASSIGN_OR_RETURN(auto policies, ParsePolicies(json, now));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coffer/internal/store/v1/store.pb.h"
#include "coffer/params/v1/params.pb.h"

namespace coffer::store {

inline constexpr size_t kMaxParameterName = 1011;
inline constexpr int kMaxHierarchyLevels = 15;
inline constexpr size_t kStandardValueBytes = 4096;
inline constexpr size_t kAdvancedValueBytes = 8192;
inline constexpr int kMaxParameterVersionsKept = 100;
inline constexpr int kMaxLabelsPerVersion = 10;

// Characters a-zA-Z0-9_.-/; 1-1011; a name containing '/' starts with '/',
// has no empty level and no trailing '/'; at most 15 levels
// (HierarchyLevelLimitExceededException); names starting with "aws" or
// "ssm" (any case, with or without a leading '/') are reserved
// (ValidationException).
absl::Status ValidateParameterName(absl::string_view field, absl::string_view name);
// A GetParametersByPath / Watch path: starts with '/', same characters,
// at most 15 levels; "/" is the root. A trailing '/' is allowed and ignored.
absl::Status ValidatePath(absl::string_view field, absl::string_view path);
// "/a/b/" -> "/a/b"; "/" stays "/".
std::string NormalizePath(absl::string_view path);
// The parent path of a hierarchical name ("/a/b/c" -> "/a/b", "/a" -> "/"),
// or "" for a flat name.
std::string ParentPath(absl::string_view name);

struct Selector {
  std::string name;
  int64_t version = 0;  // 0: none
  std::string label;    // "": none
  // ":3" / ":label" / "".
  std::string text() const;
};
// "name", "name:3", "name:label". Empty selector after ':' or a version
// that is not a positive integer and not a valid label: ValidationException.
// A suffix starting with a digit is a version (labels cannot start with
// one); anything else is a label, so "name:-1" selects the label "-1".
// Only the shape is checked: the name part is not validated (an invalid
// name is simply not found).
absl::StatusOr<Selector> ParseSelector(absl::string_view field, absl::string_view input);

// <=100 characters of letters, digits, '.', '-', '_'; not starting with a
// digit, "aws" or "ssm" (any case).
bool IsValidLabel(absl::string_view label);

// Value size for the tier (Standard 4096 bytes, Advanced 8192), not empty.
absl::Status ValidateValue(absl::string_view field, absl::string_view value,
                           params::v1::ParameterTier tier);
// allowed_pattern compiles (RE2) and is at most 1024 characters
// (InvalidAllowedPatternException); the value must fully match it
// (ParameterPatternMismatchException).
absl::Status CheckAllowedPattern(absl::string_view pattern, absl::string_view value);

struct ParameterPolicy {
  enum class Type { kExpiration, kExpirationNotification, kNoChangeNotification };
  Type type;
  std::string text;               // this policy's JSON, as stored for DescribeParameters
  absl::Time expiration;          // kExpiration; kExpirationNotification: the Expiration's time
  absl::Duration before;          // kExpirationNotification: notify this long before expiry
  absl::Duration after;           // kNoChangeNotification: notify when unchanged this long
  const char* type_name() const;  // "Expiration" ...
};
// The policies JSON array ([{"Type":...,"Version":"1.0","Attributes":{...}}]).
// Expiration {Timestamp (RFC 3339)}; ExpirationNotification {Before, Unit:
// Days|Hours}; NoChangeNotification {After, Unit: Days|Hours}. At most one
// of each type; ExpirationNotification needs an Expiration
// (IncompatiblePolicyException); Expiration in the past relative to `now`
// is InvalidPolicyAttributeException. "" or "[]" -> no policies.
// Two policies of one type: IncompatiblePolicyException. Bad Version,
// missing/unknown/ill-typed attributes: InvalidPolicyAttributeException;
// missing or unknown Type: InvalidPolicyTypeException; not JSON, not an
// array, an element that is not an object, or over 4096 characters:
// ValidationException. Errors name the field "policies". Before/After are
// whole numbers (JSON string or number) up to 36500 days / 876000 hours.
// `text` is a canonical re-serialisation of each policy.
absl::StatusOr<std::vector<ParameterPolicy>> ParsePolicies(absl::string_view json, absl::Time now);

// When each policy is next due for a parameter last modified at
// `last_modified`: Expiration at its time; ExpirationNotification at
// expiration - before; NoChangeNotification at last_modified + after.
absl::Time PolicyDue(const ParameterPolicy& policy, absl::Time last_modified);

using ParameterRecord = ::coffer::internal::store::v1::ParameterRecord;
using ParameterVersionInfo = ::coffer::internal::store::v1::ParameterVersionInfo;

// Appends `version` (number = latest + 1 assigned here, returned). When
// more than 100 versions would be kept the oldest is dropped — unless it
// carries a label: ParameterMaxVersionLimitExceeded (FAILED_PRECONDITION),
// record unchanged. `dropped` (may be null) receives the removed version
// number (0 none). The new version starts without labels.
// The newest version of a stored record (records always hold one).
inline const ParameterVersionInfo& LatestVersion(const ParameterRecord& r) {
  return r.versions(r.versions_size() - 1);
}
// ParameterNotFound naming the parameter.
absl::Status ParameterNotFound(absl::string_view name);
// The policies stored with a record (valid when they were set, so parsed
// without the "in the past" check; none when unreadable).
std::vector<ParameterPolicy> StoredPolicies(const ParameterRecord& r);

absl::StatusOr<int64_t> AddParameterVersion(ParameterRecord& record, ParameterVersionInfo version,
                                            int64_t* dropped);

// LabelParameterVersion: invalid labels (IsValidLabel false) are returned,
// not applied; valid ones move to `version` from any other version. More
// than 10 labels on the version: ParameterVersionLabelLimitExceeded, record
// unchanged. Unknown version: ParameterVersionNotFound. Version 0 means the
// latest. `labels` must hold 1-10 entries (ValidationException, "labels").
absl::StatusOr<std::vector<std::string>> ApplyLabels(ParameterRecord& record, int64_t version,
                                                     const std::vector<std::string>& labels);
// UnlabelParameterVersion: returns {removed, invalid (not on that version)}.
// `version` must be positive (ValidationException) and exist
// (ParameterVersionNotFound); `labels` 1-10 entries.
absl::StatusOr<std::pair<std::vector<std::string>, std::vector<std::string>>> RemoveLabels(
    ParameterRecord& record, int64_t version, const std::vector<std::string>& labels);

// The version a selector names (latest without one). ParameterVersionNotFound
// when it does not exist.
absl::StatusOr<const ParameterVersionInfo*> SelectVersion(const ParameterRecord& record,
                                                          const Selector& selector);

// GetParametersByPath filters: Type, KeyId, Label with option Equals
// (default); DescribeParameters filters: Name (Equals|BeginsWith), Type,
// KeyId, Path (Recursive|OneLevel), Tier, DataType, tag:<key> (Equals).
// Option defaults to Equals (OneLevel for Path). Errors name the field
// "parameter_filters": unknown or repeated key InvalidFilterKey, option not
// allowed for the key InvalidFilterOption, no values / more than 50 / a bad
// value (unknown Type or Tier, invalid Path, empty, >1024 chars)
// InvalidFilterValue. Path values come back normalized (no trailing '/').
struct ParameterFilter {
  std::string key;
  std::string option;
  std::vector<std::string> values;
};
absl::StatusOr<std::vector<ParameterFilter>> ParseByPathFilters(
    const google::protobuf::RepeatedPtrField<params::v1::ParameterStringFilter>& filters);
absl::StatusOr<std::vector<ParameterFilter>> ParseDescribeFilters(
    const google::protobuf::RepeatedPtrField<params::v1::ParameterStringFilter>& filters);
// True when the record's latest version passes every filter. Type values:
// String | StringList | SecureString; Tier: Standard | Advanced.
// Values within a filter are alternatives; filters all apply. KeyId matches
// SecureString only (an empty key_id is "alias/coffer/ssm"); Label matches
// when ANY kept version carries one of the labels (AWS then returns that
// version: the caller picks it with SelectVersion); Tier is the record's.
bool MatchesParameterFilters(const ParameterRecord& record,
                             const std::vector<ParameterFilter>& filters);

}  // namespace coffer::store
