// The parameter rules for versions, labels and filters.
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
#include "services/store/params/param_rules.h"
#include "tests/services/store/params/param_rules_testing.h"

namespace coffer::store {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

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
  ExpectResult(n.status(), reason::kParameterMaxVersionLimitExceeded);
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
  ExpectResult(invalid.status(), reason::kParameterVersionLabelLimitExceeded);
  EXPECT_EQ(invalid.status().code(), C::kResourceExhausted);
  EXPECT_TRUE(MessageDifferencer::Equals(record, before));

  // Exactly ten is fine.
  ParameterRecord nine = MakeRecord(1, 1);
  ASSERT_TRUE(ApplyLabels(nine, 1, {"a", "b", "c", "d", "e", "f", "g", "h", "i"}).ok());
  ASSERT_TRUE(ApplyLabels(nine, 1, {"j"}).ok());
  EXPECT_EQ(LabelsOf(nine, 1).size(), 10u);
  const ParameterRecord ten = nine;
  ExpectResult(ApplyLabels(nine, 1, {"k"}).status(), reason::kParameterVersionLabelLimitExceeded);
  EXPECT_TRUE(MessageDifferencer::Equals(nine, ten));
}

TEST(ParamRulesTest, ApplyLabelsErrors) {
  ParameterRecord record = MakeRecord(1, 3);
  const ParameterRecord before = record;
  absl::StatusOr<std::vector<std::string>> r = ApplyLabels(record, 7, {"prod"});
  ExpectResult(r.status(), reason::kParameterVersionNotFound);
  ExpectResult(ApplyLabels(record, 1, {}).status(), reason::kValidation, "labels");
  ExpectResult(ApplyLabels(record, 1, std::vector<std::string>(11, "x")).status(),
               reason::kValidation, "labels");
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
  ExpectResult(RemoveLabels(record, 9, {"beta"}).status(), reason::kParameterVersionNotFound);
  ExpectResult(RemoveLabels(record, 0, {"beta"}).status(), reason::kValidation,
               "parameter_version");
  ExpectResult(RemoveLabels(record, 1, {}).status(), reason::kValidation, "labels");
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
      {{"/prod/db", 2, ""}, reason::kParameterVersionNotFound, 0},  // dropped
      {{"/prod/db", 7, ""}, reason::kParameterVersionNotFound, 0},
      {{"/prod/db", 0, "dev"}, reason::kParameterVersionNotFound, 0},
      {{"/prod/db", 0, "-1"}, reason::kParameterVersionNotFound, 0},
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
  ExpectResult(SelectVersion(empty, Selector{"/gone", 0, ""}).status(), reason::kParameterNotFound);
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
      {"name not for by-path", Filters({{"Name", "", {"/a"}}}), reason::kInvalidFilterKey},
      {"path not for by-path", Filters({{"Path", "", {"/a"}}}), reason::kInvalidFilterKey},
      {"tier not for by-path", Filters({{"Tier", "", {"Standard"}}}), reason::kInvalidFilterKey},
      {"tag not for by-path", Filters({{"tag:env", "", {"prod"}}}), reason::kInvalidFilterKey},
      {"key case", Filters({{"type", "", {"String"}}}), reason::kInvalidFilterKey},
      {"empty key", Filters({{"", "", {"String"}}}), reason::kInvalidFilterKey},
      {"repeated key", Filters({{"Type", "", {"String"}}, {"Type", "", {"SecureString"}}}),
       reason::kInvalidFilterKey},
      {"begins with", Filters({{"Label", "BeginsWith", {"pr"}}}), reason::kInvalidFilterOption},
      {"bad option", Filters({{"Type", "Contains", {"String"}}}), reason::kInvalidFilterOption},
      {"no values", Filters({{"Type", "", {}}}), reason::kInvalidFilterValue},
      {"51 values", Filters({{"Label", "", std::vector<std::string>(51, "l")}}),
       reason::kInvalidFilterValue},
      {"bad type value", Filters({{"Type", "", {"Integer"}}}), reason::kInvalidFilterValue},
      {"empty value", Filters({{"KeyId", "", {""}}}), reason::kInvalidFilterValue},
      {"1025-char value", Filters({{"KeyId", "", {std::string(1025, 'k')}}}),
       reason::kInvalidFilterValue},
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
      {"label not for describe", Filters({{"Label", "", {"x"}}}), reason::kInvalidFilterKey},
      {"tag without key", Filters({{"tag:", "", {"x"}}}), reason::kInvalidFilterKey},
      {"tag key too long", Filters({{"tag:" + std::string(129, 'k'), "", {"x"}}}),
       reason::kInvalidFilterKey},
      {"unknown key", Filters({{"Owner", "", {"me"}}}), reason::kInvalidFilterKey},
      {"path equals", Filters({{"Path", "Equals", {"/prod"}}}), reason::kInvalidFilterOption},
      {"name contains", Filters({{"Name", "Contains", {"db"}}}), reason::kInvalidFilterOption},
      {"tier begins with", Filters({{"Tier", "BeginsWith", {"Std"}}}),
       reason::kInvalidFilterOption},
      {"option case", Filters({{"Name", "equals", {"/a"}}}), reason::kInvalidFilterOption},
      {"bad tier", Filters({{"Tier", "", {"Intelligent-Tiering"}}}), reason::kInvalidFilterValue},
      {"bad path", Filters({{"Path", "", {"prod"}}}), reason::kInvalidFilterValue},
      {"deep path", Filters({{"Path", "", {Levels(16)}}}), reason::kInvalidFilterValue},
      {"no values", Filters({{"Name", "", {}}}), reason::kInvalidFilterValue},
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
