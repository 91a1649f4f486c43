#include "libs/client/secret_cache.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::client {

namespace sm = ::coffer::secrets::v1;

namespace {

constexpr char kComponent[] = "client";

void Wipe(std::string* s) {
  if (!s->empty()) crypto::Wipe(s->data(), s->size());
  s->clear();
}

}  // namespace

struct SecretCache::Version {
  sm::GetSecretValueResponse metadata;  // without the value
  bool binary = false;
  crypto::SecureBuffer value;
};

struct SecretCache::Entry {
  Lru::iterator lru;
  bool described = false;
  std::string name;                                  // from DescribeSecret: what change events name
  std::map<std::string, std::string> stage_version;  // stage -> version id
  std::map<std::string, std::shared_ptr<const Version>> versions;
  Freshness fresh;

  std::shared_ptr<const Version> At(const std::string& stage) const {
    auto s = stage_version.find(stage);
    if (s == stage_version.end()) return nullptr;
    auto v = versions.find(s->second);
    return v == versions.end() ? nullptr : v->second;
  }
};

SecretCache::SecretCache(SecretsClient client, SecretCacheOptions options)
    : client_(std::move(client)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()) {
  if (options_.push_invalidation) {
    watcher_ = std::make_unique<ChangeWatcher>(
        [this](const std::string& start_after) {
          sm::WatchSecretsRequest request;
          request.set_name_prefix(options_.watch_name_prefix);
          request.set_start_after(start_after);
          return client_.WatchSecrets(request);
        },
        [this](const coffer::v1::ChangeEvent& e) { OnChange(e); }, [this] { InvalidateAll(); },
        client_.connection()->options().retry);
  }
}

SecretCache::~SecretCache() { watcher_.reset(); }

SecretCache::Entry& SecretCache::Touch(const std::string& secret_id) {
  auto [it, inserted] = entries_.try_emplace(secret_id);
  if (inserted) {
    it->second = std::make_unique<Entry>();
    lru_.push_front(secret_id);
    it->second->lru = lru_.begin();
    while (entries_.size() > std::max<size_t>(1, options_.max_entries)) {
      const std::string victim = lru_.back();  // never the one just added
      lru_.pop_back();
      entries_.erase(victim);  // its values are wiped as they go
      ++stats_.evictions;
    }
  } else {
    lru_.splice(lru_.begin(), lru_, it->second->lru);
  }
  return *it->second;
}

absl::StatusOr<sm::GetSecretValueResponse> SecretCache::GetSecretValue(
    const std::string& secret_id, const std::string& version_stage) {
  const std::string stage = version_stage.empty() ? options_.default_version_stage : version_stage;
  // The version's labels are those of the version map read last.
  auto answer = [](const Entry& e, const Version& v) {
    sm::GetSecretValueResponse r = v.metadata;
    r.clear_version_stages();
    for (const auto& [s, id] : e.stage_version) {
      if (id == r.version_id()) r.add_version_stages(s);
    }
    if (v.binary) {
      r.set_secret_binary(std::string(v.value.view()));
    } else {
      r.set_secret_string(std::string(v.value.view()));
    }
    return r;
  };
  {
    absl::MutexLock lock(&mu_);
    Entry& e = Touch(secret_id);
    const absl::Time now = clock_->Now();
    std::shared_ptr<const Version> cached = e.At(stage);
    if (cached != nullptr && e.described && e.fresh.Fresh(now)) {
      ++stats_.hits;
      return answer(e, *cached);
    }
    if (e.fresh.BackingOff(now)) {  // after a failed refresh
      if (cached == nullptr) return e.fresh.last_error;
      ++stats_.stale_served;
      return answer(e, *cached);
    }
    ++stats_.misses;
  }
  const absl::Status refreshed = Refresh(secret_id, stage);
  absl::MutexLock lock(&mu_);
  Entry& e = Touch(secret_id);
  std::shared_ptr<const Version> cached = e.At(stage);
  if (refreshed.ok()) {
    if (cached != nullptr) return answer(e, *cached);
    return ErrorWithCode(absl::StatusCode::kNotFound, "ResourceNotFoundException",
                         absl::StrCat("the secret has no version with the staging label ", stage),
                         secret_id);
  }
  if (cached == nullptr || !IsTransient(refreshed)) return refreshed;
  ++stats_.stale_served;
  return answer(e, *cached);
}

absl::StatusOr<sm::GetSecretValueResponse> SecretCache::GetSecretVersion(
    const std::string& secret_id, const std::string& version_id, const std::string& version_stage) {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(secret_id);
    if (it != entries_.end()) {
      const Entry& e = *it->second;
      auto v = e.versions.find(version_id);
      auto s = e.stage_version.find(version_stage);
      const bool stage_ok =
          version_stage.empty() || (s != e.stage_version.end() && s->second == version_id);
      if (v != e.versions.end() && stage_ok && e.described && e.fresh.Fresh(clock_->Now())) {
        ++stats_.hits;
        sm::GetSecretValueResponse r = v->second->metadata;
        r.clear_version_stages();
        for (const auto& [stage, id] : e.stage_version) {
          if (id == version_id) r.add_version_stages(stage);
        }
        if (v->second->binary) {
          r.set_secret_binary(std::string(v->second->value.view()));
        } else {
          r.set_secret_string(std::string(v->second->value.view()));
        }
        return r;
      }
    }
    ++stats_.misses;
  }
  sm::GetSecretValueRequest get;
  get.set_secret_id(secret_id);
  get.set_version_id(version_id);
  get.set_version_stage(version_stage);
  return client_.GetSecretValue(get);
}

absl::StatusOr<std::string> SecretCache::GetSecretString(const std::string& secret_id,
                                                         const std::string& version_stage) {
  absl::StatusOr<sm::GetSecretValueResponse> v = GetSecretValue(secret_id, version_stage);
  if (!v.ok()) return v.status();
  if (!v->has_secret_string()) {
    return absl::FailedPreconditionError(absl::StrCat(secret_id, " holds a binary value"));
  }
  return std::move(*v->mutable_secret_string());
}

absl::StatusOr<std::string> SecretCache::GetSecretBinary(const std::string& secret_id,
                                                         const std::string& version_stage) {
  absl::StatusOr<sm::GetSecretValueResponse> v = GetSecretValue(secret_id, version_stage);
  if (!v.ok()) return v.status();
  if (!v->has_secret_binary()) {
    return absl::FailedPreconditionError(absl::StrCat(secret_id, " holds a string value"));
  }
  return std::move(*v->mutable_secret_binary());
}

absl::Status SecretCache::RefreshNow(const std::string& secret_id) {
  {
    absl::MutexLock lock(&mu_);
    ++stats_.misses;
  }
  return Refresh(secret_id, options_.default_version_stage);
}

absl::Status SecretCache::Refresh(const std::string& secret_id, const std::string& stage) {
  uint64_t generation;
  std::set<std::string> cached_versions;
  {
    absl::MutexLock lock(&mu_);
    Entry& e = Touch(secret_id);
    generation = e.fresh.generation;
    for (const auto& [id, v] : e.versions) cached_versions.insert(id);
  }
  auto failed = [&](absl::Status s) {
    absl::MutexLock lock(&mu_);
    ++stats_.refresh_failures;
    auto it = entries_.find(secret_id);
    if (it == entries_.end()) return s;
    if (!IsTransient(s)) {
      // An answer about the secret (gone, denied): nothing cached stays.
      lru_.erase(it->second->lru);
      entries_.erase(it);
      return s;
    }
    Entry& e = *it->second;
    e.fresh.Failed(clock_->Now(), options_.refresh_backoff, options_.ttl, s);
    log::Warn(kComponent, "secret refresh failed; what is cached is served until a retry works",
              {{"secret_id", secret_id}, {"error", s.ToString()}});
    return s;
  };

  sm::DescribeSecretRequest describe;
  describe.set_secret_id(secret_id);
  absl::StatusOr<sm::DescribeSecretResponse> described = client_.DescribeSecret(describe);
  if (!described.ok()) return failed(described.status());
  std::map<std::string, std::string> stage_version;
  for (const auto& [version, stages] : described->version_ids_to_stages()) {
    for (const std::string& s : stages.stages()) stage_version[s] = version;
  }
  // Fetch the asked stage's version if it is new (other stages' versions
  // are fetched when asked for).
  std::shared_ptr<Version> fetched;
  auto want = stage_version.find(stage);
  if (want != stage_version.end() && !cached_versions.count(want->second)) {
    sm::GetSecretValueRequest get;
    get.set_secret_id(secret_id);
    get.set_version_id(want->second);
    absl::StatusOr<sm::GetSecretValueResponse> got = client_.GetSecretValue(get);
    if (!got.ok()) return failed(got.status());
    fetched = std::make_shared<Version>();
    fetched->binary = got->has_secret_binary();
    std::string* plain =
        fetched->binary ? got->mutable_secret_binary() : got->mutable_secret_string();
    fetched->value = crypto::SecureBuffer::Copy(*plain);
    Wipe(plain);
    got->clear_secret_binary();
    got->clear_secret_string();
    fetched->metadata = *std::move(got);
  }

  absl::MutexLock lock(&mu_);
  Entry& e = Touch(secret_id);
  e.described = true;
  e.name = described->name();
  e.stage_version = std::move(stage_version);
  if (fetched != nullptr) e.versions[fetched->metadata.version_id()] = fetched;
  // Keep only versions some stage still points at; the rest are wiped.
  std::set<std::string> live;
  for (const auto& [s, v] : e.stage_version) live.insert(v);
  for (auto it = e.versions.begin(); it != e.versions.end();) {
    it = live.count(it->first) ? std::next(it) : e.versions.erase(it);
  }
  e.fresh.Refreshed(clock_->Now(), options_.ttl, generation);
  return absl::OkStatus();
}

void SecretCache::OnChange(const coffer::v1::ChangeEvent& event) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, e] : entries_) {
    if (e->name == event.name() || id == event.name()) {
      e->fresh.Invalidate(/*retry_now=*/true);  // even while backing off
      ++stats_.invalidations;
    }
  }
}

void SecretCache::InvalidateAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, e] : entries_) e->fresh.Invalidate(/*retry_now=*/false);
}

SecretCacheStats SecretCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace coffer::client
