#include "libs/rpc/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/server_builder.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"

namespace coffer::rpc {
namespace {

// The reflection plugin registers itself globally: every ServerBuilder made
// after InitProtoReflectionServerBuilderPlugin() (or after the plugin library
// is loaded, it also has a static initializer) starts with it. Server options
// run before plugins are applied in BuildAndStart and may edit that list, so
// the health-only listener drops every plugin and serves Health alone.
class WithoutPlugins final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }
};

// Refuse ports already in use instead of silently sharing them
// (gRPC sets SO_REUSEPORT by default).
void NoReusePort(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

// The plaintext listener that serves grpc.health.v1.Health alone.
std::unique_ptr<grpc::Server> StartHealthListener(const std::string& address, HealthStatus* health,
                                                  int* port) {
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<WithoutPlugins>());
  NoReusePort(builder);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  builder.RegisterService(health);
  builder.SetMaxReceiveMessageSize(4096);  // health requests are tiny
  return builder.BuildAndStart();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::StartHealthOnly(const std::string& address,
                                                                HealthStatus* health) {
  COFFER_CHECK(health != nullptr, "Server::StartHealthOnly needs a HealthStatus");
  std::unique_ptr<Server> server(new Server());
  server->health_ = health;
  server->health_server_ = StartHealthListener(address, health, &server->health_port_);
  if (server->health_server_ == nullptr || server->health_port_ == 0) {
    server->shut_down_ = true;
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " (plaintext health)"));
  }
  return server;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options,
                                                      const std::vector<grpc::Service*>& services,
                                                      HealthStatus* health) {
  COFFER_CHECK(health != nullptr, "Server::Start needs a HealthStatus");
  COFFER_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds,
                          MakeServerCredentials(options.tls));

  std::unique_ptr<Server> server(new Server());
  server->health_ = health;

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  NoReusePort(builder);
  builder.AddListeningPort(options.listen_address, creds, &server->port_);
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.RegisterService(health);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (!options.interceptors.empty()) {
    builder.experimental().SetInterceptorCreators(std::move(options.interceptors));
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (gRPC, mTLS)"));
  }

  if (!options.health_listen_address.empty()) {
    server->health_server_ =
        StartHealthListener(options.health_listen_address, health, &server->health_port_);
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      // The main server is stopped without touching the shared health state.
      server->server_->Shutdown(std::chrono::system_clock::now());
      server->server_->Wait();
      server->server_.reset();
      server->shut_down_ = true;
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options.health_listen_address, " (plaintext health)"));
    }
  }
  log::Info("rpc", "serving",
            {{"address", options.listen_address},
             {"port", absl::StrCat(server->port_)},
             {"health_port", absl::StrCat(server->health_port_)}});
  return server;
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // Probes and Watch streams see NOT_SERVING first; Watch streams end, so
  // they do not hold up the drain below.
  health_->Shutdown();
  const auto deadline = std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(std::max(grace, absl::ZeroDuration()));
  if (server_ != nullptr) {
    server_->Shutdown(deadline);
    server_->Wait();
  }
  if (health_server_ != nullptr) {
    health_server_->Shutdown(deadline);
    health_server_->Wait();
  }
}

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

void BlockShutdownSignals() {
  const sigset_t set = ShutdownSignals();
  int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  COFFER_CHECK(rc == 0, "pthread_sigmask failed");
}

int WaitForSignal() {
  const sigset_t set = ShutdownSignals();
  int sig = 0;
  int rc = sigwait(&set, &sig);
  COFFER_CHECK(rc == 0, "sigwait failed");
  return sig;
}

int WaitForShutdownSignal() {
  while (true) {
    int sig = WaitForSignal();
    if (sig != SIGHUP) return sig;  // nothing to reload here
  }
}

}  // namespace coffer::rpc
