#include "tools/cofferctl/invocation.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coffer::cofferctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(InvocationTest, SplitsGroupOperationAndRequestFlags) {
  auto inv = ParseInvocation({"kms", "encrypt", "--key-id", "alias/app", "--timeout=5s",
                              "--plaintext=aGk=", "--address", "kms:7701"},
                             Env({}));
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->group, "kms");
  EXPECT_EQ(inv->operation, "encrypt");
  EXPECT_FALSE(inv->help);
  EXPECT_THAT(inv->request_args, ElementsAre("--key-id", "alias/app", "--plaintext=aGk="));
  EXPECT_EQ(inv->connection.timeout, absl::Seconds(5));
  EXPECT_EQ(inv->connection.address, "kms:7701");
}

TEST(InvocationTest, CertificateDefaults) {
  auto inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->connection.ca_file, "./var/certs/ca.crt");
  EXPECT_EQ(inv->connection.cert_file, "./var/certs/cofferctl.crt");
  EXPECT_EQ(inv->connection.key_file, "./var/certs/cofferctl.key");
  EXPECT_EQ(inv->connection.timeout, absl::Seconds(30));
  EXPECT_TRUE(inv->connection.address.empty());

  auto from_env = ParseInvocation(
      {"kms", "list-keys", "--cert=/flag.crt"},
      Env({{"COFFER_CA", "/env/ca"}, {"COFFER_CERT", "/env/crt"}, {"COFFER_KEY", "/env/key"}}));
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->connection.ca_file, "/env/ca");
  EXPECT_EQ(from_env->connection.cert_file, "/flag.crt");
  EXPECT_EQ(from_env->connection.key_file, "/env/key");
}

TEST(InvocationTest, AddressDefaults) {
  auto inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ASSERT_TRUE(inv.ok());
  ApplyAddressDefault(*inv, "localhost:7701", Env({}));
  EXPECT_EQ(inv->connection.address, "localhost:7701");

  inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ApplyAddressDefault(*inv, "localhost:7701", Env({{"COFFER_ADDRESS", "a:1"}}));
  EXPECT_EQ(inv->connection.address, "a:1");

  inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ApplyAddressDefault(*inv, "localhost:7701",
                      Env({{"COFFER_ADDRESS", "a:1"}, {"COFFER_KMS_ADDRESS", "k:2"}}));
  EXPECT_EQ(inv->connection.address, "k:2");

  inv = ParseInvocation({"kms", "list-keys", "--address=x:3"}, Env({}));
  ApplyAddressDefault(*inv, "localhost:7701", Env({{"COFFER_ADDRESS", "a:1"}}));
  EXPECT_EQ(inv->connection.address, "x:3");
}

TEST(InvocationTest, Help) {
  auto top = ParseInvocation({"--help"}, Env({}));
  ASSERT_TRUE(top.ok());
  EXPECT_TRUE(top->help);
  EXPECT_TRUE(top->group.empty());

  auto op = ParseInvocation({"kms", "encrypt", "--help"}, Env({}));
  ASSERT_TRUE(op.ok());
  EXPECT_TRUE(op->help);
  EXPECT_EQ(op->operation, "encrypt");
  EXPECT_THAT(op->request_args, IsEmpty());
}

TEST(InvocationTest, Errors) {
  EXPECT_THAT(std::string(ParseInvocation({"--bogus", "kms"}, Env({})).status().message()),
              HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(std::string(ParseInvocation({"kms", "--bogus"}, Env({})).status().message()),
              HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(std::string(ParseInvocation({"kms", "x", "--timeout=soon"}, Env({})).status().message()),
              HasSubstr("--timeout: 'soon' is not a duration"));
  EXPECT_THAT(std::string(ParseInvocation({"kms", "x", "--timeout=0"}, Env({})).status().message()),
              HasSubstr("--timeout: must be positive"));
  EXPECT_THAT(std::string(ParseInvocation({"kms", "x", "--address"}, Env({})).status().message()),
              HasSubstr("--address: needs a value"));
  EXPECT_THAT(
      std::string(ParseInvocation({"kms", "x", "--output-field=plaintext"}, Env({})).status().message()),
      HasSubstr("--output-field: only makes sense with --output-file"));
  auto bare = ParseInvocation({"kms", "x", "--timeout=2.5"}, Env({}));
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->connection.timeout, absl::Milliseconds(2500));
}

}  // namespace
}  // namespace coffer::cofferctl
