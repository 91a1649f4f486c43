#include "libs/client/parameter_cache.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::client {

namespace pm = ::coffer::params::v1;

namespace {

constexpr char kComponent[] = "client";

// "/a/b:3" -> "/a/b".
std::string BaseName(const std::string& name) {
  const size_t colon = name.find(':');
  return colon == std::string::npos ? name : name.substr(0, colon);
}

// Whether parameter `name` is in the subtree of `path`.
bool Under(const std::string& name, const std::string& path, bool recursive) {
  const std::string prefix = absl::EndsWith(path, "/") ? path : path + "/";
  if (!absl::StartsWith(name, prefix)) return false;
  return recursive || name.find('/', prefix.size()) == std::string::npos;
}

}  // namespace

struct ParameterCache::Entry {
  std::list<std::string>::iterator lru;
  std::string name;  // GetParameter: its base name; subtrees: the path
  bool subtree = false;
  bool recursive = false;
  bool loaded = false;
  std::vector<pm::Parameter> metadata;  // without values
  std::vector<crypto::SecureBuffer> values;
  Freshness fresh;

  std::vector<pm::Parameter> Answer() const {
    std::vector<pm::Parameter> out = metadata;
    for (size_t i = 0; i < out.size(); ++i) out[i].set_value(std::string(values[i].view()));
    return out;
  }
};

ParameterCache::ParameterCache(ParametersClient client, ParameterCacheOptions options)
    : client_(std::move(client)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()) {
  if (options_.push_invalidation) {
    watcher_ = std::make_unique<ChangeWatcher>(
        [this](const std::string& start_after) {
          pm::WatchParametersRequest request;
          request.set_path(options_.watch_path);
          request.set_recursive(true);
          request.set_start_after(start_after);
          return client_.WatchParameters(request);
        },
        [this](const coffer::v1::ChangeEvent& e) { OnChange(e.name()); },
        [this] { InvalidateAll(); }, client_.connection()->options().retry);
  }
}

ParameterCache::~ParameterCache() { watcher_.reset(); }

absl::StatusOr<pm::Parameter> ParameterCache::GetParameter(const std::string& name,
                                                           bool with_decryption) {
  absl::StatusOr<std::vector<pm::Parameter>> got =
      Get(absl::StrCat("p", with_decryption ? "d" : "-", name), BaseName(name), false, false,
          [&]() -> absl::StatusOr<std::vector<pm::Parameter>> {
            pm::GetParameterRequest request;
            request.set_name(name);
            request.set_with_decryption(with_decryption);
            absl::StatusOr<pm::GetParameterResponse> r = client_.GetParameter(request);
            if (!r.ok()) return r.status();
            return std::vector<pm::Parameter>{std::move(*r->mutable_parameter())};
          });
  if (!got.ok()) return got.status();
  return std::move(got->front());
}

absl::StatusOr<std::vector<pm::Parameter>> ParameterCache::GetParametersByPath(
    const std::string& path, bool recursive, bool with_decryption) {
  return Get(absl::StrCat("t", recursive ? "r" : "-", with_decryption ? "d" : "-", path), path,
             true, recursive, [&]() -> absl::StatusOr<std::vector<pm::Parameter>> {
               std::vector<pm::Parameter> all;
               pm::GetParametersByPathRequest request;
               request.set_path(path);
               request.set_recursive(recursive);
               request.set_with_decryption(with_decryption);
               do {
                 absl::StatusOr<pm::GetParametersByPathResponse> page =
                     client_.GetParametersByPath(request);
                 if (!page.ok()) return page.status();
                 for (pm::Parameter& p : *page->mutable_parameters()) {
                   all.push_back(std::move(p));
                 }
                 request.set_next_token(page->next_token());
               } while (!request.next_token().empty());
               return all;
             });
}

absl::StatusOr<std::vector<pm::Parameter>> ParameterCache::Get(const std::string& key,
                                                               const std::string& name,
                                                               bool subtree, bool recursive,
                                                               const Fetch& fetch) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = entries_.try_emplace(key);
    if (inserted) {
      it->second = std::make_unique<Entry>();
      it->second->name = name;
      it->second->subtree = subtree;
      it->second->recursive = recursive;
      lru_.push_front(key);
      it->second->lru = lru_.begin();
      while (entries_.size() > std::max<size_t>(1, options_.max_entries)) {
        const std::string victim = lru_.back();
        lru_.pop_back();
        entries_.erase(victim);
        ++stats_.evictions;
      }
    } else {
      lru_.splice(lru_.begin(), lru_, it->second->lru);
    }
    Entry& e = *it->second;
    const absl::Time now = clock_->Now();
    if (e.loaded && e.fresh.Fresh(now)) {
      ++stats_.hits;
      return e.Answer();
    }
    if (e.fresh.BackingOff(now)) {
      if (!e.loaded) return e.fresh.last_error;
      ++stats_.stale_served;
      return e.Answer();
    }
    ++stats_.misses;
    generation = e.fresh.generation;
  }
  absl::StatusOr<std::vector<pm::Parameter>> fetched = fetch();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (!fetched.ok()) {
    ++stats_.refresh_failures;
    if (it == entries_.end()) return fetched.status();
    Entry& e = *it->second;
    if (!IsTransient(fetched.status())) {  // an answer (gone, denied): drop the entry
      lru_.erase(e.lru);
      entries_.erase(it);
      return fetched.status();
    }
    e.fresh.Failed(clock_->Now(), options_.refresh_backoff, options_.ttl, fetched.status());
    log::Warn(kComponent, "parameter refresh failed; serving what is cached",
              {{"name", name}, {"error", fetched.status().ToString()}});
    if (!e.loaded) return fetched.status();
    ++stats_.stale_served;
    return e.Answer();
  }
  // Keep the values in guarded memory and wipe the copies that came in.
  std::vector<crypto::SecureBuffer> values;
  values.reserve(fetched->size());
  for (pm::Parameter& p : *fetched) {
    values.push_back(crypto::SecureBuffer::Copy(p.value()));
    if (!p.value().empty()) crypto::Wipe(p.mutable_value()->data(), p.value().size());
    p.clear_value();
  }
  if (it == entries_.end()) {  // evicted meanwhile: answer without caching
    std::vector<pm::Parameter> out = *std::move(fetched);
    for (size_t i = 0; i < out.size(); ++i) out[i].set_value(std::string(values[i].view()));
    return out;
  }
  Entry& e = *it->second;
  e.metadata = *std::move(fetched);
  e.values = std::move(values);
  e.loaded = true;
  e.fresh.Refreshed(clock_->Now(), options_.ttl, generation);
  return e.Answer();
}

void ParameterCache::Invalidate(const std::string& name) { OnChange(name); }

void ParameterCache::OnChange(const std::string& name) {
  absl::MutexLock lock(&mu_);
  for (auto& [key, e] : entries_) {
    const bool hit = e->subtree ? Under(name, e->name, e->recursive) : e->name == name;
    if (!hit) continue;
    e->fresh.Invalidate(/*retry_now=*/true);
    ++stats_.invalidations;
  }
}

void ParameterCache::InvalidateAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, e] : entries_) e->fresh.Invalidate(/*retry_now=*/false);
}

ParameterCacheStats ParameterCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace coffer::client
