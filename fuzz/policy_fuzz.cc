// policy_fuzz: Policy::Parse in both dialects on arbitrary text; a policy
// that parses is evaluated against fixed requests. Properties: every error
// is INVALID_ARGUMENT naming a line; an input holding a NUL byte is also
// read as "<glob pattern>\0<text>" and Glob::Matches is compared with a
// plain dynamic-programming matcher.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "fuzz/fuzz_check.h"
#include "libs/authz/policy.h"

namespace {

using coffer::authz::Context;
using coffer::authz::Decision;
using coffer::authz::Glob;
using coffer::authz::Policy;
using coffer::authz::Request;

constexpr char kArn[] =
    "arn:coffer:secretsmanager:local:000000000000:secret:demo/catagram/db-Ab3xQ9";

bool ValidDecision(Decision d) {
  return d == Decision::kImplicitDeny || d == Decision::kAllow || d == Decision::kExplicitDeny;
}

void Evaluate(const Policy& policy) {
  static const Context* const kContext =
      new Context{{"SecretARN", kArn}, {"app", "orders"}, {"", ""}};
  const absl::string_view resources[] = {kArn, "demo/catagram/db"};
  const absl::string_view key_resources[] = {
      "arn:coffer:kms:local:000000000000:key/e5674858-0000-4000-8000-000000000000",
      "alias/coffer/secretsmanager"};
  const Request requests[] = {
      {"spiffe://coffer.local/app/catagram", "secretsmanager:GetSecretValue", resources, nullptr},
      {"spiffe://coffer.local/app/catagram", "SecretsManager:getsecretvalue", resources, kContext},
      {"spiffe://coffer.local/store", "kms:Decrypt", key_resources, kContext},
      {"spiffe://coffer.local/rotator", "rotation:Step", {}, nullptr},
      {"", "", {}, kContext},
  };
  for (const Request& r : requests) {
    Decision d = policy.Evaluate(r);
    FUZZ_CHECK(ValidDecision(d), "Evaluate");
    FUZZ_CHECK(coffer::authz::Combine(d, Decision::kImplicitDeny) == d, "Combine identity");
    FUZZ_CHECK(coffer::authz::Combine(Decision::kExplicitDeny, d) == Decision::kExplicitDeny,
               "deny wins");
  }
  (void)policy.GrantsEveryone();
}

// `*` any run, `?` one character; O(n*m).
bool ReferenceMatch(std::string p, std::string t, bool ignore_case) {
  if (ignore_case) {
    absl::AsciiStrToLower(&p);
    absl::AsciiStrToLower(&t);
  }
  // row[j]: p[0..i) matches t[0..j)
  std::vector<char> row(t.size() + 1, 0), next(t.size() + 1, 0);
  row[0] = 1;
  for (size_t i = 0; i < p.size(); ++i) {
    next.assign(t.size() + 1, 0);
    if (p[i] == '*') {
      next[0] = row[0];
      for (size_t j = 1; j <= t.size(); ++j) next[j] = row[j] || next[j - 1];
    } else {
      for (size_t j = 1; j <= t.size(); ++j) {
        next[j] = row[j - 1] && (p[i] == '?' || p[i] == t[j - 1]);
      }
    }
    row.swap(next);
  }
  return row[t.size()] != 0;
}

void CheckGlob(absl::string_view pattern, absl::string_view text) {
  if (pattern.size() > 256 || text.size() > 256) return;
  for (bool ignore_case : {false, true}) {
    Glob glob{std::string(pattern), ignore_case};
    bool got = glob.Matches(text);
    bool want = ReferenceMatch(std::string(pattern), std::string(text), ignore_case);
    FUZZ_CHECK(got == want, "Glob::Matches disagrees with the reference matcher");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text = coffer::fuzz::AsText(data, size);
  for (Policy::Dialect dialect : {Policy::kIdentity, Policy::kResource}) {
    absl::StatusOr<Policy> policy = Policy::Parse(text, dialect);
    if (policy.ok()) {
      Evaluate(*policy);
    } else {
      FUZZ_CHECK(absl::IsInvalidArgument(policy.status()), "Parse error code");
      FUZZ_CHECK(absl::StartsWith(policy.status().message(), "line "), "Parse error names a line");
    }
  }
  if (size_t nul = text.find('\0'); nul != absl::string_view::npos) {
    CheckGlob(text.substr(0, nul), text.substr(nul + 1));
  }
  return 0;
}
