// coffer-agent: a local HTTP sidecar with the AWS Secrets Manager Agent's
// contract, over Coffer's caching clients (with push invalidation), for
// applications in any language.
//
//   AWS_TOKEN=$(cat /run/agent-token) coffer-agent --store_address=coffer-store:7702
//       --tls_ca=ca.crt --tls_cert=app.crt --tls_key=app.key
//   curl -H "X-Aws-Parameters-Secrets-Token: $AWS_TOKEN"
//       'localhost:2773/secretsmanager/get?secretId=prod/db'
//
// It authenticates to the store with the workload's own certificate, so the
// store's policies decide what it may read. See services/agent/agent_handler.h
// for the routes and the README ("Read a secret from any language").
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/client/connection.h"
#include "libs/client/parameter_cache.h"
#include "libs/client/secret_cache.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/http/http_server.h"
#include "libs/rpc/server.h"
#include "services/agent/agent_handler.h"

ABSL_FLAG(std::string, http_address, "127.0.0.1:2773",
          "loopback host:port the agent serves HTTP on (AWS's agent: port 2773)");
ABSL_FLAG(absl::Duration, ttl, absl::Seconds(300), "how long a cached value is served");
ABSL_FLAG(int, cache_size, 1000, "secrets (and parameters) cached at most");
ABSL_FLAG(int, max_connections, 800, "HTTP requests in service or queued at once; beyond: 429");
ABSL_FLAG(int, http_threads, 16, "HTTP requests served at once");
ABSL_FLAG(std::vector<std::string>, ssrf_env_variables,
          std::vector<std::string>({"AWS_TOKEN", "AWS_SESSION_TOKEN",
                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN"}),
          "environment variables searched, in order, for the token every request must carry in "
          "X-Aws-Parameters-Secrets-Token; a value file://PATH is read from that file");
ABSL_FLAG(bool, push_invalidation, true,
          "watch the store for changes and drop cached values at once (else TTL only)");
ABSL_FLAG(std::string, watch_name_prefix, "", "WatchSecrets name prefix (\"\": every secret)");
ABSL_FLAG(std::string, watch_parameters_path, "/", "WatchParameters path (recursive)");
ABSL_FLAG(std::string, store_address, "localhost:7702", "host:port of coffer-store (mTLS)");
ABSL_FLAG(std::string, store_spiffe_id, "spiffe://coffer.local/store",
          "SPIFFE ID coffer-store must present; empty: check the host name instead");
ABSL_FLAG(absl::Duration, store_timeout, absl::Seconds(5), "deadline of each call to the store");
ABSL_FLAG(std::string, tls_ca, "var/certs/ca.crt", "CA bundle the store must chain to");
ABSL_FLAG(std::string, tls_cert, "var/certs/app-catagram.crt",
          "the workload's certificate (the identity the store authorizes)");
ABSL_FLAG(std::string, tls_key, "var/certs/app-catagram.key", "the workload's private key");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warn or error");

namespace coffer::agent {
namespace {

// The SSRF token: the first of the variables that is set (file:// read).
absl::StatusOr<std::string> Token() {
  for (const std::string& name : absl::GetFlag(FLAGS_ssrf_env_variables)) {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') continue;
    std::string value = v;
    if (absl::StartsWith(value, "file://")) {
      value = value.substr(7);
      std::ifstream in(value);
      if (!in) return absl::InvalidArgumentError(absl::StrCat(name, ": cannot read ", value));
      std::stringstream ss;
      ss << in.rdbuf();
      value = std::string(absl::StripTrailingAsciiWhitespace(ss.str()));
    }
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(name, " holds no token"));
    return value;
  }
  return absl::InvalidArgumentError(
      "no SSRF token: set AWS_TOKEN (or a variable of --ssrf_env_variables) to the token "
      "callers must send in X-Aws-Parameters-Secrets-Token");
}

absl::Status Run() {
  log::Level level;
  if (!log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return absl::InvalidArgumentError("--log_level: debug, info, warn or error");
  }
  log::SetLevel(level);
  COFFER_ASSIGN_OR_RETURN(std::string token, Token());
  if (absl::GetFlag(FLAGS_cache_size) < 1) return absl::InvalidArgumentError("--cache_size >= 1");

  client::ClientOptions options;
  options.endpoint = absl::GetFlag(FLAGS_store_address);
  options.tls = {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
                 absl::GetFlag(FLAGS_tls_key)};
  options.server_spiffe_id = absl::GetFlag(FLAGS_store_spiffe_id);
  options.timeout = absl::GetFlag(FLAGS_store_timeout);
  COFFER_ASSIGN_OR_RETURN(auto store, client::Connection::Create(options, "coffer-store"));

  client::SecretCacheOptions secret_options;
  secret_options.max_entries = absl::GetFlag(FLAGS_cache_size);
  secret_options.ttl = absl::GetFlag(FLAGS_ttl);
  secret_options.push_invalidation = absl::GetFlag(FLAGS_push_invalidation);
  secret_options.watch_name_prefix = absl::GetFlag(FLAGS_watch_name_prefix);
  client::SecretCache secrets(client::SecretsClient(store), secret_options);
  client::ParameterCacheOptions parameter_options;
  parameter_options.max_entries = absl::GetFlag(FLAGS_cache_size);
  parameter_options.ttl = absl::GetFlag(FLAGS_ttl);
  parameter_options.push_invalidation = absl::GetFlag(FLAGS_push_invalidation);
  parameter_options.watch_path = absl::GetFlag(FLAGS_watch_parameters_path);
  client::ParameterCache parameters(client::ParametersClient(store), parameter_options);

  AgentHandler handler(&secrets, &parameters, {token});
  http::HttpServerOptions http_options;
  http_options.listen_address = absl::GetFlag(FLAGS_http_address);
  http_options.threads = absl::GetFlag(FLAGS_http_threads);
  http_options.max_connections = absl::GetFlag(FLAGS_max_connections);
  COFFER_ASSIGN_OR_RETURN(auto server,
                          http::HttpServer::Start(http_options, [&handler](const HttpRequest& r) {
                            return handler.Handle(r);
                          }));
  log::Info("agent", "started",
            {{"http_port", absl::StrCat(server->port())}, {"store", options.endpoint}});
  rpc::WaitForShutdownSignal();
  log::Info("agent", "stopping");
  server.reset();
  return absl::OkStatus();
}

}  // namespace
}  // namespace coffer::agent

int main(int argc, char** argv) {
  coffer::rpc::BlockShutdownSignals();
  absl::SetProgramUsageMessage(
      "coffer-agent: the AWS Secrets Manager Agent's HTTP contract on localhost, over Coffer");
  absl::ParseCommandLine(argc, argv);
  absl::Status s = coffer::agent::Run();
  if (!s.ok()) {
    coffer::log::Error("agent", "fatal", {{"error", s.ToString()}});
    return 1;
  }
  return 0;
}
