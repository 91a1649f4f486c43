#include "services/store/secrets/secret_list.h"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "services/store/schema.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

using ::coffer::internal::store::v1::ListIndexEntry;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

using FilterList = google::protobuf::RepeatedPtrField<secrets::v1::Filter>;

FilterList MakeFilters(const std::vector<std::pair<std::string, std::vector<std::string>>>& spec) {
  FilterList out;
  for (const auto& [key, values] : spec) {
    secrets::v1::Filter* f = out.Add();
    f->set_key(key);
    for (const std::string& v : values) f->add_values(v);
  }
  return out;
}

std::vector<SecretFilter> MustParse(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& spec) {
  auto parsed = ParseFilters(MakeFilters(spec));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : std::vector<SecretFilter>{};
}

ListIndexEntry Entry(const std::string& name, const std::string& description = "",
                     const std::vector<std::pair<std::string, std::string>>& tags = {},
                     bool planned_deletion = false) {
  ListIndexEntry e;
  e.set_name(name);
  e.set_description(description);
  for (const auto& [k, v] : tags) {
    auto* t = e.add_tags();
    t->set_key(k);
    t->set_value(v);
  }
  e.set_planned_deletion(planned_deletion);
  return e;
}

// ---------------------------------------------------------------- parsing

TEST(ParseFiltersTest, AcceptsValidFilters) {
  auto parsed = ParseFilters(MakeFilters({{"name", {"prod/", "!prod/old"}},
                                          {"description", {"Database"}},
                                          {"tag-key", {"env"}},
                                          {"tag-value", {"!!x"}},
                                          {"all", {"prod db"}}}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 5u);
  EXPECT_EQ((*parsed)[0].key, SecretFilter::Key::kName);
  EXPECT_EQ((*parsed)[1].key, SecretFilter::Key::kDescription);
  EXPECT_EQ((*parsed)[2].key, SecretFilter::Key::kTagKey);
  EXPECT_EQ((*parsed)[3].key, SecretFilter::Key::kTagValue);
  EXPECT_EQ((*parsed)[4].key, SecretFilter::Key::kAll);
  ASSERT_EQ((*parsed)[0].values.size(), 2u);
  EXPECT_FALSE((*parsed)[0].values[0].negate);
  EXPECT_EQ((*parsed)[0].values[0].text, "prod/");
  EXPECT_TRUE((*parsed)[0].values[1].negate);
  EXPECT_EQ((*parsed)[0].values[1].text, "prod/old");
  // Only the first '!' negates; the rest is text.
  EXPECT_TRUE((*parsed)[3].values[0].negate);
  EXPECT_EQ((*parsed)[3].values[0].text, "!x");
}

TEST(ParseFiltersTest, AcceptsLimits) {
  std::vector<std::pair<std::string, std::vector<std::string>>> spec;
  std::vector<std::string> ten_values;
  for (int i = 0; i < 10; ++i) ten_values.push_back(absl::StrCat("v", i));
  for (int i = 0; i < 10; ++i) spec.push_back({"name", ten_values});
  EXPECT_TRUE(ParseFilters(MakeFilters(spec)).ok());
  EXPECT_TRUE(ParseFilters(MakeFilters({{"name", {std::string(512, 'a')}}})).ok());
  EXPECT_TRUE(ParseFilters(MakeFilters({{"name", {"!" + std::string(511, 'a')}}})).ok());
  // Characters, not bytes: 512 two-byte characters fit.
  std::string wide;
  for (int i = 0; i < 512; ++i) wide += "\xc3\xa9";
  EXPECT_TRUE(ParseFilters(MakeFilters({{"description", {wide}}})).ok());
  EXPECT_TRUE(ParseFilters(FilterList()).ok());
}

TEST(ParseFiltersTest, RejectsInvalidFilters) {
  std::vector<std::pair<std::string, std::vector<std::string>>> eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back({"name", {"a"}});
  std::vector<std::string> eleven_values;
  for (int i = 0; i < 11; ++i) eleven_values.push_back(absl::StrCat("v", i));

  struct Case {
    std::string label;
    FilterList filters;
  };
  const std::vector<Case> cases = {
      {"eleven filters", MakeFilters(eleven)},
      {"unknown key", MakeFilters({{"owner", {"a"}}})},
      {"key is case-sensitive", MakeFilters({{"Name", {"a"}}})},
      {"empty key", MakeFilters({{"", {"a"}}})},
      {"no values", MakeFilters({{"name", {}}})},
      {"eleven values", MakeFilters({{"tag-key", eleven_values}})},
      {"empty value", MakeFilters({{"name", {""}}})},
      {"513 characters", MakeFilters({{"description", {std::string(513, 'a')}}})},
      {"513 with '!'", MakeFilters({{"name", {"!" + std::string(512, 'a')}}})},
      {"just '!'", MakeFilters({{"all", {"!"}}})},
      {"'!' among valid values", MakeFilters({{"name", {"a"}}, {"tag-value", {"b", "!"}}})},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    auto parsed = ParseFilters(c.filters);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(parsed.status()), reason::kInvalidParameter);
    auto detail = GetErrorDetail(parsed.status());
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->field, "filters");
    EXPECT_THAT(std::string(parsed.status().message()), ::testing::HasSubstr("filters"));
  }
}

// ---------------------------------------------------------------- matching

TEST(MatchesFiltersTest, Table) {
  const ListIndexEntry db = Entry("prod/billing/db-password", "Primary PostgreSQL credentials",
                                  {{"env", "production"}, {"team", "Billing-Core"}});
  const ListIndexEntry api = Entry("dev/api_key", "", {{"env", "dev"}});
  const ListIndexEntry bare = Entry("Prod/other");

  struct Case {
    std::string label;
    std::vector<std::pair<std::string, std::vector<std::string>>> filters;
    bool db, api, bare;
  };
  const std::vector<Case> cases = {
      {"no filters", {}, true, true, true},
      {"name prefix", {{"name", {"prod/"}}}, true, false, false},
      {"name is case-sensitive", {{"name", {"Prod/"}}}, false, false, true},
      {"name prefix only, not substring", {{"name", {"billing"}}}, false, false, false},
      {"description prefix, any case", {{"description", {"primary postgres"}}}, true, false, false},
      {"description prefix only", {{"description", {"PostgreSQL"}}}, false, false, false},
      {"tag-key prefix", {{"tag-key", {"te"}}}, true, false, false},
      {"tag-key is case-sensitive", {{"tag-key", {"Env"}}}, false, false, false},
      {"tag-value prefix", {{"tag-value", {"dev"}}}, false, true, false},
      {"tag-value is case-sensitive", {{"tag-value", {"billing"}}}, false, false, false},
      {"tag-value of any tag", {{"tag-value", {"Billing"}}}, true, false, false},
      {"all: one word in a tag value", {{"all", {"core"}}}, true, false, false},
      {"all: words across attributes", {{"all", {"PROD postgre core"}}}, true, false, false},
      {"all: any case", {{"all", {"PROD"}}}, true, false, true},
      {"all: every word must match", {{"all", {"prod mysql"}}}, false, false, false},
      {"all: word prefix, not substring", {{"all", {"ostgre"}}}, false, false, false},
      {"all: punctuation splits words", {{"all", {"api-key"}}}, false, true, false},
      {"all: tag key", {{"all", {"team"}}}, true, false, false},
      {"negated name", {{"name", {"!prod/"}}}, false, true, true},
      {"negated tag-key", {{"tag-key", {"!env"}}}, false, false, true},
      {"negated all", {{"all", {"!dev"}}}, true, false, true},
      {"OR within a filter", {{"name", {"prod/", "dev/"}}}, true, true, false},
      {"AND across filters",
       {{"name", {"prod/", "dev/"}}, {"tag-value", {"dev"}}},
       false,
       true,
       false},
      {"AND, nothing satisfies both",
       {{"name", {"prod/"}}, {"tag-value", {"dev"}}},
       false,
       false,
       false},
      {"positive and negated in one filter",
       {{"name", {"prod/", "dev/", "!dev/api"}}},
       true,
       false,
       false},
      {"two negations in one filter", {{"name", {"!prod/", "!dev/"}}}, false, false, true},
      {"negation in one filter, positive in another",
       {{"tag-key", {"env"}}, {"tag-value", {"!prod"}}},
       false,
       true,
       false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    std::vector<SecretFilter> filters = MustParse(c.filters);
    EXPECT_EQ(MatchesFilters(db, filters), c.db);
    EXPECT_EQ(MatchesFilters(api, filters), c.api);
    EXPECT_EQ(MatchesFilters(bare, filters), c.bare);
  }
}

TEST(SchemaTest, CreatedKeyIsBigEndianMicrosThenName) {
  std::string key = schema::CreatedKey(0x0102030405060708LL, "a/b");
  EXPECT_EQ(key, std::string("\x01\x02\x03\x04\x05\x06\x07\x08"
                             "a/b",
                             11));
  EXPECT_LT(schema::CreatedKey(255, "zzz"), schema::CreatedKey(256, "aaa"));
  EXPECT_LT(schema::CreatedKey(1000, "a"), schema::CreatedKey(1000, "b"));
}

// ---------------------------------------------------------------- index

class ListIndexTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenFresh("db"); }

  void OpenFresh(const std::string& subdir) {
    db_.reset();
    storage::DatabaseOptions options;
    options.path = dir_.Join(subdir);
    options.column_families = {schema::kByCreated};
    options.sync_writes = false;
    auto db = storage::Database::Open(options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }

  static void AddTo(storage::WriteBatch& batch, int64_t micros, const ListIndexEntry& entry) {
    batch.Put(schema::kByCreated, schema::CreatedKey(micros, entry.name()),
              entry.SerializeAsString());
  }

  void Add(int64_t micros, const ListIndexEntry& entry) {
    storage::WriteBatch batch;
    AddTo(batch, micros, entry);
    ASSERT_TRUE(db_->Write(batch).ok());
  }

  ListPage Page(const ListQuery& query, const std::string& token,
                const std::string& fingerprint = "fp") {
    auto page = ListIndex(*db_, query, fingerprint, token);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : ListPage{};
  }

  // Every name over all pages; also checks each page's scan bound.
  std::vector<std::string> All(const ListQuery& query, int* pages = nullptr,
                               int* empty_pages_with_token = nullptr) {
    std::vector<std::string> names;
    std::string token;
    int n = 0;
    do {
      ListPage page = Page(query, token);
      EXPECT_LE(page.names.size(), static_cast<size_t>(query.max_results));
      EXPECT_LE(page.examined, query.scan_budget);
      if (page.names.empty() && !page.next_token.empty() && empty_pages_with_token) {
        ++*empty_pages_with_token;
      }
      names.insert(names.end(), page.names.begin(), page.names.end());
      token = page.next_token;
      ++n;
    } while (!token.empty() && n < 100000);
    if (pages) *pages = n;
    return names;
  }

  static std::string Name(int i) { return absl::StrFormat("secret-%05d", i); }

  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
};

void ExpectInvalidToken(const absl::StatusOr<ListPage>& page) {
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(page.status()), reason::kInvalidNextToken);
  auto detail = GetErrorDetail(page.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->field, "next_token");
}

TEST_F(ListIndexTest, EmptyIndexGivesEmptyPageWithoutToken) {
  ListPage page = Page(ListQuery{}, "");
  EXPECT_THAT(page.names, IsEmpty());
  EXPECT_EQ(page.next_token, "");
  EXPECT_EQ(page.examined, 0u);
}

TEST_F(ListIndexTest, PagesVisitEveryEntryOnceInBothOrders) {
  std::vector<std::string> by_time;
  storage::WriteBatch batch;
  for (int i = 0; i < 250; ++i) {
    // Insert in scrambled order; the index orders by time.
    int t = (i * 97) % 250;
    AddTo(batch, 1'000'000 + t * 10, Entry(Name(t)));
  }
  ASSERT_TRUE(db_->Write(batch).ok());
  for (int t = 0; t < 250; ++t) by_time.push_back(Name(t));

  ListQuery asc;
  asc.ascending = true;
  asc.max_results = 7;
  int pages = 0;
  EXPECT_EQ(All(asc, &pages), by_time);
  EXPECT_EQ(pages, 36);  // ceil(250 / 7)

  ListQuery desc;
  desc.max_results = 7;
  std::vector<std::string> reversed(by_time.rbegin(), by_time.rend());
  EXPECT_EQ(All(desc, &pages), reversed);
  EXPECT_EQ(pages, 36);
}

TEST_F(ListIndexTest, FullLastPageHasNoToken) {
  for (int i = 0; i < 14; ++i) Add(100 + i, Entry(Name(i)));
  ListQuery q;
  q.max_results = 7;
  ListPage first = Page(q, "");
  EXPECT_EQ(first.names.size(), 7u);
  EXPECT_NE(first.next_token, "");
  ListPage second = Page(q, first.next_token);
  EXPECT_EQ(second.names.size(), 7u);
  EXPECT_EQ(second.next_token, "");
}

TEST_F(ListIndexTest, PageSizeMayChangeBetweenPages) {
  for (int i = 0; i < 20; ++i) Add(100 + i, Entry(Name(i)));
  ListQuery q;
  q.ascending = true;
  q.max_results = 5;
  ListPage first = Page(q, "");
  q.max_results = 100;
  ListPage rest = Page(q, first.next_token);
  EXPECT_EQ(first.names.front(), Name(0));
  EXPECT_EQ(rest.names.size(), 15u);
  EXPECT_EQ(rest.names.front(), Name(5));
  EXPECT_EQ(rest.next_token, "");
}

TEST_F(ListIndexTest, SecretsAddedWhilePagingCauseNoDuplicatesOrGaps) {
  for (bool ascending : {true, false}) {
    SCOPED_TRACE(ascending ? "ascending" : "descending");
    OpenFresh(ascending ? "asc" : "desc");
    std::vector<std::string> original;
    for (int i = 0; i < 60; ++i) {
      Add(1000 + i, Entry(Name(i)));
      original.push_back(Name(i));
    }
    ListQuery q;
    q.ascending = ascending;
    q.max_results = 7;
    std::vector<std::string> seen;
    std::string token;
    int added = 0;
    do {
      ListPage page = Page(q, token);
      seen.insert(seen.end(), page.names.begin(), page.names.end());
      token = page.next_token;
      // Two new secrets, created later than everything so far.
      for (int k = 0; k < 2; ++k, ++added) Add(5000 + added, Entry(absl::StrCat("new-", added)));
    } while (!token.empty());

    std::set<std::string> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), seen.size()) << "duplicates";
    std::vector<std::string> seen_original;
    std::vector<std::string> seen_new;
    for (const std::string& n : seen) {
      (n.rfind("new-", 0) == 0 ? seen_new : seen_original).push_back(n);
    }
    if (ascending) {
      EXPECT_EQ(seen_original, original);
      // New ones come after every original one.
      EXPECT_EQ(std::vector<std::string>(seen.begin(), seen.begin() + 60), original);
      EXPECT_FALSE(seen_new.empty());
    } else {
      EXPECT_EQ(seen_original, std::vector<std::string>(original.rbegin(), original.rend()));
      EXPECT_THAT(seen_new, IsEmpty());
    }
  }
}

TEST_F(ListIndexTest, ScanBudgetBoundsWorkAndPagesStillCoverEveryMatch) {
  std::vector<std::string> matching;
  storage::WriteBatch batch;
  for (int i = 0; i < 3000; ++i) {
    bool match = i % 700 == 5;  // 5 of 3,000: some 500-entry stretches hold none
    std::string name = match ? absl::StrCat("match/", Name(i)) : Name(i);
    AddTo(batch, 10'000 + i, Entry(name));
    if (match) matching.push_back(name);
  }
  ASSERT_TRUE(db_->Write(batch).ok());

  ListQuery q;
  q.ascending = true;
  q.filters = MustParse({{"name", {"match/"}}});
  q.scan_budget = 500;
  q.max_results = 100;
  int pages = 0;
  int empty_with_token = 0;
  EXPECT_EQ(All(q, &pages, &empty_with_token), matching);
  EXPECT_EQ(pages, 6);  // 3,000 / 500
  EXPECT_GT(empty_with_token, 0);

  q.ascending = false;
  q.max_results = 3;
  std::vector<std::string> reversed(matching.rbegin(), matching.rend());
  EXPECT_EQ(All(q), reversed);
}

TEST_F(ListIndexTest, PlannedDeletionHiddenUnlessIncluded) {
  Add(1, Entry("a"));
  Add(2, Entry("b", "", {}, /*planned_deletion=*/true));
  Add(3, Entry("c"));
  ListQuery q;
  q.ascending = true;
  EXPECT_THAT(All(q), ElementsAre("a", "c"));
  q.include_planned_deletion = true;
  EXPECT_THAT(All(q), ElementsAre("a", "b", "c"));
  // Filters still apply to secrets planned for deletion.
  q.filters = MustParse({{"name", {"b"}}});
  EXPECT_THAT(All(q), ElementsAre("b"));
}

TEST_F(ListIndexTest, TimestampTiesOrderedByName) {
  Add(500, Entry("zeta"));
  Add(500, Entry("alpha"));
  Add(500, Entry("Mid"));
  Add(400, Entry("zz-older"));
  Add(600, Entry("aa-newer"));
  ListQuery q;
  q.ascending = true;
  q.max_results = 2;
  EXPECT_THAT(All(q), ElementsAre("zz-older", "Mid", "alpha", "zeta", "aa-newer"));
  q.ascending = false;
  EXPECT_THAT(All(q), ElementsAre("aa-newer", "zeta", "alpha", "Mid", "zz-older"));
}

TEST_F(ListIndexTest, TokenFromAnotherQueryIsRejected) {
  for (int i = 0; i < 10; ++i) Add(100 + i, Entry(Name(i), "", {{"env", "prod"}}));
  ListQuery q;
  q.max_results = 3;
  q.filters = MustParse({{"tag-key", {"env"}}});
  ListPage first = Page(q, "");
  ASSERT_NE(first.next_token, "");
  // The same query continues fine.
  EXPECT_TRUE(ListIndex(*db_, q, "fp", first.next_token).ok());

  ListQuery other_filters = q;
  other_filters.filters = MustParse({{"tag-key", {"en"}}});
  ExpectInvalidToken(ListIndex(*db_, other_filters, "fp", first.next_token));

  ListQuery no_filters = q;
  no_filters.filters.clear();
  ExpectInvalidToken(ListIndex(*db_, no_filters, "fp", first.next_token));

  ListQuery negated = q;
  negated.filters[0].values[0].negate = true;
  ExpectInvalidToken(ListIndex(*db_, negated, "fp", first.next_token));

  ListQuery other_order = q;
  other_order.ascending = true;
  ExpectInvalidToken(ListIndex(*db_, other_order, "fp", first.next_token));

  ListQuery other_flags = q;
  other_flags.include_planned_deletion = true;
  ExpectInvalidToken(ListIndex(*db_, other_flags, "fp", first.next_token));

  ExpectInvalidToken(ListIndex(*db_, q, "other fingerprint", first.next_token));
}

TEST_F(ListIndexTest, GarbageTokenIsRejected) {
  for (int i = 0; i < 10; ++i) Add(100 + i, Entry(Name(i)));
  ListQuery q;
  q.max_results = 3;
  ListPage first = Page(q, "");
  ASSERT_NE(first.next_token, "");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(first.next_token, &raw));

  std::string tampered_key = raw;
  tampered_key.back() ^= 0x01;
  std::string tampered_check = raw;
  tampered_check[3] ^= 0x40;
  std::string other_version = raw;
  other_version[0] = 2;

  const std::vector<std::string> garbage = {
      "garbage!",  // not base64url
      "AAAA",
      absl::WebSafeBase64Escape("hello, this is not a token"),
      absl::WebSafeBase64Escape(raw.substr(0, 12)),
      absl::WebSafeBase64Escape(tampered_key),
      absl::WebSafeBase64Escape(tampered_check),
      absl::WebSafeBase64Escape(other_version),
      first.next_token + "AAAA",
      std::string(5000, 'A'),
  };
  for (const std::string& token : garbage) {
    SCOPED_TRACE(token.substr(0, 40));
    ExpectInvalidToken(ListIndex(*db_, q, "fp", token));
  }
}

TEST_F(ListIndexTest, PageExaminesBoundedEntriesAtScale) {
  constexpr int kEntries = 100'000;
  for (int start = 0; start < kEntries; start += 10'000) {
    storage::WriteBatch batch;
    for (int i = start; i < start + 10'000; ++i) {
      AddTo(batch, 1'700'000'000'000'000LL + i,
            Entry(absl::StrCat("app/", Name(i)), "service credentials",
                  {{"env", i % 2 ? "prod" : "dev"}}));
    }
    ASSERT_TRUE(db_->Write(batch).ok());
  }

  // Unfiltered: a page looks at no more entries than it returns.
  ListQuery q;
  q.max_results = 100;
  ListPage newest = Page(q, "");
  EXPECT_EQ(newest.names.size(), 100u);
  EXPECT_EQ(newest.names.front(), absl::StrCat("app/", Name(kEntries - 1)));
  EXPECT_LE(newest.examined, 100u);
  EXPECT_NE(newest.next_token, "");
  ListPage next = Page(q, newest.next_token);
  EXPECT_LE(next.examined, 100u);
  EXPECT_EQ(next.names.front(), absl::StrCat("app/", Name(kEntries - 101)));

  // A filter that matches nothing stops at the budget.
  ListQuery none = q;
  none.filters = MustParse({{"name", {"nothing/"}}});
  ListPage empty = Page(none, "");
  EXPECT_THAT(empty.names, IsEmpty());
  EXPECT_LE(empty.examined, none.scan_budget);
  EXPECT_NE(empty.next_token, "");
  ListPage empty2 = Page(none, empty.next_token);
  EXPECT_LE(empty2.examined, none.scan_budget);

  // A selective filter: a full page or the budget, whichever comes first.
  ListQuery selective = q;
  selective.filters = MustParse({{"all", {"prod credentials"}}});
  ListPage page = Page(selective, "");
  EXPECT_EQ(page.names.size(), 100u);
  EXPECT_LE(page.examined, selective.scan_budget);
  EXPECT_LE(page.examined, 200u);
}

}  // namespace
}  // namespace coffer::store
