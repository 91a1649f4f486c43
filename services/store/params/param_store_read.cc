// ParamStore: the reads (GetParameter(s), by path, DescribeParameters,
// history). The writes are in param_store.cc.
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/paging.h"
#include "libs/common/status_macros.h"
#include "services/store/params/param_store.h"
#include "services/store/schema.h"

namespace coffer::store {

namespace pm = ::coffer::params::v1;
using ::coffer::internal::store::v1::ParameterValue;

namespace {

constexpr PagingErrors kMaxResultsErrors{"max_results", reason::kValidation};
constexpr PagingErrors kNextTokenErrors{"next_token", reason::kSsmInvalidNextToken};

}  // namespace

absl::StatusOr<pm::Parameter> ParamStore::Materialize(const ParameterRecord& record,
                                                      const ParameterVersionInfo& version,
                                                      bool with_decryption,
                                                      const std::string& selector) const {
  COFFER_ASSIGN_OR_RETURN(
      auto bytes,
      db_->Get(schema::kParamValues, schema::ParamValueKey(record.name(), version.version())));
  ParameterValue value;
  if (!bytes || !value.ParseFromString(*bytes)) {
    return Error(reason::kInternalServerError, "the stored value of the parameter is missing",
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
    COFFER_ASSIGN_OR_RETURN(
        crypto::SecureBuffer plain,
        envelope_->Open(ParameterContext(record.arn()), ParameterContext(record.arn()),
                        value.wrapped_data_key(), value.ciphertext()));
    p.set_value(std::string(plain.view()));
  } else {
    // As SSM: the encrypted form, useless without the KMS.
    p.set_value(absl::Base64Escape(value.ciphertext()));
  }
  return p;
}

absl::StatusOr<pm::GetParameterResponse> ParamStore::GetParameter(
    const pm::GetParameterRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(Selector selector, ParseSelector("name", request.name()));
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", selector.name));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:GetParameter", selector.name));
  COFFER_ASSIGN_OR_RETURN(ParameterRecord record, ReadExisting(selector.name));
  COFFER_ASSIGN_OR_RETURN(const ParameterVersionInfo* version, SelectVersion(record, selector));
  pm::GetParameterResponse response;
  COFFER_ASSIGN_OR_RETURN(
      *response.mutable_parameter(),
      Materialize(record, *version, request.with_decryption(), selector.text()));
  return response;
}

absl::StatusOr<pm::GetParametersResponse> ParamStore::GetParameters(
    const pm::GetParametersRequest& request, const authz::Access& access) {
  if (request.names().empty() || request.names_size() > 10) {
    return Error(reason::kValidation, "names: give 1-10 names", "", "names");
  }
  pm::GetParametersResponse response;
  std::set<std::string> seen;
  for (const std::string& name : request.names()) {
    if (!seen.insert(name).second) continue;
    pm::GetParameterRequest one;
    one.set_name(name);
    one.set_with_decryption(request.with_decryption());
    auto got = GetParameter(one, access);
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
    const pm::GetParametersByPathRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidatePath("path", request.path()));
  COFFER_ASSIGN_OR_RETURN(int max, PageSize(request.max_results(), {10, 10}, kMaxResultsErrors));
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseByPathFilters(request.parameter_filters()));
  const std::string path = NormalizePath(request.path());
  const char* kind = request.recursive() ? "r" : "o";
  COFFER_ASSIGN_OR_RETURN(std::string after,
                          DecodePageToken(kind, request.next_token(), kNextTokenErrors));
  std::string label;
  for (const auto& f : filters) {
    if (f.key == "Label" && !f.values.empty()) label = f.values[0];
  }
  access.set_resource(path);  // the answer holds only what the caller may read

  storage::ScanOptions scan;
  const char* family;
  if (request.recursive()) {
    family = schema::kParams;
    scan.prefix = path == "/" ? "/" : path + "/";
  } else {
    family = schema::kParamChildren;
    scan.prefix = path + std::string(1, '\0');
  }
  if (!after.empty()) {
    if (!absl::StartsWith(after, scan.prefix)) {
      return Error(reason::kSsmInvalidNextToken, "next_token: belongs to another path", "",
                   "next_token");
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
    std::string name =
        request.recursive() ? std::string(key) : std::string(key.substr(key.find('\0') + 1));
    names.push_back(std::move(name));
    return true;
  }));
  // `names` holds candidates; filters need the records.
  pm::GetParametersByPathResponse response;
  for (const std::string& name : names) {
    COFFER_ASSIGN_OR_RETURN(auto record, Read(name));
    if (!record || !MatchesParameterFilters(*record, filters)) continue;
    if (!Allows(access, "ssm:GetParametersByPath", name)) continue;
    const ParameterVersionInfo* version = &LatestVersion(*record);
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
  if (more) response.set_next_token(EncodePageToken(kind, last_examined));
  return response;
}

absl::StatusOr<pm::DescribeParametersResponse> ParamStore::DescribeParameters(
    const pm::DescribeParametersRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize(request.max_results(), {50, 50}, kMaxResultsErrors));
  COFFER_ASSIGN_OR_RETURN(auto filters, ParseDescribeFilters(request.parameter_filters()));
  COFFER_ASSIGN_OR_RETURN(std::string after,
                          DecodePageToken("d", request.next_token(), kNextTokenErrors));
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
  COFFER_RETURN_IF_ERROR(
      db_->Scan(schema::kParams, scan, [&](absl::string_view key, absl::string_view bytes) {
        if (response.parameters_size() == max || examined == options_.scan_budget) {
          more = true;
          return false;
        }
        ++examined;
        last_examined = std::string(key);
        ParameterRecord record;
        if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
            record.versions().empty() || !MatchesParameterFilters(record, filters) ||
            !Allows(access, "ssm:DescribeParameters", record.name())) {
          return true;
        }
        const ParameterVersionInfo& v = LatestVersion(record);
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
        for (const ParameterPolicy& p : StoredPolicies(record)) {
          auto* policy = md->add_policies();
          policy->set_policy_text(p.text);
          policy->set_policy_type(p.type_name());
          policy->set_policy_status("Pending");
        }
        return true;
      }));
  COFFER_RETURN_IF_ERROR(inner);
  if (more) response.set_next_token(EncodePageToken("d", last_examined));
  return response;
}

absl::StatusOr<pm::GetParameterHistoryResponse> ParamStore::GetParameterHistory(
    const pm::GetParameterHistoryRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(ValidateParameterName("name", request.name()));
  COFFER_RETURN_IF_ERROR(Authorize(access, "ssm:GetParameterHistory", request.name()));
  COFFER_ASSIGN_OR_RETURN(int max, PageSize(request.max_results(), {50, 50}, kMaxResultsErrors));
  COFFER_ASSIGN_OR_RETURN(std::string after,
                          DecodePageToken("h", request.next_token(), kNextTokenErrors));
  int64_t after_version = 0;
  if (!after.empty() && !absl::SimpleAtoi(after, &after_version)) {
    return Error(reason::kSsmInvalidNextToken, "next_token: malformed", "", "next_token");
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
    response.set_next_token(EncodePageToken(
        "h", absl::StrCat(response.parameters(response.parameters_size() - 1).version())));
  }
  return response;
}

}  // namespace coffer::store
