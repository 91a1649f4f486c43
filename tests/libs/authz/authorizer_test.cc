#include "libs/authz/authorizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "libs/common/errors.h"
#include "tests/testing/test_env.h"

namespace coffer::authz {
namespace {

using ::testing::HasSubstr;

constexpr char kApp[] = "spiffe://coffer.local/app/catagram";

std::string AllowGet(const std::string& resource) {
  return R"({"statements": [{"effect": "Allow", "principals": ["spiffe://coffer.local/app/*"],
      "actions": ["secretsmanager:GetSecretValue"], "resources": [")" +
         resource + R"("]}]})";
}

void Write(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
}

TEST(AccessTest, CheckNamesActionAndResourceAndRecordsTheArn) {
  auto policy = Policy::Parse(AllowGet("demo/*"), Policy::kIdentity);
  ASSERT_TRUE(policy.ok());
  Authorizer authorizer(std::move(policy).value());
  Access access(&authorizer, kApp);
  EXPECT_TRUE(
      access
          .Check("secretsmanager:GetSecretValue",
                 {"demo/db", "arn:coffer:secretsmanager:local:0:secret:demo/db-Ab3xQ9", "demo/db"})
          .ok());
  EXPECT_EQ(access.resource(), "arn:coffer:secretsmanager:local:0:secret:demo/db-Ab3xQ9");
  absl::Status denied = access.Check("secretsmanager:PutSecretValue", {"demo/db"});
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(denied), reason::kAccessDenied);
  EXPECT_THAT(std::string(denied.message()),
              HasSubstr(std::string(kApp) +
                        " is not authorized to perform secretsmanager:PutSecretValue on demo/db"));
  EXPECT_FALSE(access.Allows("secretsmanager:GetSecretValue", {"prod/db"}));
  EXPECT_TRUE(Access::Trusted().Check("kms:ScheduleKeyDeletion", {"anything"}).ok());
}

TEST(AccessTest, TrustedIsSharedByConcurrentCallersAndRecordsNothing) {
  // Every in-process caller (sweepers, tests, benchmarks) shares the one
  // Trusted() object: it must hold no per-call state they would race on.
  const Access& trusted = Access::Trusted();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&trusted, t] {
      const std::string name = std::string(100, static_cast<char>('a' + t));
      for (int i = 0; i < 20000; ++i) {
        ASSERT_TRUE(trusted.Check("secretsmanager:GetSecretValue", {name}).ok());
        trusted.set_resource(name);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(trusted.resource(), "");
}

TEST(AccessTest, ResourcePolicyTakesPart) {
  auto policy = Policy::Parse(AllowGet("demo/*"), Policy::kIdentity);
  ASSERT_TRUE(policy.ok());
  Authorizer authorizer(std::move(policy).value());
  Access app(&authorizer, kApp);
  Access reporting(&authorizer, "spiffe://coffer.local/svc/reporting");
  const std::string deny_app = R"({"Statement": [{"Effect": "Deny",
      "Principal": {"Coffer": "spiffe://coffer.local/app/catagram"}, "Action": "*"}]})";
  const std::string allow_reporting = R"({"Statement": [{"Effect": "Allow",
      "Principal": {"Coffer": "spiffe://coffer.local/svc/*"},
      "Action": "secretsmanager:GetSecretValue"}]})";
  EXPECT_FALSE(app.Check("secretsmanager:GetSecretValue", {"demo/db"}, nullptr, deny_app).ok());
  EXPECT_TRUE(
      app.Check("secretsmanager:GetSecretValue", {"demo/db"}, nullptr, allow_reporting).ok());
  EXPECT_TRUE(
      reporting.Check("secretsmanager:GetSecretValue", {"prod/db"}, nullptr, allow_reporting).ok());
  EXPECT_FALSE(reporting.Check("secretsmanager:GetSecretValue", {"prod/db"}).ok());
  // A stored policy that no longer parses never allows.
  EXPECT_FALSE(reporting.Check("secretsmanager:GetSecretValue", {"prod/db"}, nullptr, "{").ok());
}

TEST(AuthorizerFileTest, ErrorsNameTheFileAndLine) {
  testing::TempDir dir;
  const std::string path = dir.Join("policy.json");
  EXPECT_EQ(Authorizer::FromFile(path).status().code(), absl::StatusCode::kNotFound);
  Write(path, "{\"statements\": [\n{\"effect\": \"Allow\"}]}");
  auto a = Authorizer::FromFile(path);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(std::string(a.status().message()),
              HasSubstr(path + ": line 2: statements[0].principals: missing"));
}

TEST(AuthorizerFileTest, EditTakesEffectAndABrokenEditKeepsThePolicy) {
  testing::TempDir dir;
  const std::string path = dir.Join("policy.json");
  Write(path, AllowGet("demo/*"));
  auto a = Authorizer::FromFile(path);
  ASSERT_TRUE(a.ok()) << a.status();
  Access access(a->get(), kApp);
  EXPECT_TRUE(access.Allows("secretsmanager:GetSecretValue", {"demo/db"}));
  EXPECT_FALSE((*a)->ReloadIfChanged());  // nothing changed

  Write(path, AllowGet("prod/*"));
  EXPECT_TRUE((*a)->ReloadIfChanged());
  EXPECT_EQ((*a)->generation(), 2u);
  EXPECT_FALSE(access.Allows("secretsmanager:GetSecretValue", {"demo/db"}));
  EXPECT_TRUE(access.Allows("secretsmanager:GetSecretValue", {"prod/db"}));

  Write(path, "{\"statements\": [");  // broken: the previous policy stays
  EXPECT_FALSE((*a)->ReloadIfChanged());
  EXPECT_FALSE((*a)->ReloadIfChanged());  // reported once, not retried every tick
  EXPECT_EQ((*a)->generation(), 2u);
  EXPECT_TRUE(access.Allows("secretsmanager:GetSecretValue", {"prod/db"}));
  EXPECT_FALSE((*a)->Reload().ok());
}

TEST(AuthorizerFileTest, ReloadUnderLoadDropsNoDecision) {
  testing::TempDir dir;
  const std::string path = dir.Join("policy.json");
  Write(path, AllowGet("demo/*"));
  auto a = Authorizer::FromFile(path);
  ASSERT_TRUE(a.ok());
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      Access access(a->get(), kApp);
      while (!stop.load()) {
        // Both policies allow demo/db; neither allows other/db.
        if (!access.Allows("secretsmanager:GetSecretValue", {"demo/db"})) ++wrong;
        if (access.Allows("secretsmanager:GetSecretValue", {"other/db"})) ++wrong;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    Write(path, AllowGet(i % 2 == 0 ? "demo/d*" : "demo/*"));
    ASSERT_TRUE((*a)->Reload().ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace coffer::authz
