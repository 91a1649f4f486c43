#include "services/store/params/param_rules.h"

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "tests/services/store/params/param_rules_testing.h"

namespace coffer::store {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// --- errors ------------------------------------------------------------

TEST(ParamRulesTest, SsmReasonsHaveTheirCodes) {
  const std::vector<std::pair<const char*, C>> cases = {
      {reason::kValidation, C::kInvalidArgument},
      {reason::kParameterNotFound, C::kNotFound},
      {reason::kParameterVersionNotFound, C::kNotFound},
      {reason::kParameterAlreadyExists, C::kAlreadyExists},
      {reason::kHierarchyLevelLimitExceeded, C::kInvalidArgument},
      {reason::kParameterPatternMismatch, C::kInvalidArgument},
      {reason::kInvalidAllowedPattern, C::kInvalidArgument},
      {reason::kParameterMaxVersionLimitExceeded, C::kFailedPrecondition},
      {reason::kParameterVersionLabelLimitExceeded, C::kResourceExhausted},
      {reason::kInvalidPolicyType, C::kInvalidArgument},
      {reason::kInvalidPolicyAttribute, C::kInvalidArgument},
      {reason::kIncompatiblePolicy, C::kInvalidArgument},
      {reason::kTooManyTagsError, C::kResourceExhausted},
      {reason::kSsmInvalidNextToken, C::kInvalidArgument},
      {reason::kInvalidFilterKey, C::kInvalidArgument},
      {reason::kInvalidFilterOption, C::kInvalidArgument},
      {reason::kInvalidFilterValue, C::kInvalidArgument},
      {reason::kUnsupportedParameterType, C::kInvalidArgument},
      {reason::kInvalidKeyId, C::kInvalidArgument},
      {reason::kInvalidResourceType, C::kInvalidArgument},
      {reason::kInvalidResourceId, C::kInvalidArgument},
  };
  for (const auto& [reason, code] : cases) {
    SCOPED_TRACE(reason);
    absl::Status s = Error(reason, "msg", "/a/b", "name");
    EXPECT_EQ(s.code(), code);
    EXPECT_EQ(s.message(), "msg");
    EXPECT_EQ(ErrorReason(s), reason);
    EXPECT_EQ(GetErrorDetail(s)->resource, "/a/b");
    EXPECT_EQ(GetErrorDetail(s)->field, "name");
  }
}

// --- names and paths ---------------------------------------------------

struct Case {
  std::string label;
  std::string input;
  std::string reason;  // "" = OK
};

TEST(ParamRulesTest, ValidateParameterNameTable) {
  std::vector<Case> cases = {
      {"flat", "db-url", ""},
      {"flat with every char", "aZ09_.-", ""},
      {"hierarchical", "/prod/db/url", ""},
      {"one level", "/prod", ""},
      {"contains aws later", "/prod/aws/x", ""},
      {"starts like aws but is not", "/aw-s", ""},
      {"1011 chars flat", std::string(1011, 'n'), ""},
      {"1011 chars hierarchical", "/" + std::string(1010, 'n'), ""},
      {"1012 chars", std::string(1012, 'n'), reason::kValidation},
      {"15 levels", Levels(15), ""},
      {"16 levels", Levels(16), reason::kHierarchyLevelLimitExceeded},
      {"empty", "", reason::kValidation},
      {"aws", "aws", reason::kValidation},
      {"ssm", "ssm", reason::kValidation},
      {"AWS/", "AWS-thing", reason::kValidation},
      {"awsome", "awsome", reason::kValidation},
      {"Ssm mixed case", "SsM.x", reason::kValidation},
      {"/aws/x", "/aws/x", reason::kValidation},
      {"/AWS/x", "/AWS/x", reason::kValidation},
      {"/ssm-x", "/ssm-x", reason::kValidation},
      {"missing leading slash", "prod/db", reason::kValidation},
      {"double slash", "/prod//db", reason::kValidation},
      {"trailing slash", "/prod/db/", reason::kValidation},
      {"root only", "/", reason::kValidation},
      {"space", "/prod/db url", reason::kValidation},
      {"colon", "name:1", reason::kValidation},
      {"non-ascii", "caf\xc3\xa9", reason::kValidation},
      {"nul", std::string("a\0b", 3), reason::kValidation},
  };
  for (char bad : std::string("!@#$%^&*()+=[]{}|\\;'\",<>?~` \t")) {
    cases.push_back({absl::StrCat("bad char 0x", static_cast<int>(bad)),
                     absl::StrCat("/prod/a", std::string(1, bad), "b"), reason::kValidation});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    ExpectResult(ValidateParameterName("name", c.input), c.reason, "name");
  }
}

TEST(ParamRulesTest, ValidatePathTable) {
  const std::vector<Case> cases = {
      {"root", "/", ""},
      {"one level", "/prod", ""},
      {"trailing slash", "/prod/db/", ""},
      {"15 levels", Levels(15), ""},
      {"15 levels trailing slash", Levels(15) + "/", ""},
      {"reserved prefix readable", "/aws/service", ""},
      {"16 levels", Levels(16), reason::kHierarchyLevelLimitExceeded},
      {"empty", "", reason::kValidation},
      {"no leading slash", "prod", reason::kValidation},
      {"double slash", "/prod//db", reason::kValidation},
      {"double trailing slash", "/prod//", reason::kValidation},
      {"bad char", "/prod/d b", reason::kValidation},
      {"too long", "/" + std::string(2048, 'p'), reason::kValidation},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    ExpectResult(ValidatePath("path", c.input), c.reason, "path");
  }
}

TEST(ParamRulesTest, NormalizeAndParentPath) {
  EXPECT_EQ(NormalizePath("/a/b/"), "/a/b");
  EXPECT_EQ(NormalizePath("/a/b"), "/a/b");
  EXPECT_EQ(NormalizePath("/"), "/");
  const std::vector<std::pair<std::string, std::string>> parents = {
      {"/a/b/c", "/a/b"}, {"/a/b", "/a"}, {"/a", "/"}, {"flat", ""}, {"flat.name-x", ""}};
  for (const auto& [name, parent] : parents) EXPECT_EQ(ParentPath(name), parent) << name;
}

// --- selectors and labels ----------------------------------------------

TEST(ParamRulesTest, ParseSelectorTable) {
  struct SelectorCase {
    std::string input;
    std::string reason;
    std::string name;
    int64_t version;
    std::string label;
  };
  const std::vector<SelectorCase> cases = {
      {"/prod/db", "", "/prod/db", 0, ""},
      {"flat", "", "flat", 0, ""},
      {"/prod/db:3", "", "/prod/db", 3, ""},
      {"/prod/db:007", "", "/prod/db", 7, ""},
      {"/prod/db:9223372036854775807", "", "/prod/db", INT64_MAX, ""},
      {"/prod/db:release-1.2_x", "", "/prod/db", 0, "release-1.2_x"},
      // "-1" is not a version, but it is a valid label (labels may start
      // with '-'); it simply names no version.
      {"/prod/db:-1", "", "/prod/db", 0, "-1"},
      {"/prod/db:", reason::kValidation, "", 0, ""},
      {"/prod/db:0", reason::kValidation, "", 0, ""},
      {"/prod/db:3a", reason::kValidation, "", 0, ""},
      {"/prod/db:9223372036854775808", reason::kValidation, "", 0, ""},
      {"/prod/db:bad label", reason::kValidation, "", 0, ""},
      {"/prod/db:awsy", reason::kValidation, "", 0, ""},
      {"/prod/db:a:b", reason::kValidation, "", 0, ""},
      {"/prod/db:" + std::string(101, 'l'), reason::kValidation, "", 0, ""},
      {":3", reason::kValidation, "", 0, ""},
      {"", reason::kValidation, "", 0, ""},
  };
  for (const SelectorCase& c : cases) {
    SCOPED_TRACE(c.input);
    absl::StatusOr<Selector> sel = ParseSelector("name", c.input);
    ExpectResult(sel.status(), c.reason, "name");
    if (!sel.ok()) continue;
    EXPECT_EQ(sel->name, c.name);
    EXPECT_EQ(sel->version, c.version);
    EXPECT_EQ(sel->label, c.label);
  }
}

TEST(ParamRulesTest, SelectorText) {
  EXPECT_EQ((Selector{"/a", 3, ""}).text(), ":3");
  EXPECT_EQ((Selector{"/a", 0, "prod"}).text(), ":prod");
  EXPECT_EQ((Selector{"/a", 0, ""}).text(), "");
}

TEST(ParamRulesTest, IsValidLabelTable) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"release", true},
      {"Release-1.2_x", true},
      {"a", true},
      {"-lead", true},
      {"_lead", true},
      {".lead", true},
      {"v2", true},
      {"x-aws", true},
      {std::string(100, 'l'), true},
      {std::string(101, 'l'), false},
      {"", false},
      {"1st", false},
      {"9", false},
      {"aws", false},
      {"awsprod", false},
      {"AWS-x", false},
      {"Aws", false},
      {"ssm", false},
      {"SSMx", false},
      {"sSm.y", false},
      {"has space", false},
      {"has/slash", false},
      {"has:colon", false},
      {"caf\xc3\xa9", false},
      {"a*b", false},
  };
  for (const auto& [label, valid] : cases) EXPECT_EQ(IsValidLabel(label), valid) << label;
}

// --- values ------------------------------------------------------------

TEST(ParamRulesTest, ValidateValuePerTier) {
  using params::v1::PARAMETER_TIER_ADVANCED;
  using params::v1::PARAMETER_TIER_STANDARD;
  using params::v1::PARAMETER_TIER_UNSPECIFIED;
  struct ValueCase {
    size_t size;
    params::v1::ParameterTier tier;
    std::string reason;
  };
  const std::vector<ValueCase> cases = {
      {1, PARAMETER_TIER_STANDARD, ""},
      {4096, PARAMETER_TIER_STANDARD, ""},
      {4097, PARAMETER_TIER_STANDARD, reason::kValidation},
      {4096, PARAMETER_TIER_UNSPECIFIED, ""},
      {4097, PARAMETER_TIER_UNSPECIFIED, reason::kValidation},
      {4097, PARAMETER_TIER_ADVANCED, ""},
      {8192, PARAMETER_TIER_ADVANCED, ""},
      {8193, PARAMETER_TIER_ADVANCED, reason::kValidation},
      {0, PARAMETER_TIER_STANDARD, reason::kValidation},
      {0, PARAMETER_TIER_ADVANCED, reason::kValidation},
  };
  for (const ValueCase& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.size, " bytes, tier ", c.tier));
    ExpectResult(ValidateValue("value", std::string(c.size, 'v'), c.tier), c.reason, "value");
  }
  // Bytes, not characters: 2049 two-byte characters exceed Standard.
  std::string wide;
  for (int i = 0; i < 2049; ++i) wide += "\xc3\xa9";
  ExpectResult(ValidateValue("value", wide, PARAMETER_TIER_STANDARD), reason::kValidation, "value");
}

TEST(ParamRulesTest, CheckAllowedPatternTable) {
  struct PatternCase {
    std::string label;
    std::string pattern;
    std::string value;
    std::string reason;
    std::string field;
  };
  const std::vector<PatternCase> cases = {
      {"no pattern", "", "anything", "", ""},
      {"digits match", "^\\d+$", "12345", "", ""},
      {"full match without anchors", "[a-z]+", "abc", "", ""},
      {"partial is a mismatch", "[a-z]+", "abc1", reason::kParameterPatternMismatch, "value"},
      {"digits mismatch", "^\\d+$", "12a45", reason::kParameterPatternMismatch, "value"},
      {"alternation", "dev|prod", "prod", "", ""},
      {"1024-char pattern", std::string(1024, 'a'), std::string(1024, 'a'), "", ""},
      {"1025-char pattern", std::string(1025, 'a'), std::string(1025, 'a'),
       reason::kInvalidAllowedPattern, "allowed_pattern"},
      {"unbalanced paren", "(abc", "abc", reason::kInvalidAllowedPattern, "allowed_pattern"},
      {"bad repetition", "a**", "a", reason::kInvalidAllowedPattern, "allowed_pattern"},
      {"backreference (not RE2)", "(a)\\1", "aa", reason::kInvalidAllowedPattern,
       "allowed_pattern"},
      {"huge repetition", "((a{1000}){1000}){1000}", "a", reason::kInvalidAllowedPattern,
       "allowed_pattern"},
  };
  for (const PatternCase& c : cases) {
    SCOPED_TRACE(c.label);
    ExpectResult(CheckAllowedPattern(c.pattern, c.value), c.reason, c.field);
  }
}

// --- policies ----------------------------------------------------------

constexpr char kFuture[] = "2030-01-31T12:00:00Z";

std::string Policy(absl::string_view type, absl::string_view attrs,
                   absl::string_view version = "\"1.0\"") {
  return absl::StrCat("{\"Type\":\"", type, "\",\"Version\":", version, ",\"Attributes\":", attrs,
                      "}");
}
std::string Expiration(absl::string_view ts = kFuture) {
  return Policy("Expiration", absl::StrCat("{\"Timestamp\":\"", ts, "\"}"));
}
std::string Array(const std::vector<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

TEST(ParamRulesTest, ParsePoliciesEachType) {
  const std::string json = Array({
      Expiration("2030-01-31T12:00:00.000Z"),
      Policy("ExpirationNotification", R"({"Before":"15","Unit":"Days"})"),
      Policy("NoChangeNotification", R"({"After":20,"Unit":"Hours"})"),
  });
  absl::StatusOr<std::vector<ParameterPolicy>> policies = ParsePolicies(json, kNow);
  ASSERT_TRUE(policies.ok()) << policies.status();
  ASSERT_EQ(policies->size(), 3u);
  const absl::Time expiry = absl::FromUnixSeconds(1896091200);  // 2030-01-31T12:00:00Z
  const ParameterPolicy& exp = (*policies)[0];
  EXPECT_EQ(exp.type, ParameterPolicy::Type::kExpiration);
  EXPECT_STREQ(exp.type_name(), "Expiration");
  EXPECT_EQ(exp.expiration, expiry);
  EXPECT_EQ(exp.text, R"({"Type":"Expiration","Version":"1.0",)"
                      R"("Attributes":{"Timestamp":"2030-01-31T12:00:00.000Z"}})");
  const ParameterPolicy& note = (*policies)[1];
  EXPECT_EQ(note.type, ParameterPolicy::Type::kExpirationNotification);
  EXPECT_STREQ(note.type_name(), "ExpirationNotification");
  EXPECT_EQ(note.before, absl::Hours(15 * 24));
  EXPECT_EQ(note.expiration, expiry);
  EXPECT_EQ(note.text, R"({"Type":"ExpirationNotification","Version":"1.0",)"
                       R"("Attributes":{"Before":"15","Unit":"Days"}})");
  const ParameterPolicy& nochange = (*policies)[2];
  EXPECT_EQ(nochange.type, ParameterPolicy::Type::kNoChangeNotification);
  EXPECT_STREQ(nochange.type_name(), "NoChangeNotification");
  EXPECT_EQ(nochange.after, absl::Hours(20));
  EXPECT_EQ(nochange.text, R"({"Type":"NoChangeNotification","Version":"1.0",)"
                           R"("Attributes":{"After":"20","Unit":"Hours"}})");

  // PolicyDue.
  const absl::Time modified = kNow - absl::Hours(1);
  EXPECT_EQ(PolicyDue(exp, modified), expiry);
  EXPECT_EQ(PolicyDue(note, modified), expiry - absl::Hours(15 * 24));
  EXPECT_EQ(PolicyDue(nochange, modified), modified + absl::Hours(20));
}

TEST(ParamRulesTest, ParsePoliciesTable) {
  const std::string attr = reason::kInvalidPolicyAttribute;
  const std::string type = reason::kInvalidPolicyType;
  const std::string incompatible = reason::kIncompatiblePolicy;
  const std::string validation = reason::kValidation;
  struct PolicyCase {
    std::string label;
    std::string json;
    std::string reason;
    size_t count;
  };
  const std::vector<PolicyCase> cases = {
      {"empty string", "", "", 0},
      {"empty array", "[]", "", 0},
      {"empty array with spaces", " [ ] ", "", 0},
      {"expiration only", Array({Expiration()}), "", 1},
      {"expiration with offset", Array({Expiration("2030-01-31T14:00:00+02:00")}), "", 1},
      {"no-change alone", Array({Policy("NoChangeNotification", R"({"After":"1","Unit":"Days"})")}),
       "", 1},
      {"before as number",
       Array({Expiration(), Policy("ExpirationNotification", R"({"Before":2,"Unit":"Hours"})")}),
       "", 2},
      {"notification before expiration in the array",
       Array({Policy("ExpirationNotification", R"({"Before":"2","Unit":"Hours"})"), Expiration()}),
       "", 2},
      // Document shape.
      {"not json", "[{", validation, 0},
      {"not an array", Expiration(), validation, 0},
      {"array of strings", R"(["Expiration"])", validation, 0},
      {"too long", Array({Expiration() + std::string(4096, ' ')}), validation, 0},
      // Types.
      {"unknown type", Array({Policy("Rotation", "{}")}), type, 0},
      {"type case matters",
       Array({Policy("expiration", R"({"Timestamp":"2030-01-31T12:00:00Z"})")}), type, 0},
      {"missing type", R"([{"Version":"1.0","Attributes":{}}])", type, 0},
      {"type not a string", R"([{"Type":1,"Version":"1.0","Attributes":{}}])", type, 0},
      // Version and shape of a policy.
      {"bad version",
       Array({Policy("Expiration", R"({"Timestamp":"2030-01-31T12:00:00Z"})", "\"2.0\"")}), attr,
       0},
      {"numeric version",
       Array({Policy("Expiration", R"({"Timestamp":"2030-01-31T12:00:00Z"})", "1.0")}), attr, 0},
      {"missing version",
       R"([{"Type":"Expiration","Attributes":{"Timestamp":"2030-01-31T12:00:00Z"}}])", attr, 0},
      {"missing attributes", R"([{"Type":"Expiration","Version":"1.0"}])", attr, 0},
      {"unknown policy key",
       R"([{"Type":"Expiration","Version":"1.0",)"
       R"("Attributes":{"Timestamp":"2030-01-31T12:00:00Z"},"X":1}])",
       attr, 0},
      // Attributes.
      {"missing timestamp", Array({Policy("Expiration", "{}")}), attr, 0},
      {"timestamp not rfc3339", Array({Expiration("31/01/2030")}), attr, 0},
      {"timestamp without zone", Array({Expiration("2030-01-31T12:00:00")}), attr, 0},
      {"past expiration", Array({Expiration("2020-01-01T00:00:00Z")}), attr, 0},
      {"unknown attribute",
       Array({Policy("Expiration", R"({"Timestamp":"2030-01-31T12:00:00Z","Zone":"x"})")}), attr,
       0},
      {"missing before",
       Array({Expiration(), Policy("ExpirationNotification", R"({"Unit":"Days"})")}), attr, 0},
      {"missing unit", Array({Expiration(), Policy("ExpirationNotification", R"({"Before":"1"})")}),
       attr, 0},
      {"wrong unit",
       Array({Expiration(), Policy("ExpirationNotification", R"({"Before":"1","Unit":"Weeks"})")}),
       attr, 0},
      {"unit lower case", Array({Policy("NoChangeNotification", R"({"After":"1","Unit":"days"})")}),
       attr, 0},
      {"zero after", Array({Policy("NoChangeNotification", R"({"After":"0","Unit":"Days"})")}),
       attr, 0},
      {"negative after", Array({Policy("NoChangeNotification", R"({"After":-3,"Unit":"Days"})")}),
       attr, 0},
      {"fractional after",
       Array({Policy("NoChangeNotification", R"({"After":1.5,"Unit":"Days"})")}), attr, 0},
      {"after not a number",
       Array({Policy("NoChangeNotification", R"({"After":"ten","Unit":"Days"})")}), attr, 0},
      {"after with sign",
       Array({Policy("NoChangeNotification", R"({"After":"+3","Unit":"Days"})")}), attr, 0},
      {"after huge",
       Array({Policy("NoChangeNotification", R"({"After":"99999999999999999999","Unit":"Days"})")}),
       attr, 0},
      // Combinations.
      {"two expirations", Array({Expiration(), Expiration("2031-01-01T00:00:00Z")}), incompatible,
       0},
      {"two no-change",
       Array({Policy("NoChangeNotification", R"({"After":"1","Unit":"Days"})"),
              Policy("NoChangeNotification", R"({"After":"2","Unit":"Days"})")}),
       incompatible, 0},
      {"notification without expiration",
       Array({Policy("ExpirationNotification", R"({"Before":"1","Unit":"Days"})")}), incompatible,
       0},
  };
  for (const PolicyCase& c : cases) {
    SCOPED_TRACE(c.label);
    absl::StatusOr<std::vector<ParameterPolicy>> policies = ParsePolicies(c.json, kNow);
    ExpectResult(policies.status(), c.reason, "policies");
    if (policies.ok()) {
      EXPECT_EQ(policies->size(), c.count);
    }
  }
}

}  // namespace
}  // namespace coffer::store
