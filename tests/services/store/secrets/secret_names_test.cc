#include "services/store/secrets/secret_names.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"

namespace coffer::store {
namespace {

using ::testing::HasSubstr;

constexpr char kPrefix[] = "arn:coffer:secretsmanager:local:000000000000:secret:";

// "" when the status is OK, else its reason.
std::string Reason(const absl::Status& s) { return s.ok() ? "" : ErrorReason(s); }

// --- names -------------------------------------------------------------

struct NameCase {
  std::string label;
  std::string name;
  bool valid;
};

TEST(SecretNamesTest, ValidateSecretNameTable) {
  std::vector<NameCase> cases = {
      {"simple", "db-password", true},
      {"every allowed char", "aZ09/_+=.@-", true},
      {"path", "prod/app/db", true},
      {"one char", "a", true},
      {"512 chars", std::string(512, 'n'), true},
      {"ends like an arn suffix", "name-abcdef", true},
      {"empty", "", false},
      {"513 chars", std::string(513, 'n'), false},
  };
  for (char bad : std::string(" :!#$%^&*()[]{}|\\;'\",<>?~`\t\n")) {
    cases.push_back({absl::StrCat("bad char 0x", static_cast<int>(bad)),
                     absl::StrCat("name", std::string(1, bad), "x"), false});
  }
  cases.push_back({"non-ascii", "caf\xc3\xa9", false});
  cases.push_back({"nul", std::string("a\0b", 3), false});
  for (const NameCase& c : cases) {
    SCOPED_TRACE(c.label);
    absl::Status s = ValidateSecretName("name", c.name);
    if (c.valid) {
      EXPECT_TRUE(s.ok()) << s;
    } else {
      EXPECT_EQ(Reason(s), reason::kInvalidParameter);
      EXPECT_THAT(std::string(s.message()), HasSubstr("name"));
      EXPECT_EQ(GetErrorDetail(s)->field, "name");
    }
  }
}

TEST(SecretNamesTest, ArnFormat) {
  ArnConfig config;
  EXPECT_EQ(SecretArnPrefix(config), kPrefix);
  EXPECT_EQ(SecretArn(config, "prod/db", "a1B2c3"), absl::StrCat(kPrefix, "prod/db-a1B2c3"));
  ArnConfig other{"aws", "eu-west-1", "123456789012"};
  EXPECT_EQ(SecretArn(other, "x", "abcdef"),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-abcdef");
}

// --- secret ids --------------------------------------------------------

struct IdCase {
  std::string label;
  std::string id;
  std::string reason;  // "" = OK
  std::vector<SecretRef::Candidate> candidates;
};

TEST(SecretNamesTest, ParseSecretIdTable) {
  const std::string full = absl::StrCat(kPrefix, "prod/db-a1B2c3");
  const std::string partial = absl::StrCat(kPrefix, "prod/db");
  const std::string suffixed_name_full = absl::StrCat(kPrefix, "name-abcdef-Zz9Yy8");
  const std::string suffixed_name_partial = absl::StrCat(kPrefix, "name-abcdef");
  const std::vector<IdCase> cases = {
      {"plain name", "prod/db", "", {{"prod/db", ""}}},
      {"name ending in -abcdef", "name-abcdef", "", {{"name-abcdef", ""}}},
      {"invalid name is still looked up", "bad name!", "", {{"bad name!", ""}}},
      {"full arn", full, "", {{"prod/db", full}}},
      {"partial arn", partial, "", {{"prod/db", ""}}},
      // As in AWS: ARN text ending in "-" and six alphanumerics is a full ARN.
      {"partial arn of a name ending in -abcdef is read as full",
       suffixed_name_partial,
       "",
       {{"name", suffixed_name_partial}}},
      {"full arn of a name ending in -abcdef",
       suffixed_name_full,
       "",
       {{"name-abcdef", suffixed_name_full}}},
      {"suffix with a non-alphanumeric is partial",
       absl::StrCat(kPrefix, "prod/db-a1B2_3"),
       "",
       {{"prod/db-a1B2_3", ""}}},
      {"suffix of 5 is partial", absl::StrCat(kPrefix, "db-abcde"), "", {{"db-abcde", ""}}},
      {"suffix only", absl::StrCat(kPrefix, "-abcdef"), "", {{"-abcdef", ""}}},
      {"prefix only", kPrefix, "", {}},
      {"other account",
       "arn:coffer:secretsmanager:local:111111111111:secret:prod/db-a1B2c3",
       "",
       {}},
      {"other region", "arn:coffer:secretsmanager:us-east-1:000000000000:secret:prod/db", "", {}},
      {"other partition",
       "arn:aws:secretsmanager:local:000000000000:secret:prod/db-a1B2c3",
       "",
       {}},
      {"other service", "arn:coffer:kms:local:000000000000:key/abc", "", {}},
      {"arn in wrong case",
       "ARN:coffer:secretsmanager:local:000000000000:secret:x",
       "",
       {{"ARN:coffer:secretsmanager:local:000000000000:secret:x", ""}}},
      {"empty", "", reason::kInvalidParameter, {}},
      {"2048 chars", std::string(2048, 'a'), "", {{std::string(2048, 'a'), ""}}},
      {"2049 chars", std::string(2049, 'a'), reason::kInvalidParameter, {}},
  };
  ArnConfig config;
  for (const IdCase& c : cases) {
    SCOPED_TRACE(c.label);
    absl::StatusOr<SecretRef> ref = ParseSecretId(config, "secret_id", c.id);
    EXPECT_EQ(Reason(ref.status()), c.reason);
    if (!ref.ok()) {
      EXPECT_THAT(std::string(ref.status().message()), HasSubstr("secret_id"));
      continue;
    }
    ASSERT_EQ(ref->candidates.size(), c.candidates.size());
    for (size_t i = 0; i < c.candidates.size(); ++i) {
      EXPECT_EQ(ref->candidates[i].name, c.candidates[i].name) << i;
      EXPECT_EQ(ref->candidates[i].required_arn, c.candidates[i].required_arn) << i;
    }
  }
}

TEST(SecretNamesTest, ParseSecretIdUsesConfiguredPrefix) {
  ArnConfig config{"aws", "eu-west-1", "123456789012"};
  const std::string arn = SecretArn(config, "x", "abcdef");
  auto ref = ParseSecretId(config, "secret_id", arn);
  ASSERT_TRUE(ref.ok());
  ASSERT_EQ(ref->candidates.size(), 1u);
  EXPECT_EQ(ref->candidates[0].name, "x");
  EXPECT_EQ(ref->candidates[0].required_arn, arn);
  auto default_arn = ParseSecretId(config, "secret_id", absl::StrCat(kPrefix, "x-abcdef"));
  ASSERT_TRUE(default_arn.ok());
  EXPECT_TRUE(default_arn->candidates.empty());
}

// --- field limits --------------------------------------------------------

struct FieldCase {
  std::string label;
  absl::Status status;
  std::string reason;  // "" = OK
};

void RunFieldCases(absl::string_view field, const std::vector<FieldCase>& cases) {
  for (const FieldCase& c : cases) {
    SCOPED_TRACE(c.label);
    EXPECT_EQ(Reason(c.status), c.reason) << c.status;
    if (!c.status.ok()) {
      EXPECT_THAT(std::string(c.status.message()), HasSubstr(std::string(field)));
      ASSERT_TRUE(GetErrorDetail(c.status).has_value());
      EXPECT_EQ(GetErrorDetail(c.status)->field, field);
    }
  }
}

TEST(SecretNamesTest, VersionIdTable) {
  const char* f = "client_request_token";
  RunFieldCases(
      f,
      {
          {"31", ValidateVersionId(f, std::string(31, 'a')), reason::kInvalidParameter},
          {"32", ValidateVersionId(f, std::string(32, 'a')), ""},
          {"uuid", ValidateVersionId(f, "0f8fad5b-d9cb-469f-a165-70867728950e"), ""},
          {"64", ValidateVersionId(f, std::string(64, 'a')), ""},
          {"65", ValidateVersionId(f, std::string(65, 'a')), reason::kInvalidParameter},
          {"empty", ValidateVersionId(f, ""), reason::kInvalidParameter},
          {"space", ValidateVersionId(f, std::string(16, 'a') + " " + std::string(16, 'a')),
           reason::kInvalidParameter},
          {"control", ValidateVersionId(f, std::string(32, 'a') + "\n"), reason::kInvalidParameter},
          {"non-ascii", ValidateVersionId(f, std::string(32, 'a') + "\xc3\xa9"),
           reason::kInvalidParameter},
          {"punctuation", ValidateVersionId(f, std::string(31, 'a') + "~!@#$%"), ""},
      });
}

google::protobuf::RepeatedPtrField<std::string> Stages(int n, size_t len = 0) {
  google::protobuf::RepeatedPtrField<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s = absl::StrCat("L", i);
    if (len > s.size()) s.append(len - s.size(), 'x');
    out.Add(std::move(s));
  }
  return out;
}

TEST(SecretNamesTest, StagesTable) {
  const char* f = "version_stages";
  auto dup = Stages(2);
  dup.Add("L0");
  RunFieldCases(
      f, {
             {"0 optional", ValidateStages(f, Stages(0), false), ""},
             {"0 required", ValidateStages(f, Stages(0), true), reason::kInvalidParameter},
             {"1 required", ValidateStages(f, Stages(1), true), ""},
             {"20", ValidateStages(f, Stages(20), true), ""},
             {"21", ValidateStages(f, Stages(21), false), reason::kInvalidParameter},
             {"duplicate", ValidateStages(f, dup, false), reason::kInvalidParameter},
             {"256 chars", ValidateStages(f, Stages(1, 256), true), ""},
             {"257 chars", ValidateStages(f, Stages(1, 257), true), reason::kInvalidParameter},
         });
  google::protobuf::RepeatedPtrField<std::string> empty_label;
  empty_label.Add("");
  RunFieldCases(
      f, {{"empty label", ValidateStages(f, empty_label, false), reason::kInvalidParameter}});
  RunFieldCases(
      "version_stage",
      {
          {"one", ValidateStage("version_stage", "AWSCURRENT"), ""},
          {"empty", ValidateStage("version_stage", ""), reason::kInvalidParameter},
          {"256", ValidateStage("version_stage", std::string(256, 's')), ""},
          {"257", ValidateStage("version_stage", std::string(257, 's')), reason::kInvalidParameter},
      });
}

TEST(SecretNamesTest, DescriptionTable) {
  const char* f = "description";
  // 2048 characters of two bytes each: the limit counts characters.
  std::string wide;
  for (int i = 0; i < 2048; ++i) wide += "\xc3\xa9";
  RunFieldCases(
      f, {
             {"empty", ValidateDescription(f, ""), ""},
             {"2048", ValidateDescription(f, std::string(2048, 'd')), ""},
             {"2049", ValidateDescription(f, std::string(2049, 'd')), reason::kInvalidParameter},
             {"2048 two-byte chars", ValidateDescription(f, wide), ""},
             {"2049 two-byte chars", ValidateDescription(f, wide + "\xc3\xa9"),
              reason::kInvalidParameter},
         });
}

google::protobuf::RepeatedPtrField<secrets::v1::Tag> Tags(int n) {
  google::protobuf::RepeatedPtrField<secrets::v1::Tag> out;
  for (int i = 0; i < n; ++i) {
    auto* t = out.Add();
    t->set_key(absl::StrCat("k", i));
    t->set_value(absl::StrCat("v", i));
  }
  return out;
}

google::protobuf::RepeatedPtrField<secrets::v1::Tag> OneTag(std::string key, std::string value) {
  google::protobuf::RepeatedPtrField<secrets::v1::Tag> out;
  auto* t = out.Add();
  t->set_key(std::move(key));
  t->set_value(std::move(value));
  return out;
}

TEST(SecretNamesTest, TagsTable) {
  const char* f = "tags";
  auto dup = Tags(3);
  dup.Mutable(2)->set_key("k0");
  RunFieldCases(
      f, {
             {"none", ValidateTags(f, Tags(0)), ""},
             {"50", ValidateTags(f, Tags(50)), ""},
             {"51", ValidateTags(f, Tags(51)), reason::kInvalidParameter},
             {"custom max", ValidateTags(f, Tags(3), 2), reason::kInvalidParameter},
             {"key 128", ValidateTags(f, OneTag(std::string(128, 'k'), "v")), ""},
             {"key 129", ValidateTags(f, OneTag(std::string(129, 'k'), "v")),
              reason::kInvalidParameter},
             {"empty key", ValidateTags(f, OneTag("", "v")), reason::kInvalidParameter},
             {"empty value", ValidateTags(f, OneTag("k", "")), ""},
             {"value 256", ValidateTags(f, OneTag("k", std::string(256, 'v'))), ""},
             {"value 257", ValidateTags(f, OneTag("k", std::string(257, 'v'))),
              reason::kInvalidParameter},
             {"aws: prefix", ValidateTags(f, OneTag("aws:owner", "v")), reason::kInvalidParameter},
             {"AWS: prefix", ValidateTags(f, OneTag("AWS:owner", "v")), reason::kInvalidParameter},
             {"aws without colon", ValidateTags(f, OneTag("awsome", "v")), ""},
             {"aws: in value", ValidateTags(f, OneTag("k", "aws:x")), ""},
             {"duplicate keys", ValidateTags(f, dup), reason::kInvalidParameter},
         });
}

TEST(SecretNamesTest, TagValueNeverInMessage) {
  absl::Status s = ValidateTags("tags", OneTag("k", std::string(300, 'S')));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("SSSS")));
}

TEST(SecretNamesTest, TagKeysTable) {
  const char* f = "tag_keys";
  auto keys = [](int n, size_t len) {
    google::protobuf::RepeatedPtrField<std::string> out;
    for (int i = 0; i < n; ++i) out.Add(std::string(len, 'k'));
    return out;
  };
  RunFieldCases(f, {
                       {"0", ValidateTagKeys(f, keys(0, 1)), reason::kInvalidParameter},
                       {"1", ValidateTagKeys(f, keys(1, 1)), ""},
                       {"50", ValidateTagKeys(f, keys(50, 1)), ""},
                       {"51", ValidateTagKeys(f, keys(51, 1)), reason::kInvalidParameter},
                       {"128", ValidateTagKeys(f, keys(1, 128)), ""},
                       {"129", ValidateTagKeys(f, keys(1, 129)), reason::kInvalidParameter},
                       {"empty key", ValidateTagKeys(f, keys(1, 0)), reason::kInvalidParameter},
                   });
}

TEST(SecretNamesTest, ValueSizeTable) {
  const char* f = "secret_string";
  RunFieldCases(f, {
                       {"0", ValidateValueSize(f, 0), ""},
                       {"65536", ValidateValueSize(f, 65536), ""},
                       {"65537", ValidateValueSize(f, 65537), reason::kInvalidParameter},
                   });
}

}  // namespace
}  // namespace coffer::store
