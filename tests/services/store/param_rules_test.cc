#include "services/store/param_rules.h"

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

namespace coffer::store {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using C = absl::StatusCode;
namespace pr = param_reason;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14T22:13:20Z

// "" when the status is OK, else its reason.
std::string Reason(const absl::Status& s) { return s.ok() ? "" : ErrorReason(s); }

// The code a reason must come with (the header's table).
C CodeFor(absl::string_view reason) {
  if (reason == pr::kNotFound || reason == pr::kVersionNotFound) return C::kNotFound;
  if (reason == pr::kAlreadyExists) return C::kAlreadyExists;
  if (reason == pr::kMaxVersion) return C::kFailedPrecondition;
  if (reason == pr::kLabelLimit || reason == pr::kTooManyTags) return C::kResourceExhausted;
  return C::kInvalidArgument;
}

// `s` is OK when `reason` is "", else an error with that reason, its code
// and (when given) the field.
void ExpectResult(const absl::Status& s, const std::string& reason, const std::string& field = "") {
  if (reason.empty()) {
    EXPECT_TRUE(s.ok()) << s;
    return;
  }
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Reason(s), reason) << s;
  EXPECT_EQ(s.code(), CodeFor(reason)) << s;
  if (!field.empty()) {
    ASSERT_TRUE(GetErrorDetail(s).has_value());
    EXPECT_EQ(GetErrorDetail(s)->field, field);
    EXPECT_THAT(std::string(s.message()), HasSubstr(field));
  }
}

// "/l1/l2/.../ln".
std::string Levels(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) absl::StrAppend(&out, "/l", i);
  return out;
}

// --- errors ------------------------------------------------------------

TEST(ParamRulesTest, ParamErrorCodeFollowsReason) {
  const std::vector<std::pair<const char*, C>> cases = {
      {pr::kValidation, C::kInvalidArgument},
      {pr::kNotFound, C::kNotFound},
      {pr::kVersionNotFound, C::kNotFound},
      {pr::kAlreadyExists, C::kAlreadyExists},
      {pr::kHierarchyLevel, C::kInvalidArgument},
      {pr::kPatternMismatch, C::kInvalidArgument},
      {pr::kInvalidAllowedPattern, C::kInvalidArgument},
      {pr::kMaxVersion, C::kFailedPrecondition},
      {pr::kLabelLimit, C::kResourceExhausted},
      {pr::kInvalidPolicyType, C::kInvalidArgument},
      {pr::kInvalidPolicyAttribute, C::kInvalidArgument},
      {pr::kIncompatiblePolicy, C::kInvalidArgument},
      {pr::kTooManyTags, C::kResourceExhausted},
      {pr::kInvalidNextToken, C::kInvalidArgument},
      {pr::kInvalidFilterKey, C::kInvalidArgument},
      {pr::kInvalidFilterOption, C::kInvalidArgument},
      {pr::kInvalidFilterValue, C::kInvalidArgument},
      {pr::kUnsupportedType, C::kInvalidArgument},
      {pr::kInvalidKeyId, C::kInvalidArgument},
      {pr::kInvalidResourceType, C::kInvalidArgument},
      {pr::kInvalidResourceId, C::kInvalidArgument},
  };
  for (const auto& [reason, code] : cases) {
    SCOPED_TRACE(reason);
    absl::Status s = ParamError(reason, "msg", "/a/b", "name");
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
      {"1012 chars", std::string(1012, 'n'), pr::kValidation},
      {"15 levels", Levels(15), ""},
      {"16 levels", Levels(16), pr::kHierarchyLevel},
      {"empty", "", pr::kValidation},
      {"aws", "aws", pr::kValidation},
      {"ssm", "ssm", pr::kValidation},
      {"AWS/", "AWS-thing", pr::kValidation},
      {"awsome", "awsome", pr::kValidation},
      {"Ssm mixed case", "SsM.x", pr::kValidation},
      {"/aws/x", "/aws/x", pr::kValidation},
      {"/AWS/x", "/AWS/x", pr::kValidation},
      {"/ssm-x", "/ssm-x", pr::kValidation},
      {"missing leading slash", "prod/db", pr::kValidation},
      {"double slash", "/prod//db", pr::kValidation},
      {"trailing slash", "/prod/db/", pr::kValidation},
      {"root only", "/", pr::kValidation},
      {"space", "/prod/db url", pr::kValidation},
      {"colon", "name:1", pr::kValidation},
      {"non-ascii", "caf\xc3\xa9", pr::kValidation},
      {"nul", std::string("a\0b", 3), pr::kValidation},
  };
  for (char bad : std::string("!@#$%^&*()+=[]{}|\\;'\",<>?~` \t")) {
    cases.push_back({absl::StrCat("bad char 0x", static_cast<int>(bad)),
                     absl::StrCat("/prod/a", std::string(1, bad), "b"), pr::kValidation});
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
      {"16 levels", Levels(16), pr::kHierarchyLevel},
      {"empty", "", pr::kValidation},
      {"no leading slash", "prod", pr::kValidation},
      {"double slash", "/prod//db", pr::kValidation},
      {"double trailing slash", "/prod//", pr::kValidation},
      {"bad char", "/prod/d b", pr::kValidation},
      {"too long", "/" + std::string(2048, 'p'), pr::kValidation},
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
      {"/prod/db:", pr::kValidation, "", 0, ""},
      {"/prod/db:0", pr::kValidation, "", 0, ""},
      {"/prod/db:3a", pr::kValidation, "", 0, ""},
      {"/prod/db:9223372036854775808", pr::kValidation, "", 0, ""},
      {"/prod/db:bad label", pr::kValidation, "", 0, ""},
      {"/prod/db:awsy", pr::kValidation, "", 0, ""},
      {"/prod/db:a:b", pr::kValidation, "", 0, ""},
      {"/prod/db:" + std::string(101, 'l'), pr::kValidation, "", 0, ""},
      {":3", pr::kValidation, "", 0, ""},
      {"", pr::kValidation, "", 0, ""},
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
      {4097, PARAMETER_TIER_STANDARD, pr::kValidation},
      {4096, PARAMETER_TIER_UNSPECIFIED, ""},
      {4097, PARAMETER_TIER_UNSPECIFIED, pr::kValidation},
      {4097, PARAMETER_TIER_ADVANCED, ""},
      {8192, PARAMETER_TIER_ADVANCED, ""},
      {8193, PARAMETER_TIER_ADVANCED, pr::kValidation},
      {0, PARAMETER_TIER_STANDARD, pr::kValidation},
      {0, PARAMETER_TIER_ADVANCED, pr::kValidation},
  };
  for (const ValueCase& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.size, " bytes, tier ", c.tier));
    ExpectResult(ValidateValue("value", std::string(c.size, 'v'), c.tier), c.reason, "value");
  }
  // Bytes, not characters: 2049 two-byte characters exceed Standard.
  std::string wide;
  for (int i = 0; i < 2049; ++i) wide += "\xc3\xa9";
  ExpectResult(ValidateValue("value", wide, PARAMETER_TIER_STANDARD), pr::kValidation, "value");
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
      {"partial is a mismatch", "[a-z]+", "abc1", pr::kPatternMismatch, "value"},
      {"digits mismatch", "^\\d+$", "12a45", pr::kPatternMismatch, "value"},
      {"alternation", "dev|prod", "prod", "", ""},
      {"1024-char pattern", std::string(1024, 'a'), std::string(1024, 'a'), "", ""},
      {"1025-char pattern", std::string(1025, 'a'), std::string(1025, 'a'),
       pr::kInvalidAllowedPattern, "allowed_pattern"},
      {"unbalanced paren", "(abc", "abc", pr::kInvalidAllowedPattern, "allowed_pattern"},
      {"bad repetition", "a**", "a", pr::kInvalidAllowedPattern, "allowed_pattern"},
      {"backreference (not RE2)", "(a)\\1", "aa", pr::kInvalidAllowedPattern, "allowed_pattern"},
      {"huge repetition", "((a{1000}){1000}){1000}", "a", pr::kInvalidAllowedPattern,
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
  EXPECT_EQ(
      exp.text,
      R"({"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-01-31T12:00:00.000Z"}})");
  const ParameterPolicy& note = (*policies)[1];
  EXPECT_EQ(note.type, ParameterPolicy::Type::kExpirationNotification);
  EXPECT_STREQ(note.type_name(), "ExpirationNotification");
  EXPECT_EQ(note.before, absl::Hours(15 * 24));
  EXPECT_EQ(note.expiration, expiry);
  EXPECT_EQ(
      note.text,
      R"({"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"15","Unit":"Days"}})");
  const ParameterPolicy& nochange = (*policies)[2];
  EXPECT_EQ(nochange.type, ParameterPolicy::Type::kNoChangeNotification);
  EXPECT_STREQ(nochange.type_name(), "NoChangeNotification");
  EXPECT_EQ(nochange.after, absl::Hours(20));
  EXPECT_EQ(
      nochange.text,
      R"({"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"20","Unit":"Hours"}})");

  // PolicyDue.
  const absl::Time modified = kNow - absl::Hours(1);
  EXPECT_EQ(PolicyDue(exp, modified), expiry);
  EXPECT_EQ(PolicyDue(note, modified), expiry - absl::Hours(15 * 24));
  EXPECT_EQ(PolicyDue(nochange, modified), modified + absl::Hours(20));
}

TEST(ParamRulesTest, ParsePoliciesTable) {
  const std::string attr = pr::kInvalidPolicyAttribute;
  const std::string type = pr::kInvalidPolicyType;
  const std::string incompatible = pr::kIncompatiblePolicy;
  const std::string validation = pr::kValidation;
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
       R"([{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-01-31T12:00:00Z"},"X":1}])",
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

// --- versions and labels -----------------------------------------------

ParameterVersionInfo Info(absl::string_view description = "") {
  ParameterVersionInfo v;
  v.set_type(params::v1::PARAMETER_TYPE_STRING);
  v.set_description(std::string(description));
  return v;
}

// A record holding versions first..last (each labelled as in `labels`).
ParameterRecord MakeRecord(int64_t first, int64_t last,
                           const std::vector<std::pair<int64_t, std::string>>& labels = {}) {
  ParameterRecord record;
  record.set_name("/prod/db");
  for (int64_t n = first; n <= last; ++n) {
    ParameterVersionInfo* v = record.add_versions();
    *v = Info();
    v->set_version(n);
    for (const auto& [version, label] : labels) {
      if (version == n) v->add_labels(label);
    }
  }
  return record;
}

std::vector<std::string> LabelsOf(const ParameterRecord& record, int64_t version) {
  for (const ParameterVersionInfo& v : record.versions()) {
    if (v.version() == version) return {v.labels().begin(), v.labels().end()};
  }
  return {};
}

TEST(ParamRulesTest, AddParameterVersionNumbersFromOne) {
  ParameterRecord record;
  record.set_name("/prod/db");
  int64_t dropped = -1;
  ParameterVersionInfo first = Info("first");
  first.add_labels("stale");  // labels only ever come from LabelParameterVersion
  first.set_version(42);      // the number is assigned, not taken
  absl::StatusOr<int64_t> n = AddParameterVersion(record, first, &dropped);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(dropped, 0);
  n = AddParameterVersion(record, Info("second"), nullptr);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  ASSERT_EQ(record.versions_size(), 2);
  EXPECT_EQ(record.versions(0).version(), 1);
  EXPECT_EQ(record.versions(0).description(), "first");
  EXPECT_THAT(record.versions(0).labels(), IsEmpty());
  EXPECT_EQ(record.versions(1).version(), 2);
}

TEST(ParamRulesTest, AddParameterVersionDropsOldestBeyond100) {
  ParameterRecord record = MakeRecord(1, 100, {{2, "prod"}});
  int64_t dropped = -1;
  absl::StatusOr<int64_t> n = AddParameterVersion(record, Info(), &dropped);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 101);
  EXPECT_EQ(dropped, 1);
  ASSERT_EQ(record.versions_size(), kMaxParameterVersionsKept);
  EXPECT_EQ(record.versions(0).version(), 2);
  EXPECT_EQ(record.versions(99).version(), 101);

  // Numbering continues after dropped versions.
  ParameterRecord later = MakeRecord(51, 150);
  n = AddParameterVersion(later, Info(), &dropped);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 151);
  EXPECT_EQ(dropped, 51);
}

TEST(ParamRulesTest, AddParameterVersionRefusesToDropLabelledOldest) {
  ParameterRecord record = MakeRecord(1, 100, {{1, "golden"}});
  const ParameterRecord before = record;
  int64_t dropped = -1;
  absl::StatusOr<int64_t> n = AddParameterVersion(record, Info(), &dropped);
  ExpectResult(n.status(), pr::kMaxVersion);
  EXPECT_EQ(n.status().code(), C::kFailedPrecondition);
  EXPECT_EQ(dropped, 0);
  EXPECT_TRUE(MessageDifferencer::Equals(record, before));
}

TEST(ParamRulesTest, ApplyLabelsReturnsInvalidAndAppliesValid) {
  ParameterRecord record = MakeRecord(1, 3);
  absl::StatusOr<std::vector<std::string>> invalid =
      ApplyLabels(record, 2, {"prod", "1bad", "awsx", "prod", "has space", "Beta"});
  ASSERT_TRUE(invalid.ok()) << invalid.status();
  EXPECT_THAT(*invalid, ElementsAre("1bad", "awsx", "has space"));
  EXPECT_THAT(LabelsOf(record, 2), ElementsAre("prod", "Beta"));
  EXPECT_THAT(LabelsOf(record, 1), IsEmpty());
  EXPECT_THAT(LabelsOf(record, 3), IsEmpty());

  // All invalid: nothing changes, no error.
  invalid = ApplyLabels(record, 1, {"9lives"});
  ASSERT_TRUE(invalid.ok()) << invalid.status();
  EXPECT_THAT(*invalid, ElementsAre("9lives"));
  EXPECT_THAT(LabelsOf(record, 1), IsEmpty());
}

TEST(ParamRulesTest, ApplyLabelsMovesLabelBetweenVersions) {
  ParameterRecord record = MakeRecord(1, 3, {{1, "prod"}, {1, "keep"}});
  absl::StatusOr<std::vector<std::string>> invalid = ApplyLabels(record, 3, {"prod"});
  ASSERT_TRUE(invalid.ok()) << invalid.status();
  EXPECT_THAT(*invalid, IsEmpty());
  EXPECT_THAT(LabelsOf(record, 1), ElementsAre("keep"));
  EXPECT_THAT(LabelsOf(record, 3), ElementsAre("prod"));

  // Re-applying where it already is changes nothing.
  ASSERT_TRUE(ApplyLabels(record, 3, {"prod"}).ok());
  EXPECT_THAT(LabelsOf(record, 3), ElementsAre("prod"));

  // Version 0 means the latest version.
  ASSERT_TRUE(ApplyLabels(record, 0, {"latest"}).ok());
  EXPECT_THAT(LabelsOf(record, 3), ElementsAre("prod", "latest"));
}

TEST(ParamRulesTest, ApplyLabelsLimitLeavesRecordUnchanged) {
  std::vector<std::pair<int64_t, std::string>> labels;
  for (int i = 0; i < 10; ++i) labels.push_back({2, absl::StrCat("l", i)});
  labels.push_back({1, "elsewhere"});
  ParameterRecord record = MakeRecord(1, 2, labels);
  const ParameterRecord before = record;
  // The 11th label on version 2 (moved from version 1) is one too many.
  absl::StatusOr<std::vector<std::string>> invalid = ApplyLabels(record, 2, {"elsewhere"});
  ExpectResult(invalid.status(), pr::kLabelLimit);
  EXPECT_EQ(invalid.status().code(), C::kResourceExhausted);
  EXPECT_TRUE(MessageDifferencer::Equals(record, before));

  // Exactly ten is fine.
  ParameterRecord nine = MakeRecord(1, 1);
  ASSERT_TRUE(ApplyLabels(nine, 1, {"a", "b", "c", "d", "e", "f", "g", "h", "i"}).ok());
  ASSERT_TRUE(ApplyLabels(nine, 1, {"j"}).ok());
  EXPECT_EQ(LabelsOf(nine, 1).size(), 10u);
  const ParameterRecord ten = nine;
  ExpectResult(ApplyLabels(nine, 1, {"k"}).status(), pr::kLabelLimit);
  EXPECT_TRUE(MessageDifferencer::Equals(nine, ten));
}

TEST(ParamRulesTest, ApplyLabelsErrors) {
  ParameterRecord record = MakeRecord(1, 3);
  const ParameterRecord before = record;
  absl::StatusOr<std::vector<std::string>> r = ApplyLabels(record, 7, {"prod"});
  ExpectResult(r.status(), pr::kVersionNotFound);
  ExpectResult(ApplyLabels(record, 1, {}).status(), pr::kValidation, "labels");
  ExpectResult(ApplyLabels(record, 1, std::vector<std::string>(11, "x")).status(), pr::kValidation,
               "labels");
  EXPECT_TRUE(MessageDifferencer::Equals(record, before));
}

TEST(ParamRulesTest, RemoveLabels) {
  ParameterRecord record = MakeRecord(1, 2, {{1, "prod"}, {1, "beta"}, {2, "dev"}});
  auto result = RemoveLabels(record, 1, {"prod", "dev", "nope", "prod"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->first, ElementsAre("prod"));
  EXPECT_THAT(result->second, ElementsAre("dev", "nope"));
  EXPECT_THAT(LabelsOf(record, 1), ElementsAre("beta"));
  EXPECT_THAT(LabelsOf(record, 2), ElementsAre("dev"));

  const ParameterRecord before = record;
  ExpectResult(RemoveLabels(record, 9, {"beta"}).status(), pr::kVersionNotFound);
  ExpectResult(RemoveLabels(record, 0, {"beta"}).status(), pr::kValidation, "parameter_version");
  ExpectResult(RemoveLabels(record, 1, {}).status(), pr::kValidation, "labels");
  EXPECT_TRUE(MessageDifferencer::Equals(record, before));
}

TEST(ParamRulesTest, SelectVersion) {
  ParameterRecord record = MakeRecord(3, 6, {{4, "prod"}});
  struct SelectCase {
    Selector selector;
    std::string reason;
    int64_t version;
  };
  const std::vector<SelectCase> cases = {
      {{"/prod/db", 0, ""}, "", 6},
      {{"/prod/db", 3, ""}, "", 3},
      {{"/prod/db", 5, ""}, "", 5},
      {{"/prod/db", 0, "prod"}, "", 4},
      {{"/prod/db", 2, ""}, pr::kVersionNotFound, 0},  // dropped
      {{"/prod/db", 7, ""}, pr::kVersionNotFound, 0},
      {{"/prod/db", 0, "dev"}, pr::kVersionNotFound, 0},
      {{"/prod/db", 0, "-1"}, pr::kVersionNotFound, 0},
  };
  for (const SelectCase& c : cases) {
    SCOPED_TRACE(c.selector.text());
    absl::StatusOr<const ParameterVersionInfo*> v = SelectVersion(record, c.selector);
    ExpectResult(v.status(), c.reason);
    if (v.ok()) {
      EXPECT_EQ((*v)->version(), c.version);
    }
  }
  ParameterRecord empty;
  empty.set_name("/gone");
  ExpectResult(SelectVersion(empty, Selector{"/gone", 0, ""}).status(), pr::kNotFound);
}

// --- filters -----------------------------------------------------------

using FilterList = google::protobuf::RepeatedPtrField<params::v1::ParameterStringFilter>;

FilterList Filters(
    const std::vector<std::tuple<std::string, std::string, std::vector<std::string>>>& filters) {
  FilterList out;
  for (const auto& [key, option, values] : filters) {
    params::v1::ParameterStringFilter* f = out.Add();
    f->set_key(key);
    f->set_option(option);
    for (const std::string& v : values) f->add_values(v);
  }
  return out;
}

struct FilterCase {
  std::string label;
  FilterList filters;
  std::string reason;
};

TEST(ParamRulesTest, ParseByPathFiltersTable) {
  const std::vector<FilterCase> cases = {
      {"none", Filters({}), ""},
      {"type", Filters({{"Type", "", {"String", "SecureString"}}}), ""},
      {"type equals", Filters({{"Type", "Equals", {"StringList"}}}), ""},
      {"key id", Filters({{"KeyId", "", {"alias/coffer/ssm"}}}), ""},
      {"label", Filters({{"Label", "Equals", {"prod"}}}), ""},
      {"all three", Filters({{"Type", "", {"String"}}, {"KeyId", "", {"k"}}, {"Label", "", {"x"}}}),
       ""},
      {"50 values", Filters({{"Label", "", std::vector<std::string>(50, "l")}}), ""},
      {"name not for by-path", Filters({{"Name", "", {"/a"}}}), pr::kInvalidFilterKey},
      {"path not for by-path", Filters({{"Path", "", {"/a"}}}), pr::kInvalidFilterKey},
      {"tier not for by-path", Filters({{"Tier", "", {"Standard"}}}), pr::kInvalidFilterKey},
      {"tag not for by-path", Filters({{"tag:env", "", {"prod"}}}), pr::kInvalidFilterKey},
      {"key case", Filters({{"type", "", {"String"}}}), pr::kInvalidFilterKey},
      {"empty key", Filters({{"", "", {"String"}}}), pr::kInvalidFilterKey},
      {"repeated key", Filters({{"Type", "", {"String"}}, {"Type", "", {"SecureString"}}}),
       pr::kInvalidFilterKey},
      {"begins with", Filters({{"Label", "BeginsWith", {"pr"}}}), pr::kInvalidFilterOption},
      {"bad option", Filters({{"Type", "Contains", {"String"}}}), pr::kInvalidFilterOption},
      {"no values", Filters({{"Type", "", {}}}), pr::kInvalidFilterValue},
      {"51 values", Filters({{"Label", "", std::vector<std::string>(51, "l")}}),
       pr::kInvalidFilterValue},
      {"bad type value", Filters({{"Type", "", {"Integer"}}}), pr::kInvalidFilterValue},
      {"empty value", Filters({{"KeyId", "", {""}}}), pr::kInvalidFilterValue},
      {"1025-char value", Filters({{"KeyId", "", {std::string(1025, 'k')}}}),
       pr::kInvalidFilterValue},
  };
  for (const FilterCase& c : cases) {
    SCOPED_TRACE(c.label);
    auto parsed = ParseByPathFilters(c.filters);
    ExpectResult(parsed.status(), c.reason, "parameter_filters");
    if (parsed.ok()) {
      ASSERT_EQ(parsed->size(), static_cast<size_t>(c.filters.size()));
      for (const ParameterFilter& f : *parsed) EXPECT_EQ(f.option, "Equals");
    }
  }
}

TEST(ParamRulesTest, ParseDescribeFiltersTable) {
  const std::vector<FilterCase> cases = {
      {"name equals", Filters({{"Name", "", {"/prod/db"}}}), ""},
      {"name begins with", Filters({{"Name", "BeginsWith", {"/prod"}}}), ""},
      {"path one level", Filters({{"Path", "OneLevel", {"/prod/"}}}), ""},
      {"path recursive", Filters({{"Path", "Recursive", {"/"}}}), ""},
      {"path default", Filters({{"Path", "", {"/prod"}}}), ""},
      {"tier", Filters({{"Tier", "", {"Standard", "Advanced"}}}), ""},
      {"data type", Filters({{"DataType", "Equals", {"text"}}}), ""},
      {"tag", Filters({{"tag:env", "", {"prod"}}}), ""},
      {"type and key id", Filters({{"Type", "", {"SecureString"}}, {"KeyId", "", {"k"}}}), ""},
      {"label not for describe", Filters({{"Label", "", {"x"}}}), pr::kInvalidFilterKey},
      {"tag without key", Filters({{"tag:", "", {"x"}}}), pr::kInvalidFilterKey},
      {"tag key too long", Filters({{"tag:" + std::string(129, 'k'), "", {"x"}}}),
       pr::kInvalidFilterKey},
      {"unknown key", Filters({{"Owner", "", {"me"}}}), pr::kInvalidFilterKey},
      {"path equals", Filters({{"Path", "Equals", {"/prod"}}}), pr::kInvalidFilterOption},
      {"name contains", Filters({{"Name", "Contains", {"db"}}}), pr::kInvalidFilterOption},
      {"tier begins with", Filters({{"Tier", "BeginsWith", {"Std"}}}), pr::kInvalidFilterOption},
      {"option case", Filters({{"Name", "equals", {"/a"}}}), pr::kInvalidFilterOption},
      {"bad tier", Filters({{"Tier", "", {"Intelligent-Tiering"}}}), pr::kInvalidFilterValue},
      {"bad path", Filters({{"Path", "", {"prod"}}}), pr::kInvalidFilterValue},
      {"deep path", Filters({{"Path", "", {Levels(16)}}}), pr::kInvalidFilterValue},
      {"no values", Filters({{"Name", "", {}}}), pr::kInvalidFilterValue},
  };
  for (const FilterCase& c : cases) {
    SCOPED_TRACE(c.label);
    ExpectResult(ParseDescribeFilters(c.filters).status(), c.reason, "parameter_filters");
  }
  auto parsed = ParseDescribeFilters(Filters({{"Path", "", {"/prod/"}}, {"Name", "", {"x"}}}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].option, "OneLevel");
  EXPECT_THAT((*parsed)[0].values, ElementsAre("/prod"));  // normalized
  EXPECT_EQ((*parsed)[1].option, "Equals");
}

// A record for matching: name, type, key id, tier, data type, labels on
// older versions, tags.
ParameterRecord MatchRecord(absl::string_view name, params::v1::ParameterType type,
                            absl::string_view key_id = "",
                            params::v1::ParameterTier tier = params::v1::PARAMETER_TIER_STANDARD) {
  ParameterRecord record = MakeRecord(1, 3, {{1, "old"}, {3, "current"}});
  record.set_name(std::string(name));
  record.set_tier(tier);
  for (ParameterVersionInfo& v : *record.mutable_versions()) {
    v.set_type(params::v1::PARAMETER_TYPE_STRING);
  }
  ParameterVersionInfo& latest = *record.mutable_versions(2);
  latest.set_type(type);
  latest.set_key_id(std::string(key_id));
  params::v1::Tag* tag = record.add_tags();
  tag->set_key("env");
  tag->set_value("prod");
  return record;
}

TEST(ParamRulesTest, MatchesParameterFiltersTable) {
  using params::v1::PARAMETER_TIER_ADVANCED;
  using params::v1::PARAMETER_TYPE_SECURE_STRING;
  using params::v1::PARAMETER_TYPE_STRING;
  using params::v1::PARAMETER_TYPE_STRING_LIST;
  const ParameterRecord plain = MatchRecord("/prod/app/db", PARAMETER_TYPE_STRING);
  const ParameterRecord list = MatchRecord("/prod/app/hosts", PARAMETER_TYPE_STRING_LIST);
  const ParameterRecord secret_default = MatchRecord("/prod/secret", PARAMETER_TYPE_SECURE_STRING);
  const ParameterRecord secret_custom = MatchRecord("/prod/app/key", PARAMETER_TYPE_SECURE_STRING,
                                                    "alias/custom", PARAMETER_TIER_ADVANCED);
  const ParameterRecord flat = MatchRecord("flat-name", PARAMETER_TYPE_STRING);

  struct MatchCase {
    std::string label;
    bool describe;
    FilterList filters;
    const ParameterRecord* record;
    bool match;
  };
  const std::vector<MatchCase> cases = {
      {"no filters", false, Filters({}), &plain, true},
      {"type equal", false, Filters({{"Type", "", {"String"}}}), &plain, true},
      {"type other", false, Filters({{"Type", "", {"SecureString"}}}), &plain, false},
      {"type any of", false, Filters({{"Type", "", {"SecureString", "StringList"}}}), &list, true},
      // Type looks at the latest version only (older ones are String).
      {"type of older version", false, Filters({{"Type", "", {"String"}}}), &secret_default, false},
      {"key id default alias", false, Filters({{"KeyId", "", {"alias/coffer/ssm"}}}),
       &secret_default, true},
      {"key id custom", false, Filters({{"KeyId", "", {"alias/custom"}}}), &secret_custom, true},
      {"key id mismatch", false, Filters({{"KeyId", "", {"alias/coffer/ssm"}}}), &secret_custom,
       false},
      {"key id on a String", false, Filters({{"KeyId", "", {"alias/coffer/ssm"}}}), &plain, false},
      {"label on latest", false, Filters({{"Label", "", {"current"}}}), &plain, true},
      {"label on an older version", false, Filters({{"Label", "", {"old"}}}), &plain, true},
      {"label absent", false, Filters({{"Label", "", {"nope"}}}), &plain, false},
      {"filters AND", false, Filters({{"Type", "", {"String"}}, {"Label", "", {"nope"}}}), &plain,
       false},
      {"name equals", true, Filters({{"Name", "", {"/prod/app/db"}}}), &plain, true},
      {"name equals prefix only", true, Filters({{"Name", "", {"/prod/app"}}}), &plain, false},
      {"name begins with", true, Filters({{"Name", "BeginsWith", {"/prod/a"}}}), &plain, true},
      {"name begins with other", true, Filters({{"Name", "BeginsWith", {"/dev"}}}), &plain, false},
      {"path one level", true, Filters({{"Path", "OneLevel", {"/prod/app"}}}), &plain, true},
      {"path one level too deep", true, Filters({{"Path", "OneLevel", {"/prod"}}}), &plain, false},
      {"path one level trailing slash", true, Filters({{"Path", "", {"/prod/"}}}), &secret_default,
       true},
      {"path recursive", true, Filters({{"Path", "Recursive", {"/prod"}}}), &plain, true},
      {"path recursive sibling prefix", true, Filters({{"Path", "Recursive", {"/prod/ap"}}}),
       &plain, false},
      {"path recursive root", true, Filters({{"Path", "Recursive", {"/"}}}), &plain, true},
      {"path root one level", true, Filters({{"Path", "OneLevel", {"/"}}}), &plain, false},
      {"flat name under no path", true, Filters({{"Path", "Recursive", {"/"}}}), &flat, false},
      {"tier standard", true, Filters({{"Tier", "", {"Standard"}}}), &plain, true},
      {"tier advanced", true, Filters({{"Tier", "", {"Advanced"}}}), &secret_custom, true},
      {"tier mismatch", true, Filters({{"Tier", "", {"Advanced"}}}), &plain, false},
      {"data type default text", true, Filters({{"DataType", "", {"text"}}}), &plain, true},
      {"data type other", true, Filters({{"DataType", "", {"aws:ec2:image"}}}), &plain, false},
      {"tag match", true, Filters({{"tag:env", "", {"dev", "prod"}}}), &plain, true},
      {"tag value mismatch", true, Filters({{"tag:env", "", {"dev"}}}), &plain, false},
      {"tag key absent", true, Filters({{"tag:team", "", {"prod"}}}), &plain, false},
  };
  for (const MatchCase& c : cases) {
    SCOPED_TRACE(c.label);
    auto parsed = c.describe ? ParseDescribeFilters(c.filters) : ParseByPathFilters(c.filters);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(MatchesParameterFilters(*c.record, *parsed), c.match);
  }
  ParameterRecord empty;
  EXPECT_FALSE(MatchesParameterFilters(empty, {}));
}

}  // namespace
}  // namespace coffer::store
