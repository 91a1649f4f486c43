// params_api_fuzz: every unary method of the parameters API (ParamStore,
// coffer.params.v1), WatchParameters through its filter, and a Sweep (the
// policy scanner among them), on fuzzed requests over the real store logic
// in-process (api_world.h for the world, the input format and the
// placeholders).
//
// Callers: trusted, the app (ssm:* on /fz/*), an outsider the policy
// grants nothing, trusted with the KMS down, and trusted with the
// CallGate's inline-first reads (GateCall).
//
// Properties, beyond no crash and no sanitizer report: every answer passes
// CheckAnswer; the app succeeds and sees parameters only under /fz/, the
// outsider never (single-parameter calls are refused with INVALID_ARGUMENT
// or PERMISSION_DENIED, listings come back empty, its watch filter passes
// nothing); a parameter just put reads back with its value, type and
// version, by name and by version selector, and a SecureString without
// decryption never shows its value; a label just set selects its version;
// a label just removed selects nothing; deleted parameters are gone; tags
// just added or removed show in ListTagsForResource; pages hold at most
// max_results entries, by-path answers lie under the path, history comes
// oldest first.
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/api_world.h"
#include "google/protobuf/duration.pb.h"
#include "services/store/params/param_rules.h"

namespace {

namespace pm = ::coffer::params::v1;
namespace store = ::coffer::store;
using coffer::fuzz::ApiWorld;
using coffer::fuzz::Caller;
using coffer::fuzz::CheckAnswer;
using coffer::fuzz::Followed;
using coffer::fuzz::MakeMethod;
using coffer::fuzz::Method;

ApiWorld& W() { return ApiWorld::Get(); }

const Caller kFollowUp{"trusted"};

// ---- follow-up reads (trusted, KMS up) ----

absl::StatusOr<pm::GetParameterResponse> Get(const std::string& name, bool decrypt) {
  pm::GetParameterRequest request;
  request.set_name(name);
  request.set_with_decryption(decrypt);
  auto got = W().params().GetParameter(request);
  CheckAnswer(got.status(), kFollowUp, "GetParameter (follow-up)");
  return got;
}

std::map<std::string, std::string> Tags(const std::string& name) {
  pm::ListTagsForResourceRequest request;
  request.set_resource_type("Parameter");
  request.set_resource_id(name);
  auto listed = W().params().ListTagsForResource(request);
  FUZZ_CHECK(Followed(listed, "ListTagsForResource (follow-up)") != nullptr,
             "a tagged parameter lists its tags");
  std::map<std::string, std::string> tags;
  for (const auto& t : listed->tag_list()) tags[t.key()] = t.value();
  return tags;
}

// The parameter name a selector ("name", "name:3", "name:label") names.
std::string NameOf(const std::string& selector) {
  auto parsed = store::ParseSelector("name", selector);
  return parsed.ok() ? parsed->name : selector;
}

// What the app may see: parameters under /fz/ (the policy's "/fz/*").
bool AppMaySee(const std::string& name) { return absl::StartsWith(name, "/fz/"); }

// ---- the calls ----

// How the caller's reach is checked: `kOne` calls on one parameter
// (`NameOf(IdOf)`), `kMany` calls whose answers list parameters (checked by
// the method).
enum class Scope { kOne, kMany };

template <typename Request>
std::string IdOf(const Request& r) {
  return r.name();
}
template <>
std::string IdOf(const pm::AddTagsToResourceRequest& r) {
  return r.resource_id();
}
template <>
std::string IdOf(const pm::RemoveTagsFromResourceRequest& r) {
  return r.resource_id();
}
template <>
std::string IdOf(const pm::ListTagsForResourceRequest& r) {
  return r.resource_id();
}
template <>
std::string IdOf(const pm::GetParametersRequest&) {
  return "";
}
template <>
std::string IdOf(const pm::GetParametersByPathRequest&) {
  return "";
}
template <>
std::string IdOf(const pm::DescribeParametersRequest&) {
  return "";
}
template <>
std::string IdOf(const pm::DeleteParametersRequest&) {
  return "";
}

// The app and the outsider on the parameters an answer lists.
void CheckReach(const Caller& caller, const std::string& name) {
  if (caller.kind == Caller::kOutsider) FUZZ_CHECK(false, "an outsider sees a parameter");
  if (caller.kind == Caller::kPrincipal) {
    FUZZ_CHECK(AppMaySee(name), "the app sees a parameter outside /fz/");
  }
}

template <typename Request, typename Response>
Method Api(std::string name, Scope scope, std::vector<Request> seeds,
           std::function<absl::StatusOr<Response>(Request&, const coffer::authz::Access&)> call,
           std::function<void(const Request&, const Response&, const Caller&)> check) {
  const std::string method = name;
  return MakeMethod<Request>(
      std::move(name), std::move(seeds), [=](Request& request, const Caller& caller) {
        absl::StatusOr<Response> answer = coffer::fuzz::GateCall<Response>(
            caller, "ssm:" + method, [&] { return call(request, *caller.access); });
        CheckAnswer(answer.status(), caller, method);
        if (scope == Scope::kOne) {
          if (caller.kind == Caller::kOutsider) {
            FUZZ_CHECK(
                coffer::fuzz::OutsiderRefused(answer.status()),
                absl::StrCat(method, ": an outsider got ", answer.status().ToString()).c_str());
          }
          if (caller.kind == Caller::kPrincipal && !AppMaySee(NameOf(IdOf(request)))) {
            FUZZ_CHECK(
                coffer::fuzz::OutsiderRefused(answer.status()),
                absl::StrCat(method, ": the app got ", answer.status().ToString(), " outside /fz/")
                    .c_str());
          }
        }
        if (answer.ok()) check(request, *answer, caller);
      });
}

template <typename Request, typename Response>
void Nothing(const Request&, const Response&, const Caller&) {}

void CheckParameter(const pm::Parameter& p) {
  FUZZ_CHECK(!p.name().empty() && p.version() >= 1, "a parameter has a name and a version");
  FUZZ_CHECK(p.type() != pm::PARAMETER_TYPE_UNSPECIFIED, "a parameter has a type");
  FUZZ_CHECK(absl::StartsWith(p.arn(), "arn:coffer:ssm:"), "a parameter has an ARN");
  FUZZ_CHECK(p.data_type() == "text", "data type text");
}

std::vector<Method> Methods() {
  std::vector<Method> m;

  pm::PutParameterRequest put;
  put.set_name("/fz/new/value");
  put.set_value("v1");
  put.set_type(pm::PARAMETER_TYPE_STRING);
  put.set_description("fuzz");
  pm::PutParameterRequest put_secure;
  put_secure.set_name("/fz/app/password");
  put_secure.set_value("s3cret-value");
  put_secure.set_overwrite(true);
  put_secure.set_key_id("alias/fz/one");
  pm::PutParameterRequest put_advanced;
  put_advanced.set_name("/fz/advanced");
  put_advanced.set_value("v2");
  put_advanced.set_overwrite(true);
  put_advanced.set_tier(pm::PARAMETER_TIER_ADVANCED);
  put_advanced.set_policies(R"([{"Type":"NoChangeNotification","Version":"1.0",)"
                            R"("Attributes":{"After":"3","Unit":"Hours"}}])");
  m.push_back(Api<pm::PutParameterRequest, pm::PutParameterResponse>(
      "PutParameter", Scope::kOne, {put, put_secure, put_advanced},
      [](auto& r, const auto& a) {
        W().ReplaceKeyIds(r.mutable_key_id());
        return W().params().PutParameter(r, a);
      },
      [](const auto& r, const auto& out, const Caller&) {
        FUZZ_CHECK(out.version() >= 1, "a version number");
        FUZZ_CHECK(
            out.tier() == pm::PARAMETER_TIER_STANDARD || out.tier() == pm::PARAMETER_TIER_ADVANCED,
            "a tier");
        auto got = Get(r.name(), true);
        FUZZ_CHECK(got.ok(), "a parameter just put can be read");
        const pm::Parameter& p = got->parameter();
        CheckParameter(p);
        FUZZ_CHECK(p.name() == r.name() && p.value() == r.value() && p.version() == out.version(),
                   "a parameter just put reads back the same");
        if (r.type() != pm::PARAMETER_TYPE_UNSPECIFIED) FUZZ_CHECK(p.type() == r.type(), "type");
        auto by_version = Get(absl::StrCat(r.name(), ":", out.version()), false);
        FUZZ_CHECK(by_version.ok() && by_version->parameter().version() == out.version() &&
                       by_version->parameter().selector() == absl::StrCat(":", out.version()),
                   "the version just put is selected by its number");
        if (p.type() == pm::PARAMETER_TYPE_SECURE_STRING) {
          std::string sealed;
          FUZZ_CHECK(by_version->parameter().value() != r.value() &&
                         absl::Base64Unescape(by_version->parameter().value(), &sealed) &&
                         sealed.size() > r.value().size(),
                     "a SecureString without decryption shows only its ciphertext");
        }
      }));

  pm::GetParameterRequest get;
  get.set_name("/fz/app/password");
  get.set_with_decryption(true);
  pm::GetParameterRequest get_label;
  get_label.set_name("/fz/app/host:stable");
  m.push_back(Api<pm::GetParameterRequest, pm::GetParameterResponse>(
      "GetParameter", Scope::kOne, {get, get_label},
      [](auto& r, const auto& a) { return W().params().GetParameter(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        CheckParameter(out.parameter());
        auto selector = store::ParseSelector("name", r.name());
        FUZZ_CHECK(selector.ok() && out.parameter().name() == selector->name &&
                       out.parameter().selector() == selector->text(),
                   "the parameter the selector names");
        if (selector->version > 0) {
          FUZZ_CHECK(out.parameter().version() == selector->version, "the version selected");
        }
      }));

  pm::GetParametersRequest get_many;
  get_many.add_names("/fz/app/host");
  get_many.add_names("/fz/app/host:1");
  get_many.add_names("/fz/missing");
  get_many.set_with_decryption(true);
  m.push_back(Api<pm::GetParametersRequest, pm::GetParametersResponse>(
      "GetParameters", Scope::kMany, {get_many},
      [](auto& r, const auto& a) { return W().params().GetParameters(r, a); },
      [](const auto& r, const auto& out, const Caller& caller) {
        const std::set<std::string> names(r.names().begin(), r.names().end());
        FUZZ_CHECK(
            out.parameters_size() + out.invalid_parameters_size() <= static_cast<int>(names.size()),
            "at most one answer per distinct name");
        std::set<std::string> selected;  // "name:3" for "name:03" too
        for (const std::string& n : names) {
          auto selector = store::ParseSelector("names", n);
          if (selector.ok()) selected.insert(selector->name + selector->text());
        }
        for (const auto& p : out.parameters()) {
          CheckParameter(p);
          FUZZ_CHECK(selected.count(p.name() + p.selector()) == 1, "a parameter asked for");
          CheckReach(caller, p.name());
        }
      }));

  pm::GetParametersByPathRequest by_path;
  by_path.set_path("/fz");
  by_path.set_recursive(true);
  by_path.set_max_results(3);
  pm::GetParametersByPathRequest by_path_filtered;
  by_path_filtered.set_path("/fz/app/");
  by_path_filtered.set_with_decryption(true);
  auto* label_filter = by_path_filtered.add_parameter_filters();
  label_filter->set_key("Label");
  label_filter->add_values("stable");
  pm::GetParametersByPathRequest by_path_next = by_path;
  by_path_next.set_next_token("#next");
  m.push_back(Api<pm::GetParametersByPathRequest, pm::GetParametersByPathResponse>(
      "GetParametersByPath", Scope::kMany, {by_path, by_path_filtered, by_path_next},
      [](auto& r, const auto& a) {
        W().ReplaceToken(r.mutable_next_token());
        return W().params().GetParametersByPath(r, a);
      },
      [](const auto& r, const auto& out, const Caller& caller) {
        W().RememberToken(out.next_token());
        const int max = r.max_results() == 0 ? 10 : r.max_results();
        FUZZ_CHECK(out.parameters_size() <= max, "at most max_results parameters");
        const std::string path = store::NormalizePath(r.path());
        for (const auto& p : out.parameters()) {
          CheckParameter(p);
          if (r.recursive()) {
            FUZZ_CHECK(absl::StartsWith(p.name(), path == "/" ? "/" : path + "/"),
                       "a parameter under the path");
          } else {
            FUZZ_CHECK(store::ParentPath(p.name()) == path, "a parameter right under the path");
          }
          CheckReach(caller, p.name());
        }
      }));

  pm::DescribeParametersRequest describe;
  describe.set_max_results(2);
  pm::DescribeParametersRequest describe_filtered;
  auto* path_filter = describe_filtered.add_parameter_filters();
  path_filter->set_key("Path");
  path_filter->set_option("Recursive");
  path_filter->add_values("/fz");
  auto* type_filter = describe_filtered.add_parameter_filters();
  type_filter->set_key("Type");
  type_filter->add_values("SecureString");
  pm::DescribeParametersRequest describe_next = describe;
  describe_next.set_next_token("#next");
  m.push_back(Api<pm::DescribeParametersRequest, pm::DescribeParametersResponse>(
      "DescribeParameters", Scope::kMany, {describe, describe_filtered, describe_next},
      [](auto& r, const auto& a) {
        W().ReplaceToken(r.mutable_next_token());
        return W().params().DescribeParameters(r, a);
      },
      [](const auto& r, const auto& out, const Caller& caller) {
        W().RememberToken(out.next_token());
        const int max = r.max_results() == 0 ? 50 : r.max_results();
        FUZZ_CHECK(out.parameters_size() <= max, "at most max_results parameters");
        for (const auto& p : out.parameters()) {
          FUZZ_CHECK(!p.name().empty() && p.version() >= 1, "metadata of a parameter");
          CheckReach(caller, p.name());
        }
      }));

  pm::GetParameterHistoryRequest history;
  history.set_name("/fz/app/host");
  history.set_max_results(1);
  m.push_back(Api<pm::GetParameterHistoryRequest, pm::GetParameterHistoryResponse>(
      "GetParameterHistory", Scope::kOne, {history},
      [](auto& r, const auto& a) {
        W().ReplaceToken(r.mutable_next_token());
        return W().params().GetParameterHistory(r, a);
      },
      [](const auto& r, const auto& out, const Caller&) {
        W().RememberToken(out.next_token());
        const int max = r.max_results() == 0 ? 50 : r.max_results();
        FUZZ_CHECK(out.parameters_size() <= max, "at most max_results versions");
        int64_t last = 0;
        for (const auto& h : out.parameters()) {
          FUZZ_CHECK(h.name() == r.name() && h.version() > last, "history comes oldest first");
          last = h.version();
        }
      }));

  pm::DeleteParameterRequest remove;
  remove.set_name("/fz/list");
  m.push_back(Api<pm::DeleteParameterRequest, pm::DeleteParameterResponse>(
      "DeleteParameter", Scope::kOne, {remove},
      [](auto& r, const auto& a) { return W().params().DeleteParameter(r, a); },
      [](const auto& r, const auto&, const Caller&) {
        FUZZ_CHECK(absl::IsNotFound(Get(r.name(), false).status()), "a deleted parameter is gone");
      }));

  pm::DeleteParametersRequest remove_many;
  remove_many.add_names("/fz/pattern");
  remove_many.add_names("/fz/missing");
  remove_many.add_names("not valid!");
  m.push_back(Api<pm::DeleteParametersRequest, pm::DeleteParametersResponse>(
      "DeleteParameters", Scope::kMany, {remove_many},
      [](auto& r, const auto& a) { return W().params().DeleteParameters(r, a); },
      [](const auto& r, const auto& out, const Caller& caller) {
        FUZZ_CHECK(out.deleted_parameters_size() + out.invalid_parameters_size() == r.names_size(),
                   "each name deleted or invalid");
        for (const auto& name : out.deleted_parameters()) {
          CheckReach(caller, name);
          FUZZ_CHECK(absl::IsNotFound(Get(name, false).status()), "a deleted parameter is gone");
        }
      }));

  pm::LabelParameterVersionRequest label;
  label.set_name("/fz/app/host");
  label.set_parameter_version(2);
  label.add_labels("current");
  label.add_labels("1bad");
  m.push_back(Api<pm::LabelParameterVersionRequest, pm::LabelParameterVersionResponse>(
      "LabelParameterVersion", Scope::kOne, {label},
      [](auto& r, const auto& a) { return W().params().LabelParameterVersion(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        if (r.parameter_version() != 0) {
          FUZZ_CHECK(out.parameter_version() == r.parameter_version(), "the version labelled");
        }
        for (const std::string& l : r.labels()) {
          if (std::count(out.invalid_labels().begin(), out.invalid_labels().end(), l) > 0) {
            FUZZ_CHECK(!store::IsValidLabel(l), "only invalid labels are refused");
            continue;
          }
          auto got = Get(absl::StrCat(r.name(), ":", l), false);
          FUZZ_CHECK(got.ok() && got->parameter().version() == out.parameter_version(),
                     "a label just set selects its version");
        }
      }));

  pm::UnlabelParameterVersionRequest unlabel;
  unlabel.set_name("/fz/app/host");
  unlabel.set_parameter_version(1);
  unlabel.add_labels("stable");
  unlabel.add_labels("absent");
  m.push_back(Api<pm::UnlabelParameterVersionRequest, pm::UnlabelParameterVersionResponse>(
      "UnlabelParameterVersion", Scope::kOne, {unlabel},
      [](auto& r, const auto& a) { return W().params().UnlabelParameterVersion(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        for (const std::string& l : out.removed_labels()) {
          FUZZ_CHECK(std::count(r.labels().begin(), r.labels().end(), l) > 0,
                     "a removed label was asked for");
          FUZZ_CHECK(absl::IsNotFound(Get(absl::StrCat(r.name(), ":", l), false).status()),
                     "a label just removed selects nothing");
        }
      }));

  pm::AddTagsToResourceRequest add_tags;
  add_tags.set_resource_type("Parameter");
  add_tags.set_resource_id("/fz/app/host");
  auto* tag = add_tags.add_tags();
  tag->set_key("env");
  tag->set_value("fuzz");
  m.push_back(Api<pm::AddTagsToResourceRequest, pm::AddTagsToResourceResponse>(
      "AddTagsToResource", Scope::kOne, {add_tags},
      [](auto& r, const auto& a) { return W().params().AddTagsToResource(r, a); },
      [](const auto& r, const auto&, const Caller&) {
        std::map<std::string, std::string> wanted;
        for (const auto& t : r.tags()) wanted[t.key()] = t.value();
        auto tags = Tags(r.resource_id());
        for (const auto& [k, v] : wanted) {
          FUZZ_CHECK(tags.count(k) == 1 && tags[k] == v, "a tag just added is there");
        }
      }));

  pm::RemoveTagsFromResourceRequest remove_tags;
  remove_tags.set_resource_type("Parameter");
  remove_tags.set_resource_id("/fz/list");
  remove_tags.add_tag_keys("team");
  m.push_back(Api<pm::RemoveTagsFromResourceRequest, pm::RemoveTagsFromResourceResponse>(
      "RemoveTagsFromResource", Scope::kOne, {remove_tags},
      [](auto& r, const auto& a) { return W().params().RemoveTagsFromResource(r, a); },
      [](const auto& r, const auto&, const Caller&) {
        auto tags = Tags(r.resource_id());
        for (const auto& k : r.tag_keys()) FUZZ_CHECK(tags.count(k) == 0, "a removed tag is gone");
      }));

  pm::ListTagsForResourceRequest list_tags;
  list_tags.set_resource_type("Parameter");
  list_tags.set_resource_id("/fz/list");
  m.push_back(Api<pm::ListTagsForResourceRequest, pm::ListTagsForResourceResponse>(
      "ListTagsForResource", Scope::kOne, {list_tags},
      [](auto& r, const auto& a) { return W().params().ListTagsForResource(r, a); },
      [](const auto&, const auto& out, const Caller&) {
        FUZZ_CHECK(out.tag_list_size() <= 50, "at most 50 tags");
        std::set<std::string> keys;
        for (const auto& t : out.tag_list()) {
          FUZZ_CHECK(keys.insert(t.key()).second, "tag keys are unique");
        }
      }));

  // WatchParameters: the request's checks and the filter over recent events.
  pm::WatchParametersRequest watch;
  watch.set_path("/fz");
  watch.set_recursive(true);
  watch.set_start_after("2");
  m.push_back(MakeMethod<pm::WatchParametersRequest>(
      "WatchParameters", {watch}, [](pm::WatchParametersRequest& r, const Caller& caller) {
        if (!r.start_after().empty()) {
          CheckAnswer(store::ChangeLog::DecodePosition("start_after", r.start_after()).status(),
                      caller, "WatchParameters start_after");
        }
        auto filter = store::ParamStore::WatchFilter(r, *caller.access);
        CheckAnswer(filter.status(), caller, "WatchParameters");
        if (!filter.ok()) return;
        store::ChangeLog& log = W().changes();
        uint64_t after = log.Watermark() > 32 ? log.Watermark() - 32 : 0;
        if (log.Oldest() > 0 && after + 1 < log.Oldest()) after = log.Oldest() - 1;
        auto events = log.Read(after, 32);
        if (Followed(events, "ChangeLog::Read") == nullptr) return;
        const std::string path = store::NormalizePath(r.path());
        for (const auto& e : *events) {
          if (!(*filter)(e)) continue;
          FUZZ_CHECK(e.resource_kind() == coffer::v1::RESOURCE_KIND_PARAMETER,
                     "the filter passes only parameters");
          if (r.recursive()) {
            FUZZ_CHECK(absl::StartsWith(e.name(), path == "/" ? "/" : path + "/"),
                       "the filter passes only parameters under the path");
          } else {
            FUZZ_CHECK(store::ParentPath(e.name()) == path,
                       "the filter passes only parameters right under the path");
          }
          CheckReach(caller, e.name());
        }
      }));

  // Time passes (at most 40 days), then the sweepers run.
  google::protobuf::Duration hours;
  hours.set_seconds(3 * 3600);
  google::protobuf::Duration a_month;
  a_month.set_seconds(31 * 86400);
  m.push_back(MakeMethod<google::protobuf::Duration>(
      "Sweep", {hours, a_month}, [](google::protobuf::Duration& d, const Caller&) {
        W().Sweep(absl::Seconds(std::clamp<int64_t>(d.seconds(), 0, 40 * 86400)));
      }));
  return m;
}

const std::vector<Method>& TheMethods() {
  static const auto* const methods = new std::vector<Method>(Methods());
  return *methods;
}

const std::vector<Caller>& TheCallers() {
  static const auto* const callers = [] {
    ApiWorld& w = W();
    return new std::vector<Caller>{
        {"trusted", Caller::kTrusted, &coffer::authz::Access::Trusted()},
        {"app", Caller::kPrincipal, &w.app()},
        {"outsider", Caller::kOutsider, &w.outsider()},
        {"kms-down", Caller::kTrusted, &coffer::authz::Access::Trusted(), /*kms_down=*/true},
        {"inline", Caller::kTrusted, &coffer::authz::Access::Trusted(), false, false,
         /*inline_first=*/true},
    };
  }();
  return *callers;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  coffer::fuzz::Initialize(argc, argv, TheMethods(), TheCallers());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return coffer::fuzz::RunInput(TheMethods(), TheCallers(), data, size);
}
