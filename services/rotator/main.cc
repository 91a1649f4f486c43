// coffer-rotator: runs scheduled secret rotations (rotation.md, "The
// rotator"). Stateless: schedules, leases and progress live in coffer-store;
// any number of rotators may run side by side.
//
//   coffer-rotator --store_address=localhost:7702
//       --tls_ca=var/certs/ca.crt --tls_cert=var/certs/rotator.crt
//       --tls_key=var/certs/rotator.key
//       --config=rotator.json
//       --worker=postgres-single-user=localhost:7711=spiffe://coffer.local/worker/postgres
//
// Workers are registered one way: a coffer.rotation.v1.RotatorConfig in its
// proto3 JSON form (--config), extended by --worker=name=address=spiffe_id
// flags. --worker may be repeated on the command line, or hold a
// comma-separated list (the form to use in a --flagfile). A worker name given
// twice is an error.
//
//   {"workers": [{"name": "postgres-single-user", "address": "localhost:7711",
//                 "spiffe_id": "spiffe://coffer.local/worker/postgres"}]}
//
// Serves grpc.health (SERVING once the first schedule load succeeded) and
// reflection on its mTLS port, and /metrics. SIGTERM/SIGINT: stops taking
// new work, lets steps in flight finish for --shutdown_grace, gives back the
// leases of unfinished rotations, exits 0.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/runtime/service_flags.h"
#include "services/rotator/rotation_clients.h"
#include "services/rotator/rotator.h"
#include "services/rotator/rotator_config.h"
#include "services/rotator/rotator_probe.h"

ABSL_FLAG(std::string, store_address, "localhost:7702", "host:port of coffer-store (mTLS)");
ABSL_FLAG(std::string, store_spiffe_id, "spiffe://coffer.local/store",
          "SPIFFE ID coffer-store must present (checked in the TLS handshake); empty: check the "
          "store_address host name instead");
ABSL_FLAG(std::string, store_authority, "",
          "name to verify in the store certificate instead of the store_address host");
ABSL_FLAG(absl::Duration, store_timeout, absl::Seconds(10),
          "deadline of each rotation-control call to the store");
ABSL_FLAG(std::string, config, "",
          "JSON file with a coffer.rotation.v1.RotatorConfig (the worker registry)");
ABSL_FLAG(std::vector<std::string>, worker, {},
          "a rotation worker as name=address=spiffe_id; repeatable, or comma-separated");
ABSL_FLAG(std::string, holder, "",
          "lease holder name (default rotator-<hostname>-<pid>); unique per rotator");
ABSL_FLAG(absl::Duration, lease_duration, absl::Seconds(30),
          "rotation lease length (1s-10m); renewed every third of it while working");
ABSL_FLAG(int, max_attempts, 5, "failed attempts of one step before the rotation fails");
ABSL_FLAG(absl::Duration, backoff_initial, absl::Seconds(1),
          "first retry backoff of a failed step");
ABSL_FLAG(absl::Duration, backoff_max, absl::Seconds(60), "largest retry backoff of a failed step");
ABSL_FLAG(absl::Duration, step_timeout, absl::Seconds(60), "deadline of each worker Step call");
ABSL_FLAG(int, concurrency, 4, "rotations worked on at the same time");
ABSL_FLAG(absl::Duration, resync_interval, absl::Minutes(10),
          "how often every schedule is re-read (guards against missed watch events)");

namespace coffer::rotator {
namespace {

// Every --worker occurrence on the command line: absl keeps only the last
// one of a repeated flag, so they are collected before parsing.
std::vector<std::string> WorkerArgs(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    std::string value;
    if (absl::StartsWith(arg, "--worker=")) {
      value = std::string(arg.substr(9));
    } else if (absl::StartsWith(arg, "-worker=")) {
      value = std::string(arg.substr(8));
    } else if ((arg == "--worker" || arg == "-worker") && i + 1 < argc) {
      value = argv[++i];
    } else {
      continue;
    }
    for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      out.emplace_back(part);
    }
  }
  return out;
}

std::string DefaultHolder() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat("rotator-", host[0] != '\0' ? host : "unknown", "-", getpid());
}

absl::StatusOr<WorkerRegistry> RegistryFromFlags(const std::vector<std::string>& worker_args) {
  RotatorConfig config;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    COFFER_ASSIGN_OR_RETURN(config, LoadRotatorConfig(absl::GetFlag(FLAGS_config)));
  }
  std::vector<std::string> flags = worker_args;
  for (const auto& w : absl::GetFlag(FLAGS_worker)) {  // e.g. from a --flagfile
    if (std::find(flags.begin(), flags.end(), w) == flags.end()) flags.push_back(w);
  }
  for (const auto& flag : flags) {
    COFFER_ASSIGN_OR_RETURN(WorkerEndpoint endpoint, ParseWorkerFlag(flag));
    *config.add_workers() = std::move(endpoint);
  }
  return WorkerRegistry::FromConfig(config);
}

absl::Status Run(const std::vector<std::string>& worker_args) {
  COFFER_RETURN_IF_ERROR(runtime::InitProcess());
  COFFER_ASSIGN_OR_RETURN(WorkerRegistry registry, RegistryFromFlags(worker_args));
  if (registry.size() == 0) {
    log::Warn("rotator", "no rotation workers registered: every rotation will fail");
  }
  if (absl::GetFlag(FLAGS_max_attempts) < 1)
    return absl::InvalidArgumentError("--max_attempts must be >= 1");
  if (absl::GetFlag(FLAGS_concurrency) < 1)
    return absl::InvalidArgumentError("--concurrency must be >= 1");
  const absl::Duration lease = absl::GetFlag(FLAGS_lease_duration);
  if (lease < absl::Seconds(1) || lease > absl::Minutes(10)) {
    return absl::InvalidArgumentError("--lease_duration must be between 1s and 10m");
  }

  COFFER_ASSIGN_OR_RETURN(auto metrics, runtime::StartMetrics("rotator"));
  RotatorProbe probe(*metrics->registry());
  const rpc::TlsFiles tls = runtime::TlsFromFlags();
  COFFER_RETURN_IF_ERROR(rpc::CheckTlsFiles(tls));

  rpc::ChannelOptions store_options;
  store_options.target = absl::GetFlag(FLAGS_store_address);
  store_options.authority = absl::GetFlag(FLAGS_store_authority);
  store_options.expected_spiffe_id = absl::GetFlag(FLAGS_store_spiffe_id);
  store_options.tls = tls;
  store_options.interceptors.push_back(metrics->ClientInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(auto store_channel, rpc::MakeChannel(std::move(store_options)));
  auto control = MakeGrpcRotationControlClient(store_channel, absl::GetFlag(FLAGS_store_timeout));
  auto watch = MakeGrpcSecretsWatchClient(store_channel);
  auto workers = MakeGrpcWorkerClient(tls, metrics.get());

  rpc::HealthStatus health(runtime::MaxHealthWatches());
  health.Set("", false);
  rpc::ServerOptions server_options = runtime::ServerOptionsFromFlags();
  server_options.interceptors.push_back(metrics->ServerInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(auto server, rpc::Server::Start(std::move(server_options), {}, &health));

  RotatorOptions options;
  options.runner.holder =
      absl::GetFlag(FLAGS_holder).empty() ? DefaultHolder() : absl::GetFlag(FLAGS_holder);
  options.runner.lease_duration = lease;
  options.runner.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  options.runner.backoff_initial = absl::GetFlag(FLAGS_backoff_initial);
  options.runner.backoff_max = absl::GetFlag(FLAGS_backoff_max);
  options.runner.step_timeout = absl::GetFlag(FLAGS_step_timeout);
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.resync_interval = absl::GetFlag(FLAGS_resync_interval);
  options.on_ready = [&health] {
    health.Set("", true);
    log::Info("rotator", "rotation schedules loaded: serving");
  };
  Rotator rotator(control.get(), watch.get(), workers.get(), &registry, &probe, options);
  rotator.Start();

  COFFER_RETURN_IF_ERROR(runtime::WritePortsFile(*server, *metrics));
  std::string names;
  for (const auto& name : registry.names()) absl::StrAppend(&names, names.empty() ? "" : ",", name);
  log::Info("rotator", "started",
            {{"grpc_port", absl::StrCat(server->port())},
             {"metrics_port", absl::StrCat(metrics->port())},
             {"store_address", absl::GetFlag(FLAGS_store_address)},
             {"holder", options.runner.holder},
             {"workers", names}});

  int sig = rpc::WaitForShutdownSignal();
  log::Info("rotator", "shutting down", {{"signal", absl::StrCat(sig)}});
  health.Set("", false);
  rotator.Shutdown(runtime::ShutdownGrace());
  server->Shutdown(absl::Seconds(1));
  log::Info("rotator", "stopped");
  return absl::OkStatus();
}

}  // namespace
}  // namespace coffer::rotator

int main(int argc, char** argv) {
  // Worker definitions come from repeated flags read before absl parses.
  const std::vector<std::string> worker_args = coffer::rotator::WorkerArgs(argc, argv);
  return coffer::runtime::ServiceMain(argc, argv, {"rotator", 7703, 9703},
                                      "coffer-rotator: runs scheduled secret rotations",
                                      [&] { return coffer::rotator::Run(worker_args); });
}
