// ParamStore logic on a real RocksDB with the real KMS logic in-process, a
// real change log, and a fake clock.
#include "services/store/params/param_store.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "tests/services/store/store_fixture.h"
#include "tests/testing/matchers.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace pm = ::coffer::params::v1;

using ::coffer::testing::HasReason;

class ParamStoreTest : public StoreFixture {
 protected:
  ParamStoreTest() { param_options_.scan_budget = 25; }

  absl::StatusOr<pm::PutParameterResponse> Put(const std::string& name, const std::string& value,
                                               pm::ParameterType type = pm::PARAMETER_TYPE_STRING,
                                               bool overwrite = false) {
    pm::PutParameterRequest req;
    req.set_name(name);
    req.set_value(value);
    req.set_type(type);
    req.set_overwrite(overwrite);
    return params_->PutParameter(req);
  }

  absl::StatusOr<pm::Parameter> Get(const std::string& name, bool decrypt = false) {
    pm::GetParameterRequest req;
    req.set_name(name);
    req.set_with_decryption(decrypt);
    auto resp = params_->GetParameter(req);
    if (!resp.ok()) return resp.status();
    return resp->parameter();
  }

  std::vector<std::string> ByPath(const std::string& path, bool recursive,
                                  std::function<void(pm::GetParametersByPathRequest&)> edit = {},
                                  int* pages = nullptr) {
    std::vector<std::string> names;
    std::string token;
    int n = 0;
    do {
      pm::GetParametersByPathRequest req;
      req.set_path(path);
      req.set_recursive(recursive);
      req.set_next_token(token);
      if (edit) edit(req);
      auto resp = params_->GetParametersByPath(req);
      EXPECT_TRUE(resp.ok()) << resp.status();
      if (!resp.ok()) break;
      EXPECT_LE(resp->parameters_size(), 10);
      for (const auto& p : resp->parameters()) names.push_back(p.name());
      token = resp->next_token();
      ++n;
    } while (!token.empty());
    if (pages) *pages = n;
    return names;
  }

  std::vector<coffer::v1::ChangeEvent> Events(uint64_t after) {
    auto events = changes_->Read(after, 1000);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.value_or(std::vector<coffer::v1::ChangeEvent>());
  }
};
COFFER_STORE_ENGINES(ParamStoreTest);

TEST_P(ParamStoreTest, PutGetVersionsAndOverwrite) {
  auto first = Put("/app/db/url", "postgres://a");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 1);
  EXPECT_EQ(first->tier(), pm::PARAMETER_TIER_STANDARD);
  EXPECT_THAT(Put("/app/db/url", "postgres://b").status(),
              HasReason(reason::kParameterAlreadyExists));
  EXPECT_EQ(Put("/app/db/url", "postgres://b").status().code(), absl::StatusCode::kAlreadyExists);
  auto second = Put("/app/db/url", "postgres://b", pm::PARAMETER_TYPE_UNSPECIFIED, true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->version(), 2);
  auto latest = Get("/app/db/url");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->value(), "postgres://b");
  EXPECT_EQ(latest->version(), 2);
  EXPECT_EQ(latest->arn(), "arn:coffer:ssm:local:000000000000:parameter/app/db/url");
  auto v1 = Get("/app/db/url:1");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->value(), "postgres://a");
  EXPECT_EQ(v1->selector(), ":1");
  EXPECT_THAT(Get("/app/db/url:7").status(), HasReason(reason::kParameterVersionNotFound));
  EXPECT_THAT(Get("/app/missing").status(), HasReason(reason::kParameterNotFound));
  EXPECT_EQ(Get("/app/missing").status().code(), absl::StatusCode::kNotFound);
  // Type is required on create.
  EXPECT_THAT(Put("/app/untyped", "x", pm::PARAMETER_TYPE_UNSPECIFIED).status(),
              HasReason(reason::kValidation));
}

TEST_P(ParamStoreTest, SecureStringIsEncryptedAndDecryptedOnlyOnRequest) {
  ASSERT_TRUE(
      Put("/app/db/password", "DISTINCTIVE-PARAM-VALUE", pm::PARAMETER_TYPE_SECURE_STRING).ok());
  auto hidden = Get("/app/db/password");
  ASSERT_TRUE(hidden.ok());
  EXPECT_NE(hidden->value(), "DISTINCTIVE-PARAM-VALUE");
  auto shown = Get("/app/db/password", true);
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->value(), "DISTINCTIVE-PARAM-VALUE");
  // with_decryption is ignored for plain types.
  ASSERT_TRUE(Put("/app/db/host", "db1").ok());
  EXPECT_EQ(Get("/app/db/host", true)->value(), "db1");
  EXPECT_EQ(Get("/app/db/host", false)->value(), "db1");
  // Nothing stored holds the plaintext.
  for (const auto& family : schema::ColumnFamilies()) {
    ASSERT_TRUE(db_->Scan(family, {},
                          [&](absl::string_view k, absl::string_view v) {
                            EXPECT_FALSE(absl::StrContains(v, "DISTINCTIVE-PARAM-VALUE"))
                                << family << " " << k;
                            return true;
                          })
                    .ok());
  }
  // key_id is for SecureString only.
  pm::PutParameterRequest bad;
  bad.set_name("/app/x");
  bad.set_value("v");
  bad.set_type(pm::PARAMETER_TYPE_STRING);
  bad.set_key_id("alias/other");
  EXPECT_THAT(params_->PutParameter(bad).status(), HasReason(reason::kValidation));
}

TEST_P(ParamStoreTest, TiersPatternsAndLimits) {
  EXPECT_THAT(Put("/big", std::string(4097, 'v')).status(), HasReason(reason::kValidation));
  pm::PutParameterRequest advanced;
  advanced.set_name("/big");
  advanced.set_value(std::string(8192, 'v'));
  advanced.set_type(pm::PARAMETER_TYPE_STRING);
  advanced.set_tier(pm::PARAMETER_TIER_ADVANCED);
  ASSERT_TRUE(params_->PutParameter(advanced).ok());
  advanced.set_value(std::string(8193, 'v'));
  advanced.set_overwrite(true);
  EXPECT_THAT(params_->PutParameter(advanced).status(), HasReason(reason::kValidation));
  advanced.set_value("small");
  advanced.set_tier(pm::PARAMETER_TIER_STANDARD);
  EXPECT_THAT(params_->PutParameter(advanced).status(), HasReason(reason::kValidation));

  pm::PutParameterRequest patterned;
  patterned.set_name("/port");
  patterned.set_type(pm::PARAMETER_TYPE_STRING);
  patterned.set_allowed_pattern("^[0-9]+$");
  patterned.set_value("80a");
  EXPECT_THAT(params_->PutParameter(patterned).status(),
              HasReason(reason::kParameterPatternMismatch));
  patterned.set_value("8080");
  ASSERT_TRUE(params_->PutParameter(patterned).ok());
  // The pattern carries over to later versions.
  EXPECT_THAT(Put("/port", "eighty", pm::PARAMETER_TYPE_UNSPECIFIED, true).status(),
              HasReason(reason::kParameterPatternMismatch));
  EXPECT_THAT(Put("/aws/x", "v").status(), HasReason(reason::kValidation));
  std::string deep;
  for (int i = 0; i < 16; ++i) deep += "/l";
  EXPECT_THAT(Put(deep, "v").status(), HasReason(reason::kHierarchyLevelLimitExceeded));
}

TEST_P(ParamStoreTest, HundredVersionsAndLabelledOldestBlocks) {
  ASSERT_TRUE(Put("/p", "v1").ok());
  pm::LabelParameterVersionRequest label;
  label.set_name("/p");
  label.set_parameter_version(1);
  label.add_labels("first");
  label.add_labels("1bad");
  auto labelled = params_->LabelParameterVersion(label);
  ASSERT_TRUE(labelled.ok()) << labelled.status();
  EXPECT_THAT(labelled->invalid_labels(), ElementsAre("1bad"));
  for (int i = 2; i <= 100; ++i) {
    ASSERT_TRUE(Put("/p", absl::StrCat("v", i), pm::PARAMETER_TYPE_UNSPECIFIED, true).ok()) << i;
  }
  auto blocked = Put("/p", "v101", pm::PARAMETER_TYPE_UNSPECIFIED, true);
  EXPECT_THAT(blocked.status(), HasReason(reason::kParameterMaxVersionLimitExceeded));
  EXPECT_EQ(Get("/p")->version(), 100);
  EXPECT_EQ(Get("/p:first")->value(), "v1");
  pm::UnlabelParameterVersionRequest unlabel;
  unlabel.set_name("/p");
  unlabel.set_parameter_version(1);
  unlabel.add_labels("first");
  unlabel.add_labels("never-there");
  auto removed = params_->UnlabelParameterVersion(unlabel);
  ASSERT_TRUE(removed.ok());
  EXPECT_THAT(removed->removed_labels(), ElementsAre("first"));
  EXPECT_THAT(removed->invalid_labels(), ElementsAre("never-there"));
  ASSERT_TRUE(Put("/p", "v101", pm::PARAMETER_TYPE_UNSPECIFIED, true).ok());
  EXPECT_THAT(Get("/p:1").status(), HasReason(reason::kParameterVersionNotFound));
  pm::GetParameterHistoryRequest history;
  history.set_name("/p");
  int total = 0;
  std::string token;
  do {
    history.set_next_token(token);
    auto page = params_->GetParameterHistory(history);
    ASSERT_TRUE(page.ok()) << page.status();
    total += page->parameters_size();
    token = page->next_token();
  } while (!token.empty());
  EXPECT_EQ(total, 100);
}

TEST_P(ParamStoreTest, PathQueriesRecursiveOneLevelAndPagingWithoutGaps) {
  std::set<std::string> all;
  for (int i = 0; i < 23; ++i) {
    std::string name = absl::StrCat("/app/svc/key", i);
    ASSERT_TRUE(Put(name, "v").ok());
    all.insert(name);
  }
  for (int i = 0; i < 7; ++i) {
    std::string name = absl::StrCat("/app/svc/deep/x", i);
    ASSERT_TRUE(Put(name, "v").ok());
    all.insert(name);
  }
  ASSERT_TRUE(Put("/app/other", "v").ok());
  ASSERT_TRUE(Put("/apple", "v").ok());  // shares a prefix, not a path

  int pages = 0;
  auto recursive = ByPath("/app/svc", true, {}, &pages);
  EXPECT_EQ(std::set<std::string>(recursive.begin(), recursive.end()), all);
  EXPECT_EQ(recursive.size(), all.size()) << "repeats across pages";
  EXPECT_GE(pages, 3);

  auto one_level = ByPath("/app/svc/", false);
  EXPECT_EQ(one_level.size(), 23u);
  for (const auto& n : one_level) EXPECT_FALSE(absl::StrContains(n, "deep")) << n;
  EXPECT_THAT(ByPath("/app", false), ElementsAre("/app/other"));
  auto root = ByPath("/", false);
  EXPECT_THAT(root, ElementsAre("/apple"));

  // Filters: Type.
  ASSERT_TRUE(Put("/app/svc/secret", "s", pm::PARAMETER_TYPE_SECURE_STRING).ok());
  auto secure = ByPath("/app/svc", true, [](pm::GetParametersByPathRequest& r) {
    auto* f = r.add_parameter_filters();
    f->set_key("Type");
    f->add_values("SecureString");
  });
  EXPECT_THAT(secure, ElementsAre("/app/svc/secret"));

  pm::GetParametersByPathRequest bad;
  bad.set_path("no-slash");
  EXPECT_FALSE(params_->GetParametersByPath(bad).ok());
  bad.set_path("/app");
  bad.set_max_results(11);
  EXPECT_THAT(params_->GetParametersByPath(bad).status(), HasReason(reason::kValidation));
  bad.set_max_results(5);
  bad.set_next_token("junk");
  EXPECT_THAT(params_->GetParametersByPath(bad).status(), HasReason(reason::kSsmInvalidNextToken));
}

TEST_P(ParamStoreTest, GetParametersAndDeleteParametersListInvalidNames) {
  ASSERT_TRUE(Put("/a", "1").ok());
  ASSERT_TRUE(Put("/b", "2").ok());
  pm::GetParametersRequest get;
  get.add_names("/a");
  get.add_names("/nope");
  get.add_names("/b:9");
  auto got = params_->GetParameters(get);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->parameters_size(), 1);
  EXPECT_EQ(got->parameters(0).name(), "/a");
  EXPECT_THAT(got->invalid_parameters(), ElementsAre("/nope", "/b:9"));
  pm::DeleteParametersRequest del;
  del.add_names("/a");
  del.add_names("/nope");
  auto deleted = params_->DeleteParameters(del);
  ASSERT_TRUE(deleted.ok());
  EXPECT_THAT(deleted->deleted_parameters(), ElementsAre("/a"));
  EXPECT_THAT(deleted->invalid_parameters(), ElementsAre("/nope"));
  EXPECT_THAT(Get("/a").status(), HasReason(reason::kParameterNotFound));
  pm::DeleteParameterRequest one;
  one.set_name("/a");
  EXPECT_THAT(params_->DeleteParameter(one).status(), HasReason(reason::kParameterNotFound));
}

TEST_P(ParamStoreTest, DescribeParametersShowsMetadataOnly) {
  ASSERT_TRUE(Put("/d/one", "plain-value").ok());
  ASSERT_TRUE(Put("/d/two", "secret-value", pm::PARAMETER_TYPE_SECURE_STRING).ok());
  pm::DescribeParametersRequest describe;
  auto* f = describe.add_parameter_filters();
  f->set_key("Path");
  f->set_option("Recursive");
  f->add_values("/d");
  auto described = params_->DescribeParameters(describe);
  ASSERT_TRUE(described.ok()) << described.status();
  ASSERT_EQ(described->parameters_size(), 2);
  EXPECT_EQ(described->parameters(1).key_id(), "alias/coffer/ssm");
  EXPECT_FALSE(absl::StrContains(described->DebugString(), "value\"")) << "no values";
  EXPECT_FALSE(absl::StrContains(described->SerializeAsString(), "secret-value"));
  EXPECT_FALSE(absl::StrContains(described->SerializeAsString(), "plain-value"));
}

TEST_P(ParamStoreTest, TagsOnParameters) {
  pm::PutParameterRequest put;
  put.set_name("/t");
  put.set_value("v");
  put.set_type(pm::PARAMETER_TYPE_STRING);
  auto* tag = put.add_tags();
  tag->set_key("team");
  tag->set_value("core");
  ASSERT_TRUE(params_->PutParameter(put).ok());
  pm::AddTagsToResourceRequest add;
  add.set_resource_type("Parameter");
  add.set_resource_id("/t");
  auto* t2 = add.add_tags();
  t2->set_key("env");
  t2->set_value("prod");
  ASSERT_TRUE(params_->AddTagsToResource(add).ok());
  pm::ListTagsForResourceRequest list;
  list.set_resource_type("Parameter");
  list.set_resource_id("/t");
  auto tags = params_->ListTagsForResource(list);
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->tag_list_size(), 2);
  EXPECT_EQ(tags->tag_list(0).key(), "env");
  pm::RemoveTagsFromResourceRequest remove;
  remove.set_resource_type("Parameter");
  remove.set_resource_id("/t");
  remove.add_tag_keys("env");
  ASSERT_TRUE(params_->RemoveTagsFromResource(remove).ok());
  EXPECT_EQ(params_->ListTagsForResource(list)->tag_list_size(), 1);
  add.set_resource_type("Document");
  EXPECT_THAT(params_->AddTagsToResource(add).status(), HasReason(reason::kInvalidResourceType));
}

TEST_P(ParamStoreTest, PoliciesExpireAndNotifyWithAFakeClock) {
  absl::Time now = clock_.Now();
  std::string expiry =
      absl::FormatTime(absl::RFC3339_full, now + absl::Hours(72), absl::UTCTimeZone());
  pm::PutParameterRequest put;
  put.set_name("/expiring");
  put.set_value("v");
  put.set_type(pm::PARAMETER_TYPE_STRING);
  put.set_tier(pm::PARAMETER_TIER_ADVANCED);
  put.set_policies(
      absl::StrCat(R"([{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":")", expiry,
                   R"("}},{"Type":"ExpirationNotification","Version":"1.0",)"
                   R"("Attributes":{"Before":"1","Unit":"Days"}},)",
                   R"({"Type":"NoChangeNotification","Version":"1.0",)"
                   R"("Attributes":{"After":"1","Unit":"Days"}}])"));
  ASSERT_TRUE(params_->PutParameter(put).ok()) << params_->PutParameter(put).status();
  // Policies need Advanced.
  pm::PutParameterRequest standard = put;
  standard.set_name("/standard");
  standard.set_tier(pm::PARAMETER_TIER_STANDARD);
  EXPECT_THAT(params_->PutParameter(standard).status(), HasReason(reason::kValidation));

  uint64_t mark = changes_->Watermark();
  EXPECT_EQ(params_->RunPolicies()->notifications, 0);
  clock_.Advance(absl::Hours(25));  // unchanged for a day
  auto run = params_->RunPolicies();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->notifications, 1);
  EXPECT_EQ(params_->RunPolicies()->notifications, 0);  // once
  clock_.Advance(absl::Hours(24));                      // 1 day before expiry
  EXPECT_EQ(params_->RunPolicies()->notifications, 1);
  EXPECT_TRUE(Get("/expiring").ok());
  clock_.Advance(absl::Hours(24));  // expired
  run = params_->RunPolicies();
  EXPECT_EQ(run->expired, 1);
  EXPECT_THAT(Get("/expiring").status(), HasReason(reason::kParameterNotFound));
  std::vector<coffer::v1::ChangeKind> kinds;
  for (const auto& e : Events(mark)) {
    EXPECT_EQ(e.name(), "/expiring");
    kinds.push_back(e.kind());
  }
  EXPECT_THAT(kinds, ElementsAre(coffer::v1::CHANGE_KIND_NO_CHANGE_NOTIFICATION,
                                 coffer::v1::CHANGE_KIND_EXPIRATION_NOTIFICATION,
                                 coffer::v1::CHANGE_KIND_EXPIRED));
}

TEST_P(ParamStoreTest, EveryChangeIsAnEventWithoutValues) {
  uint64_t mark = changes_->Watermark();
  ASSERT_TRUE(Put("/e/a", "VALUE-ONE").ok());
  ASSERT_TRUE(Put("/e/a", "VALUE-TWO", pm::PARAMETER_TYPE_UNSPECIFIED, true).ok());
  pm::LabelParameterVersionRequest label;
  label.set_name("/e/a");
  label.add_labels("prod");
  ASSERT_TRUE(params_->LabelParameterVersion(label).ok());
  pm::DeleteParameterRequest del;
  del.set_name("/e/a");
  ASSERT_TRUE(params_->DeleteParameter(del).ok());
  EXPECT_FALSE(Put("/e/a", "x", pm::PARAMETER_TYPE_UNSPECIFIED).ok());  // failed: no event
  auto events = Events(mark);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind(), coffer::v1::CHANGE_KIND_CREATED);
  EXPECT_EQ(events[0].version(), "1");
  EXPECT_EQ(events[1].kind(), coffer::v1::CHANGE_KIND_UPDATED);
  EXPECT_EQ(events[1].version(), "2");
  EXPECT_EQ(events[2].kind(), coffer::v1::CHANGE_KIND_METADATA_UPDATED);
  EXPECT_EQ(events[3].kind(), coffer::v1::CHANGE_KIND_DELETED);
  for (const auto& e : events) {
    EXPECT_FALSE(absl::StrContains(e.SerializeAsString(), "VALUE-"));
    EXPECT_EQ(e.resource_kind(), coffer::v1::RESOURCE_KIND_PARAMETER);
  }
  // The watch filter: one level vs recursive.
  pm::WatchParametersRequest watch;
  watch.set_path("/e");
  auto one_level = ParamStore::WatchFilter(watch);
  ASSERT_TRUE(one_level.ok());
  EXPECT_TRUE((*one_level)(events[0]));
  coffer::v1::ChangeEvent deeper = events[0];
  deeper.set_name("/e/x/y");
  EXPECT_FALSE((*one_level)(deeper));
  watch.set_recursive(true);
  EXPECT_TRUE((*ParamStore::WatchFilter(watch))(deeper));
  deeper.set_name("/ex");
  EXPECT_FALSE((*ParamStore::WatchFilter(watch))(deeper));
}

}  // namespace
}  // namespace coffer::store
