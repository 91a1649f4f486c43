#include "services/store/secrets/staging_labels.h"

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer::store {
namespace {

using ::coffer::internal::store::v1::SecretRecord;
using ::coffer::internal::store::v1::VersionSummary;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

using Labels = std::map<std::string, std::vector<std::string>>;
// Versions in record order (oldest first) with their labels.
using Layout = std::vector<std::pair<std::string, std::vector<std::string>>>;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const std::string C = kAwsCurrent;
const std::string P = kAwsPrevious;
const std::string PENDING = kAwsPending;

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

// Versions created one minute apart, two days ago onwards, all with values
// except those whose id starts with "empty" (a rotation placeholder).
SecretRecord MakeRecord(const Layout& layout) {
  SecretRecord record;
  record.set_name("app/db");
  absl::Time t = kNow - absl::Hours(48);
  for (const auto& [id, stages] : layout) {
    VersionSummary* v = record.add_versions();
    v->set_version_id(id);
    v->set_has_value(!absl::StartsWith(id, "empty"));
    *v->mutable_created_date() = ToProto(t);
    for (const std::string& s : stages) v->add_stages(s);
    t += absl::Minutes(1);
  }
  return record;
}

// Labelled() with each label list sorted, so cases need not care about order.
Labels SortedLabels(const SecretRecord& record) {
  Labels out = StagingLabels::Labelled(record);
  for (auto& [id, labels] : out) std::sort(labels.begin(), labels.end());
  return out;
}

Labels Sorted(Labels labels) {
  for (auto& [id, l] : labels) std::sort(l.begin(), l.end());
  return labels;
}

std::vector<std::string> Ids(const SecretRecord& record) {
  std::vector<std::string> ids;
  for (const auto& v : record.versions()) ids.push_back(v.version_id());
  return ids;
}

// AWSCURRENT plus `custom` custom labels on v1; v2 has none.
Layout Crowded(int custom) {
  std::vector<std::string> labels = {C};
  for (int i = 0; i < custom; ++i) labels.push_back(absl::StrCat("c", i));
  return {{"v1", labels}, {"v2", {}}};
}

// The labels of Crowded(custom), unchanged.
Labels CrowdedLabels(int custom) {
  Labels out = {{"v1", {C}}};
  for (int i = 0; i < custom; ++i) out["v1"].push_back(absl::StrCat("c", i));
  return out;
}

struct Add {
  std::string id;
  std::vector<std::string> stages;
};

struct Move {
  std::string stage;
  std::string remove_from;
  std::string move_to;
};

using Op = std::function<absl::Status(SecretRecord&)>;

struct LabelCase {
  LabelCase(std::string label, Layout before, Op op, Labels after, std::string reason = "",
            std::string field = "")
      : label(std::move(label)),
        before(std::move(before)),
        op(std::move(op)),
        after(std::move(after)),
        reason(std::move(reason)),
        field(std::move(field)) {}

  std::string label;
  Layout before;
  Op op;
  // Exact version -> labels afterwards (the "before" labels on error).
  Labels after;
  std::string reason;  // "" = OK
  std::string field;   // the field the error names
};

Op Do(Add a) {
  return [a](SecretRecord& r) {
    VersionSummary v;
    v.set_version_id(a.id);
    v.add_stages("ignored: AddVersion replaces the stages");
    *v.mutable_created_date() = ToProto(kNow);
    return StagingLabels::AddVersion(r, v, a.stages);
  };
}

Op Do(Move m) {
  return [m](SecretRecord& r) {
    return StagingLabels::MoveStage(r, m.stage, m.remove_from, m.move_to);
  };
}

void RunCases(const std::vector<LabelCase>& cases) {
  for (const LabelCase& c : cases) {
    SCOPED_TRACE(c.label);
    SecretRecord record = MakeRecord(c.before);
    const SecretRecord original = record;
    absl::Status s = c.op(record);
    EXPECT_EQ(s.ok() ? "" : ErrorReason(s), c.reason) << s;
    EXPECT_EQ(SortedLabels(record), Sorted(c.after));
    if (!s.ok()) {
      // On error the record is untouched, byte for byte.
      EXPECT_EQ(record.SerializeAsString(), original.SerializeAsString());
      ASSERT_TRUE(GetErrorDetail(s).has_value());
      EXPECT_EQ(GetErrorDetail(s)->field, c.field);
      EXPECT_THAT(std::string(s.message()), HasSubstr(c.field));
    }
    // A label is on at most one version.
    std::map<std::string, int> holders;
    for (const auto& v : record.versions()) {
      for (const auto& l : v.stages()) EXPECT_EQ(++holders[l], 1) << l;
    }
  }
}

TEST(StagingLabelsTest, AddVersionTable) {
  RunCases({
      // CreateSecret with a value.
      {"create: first version gets AWSCURRENT", {}, Do(Add{"v1", {}}), {{"v1", {C}}}},
      {"create naming only a custom label still gets AWSCURRENT",
       {},
       Do(Add{"v1", {"custom"}}),
       {{"v1", {C, "custom"}}}},
      {"create naming AWSPENDING still gets AWSCURRENT",
       {},
       Do(Add{"v1", {PENDING}}),
       {{"v1", {C, PENDING}}}},
      {"create naming AWSCURRENT", {}, Do(Add{"v1", {C}}), {{"v1", {C}}}},
      {"no version is current: the new one becomes current",
       {{"v1", {}}, {"v2", {"blue"}}},
       Do(Add{"v3", {"green"}}),
       {{"v2", {"blue"}}, {"v3", {C, "green"}}}},
      // PutSecretValue / UpdateSecret without stages.
      {"put without stages: current to new, previous to old current",
       {{"v1", {C}}},
       Do(Add{"v2", {}}),
       {{"v1", {P}}, {"v2", {C}}}},
      {"put without stages again: the oldest is deprecated",
       {{"v1", {P}}, {"v2", {C}}},
       Do(Add{"v3", {}}),
       {{"v2", {P}}, {"v3", {C}}}},
      {"put without stages keeps custom labels where they are",
       {{"v1", {P, "blue"}}, {"v2", {C, "green"}}},
       Do(Add{"v3", {}}),
       {{"v1", {"blue"}}, {"v2", {P, "green"}}, {"v3", {C}}}},
      // PutSecretValue with version_stages.
      {"put with custom stages only: AWSCURRENT stays",
       {{"v0", {P}}, {"v1", {C}}},
       Do(Add{"v2", {"custom"}}),
       {{"v0", {P}}, {"v1", {C}}, {"v2", {"custom"}}}},
      {"put with AWSPENDING: AWSCURRENT and AWSPREVIOUS stay",
       {{"v0", {P}}, {"v1", {C}}},
       Do(Add{"v2", {PENDING}}),
       {{"v0", {P}}, {"v1", {C}}, {"v2", {PENDING}}}},
      {"put with stages including AWSCURRENT: previous rule applies",
       {{"v0", {P}}, {"v1", {C, "custom"}}},
       Do(Add{"v2", {"blue", C}}),
       {{"v1", {P, "custom"}}, {"v2", {C, "blue"}}}},
      {"put moving a custom label from another version deprecates it",
       {{"v0", {"custom"}}, {"v1", {C}}},
       Do(Add{"v2", {"custom"}}),
       {{"v1", {C}}, {"v2", {"custom"}}}},
      {"put moving a custom label off the current version",
       {{"v1", {C, "custom"}}},
       Do(Add{"v2", {"custom"}}),
       {{"v1", {C}}, {"v2", {"custom"}}}},
      {"put moving AWSPENDING from an older version",
       {{"v1", {C}}, {"v2", {PENDING}}},
       Do(Add{"v3", {PENDING}}),
       {{"v1", {C}}, {"v3", {PENDING}}}},
      {"put naming AWSPREVIOUS alone moves only AWSPREVIOUS",
       {{"v1", {P}}, {"v2", {C}}},
       Do(Add{"v3", {P}}),
       {{"v2", {C}}, {"v3", {P}}}},
      {"put naming AWSCURRENT and AWSPREVIOUS: the explicit label wins",
       {{"v1", {C}}},
       Do(Add{"v2", {C, P}}),
       {{"v2", {C, P}}}},
      {"duplicate stages collapse",
       {{"v1", {C}}},
       Do(Add{"v2", {"a", "a"}}),
       {{"v1", {C}}, {"v2", {"a"}}}},
      // Refusals.
      {"existing version id",
       {{"v1", {C}}, {"v2", {}}},
       Do(Add{"v2", {}}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "client_request_token"},
      {"empty version id",
       {{"v1", {C}}},
       Do(Add{"", {}}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "client_request_token"},
      // The 20-label limit.
      {"20 labels after the change", Crowded(18), Do(Add{"v3", {"x"}}),
       [] {
         Labels l = CrowdedLabels(18);
         l["v3"] = {"x"};
         return l;
       }()},
      {"21 labels after the change", Crowded(18), Do(Add{"v3", {"x", "y"}}), CrowdedLabels(18),
       reason::kLimitExceeded, "version_stages"},
      {"moving labels at 20 is fine", Crowded(19), Do(Add{"v3", {"c0", "c1"}}),
       [] {
         Labels l = CrowdedLabels(19);
         auto& v1 = l["v1"];
         v1.erase(std::remove(v1.begin(), v1.end(), "c0"), v1.end());
         v1.erase(std::remove(v1.begin(), v1.end(), "c1"), v1.end());
         l["v3"] = {"c0", "c1"};
         return l;
       }()},
      {"AWSPREVIOUS appearing would be the 21st label", Crowded(19), Do(Add{"v3", {}}),
       CrowdedLabels(19), reason::kLimitExceeded, "version_stages"},
  });
}

TEST(StagingLabelsTest, MoveStageTable) {
  RunCases({
      // Moves.
      {"rotation finish: AWSCURRENT to the pending version",
       {{"v1", {C}}, {"v2", {PENDING}}},
       Do(Move{C, "v1", "v2"}),
       {{"v1", {P}}, {"v2", {C, PENDING}}}},
      {"AWSCURRENT never goes to a version without a value",
       {{"v1", {C}}, {"empty2", {PENDING}}},
       Do(Move{C, "v1", "empty2"}),
       {{"v1", {C}}, {"empty2", {PENDING}}},
       reason::kInvalidParameter,
       "move_to_version_id"},
      {"nor AWSPREVIOUS",
       {{"v1", {C}}, {"empty2", {PENDING}}},
       Do(Move{P, "", "empty2"}),
       {{"v1", {C}}, {"empty2", {PENDING}}},
       reason::kInvalidParameter,
       "move_to_version_id"},
      {"custom labels may go to a placeholder",
       {{"v1", {C}}, {"empty2", {PENDING}}},
       Do(Move{"blue", "", "empty2"}),
       {{"v1", {C}}, {"empty2", {PENDING, "blue"}}}},
      {"moving AWSCURRENT moves AWSPREVIOUS",
       {{"v0", {P}}, {"v1", {C}}, {"v2", {}}},
       Do(Move{C, "v1", "v2"}),
       {{"v1", {P}}, {"v2", {C}}}},
      {"rollback: AWSCURRENT back to the AWSPREVIOUS holder",
       {{"v1", {P}}, {"v2", {C}}},
       Do(Move{C, "v2", "v1"}),
       {{"v1", {C}}, {"v2", {P}}}},
      {"moving AWSCURRENT to a deprecated version",
       {{"v0", {}}, {"v1", {P}}, {"v2", {C, "blue"}}},
       Do(Move{C, "v2", "v0"}),
       {{"v0", {C}}, {"v2", {P, "blue"}}}},
      {"move a custom label between versions",
       {{"v1", {C, "blue"}}, {"v2", {}}},
       Do(Move{"blue", "v1", "v2"}),
       {{"v1", {C}}, {"v2", {"blue"}}}},
      {"attach a label that is on no version",
       {{"v1", {C}}, {"v2", {}}},
       Do(Move{"blue", "", "v2"}),
       {{"v1", {C}}, {"v2", {"blue"}}}},
      {"moving AWSPREVIOUS leaves AWSCURRENT alone",
       {{"v0", {}}, {"v1", {P}}, {"v2", {C}}},
       Do(Move{P, "v1", "v0"}),
       {{"v0", {P}}, {"v2", {C}}}},
      {"move AWSPENDING onto the current version",
       {{"v1", {C}}, {"v2", {PENDING}}},
       Do(Move{PENDING, "v2", "v1"}),
       {{"v1", {C, PENDING}}}},
      // Removal.
      {"remove a custom label",
       {{"v1", {C, "custom"}}},
       Do(Move{"custom", "v1", ""}),
       {{"v1", {C}}}},
      {"removing the last label deprecates the version",
       {{"v1", {C}}, {"v2", {"custom"}}},
       Do(Move{"custom", "v2", ""}),
       {{"v1", {C}}}},
      {"remove AWSPREVIOUS", {{"v1", {P}}, {"v2", {C}}}, Do(Move{P, "v1", ""}), {{"v2", {C}}}},
      // No-ops.
      {"no-op move to the same version",
       {{"v0", {P}}, {"v1", {C}}},
       Do(Move{C, "v1", "v1"}),
       {{"v0", {P}}, {"v1", {C}}}},
      {"no-op move to the same version without remove_from",
       {{"v0", {P}}, {"v1", {C, "blue"}}},
       Do(Move{"blue", "", "v1"}),
       {{"v0", {P}}, {"v1", {C, "blue"}}}},
      // Refusals.
      {"remove_from missing while the label is attached",
       {{"v1", {C}}, {"v2", {}}},
       Do(Move{C, "", "v2"}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "remove_from_version_id"},
      {"remove_from names another version",
       {{"v1", {C}}, {"v2", {}}, {"v3", {"blue"}}},
       Do(Move{C, "v3", "v2"}),
       {{"v1", {C}}, {"v3", {"blue"}}},
       reason::kInvalidParameter,
       "remove_from_version_id"},
      {"remove_from names a version without the label (label unattached)",
       {{"v1", {C}}, {"v2", {}}},
       Do(Move{"blue", "v1", "v2"}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "remove_from_version_id"},
      {"no-op target but remove_from names another version",
       {{"v1", {C}}, {"v2", {}}},
       Do(Move{C, "v2", "v1"}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "remove_from_version_id"},
      {"removing AWSCURRENT is refused",
       {{"v1", {C}}},
       Do(Move{C, "v1", ""}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "move_to_version_id"},
      {"move to an unknown version",
       {{"v1", {C, "blue"}}},
       Do(Move{"blue", "v1", "nope"}),
       {{"v1", {C, "blue"}}},
       reason::kResourceNotFound,
       "move_to_version_id"},
      {"move AWSCURRENT to an unknown version",
       {{"v1", {C}}},
       Do(Move{C, "v1", "nope"}),
       {{"v1", {C}}},
       reason::kResourceNotFound,
       "move_to_version_id"},
      {"remove from an unknown version",
       {{"v1", {C, "blue"}}},
       Do(Move{"blue", "nope", ""}),
       {{"v1", {C, "blue"}}},
       reason::kResourceNotFound,
       "remove_from_version_id"},
      {"neither version given",
       {{"v1", {C, "blue"}}},
       Do(Move{"blue", "", ""}),
       {{"v1", {C, "blue"}}},
       reason::kInvalidParameter,
       "move_to_version_id"},
      {"empty label",
       {{"v1", {C}}},
       Do(Move{"", "", "v1"}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "version_stage"},
      {"257-character label",
       {{"v1", {C}}},
       Do(Move{std::string(257, 'x'), "", "v1"}),
       {{"v1", {C}}},
       reason::kInvalidParameter,
       "version_stage"},
      // The 20-label limit.
      {"a 20th label", Crowded(18), Do(Move{"x", "", "v2"}),
       [] {
         Labels l = CrowdedLabels(18);
         l["v2"] = {"x"};
         return l;
       }()},
      {"a 21st label", Crowded(19), Do(Move{"x", "", "v2"}), CrowdedLabels(19),
       reason::kLimitExceeded, "version_stages"},
      {"moving an existing label at 20", Crowded(19), Do(Move{"c0", "v1", "v2"}),
       [] {
         Labels l = CrowdedLabels(19);
         l["v1"].erase(std::find(l["v1"].begin(), l["v1"].end(), "c0"));
         l["v2"] = {"c0"};
         return l;
       }()},
      {"AWSPREVIOUS appearing would be the 21st label", Crowded(19), Do(Move{C, "v1", "v2"}),
       CrowdedLabels(19), reason::kLimitExceeded, "version_stages"},
  });
}

TEST(StagingLabelsTest, FindAndLabelled) {
  SecretRecord record = MakeRecord({{"v1", {P}}, {"v2", {}}, {"v3", {C, "blue"}}});
  ASSERT_NE(StagingLabels::FindVersion(record, "v2"), nullptr);
  EXPECT_EQ(StagingLabels::FindVersion(record, "v2")->version_id(), "v2");
  EXPECT_EQ(StagingLabels::FindVersion(record, "v9"), nullptr);
  ASSERT_NE(StagingLabels::FindStage(record, "blue"), nullptr);
  EXPECT_EQ(StagingLabels::FindStage(record, "blue")->version_id(), "v3");
  EXPECT_EQ(StagingLabels::FindStage(record, PENDING), nullptr);
  EXPECT_EQ(StagingLabels::Labelled(record), (Labels{{"v1", {P}}, {"v3", {C, "blue"}}}));
}

TEST(StagingLabelsTest, AddVersionKeepsSummaryFieldsAndAppends) {
  SecretRecord record = MakeRecord({{"v1", {C}}});
  VersionSummary v;
  v.set_version_id("v2");
  v.set_kms_key_arn("arn:key");
  v.set_has_value(true);
  ASSERT_TRUE(StagingLabels::AddVersion(record, v, {}).ok());
  EXPECT_THAT(Ids(record), ElementsAreArray({"v1", "v2"}));
  EXPECT_EQ(record.versions(1).kms_key_arn(), "arn:key");
  EXPECT_TRUE(record.versions(1).has_value());
}

TEST(StagingLabelsTest, DeprecatedVersionStaysInRecord) {
  SecretRecord record = MakeRecord({{"v1", {C}}});
  ASSERT_TRUE(StagingLabels::AddVersion(record,
                                        [] {
                                          VersionSummary v;
                                          v.set_version_id("v2");
                                          return v;
                                        }(),
                                        {})
                  .ok());
  ASSERT_TRUE(StagingLabels::AddVersion(record,
                                        [] {
                                          VersionSummary v;
                                          v.set_version_id("v3");
                                          return v;
                                        }(),
                                        {})
                  .ok());
  EXPECT_EQ(StagingLabels::Labelled(record), (Labels{{"v2", {P}}, {"v3", {C}}}));
  ASSERT_NE(StagingLabels::FindVersion(record, "v1"), nullptr);
  EXPECT_TRUE(StagingLabels::FindVersion(record, "v1")->stages().empty());
}

// --- clean-up of deprecated versions -----------------------------------

struct CleanupCase {
  std::string label;
  int versions;
  std::vector<int> labelled;  // indexes with a label
  // Age of version i (record order is oldest first).
  std::function<absl::Duration(int)> age;
  std::vector<std::string> removed;
};

std::string Vid(int i) { return absl::StrCat("v", i); }

std::vector<std::string> Range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(Vid(i));
  return out;
}

TEST(StagingLabelsTest, RemoveDeprecatedTable) {
  auto old = [](int i) { return absl::Hours(200) - absl::Minutes(i); };
  const std::vector<CleanupCase> cases = {
      {"100 versions: nothing", 100, {98, 99}, old, {}},
      {"105 with the 2 newest labelled: the 5 oldest go", 105, {103, 104}, old, Range(0, 5)},
      {"105 with the 2 oldest labelled: they stay", 105, {0, 1}, old, Range(2, 7)},
      {"105 labelled in the middle", 105, {2, 50}, old, {Vid(0), Vid(1), Vid(3), Vid(4), Vid(5)}},
      {"younger than 24h are kept even beyond 100",
       105,
       {104},
       [](int i) { return absl::Hours(23) - absl::Minutes(i); },
       {}},
      {"exactly 24h is not older than 24h",
       101,
       {100},
       [](int i) { return i == 0 ? absl::Hours(24) : absl::Hours(1); },
       {}},
      {"only the old ones go: 3 old, 102 remain",
       105,
       {104},
       [](int i) { return i < 3 ? absl::Hours(25) : absl::Hours(1); },
       Range(0, 3)},
      {"oldest first by creation date, not record position",
       102,
       {101},
       [](int i) { return i == 50 ? absl::Hours(500) : absl::Hours(100) - absl::Minutes(i); },
       {Vid(50), Vid(0)}},
      {"all labelled: nothing", 5, {0, 1, 2, 3, 4}, old, {}},
  };
  for (const CleanupCase& c : cases) {
    SCOPED_TRACE(c.label);
    SecretRecord record;
    for (int i = 0; i < c.versions; ++i) {
      VersionSummary* v = record.add_versions();
      v->set_version_id(Vid(i));
      *v->mutable_created_date() = ToProto(kNow - c.age(i));
      if (std::find(c.labelled.begin(), c.labelled.end(), i) != c.labelled.end()) {
        v->add_stages(absl::StrCat("L", i));
      }
    }
    const Labels labelled_before = StagingLabels::Labelled(record);
    std::vector<std::string> expected_ids;
    for (int i = 0; i < c.versions; ++i) {
      if (std::find(c.removed.begin(), c.removed.end(), Vid(i)) == c.removed.end()) {
        expected_ids.push_back(Vid(i));
      }
    }

    std::vector<std::string> removed = StagingLabels::RemoveDeprecated(record, kNow);
    EXPECT_EQ(removed, c.removed);
    EXPECT_EQ(Ids(record), expected_ids);  // record order kept
    EXPECT_EQ(StagingLabels::Labelled(record), labelled_before);
  }
}

TEST(StagingLabelsTest, RemoveDeprecatedAfterManyPuts) {
  // 110 puts, 2 hours apart: only AWSCURRENT and AWSPREVIOUS remain labelled.
  SecretRecord record;
  absl::Time t = kNow - absl::Hours(2 * 110);
  for (int i = 0; i < 110; ++i) {
    VersionSummary v;
    v.set_version_id(Vid(i));
    *v.mutable_created_date() = ToProto(t);
    t += absl::Hours(2);
    ASSERT_TRUE(StagingLabels::AddVersion(record, v, {}).ok());
  }
  EXPECT_EQ(StagingLabels::Labelled(record), (Labels{{Vid(108), {P}}, {Vid(109), {C}}}));
  EXPECT_EQ(StagingLabels::RemoveDeprecated(record, kNow), Range(0, 10));
  EXPECT_EQ(record.versions_size(), kMaxVersionsKept);
  EXPECT_TRUE(StagingLabels::RemoveDeprecated(record, kNow).empty());
}

}  // namespace
}  // namespace coffer::store
