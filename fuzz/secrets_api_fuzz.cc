// secrets_api_fuzz: every unary method of the secrets API (SecretStore,
// coffer.secrets.v1) and of the store's rotation control (SecretRotation,
// coffer.rotation.v1), WatchSecrets through its filter, and a Sweep, on
// fuzzed requests over the real store logic in-process (api_world.h for
// the world, the input format and the placeholders).
//
// Callers: trusted, the app (secretsmanager:* on fz/*), a rotation worker
// (with the token of the last leased run), the rotator (rotation:*), an
// outsider the policy grants nothing, trusted with the KMS down, and
// trusted with the CallGate's inline-first reads (GateCall).
//
// Properties, beyond no crash and no sanitizer report: every answer passes
// CheckAnswer; the app reaches and lists only fz/ (and secrets whose
// resource policy lets it) and never deletes under fz/keep/; an outsider
// gets nothing — no value, no existence oracle — from a secret without a
// resource policy (it is refused with INVALID_ARGUMENT or
// PERMISSION_DENIED, in a batch too), and listings show it only secrets
// that have one; errors never hold a value of the request;
// a value just written (CreateSecret, PutSecretValue, UpdateSecret) reads
// back the same under the version id answered, and a write retried with its
// token is answered the same and adds nothing; after every call on a secret
// its labels follow the staging-label rules (each on one version, at most
// 20, AWSCURRENT on some version once there is one); each call's answer
// agrees with what DescribeSecret / GetResourcePolicy show next (after a
// key change, every labelled version opens and is under the new key);
// generated passwords follow their options; pages hold at most max_results
// entries; a watch filter passes only events it should.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fuzz/api_world.h"
#include "google/protobuf/duration.pb.h"
#include "libs/common/errors.h"
#include "libs/crypto/password.h"
#include "services/kms/key_manager.h"
#include "services/store/secrets/secret_names.h"

namespace {

namespace sm = ::coffer::secrets::v1;
namespace rot = ::coffer::rotation::v1;
namespace store = ::coffer::store;
using coffer::fuzz::ApiWorld;
using coffer::fuzz::Caller;
using coffer::fuzz::CheckAnswer;
using coffer::fuzz::Followed;
using coffer::fuzz::MakeMethod;
using coffer::fuzz::Method;

ApiWorld& W() { return ApiWorld::Get(); }

constexpr char kCurrent[] = "AWSCURRENT";
constexpr char kPending[] = "AWSPENDING";
constexpr char kToken1[] = "fz-token-0000000000000000000000000001";
constexpr char kToken2[] = "fz-token-0000000000000000000000000002";

// ---- follow-up reads (trusted, KMS up) ----

const sm::DescribeSecretResponse* Describe(const std::string& secret_id,
                                           sm::DescribeSecretResponse* out) {
  sm::DescribeSecretRequest request;
  request.set_secret_id(secret_id);
  auto described = W().secrets().DescribeSecret(request);
  if (!Followed(described, "DescribeSecret (follow-up)")) return nullptr;
  *out = *std::move(described);
  return out;
}

bool HasResourcePolicy(const std::string& secret_id) {
  if (secret_id.empty()) return false;
  sm::GetResourcePolicyRequest request;
  request.set_secret_id(secret_id);
  auto got = W().secrets().GetResourcePolicy(request);
  return got.ok() && !got->resource_policy().empty();
}

// The staging-label rules, on what DescribeSecret / ListSecrets show.
template <typename StageMap>
void CheckLabels(const StageMap& versions) {
  std::set<std::string> seen;
  bool current = false;
  for (const auto& [id, stages] : versions) {
    FUZZ_CHECK(!id.empty() && !stages.stages().empty(), "listed versions have an id and labels");
    for (const std::string& s : stages.stages()) {
      FUZZ_CHECK(seen.insert(s).second, "a staging label is on one version at most");
      current |= s == kCurrent;
    }
  }
  FUZZ_CHECK(seen.size() <= 20, "at most 20 staging labels per secret");
  FUZZ_CHECK(versions.empty() || current, "a secret with versions has AWSCURRENT on one");
}

template <typename Entry>
void CheckEntry(const Entry& e) {
  FUZZ_CHECK(!e.name().empty() && absl::StartsWith(e.arn(), "arn:coffer:secretsmanager:"),
             "an entry has a name and an ARN");
  FUZZ_CHECK(absl::EndsWith(e.arn().substr(0, e.arn().size() - store::kArnSuffixLength),
                            absl::StrCat(":secret:", e.name(), "-")),
             "the ARN is the name's");
  FUZZ_CHECK(e.tags_size() <= 50, "at most 50 tags");
  std::set<std::string> keys;
  for (const auto& t : e.tags()) FUZZ_CHECK(keys.insert(t.key()).second, "tag keys are unique");
}

void CheckDescribed(const std::string& secret_id) {
  if (secret_id.empty()) return;
  sm::DescribeSecretResponse d;
  if (Describe(secret_id, &d) == nullptr) return;
  CheckEntry(d);
  CheckLabels(d.version_ids_to_stages());
  FUZZ_CHECK(d.has_deletion_date() == d.has_deleted_date(), "deleted and deletion dates together");
}

// A value just written reads back the same under its version id.
void CheckValue(const std::string& arn, const std::string& version_id, bool binary,
                const std::string& value) {
  FUZZ_CHECK(!version_id.empty(), "a written value has a version id");
  sm::GetSecretValueRequest get;
  get.set_secret_id(arn);
  get.set_version_id(version_id);
  auto got = W().secrets().GetSecretValue(get);
  FUZZ_CHECK(Followed(got, "GetSecretValue (follow-up)") != nullptr,
             "a value just written can be read");
  FUZZ_CHECK(got->version_id() == version_id && got->arn() == arn, "the version asked for");
  if (binary) {
    FUZZ_CHECK(
        got->has_secret_binary() && !got->has_secret_string() && got->secret_binary() == value,
        "the binary value written reads back the same");
  } else {
    FUZZ_CHECK(
        got->has_secret_string() && !got->has_secret_binary() && got->secret_string() == value,
        "the string value written reads back the same");
  }
}

bool IsApp(const Caller& caller) { return caller.access == &W().app(); }
// A name the app's policy grants it (resources "fz/*").
bool AppMayUse(const std::string& name) { return absl::StartsWith(name, "fz/"); }

// The name of the secret an id (name or ARN) names, "" when none.
std::string NameOf(const std::string& secret_id) {
  if (secret_id.empty()) return "";
  sm::DescribeSecretRequest request;
  request.set_secret_id(secret_id);
  auto described = W().secrets().DescribeSecret(request);
  return described.ok() ? described->name() : "";
}

// UpdateSecret's secret's kms_key_id before the call.
std::string g_key_before;

int VersionCount(const std::string& secret_id) {
  sm::ListSecretVersionIdsRequest request;
  request.set_secret_id(secret_id);
  request.set_include_deprecated(true);
  auto listed = W().secrets().ListSecretVersionIds(request);
  FUZZ_CHECK(Followed(listed, "ListSecretVersionIds (follow-up)") != nullptr,
             "a secret just written lists its versions");
  return listed->versions_size();
}

// A write with a client_request_token, retried with the same value, is
// answered the same and adds no version (docs/api.md: idempotent writes).
template <typename Request, typename Response>
void CheckRetry(const Request& request, const Response& out,
                absl::StatusOr<Response> (coffer::store::SecretStore::*call)(
                    const Request&, const coffer::authz::Access&)) {
  if (request.client_request_token().empty()) return;
  const int versions = VersionCount(out.arn());
  auto again = (W().secrets().*call)(request, coffer::authz::Access::Trusted());
  FUZZ_CHECK(Followed(again, "a retry (follow-up)") != nullptr && again->arn() == out.arn() &&
                 again->version_id() == out.version_id(),
             "a retried write is answered the same");
  FUZZ_CHECK(VersionCount(out.arn()) == versions, "a retried write adds no version");
}

// Errors never hold a value of the request: checked for values long enough
// not to occur in a message by chance, and not also given in another field.
template <typename Request>
void CheckNoValueInError(const absl::Status& status, const Request& request) {
  if (status.ok()) return;
  const std::string& value =
      request.has_secret_string() ? request.secret_string() : request.secret_binary();
  if (value.size() < 24) return;
  Request rest = request;
  rest.clear_secret_string();
  rest.clear_secret_binary();
  if (absl::StrContains(rest.SerializeAsString(), value)) return;
  FUZZ_CHECK(!absl::StrContains(status.message(), value), "an error message holds the value");
}

void CheckPassword(const sm::GetRandomPasswordRequest& r, const std::string& password) {
  const size_t length = r.password_length() == 0 ? 32 : static_cast<size_t>(r.password_length());
  FUZZ_CHECK(password.size() == length, "the password has the length asked for");
  bool excluded[256] = {};
  for (char c : r.exclude_characters()) excluded[static_cast<uint8_t>(c)] = true;
  const absl::string_view punctuation = coffer::crypto::kPasswordPunctuation;
  // Class of a character: 0 lower, 1 upper, 2 digit, 3 punctuation, 4 space, 5 other.
  auto class_of = [&](char c) {
    if (c >= 'a' && c <= 'z') return 0;
    if (c >= 'A' && c <= 'Z') return 1;
    if (c >= '0' && c <= '9') return 2;
    if (c != '\0' && punctuation.find(c) != absl::string_view::npos) return 3;
    return c == ' ' ? 4 : 5;
  };
  const bool included[6] = {!r.exclude_lowercase(),   !r.exclude_uppercase(), !r.exclude_numbers(),
                            !r.exclude_punctuation(), r.include_space(),      false};
  bool present[6] = {};
  for (char c : password) {
    const int cls = class_of(c);
    FUZZ_CHECK(included[cls], "a password character of an excluded class");
    FUZZ_CHECK(!excluded[static_cast<uint8_t>(c)], "a password character of exclude_characters");
    present[cls] = true;
  }
  if (r.has_require_each_included_type() && !r.require_each_included_type()) return;
  for (int cls = 0; cls < 4; ++cls) {
    if (!included[cls] || present[cls]) continue;
    // Missing is fine only when exclude_characters left nothing of the class.
    for (int c = 1; c < 256; ++c) {
      FUZZ_CHECK(class_of(static_cast<char>(c)) != cls || excluded[c],
                 "a password misses an included class");
    }
  }
}

// ---- the calls ----

// What an outsider may get from a call: `kSecret` calls on one secret
// (`IdOf`), refused unless that secret has a resource policy; `kNone` calls
// on no secret, always refused; `kFiltered` listings, checked by the method.
enum class Scope { kSecret, kNone, kFiltered };

template <typename Request>
std::string IdOf(const Request& r) {
  return r.secret_id();
}
template <>
std::string IdOf(const sm::CreateSecretRequest&) {
  return "";
}
template <>
std::string IdOf(const sm::GetRandomPasswordRequest&) {
  return "";
}
template <>
std::string IdOf(const sm::ListSecretsRequest&) {
  return "";
}
template <>
std::string IdOf(const sm::BatchGetSecretValueRequest&) {
  return "";
}

template <typename Request, typename Response>
Method Api(std::string name, Scope scope, std::vector<Request> seeds,
           std::function<absl::StatusOr<Response>(Request&, const coffer::authz::Access&)> call,
           std::function<void(const Request&, const Response&, const Caller&)> check) {
  const std::string method = name;
  return MakeMethod<Request>(
      std::move(name), std::move(seeds), [=](Request& request, const Caller& caller) {
        const std::string id = IdOf(request);
        const bool outsider = caller.kind == Caller::kOutsider;
        const bool app = IsApp(caller);
        const bool one = scope == Scope::kSecret;
        const bool had_policy =
            (outsider && scope != Scope::kFiltered) || (app && one) ? HasResourcePolicy(id) : false;
        const std::string name = app && one ? NameOf(id) : "";
        absl::StatusOr<Response> answer = coffer::fuzz::GateCall<Response>(
            caller, "secretsmanager:" + method, [&] { return call(request, *caller.access); });
        CheckAnswer(answer.status(), caller, method);
        if (outsider && scope != Scope::kFiltered && !had_policy) {
          FUZZ_CHECK(coffer::fuzz::OutsiderRefused(answer.status()),
                     absl::StrCat(method, ": an outsider got ", answer.status().ToString(),
                                  " on a secret without a resource policy")
                         .c_str());
        }
        // The app's policy: secretsmanager:* on fz/* (ValidateResourcePolicy
        // on everything), but never DeleteSecret or PutResourcePolicy on
        // fz/keep/* (an explicit deny wins over any resource policy).
        if (app && one && !had_policy && !id.empty() && method != "ValidateResourcePolicy" &&
            !AppMayUse(id) && !AppMayUse(name)) {
          FUZZ_CHECK(coffer::fuzz::OutsiderRefused(answer.status()),
                     absl::StrCat(method, ": the app got ", answer.status().ToString(),
                                  " on a secret outside fz/")
                         .c_str());
        }
        if (app && one && (method == "DeleteSecret" || method == "PutResourcePolicy") &&
            (absl::StartsWith(id, "fz/keep/") || absl::StartsWith(name, "fz/keep/"))) {
          FUZZ_CHECK(coffer::fuzz::OutsiderRefused(answer.status()),
                     absl::StrCat(method, ": the app got ", answer.status().ToString(),
                                  " on fz/keep/ (denied)")
                         .c_str());
        }
        if (answer.ok()) check(request, *answer, caller);
        if (scope == Scope::kSecret) CheckDescribed(id);
      });
}

template <typename Request, typename Response>
void Nothing(const Request&, const Response&, const Caller&) {}

std::vector<Method> Methods() {
  std::vector<Method> m;

  sm::CreateSecretRequest create;
  create.set_name("fz/new");
  create.set_secret_string("{\"password\":\"fuzz\"}");
  sm::CreateSecretRequest create_binary;
  create_binary.set_name("fz/new-binary");
  create_binary.set_client_request_token("fz-token-0000000000000000000000000099");
  create_binary.set_kms_key_id("alias/fz/one");
  create_binary.set_secret_binary(std::string("\xff\0binary", 8));
  auto* tag = create_binary.add_tags();
  tag->set_key("k");
  tag->set_value("v");
  m.push_back(Api<sm::CreateSecretRequest, sm::CreateSecretResponse>(
      "CreateSecret", Scope::kNone, {create, create_binary},
      [](auto& r, const auto& a) {
        W().ReplaceKeyIds(r.mutable_kms_key_id());
        return W().secrets().CreateSecret(r, a);
      },
      [](const auto& r, const auto& out, const Caller& caller) {
        FUZZ_CHECK(out.name() == r.name(), "CreateSecret answers the name");
        if (IsApp(caller)) FUZZ_CHECK(AppMayUse(r.name()), "the app created outside fz/");
        FUZZ_CHECK(absl::StartsWith(out.arn(),
                                    store::SecretArnPrefix(store::ArnConfig()) + r.name() + "-"),
                   "CreateSecret answers the name's ARN");
        if (r.has_secret_string() || r.has_secret_binary()) {
          CheckValue(out.arn(), out.version_id(), r.has_secret_binary(),
                     r.has_secret_binary() ? r.secret_binary() : r.secret_string());
          CheckRetry(r, out, &store::SecretStore::CreateSecret);
        } else {
          FUZZ_CHECK(out.version_id().empty(), "no value, no version");
        }
        CheckDescribed(out.arn());
      }));

  sm::GetSecretValueRequest get;
  get.set_secret_id("fz/db");
  sm::GetSecretValueRequest get_previous;
  get_previous.set_secret_id("fz/db");
  get_previous.set_version_id(kToken1);
  get_previous.set_version_stage("AWSPREVIOUS");
  m.push_back(Api<sm::GetSecretValueRequest, sm::GetSecretValueResponse>(
      "GetSecretValue", Scope::kSecret, {get, get_previous},
      [](auto& r, const auto& a) { return W().secrets().GetSecretValue(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        FUZZ_CHECK(out.has_secret_string() != out.has_secret_binary(), "one value");
        FUZZ_CHECK(!out.version_id().empty() && !out.arn().empty(), "a version of a secret");
        if (!r.version_id().empty()) FUZZ_CHECK(out.version_id() == r.version_id(), "the id");
        const std::string stage =
            r.version_stage().empty() && r.version_id().empty() ? kCurrent : r.version_stage();
        if (!stage.empty()) {
          FUZZ_CHECK(
              std::count(out.version_stages().begin(), out.version_stages().end(), stage) == 1,
              "the version carries the label asked for");
        }
      }));

  sm::BatchGetSecretValueRequest batch;
  batch.add_secret_id_list("fz/db");
  batch.add_secret_id_list("fz/missing");
  sm::BatchGetSecretValueRequest batch_filtered;
  auto* filter = batch_filtered.add_filters();
  filter->set_key("name");
  filter->add_values("fz/");
  batch_filtered.set_max_results(2);
  m.push_back(Api<sm::BatchGetSecretValueRequest, sm::BatchGetSecretValueResponse>(
      "BatchGetSecretValue", Scope::kFiltered, {batch, batch_filtered},
      [](auto& r, const auto& a) {
        W().ReplaceToken(r.mutable_next_token());
        return W().secrets().BatchGetSecretValue(r, a);
      },
      [](const auto& r, const auto& out, const Caller& caller) {
        W().RememberToken(out.next_token());
        if (r.secret_id_list_size() > 0) {
          FUZZ_CHECK(out.secret_values_size() + out.errors_size() == r.secret_id_list_size(),
                     "one value or one error per id");
        } else {
          const int max = r.max_results() == 0 ? 20 : r.max_results();
          FUZZ_CHECK(out.secret_values_size() <= max, "at most max_results values");
        }
        for (const auto& e : out.errors()) {
          FUZZ_CHECK(!e.error_code().empty() && !e.message().empty(), "an error entry says why");
          // No existence oracle: a secret without a resource policy is
          // refused whether it exists or not.
          if (caller.kind == Caller::kOutsider && !HasResourcePolicy(e.secret_id())) {
            FUZZ_CHECK(e.error_code() == coffer::reason::kAccessDenied ||
                           e.error_code() == coffer::reason::kInvalidParameter,
                       absl::StrCat("an outsider's batch entry says ", e.error_code()).c_str());
          }
        }
        for (const auto& v : out.secret_values()) {
          FUZZ_CHECK(v.has_secret_string() != v.has_secret_binary(), "one value per entry");
          if (caller.kind == Caller::kOutsider) {
            FUZZ_CHECK(HasResourcePolicy(v.arn()), "an outsider got a value");
          }
          if (IsApp(caller)) {
            FUZZ_CHECK(AppMayUse(v.name()) || HasResourcePolicy(v.arn()),
                       "the app got a value outside fz/");
          }
        }
      }));

  sm::PutSecretValueRequest put;
  put.set_secret_id("fz/db");
  put.set_secret_string("{\"pw\":\"three\"}");
  sm::PutSecretValueRequest put_staged;
  put_staged.set_secret_id("fz/empty");
  put_staged.set_client_request_token("fz-token-0000000000000000000000000050");
  put_staged.set_secret_binary("staged");
  put_staged.add_version_stages("STAGED");
  // A rotation worker's createSecret on the fixture rotation.
  sm::PutSecretValueRequest put_pending;
  put_pending.set_secret_id("fz/rotating");
  put_pending.set_client_request_token("fz-token-0000000000000000000000000010");
  put_pending.set_secret_string("rotating v2");
  put_pending.add_version_stages(kPending);
  m.push_back(Api<sm::PutSecretValueRequest, sm::PutSecretValueResponse>(
      "PutSecretValue", Scope::kSecret, {put, put_staged, put_pending},
      [](auto& r, const auto& a) {
        auto answer = W().secrets().PutSecretValue(r, a);
        CheckNoValueInError(answer.status(), r);
        return answer;
      },
      [](const auto& r, const auto& out, const Caller&) {
        if (!r.client_request_token().empty()) {
          FUZZ_CHECK(out.version_id() == r.client_request_token(), "the token is the version id");
        }
        CheckValue(out.arn(), out.version_id(), r.has_secret_binary(),
                   r.has_secret_binary() ? r.secret_binary() : r.secret_string());
        CheckRetry(r, out, &store::SecretStore::PutSecretValue);
      }));

  sm::UpdateSecretRequest update;
  update.set_secret_id("fz/db");
  update.set_description("updated");
  update.set_secret_string("updated value");
  sm::UpdateSecretRequest update_key;
  update_key.set_secret_id("fz/db");
  update_key.set_kms_key_id("alias/fz/one");
  m.push_back(Api<sm::UpdateSecretRequest, sm::UpdateSecretResponse>(
      "UpdateSecret", Scope::kSecret, {update, update_key},
      [](auto& r, const auto& a) {
        W().ReplaceKeyIds(r.mutable_kms_key_id());
        sm::DescribeSecretRequest before;
        before.set_secret_id(r.secret_id());
        auto described = W().secrets().DescribeSecret(before);
        g_key_before = described.ok() ? described->kms_key_id() : "";
        auto answer = W().secrets().UpdateSecret(r, a);
        CheckNoValueInError(answer.status(), r);
        return answer;
      },
      [](const auto& r, const auto& out, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(out.arn(), &d) != nullptr, "an updated secret exists");
        if (r.has_description()) FUZZ_CHECK(d.description() == r.description(), "description");
        if (!r.kms_key_id().empty()) FUZZ_CHECK(d.kms_key_id() == r.kms_key_id(), "the key");
        if (r.has_secret_string() || r.has_secret_binary()) {
          CheckValue(out.arn(), out.version_id(), r.has_secret_binary(),
                     r.has_secret_binary() ? r.secret_binary() : r.secret_string());
          const auto it = d.version_ids_to_stages().find(out.version_id());
          FUZZ_CHECK(
              it != d.version_ids_to_stages().end() &&
                  std::count(it->second.stages().begin(), it->second.stages().end(), kCurrent) == 1,
              "UpdateSecret's value becomes AWSCURRENT");
        }
        // Every labelled version still opens (the key change re-wrapped them).
        for (const auto& [id, stages] : d.version_ids_to_stages()) {
          sm::GetSecretValueRequest get;
          get.set_secret_id(out.arn());
          get.set_version_id(id);
          auto got = W().secrets().GetSecretValue(get);
          CheckAnswer(got.status(), {"trusted"}, "GetSecretValue (follow-up)");
          FUZZ_CHECK(got.ok() || absl::IsNotFound(got.status()), "a labelled version opens");
        }
        // ... and is under the new key now, when the key changed (deprecated
        // versions keep their old wrapping, also once labelled again).
        if (r.kms_key_id().empty() || r.kms_key_id() == g_key_before) return;
        coffer::kms::v1::DescribeKeyRequest key;
        key.set_key_id(r.kms_key_id());
        auto described = W().keys().DescribeKey(key);
        CheckAnswer(described.status(), {"trusted"}, "DescribeKey (follow-up)");
        sm::ListSecretVersionIdsRequest list;
        list.set_secret_id(out.arn());
        auto versions = W().secrets().ListSecretVersionIds(list);
        FUZZ_CHECK(Followed(versions, "ListSecretVersionIds (follow-up)") != nullptr,
                   "an updated secret lists its versions");
        // (A key that does not exist is taken when nothing is to be
        // re-wrapped: it is only used, and refused, at the next write.)
        for (const auto& v : versions->versions()) {
          for (const std::string& arn : v.kms_key_ids()) {
            FUZZ_CHECK(described.ok() && arn == described->key_metadata().arn(),
                       "after a key change the labelled versions are under the new key");
          }
        }
      }));

  sm::UpdateSecretVersionStageRequest stage;
  stage.set_secret_id("fz/db");
  stage.set_version_stage(kCurrent);
  stage.set_remove_from_version_id(kToken2);
  stage.set_move_to_version_id(kToken1);
  sm::UpdateSecretVersionStageRequest stage_custom;
  stage_custom.set_secret_id("fz/db");
  stage_custom.set_version_stage("CUSTOM");
  stage_custom.set_move_to_version_id(kToken1);
  // A rotation worker's finishSecret on the fixture rotation.
  sm::UpdateSecretVersionStageRequest stage_finish;
  stage_finish.set_secret_id("fz/rotating");
  stage_finish.set_version_stage(kCurrent);
  stage_finish.set_remove_from_version_id("fz-token-0000000000000000000000000009");
  stage_finish.set_move_to_version_id("fz-token-0000000000000000000000000010");
  m.push_back(Api<sm::UpdateSecretVersionStageRequest, sm::UpdateSecretVersionStageResponse>(
      "UpdateSecretVersionStage", Scope::kSecret, {stage, stage_custom, stage_finish},
      [](auto& r, const auto& a) { return W().secrets().UpdateSecretVersionStage(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(out.arn(), &d) != nullptr, "the secret exists");
        std::string holder;
        for (const auto& [id, stages] : d.version_ids_to_stages()) {
          for (const auto& s : stages.stages()) {
            if (s == r.version_stage()) holder = id;
          }
        }
        FUZZ_CHECK(holder == r.move_to_version_id(), "the label is where it was moved");
      }));

  sm::DescribeSecretRequest describe;
  describe.set_secret_id("fz/rotating");
  m.push_back(Api<sm::DescribeSecretRequest, sm::DescribeSecretResponse>(
      "DescribeSecret", Scope::kSecret, {describe},
      [](auto& r, const auto& a) { return W().secrets().DescribeSecret(r, a); },
      [](const auto&, const auto& out, const Caller&) {
        CheckEntry(out);
        CheckLabels(out.version_ids_to_stages());
      }));

  sm::ListSecretsRequest list;
  list.set_max_results(3);
  list.set_sort_order(sm::SORT_ORDER_ASC);
  sm::ListSecretsRequest list_filtered;
  list_filtered.set_include_planned_deletion(true);
  auto* list_filter = list_filtered.add_filters();
  list_filter->set_key("tag-key");
  list_filter->add_values("team");
  sm::ListSecretsRequest list_next = list;
  list_next.set_next_token("#next");
  m.push_back(Api<sm::ListSecretsRequest, sm::ListSecretsResponse>(
      "ListSecrets", Scope::kFiltered, {list, list_filtered, list_next},
      [](auto& r, const auto& a) {
        W().ReplaceToken(r.mutable_next_token());
        return W().secrets().ListSecrets(r, a);
      },
      [](const auto& r, const auto& out, const Caller& caller) {
        W().RememberToken(out.next_token());
        const int max = r.max_results() == 0 ? 100 : r.max_results();
        FUZZ_CHECK(out.secret_list_size() <= max, "at most max_results secrets");
        for (const auto& e : out.secret_list()) {
          CheckEntry(e);
          CheckLabels(e.secret_versions_to_stages());
          if (!r.include_planned_deletion()) {
            FUZZ_CHECK(!e.has_deleted_date(), "secrets scheduled for deletion are left out");
          }
          if (caller.kind == Caller::kOutsider) {
            FUZZ_CHECK(HasResourcePolicy(e.arn()), "an outsider sees a secret");
          }
          if (IsApp(caller)) {
            FUZZ_CHECK(AppMayUse(e.name()) || HasResourcePolicy(e.arn()),
                       "the app sees a secret outside fz/");
          }
        }
      }));

  sm::ListSecretVersionIdsRequest versions;
  versions.set_secret_id("fz/db");
  versions.set_include_deprecated(true);
  versions.set_max_results(1);
  sm::ListSecretVersionIdsRequest versions_next = versions;
  versions_next.set_next_token("#next");
  m.push_back(Api<sm::ListSecretVersionIdsRequest, sm::ListSecretVersionIdsResponse>(
      "ListSecretVersionIds", Scope::kSecret, {versions, versions_next},
      [](auto& r, const auto& a) {
        W().ReplaceToken(r.mutable_next_token());
        return W().secrets().ListSecretVersionIds(r, a);
      },
      [](const auto& r, const auto& out, const Caller&) {
        W().RememberToken(out.next_token());
        const int max = r.max_results() == 0 ? 100 : r.max_results();
        FUZZ_CHECK(out.versions_size() <= max, "at most max_results versions");
        std::set<std::string> ids;
        for (const auto& v : out.versions()) {
          FUZZ_CHECK(ids.insert(v.version_id()).second, "each version once");
          if (!r.include_deprecated()) {
            FUZZ_CHECK(!v.version_stages().empty(), "deprecated versions are left out");
          }
        }
      }));

  sm::DeleteSecretRequest remove;
  remove.set_secret_id("fz/db");
  remove.set_recovery_window_in_days(7);
  sm::DeleteSecretRequest remove_now;
  remove_now.set_secret_id("fz/binary");
  remove_now.set_force_delete_without_recovery(true);
  m.push_back(Api<sm::DeleteSecretRequest, sm::DeleteSecretResponse>(
      "DeleteSecret", Scope::kSecret, {remove, remove_now},
      [](auto& r, const auto& a) { return W().secrets().DeleteSecret(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        sm::DescribeSecretRequest request;
        request.set_secret_id(out.arn());
        auto d = W().secrets().DescribeSecret(request);
        CheckAnswer(d.status(), {"trusted"}, "DescribeSecret (follow-up)");
        if (r.force_delete_without_recovery()) {
          FUZZ_CHECK(absl::IsNotFound(d.status()), "a force-deleted secret is gone");
        } else {
          FUZZ_CHECK(d.ok() && d->has_deletion_date() &&
                         d->deletion_date().seconds() == out.deletion_date().seconds(),
                     "a deleted secret is scheduled for deletion at the date answered");
        }
      }));

  sm::RestoreSecretRequest restore;
  restore.set_secret_id("fz/deleted");
  m.push_back(Api<sm::RestoreSecretRequest, sm::RestoreSecretResponse>(
      "RestoreSecret", Scope::kSecret, {restore},
      [](auto& r, const auto& a) { return W().secrets().RestoreSecret(r, a); },
      [](const auto&, const auto& out, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(out.arn(), &d) != nullptr && !d.has_deletion_date(),
                   "a restored secret is not scheduled for deletion");
      }));

  sm::TagResourceRequest tag_resource;
  tag_resource.set_secret_id("fz/db");
  auto* new_tag = tag_resource.add_tags();
  new_tag->set_key("env");
  new_tag->set_value("fuzz");
  m.push_back(Api<sm::TagResourceRequest, sm::TagResourceResponse>(
      "TagResource", Scope::kSecret, {tag_resource},
      [](auto& r, const auto& a) { return W().secrets().TagResource(r, a); },
      [](const auto& r, const auto&, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(r.secret_id(), &d) != nullptr, "a tagged secret exists");
        std::map<std::string, std::string> tags;
        for (const auto& t : d.tags()) tags[t.key()] = t.value();
        std::map<std::string, std::string> wanted;
        for (const auto& t : r.tags()) wanted[t.key()] = t.value();
        for (const auto& [k, v] : wanted) {
          FUZZ_CHECK(tags.count(k) == 1 && tags[k] == v, "a tag just set is there");
        }
      }));

  sm::UntagResourceRequest untag;
  untag.set_secret_id("fz/db");
  untag.add_tag_keys("team");
  m.push_back(Api<sm::UntagResourceRequest, sm::UntagResourceResponse>(
      "UntagResource", Scope::kSecret, {untag},
      [](auto& r, const auto& a) { return W().secrets().UntagResource(r, a); },
      [](const auto& r, const auto&, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(r.secret_id(), &d) != nullptr, "an untagged secret exists");
        for (const auto& t : d.tags()) {
          FUZZ_CHECK(
              std::find(r.tag_keys().begin(), r.tag_keys().end(), t.key()) == r.tag_keys().end(),
              "a tag just removed is gone");
        }
      }));

  sm::GetRandomPasswordRequest password;
  password.set_password_length(20);
  password.set_exclude_characters("abc");
  sm::GetRandomPasswordRequest password_tight;
  password_tight.set_password_length(4);
  password_tight.set_exclude_characters(
      "bcdefghijklmnopqrstuvwxyzBCDEFGHIJKLMNOPQRSTUVWXYZ123456789");
  password_tight.set_include_space(true);
  m.push_back(Api<sm::GetRandomPasswordRequest, sm::GetRandomPasswordResponse>(
      "GetRandomPassword", Scope::kNone, {password, password_tight},
      [](auto& r, const auto& a) { return W().secrets().GetRandomPassword(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        CheckPassword(r, out.random_password());
      }));

  sm::PutResourcePolicyRequest put_policy;
  put_policy.set_secret_id("fz/db");
  put_policy.set_resource_policy(
      R"({"Statement": [{"Effect": "Deny", "Principal": {"Coffer": ["spiffe://x/y"]},)"
      R"( "Action": "secretsmanager:*", "Resource": "*"}]})");
  put_policy.set_block_public_policy(true);
  m.push_back(Api<sm::PutResourcePolicyRequest, sm::PutResourcePolicyResponse>(
      "PutResourcePolicy", Scope::kSecret, {put_policy},
      [](auto& r, const auto& a) { return W().secrets().PutResourcePolicy(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        sm::GetResourcePolicyRequest request;
        request.set_secret_id(out.arn());
        auto got = W().secrets().GetResourcePolicy(request);
        FUZZ_CHECK(Followed(got, "GetResourcePolicy (follow-up)") != nullptr &&
                       got->resource_policy() == r.resource_policy(),
                   "the policy just put is the secret's");
      }));

  sm::GetResourcePolicyRequest get_policy;
  get_policy.set_secret_id("fz/public");
  m.push_back(Api<sm::GetResourcePolicyRequest, sm::GetResourcePolicyResponse>(
      "GetResourcePolicy", Scope::kSecret, {get_policy},
      [](auto& r, const auto& a) { return W().secrets().GetResourcePolicy(r, a); },
      Nothing<sm::GetResourcePolicyRequest, sm::GetResourcePolicyResponse>));

  sm::DeleteResourcePolicyRequest delete_policy;
  delete_policy.set_secret_id("fz/public");
  m.push_back(Api<sm::DeleteResourcePolicyRequest, sm::DeleteResourcePolicyResponse>(
      "DeleteResourcePolicy", Scope::kSecret, {delete_policy},
      [](auto& r, const auto& a) { return W().secrets().DeleteResourcePolicy(r, a); },
      [](const auto&, const auto& out, const Caller&) {
        FUZZ_CHECK(!HasResourcePolicy(out.arn()), "a deleted policy is gone");
      }));

  sm::ValidateResourcePolicyRequest validate;
  validate.set_resource_policy(
      R"({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})");
  m.push_back(Api<sm::ValidateResourcePolicyRequest, sm::ValidateResourcePolicyResponse>(
      "ValidateResourcePolicy", Scope::kSecret, {validate},
      [](auto& r, const auto& a) { return W().secrets().ValidateResourcePolicy(r, a); },
      [](const auto&, const auto& out, const Caller&) {
        FUZZ_CHECK(out.policy_validation_passed() == (out.validation_errors_size() == 0),
                   "passed exactly when there are no validation errors");
        for (const auto& e : out.validation_errors()) {
          FUZZ_CHECK(e.check_name() == "syntax" || e.check_name() == "public_policy",
                     "a validation error names its check");
          FUZZ_CHECK(!e.error_message().empty(), "a validation error says why");
        }
      }));

  sm::RotateSecretRequest rotate;
  rotate.set_secret_id("fz/db");
  rotate.set_rotation_worker("fz-worker");
  rotate.mutable_rotation_rules()->set_schedule_expression("rate(10 days)");
  rotate.mutable_rotation_rules()->set_duration("3h");
  sm::RotateSecretRequest rotate_later;
  rotate_later.set_secret_id("fz/master");
  rotate_later.set_rotation_worker("fz-worker");
  rotate_later.mutable_rotation_rules()->set_schedule_expression("cron(0 4 ? * MON *)");
  rotate_later.set_rotate_immediately(false);
  m.push_back(Api<sm::RotateSecretRequest, sm::RotateSecretResponse>(
      "RotateSecret", Scope::kSecret, {rotate, rotate_later},
      [](auto& r, const auto& a) { return W().rotation().RotateSecret(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(out.arn(), &d) != nullptr && d.rotation_enabled(),
                   "rotation is on after RotateSecret");
        if (!out.version_id().empty()) {
          const auto it = d.version_ids_to_stages().find(out.version_id());
          FUZZ_CHECK(
              it != d.version_ids_to_stages().end() &&
                  std::count(it->second.stages().begin(), it->second.stages().end(), kPending) == 1,
              "the pending version answered carries AWSPENDING");
          FUZZ_CHECK(d.rotation_state().status() == sm::RotationState::STATUS_IN_PROGRESS,
                     "a rotation started now is in progress");
        }
      }));

  sm::CancelRotateSecretRequest cancel;
  cancel.set_secret_id("fz/rotating");
  m.push_back(Api<sm::CancelRotateSecretRequest, sm::CancelRotateSecretResponse>(
      "CancelRotateSecret", Scope::kSecret, {cancel},
      [](auto& r, const auto& a) { return W().rotation().CancelRotateSecret(r, a); },
      [](const auto&, const auto& out, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(out.arn(), &d) != nullptr && !d.rotation_enabled(),
                   "rotation is off after CancelRotateSecret");
      }));

  // WatchSecrets: the request's checks and the filter over recent events.
  sm::WatchSecretsRequest watch;
  watch.set_name_prefix("fz/");
  watch.set_start_after("1");
  m.push_back(MakeMethod<sm::WatchSecretsRequest>(
      "WatchSecrets", {watch}, [](sm::WatchSecretsRequest& r, const Caller& caller) {
        if (!r.start_after().empty()) {
          CheckAnswer(store::ChangeLog::DecodePosition("start_after", r.start_after()).status(),
                      caller, "WatchSecrets start_after");
        }
        auto filter = store::SecretStore::WatchFilter(r, *caller.access);
        CheckAnswer(filter.status(), caller, "WatchSecrets");
        if (!filter.ok()) return;
        store::ChangeLog& log = W().changes();
        uint64_t after = log.Watermark() > 32 ? log.Watermark() - 32 : 0;
        if (log.Oldest() > 0 && after + 1 < log.Oldest()) after = log.Oldest() - 1;
        auto events = log.Read(after, 32);
        if (Followed(events, "ChangeLog::Read") == nullptr) return;
        for (const auto& e : *events) {
          if (!(*filter)(e)) continue;
          FUZZ_CHECK(e.resource_kind() == coffer::v1::RESOURCE_KIND_SECRET &&
                         absl::StartsWith(e.name(), r.name_prefix()),
                     "the filter passes only secrets under the prefix");
          FUZZ_CHECK(caller.kind != Caller::kOutsider, "an outsider watches a secret");
        }
      }));

  rot::ListRotationSchedulesRequest schedules;
  schedules.set_max_results(2);
  rot::ListRotationSchedulesRequest schedule_of;
  schedule_of.set_secret_id("fz/rotating");
  m.push_back(Api<rot::ListRotationSchedulesRequest, rot::ListRotationSchedulesResponse>(
      "ListRotationSchedules", Scope::kSecret, {schedules, schedule_of},
      [](auto& r, const auto& a) {
        W().ReplaceToken(r.mutable_next_token());
        return W().rotation().ListRotationSchedules(r, a);
      },
      [](const auto& r, const auto& out, const Caller&) {
        W().RememberToken(out.next_token());
        const int max = r.max_results() == 0 ? 1000 : r.max_results();
        FUZZ_CHECK(out.schedules_size() <= max, "at most max_results schedules");
        for (const auto& s : out.schedules()) {
          FUZZ_CHECK(!s.name().empty() && !s.secret_arn().empty(), "a schedule names a secret");
        }
      }));

  rot::AcquireRotationLeaseRequest acquire;
  acquire.set_secret_id("fz/rotating");
  acquire.set_holder("fz-rotator");
  acquire.mutable_lease_duration()->set_seconds(60);
  (*acquire.mutable_worker_spiffe_ids())["fz-worker"] = coffer::fuzz::kWorkerPrincipal;
  m.push_back(Api<rot::AcquireRotationLeaseRequest, rot::AcquireRotationLeaseResponse>(
      "AcquireRotationLease", Scope::kSecret, {acquire},
      [](auto& r, const auto& a) { return W().rotation().AcquireRotationLease(r, a); },
      [](const auto& r, const auto& out, const Caller&) {
        FUZZ_CHECK(!out.lease_id().empty() && !out.client_request_token().empty(),
                   "a lease and the pending version");
        W().RememberLease(out.lease_id(), out.client_request_token());
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(out.secret_arn(), &d) != nullptr &&
                       d.rotation_state().status() == sm::RotationState::STATUS_IN_PROGRESS &&
                       d.rotation_state().version_id() == out.client_request_token(),
                   "a leased rotation is in progress on the pending version");
      }));

  rot::RenewRotationLeaseRequest renew;
  renew.set_secret_id("fz/rotating");
  renew.set_lease_id("#lease");
  renew.mutable_lease_duration()->set_seconds(120);
  m.push_back(Api<rot::RenewRotationLeaseRequest, rot::RenewRotationLeaseResponse>(
      "RenewRotationLease", Scope::kSecret, {renew},
      [](auto& r, const auto& a) {
        W().ReplaceLease(r.mutable_lease_id());
        return W().rotation().RenewRotationLease(r, a);
      },
      [](const auto&, const auto& out, const Caller&) {
        FUZZ_CHECK(out.has_lease_expires(), "a renewed lease has an end");
      }));

  rot::RecordRotationProgressRequest progress;
  progress.set_secret_id("fz/rotating");
  progress.set_lease_id("#lease");
  progress.set_step(rot::ROTATION_STEP_CREATE_SECRET);
  progress.set_completed(true);
  rot::RecordRotationProgressRequest failed_step;
  failed_step.set_secret_id("fz/rotating");
  failed_step.set_lease_id("#lease");
  failed_step.set_step(rot::ROTATION_STEP_CREATE_SECRET);
  failed_step.set_error("connection refused");
  m.push_back(Api<rot::RecordRotationProgressRequest, rot::RecordRotationProgressResponse>(
      "RecordRotationProgress", Scope::kSecret, {progress, failed_step},
      [](auto& r, const auto& a) {
        W().ReplaceLease(r.mutable_lease_id());
        return W().rotation().RecordRotationProgress(r, a);
      },
      [](const auto&, const auto& out, const Caller&) {
        FUZZ_CHECK(out.next_step() >= rot::ROTATION_STEP_CREATE_SECRET &&
                       out.next_step() <= rot::ROTATION_STEP_FINISH_SECRET,
                   "the next step is a step");
        FUZZ_CHECK(out.attempts() >= 0, "attempts count up");
      }));

  rot::CompleteRotationRequest complete;
  complete.set_secret_id("fz/rotating");
  complete.set_lease_id("#lease");
  complete.set_error("gave up");
  m.push_back(Api<rot::CompleteRotationRequest, rot::CompleteRotationResponse>(
      "CompleteRotation", Scope::kSecret, {complete},
      [](auto& r, const auto& a) {
        W().ReplaceLease(r.mutable_lease_id());
        return W().rotation().CompleteRotation(r, a);
      },
      [](const auto& r, const auto&, const Caller&) {
        sm::DescribeSecretResponse d;
        FUZZ_CHECK(Describe(r.secret_id(), &d) != nullptr &&
                       d.rotation_state().status() != sm::RotationState::STATUS_IN_PROGRESS,
                   "a completed rotation is no longer in progress");
      }));

  rot::ReleaseRotationLeaseRequest release;
  release.set_secret_id("fz/rotating");
  release.set_lease_id("#lease");
  m.push_back(Api<rot::ReleaseRotationLeaseRequest, rot::ReleaseRotationLeaseResponse>(
      "ReleaseRotationLease", Scope::kSecret, {release},
      [](auto& r, const auto& a) {
        W().ReplaceLease(r.mutable_lease_id());
        return W().rotation().ReleaseRotationLease(r, a);
      },
      Nothing<rot::ReleaseRotationLeaseRequest, rot::ReleaseRotationLeaseResponse>));

  // Time passes (at most 40 days), then the sweepers run.
  google::protobuf::Duration a_day;
  a_day.set_seconds(86400);
  google::protobuf::Duration a_month;
  a_month.set_seconds(31 * 86400);
  m.push_back(MakeMethod<google::protobuf::Duration>(
      "Sweep", {a_day, a_month}, [](google::protobuf::Duration& d, const Caller&) {
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
        {"worker", Caller::kPrincipal, &w.worker(), false, /*rotation_worker=*/true},
        {"rotator", Caller::kPrincipal, &w.rotator()},
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
