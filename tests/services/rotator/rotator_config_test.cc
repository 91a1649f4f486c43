// The worker registry: JSON config, --worker flags and validation.
#include "services/rotator/rotator_config.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace coffer::rotator {
namespace {

using ::testing::HasSubstr;

TEST(RotatorConfigTest, ParsesJson) {
  auto config = ParseRotatorConfigJson(R"({"workers": [
      {"name": "postgres-single-user", "address": "localhost:7711",
       "spiffe_id": "spiffe://coffer.local/worker/postgres"},
      {"name": "exec", "address": "10.0.0.2:7712",
       "spiffeId": "spiffe://coffer.local/worker/exec"}]})");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->workers_size(), 2);
  EXPECT_EQ(config->workers(1).spiffe_id(), "spiffe://coffer.local/worker/exec");
  auto registry = WorkerRegistry::FromConfig(*config);
  ASSERT_TRUE(registry.ok()) << registry.status();
  EXPECT_EQ(registry->size(), 2u);
  ASSERT_NE(registry->Find("postgres-single-user"), nullptr);
  EXPECT_EQ(registry->Find("postgres-single-user")->address(), "localhost:7711");
  EXPECT_EQ(registry->Find("nope"), nullptr);
  EXPECT_EQ(registry->names(), (std::vector<std::string>{"exec", "postgres-single-user"}));
}

TEST(RotatorConfigTest, RejectsBadJson) {
  EXPECT_FALSE(ParseRotatorConfigJson("{").ok());
  auto unknown = ParseRotatorConfigJson(R"({"wrkers": []})");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseRotatorConfigJson(R"({"workers": [{"nmae": "x"}]})").ok());
}

TEST(RotatorConfigTest, LoadsAFile) {
  testing::TempDir dir;
  const std::string path = dir.Join("rotator.json");
  std::ofstream(path) << R"({"workers":[{"name":"w","address":"h:1","spiffe_id":"spiffe://d/w"}]})";
  auto config = LoadRotatorConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->workers(0).name(), "w");
  auto missing = LoadRotatorConfig(dir.Join("missing.json"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("missing.json"));
}

TEST(RotatorConfigTest, ParsesWorkerFlags) {
  auto w = ParseWorkerFlag("pg=localhost:7711=spiffe://coffer.local/worker/postgres");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->name(), "pg");
  EXPECT_EQ(w->address(), "localhost:7711");
  EXPECT_EQ(w->spiffe_id(), "spiffe://coffer.local/worker/postgres");
  for (const char* bad : {"", "pg", "pg=localhost:7711", "=a=b", "pg==spiffe://x/y", "pg=a="}) {
    EXPECT_EQ(ParseWorkerFlag(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(RotatorConfigTest, RegistryRejectsInvalidEntries) {
  auto registry_of = [](const std::string& name, const std::string& address,
                        const std::string& spiffe) {
    RotatorConfig config;
    auto* w = config.add_workers();
    w->set_name(name);
    w->set_address(address);
    w->set_spiffe_id(spiffe);
    return WorkerRegistry::FromConfig(config).status();
  };
  EXPECT_TRUE(registry_of("pg", "h:1", "spiffe://d/w").ok());
  EXPECT_FALSE(registry_of("", "h:1", "spiffe://d/w").ok());
  EXPECT_FALSE(registry_of("bad name!", "h:1", "spiffe://d/w").ok());
  EXPECT_FALSE(registry_of(std::string(257, 'a'), "h:1", "spiffe://d/w").ok());
  EXPECT_FALSE(registry_of("pg", "", "spiffe://d/w").ok());
  EXPECT_FALSE(registry_of("pg", "h:1", "").ok());
  EXPECT_FALSE(registry_of("pg", "h:1", "https://d/w").ok());

  RotatorConfig twice;
  for (int i = 0; i < 2; ++i) {
    auto* w = twice.add_workers();
    w->set_name("pg");
    w->set_address("h:1");
    w->set_spiffe_id("spiffe://d/w");
  }
  auto dup = WorkerRegistry::FromConfig(twice);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("more than once"));
}

}  // namespace
}  // namespace coffer::rotator
