// coffer-health-probe: asks a service's plaintext health-only listener
// (--health_listen_address) whether it is SERVING, for container
// healthchecks that cannot present a client certificate (docker-compose's
// `healthcheck`, like Kubernetes' native gRPC probes).
//
//   coffer-health-probe 127.0.0.1:7802            # exit 0 when SERVING
//   coffer-health-probe 127.0.0.1:7802 --timeout=2s
//
// Exit status: 0 SERVING, 1 any other answer or no answer, 2 bad usage.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "grpc/health/v1/health.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || std::string(argv[1]).find(':') == std::string::npos) {
    std::fprintf(stderr, "usage: coffer-health-probe host:port [--timeout=SECONDS]\n");
    return 2;
  }
  int timeout_s = 3;
  if (argc == 3) {
    std::string flag = argv[2];
    if (!absl::StartsWith(flag, "--timeout=")) {
      std::fprintf(stderr, "unknown flag %s\n", argv[2]);
      return 2;
    }
    std::string value = flag.substr(10);
    if (absl::EndsWith(value, "s")) value.pop_back();
    if (!absl::SimpleAtoi(value, &timeout_s) || timeout_s < 1) {
      std::fprintf(stderr, "--timeout: whole seconds, at least 1\n");
      return 2;
    }
  }
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1], status.error_message().c_str());
    return 1;
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    std::fprintf(
        stderr, "%s: %s\n", argv[1],
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
    return 1;
  }
  return 0;
}
