#include "services/store/params/param_rules.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/errors.h"
#include "libs/common/json.h"
#include "libs/common/status_macros.h"
#include "re2/re2.h"

namespace coffer::store {

namespace {

using params::v1::ParameterTier;
using params::v1::ParameterType;
using Versions = google::protobuf::RepeatedPtrField<ParameterVersionInfo>;

constexpr size_t kMaxPathLength = 2048;          // GetParametersByPath Path, as in AWS
constexpr size_t kMaxSelectorNameLength = 2048;  // GetParameter Name, as in AWS
constexpr size_t kMaxLabelLength = 100;
constexpr size_t kMaxAllowedPattern = 1024;
constexpr size_t kMaxPoliciesJson = 4096;
// Bounds Before/After so the durations stay far from absl's infinite ones.
constexpr int64_t kMaxPolicyDays = 36500;
constexpr int64_t kMaxPolicyHours = kMaxPolicyDays * 24;
constexpr int kMaxFilterValues = 50;
constexpr size_t kMaxFilterValueLength = 1024;
constexpr size_t kMaxTagKeyLength = 128;
constexpr char kDefaultKeyAlias[] = "alias/coffer/ssm";
constexpr char kTagPrefix[] = "tag:";
constexpr char kFiltersField[] = "parameter_filters";
constexpr char kPoliciesField[] = "policies";

// "<field>: <problem>" with `reason`, naming the field.
absl::Status Invalid(absl::string_view reason, absl::string_view field, absl::string_view problem,
                     absl::string_view name = "") {
  return Error(reason, absl::StrCat(field, ": ", problem), name, field);
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
         c == '/';
}

bool IsLabelChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

bool HasReservedPrefix(absl::string_view s) {
  return absl::StartsWithIgnoreCase(s, "aws") || absl::StartsWithIgnoreCase(s, "ssm");
}

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// Levels of a '/'-separated name or path without a trailing '/': "/a/b" 2.
int Levels(absl::string_view s) { return static_cast<int>(std::count(s.begin(), s.end(), '/')); }

}  // namespace

// ---- names and paths ----

absl::Status ValidateParameterName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return Invalid(reason::kValidation, field, "is required");
  if (name.size() > kMaxParameterName) {
    return Invalid(reason::kValidation, field,
                   absl::StrCat("must be at most ", kMaxParameterName, " characters"));
  }
  if (!std::all_of(name.begin(), name.end(), IsNameChar)) {
    return Invalid(reason::kValidation, field,
                   "may contain only ASCII letters, digits, '_', '.', '-' and '/'", name);
  }
  if (absl::StrContains(name, '/')) {
    if (name.front() != '/') {
      return Invalid(reason::kValidation, field,
                     "a hierarchical name must be fully qualified (start with '/')", name);
    }
    if (name.back() == '/')
      return Invalid(reason::kValidation, field, "must not end with '/'", name);
    if (absl::StrContains(name, "//")) {
      return Invalid(reason::kValidation, field, "must not contain an empty level ('//')", name);
    }
    if (Levels(name) > kMaxHierarchyLevels) {
      return Invalid(reason::kHierarchyLevelLimitExceeded, field,
                     absl::StrCat("a name can have at most ", kMaxHierarchyLevels, " levels"),
                     name);
    }
  }
  absl::string_view first = name.front() == '/' ? name.substr(1) : name;
  if (HasReservedPrefix(first)) {
    return Invalid(reason::kValidation, field,
                   "names beginning with 'aws' or 'ssm' (in any case) are reserved", name);
  }
  return absl::OkStatus();
}

absl::Status ValidatePath(absl::string_view field, absl::string_view path) {
  if (path.empty()) return Invalid(reason::kValidation, field, "is required");
  if (path.size() > kMaxPathLength) {
    return Invalid(reason::kValidation, field,
                   absl::StrCat("must be at most ", kMaxPathLength, " characters"));
  }
  if (path.front() != '/') return Invalid(reason::kValidation, field, "must start with '/'", path);
  if (!std::all_of(path.begin(), path.end(), IsNameChar)) {
    return Invalid(reason::kValidation, field,
                   "may contain only ASCII letters, digits, '_', '.', '-' and '/'", path);
  }
  if (absl::StrContains(path, "//")) {
    return Invalid(reason::kValidation, field, "must not contain an empty level ('//')", path);
  }
  std::string normalized = NormalizePath(path);
  if (normalized != "/" && Levels(normalized) > kMaxHierarchyLevels) {
    return Invalid(reason::kHierarchyLevelLimitExceeded, field,
                   absl::StrCat("a path can have at most ", kMaxHierarchyLevels, " levels"), path);
  }
  return absl::OkStatus();
}

std::string NormalizePath(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

std::string ParentPath(absl::string_view name) {
  size_t slash = name.rfind('/');
  if (slash == absl::string_view::npos) return "";
  if (slash == 0) return "/";
  return std::string(name.substr(0, slash));
}

// ---- selectors and labels ----

std::string Selector::text() const {
  if (version > 0) return absl::StrCat(":", version);
  if (!label.empty()) return absl::StrCat(":", label);
  return "";
}

absl::StatusOr<Selector> ParseSelector(absl::string_view field, absl::string_view input) {
  using reason::kValidation;
  if (input.empty()) return Invalid(reason::kValidation, field, "is required");
  if (input.size() > kMaxSelectorNameLength) {
    return Invalid(reason::kValidation, field,
                   absl::StrCat("must be at most ", kMaxSelectorNameLength, " characters"));
  }
  // Names cannot contain ':', so the first one starts the selector.
  size_t colon = input.find(':');
  Selector sel;
  sel.name = std::string(input.substr(0, colon));
  if (sel.name.empty())
    return Invalid(reason::kValidation, field, "the parameter name is missing", input);
  if (colon == absl::string_view::npos) return sel;
  absl::string_view suffix = input.substr(colon + 1);
  if (suffix.empty()) {
    return Invalid(reason::kValidation, field, "a version or label must follow ':'", input);
  }
  // Labels cannot start with a digit, so a leading digit means a version.
  if (absl::ascii_isdigit(static_cast<unsigned char>(suffix.front()))) {
    int64_t version = 0;
    if (!AllDigits(suffix) || !absl::SimpleAtoi(suffix, &version) || version <= 0) {
      return Invalid(reason::kValidation, field, "the version must be a positive integer", input);
    }
    sel.version = version;
    return sel;
  }
  if (!IsValidLabel(suffix)) {
    return Invalid(reason::kValidation, field,
                   absl::StrCat("'", suffix, "' is neither a version nor a valid label"), input);
  }
  sel.label = std::string(suffix);
  return sel;
}

bool IsValidLabel(absl::string_view label) {
  if (label.empty() || label.size() > kMaxLabelLength) return false;
  if (!std::all_of(label.begin(), label.end(), IsLabelChar)) return false;
  if (absl::ascii_isdigit(static_cast<unsigned char>(label.front()))) return false;
  return !HasReservedPrefix(label);
}

// ---- values ----

absl::Status ValidateValue(absl::string_view field, absl::string_view value, ParameterTier tier) {
  using reason::kValidation;
  if (value.empty()) return Invalid(reason::kValidation, field, "is required");
  const bool advanced = tier == params::v1::PARAMETER_TIER_ADVANCED;
  const size_t max = advanced ? kAdvancedValueBytes : kStandardValueBytes;
  if (value.size() > max) {
    return Invalid(reason::kValidation, field,
                   absl::StrCat(advanced ? "Advanced" : "Standard",
                                " tier parameters support values of at most ", max, " bytes",
                                advanced ? "" : "; use the Advanced tier for larger values"));
  }
  return absl::OkStatus();
}

absl::Status CheckAllowedPattern(absl::string_view pattern, absl::string_view value) {
  if (pattern.empty()) return absl::OkStatus();
  constexpr char kField[] = "allowed_pattern";
  if (pattern.size() > kMaxAllowedPattern) {
    return Invalid(reason::kInvalidAllowedPattern, kField,
                   absl::StrCat("must be at most ", kMaxAllowedPattern, " characters"));
  }
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re.ok()) {
    return Invalid(reason::kInvalidAllowedPattern, kField,
                   absl::StrCat("is not a valid regular expression: ", re.error()));
  }
  if (!RE2::FullMatch(re2::StringPiece(value.data(), value.size()), re)) {
    return Invalid(reason::kParameterPatternMismatch, "value",
                   "does not match the parameter's allowed_pattern");
  }
  return absl::OkStatus();
}

// ---- policies ----

const char* ParameterPolicy::type_name() const {
  switch (type) {
    case Type::kExpiration:
      return "Expiration";
    case Type::kExpirationNotification:
      return "ExpirationNotification";
    case Type::kNoChangeNotification:
      return "NoChangeNotification";
  }
  return "";
}

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

absl::Status PolicyError(absl::string_view reason, absl::string_view problem) {
  return Invalid(reason, kPoliciesField, problem);
}

absl::Status AttributeError(absl::string_view type, absl::string_view problem) {
  return PolicyError(reason::kInvalidPolicyAttribute, absl::StrCat(type, ": ", problem));
}

// Only the named keys may appear in `s`.
absl::Status OnlyKeys(const Struct& s, absl::string_view type,
                      std::initializer_list<absl::string_view> keys) {
  for (const auto& [key, value] : s.fields()) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return AttributeError(type, absl::StrCat("unknown attribute '", key, "'"));
    }
  }
  return absl::OkStatus();
}

const Value* Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? nullptr : &it->second;
}

// Before/After: a positive whole number, as a JSON string ("15") or number.
// Returns it in its canonical decimal form.
absl::StatusOr<int64_t> PositiveCount(const Struct& attrs, absl::string_view type,
                                      const std::string& key, int64_t max) {
  const Value* v = Field(attrs, key);
  if (v == nullptr) return AttributeError(type, absl::StrCat(key, " is required"));
  int64_t n = 0;
  bool ok = false;
  if (v->kind_case() == Value::kStringValue) {
    ok = AllDigits(v->string_value()) && absl::SimpleAtoi(v->string_value(), &n);
  } else if (v->kind_case() == Value::kNumberValue) {
    double d = v->number_value();
    ok = std::isfinite(d) && d == std::floor(d) && d >= 0 && d <= static_cast<double>(max);
    if (ok) n = static_cast<int64_t>(d);
  }
  if (!ok || n <= 0 || n > max) {
    return AttributeError(type, absl::StrCat(key, " must be a whole number from 1 to ", max));
  }
  return n;
}

// Before/After with their Unit, as a duration; `canonical` gets the
// attributes' JSON.
absl::StatusOr<absl::Duration> CountWithUnit(const Struct& attrs, absl::string_view type,
                                             const std::string& key, std::string* canonical) {
  const Value* unit = Field(attrs, "Unit");
  if (unit == nullptr) return AttributeError(type, "Unit is required");
  if (unit->kind_case() != Value::kStringValue ||
      (unit->string_value() != "Days" && unit->string_value() != "Hours")) {
    return AttributeError(type, "Unit must be \"Days\" or \"Hours\"");
  }
  const bool days = unit->string_value() == "Days";
  COFFER_ASSIGN_OR_RETURN(int64_t n,
                          PositiveCount(attrs, type, key, days ? kMaxPolicyDays : kMaxPolicyHours));
  *canonical = absl::StrCat("{\"", key, "\":\"", n, "\",\"Unit\":\"", unit->string_value(), "\"}");
  return days ? absl::Hours(24 * n) : absl::Hours(n);
}

absl::StatusOr<ParameterPolicy> ParsePolicy(const Value& item, absl::Time now) {
  using reason::kInvalidPolicyType;
  if (item.kind_case() != Value::kStructValue) {
    return PolicyError(reason::kValidation, "each policy must be a JSON object");
  }
  const Struct& policy = item.struct_value();
  const Value* type = Field(policy, "Type");
  if (type == nullptr) return PolicyError(reason::kInvalidPolicyType, "each policy needs a Type");
  if (type->kind_case() != Value::kStringValue) {
    return PolicyError(reason::kInvalidPolicyType, "Type must be a string");
  }
  ParameterPolicy out;
  const std::string& type_name = type->string_value();
  if (type_name == "Expiration") {
    out.type = ParameterPolicy::Type::kExpiration;
  } else if (type_name == "ExpirationNotification") {
    out.type = ParameterPolicy::Type::kExpirationNotification;
  } else if (type_name == "NoChangeNotification") {
    out.type = ParameterPolicy::Type::kNoChangeNotification;
  } else {
    return PolicyError(reason::kInvalidPolicyType,
                       absl::StrCat("unsupported policy type ", JsonQuote(type_name),
                                    "; supported: Expiration, ExpirationNotification, "
                                    "NoChangeNotification"));
  }
  COFFER_RETURN_IF_ERROR(OnlyKeys(policy, type_name, {"Type", "Version", "Attributes"}));
  const Value* version = Field(policy, "Version");
  if (version == nullptr || version->kind_case() != Value::kStringValue ||
      version->string_value() != "1.0") {
    return AttributeError(type_name, "Version must be \"1.0\"");
  }
  const Value* attrs_value = Field(policy, "Attributes");
  if (attrs_value == nullptr || attrs_value->kind_case() != Value::kStructValue) {
    return AttributeError(type_name, "Attributes must be an object");
  }
  const Struct& attrs = attrs_value->struct_value();

  std::string canonical_attrs;
  switch (out.type) {
    case ParameterPolicy::Type::kExpiration: {
      COFFER_RETURN_IF_ERROR(OnlyKeys(attrs, type_name, {"Timestamp"}));
      const Value* ts = Field(attrs, "Timestamp");
      std::string err;
      if (ts == nullptr || ts->kind_case() != Value::kStringValue ||
          !absl::ParseTime(absl::RFC3339_full, ts->string_value(), &out.expiration, &err)) {
        return AttributeError(type_name,
                              "Timestamp must be an RFC 3339 time (2030-01-31T12:00:00Z)");
      }
      if (out.expiration <= now) return AttributeError(type_name, "Timestamp is in the past");
      canonical_attrs = absl::StrCat("{\"Timestamp\":", JsonQuote(ts->string_value()), "}");
      break;
    }
    case ParameterPolicy::Type::kExpirationNotification: {
      COFFER_RETURN_IF_ERROR(OnlyKeys(attrs, type_name, {"Before", "Unit"}));
      COFFER_ASSIGN_OR_RETURN(out.before,
                              CountWithUnit(attrs, type_name, "Before", &canonical_attrs));
      break;
    }
    case ParameterPolicy::Type::kNoChangeNotification: {
      COFFER_RETURN_IF_ERROR(OnlyKeys(attrs, type_name, {"After", "Unit"}));
      COFFER_ASSIGN_OR_RETURN(out.after,
                              CountWithUnit(attrs, type_name, "After", &canonical_attrs));
      break;
    }
  }
  out.text = absl::StrCat("{\"Type\":\"", type_name,
                          "\",\"Version\":\"1.0\",\"Attributes\":", canonical_attrs, "}");
  return out;
}

}  // namespace

absl::StatusOr<std::vector<ParameterPolicy>> ParsePolicies(absl::string_view json, absl::Time now) {
  std::vector<ParameterPolicy> out;
  if (absl::StripAsciiWhitespace(json).empty()) return out;
  if (json.size() > kMaxPoliciesJson) {
    return PolicyError(reason::kValidation,
                       absl::StrCat("must be at most ", kMaxPoliciesJson, " characters"));
  }
  Value doc;
  auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &doc);
  if (!parsed.ok()) return PolicyError(reason::kValidation, "is not valid JSON");
  if (doc.kind_case() != Value::kListValue) {
    return PolicyError(reason::kValidation, "must be a JSON array of policies");
  }
  std::set<ParameterPolicy::Type> seen;
  for (const Value& item : doc.list_value().values()) {
    COFFER_ASSIGN_OR_RETURN(ParameterPolicy policy, ParsePolicy(item, now));
    if (!seen.insert(policy.type).second) {
      return PolicyError(reason::kIncompatiblePolicy,
                         absl::StrCat("at most one ", policy.type_name(), " policy is allowed"));
    }
    out.push_back(std::move(policy));
  }
  // ExpirationNotification counts back from the Expiration policy's time.
  const ParameterPolicy* expiration = nullptr;
  for (const ParameterPolicy& p : out) {
    if (p.type == ParameterPolicy::Type::kExpiration) expiration = &p;
  }
  for (ParameterPolicy& p : out) {
    if (p.type != ParameterPolicy::Type::kExpirationNotification) continue;
    if (expiration == nullptr) {
      return PolicyError(reason::kIncompatiblePolicy,
                         "an ExpirationNotification policy needs an Expiration policy");
    }
    p.expiration = expiration->expiration;
  }
  return out;
}

absl::Time PolicyDue(const ParameterPolicy& policy, absl::Time last_modified) {
  switch (policy.type) {
    case ParameterPolicy::Type::kExpiration:
      return policy.expiration;
    case ParameterPolicy::Type::kExpirationNotification:
      return policy.expiration - policy.before;
    case ParameterPolicy::Type::kNoChangeNotification:
      return last_modified + policy.after;
  }
  return absl::InfiniteFuture();
}

// ---- versions and labels ----

namespace {

ParameterVersionInfo* FindVersion(Versions& versions, int64_t number) {
  for (ParameterVersionInfo& v : versions) {
    if (v.version() == number) return &v;
  }
  return nullptr;
}

absl::Status VersionNotFound(const ParameterRecord& record, absl::string_view selector) {
  return Error(
      reason::kParameterVersionNotFound,
      absl::StrCat("Version ", selector, " of parameter ", record.name(), " does not exist"),
      absl::StrCat(record.name(), ":", selector));
}

void RemoveLabel(ParameterVersionInfo& v, const std::string& label) {
  auto* labels = v.mutable_labels();
  labels->erase(std::remove(labels->begin(), labels->end(), label), labels->end());
}

bool HasLabel(const ParameterVersionInfo& v, absl::string_view label) {
  return std::find(v.labels().begin(), v.labels().end(), label) != v.labels().end();
}

absl::Status CheckLabelRequest(const std::vector<std::string>& labels) {
  if (labels.empty() || labels.size() > static_cast<size_t>(kMaxLabelsPerVersion)) {
    return Invalid(reason::kValidation, "labels",
                   absl::StrCat("must hold 1-", kMaxLabelsPerVersion, " labels"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> AddParameterVersion(ParameterRecord& record, ParameterVersionInfo version,
                                            int64_t* dropped) {
  if (dropped != nullptr) *dropped = 0;
  const int64_t number =
      record.versions().empty() ? 1 : record.versions(record.versions_size() - 1).version() + 1;
  if (record.versions_size() >= kMaxParameterVersionsKept) {
    const ParameterVersionInfo& oldest = record.versions(0);
    if (!oldest.labels().empty()) {
      return Error(
          reason::kParameterMaxVersionLimitExceeded,
          absl::StrCat("Parameter ", record.name(), " already has ", kMaxParameterVersionsKept,
                       " versions and the oldest (version ", oldest.version(),
                       ") carries a label; remove its labels before adding a version"),
          record.name());
    }
  }
  // Labels are only ever attached by LabelParameterVersion.
  version.clear_labels();
  version.set_version(number);
  *record.add_versions() = std::move(version);
  if (record.versions_size() > kMaxParameterVersionsKept) {
    if (dropped != nullptr) *dropped = record.versions(0).version();
    record.mutable_versions()->DeleteSubrange(0,
                                              record.versions_size() - kMaxParameterVersionsKept);
  }
  return number;
}

absl::StatusOr<std::vector<std::string>> ApplyLabels(ParameterRecord& record, int64_t version,
                                                     const std::vector<std::string>& labels) {
  COFFER_RETURN_IF_ERROR(CheckLabelRequest(labels));
  if (version == 0 && !record.versions().empty()) {
    version = record.versions(record.versions_size() - 1).version();
  }
  Versions versions = record.versions();
  ParameterVersionInfo* target = FindVersion(versions, version);
  if (target == nullptr) return VersionNotFound(record, absl::StrCat(version));

  std::vector<std::string> invalid;
  for (const std::string& label : labels) {
    if (!IsValidLabel(label)) {
      if (std::find(invalid.begin(), invalid.end(), label) == invalid.end()) {
        invalid.push_back(label);
      }
      continue;
    }
    if (HasLabel(*target, label)) continue;
    for (ParameterVersionInfo& v : versions) RemoveLabel(v, label);
    target->add_labels(label);
  }
  if (target->labels_size() > kMaxLabelsPerVersion) {
    return Error(reason::kParameterVersionLabelLimitExceeded,
                 absl::StrCat("A parameter version can have at most ", kMaxLabelsPerVersion,
                              " labels; version ", version, " of ", record.name(), " would have ",
                              target->labels_size()),
                 absl::StrCat(record.name(), ":", version), "labels");
  }
  record.mutable_versions()->Swap(&versions);
  return invalid;
}

absl::StatusOr<std::pair<std::vector<std::string>, std::vector<std::string>>> RemoveLabels(
    ParameterRecord& record, int64_t version, const std::vector<std::string>& labels) {
  COFFER_RETURN_IF_ERROR(CheckLabelRequest(labels));
  if (version <= 0) {
    return Invalid(reason::kValidation, "parameter_version", "must be a positive version");
  }
  ParameterVersionInfo* target = FindVersion(*record.mutable_versions(), version);
  if (target == nullptr) return VersionNotFound(record, absl::StrCat(version));
  std::pair<std::vector<std::string>, std::vector<std::string>> out;
  auto& [removed, invalid] = out;
  for (const std::string& label : labels) {
    if (HasLabel(*target, label)) {
      RemoveLabel(*target, label);
      removed.push_back(label);
    } else if (std::find(removed.begin(), removed.end(), label) == removed.end() &&
               std::find(invalid.begin(), invalid.end(), label) == invalid.end()) {
      invalid.push_back(label);
    }
  }
  return out;
}

absl::StatusOr<const ParameterVersionInfo*> SelectVersion(const ParameterRecord& record,
                                                          const Selector& selector) {
  if (record.versions().empty()) {
    return Error(reason::kParameterNotFound,
                 absl::StrCat("Parameter ", record.name(), " not found"), record.name());
  }
  if (selector.version > 0) {
    for (const ParameterVersionInfo& v : record.versions()) {
      if (v.version() == selector.version) return &v;
    }
    return VersionNotFound(record, absl::StrCat(selector.version));
  }
  if (!selector.label.empty()) {
    for (const ParameterVersionInfo& v : record.versions()) {
      if (HasLabel(v, selector.label)) return &v;
    }
    return VersionNotFound(record, selector.label);
  }
  return &record.versions(record.versions_size() - 1);
}

// ---- filters ----

namespace {

using params::v1::ParameterStringFilter;
using Filters = google::protobuf::RepeatedPtrField<ParameterStringFilter>;

const char* TypeName(ParameterType type) {
  switch (type) {
    case params::v1::PARAMETER_TYPE_STRING:
      return "String";
    case params::v1::PARAMETER_TYPE_STRING_LIST:
      return "StringList";
    case params::v1::PARAMETER_TYPE_SECURE_STRING:
      return "SecureString";
    default:
      return "";
  }
}

const char* TierName(ParameterTier tier) {
  return tier == params::v1::PARAMETER_TIER_ADVANCED ? "Advanced" : "Standard";
}

absl::Status FilterError(absl::string_view reason, absl::string_view problem) {
  return Invalid(reason, kFiltersField, problem);
}

// Which options a key takes (the first is the default) and how its values
// are checked.
struct KeyRule {
  std::vector<absl::string_view> options;
  std::vector<absl::string_view> values;  // empty: any 1-1024 characters
  bool paths = false;
};

absl::StatusOr<KeyRule> RuleFor(absl::string_view key, bool describe) {
  const std::vector<absl::string_view> kEquals = {"Equals"};
  if (key == "Type") return KeyRule{kEquals, {"String", "StringList", "SecureString"}};
  if (key == "KeyId") return KeyRule{kEquals, {}};
  if (!describe) {
    if (key == "Label") return KeyRule{kEquals, {}};
  } else {
    if (key == "Name") return KeyRule{{"Equals", "BeginsWith"}, {}};
    if (key == "Path") return KeyRule{{"OneLevel", "Recursive"}, {}, true};
    if (key == "Tier") return KeyRule{kEquals, {"Standard", "Advanced"}};
    if (key == "DataType") return KeyRule{kEquals, {}};
    if (absl::StartsWith(key, kTagPrefix)) {
      size_t n = key.size() - std::strlen(kTagPrefix);
      if (n >= 1 && n <= kMaxTagKeyLength) return KeyRule{kEquals, {}};
    }
  }
  return FilterError(reason::kInvalidFilterKey,
                     absl::StrCat("unsupported filter key ", JsonQuote(key),
                                  describe ? "; supported: Name, Type, KeyId, Path, Tier, "
                                             "DataType, tag:<key>"
                                           : "; supported: Type, KeyId, Label"));
}

absl::StatusOr<std::vector<ParameterFilter>> ParseFilters(const Filters& filters, bool describe) {
  std::vector<ParameterFilter> out;
  std::set<std::string> keys;
  for (const ParameterStringFilter& f : filters) {
    COFFER_ASSIGN_OR_RETURN(KeyRule rule, RuleFor(f.key(), describe));
    if (!keys.insert(f.key()).second) {
      return FilterError(
          reason::kInvalidFilterKey,
          absl::StrCat("the filter key ", JsonQuote(f.key()), " is used more than once"));
    }
    ParameterFilter parsed;
    parsed.key = f.key();
    parsed.option = f.option().empty() ? std::string(rule.options.front()) : f.option();
    if (std::find(rule.options.begin(), rule.options.end(), parsed.option) == rule.options.end()) {
      return FilterError(reason::kInvalidFilterOption,
                         absl::StrCat("the option ", JsonQuote(f.option()), " is not valid for ",
                                      f.key(), "; valid: ", absl::StrJoin(rule.options, ", ")));
    }
    if (f.values().empty() || f.values_size() > kMaxFilterValues) {
      return FilterError(reason::kInvalidFilterValue,
                         absl::StrCat(f.key(), " needs 1-", kMaxFilterValues, " values"));
    }
    for (const std::string& value : f.values()) {
      bool ok = !value.empty() && value.size() <= kMaxFilterValueLength;
      if (ok && !rule.values.empty()) {
        ok = std::find(rule.values.begin(), rule.values.end(), value) != rule.values.end();
      }
      if (ok && rule.paths) ok = ValidatePath(kFiltersField, value).ok();
      if (!ok) {
        return FilterError(reason::kInvalidFilterValue,
                           absl::StrCat("the value ", JsonQuote(value.substr(0, 128)),
                                        " is not valid for ", f.key()));
      }
      parsed.values.push_back(rule.paths ? NormalizePath(value) : value);
    }
    out.push_back(std::move(parsed));
  }
  return out;
}

bool AnyOf(const std::vector<std::string>& values, absl::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

bool UnderPath(absl::string_view name, const ParameterFilter& f) {
  for (const std::string& path : f.values) {
    if (f.option == "Recursive") {
      if (path == "/" ? absl::StartsWith(name, "/") : absl::StartsWith(name, path + "/")) {
        return true;
      }
    } else if (ParentPath(name) == path) {
      return true;
    }
  }
  return false;
}

bool Matches(const ParameterRecord& record, const ParameterVersionInfo& latest,
             const ParameterFilter& f) {
  if (f.key == "Type") return AnyOf(f.values, TypeName(latest.type()));
  if (f.key == "KeyId") {
    if (latest.type() != params::v1::PARAMETER_TYPE_SECURE_STRING) return false;
    return AnyOf(f.values, latest.key_id().empty() ? kDefaultKeyAlias : latest.key_id());
  }
  if (f.key == "Label") {
    for (const ParameterVersionInfo& v : record.versions()) {
      for (const std::string& label : v.labels()) {
        if (AnyOf(f.values, label)) return true;
      }
    }
    return false;
  }
  if (f.key == "Name") {
    for (const std::string& value : f.values) {
      if (f.option == "BeginsWith" ? absl::StartsWith(record.name(), value)
                                   : record.name() == value) {
        return true;
      }
    }
    return false;
  }
  if (f.key == "Path") return UnderPath(record.name(), f);
  if (f.key == "Tier") return AnyOf(f.values, TierName(record.tier()));
  if (f.key == "DataType") {
    return AnyOf(f.values, latest.data_type().empty() ? "text" : latest.data_type());
  }
  if (absl::StartsWith(f.key, kTagPrefix)) {
    absl::string_view key = absl::string_view(f.key).substr(std::strlen(kTagPrefix));
    for (const params::v1::Tag& tag : record.tags()) {
      if (tag.key() == key) return AnyOf(f.values, tag.value());
    }
    return false;
  }
  return false;  // ParseFilters admits no other key
}

}  // namespace

absl::StatusOr<std::vector<ParameterFilter>> ParseByPathFilters(const Filters& filters) {
  return ParseFilters(filters, /*describe=*/false);
}

absl::StatusOr<std::vector<ParameterFilter>> ParseDescribeFilters(const Filters& filters) {
  return ParseFilters(filters, /*describe=*/true);
}

bool MatchesParameterFilters(const ParameterRecord& record,
                             const std::vector<ParameterFilter>& filters) {
  if (record.versions().empty()) return false;
  const ParameterVersionInfo& latest = record.versions(record.versions_size() - 1);
  for (const ParameterFilter& f : filters) {
    if (!Matches(record, latest, f)) return false;
  }
  return true;
}

absl::Status ParameterNotFound(absl::string_view name) {
  return Error(reason::kParameterNotFound, absl::StrCat("Parameter ", name, " not found."), name);
}

std::vector<ParameterPolicy> StoredPolicies(const ParameterRecord& r) {
  auto parsed = ParsePolicies(r.policies(), absl::InfinitePast());
  return parsed.ok() ? *parsed : std::vector<ParameterPolicy>();
}

}  // namespace coffer::store
