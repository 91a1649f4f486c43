#include "libs/worker/run_worker.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/worker/worker_service.h"

ABSL_FLAG(std::string, store_address, "localhost:7702", "host:port of coffer-store (mTLS)");
ABSL_FLAG(std::string, store_spiffe_id, "spiffe://coffer.local/store",
          "SPIFFE ID coffer-store must present (checked in the TLS handshake); empty: check the "
          "store_address host name instead");
ABSL_FLAG(std::string, store_authority, "",
          "name to verify in the store certificate instead of the store_address host");
ABSL_FLAG(absl::Duration, store_timeout, absl::Seconds(5), "deadline of each call to the store");
ABSL_FLAG(std::string, allowed_callers, "spiffe://coffer.local/rotator",
          "comma-separated SPIFFE IDs that may call Step (empty: any authenticated peer)");
ABSL_FLAG(int, step_threads, 4, "rotation steps that may run at the same time");

namespace coffer::worker {
namespace {

absl::Status Serve(const std::string& component, const HandlerFactory& make_handler) {
  COFFER_RETURN_IF_ERROR(runtime::InitProcess());
  COFFER_ASSIGN_OR_RETURN(std::unique_ptr<RotationHandler> handler, make_handler());
  COFFER_ASSIGN_OR_RETURN(auto metrics, runtime::StartMetrics(component));

  rpc::ChannelOptions store_options;
  store_options.target = absl::GetFlag(FLAGS_store_address);
  store_options.authority = absl::GetFlag(FLAGS_store_authority);
  store_options.expected_spiffe_id = absl::GetFlag(FLAGS_store_spiffe_id);
  store_options.tls = runtime::TlsFromFlags();
  store_options.interceptors.push_back(metrics->ClientInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(auto store_channel, rpc::MakeChannel(std::move(store_options)));
  auto secrets = MakeGrpcSecretsClient(store_channel, absl::GetFlag(FLAGS_store_timeout));

  WorkerProbe probe(*metrics->registry());
  WorkerServiceOptions service_options;
  service_options.component = component;
  service_options.threads = absl::GetFlag(FLAGS_step_threads);
  for (absl::string_view id :
       absl::StrSplit(absl::GetFlag(FLAGS_allowed_callers), ',', absl::SkipWhitespace())) {
    service_options.allowed_callers.emplace_back(id);
  }
  COFFER_ASSIGN_OR_RETURN(auto guard,
                          runtime::StartGuard(component, *metrics, /*with_policy=*/false));
  service_options.gate = guard->gate.get();
  WorkerService service(handler.get(), secrets.get(), &probe, std::move(service_options));

  rpc::HealthStatus health(runtime::MaxHealthWatches());
  rpc::ServerOptions server_options = runtime::ServerOptionsFromFlags();
  server_options.interceptors.push_back(metrics->ServerInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(auto server,
                          rpc::Server::Start(std::move(server_options), {&service}, &health));
  health.Set("", true);
  health.Set(rotation::v1::RotationWorker::service_full_name(), true);
  COFFER_RETURN_IF_ERROR(runtime::WritePortsFile(*server, *metrics));
  log::Info(component, "serving",
            {{"grpc_port", absl::StrCat(server->port())},
             {"health_port", absl::StrCat(server->health_port())},
             {"metrics_port", absl::StrCat(metrics->port())},
             {"store_address", absl::GetFlag(FLAGS_store_address)}});

  int sig = runtime::WaitForShutdown(guard.get());
  log::Info(component, "shutting down", {{"signal", absl::StrCat(sig)}});
  server->Shutdown(runtime::ShutdownGrace());
  log::Info(component, "stopped");
  return absl::OkStatus();
}

}  // namespace

StoreConnection StoreConnectionFromFlags() {
  return {absl::GetFlag(FLAGS_store_address), runtime::TlsFromFlags(),
          absl::GetFlag(FLAGS_store_spiffe_id)};
}

int RunWorker(int argc, char** argv, const runtime::ServiceDefaults& defaults,
              const HandlerFactory& make_handler) {
  return runtime::ServiceMain(argc, argv, defaults,
                              absl::StrCat("coffer-", defaults.identity, ": rotation worker"),
                              [&] { return Serve(defaults.identity, make_handler); });
}

}  // namespace coffer::worker
