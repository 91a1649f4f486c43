// policy.h: Coffer's policy language, compiled once, evaluated per call.
//
// An identity policy file (the operator's, reloadable) and a secret's
// resource policy (PutResourcePolicy) are both lists of statements:
//
//   {"statements": [
//     {"sid": "catagram-reads",
//      "effect": "Allow",
//      "principals": ["spiffe://coffer.local/app/catagram"],
//      "actions": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
//      "resources": ["demo/catagram/*"]},
//     {"effect": "Deny", "principals": ["*"], "actions": ["kms:Decrypt"], "resources": ["*"],
//      "condition": {"StringLike": {"kms:EncryptionContext:SecretARN": "*"}}}]}
//
// Resource policies use AWS's spelling ({"Version": ..., "Statement": [{
// "Effect", "Principal": "*" | {"Coffer"|"AWS": [...]}, "Action",
// "Resource", "Condition"}]}). Globs: `*` any run of characters, `?` one.
// Actions match case-insensitively (as AWS's); principals (SPIFFE IDs) and
// resources (names and ARNs) exactly. A statement applies when the principal,
// the action, one of the request's resources and every condition match.
// Default deny; an explicit deny wins over any allow.
//
//   COFFER_ASSIGN_OR_RETURN(Policy policy, Policy::Parse(text, Policy::kIdentity));
//   Request req{"spiffe://coffer.local/app/catagram", "secretsmanager:GetSecretValue",
//               {arn, name}};
//   if (policy.Evaluate(req) == Decision::kAllow) ...
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace coffer::authz {

// A compiled `*`/`?` pattern.
class Glob {
 public:
  explicit Glob(std::string pattern, bool ignore_case = false);
  bool Matches(absl::string_view text) const;
  const std::string& pattern() const { return pattern_; }
  // True for "*" alone: matches everything.
  bool matches_all() const { return matches_all_; }

 private:
  std::string pattern_;
  bool ignore_case_;
  bool literal_;  // no wildcard: plain comparison
  bool matches_all_;
};

// An encryption context (or any string map a condition can test).
using Context = std::map<std::string, std::string, std::less<>>;

struct Request {
  absl::string_view principal;  // the caller's SPIFFE ID
  absl::string_view action;     // "secretsmanager:GetSecretValue"
  // The names the resource goes by (a secret's ARN and name; a key's ARN and
  // alias); a statement's resource glob may match any of them.
  absl::Span<const absl::string_view> resources;
  const Context* context = nullptr;  // KMS encryption context, if any
};

enum class Decision {
  kImplicitDeny,  // no statement allows it (default deny)
  kAllow,
  kExplicitDeny,  // a Deny statement matches
};

class Policy {
 public:
  enum Dialect {
    kIdentity,  // the operator's policy file: lower-case members
    kResource,  // a secret's resource policy: AWS's member names
  };

  // INVALID_ARGUMENT naming the line and the field on any error
  // ("line 7: statements[1].actions[0]: must be <service>:<operation>").
  static absl::StatusOr<Policy> Parse(absl::string_view text, Dialect dialect);

  Decision Evaluate(const Request& request) const;

  // True when some Allow statement's principal is "*" (grants everyone with
  // a certificate from the CA): ValidateResourcePolicy and
  // BlockPublicPolicy report it.
  bool GrantsEveryone() const;

  size_t statement_count() const { return statements_.size(); }

 private:
  struct Condition {
    bool like = false;  // StringLike (globs) or StringEquals
    std::string context_key;
    std::vector<Glob> values;  // any of them
  };
  struct Statement {
    bool allow = false;
    std::vector<Glob> principals;
    std::vector<Glob> actions;
    std::vector<Glob> resources;
    std::vector<Condition> conditions;
  };
  static bool Applies(const Statement& s, const Request& request);

  std::vector<Statement> statements_;
};

// Combines an identity decision and a resource-policy decision: any explicit
// deny denies, then any allow allows.
Decision Combine(Decision identity, Decision resource);

}  // namespace coffer::authz
