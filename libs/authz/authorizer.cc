#include "libs/authz/authorizer.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"

namespace coffer::authz {
namespace {

// Resource policies cached by text; a bound so that a hostile stream of
// distinct policies cannot grow the cache (it is simply emptied).
constexpr size_t kResourcePolicyCacheSize = 4096;

}  // namespace

Authorizer::Authorizer(Policy policy) {
  absl::MutexLock lock(&mu_);
  policy_ = std::make_shared<const Policy>(std::move(policy));
  generation_ = 1;
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromFile(const std::string& path) {
  std::unique_ptr<Authorizer> a(new Authorizer());
  a->path_ = path;
  if (absl::Status s = a->Reload(); !s.ok()) return s;
  return a;
}

absl::Status Authorizer::Reload() {
  if (path_.empty()) return absl::OkStatus();
  absl::MutexLock reload(&reload_mu_);
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("policy file ", path_, ": cannot be read"));
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("policy file ", path_, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  FileStamp stamp{st.st_size, st.st_mtim, st.st_ino};
  auto parsed = Policy::Parse(text.str(), Policy::kIdentity);
  if (!parsed.ok()) {
    {
      // Remember the stamp so that a broken file is reported once, not
      // every second; the previous policy stays in force.
      absl::MutexLock lock(&mu_);
      stamp_ = stamp;
    }
    absl::Status error = absl::InvalidArgumentError(
        absl::StrCat("policy file ", path_, ": ", parsed.status().message()));
    log::Error("authz", "policy not loaded; the previous policy stays in force",
               {{"error", std::string(error.message())}});
    return error;
  }
  auto policy = std::make_shared<const Policy>(std::move(parsed).value());
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    policy_ = std::move(policy);
    stamp_ = stamp;
    generation = ++generation_;
  }
  log::Info("authz", "policy loaded",
            {{"file", path_},
             {"statements", absl::StrCat(this->policy()->statement_count())},
             {"generation", absl::StrCat(generation)}});
  return absl::OkStatus();
}

bool Authorizer::ReloadIfChanged() {
  if (path_.empty()) return false;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return false;
  FileStamp stamp{st.st_size, st.st_mtim, st.st_ino};
  {
    absl::MutexLock lock(&mu_);
    if (stamp == stamp_) return false;
  }
  return Reload().ok();
}

uint64_t Authorizer::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

std::shared_ptr<const Policy> Authorizer::policy() const {
  absl::MutexLock lock(&mu_);
  return policy_;
}

absl::StatusOr<std::shared_ptr<const Policy>> Authorizer::ResourcePolicy(
    absl::string_view text) const {
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = resource_policies_.find(text);
    if (it != resource_policies_.end()) return it->second;
  }
  auto parsed = Policy::Parse(text, Policy::kResource);
  if (!parsed.ok()) return parsed.status();
  auto policy = std::make_shared<const Policy>(std::move(parsed).value());
  absl::MutexLock lock(&cache_mu_);
  if (resource_policies_.size() >= kResourcePolicyCacheSize) resource_policies_.clear();
  resource_policies_.emplace(std::string(text), policy);
  return policy;
}

Decision Authorizer::Evaluate(const Request& request, absl::string_view resource_policy) const {
  Decision identity = policy()->Evaluate(request);
  if (resource_policy.empty() || identity == Decision::kExplicitDeny) return identity;
  auto rp = ResourcePolicy(resource_policy);
  if (!rp.ok()) return Decision::kExplicitDeny;  // never allow through a broken policy
  return Combine(identity, (*rp)->Evaluate(request));
}

const Access& Access::Trusted() {
  static const Access* trusted = new Access();
  return *trusted;
}

Decision Access::Decide(absl::string_view action, const Resource& resource, const Context* context,
                        absl::string_view resource_policy) const {
  absl::string_view names[3];
  size_t n = 0;
  for (absl::string_view r : {resource.id, resource.arn, resource.name}) {
    if (!r.empty()) names[n++] = r;
  }
  Request request{principal_, action, absl::MakeConstSpan(names, n), context};
  return authorizer_->Evaluate(request, resource_policy);
}

absl::Status Access::Check(absl::string_view action, const Resource& resource,
                           const Context* context, absl::string_view resource_policy) const {
  set_resource(resource.arn.empty() ? resource.id : resource.arn);
  if (trusted()) return absl::OkStatus();
  if (Decide(action, resource, context, resource_policy) == Decision::kAllow) {
    return absl::OkStatus();
  }
  return AccessDenied(principal_, action, resource.id);
}

bool Access::Allows(absl::string_view action, const Resource& resource, const Context* context,
                    absl::string_view resource_policy) const {
  return trusted() || Decide(action, resource, context, resource_policy) == Decision::kAllow;
}

absl::Status AccessDenied(absl::string_view principal, absl::string_view action,
                          absl::string_view resource, absl::string_view why) {
  return Error(reason::kAccessDenied,
               absl::StrCat(principal.empty() ? "an unidentified caller" : principal,
                            " is not authorized to perform ", action, " on ", resource,
                            why.empty() ? "" : absl::StrCat(": ", why)),
               resource);
}

}  // namespace coffer::authz
