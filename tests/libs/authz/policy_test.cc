#include "libs/authz/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace coffer::authz {
namespace {

using ::testing::HasSubstr;

TEST(GlobTest, Matching) {
  struct Case {
    const char* pattern;
    const char* text;
    bool match;
  } cases[] = {
      {"*", "", true},
      {"*", "anything/at/all", true},
      {"demo/catagram/*", "demo/catagram/db", true},
      {"demo/catagram/*", "demo/catagram/", true},
      {"demo/catagram/*", "demo/catagram", false},
      {"demo/catagram/*", "demo/other/db", false},
      {"demo/*/db", "demo/catagram/db", true},
      {"demo/*/db", "demo/catagram/cache", false},
      {"a?c", "abc", true},
      {"a?c", "ac", false},
      {"*a*b*c*", "xxaxxbxxcxx", true},
      {"*a*b*c*", "xxaxxcxxbxx", false},
      {"exact", "exact", true},
      // A '*' in the text is an ordinary character (found by policy_fuzz).
      {"x*", "x*y", true},
      {"a*b", "a*xb", true},
      {"arn:*", "arn:*x", true},
      {"exact", "exactly", false},
      {"exact", "Exact", false},
      {"spiffe://coffer.local/app/*", "spiffe://coffer.local/app/catagram", true},
      {"spiffe://coffer.local/app/*", "spiffe://coffer.local/store", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Glob(c.pattern).Matches(c.text), c.match) << c.pattern << " ~ " << c.text;
  }
  EXPECT_TRUE(Glob("secretsmanager:Get*", true).Matches("SecretsManager:GetSecretValue"));
  EXPECT_FALSE(Glob("secretsmanager:Get*", true).Matches("secretsmanager:PutSecretValue"));
}

TEST(GlobTest, PathologicalPatternIsNotExponential) {
  std::string text(5000, 'a');
  Glob g("*a*a*a*a*a*a*a*a*a*a*b");
  EXPECT_FALSE(g.Matches(text));  // finishes quickly (quadratic at worst)
}

struct ParseErrorCase {
  std::string text;
  std::string expect;  // substring of the error
};

TEST(PolicyParseTest, ErrorsNameTheLineAndTheField) {
  const ParseErrorCase cases[] = {
      {"[]", "line 1: policy: must be a JSON object"},
      {"{}", "statements: missing"},
      {"{\"statements\": {}}", "statements: must be an array"},
      {"{\"statments\": []}", "line 1: statments: unknown member"},
      {"{\"statements\": [\n{\"effect\": \"allow\", \"principals\": \"*\", \"actions\": \"*\", "
       "\"resources\": \"*\"}]}",
       "line 2: statements[0].effect: must be \"Allow\" or \"Deny\""},
      {"{\"statements\": [{\"effect\": \"Allow\",\n\"principals\": [\"spiffe://x\"],\n"
       "\"actions\": [\"kms:Decrypt\", \"Decrypt\"], \"resources\": \"*\"}]}",
       "line 3: statements[0].actions: 'Decrypt' must be <service>:<operation>"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": [\"spiffe://x\"],\n"
       "\"actions\": [\"s3:GetObject\"], \"resources\": \"*\"}]}",
       "line 2: statements[0].actions: unknown service 's3'"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": [\"app/catagram\"], "
       "\"actions\": \"*\", \"resources\": \"*\"}]}",
       "statements[0].principals: 'app/catagram' must be a SPIFFE ID"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": [], \"actions\": \"*\", "
       "\"resources\": \"*\"}]}",
       "statements[0].principals: must not be empty"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": [\"*\", 3], \"actions\": "
       "\"*\", \"resources\": \"*\"}]}",
       "statements[0].principals[1]: must be a string, not number"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": \"*\", \"actions\": \"*\"}]}",
       "statements[0].resources: missing"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": \"*\", \"actions\": \"*\", "
       "\"resources\": \"*\", \"condition\": {\"StringMatches\": {}}}]}",
       "statements[0].condition.StringMatches: unknown operator"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": \"*\", \"actions\": \"*\", "
       "\"resources\": \"*\",\n\n \"condition\": {\"StringLike\": {\"aws:SourceIp\": \"x\"}}}]}",
       "line 3: statements[0].condition.StringLike.aws:SourceIp: unknown condition key"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": \"*\", \"actions\": \"*\", "
       "\"resources\": \"*\", \"not_actions\": [\"kms:*\"]}]}",
       "statements[0].not_actions: not supported"},
      {"{\"statements\": [{\"effect\": \"Allow\", \"principals\": \"*\", \"actions\": \"*\", "
       "\"resources\": \"*\", \"Effect\": \"Deny\"}]}",
       "statements[0].Effect: unknown member"},
  };
  for (const ParseErrorCase& c : cases) {
    auto p = Policy::Parse(c.text, Policy::kIdentity);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.expect)) << c.text;
  }
}

constexpr char kCatagram[] = "spiffe://coffer.local/app/catagram";
constexpr char kOther[] = "spiffe://coffer.local/app/other";
constexpr char kStore[] = "spiffe://coffer.local/store";
constexpr char kAdmin[] = "spiffe://coffer.local/cofferctl";

constexpr char kPolicy[] = R"({
  "version": "2026-11-30",
  "statements": [
    {"sid": "admin", "effect": "Allow", "principals": ["spiffe://coffer.local/cofferctl"],
     "actions": ["*"], "resources": ["*"]},
    {"sid": "catagram", "effect": "Allow", "principals": ["spiffe://coffer.local/app/catagram"],
     "actions": ["secretsmanager:GetSecretValue", "secretsmanager:Describe*"],
     "resources": ["demo/catagram/*"]},
    {"sid": "catagram-params", "effect": "Allow",
     "principals": ["spiffe://coffer.local/app/catagram"],
     "actions": ["ssm:GetParameter*"], "resources": ["/catagram/*"]},
    {"sid": "store-keys", "effect": "Allow", "principals": ["spiffe://coffer.local/store"],
     "actions": ["kms:GenerateDataKey*", "kms:Decrypt"], "resources": ["*"],
     "condition": {"StringLike": {"kms:EncryptionContext:SecretARN": "arn:*:secret:*"}}},
    {"sid": "no-master", "effect": "Deny", "principals": ["*"],
     "actions": ["secretsmanager:*"], "resources": ["demo/catagram/master"]}
  ]
})";

struct EvalCase {
  const char* principal;
  const char* action;
  std::vector<absl::string_view> resources;
  Decision want;
};

TEST(PolicyEvaluateTest, PrincipalActionResourceTable) {
  auto policy = Policy::Parse(kPolicy, Policy::kIdentity);
  ASSERT_TRUE(policy.ok()) << policy.status();
  const EvalCase cases[] = {
      {kCatagram, "secretsmanager:GetSecretValue", {"demo/catagram/db"}, Decision::kAllow},
      {kCatagram, "secretsmanager:DescribeSecret", {"demo/catagram/db"}, Decision::kAllow},
      {kCatagram, "SECRETSMANAGER:getsecretvalue", {"demo/catagram/db"}, Decision::kAllow},
      {kCatagram, "secretsmanager:PutSecretValue", {"demo/catagram/db"}, Decision::kImplicitDeny},
      {kCatagram,
       "secretsmanager:GetSecretValue",
       {"demo/postgres/master"},
       Decision::kImplicitDeny},
      // Any of the resource's names may match (ARN or name).
      {kCatagram,
       "secretsmanager:GetSecretValue",
       {"arn:coffer:secretsmanager:local:0:secret:demo/catagram/db-AbCdEf", "demo/catagram/db"},
       Decision::kAllow},
      {kCatagram,
       "secretsmanager:GetSecretValue",
       {"demo/catagram/master"},
       Decision::kExplicitDeny},
      // Deny wins over the administrator's allow-all.
      {kAdmin, "secretsmanager:DeleteSecret", {"demo/catagram/master"}, Decision::kExplicitDeny},
      {kAdmin, "kms:ScheduleKeyDeletion", {"arn:coffer:kms:local:0:key/1"}, Decision::kAllow},
      {kOther, "secretsmanager:GetSecretValue", {"demo/catagram/db"}, Decision::kImplicitDeny},
      {kOther, "ssm:GetParameter", {"/catagram/url"}, Decision::kImplicitDeny},
      {kCatagram, "ssm:GetParameter", {"/catagram/url"}, Decision::kAllow},
      {kCatagram, "ssm:GetParametersByPath", {"/catagram/url"}, Decision::kAllow},
      {kCatagram, "ssm:PutParameter", {"/catagram/url"}, Decision::kImplicitDeny},
      {"", "secretsmanager:GetSecretValue", {"demo/catagram/db"}, Decision::kImplicitDeny},
      {kCatagram, "secretsmanager:GetSecretValue", {}, Decision::kImplicitDeny},
  };
  for (const EvalCase& c : cases) {
    Request r{c.principal, c.action, c.resources};
    EXPECT_EQ(policy->Evaluate(r), c.want)
        << c.principal << " " << c.action << " " << (c.resources.empty() ? "" : c.resources[0]);
  }
}

TEST(PolicyEvaluateTest, EncryptionContextConditions) {
  auto policy = Policy::Parse(kPolicy, Policy::kIdentity);
  ASSERT_TRUE(policy.ok());
  Context secret{{"SecretARN", "arn:coffer:secretsmanager:local:0:secret:a-AbCdEf"},
                 {"SecretVersionId", "v"}};
  Context other{{"purpose", "x"}};
  std::vector<absl::string_view> key = {"arn:coffer:kms:local:0:key/1"};
  EXPECT_EQ(policy->Evaluate({kStore, "kms:Decrypt", key, &secret}), Decision::kAllow);
  EXPECT_EQ(policy->Evaluate({kStore, "kms:GenerateDataKey", key, &secret}), Decision::kAllow);
  EXPECT_EQ(policy->Evaluate({kStore, "kms:Decrypt", key, &other}), Decision::kImplicitDeny);
  EXPECT_EQ(policy->Evaluate({kStore, "kms:Decrypt", key, nullptr}), Decision::kImplicitDeny);
  // StringEquals compares literally.
  auto exact = Policy::Parse(R"({"statements": [{"effect": "Allow", "principals": "*",
      "actions": "kms:Decrypt", "resources": "*",
      "condition": {"StringEquals": {"kms:EncryptionContext:purpose": ["x*", "y"]}}}]})",
                             Policy::kIdentity);
  ASSERT_TRUE(exact.ok()) << exact.status();
  Context star{{"purpose", "x*"}}, xx{{"purpose", "xx"}}, y{{"purpose", "y"}};
  EXPECT_EQ(exact->Evaluate({kOther, "kms:Decrypt", key, &star}), Decision::kAllow);
  EXPECT_EQ(exact->Evaluate({kOther, "kms:Decrypt", key, &y}), Decision::kAllow);
  EXPECT_EQ(exact->Evaluate({kOther, "kms:Decrypt", key, &xx}), Decision::kImplicitDeny);
}

TEST(ResourcePolicyTest, AwsSpellingAndCombination) {
  auto rp = Policy::Parse(R"({
    "Version": "2012-10-17",
    "Statement": [
      {"Effect": "Allow", "Principal": {"Coffer": "spiffe://coffer.local/app/reporting"},
       "Action": "secretsmanager:GetSecretValue"},
      {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:DeleteSecret",
       "Resource": "*"}]})",
                          Policy::kResource);
  ASSERT_TRUE(rp.ok()) << rp.status();
  EXPECT_FALSE(rp->GrantsEveryone());
  std::vector<absl::string_view> res = {"demo/x"};
  EXPECT_EQ(
      rp->Evaluate({"spiffe://coffer.local/app/reporting", "secretsmanager:GetSecretValue", res}),
      Decision::kAllow);
  EXPECT_EQ(rp->Evaluate({kAdmin, "secretsmanager:DeleteSecret", res}), Decision::kExplicitDeny);

  // Either side's explicit deny denies; otherwise either side's allow allows.
  EXPECT_EQ(Combine(Decision::kAllow, Decision::kExplicitDeny), Decision::kExplicitDeny);
  EXPECT_EQ(Combine(Decision::kExplicitDeny, Decision::kAllow), Decision::kExplicitDeny);
  EXPECT_EQ(Combine(Decision::kImplicitDeny, Decision::kAllow), Decision::kAllow);
  EXPECT_EQ(Combine(Decision::kAllow, Decision::kImplicitDeny), Decision::kAllow);
  EXPECT_EQ(Combine(Decision::kImplicitDeny, Decision::kImplicitDeny), Decision::kImplicitDeny);

  auto open = Policy::Parse(
      R"({"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*"}})",
      Policy::kResource);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_TRUE(open->GrantsEveryone());
  auto bad = Policy::Parse(R"({"Statement": [{"Effect": "Allow", "Principal": "me",
      "Action": "*"}]})",
                           Policy::kResource);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("Statement[0].Principal"));
}

}  // namespace
}  // namespace coffer::authz
