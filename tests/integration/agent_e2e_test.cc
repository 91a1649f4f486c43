// coffer-agent end to end: the real binary beside a real kms and store,
// with the Catagram identity, driven by Python's urllib (agent_client.py):
// every route, every refusal, the AWS JSON shapes byte for byte, push
// invalidation.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/kms_store.h"
#include "tests/testing/test_env.h"

namespace coffer::testing {
namespace {

TEST(AgentE2ETest, PythonUrllibSeesTheAwsAgentContract) {
  TempDir dir;
  std::unique_ptr<ServiceProcess> kms, store;
  ASSERT_TRUE(StartKmsAndStore(dir, {}, &kms, &store).ok());
  const std::map<std::string, std::string> env = {
      {"COFFER_ADDRESS", absl::StrCat("localhost:", store->ports().grpc)}};
  auto ctl = [&](std::vector<std::string> args) {
    auto [code, out] = RunCofferctl(args, env);
    EXPECT_EQ(code, 0) << out;
  };
  ctl({"secrets", "create-secret", "--name=demo/catagram/db", "--secret-string=first-pw"});
  ctl({"secrets", "create-secret", "--name=demo/other/db", "--secret-string=not-yours"});
  ctl({"secrets", "create-secret", "--name=demo/catagram/blob", "--secret-binary=AAH+/w=="});
  ctl({"params", "put-parameter", "--name=/demo/catagram/port", "--value=5432",
       "--type=PARAMETER_TYPE_STRING"});
  ctl({"params", "put-parameter", "--name=/demo/catagram/password", "--value=s3cret",
       "--type=PARAMETER_TYPE_SECURE_STRING"});

  const rpc::TlsFiles app = SharedPki().Identity("app-catagram");
  const std::string token = "agent-token-for-the-test-0123456789";
  Subprocess agent(
      {BinaryPath("coffer-agent"), "--http_address=127.0.0.1:0",
       absl::StrCat("--store_address=localhost:", store->ports().grpc), "--tls_ca=" + app.ca_file,
       "--tls_cert=" + app.cert_file, "--tls_key=" + app.key_file},
      {{"AWS_TOKEN", token}});
  ASSERT_TRUE(agent.Start().ok());
  int port = 0;
  ASSERT_TRUE(
      WaitFor([&] { return (port = LoggedHttpPort(agent.Output())) != 0; }, absl::Seconds(10)))
      << agent.Output();

  std::map<std::string, std::string> py_env = CofferctlEnv(env);
  Subprocess client({"/usr/bin/python3", SourceDir() + "/tests/integration/agent_client.py",
                     absl::StrCat("http://127.0.0.1:", port), token, BinaryPath("cofferctl")},
                    py_env);
  ASSERT_TRUE(client.Start().ok());
  const int code = client.Wait(absl::Seconds(60));
  EXPECT_EQ(code, 0) << client.Output() << "\n--- agent:\n" << agent.Output();
  EXPECT_NE(client.Output().find("agent_client: 0 failures"), std::string::npos) << client.Output();
  // Values never reach the agent's log.
  EXPECT_EQ(agent.Output().find("first-pw"), std::string::npos);
  EXPECT_EQ(agent.Output().find("s3cret"), std::string::npos);
  EXPECT_EQ(agent.Output().find("rotated-pw"), std::string::npos);
}

TEST(AgentE2ETest, RefusesToStartWithoutATokenOrOffLoopback) {
  const rpc::TlsFiles app = SharedPki().Identity("app-catagram");
  const std::vector<std::string> tls = {"--tls_ca=" + app.ca_file, "--tls_cert=" + app.cert_file,
                                        "--tls_key=" + app.key_file};
  std::vector<std::string> no_token = {BinaryPath("coffer-agent"), "--http_address=127.0.0.1:0"};
  no_token.insert(no_token.end(), tls.begin(), tls.end());
  Subprocess a(
      no_token,
      {{"AWS_TOKEN", ""}, {"AWS_SESSION_TOKEN", ""}, {"AWS_CONTAINER_AUTHORIZATION_TOKEN", ""}});
  ASSERT_TRUE(a.Start().ok());
  EXPECT_EQ(a.Wait(absl::Seconds(10)), 1);
  EXPECT_NE(a.Output().find("no SSRF token"), std::string::npos) << a.Output();

  std::vector<std::string> remote = {BinaryPath("coffer-agent"), "--http_address=0.0.0.0:0"};
  remote.insert(remote.end(), tls.begin(), tls.end());
  Subprocess b(remote, {{"AWS_TOKEN", "t"}});
  ASSERT_TRUE(b.Start().ok());
  EXPECT_EQ(b.Wait(absl::Seconds(10)), 1);
  EXPECT_NE(b.Output().find("loopback only"), std::string::npos) << b.Output();

  // The token from a file.
  TempDir dir;
  const std::string file = dir.Join("token");
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("from-a-file\n", f);
  fclose(f);
  std::vector<std::string> from_file = {BinaryPath("coffer-agent"), "--http_address=127.0.0.1:0"};
  from_file.insert(from_file.end(), tls.begin(), tls.end());
  Subprocess c(from_file, {{"AWS_TOKEN", "file://" + file}});
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return LoggedHttpPort(c.Output()) != 0; }, absl::Seconds(10)))
      << c.Output();
}

}  // namespace
}  // namespace coffer::testing
