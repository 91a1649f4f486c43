// fake_secrets_client.h: an in-memory SecretsClient with the store's
// staging-label rules, minimally (secrets-api.md): versions with or without
// a value, AWSCURRENT/AWSPREVIOUS/AWSPENDING and any other label on at most
// one version, AWSPREVIOUS following AWSCURRENT, placeholders filled by
// PutSecretValue, ResourceNotFoundException / ResourceExistsException /
// InvalidParameterException as the store returns them.
//
//   FakeSecretsClient fake;
//   std::string arn = fake.AddSecret("db/app", R"({"username":"app",...})");
//   fake.StartRotation(arn, token);                     // AWSPENDING placeholder
//   coffer::worker::StepContext ctx{arn, token, fake};
//   fake.FailNext("PutSecretValue", absl::UnavailableError("down"));
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/errors.h"
#include "libs/worker/secrets_client.h"

namespace coffer::worker {

class FakeSecretsClient final : public SecretsClient {
 public:
  struct Version {
    std::optional<std::string> value;
    std::set<std::string> stages;
  };

  // Creates a secret whose first version (AWSCURRENT) holds `value`;
  // returns its ARN.
  std::string AddSecret(const std::string& name, const std::string& value) {
    absl::MutexLock lock(&mu_);
    Secret& s = secrets_[name];
    s.arn = absl::StrCat("arn:coffer:secretsmanager:local:000000000000:secret:", name, "-AbCdEf");
    s.versions[absl::StrCat("initial-version-", name, "-0000000000000000000000")] = {value,
                                                                                     {kAwsCurrent}};
    return s.arn;
  }

  // What the rotator does before the first step: a version `token` without
  // a value, labelled AWSPENDING.
  void StartRotation(const std::string& secret_id, const std::string& token) {
    absl::MutexLock lock(&mu_);
    Secret* s = Find(secret_id);
    for (auto& [id, v] : s->versions) v.stages.erase(kAwsPending);
    s->versions[token] = {std::nullopt, {kAwsPending}};
  }

  // The value with `stage`, or "" when none.
  std::string ValueAt(const std::string& secret_id, const std::string& stage) {
    absl::MutexLock lock(&mu_);
    for (auto& [id, v] : Find(secret_id)->versions) {
      if (v.stages.count(stage)) return v.value.value_or("");
    }
    return "";
  }

  // The version id with `stage`, or "".
  std::string VersionAt(const std::string& secret_id, const std::string& stage) {
    absl::MutexLock lock(&mu_);
    for (auto& [id, v] : Find(secret_id)->versions) {
      if (v.stages.count(stage)) return id;
    }
    return "";
  }

  std::map<std::string, Version> Versions(const std::string& secret_id) {
    absl::MutexLock lock(&mu_);
    return Find(secret_id)->versions;
  }

  // Sets a version's value directly (as another writer would).
  void SetValue(const std::string& secret_id, const std::string& version_id,
                const std::string& value) {
    absl::MutexLock lock(&mu_);
    Find(secret_id)->versions[version_id].value = value;
  }

  // The next call of `method` fails with `status` (once).
  void FailNext(const std::string& method, absl::Status status) {
    absl::MutexLock lock(&mu_);
    failures_[method] = std::move(status);
  }

  // Runs before every PutSecretValue (e.g. to simulate a concurrent writer).
  void OnPut(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    on_put_ = std::move(hook);
  }

  int Calls(const std::string& method) {
    absl::MutexLock lock(&mu_);
    return calls_[method];
  }

  absl::StatusOr<SecretValue> GetSecretValue(const std::string& secret_id,
                                             const std::string& version_id,
                                             const std::string& version_stage) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Enter("GetSecretValue"); !s.ok()) return s;
    Secret* s = Find(secret_id);
    if (s == nullptr) return NoSecret(secret_id);
    const Version* v = nullptr;
    std::string id = version_id;
    if (!version_id.empty()) {
      auto it = s->versions.find(version_id);
      if (it != s->versions.end()) v = &it->second;
      if (v != nullptr && !version_stage.empty() && !v->stages.count(version_stage)) v = nullptr;
    } else {
      const std::string stage = version_stage.empty() ? kAwsCurrent : version_stage;
      for (auto& [vid, ver] : s->versions) {
        if (ver.stages.count(stage)) {
          v = &ver;
          id = vid;
        }
      }
    }
    if (v == nullptr || !v->value.has_value()) {
      return Error(reason::kResourceNotFound,
                   absl::StrCat("Secrets Manager can't find the specified secret value for "
                                "VersionId: ",
                                id),
                   secret_id);
    }
    SecretValue out;
    out.arn = s->arn;
    out.version_id = id;
    out.value = *v->value;
    out.version_stages.assign(v->stages.begin(), v->stages.end());
    return out;
  }

  absl::Status PutSecretValue(const std::string& secret_id, const std::string& token,
                              const std::string& value,
                              const std::vector<std::string>& stages) override {
    std::function<void()> hook;
    {
      absl::MutexLock lock(&mu_);
      hook = on_put_;
    }
    if (hook) hook();
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Enter("PutSecretValue"); !s.ok()) return s;
    Secret* s = Find(secret_id);
    if (s == nullptr) return NoSecret(secret_id);
    auto it = s->versions.find(token);
    if (it != s->versions.end() && it->second.value.has_value()) {
      if (*it->second.value == value) return absl::OkStatus();
      return Error(reason::kResourceExists,
                   "You can't modify an existing version, you can only create new versions.",
                   secret_id);
    }
    std::vector<std::string> wanted = stages;
    if (it != s->versions.end()) {
      if (wanted.empty()) wanted.assign(it->second.stages.begin(), it->second.stages.end());
      it->second.stages.clear();
    } else if (wanted.empty()) {
      wanted = {kAwsCurrent};
    }
    s->versions[token].value = value;
    for (const std::string& stage : wanted) {
      std::string old;
      for (auto& [vid, ver] : s->versions) {
        if (vid != token && ver.stages.erase(stage)) old = vid;
      }
      s->versions[token].stages.insert(stage);
      if (stage == kAwsCurrent && !old.empty()) MoveLabel(*s, kAwsPrevious, old);
    }
    return absl::OkStatus();
  }

  absl::Status UpdateSecretVersionStage(const std::string& secret_id, const std::string& stage,
                                        const std::string& remove_from,
                                        const std::string& move_to) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Enter("UpdateSecretVersionStage"); !s.ok()) return s;
    Secret* s = Find(secret_id);
    if (s == nullptr) return NoSecret(secret_id);
    if (remove_from.empty() && move_to.empty()) {
      return InvalidField("move_to_version_id", "one of move_to or remove_from is required",
                          reason::kInvalidParameter);
    }
    if (stage == kAwsCurrent && move_to.empty()) {
      return InvalidField("move_to_version_id", "AWSCURRENT can only be moved",
                          reason::kInvalidParameter);
    }
    for (const std::string* id : {&remove_from, &move_to}) {
      if (!id->empty() && !s->versions.count(*id)) {
        return Error(reason::kResourceNotFound, absl::StrCat("no version ", *id), secret_id);
      }
    }
    std::string holder;
    for (auto& [vid, ver] : s->versions) {
      if (ver.stages.count(stage)) holder = vid;
    }
    if (!holder.empty() && holder == move_to && (remove_from.empty() || remove_from == holder)) {
      return absl::OkStatus();
    }
    if (!holder.empty() && remove_from != holder) {
      return InvalidField("remove_from_version_id",
                          absl::StrCat("the label ", stage, " is attached to ", holder),
                          reason::kInvalidParameter);
    }
    if (holder.empty() && !remove_from.empty()) {
      return InvalidField("remove_from_version_id",
                          absl::StrCat("the label ", stage, " is not attached to ", remove_from),
                          reason::kInvalidParameter);
    }
    if (!holder.empty()) s->versions[holder].stages.erase(stage);
    if (!move_to.empty()) s->versions[move_to].stages.insert(stage);
    if (stage == kAwsCurrent && !holder.empty()) MoveLabel(*s, kAwsPrevious, holder);
    return absl::OkStatus();
  }

  absl::StatusOr<SecretVersions> DescribeSecret(const std::string& secret_id) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Enter("DescribeSecret"); !s.ok()) return s;
    Secret* s = Find(secret_id);
    if (s == nullptr) return NoSecret(secret_id);
    SecretVersions out;
    out.arn = s->arn;
    for (auto& [vid, ver] : s->versions) {
      if (ver.stages.empty()) continue;
      out.stages_by_version[vid].assign(ver.stages.begin(), ver.stages.end());
    }
    return out;
  }

  absl::StatusOr<std::string> GetRandomPassword(
      const secrets::v1::GetRandomPasswordRequest& request) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Enter("GetRandomPassword"); !s.ok()) return s;
    std::string alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%&()*+,-.:;<=>?[]^_{|}~"
        "\"'/@\\$`";
    if (request.include_space()) alphabet += ' ';
    std::string allowed;
    for (char c : alphabet) {
      if (request.exclude_characters().find(c) == std::string::npos) allowed += c;
    }
    const int64_t length = request.password_length() > 0 ? request.password_length() : 32;
    std::uniform_int_distribution<size_t> pick(0, allowed.size() - 1);
    std::string out;
    for (int64_t i = 0; i < length; ++i) out += allowed[pick(rng_)];
    return out;
  }

 private:
  struct Secret {
    std::string arn;
    std::map<std::string, Version> versions;
  };

  Secret* Find(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& [name, s] : secrets_) {
      if (name == id || s.arn == id) return &s;
    }
    return nullptr;
  }

  static absl::Status NoSecret(const std::string& id) {
    return Error(reason::kResourceNotFound, "Secrets Manager can't find the specified secret.", id);
  }

  static void MoveLabel(Secret& s, const std::string& stage, const std::string& to) {
    for (auto& [vid, ver] : s.versions) ver.stages.erase(stage);
    s.versions[to].stages.insert(stage);
  }

  absl::Status Enter(const std::string& method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++calls_[method];
    auto it = failures_.find(method);
    if (it == failures_.end()) return absl::OkStatus();
    absl::Status s = it->second;
    failures_.erase(it);
    return s;
  }

  absl::Mutex mu_;
  std::map<std::string, Secret> secrets_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_put_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

}  // namespace coffer::worker
