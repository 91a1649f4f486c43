// authorizer.h: who may do what, decided on every call.
//
// An Authorizer holds the operator's identity policy (policy.h), compiled
// once and swapped atomically when the file changes (ReloadIfChanged, run
// every second by the service) or on SIGHUP (Reload): calls in flight keep
// the policy they started with, none is dropped, and a file with an error
// leaves the previous policy in force (the error is logged with its line and
// field). Secrets' resource policies are compiled on first use and cached by
// their text.
//
// Library code never sees gRPC: a handler builds one Access per call from
// the caller's SPIFFE ID and passes it down; the library calls Check with
// the resource once it knows it (a secret's ARN is known only after its id
// is resolved):
//
//   authz::Access access(&authorizer, caller_spiffe_id);
//   COFFER_RETURN_IF_ERROR(access.Check("secretsmanager:GetSecretValue",
//                                       {request.secret_id(), record.arn(), record.name()},
//                                       nullptr, record.resource_policy()));
//
// A denial is PERMISSION_DENIED (AccessDeniedException) naming the caller,
// the action and the resource as the caller named it, never the policy
// (the service's call gate counts and audits it).
// Access::Trusted() is for in-process callers (tests, sweepers): it allows
// everything and is never built from a network call.
//
// Thread-safe (Access: one per call, used by one thread at a time).
#pragma once

#include <sys/stat.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/authz/policy.h"

namespace coffer::authz {

class Authorizer {
 public:
  // A fixed policy (tests, embedded use).
  explicit Authorizer(Policy policy);
  // The identity policy in `path`; INVALID_ARGUMENT naming the file, line
  // and field when it does not parse, NOT_FOUND when it is missing.
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromFile(const std::string& path);

  // Re-reads the file (no-op for a fixed policy). On error the old policy
  // stays and the error is returned (and logged).
  absl::Status Reload();
  // Reload() when the file's size, mtime or inode changed since the last
  // load; true when a new policy was installed.
  bool ReloadIfChanged();
  // How many policies were installed (1 after construction).
  uint64_t generation() const;

  // The identity policy's decision combined with the resource policy's
  // (`resource_policy` is the stored JSON text, "" = none; an unparsable
  // stored policy denies, it never allows).
  Decision Evaluate(const Request& request, absl::string_view resource_policy = "") const;

 private:
  Authorizer() = default;
  std::shared_ptr<const Policy> policy() const;
  absl::StatusOr<std::shared_ptr<const Policy>> ResourcePolicy(absl::string_view text) const;

  std::string path_;  // "" for a fixed policy
  mutable absl::Mutex mu_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mu_);
  struct FileStamp {
    off_t size = -1;
    struct timespec mtime {};
    ino_t inode = 0;
    bool operator==(const FileStamp& o) const {
      return size == o.size && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
             inode == o.inode;
    }
  };
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex reload_mu_;  // one reload at a time

  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const Policy>> resource_policies_
      ABSL_GUARDED_BY(cache_mu_);
};

// How a resource is named in one check.
struct Resource {
  Resource(absl::string_view id) : id(id) {}   // NOLINT: a bare id converts
  Resource(const std::string& id) : id(id) {}  // NOLINT
  Resource(const char* id) : id(id) {}         // NOLINT
  Resource(absl::string_view id, absl::string_view arn, absl::string_view name)
      : id(id), arn(arn), name(name) {}
  absl::string_view id;    // as the caller named it (in messages); may equal arn or name
  absl::string_view arn;   // canonical name (in the audit record); "" when unknown
  absl::string_view name;  // "" when unknown
};

class Access {
 public:
  // `authorizer` is not owned and must outlive the Access.
  Access(const Authorizer* authorizer, std::string principal)
      : authorizer_(authorizer), principal_(std::move(principal)) {}
  // Everything allowed: in-process callers only.
  static const Access& Trusted();

  // OK or PERMISSION_DENIED (AccessDeniedException); records the resource
  // for the audit record.
  absl::Status Check(absl::string_view action, const Resource& resource,
                     const Context* context = nullptr,
                     absl::string_view resource_policy = "") const;
  // The same decision without recording or counting: for filtering lists
  // and watch streams.
  bool Allows(absl::string_view action, const Resource& resource, const Context* context = nullptr,
              absl::string_view resource_policy = "") const;

  bool trusted() const { return authorizer_ == nullptr; }
  const std::string& principal() const { return principal_; }
  // The resource of the last Check (its ARN when known), for the audit log.
  // Not recorded for Trusted(): that one object is shared by every
  // in-process caller at once, and nothing audits it.
  const std::string& resource() const { return resource_; }
  void set_resource(absl::string_view resource) const {
    if (!trusted()) resource_ = std::string(resource);
  }
  // The rotation a rotation worker says it acts for (the token the rotator
  // passed it, sent as `coffer-rotation-token` metadata); "" otherwise.
  const std::string& rotation_token() const { return rotation_token_; }
  void set_rotation_token(std::string token) { rotation_token_ = std::move(token); }

 private:
  Access() = default;
  Decision Decide(absl::string_view action, const Resource& resource, const Context* context,
                  absl::string_view resource_policy) const;

  const Authorizer* authorizer_ = nullptr;
  std::string principal_;
  mutable std::string resource_;
  std::string rotation_token_;
};

// The metadata key of Access::rotation_token.
inline constexpr char kRotationTokenMetadata[] = "coffer-rotation-token";

// PERMISSION_DENIED (AccessDeniedException) for `principal` doing `action`
// on `resource`; for denials decided outside policies (built-in rules).
absl::Status AccessDenied(absl::string_view principal, absl::string_view action,
                          absl::string_view resource, absl::string_view why = "");

}  // namespace coffer::authz
