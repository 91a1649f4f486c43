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

  // The client library's COFFER_ENDPOINT, after cofferctl's own names.
  inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ApplyAddressDefault(*inv, "localhost:7701", Env({{"COFFER_ENDPOINT", "e:4"}}));
  EXPECT_EQ(inv->connection.address, "e:4");
  inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ApplyAddressDefault(*inv, "localhost:7701",
                      Env({{"COFFER_ENDPOINT", "e:4"}, {"COFFER_ADDRESS", "a:1"}}));
  EXPECT_EQ(inv->connection.address, "a:1");

  // A group with '-' in its name has a variable a shell can set.
  EXPECT_EQ(AddressVariable("kms"), "COFFER_KMS_ADDRESS");
  EXPECT_EQ(AddressVariable("access-keys"), "COFFER_ACCESS_KEYS_ADDRESS");
  inv = ParseInvocation({"access-keys", "list-access-keys"}, Env({}));
  ApplyAddressDefault(*inv, "localhost:7701",
                      Env({{"COFFER_ADDRESS", "a:1"}, {"COFFER_ACCESS_KEYS_ADDRESS", "ak:5"}}));
  EXPECT_EQ(inv->connection.address, "ak:5");

  inv = ParseInvocation({"kms", "list-keys", "--address=x:3"}, Env({}));
  ApplyAddressDefault(*inv, "localhost:7701", Env({{"COFFER_ADDRESS", "a:1"}}));
  EXPECT_EQ(inv->connection.address, "x:3");
}

TEST(InvocationTest, ServerIdentityDefaults) {
  const std::string kKms = "spiffe://coffer.local/kms";
  auto inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ASSERT_TRUE(inv.ok());
  ApplyServerIdentityDefault(*inv, kKms, Env({}));
  EXPECT_EQ(inv->connection.server_spiffe_id, kKms);  // the group's own

  inv = ParseInvocation({"kms", "list-keys"}, Env({}));
  ApplyServerIdentityDefault(*inv, kKms, Env({{"COFFER_SERVER_SPIFFE_ID", "spiffe://x/kms"}}));
  EXPECT_EQ(inv->connection.server_spiffe_id, "spiffe://x/kms");

  inv = ParseInvocation({"kms", "list-keys", "--server-spiffe-id=spiffe://y/kms"}, Env({}));
  ApplyServerIdentityDefault(*inv, kKms, Env({{"COFFER_SERVER_SPIFFE_ID", "spiffe://x/kms"}}));
  EXPECT_EQ(inv->connection.server_spiffe_id, "spiffe://y/kms");

  // An empty flag turns pinning off (the host name is checked instead).
  inv = ParseInvocation({"kms", "list-keys", "--server_spiffe_id="}, Env({}));
  ASSERT_TRUE(inv.ok());
  ApplyServerIdentityDefault(*inv, kKms, Env({}));
  EXPECT_EQ(inv->connection.server_spiffe_id, "");
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
  EXPECT_THAT(
      std::string(ParseInvocation({"kms", "x", "--timeout=soon"}, Env({})).status().message()),
      HasSubstr("--timeout: 'soon' is not a duration"));
  EXPECT_THAT(std::string(ParseInvocation({"kms", "x", "--timeout=0"}, Env({})).status().message()),
              HasSubstr("--timeout: must be positive"));
  EXPECT_THAT(std::string(ParseInvocation({"kms", "x", "--address"}, Env({})).status().message()),
              HasSubstr("--address: needs a value"));
  EXPECT_THAT(
      std::string(
          ParseInvocation({"kms", "x", "--output-field=plaintext"}, Env({})).status().message()),
      HasSubstr("--output-field: only makes sense with --output-file"));
  auto bare = ParseInvocation({"kms", "x", "--timeout=2.5"}, Env({}));
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->connection.timeout, absl::Milliseconds(2500));
}

TEST(InvocationTest, WatchParamsIsWatchParameters) {
  auto inv = ParseInvocation(
      {"watch", "params", "--path", "/app", "--recursive", "--start-after=42", "--max-events=2"},
      Env({}));
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->group, "params");
  EXPECT_EQ(inv->operation, "watch-parameters");
  EXPECT_THAT(inv->request_args, ElementsAre("--path", "/app", "--recursive", "--start-after=42"));
  EXPECT_EQ(inv->max_events, 2);
  EXPECT_FALSE(inv->connection.timeout_given);

  // The same as spelling it out, address defaults included.
  auto long_form = ParseInvocation({"params", "watch-parameters", "--path", "/app", "--recursive",
                                    "--start-after=42", "--max-events=2"},
                                   Env({}));
  ASSERT_TRUE(long_form.ok());
  EXPECT_EQ(long_form->group, inv->group);
  EXPECT_EQ(long_form->operation, inv->operation);
  EXPECT_EQ(long_form->request_args, inv->request_args);
  ApplyAddressDefault(*inv, "localhost:7702", Env({{"COFFER_PARAMS_ADDRESS", "p:7702"}}));
  EXPECT_EQ(inv->connection.address, "p:7702");
}

TEST(InvocationTest, WatchSecretsIsWatchSecrets) {
  auto inv =
      ParseInvocation({"watch", "secrets", "--name-prefix=prod/", "--timeout", "10m"}, Env({}));
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->group, "secrets");
  EXPECT_EQ(inv->operation, "watch-secrets");
  EXPECT_THAT(inv->request_args, ElementsAre("--name-prefix=prod/"));
  EXPECT_TRUE(inv->connection.timeout_given);
  EXPECT_EQ(inv->connection.timeout, absl::Minutes(10));
  EXPECT_EQ(inv->max_events, 0);

  auto help = ParseInvocation({"watch", "secrets", "--help"}, Env({}));
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->help);
  EXPECT_EQ(help->operation, "watch-secrets");
}

TEST(InvocationTest, WatchAliasTable) {
  ASSERT_EQ(WatchAliases().size(), 2u);
  EXPECT_EQ(WatchAliases()[0].target, "params");
  EXPECT_EQ(WatchAliases()[0].group, "params");
  EXPECT_EQ(WatchAliases()[0].operation, "watch-parameters");
  EXPECT_EQ(WatchAliases()[1].target, "secrets");
  EXPECT_EQ(WatchAliases()[1].group, "secrets");
  EXPECT_EQ(WatchAliases()[1].operation, "watch-secrets");
}

TEST(InvocationTest, WatchWithoutOrWithUnknownTarget) {
  auto bare = ParseInvocation({"watch"}, Env({}));
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->group, kWatchGroup);
  EXPECT_TRUE(bare->operation.empty());

  EXPECT_THAT(std::string(ParseInvocation({"watch", "kms"}, Env({})).status().message()),
              HasSubstr("watch: unknown target 'kms'; expected params or secrets"));
  // Only the group position is an alias: `params watch` is an ordinary
  // (unknown) operation.
  auto op = ParseInvocation({"params", "watch"}, Env({}));
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->group, "params");
  EXPECT_EQ(op->operation, "watch");
}

TEST(InvocationTest, MaxEventsAndStreamTimeout) {
  auto inv = ParseInvocation({"params", "watch-parameters", "--max-events", "5"}, Env({}));
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->max_events, 5);
  EXPECT_TRUE(inv->request_args.empty());
  EXPECT_FALSE(inv->connection.timeout_given);
  EXPECT_EQ(inv->connection.timeout, absl::Seconds(30));  // unary default, unchanged

  for (const char* bad : {"--max-events=0", "--max-events=-1", "--max-events=x", "--max-events=2.5",
                          "--max-events="}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(
        std::string(
            ParseInvocation({"params", "watch-parameters", bad}, Env({})).status().message()),
        HasSubstr("--max-events:"));
  }
}

TEST(InvocationTest, OutputFormat) {
  auto json = ParseInvocation({"kms", "list-keys"}, Env({}));
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->output, OutputFormat::kJson);  // the default, as the AWS CLI's
  for (const auto& [name, format] :
       std::vector<std::pair<std::string, OutputFormat>>{{"json", OutputFormat::kJson},
                                                         {"table", OutputFormat::kTable},
                                                         {"text", OutputFormat::kText}}) {
    SCOPED_TRACE(name);
    auto inv = ParseInvocation({"kms", "list-keys", "--output", name}, Env({}));
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_EQ(inv->output, format);
    EXPECT_THAT(inv->request_args, IsEmpty());
    EXPECT_EQ(OutputFormatName(format), name);
  }
  // Before the group, as cofferctl's own flags may be.
  auto early = ParseInvocation({"--output=text", "kms", "list-keys"}, Env({}));
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_EQ(early->output, OutputFormat::kText);

  EXPECT_THAT(
      std::string(ParseInvocation({"kms", "x", "--output=yaml"}, Env({})).status().message()),
      HasSubstr("--output: expected json, table or text"));
}

TEST(InvocationTest, OutputFormatFromTheEnvironment) {
  auto env = ParseInvocation({"kms", "list-keys"}, Env({{"COFFER_OUTPUT", "table"}}));
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->output, OutputFormat::kTable);
  auto flag =
      ParseInvocation({"kms", "list-keys", "--output=json"}, Env({{"COFFER_OUTPUT", "table"}}));
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->output, OutputFormat::kJson);  // the flag wins
  EXPECT_THAT(std::string(ParseInvocation({"kms", "list-keys"}, Env({{"COFFER_OUTPUT", "xml"}}))
                              .status()
                              .message()),
              HasSubstr("$COFFER_OUTPUT: expected json, table or text"));
}

}  // namespace
}  // namespace coffer::cofferctl
