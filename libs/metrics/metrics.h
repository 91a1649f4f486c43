// metrics.h: Prometheus metrics for a Coffer process.
//
//   COFFER_ASSIGN_OR_RETURN(auto metrics,
//       coffer::metrics::Metrics::Start("127.0.0.1:9701", "kms"));   // port 0 ok
//   opts.interceptors.push_back(metrics->ServerInterceptorFactory());
//   auto& ops = prometheus::BuildCounter().Name("coffer_kms_crypto_operations_total")
//                   .Register(*metrics->registry());
//
// Start() serves text exposition at http://<address>/metrics and registers
// coffer_build_info{version,component}. The gRPC interceptors record what
// existing dashboards expect (go-grpc-prometheus names):
//   grpc_server_started_total{grpc_service,grpc_method,grpc_type}
//   grpc_server_handled_total{grpc_service,grpc_method,grpc_type,grpc_code}
//   grpc_server_handling_seconds{grpc_service,grpc_method,grpc_type} (histogram)
//   grpc_client_started_total / grpc_client_handled_total /
//   grpc_client_handling_seconds with the same labels.
// Labels are bounded: service and method names and code names only. On the
// server, a method path that is not a method of a linked protobuf service
// (what any client may send) is counted as grpc_service="unknown",
// grpc_method="unknown", never under its own name.
#pragma once

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace prometheus {
class Registry;
class Exposer;
}  // namespace prometheus

namespace coffer::metrics {

class GrpcMetrics;

class Metrics {
 public:
  // A registry without an HTTP endpoint (tests, tools).
  static std::unique_ptr<Metrics> Create(const std::string& component);
  // Registry plus an HTTP exposer on `listen_address` ("host:port", port 0
  // picks one). UNAVAILABLE if it cannot bind.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen_address,
                                                        const std::string& component);
  ~Metrics();

  // Shared with the exposer (which holds it only weakly); lives as long as
  // this object.
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }
  // Bound HTTP port, or 0 without an exposer.
  int port() const { return port_; }

  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> ServerInterceptorFactory();
  std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> ClientInterceptorFactory();

  // The Prometheus text exposition of the registry (what /metrics serves).
  std::string Scrape() const;

 private:
  Metrics() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<GrpcMetrics> grpc_;
  int port_ = 0;
};

// The version string compiled into every binary (CMake project version).
const char* CofferVersion();

}  // namespace coffer::metrics
