// server.h: the gRPC server setup every Coffer service shares.
//
//   coffer::rpc::ServerOptions opts;
//   opts.listen_address = "127.0.0.1:7701";        // port 0: pick a free one
//   opts.tls = {ca, cert, key};
//   opts.health_listen_address = "0.0.0.0:7801";   // optional, plaintext, health only
//   opts.interceptors.push_back(metrics.ServerInterceptorFactory());
//   COFFER_ASSIGN_OR_RETURN(auto server,
//       coffer::rpc::Server::Start(std::move(opts), {&kms_service}, &health));
//   coffer::rpc::WaitForShutdownSignal();            // SIGTERM / SIGINT
//   server->Shutdown(absl::Seconds(10));            // drain in-flight calls
//
// The main listener requires and verifies client certificates (tls.h) and
// serves the given services, grpc.health.v1.Health and server reflection.
// The health-only listener, when configured, is plaintext and serves nothing
// but grpc.health.v1.Health (Kubernetes gRPC probes cannot present a client
// certificate).
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/rpc/health.h"
#include "libs/rpc/tls.h"

namespace coffer::rpc {

struct ServerOptions {
  // host:port of the mTLS listener.
  std::string listen_address = "127.0.0.1:0";
  TlsFiles tls;
  // host:port of the plaintext health-only listener; empty: none.
  std::string health_listen_address;
  // Largest request accepted (bigger: RESOURCE_EXHAUSTED from gRPC).
  int max_receive_message_bytes = 1 << 20;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
};

class Server {
 public:
  // Binds, registers `services` (not owned; must outlive the Server), the
  // health service and reflection, and starts serving. INVALID_ARGUMENT for
  // bad TLS files, UNAVAILABLE if a port cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options,
                                                       const std::vector<grpc::Service*>& services,
                                                       HealthStatus* health);
  // Only the plaintext health-only listener, for a service whose API is not
  // gRPC (coffer-gateway) but whose probes are. port() is 0.
  static absl::StatusOr<std::unique_ptr<Server>> StartHealthOnly(const std::string& address,
                                                                 HealthStatus* health);
  ~Server();

  // The bound port of the mTLS listener (useful with port 0).
  int port() const { return port_; }
  // The bound port of the health-only listener, or 0.
  int health_port() const { return health_port_; }

  // Stops accepting, marks health NOT_SERVING, lets in-flight calls finish
  // until `grace` has passed, then cancels the rest. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  Server() = default;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;
  HealthStatus* health_ = nullptr;
  int port_ = 0;
  int health_port_ = 0;
  bool shut_down_ = false;
};

// SIGINT and SIGTERM (the signals that stop a Coffer process) and SIGHUP
// (reload the policy).
sigset_t ShutdownSignals();

// Blocks ShutdownSignals() in the calling thread and every thread it starts
// later. Call first thing in main(), before any thread exists.

void BlockShutdownSignals();

// Waits for SIGTERM or SIGINT (requires BlockShutdownSignals()); returns the
// signal number.
int WaitForShutdownSignal();
// Waits for any of ShutdownSignals() (SIGHUP included); returns it.
int WaitForSignal();

}  // namespace coffer::rpc
