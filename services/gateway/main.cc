// coffer-gateway: the AWS wire protocol (JSON 1.1 with SigV4) for Secrets
// Manager, SSM Parameter Store and KMS, over HTTPS, in front of coffer-store
// and coffer-kms — so the AWS CLI, the SDKs and External Secrets Operator
// use Coffer with nothing changed but the endpoint.
//
//   coffer-gateway --listen_address=0.0.0.0:7704 --tls_ca=ca.crt
//       --tls_cert=gateway.crt --tls_key=gateway.key
//       --store_address=localhost:7702 --kms_address=localhost:7701
//   aws --endpoint-url https://localhost:7704 --ca-bundle ca.crt
//       secretsmanager get-secret-value --secret-id prod/db
//
// The certificate serves HTTPS and is the gateway's identity to the store
// and the KMS (spiffe://coffer.local/gateway), which accept its calls only
// for callers who signed them with an access key (cofferctl access-keys).
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/http/https_server.h"
#include "libs/metrics/metrics.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "libs/runtime/service_flags.h"
#include "services/gateway/gateway.h"

ABSL_FLAG(std::string, store_address, "localhost:7702", "host:port of coffer-store (mTLS)");
ABSL_FLAG(std::string, store_spiffe_id, "spiffe://coffer.local/store",
          "SPIFFE ID coffer-store must present; empty: check the host name instead");
ABSL_FLAG(std::string, kms_address, "localhost:7701", "host:port of coffer-kms (mTLS)");
ABSL_FLAG(std::string, kms_spiffe_id, "spiffe://coffer.local/kms",
          "SPIFFE ID coffer-kms must present; empty: check the host name instead");
ABSL_FLAG(absl::Duration, backend_timeout, absl::Seconds(10),
          "deadline of each call to the store or the KMS");
ABSL_FLAG(int64_t, max_body_bytes, 1 << 20,
          "largest request body (larger: 413); AWS's largest requests (a 64 KiB secret, "
          "escaped) fit");
ABSL_FLAG(int, max_headers, 64, "most request headers accepted (more: 431)");
ABSL_FLAG(int, http_threads, 64,
          "connections served at once (a kept-alive connection holds its thread until it has "
          "been idle 5 s)");
ABSL_FLAG(double, requests_per_second, 100,
          "requests per second each access key may make (beyond: ThrottlingException)");
ABSL_FLAG(double, burst, 200, "requests an access key may make at once above its rate");

namespace coffer::gateway {
namespace {

absl::StatusOr<std::shared_ptr<grpc::Channel>> Backend(const std::string& address,
                                                       const std::string& spiffe_id) {
  rpc::ChannelOptions options;
  options.target = address;
  options.tls = runtime::TlsFromFlags();
  options.expected_spiffe_id = spiffe_id;
  // A secret's largest answer (BatchGetSecretValue of 20 secrets of 64 KiB).
  options.max_receive_message_bytes = 8 << 20;
  return rpc::MakeChannel(std::move(options));
}

absl::Status Run() {
  COFFER_RETURN_IF_ERROR(runtime::InitProcess());
  if (absl::GetFlag(FLAGS_max_body_bytes) < 1024) {
    return absl::InvalidArgumentError("--max_body_bytes must be at least 1024");
  }
  if (absl::GetFlag(FLAGS_requests_per_second) <= 0 || absl::GetFlag(FLAGS_burst) < 1) {
    return absl::InvalidArgumentError("--requests_per_second > 0 and --burst >= 1");
  }
  const rpc::TlsFiles tls = runtime::TlsFromFlags();
  COFFER_RETURN_IF_ERROR(rpc::CheckTlsFiles(tls));
  COFFER_ASSIGN_OR_RETURN(auto store, Backend(absl::GetFlag(FLAGS_store_address),
                                              absl::GetFlag(FLAGS_store_spiffe_id)));
  COFFER_ASSIGN_OR_RETURN(
      auto kms, Backend(absl::GetFlag(FLAGS_kms_address), absl::GetFlag(FLAGS_kms_spiffe_id)));
  auto backends = MakeGrpcBackends(store, kms, absl::GetFlag(FLAGS_backend_timeout));

  COFFER_ASSIGN_OR_RETURN(auto metrics, runtime::StartMetrics("gateway"));
  GatewayOptions options;
  options.requests_per_second = absl::GetFlag(FLAGS_requests_per_second);
  options.burst = absl::GetFlag(FLAGS_burst);
  Gateway gateway(options, backends.get(), metrics->registry().get());

  http::HttpsServerOptions http_options;
  http_options.listen_address = runtime::ServerOptionsFromFlags().listen_address;
  http_options.threads = absl::GetFlag(FLAGS_http_threads);
  http_options.max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  http_options.max_headers = static_cast<size_t>(absl::GetFlag(FLAGS_max_headers));
  http_options.tls_cert_file = tls.cert_file;
  http_options.tls_key_file = tls.key_file;
  http_options.error_response = HttpRefusal;
  COFFER_ASSIGN_OR_RETURN(
      auto server, http::HttpsServer::Start(http_options, [&gateway](const http::HttpRequest& r) {
        return gateway.Handle(r);
      }));
  // Probes (Kubernetes, docker-compose) speak gRPC health: the plaintext
  // health-only listener, SERVING while HTTPS is.
  rpc::HealthStatus health(runtime::MaxHealthWatches());
  std::unique_ptr<rpc::Server> health_server;
  const std::string health_address = runtime::ServerOptionsFromFlags().health_listen_address;
  if (!health_address.empty()) {
    COFFER_ASSIGN_OR_RETURN(health_server, rpc::Server::StartHealthOnly(health_address, &health));
    health.Set("", true);
  }
  COFFER_RETURN_IF_ERROR(runtime::WritePortsFile(
      server->port(), health_server != nullptr ? health_server->health_port() : 0, *metrics));
  log::Info(
      "gateway", "serving",
      {{"https_port", absl::StrCat(server->port())},
       {"health_port", absl::StrCat(health_server != nullptr ? health_server->health_port() : 0)},
       {"metrics_port", absl::StrCat(metrics->port())},
       {"store", absl::GetFlag(FLAGS_store_address)},
       {"kms", absl::GetFlag(FLAGS_kms_address)}});
  const int sig = runtime::WaitForShutdown(nullptr);
  log::Info("gateway", "shutting down", {{"signal", absl::StrCat(sig)}});
  if (health_server != nullptr) health_server->Shutdown(absl::ZeroDuration());
  server.reset();  // waits for the requests in service
  log::Info("gateway", "stopped");
  return absl::OkStatus();
}

}  // namespace
}  // namespace coffer::gateway

int main(int argc, char** argv) {
  return coffer::runtime::ServiceMain(argc, argv, {"gateway", 7704, 9704},
                                      "coffer-gateway: the AWS wire protocol for Coffer",
                                      coffer::gateway::Run);
}
