// param_selector_fuzz: the name, path, selector, label, policy, pattern and
// filter rules of the parameters API (param_rules.h) and the name / secret
// id rules of the secrets API (secret_names.h) on fuzzed text.
//
// The whole input goes through every single-string rule; "<pattern>\n
// <value>" goes through CheckAllowedPattern; lines "key|option|v1,v2" make
// parameter filters. Properties: every error carries a reason; a valid
// name is a selector of itself and its parent is a valid path; a selector
// written back (name + text()) parses to the same selector; a normalized
// valid path stays valid and normalizing twice changes nothing; parsed
// policies re-parse from their canonical text to the same policies; a full
// secret ARN resolves to a name that SecretArn turns back into it.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "services/store/params/param_rules.h"
#include "services/store/secrets/secret_names.h"

namespace {

namespace store = coffer::store;

// Whether errors naming the input keep their reason: the ErrorInfo detail is
// a proto3 message, and one whose `resource` is not UTF-8 does not parse
// back, so the reason is lost. Requests arrive over gRPC as proto3 strings,
// always UTF-8, so only such inputs are held to it.
bool g_utf8 = true;

void CheckHasReason(const absl::Status& status, const char* what) {
  if (g_utf8) coffer::fuzz::CheckHasReason(status, what);
}

void CheckParameterRules(absl::string_view s) {
  absl::Status name = store::ValidateParameterName("name", s);
  CheckHasReason(name, "ValidateParameterName");
  if (name.ok()) {
    absl::StatusOr<store::Selector> sel = store::ParseSelector("name", s);
    FUZZ_CHECK(sel.ok() && sel->name == s && sel->version == 0 && sel->label.empty(),
               "a valid name selects itself");
    std::string parent = store::ParentPath(s);
    if (absl::StrContains(s, '/')) {
      FUZZ_CHECK(store::ValidatePath("path", parent).ok(), "a name's parent is a valid path");
    } else {
      FUZZ_CHECK(parent.empty(), "a flat name has no parent");
    }
  }

  absl::Status path = store::ValidatePath("path", s);
  CheckHasReason(path, "ValidatePath");
  if (path.ok()) {
    std::string normalized = store::NormalizePath(s);
    FUZZ_CHECK(store::ValidatePath("path", normalized).ok(), "a normalized path is valid");
    FUZZ_CHECK(store::NormalizePath(normalized) == normalized, "NormalizePath is idempotent");
  }

  absl::StatusOr<store::Selector> sel = store::ParseSelector("name", s);
  CheckHasReason(sel.status(), "ParseSelector");
  if (sel.ok()) {
    FUZZ_CHECK(!sel->name.empty() && !absl::StrContains(sel->name, ':'), "selector name");
    FUZZ_CHECK(sel->version >= 0 && !(sel->version > 0 && !sel->label.empty()),
               "a version or a label, not both");
    if (!sel->label.empty()) FUZZ_CHECK(store::IsValidLabel(sel->label), "a valid label");
    absl::StatusOr<store::Selector> again = store::ParseSelector("name", sel->name + sel->text());
    FUZZ_CHECK(again.ok() && again->name == sel->name && again->version == sel->version &&
                   again->label == sel->label,
               "a selector written back parses the same");
  }

  if (store::IsValidLabel(s)) {
    absl::StatusOr<store::Selector> labeled = store::ParseSelector("name", absl::StrCat("/a:", s));
    FUZZ_CHECK(labeled.ok() && labeled->label == s, "a valid label selects by label");
  }

  CheckHasReason(store::ValidateValue("value", s, coffer::params::v1::PARAMETER_TIER_STANDARD),
                 "ValidateValue");
}

void CheckPolicies(absl::string_view s) {
  static const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  absl::StatusOr<std::vector<store::ParameterPolicy>> policies = store::ParsePolicies(s, kNow);
  CheckHasReason(policies.status(), "ParsePolicies");
  if (!policies.ok()) return;
  std::vector<std::string> texts;
  for (const store::ParameterPolicy& p : *policies) {
    texts.push_back(p.text);
    (void)store::PolicyDue(p, kNow);
  }
  const std::string canonical = absl::StrCat("[", absl::StrJoin(texts, ","), "]");
  absl::StatusOr<std::vector<store::ParameterPolicy>> again = store::ParsePolicies(canonical, kNow);
  FUZZ_CHECK(again.ok() && again->size() == policies->size(), "canonical policies parse");
  for (size_t i = 0; i < again->size(); ++i) {
    const store::ParameterPolicy& a = (*policies)[i];
    const store::ParameterPolicy& b = (*again)[i];
    FUZZ_CHECK(a.type == b.type && a.text == b.text && a.expiration == b.expiration &&
                   a.before == b.before && a.after == b.after,
               "the same policies");
  }
}

void CheckFilters(absl::string_view text) {
  google::protobuf::RepeatedPtrField<coffer::params::v1::ParameterStringFilter> filters;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits('|', 2));
    if (parts.size() < 2) continue;
    auto* f = filters.Add();
    f->set_key(parts[0]);
    f->set_option(parts[1]);
    if (parts.size() > 2) {
      for (absl::string_view v : absl::StrSplit(parts[2], ',')) f->add_values(std::string(v));
    }
  }
  if (filters.empty()) return;

  static const auto* const kRecord = [] {
    auto* r = new store::ParameterRecord;
    r->set_name("/prod/orders/db/host");
    r->set_tier(coffer::params::v1::PARAMETER_TIER_STANDARD);
    auto* tag = r->add_tags();
    tag->set_key("team");
    tag->set_value("payments");
    auto* v1 = r->add_versions();
    v1->set_version(1);
    v1->set_type(coffer::params::v1::PARAMETER_TYPE_STRING);
    v1->add_labels("stable");
    auto* v2 = r->add_versions();
    v2->set_version(2);
    v2->set_type(coffer::params::v1::PARAMETER_TYPE_SECURE_STRING);
    v2->set_data_type("text");
    return r;
  }();
  for (bool describe : {false, true}) {
    auto parsed =
        describe ? store::ParseDescribeFilters(filters) : store::ParseByPathFilters(filters);
    CheckHasReason(parsed.status(), "filters");
    if (parsed.ok()) (void)store::MatchesParameterFilters(*kRecord, *parsed);
  }
}

void CheckSecretRules(absl::string_view s) {
  static const store::ArnConfig kArns;
  absl::Status name = store::ValidateSecretName("name", s);
  CheckHasReason(name, "ValidateSecretName");
  absl::StatusOr<store::SecretRef> ref = store::ParseSecretId(kArns, "secret_id", s);
  CheckHasReason(ref.status(), "ParseSecretId");
  if (name.ok()) {
    FUZZ_CHECK(ref.ok() && ref->candidates.size() == 1 && ref->candidates[0].name == s &&
                   ref->candidates[0].required_arn.empty(),
               "a valid name is its own secret id");
  }
  if (ref.ok()) {
    FUZZ_CHECK(ref->candidates.size() <= 1, "at most one candidate");
    for (const auto& c : ref->candidates) {
      FUZZ_CHECK(!c.name.empty(), "a candidate has a name");
      if (!c.required_arn.empty()) {
        FUZZ_CHECK(c.required_arn == s, "a full ARN requires itself");
        FUZZ_CHECK(
            store::SecretArn(kArns, c.name, s.substr(s.size() - store::kArnSuffixLength)) == s,
            "SecretArn rebuilds the ARN");
      }
    }
  }
  CheckHasReason(store::ValidateVersionId("client_request_token", s), "ValidateVersionId");
  CheckHasReason(store::ValidateStage("version_stage", s), "ValidateStage");
  CheckHasReason(store::ValidateDescription("description", s), "ValidateDescription");

  google::protobuf::RepeatedPtrField<std::string> items;
  for (absl::string_view part : absl::StrSplit(s, '\n')) items.Add(std::string(part));
  CheckHasReason(store::ValidateStages("version_stages", items, true), "ValidateStages");
  CheckHasReason(store::ValidateTagKeys("tag_keys", items), "ValidateTagKeys");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // Serializing an ErrorInfo with a non-UTF-8 resource logs an ERROR line
  // per call; keep the fuzzer's output readable.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text = coffer::fuzz::AsText(data, size);
  g_utf8 = coffer::fuzz::IsValidUtf8(text);
  CheckParameterRules(text);
  CheckPolicies(text);
  CheckSecretRules(text);
  CheckFilters(text);
  if (size_t nl = text.find('\n'); nl != absl::string_view::npos) {
    CheckHasReason(store::CheckAllowedPattern(text.substr(0, nl), text.substr(nl + 1)),
                   "CheckAllowedPattern");
  }
  return 0;
}
