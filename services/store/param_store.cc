#include "services/store/param_store.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/errors.h"
#include "libs/common/proto_time.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/storage/key_encoding.h"

namespace coffer::store {

namespace pm = ::coffer::params::v1;
using ::coffer::internal::store::v1::ParameterValue;
using ::coffer::v1::ChangeEvent;

namespace {

constexpr char kParamsFamily[] = "params";
constexpr char kValuesFamily[] = "param_values";
constexpr char kChildrenFamily[] = "param_children";
constexpr char kPolicyDueFamily[] = "param_policy_due";
constexpr size_t kMaxDescription = 1024;
constexpr int kMaxTags = 50;

std::string ValueKey(absl::string_view name, int64_t version) {
  return absl::StrCat(name, std::string(1, '\0'), storage::BigEndian64(static_cast<uint64_t>(version)));
}

std::string ChildKey(absl::string_view name) {
  return absl::StrCat(ParentPath(name), std::string(1, '\0'), name);
}

std::string DueKey(absl::Time due, absl::string_view name, absl::string_view type) {
  int64_t micros = std::max<int64_t>(0, absl::ToUnixMicros(due));
  return absl::StrCat(storage::BigEndian64(static_cast<uint64_t>(micros)), name, std::string(1, '\0'), type);
}

EncryptionContext ContextOf(const std::string& arn) { return {{"PARAMETER_ARN", arn}}; }

const ParameterVersionInfo& Latest(const ParameterRecord& r) { return r.versions(r.versions_size() - 1); }

absl::Status NotFound(absl::string_view name) {
  return ParamError(param_reason::kNotFound, absl::StrCat("Parameter ", name, " not found."), name);
}

absl::StatusOr<int> PageSize(absl::string_view field, int value, int max) {
  if (value == 0) return max;
  if (value < 1 || value > max) {
    return ParamError(param_reason::kValidation, absl::StrCat(field, ": must be between 1 and ", max),
                      "", field);
  }
  return value;
}

// Page tokens: base64url("t1|" + kind + "|" + last key).
std::string EncodeToken(absl::string_view kind, absl::string_view last_key) {
  return absl::WebSafeBase64Escape(absl::StrCat("t1|", kind, "|", last_key));
}

absl::StatusOr<std::string> DecodeToken(absl::string_view kind, absl::string_view token) {
  if (token.empty()) return std::string();
  std::string raw;
  std::string prefix = absl::StrCat("t1|", kind, "|");
  if (token.size() > 4096 || !absl::WebSafeBase64Unescape(token, &raw) ||
      !absl::StartsWith(raw, prefix) || raw.size() == prefix.size()) {
    return ParamError(param_reason::kInvalidNextToken,
                      "next_token: is not a token returned by this operation", "", "next_token");
  }
  return raw.substr(prefix.size());
}

absl::Status ValidateTags(const google::protobuf::RepeatedPtrField<pm::Tag>& tags) {
  if (tags.size() > kMaxTags) {
    return ParamError(param_reason::kTooManyTags, "tags: at most 50 tags", "", "tags");
  }
  std::set<std::string> seen;
  for (const auto& t : tags) {
    if (t.key().empty() || t.key().size() > 128 || absl::StartsWithIgnoreCase(t.key(), "aws:")) {
      return ParamError(param_reason::kValidation,
                        "tags: keys must be 1-128 characters and not start with aws:", "", "tags");
    }
    if (t.value().size() > 256) {
      return ParamError(param_reason::kValidation, "tags: values must be at most 256 characters",
                        "", "tags");
    }
    if (!seen.insert(t.key()).second) {
      return ParamError(param_reason::kValidation, "tags: duplicate tag key", "", "tags");
    }
  }
  return absl::OkStatus();
}

void SetTags(ParameterRecord& r, const std::map<std::string, std::string>& tags) {
  r.clear_tags();
  for (const auto& [k, v] : tags) {
    auto* t = r.add_tags();
    t->set_key(k);
    t->set_value(v);
  }
}

std::vector<ParameterPolicy> PoliciesOf(const ParameterRecord& r) {
  // Stored policies were valid when set; parse without the "past" check.
  auto parsed = ParsePolicies(r.policies(), absl::InfinitePast());
  return parsed.ok() ? *parsed : std::vector<ParameterPolicy>();
}

absl::Status ValidateResource(const std::string& type, const std::string& id) {
  if (type != "Parameter") {
    return ParamError(param_reason::kInvalidResourceType,
                      "resource_type: must be Parameter", "", "resource_type");
  }
  if (id.empty() || id.size() > kMaxParameterName) {
    return ParamError(param_reason::kInvalidResourceId,
                      absl::StrCat("resource_id: must be 1-", kMaxParameterName, " characters"), "",
                      "resource_id");
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> ParamStore::ColumnFamilies() {
  return {kParamsFamily, kValuesFamily, kChildrenFamily, kPolicyDueFamily};
}

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

absl::StatusOr<std::optional<ParameterRecord>> ParamStore::Read(const std::string& name) const {
  COFFER_ASSIGN_OR_RETURN(auto bytes, db_->Get(kParamsFamily, name));
  if (!bytes) return std::optional<ParameterRecord>();
  ParameterRecord record;
  if (!record.ParseFromString(*bytes) || record.versions().empty()) {
    return ParamError(reason::kInternalServerError, "stored parameter record is unreadable", name);
  }
  return std::optional<ParameterRecord>(std::move(record));
}

absl::StatusOr<ParameterRecord> ParamStore::ReadExisting(const std::string& name) const {
  COFFER_ASSIGN_OR_RETURN(auto record, Read(name));
  if (!record) return NotFound(name);
  return *std::move(record);
}

absl::Status ParamStore::Commit(
    const std::function<absl::Status(storage::Transaction&, ChangeEvent*)>& fn) {
  ChangeLog::Ticket ticket;
  if (options_.changes != nullptr) ticket = options_.changes->Reserve();
  absl::Status s = db_->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    ChangeEvent event;
    COFFER_RETURN_IF_ERROR(fn(txn, &event));
    if (options_.changes != nullptr && event.kind() != coffer::v1::CHANGE_KIND_UNSPECIFIED) {
      event.set_resource_kind(coffer::v1::RESOURCE_KIND_PARAMETER);
      *event.mutable_time() = ToProto(clock_->Now());
      options_.changes->Stage(txn, ticket, event);
    }
    return absl::OkStatus();
  });
  if (options_.changes != nullptr) options_.changes->Finish(ticket);
  return s;
}

void ParamStore::IndexPolicies(storage::Transaction& txn, const ParameterRecord& record, bool add) {
  if (record.versions().empty()) return;
  absl::Time modified = FromProto(Latest(record).last_modified_date());
  for (const ParameterPolicy& p : PoliciesOf(record)) {
    std::string key = DueKey(PolicyDue(p, modified), record.name(), p.type_name());
    if (add) {
      txn.Put(kPolicyDueFamily, key, "");
    } else {
      txn.Delete(kPolicyDueFamily, key);
    }
  }
}

void ParamStore::DeleteIn(storage::Transaction& txn, const ParameterRecord& record) {
  txn.Delete(kParamsFamily, record.name());
  for (const auto& v : record.versions()) txn.Delete(kValuesFamily, ValueKey(record.name(), v.version()));
  if (!ParentPath(record.name()).empty()) txn.Delete(kChildrenFamily, ChildKey(record.name()));
  IndexPolicies(txn, record, /*add=*/false);
}

absl::StatusOr<pm::PutParameterResponse> ParamStore::PutParameter(const pm::PutParameterRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  if (request.description().size() > kMaxDescription) {
    return ParamError(param_reason::kValidation, "description: must be at most 1024 characters",
                      request.name(), "description");
  }
  if (!pm::ParameterType_IsValid(request.type())) {
    return ParamError(param_reason::kUnsupportedType, "type: unknown parameter type",
                      request.name(), "type");
  }
  if (!pm::ParameterTier_IsValid(request.tier())) {
    return ParamError(param_reason::kValidation, "tier: must be Standard or Advanced",
                      request.name(), "tier");
  }
  if (!request.data_type().empty() && request.data_type() != "text") {
    return ParamError(param_reason::kValidation, "data_type: must be text", request.name(),
                      "data_type");
  }
  if (request.overwrite() && !request.tags().empty()) {
    return ParamError(param_reason::kValidation,
                      "tags: cannot be combined with overwrite; use AddTagsToResource",
                      request.name(), "tags");
  }
  COFFER_RETURN_IF_ERROR(ValidateTags(request.tags()));
  absl::Time now = clock_->Now();
  COFFER_ASSIGN_OR_RETURN(std::vector<ParameterPolicy> policies,
                          ParsePolicies(request.policies(), now));

  // Type, key, pattern, tier and encryption are decided from the current
  // record; if another writer changes it before the commit, decide again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    COFFER_ASSIGN_OR_RETURN(auto existing, Read(request.name()));
    if (existing && !request.overwrite()) {
      return ParamError(param_reason::kAlreadyExists,
                        absl::StrCat("The parameter ", request.name(),
                                     " already exists. To overwrite it, set overwrite."),
                        request.name());
    }
    const ParameterVersionInfo* previous = existing ? &Latest(*existing) : nullptr;
    pm::ParameterType type = request.type();
    if (type == pm::PARAMETER_TYPE_UNSPECIFIED) {
      if (previous == nullptr) {
        return ParamError(param_reason::kValidation, "type: is required to create a parameter",
                          request.name(), "type");
      }
      type = previous->type();
    }
    if (!request.key_id().empty() && type != pm::PARAMETER_TYPE_SECURE_STRING) {
      return ParamError(param_reason::kValidation, "key_id: only SecureString parameters take a key",
                        request.name(), "key_id");
    }
    pm::ParameterTier tier = request.tier();
    pm::ParameterTier current_tier = existing ? existing->tier() : pm::PARAMETER_TIER_STANDARD;
    if (tier == pm::PARAMETER_TIER_UNSPECIFIED) {
      tier = current_tier;
      if (!policies.empty()) tier = pm::PARAMETER_TIER_ADVANCED;
    }
    if (current_tier == pm::PARAMETER_TIER_ADVANCED && tier == pm::PARAMETER_TIER_STANDARD &&
        existing) {
      return ParamError(param_reason::kValidation,
                        "tier: an Advanced parameter cannot go back to Standard", request.name(),
                        "tier");
    }
    if (!policies.empty() && tier != pm::PARAMETER_TIER_ADVANCED) {
      return ParamError(param_reason::kValidation, "policies: need the Advanced tier", request.name(),
                        "policies");
    }
    COFFER_RETURN_IF_ERROR(ValidateValue("value", request.value(), tier));
    std::string pattern = request.allowed_pattern();
    if (pattern.empty() && previous != nullptr) pattern = previous->allowed_pattern();
    COFFER_RETURN_IF_ERROR(CheckAllowedPattern(pattern, request.value()));

    const std::string arn = existing ? existing->arn() : ParameterArn(request.name());
    ParameterValue value;
    std::string key_id;
    if (type == pm::PARAMETER_TYPE_SECURE_STRING) {
      key_id = request.key_id();
      if (key_id.empty() && previous != nullptr) key_id = previous->key_id();
      const std::string kms_key = key_id.empty() ? options_.default_kms_key_id : key_id;
      COFFER_ASSIGN_OR_RETURN(Envelope::Sealed sealed,
                              envelope_->Seal(kms_key, ContextOf(arn), request.value()));
      value.set_ciphertext(std::move(sealed.ciphertext));
      value.set_wrapped_data_key(std::move(sealed.wrapped_data_key));
      value.set_kms_key_arn(sealed.kms_key_arn);
    } else {
      value.set_plain(request.value());
    }

    int64_t version_number = 0;
    bool raced = false;
    absl::Status committed = Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
      raced = false;
      COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kParamsFamily, request.name()));
      ParameterRecord record;
      const bool exists = bytes.has_value();
      if (exists != existing.has_value()) {
        raced = true;
        return absl::AbortedError("raced");
      }
      if (exists) {
        if (!record.ParseFromString(*bytes)) return ParamError(reason::kInternalServerError, "unreadable record");
        if (record.versions().empty() || Latest(record).version() != Latest(*existing).version()) {
          raced = true;
          return absl::AbortedError("raced");
        }
        if (!request.overwrite()) {
          return ParamError(param_reason::kAlreadyExists,
                            absl::StrCat("The parameter ", request.name(), " already exists."),
                            request.name());
        }
        IndexPolicies(txn, record, /*add=*/false);
      } else {
        record.set_name(request.name());
        record.set_arn(arn);
        *record.mutable_created_date() = ToProto(now);
        std::map<std::string, std::string> tags;
        for (const auto& t : request.tags()) tags[t.key()] = t.value();
        SetTags(record, tags);
        if (!ParentPath(request.name()).empty()) txn.Put(kChildrenFamily, ChildKey(request.name()), "");
      }
      record.set_tier(tier);
      if (!request.policies().empty()) {
        record.set_policies(request.policies() == "[]" ? "" : request.policies());
        record.clear_notified();
      }
      ParameterVersionInfo info;
      info.set_type(type);
      info.set_description(request.description());
      info.set_allowed_pattern(pattern);
      info.set_key_id(key_id);
      info.set_data_type("text");
      *info.mutable_last_modified_date() = ToProto(now);
      info.set_tier(tier);
      info.set_policies(record.policies());
      int64_t dropped = 0;
      COFFER_ASSIGN_OR_RETURN(version_number, AddParameterVersion(record, info, &dropped));
      if (dropped != 0) txn.Delete(kValuesFamily, ValueKey(record.name(), dropped));
      txn.Put(kValuesFamily, ValueKey(record.name(), version_number), value.SerializeAsString());
      txn.Put(kParamsFamily, record.name(), record.SerializeAsString());
      IndexPolicies(txn, record, /*add=*/true);
      event->set_name(record.name());
      event->set_version(absl::StrCat(version_number));
      event->set_kind(exists ? coffer::v1::CHANGE_KIND_UPDATED : coffer::v1::CHANGE_KIND_CREATED);
      return absl::OkStatus();
    });
    if (raced) continue;
    COFFER_RETURN_IF_ERROR(committed);
    pm::PutParameterResponse response;
    response.set_version(version_number);
    response.set_tier(tier);
    return response;
  }
  return ParamError(reason::kInternalServerError,
                    "too many concurrent writers of this parameter; retry", request.name());
}

absl::StatusOr<pm::Parameter> ParamStore::Materialize(const ParameterRecord& record,
                                                      const ParameterVersionInfo& version,
                                                      bool with_decryption,
                                                      const std::string& selector) const {
  COFFER_ASSIGN_OR_RETURN(auto bytes, db_->Get(kValuesFamily, ValueKey(record.name(), version.version())));
  ParameterValue value;
  if (!bytes || !value.ParseFromString(*bytes)) {
    return ParamError(reason::kInternalServerError, "the stored value of the parameter is missing",
                      record.name());
  }
  pm::Parameter p;
  p.set_name(record.name());
  p.set_type(version.type());
  p.set_version(version.version());
  p.set_selector(selector);
  *p.mutable_last_modified_date() = version.last_modified_date();
  p.set_arn(record.arn());
  p.set_data_type(version.data_type().empty() ? "text" : version.data_type());
  if (version.type() != pm::PARAMETER_TYPE_SECURE_STRING) {
    p.set_value(value.plain());
  } else if (with_decryption) {
    COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plain,
                            envelope_->Open(ContextOf(record.arn()), value.wrapped_data_key(),
                                            value.ciphertext()));
    p.set_value(std::string(plain.view()));
  } else {
    // As SSM: the encrypted form, useless without the KMS.
    p.set_value(absl::Base64Escape(value.ciphertext()));
  }
  return p;
}

absl::StatusOr<pm::GetParameterResponse> ParamStore::GetParameter(const pm::GetParameterRequest& request) {
  COFFER_ASSIGN_OR_RETURN(Selector selector, ParseSelector("name", request.name()));
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", selector.name));
  COFFER_ASSIGN_OR_RETURN(ParameterRecord record, ReadExisting(selector.name));
  COFFER_ASSIGN_OR_RETURN(const ParameterVersionInfo* version, SelectVersion(record, selector));
  pm::GetParameterResponse response;
  COFFER_ASSIGN_OR_RETURN(*response.mutable_parameter(),
                          Materialize(record, *version, request.with_decryption(), selector.text()));
  return response;
}

absl::StatusOr<pm::GetParametersResponse> ParamStore::GetParameters(
    const pm::GetParametersRequest& request) {
  if (request.names().empty() || request.names_size() > 10) {
    return ParamError(param_reason::kValidation, "names: give 1-10 names", "", "names");
  }
  pm::GetParametersResponse response;
  std::set<std::string> seen;
  for (const std::string& name : request.names()) {
    if (!seen.insert(name).second) continue;
    pm::GetParameterRequest one;
    one.set_name(name);
    one.set_with_decryption(request.with_decryption());
    auto got = GetParameter(one);
    if (got.ok()) {
      *response.add_parameters() = std::move(got->parameter());
    } else if (got.status().code() == absl::StatusCode::kNotFound ||
               got.status().code() == absl::StatusCode::kInvalidArgument) {
      response.add_invalid_parameters(name);
    } else {
      return got.status();  // e.g. the KMS is down: not the caller's fault
    }
  }
  return response;
}

absl::StatusOr<pm::GetParametersByPathResponse> ParamStore::GetParametersByPath(
    const pm::GetParametersByPathRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidatePath("path", request.path()));
  COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", request.max_results(), 10));
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseByPathFilters(request.parameter_filters()));
  const std::string path = NormalizePath(request.path());
  const char* kind = request.recursive() ? "r" : "o";
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeToken(kind, request.next_token()));
  std::string label;
  for (const auto& f : filters) {
    if (f.key == "Label" && !f.values.empty()) label = f.values[0];
  }

  storage::ScanOptions scan;
  const char* family;
  if (request.recursive()) {
    family = kParamsFamily;
    scan.prefix = path == "/" ? "/" : path + "/";
  } else {
    family = kChildrenFamily;
    scan.prefix = path + std::string(1, '\0');
  }
  if (!after.empty()) {
    if (!absl::StartsWith(after, scan.prefix)) {
      return ParamError(param_reason::kInvalidNextToken,
                        "next_token: belongs to another path", "", "next_token");
    }
    scan.start_after = after;
  }
  scan.limit = options_.scan_budget + 1;
  std::vector<std::string> names;
  std::string last_examined;
  size_t examined = 0;
  bool more = false;
  COFFER_RETURN_IF_ERROR(db_->Scan(family, scan, [&](absl::string_view key, absl::string_view) {
    if (static_cast<int>(names.size()) == max || examined == options_.scan_budget) {
      more = true;
      return false;
    }
    ++examined;
    last_examined = std::string(key);
    std::string name = request.recursive() ? std::string(key)
                                           : std::string(key.substr(key.find('\0') + 1));
    names.push_back(std::move(name));
    return true;
  }));
  // `names` holds candidates; filters need the records.
  pm::GetParametersByPathResponse response;
  for (const std::string& name : names) {
    COFFER_ASSIGN_OR_RETURN(auto record, Read(name));
    if (!record || !MatchesParameterFilters(*record, filters)) continue;
    const ParameterVersionInfo* version = &Latest(*record);
    std::string selector;
    if (!label.empty()) {
      Selector s;
      s.name = name;
      s.label = label;
      auto labelled = SelectVersion(*record, s);
      if (!labelled.ok()) continue;
      version = *labelled;
      selector = s.text();
    }
    COFFER_ASSIGN_OR_RETURN(pm::Parameter p,
                            Materialize(*record, *version, request.with_decryption(), selector));
    *response.add_parameters() = std::move(p);
  }
  if (more) response.set_next_token(EncodeToken(kind, last_examined));
  return response;
}

absl::StatusOr<pm::DescribeParametersResponse> ParamStore::DescribeParameters(
    const pm::DescribeParametersRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", request.max_results(), 50));
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseDescribeFilters(request.parameter_filters()));
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeToken("d", request.next_token()));
  // A Path or Name-BeginsWith filter narrows the scan to a prefix.
  storage::ScanOptions scan;
  for (const auto& f : filters) {
    if (f.key == "Path" && f.values.size() == 1) {
      std::string p = NormalizePath(f.values[0]);
      scan.prefix = p == "/" ? "/" : p + "/";
    } else if (f.key == "Name" && f.option == "BeginsWith" && f.values.size() == 1 &&
               scan.prefix.empty()) {
      scan.prefix = f.values[0];
    }
  }
  scan.start_after = after;
  scan.limit = options_.scan_budget + 1;
  pm::DescribeParametersResponse response;
  std::string last_examined;
  size_t examined = 0;
  bool more = false;
  absl::Status inner;
  COFFER_RETURN_IF_ERROR(db_->Scan(kParamsFamily, scan, [&](absl::string_view key, absl::string_view bytes) {
    if (response.parameters_size() == max || examined == options_.scan_budget) {
      more = true;
      return false;
    }
    ++examined;
    last_examined = std::string(key);
    ParameterRecord record;
    if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
        record.versions().empty() || !MatchesParameterFilters(record, filters)) {
      return true;
    }
    const ParameterVersionInfo& v = Latest(record);
    auto* md = response.add_parameters();
    md->set_name(record.name());
    md->set_type(v.type());
    if (v.type() == pm::PARAMETER_TYPE_SECURE_STRING) {
      md->set_key_id(v.key_id().empty() ? options_.default_kms_key_id : v.key_id());
    }
    *md->mutable_last_modified_date() = v.last_modified_date();
    md->set_description(v.description());
    md->set_allowed_pattern(v.allowed_pattern());
    md->set_version(v.version());
    md->set_tier(record.tier());
    md->set_data_type(v.data_type().empty() ? "text" : v.data_type());
    md->set_arn(record.arn());
    for (const ParameterPolicy& p : PoliciesOf(record)) {
      auto* policy = md->add_policies();
      policy->set_policy_text(p.text);
      policy->set_policy_type(p.type_name());
      policy->set_policy_status("Pending");
    }
    return true;
  }));
  COFFER_RETURN_IF_ERROR(inner);
  if (more) response.set_next_token(EncodeToken("d", last_examined));
  return response;
}

absl::StatusOr<pm::GetParameterHistoryResponse> ParamStore::GetParameterHistory(
    const pm::GetParameterHistoryRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  COFFER_ASSIGN_OR_RETURN(int max, PageSize("max_results", request.max_results(), 50));
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeToken("h", request.next_token()));
  int64_t after_version = 0;
  if (!after.empty() && !absl::SimpleAtoi(after, &after_version)) {
    return ParamError(param_reason::kInvalidNextToken, "next_token: malformed", "", "next_token");
  }
  COFFER_ASSIGN_OR_RETURN(ParameterRecord record, ReadExisting(request.name()));
  pm::GetParameterHistoryResponse response;
  int i = 0;
  while (i < record.versions_size() && record.versions(i).version() <= after_version) ++i;
  for (; i < record.versions_size() && response.parameters_size() < max; ++i) {
    const ParameterVersionInfo& v = record.versions(i);
    COFFER_ASSIGN_OR_RETURN(pm::Parameter p, Materialize(record, v, request.with_decryption(), ""));
    auto* h = response.add_parameters();
    h->set_name(record.name());
    h->set_type(v.type());
    if (v.type() == pm::PARAMETER_TYPE_SECURE_STRING) {
      h->set_key_id(v.key_id().empty() ? options_.default_kms_key_id : v.key_id());
    }
    *h->mutable_last_modified_date() = v.last_modified_date();
    h->set_description(v.description());
    h->set_value(std::move(*p.mutable_value()));
    h->set_allowed_pattern(v.allowed_pattern());
    h->set_version(v.version());
    *h->mutable_labels() = v.labels();
    h->set_tier(v.tier());
    h->set_data_type(p.data_type());
  }
  if (i < record.versions_size()) {
    response.set_next_token(
        EncodeToken("h", absl::StrCat(response.parameters(response.parameters_size() - 1).version())));
  }
  return response;
}

absl::StatusOr<pm::DeleteParameterResponse> ParamStore::DeleteByName(const std::string& name,
                                                                     coffer::v1::ChangeKind kind) {
  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kParamsFamily, name));
    ParameterRecord record;
    if (!bytes || !record.ParseFromString(*bytes)) return NotFound(name);
    DeleteIn(txn, record);
    event->set_name(name);
    event->set_kind(kind);
    return absl::OkStatus();
  }));
  return pm::DeleteParameterResponse();
}

absl::StatusOr<pm::DeleteParameterResponse> ParamStore::DeleteParameter(
    const pm::DeleteParameterRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  return DeleteByName(request.name(), coffer::v1::CHANGE_KIND_DELETED);
}

absl::StatusOr<pm::DeleteParametersResponse> ParamStore::DeleteParameters(
    const pm::DeleteParametersRequest& request) {
  if (request.names().empty() || request.names_size() > 10) {
    return ParamError(param_reason::kValidation, "names: give 1-10 names", "", "names");
  }
  pm::DeleteParametersResponse response;
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
    const pm::LabelParameterVersionRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  if (request.labels().empty() || request.labels_size() > kMaxLabelsPerVersion) {
    return ParamError(param_reason::kValidation, "labels: give 1-10 labels", request.name(), "labels");
  }
  if (request.parameter_version() < 0) {
    return ParamError(param_reason::kValidation, "parameter_version: must be positive",
                      request.name(), "parameter_version");
  }
  std::vector<std::string> labels(request.labels().begin(), request.labels().end());
  pm::LabelParameterVersionResponse response;
  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kParamsFamily, request.name()));
    ParameterRecord record;
    if (!bytes || !record.ParseFromString(*bytes)) return NotFound(request.name());
    int64_t version = request.parameter_version() == 0 ? Latest(record).version()
                                                        : request.parameter_version();
    COFFER_ASSIGN_OR_RETURN(auto invalid, ApplyLabels(record, version, labels));
    response.clear_invalid_labels();
    for (const auto& l : invalid) response.add_invalid_labels(l);
    response.set_parameter_version(version);
    txn.Put(kParamsFamily, record.name(), record.SerializeAsString());
    event->set_name(record.name());
    event->set_version(absl::StrCat(version));
    event->set_kind(coffer::v1::CHANGE_KIND_METADATA_UPDATED);
    return absl::OkStatus();
  }));
  return response;
}

absl::StatusOr<pm::UnlabelParameterVersionResponse> ParamStore::UnlabelParameterVersion(
    const pm::UnlabelParameterVersionRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  if (request.labels().empty() || request.labels_size() > kMaxLabelsPerVersion) {
    return ParamError(param_reason::kValidation, "labels: give 1-10 labels", request.name(), "labels");
  }
  if (request.parameter_version() < 1) {
    return ParamError(param_reason::kValidation, "parameter_version: is required", request.name(),
                      "parameter_version");
  }
  std::vector<std::string> labels(request.labels().begin(), request.labels().end());
  pm::UnlabelParameterVersionResponse response;
  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kParamsFamily, request.name()));
    ParameterRecord record;
    if (!bytes || !record.ParseFromString(*bytes)) return NotFound(request.name());
    COFFER_ASSIGN_OR_RETURN(auto result, RemoveLabels(record, request.parameter_version(), labels));
    response.clear_removed_labels();
    response.clear_invalid_labels();
    for (const auto& l : result.first) response.add_removed_labels(l);
    for (const auto& l : result.second) response.add_invalid_labels(l);
    txn.Put(kParamsFamily, record.name(), record.SerializeAsString());
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
    const pm::AddTagsToResourceRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateResource(request.resource_type(), request.resource_id()));
  if (request.tags().empty()) {
    return ParamError(param_reason::kValidation, "tags: at least one tag is required", "", "tags");
  }
  COFFER_RETURN_IF_ERROR(ValidateTags(request.tags()));
  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kParamsFamily, request.resource_id()));
    ParameterRecord record;
    if (!bytes || !record.ParseFromString(*bytes)) {
      return ParamError(param_reason::kInvalidResourceId,
                        absl::StrCat("resource_id: parameter ", request.resource_id(), " not found"),
                        request.resource_id(), "resource_id");
    }
    std::map<std::string, std::string> tags;
    for (const auto& t : record.tags()) tags[t.key()] = t.value();
    for (const auto& t : request.tags()) tags[t.key()] = t.value();
    if (static_cast<int>(tags.size()) > kMaxTags) {
      return ParamError(param_reason::kTooManyTags, "tags: a parameter may have at most 50 tags",
                        request.resource_id(), "tags");
    }
    SetTags(record, tags);
    txn.Put(kParamsFamily, record.name(), record.SerializeAsString());
    event->set_name(record.name());
    event->set_kind(coffer::v1::CHANGE_KIND_METADATA_UPDATED);
    return absl::OkStatus();
  }));
  return pm::AddTagsToResourceResponse();
}

absl::StatusOr<pm::RemoveTagsFromResourceResponse> ParamStore::RemoveTagsFromResource(
    const pm::RemoveTagsFromResourceRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateResource(request.resource_type(), request.resource_id()));
  if (request.tag_keys().empty() || request.tag_keys_size() > kMaxTags) {
    return ParamError(param_reason::kValidation, "tag_keys: give 1-50 keys", "", "tag_keys");
  }
  for (const auto& key : request.tag_keys()) {
    if (key.empty() || key.size() > 128) {
      return ParamError(param_reason::kValidation, "tag_keys: keys must be 1-128 characters", "",
                        "tag_keys");
    }
  }
  COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kParamsFamily, request.resource_id()));
    ParameterRecord record;
    if (!bytes || !record.ParseFromString(*bytes)) {
      return ParamError(param_reason::kInvalidResourceId,
                        absl::StrCat("resource_id: parameter ", request.resource_id(), " not found"),
                        request.resource_id(), "resource_id");
    }
    std::map<std::string, std::string> tags;
    for (const auto& t : record.tags()) tags[t.key()] = t.value();
    for (const auto& k : request.tag_keys()) tags.erase(k);
    SetTags(record, tags);
    txn.Put(kParamsFamily, record.name(), record.SerializeAsString());
    event->set_name(record.name());
    event->set_kind(coffer::v1::CHANGE_KIND_METADATA_UPDATED);
    return absl::OkStatus();
  }));
  return pm::RemoveTagsFromResourceResponse();
}

absl::StatusOr<pm::ListTagsForResourceResponse> ParamStore::ListTagsForResource(
    const pm::ListTagsForResourceRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateResource(request.resource_type(), request.resource_id()));
  COFFER_ASSIGN_OR_RETURN(auto record, Read(request.resource_id()));
  if (!record) {
    return ParamError(param_reason::kInvalidResourceId,
                      absl::StrCat("resource_id: parameter ", request.resource_id(), " not found"),
                      request.resource_id(), "resource_id");
  }
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
  COFFER_RETURN_IF_ERROR(db_->Scan(kPolicyDueFamily, scan, [&](absl::string_view k, absl::string_view) {
    due.emplace_back(k);
    return true;
  }));
  PolicyRunResult result;
  for (const std::string& key : due) {
    absl::string_view rest = absl::string_view(key).substr(8);
    size_t sep = rest.rfind('\0');
    if (sep == absl::string_view::npos) {
      COFFER_RETURN_IF_ERROR(db_->Delete(kPolicyDueFamily, key));
      continue;
    }
    const std::string name(rest.substr(0, sep));
    const std::string type(rest.substr(sep + 1));
    bool expired = false;
    bool notified = false;
    COFFER_RETURN_IF_ERROR(Commit([&](storage::Transaction& txn, ChangeEvent* event) -> absl::Status {
      expired = notified = false;
      txn.Delete(kPolicyDueFamily, key);
      COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(kParamsFamily, name));
      ParameterRecord record;
      if (!bytes || !record.ParseFromString(*bytes) || record.versions().empty()) {
        return absl::OkStatus();  // leftover entry
      }
      absl::Time modified = FromProto(Latest(record).last_modified_date());
      for (const ParameterPolicy& p : PoliciesOf(record)) {
        if (p.type_name() != type) continue;
        absl::Time when = PolicyDue(p, modified);
        if (DueKey(when, name, type) != key) continue;  // superseded entry
        event->set_name(name);
        event->set_version(absl::StrCat(Latest(record).version()));
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
        txn.Put(kParamsFamily, name, record.SerializeAsString());
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
    const pm::WatchParametersRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidatePath("path", request.path()));
  const std::string path = NormalizePath(request.path());
  const bool recursive = request.recursive();
  return std::function<bool(const ChangeEvent&)>([path, recursive](const ChangeEvent& e) {
    if (e.resource_kind() != coffer::v1::RESOURCE_KIND_PARAMETER) return false;
    if (recursive) return absl::StartsWith(e.name(), path == "/" ? "/" : path + "/");
    return ParentPath(e.name()) == path;
  });
}

}  // namespace coffer::store
