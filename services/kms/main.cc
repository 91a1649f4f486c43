// coffer-kms: master keys in guarded memory, envelope encryption over mTLS.
//
//   coffer-kms --data_dir=var/data/kms --dev_mode --tls_ca=var/certs/ca.crt
//              --tls_cert=var/certs/kms.crt --tls_key=var/certs/kms.key
//
// Flags may also come from a file: coffer-kms --flagfile=kms.flags
#include <csignal>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/common/log.h"
#include "libs/common/periodic.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/metrics/metrics.h"
#include "libs/metrics/secure_memory_metrics.h"
#include "libs/rpc/server.h"
#include "libs/rpc/unix_socket_server.h"
#include "libs/runtime/service_flags.h"
#include "libs/storage/flags.h"
#include "services/kms/access_keys.h"
#include "services/kms/access_keys_service.h"
#include "services/kms/key_manager.h"
#include "services/kms/kms_probe.h"
#include "services/kms/kms_service.h"
#include "services/kms/kubernetes_plugin.h"
#include "services/kms/root_key.h"

ABSL_FLAG(std::string, data_dir, "var/data/kms",
          "directory of the keystore's RocksDB (unless --storage says otherwise)");
ABSL_FLAG(std::string, root_key_file, "",
          "file with the 32-byte root key (mode 0600); required unless --dev_mode");
ABSL_FLAG(bool, dev_mode, false,
          "development: without --root_key_file, create <data_dir>/root.key on first start");
ABSL_FLAG(std::string, store_spiffe_id, "spiffe://coffer.local/store",
          "the identity of coffer-store: the only caller that may use a secret's or parameter's "
          "encryption context, cause a built-in alias/coffer/<service> key's creation or get an "
          "access key's signing key");
ABSL_FLAG(std::string, gateway_spiffe_id, "spiffe://coffer.local/gateway",
          "the identity of coffer-gateway: its calls run as the access key's identity whose SigV4 "
          "signature they carry, never as the gateway; empty: no gateway");
ABSL_FLAG(absl::Duration, maintenance_interval, absl::Minutes(1),
          "how often due key deletions and automatic rotations run");
ABSL_FLAG(int, max_key_versions, 1000,
          "material versions a key may have, the first included (bounds its rotation history "
          "too); rotations beyond it, on demand or automatic, are refused with "
          "LimitExceededException");
ABSL_FLAG(std::string, kubernetes_kms_socket, "",
          "serve the Kubernetes KMS v2 plugin API (v2.KeyManagementService) on this Unix socket "
          "(absolute path; created with mode 0600 in a directory only its owner may write); "
          "empty: off");
ABSL_FLAG(std::string, kubernetes_kms_key, "",
          "the key the Kubernetes KMS v2 plugin encrypts under (key id, key ARN, alias/<name> or "
          "alias ARN); required with --kubernetes_kms_socket");
ABSL_FLAG(std::string, kubernetes_kms_identity, "spiffe://coffer.local/kubernetes-apiserver",
          "the principal every call on --kubernetes_kms_socket is authorized and audited as");

namespace coffer::kms {
namespace {

absl::Status Run() {
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  COFFER_RETURN_IF_ERROR(runtime::InitProcess(data_dir));
  std::unique_ptr<RootKeySource> root_source;
  if (!absl::GetFlag(FLAGS_root_key_file).empty()) {
    root_source = FileRootKeySource(absl::GetFlag(FLAGS_root_key_file));
  } else if (absl::GetFlag(FLAGS_dev_mode)) {
    root_source = DevelopmentRootKeySource(data_dir);
  } else {
    return absl::InvalidArgumentError(
        "--root_key_file is required (or --dev_mode for development)");
  }
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer root_key, root_source->Load());

  KeyManagerOptions options;
  const runtime::ArnParts arn = runtime::ArnFromFlags();
  options.partition = arn.partition;
  options.region = arn.region;
  options.account = arn.account;
  options.max_key_versions = absl::GetFlag(FLAGS_max_key_versions);
  if (options.max_key_versions < 1) {
    return absl::InvalidArgumentError("--max_key_versions must be at least 1");
  }
  COFFER_ASSIGN_OR_RETURN(auto engine, storage::EngineFromFlags(data_dir, "kms"));
  COFFER_ASSIGN_OR_RETURN(auto keystore_db, engine->Open("keystore", KeyManager::ColumnFamilies()));
  COFFER_ASSIGN_OR_RETURN(auto store,
                          KeyManager::Open(options, std::move(root_key), std::move(keystore_db)));
  log::Info("kms", "keystore unsealed",
            {{"root_key", root_source->Describe()}, {"storage", engine->description()}});

  AccessKeyStoreOptions access_key_options;
  // Identities that act by certificate or socket only: the store, the
  // gateway itself, and the API server of the Kubernetes KMS plugin (whose
  // policy may open what the plugin sealed).
  access_key_options.reserved_identities = {absl::GetFlag(FLAGS_store_spiffe_id),
                                            absl::GetFlag(FLAGS_gateway_spiffe_id),
                                            absl::GetFlag(FLAGS_kubernetes_kms_identity)};
  COFFER_ASSIGN_OR_RETURN(auto access_keys_db,
                          engine->Open("access_keys", AccessKeyStore::ColumnFamilies()));
  COFFER_ASSIGN_OR_RETURN(auto access_keys, AccessKeyStore::Open(access_key_options, store.get(),
                                                                 std::move(access_keys_db)));

  COFFER_ASSIGN_OR_RETURN(auto metrics, runtime::StartMetrics("kms"));
  KmsProbe probe(*metrics->registry());
  probe.SetKeyCounts(store->CountKeysByState());
  metrics::SecureMemoryMetrics secure_memory(*metrics->registry());
  secure_memory.Update();
  COFFER_ASSIGN_OR_RETURN(auto guard, runtime::StartGuard("kms", *metrics));
  KmsAccess key_access(store.get(), {absl::GetFlag(FLAGS_store_spiffe_id)});
  KmsService service(store.get(), &probe, guard->gate.get(), &key_access);
  AccessKeysService access_key_service(access_keys.get(), guard->gate.get(),
                                       absl::GetFlag(FLAGS_store_spiffe_id));
  auto signing_keys = LocalSigningKeys(access_keys.get());
  runtime::SignedCallers signed_callers(absl::GetFlag(FLAGS_gateway_spiffe_id), signing_keys.get());
  guard->gate->set_signed_callers(&signed_callers);

  // The Kubernetes KMS v2 plugin: its own listener and gate (the socket's
  // mode authenticates the caller as --kubernetes_kms_identity).
  runtime::CallGate plugin_gate(*guard->gate, absl::GetFlag(FLAGS_kubernetes_kms_identity));
  std::unique_ptr<KubernetesKmsPlugin> plugin;
  std::unique_ptr<grpc::Server> plugin_server;
  if (const std::string socket = absl::GetFlag(FLAGS_kubernetes_kms_socket); !socket.empty()) {
    const std::string key = absl::GetFlag(FLAGS_kubernetes_kms_key);
    if (key.empty()) {
      return absl::InvalidArgumentError(
          "--kubernetes_kms_key is required with --kubernetes_kms_socket");
    }
    if (absl::GetFlag(FLAGS_kubernetes_kms_identity).empty()) {
      return absl::InvalidArgumentError("--kubernetes_kms_identity must not be empty");
    }
    plugin =
        std::make_unique<KubernetesKmsPlugin>(store.get(), &key_access, &plugin_gate, &probe, key);
    rpc::UnixSocketServerOptions socket_options;
    socket_options.path = socket;
    socket_options.max_receive_message_bytes = KubernetesKmsPlugin::kMaxRequestBytes;
    socket_options.interceptors.push_back(metrics->ServerInterceptorFactory());
    COFFER_ASSIGN_OR_RETURN(plugin_server,
                            rpc::StartUnixSocketServer(std::move(socket_options), {plugin.get()}));
    log::Info("kms", "serving the Kubernetes KMS v2 plugin",
              {{"socket", socket},
               {"key", key},
               {"identity", absl::GetFlag(FLAGS_kubernetes_kms_identity)}});
  }

  rpc::HealthStatus health(runtime::MaxHealthWatches());
  rpc::ServerOptions server_options = runtime::ServerOptionsFromFlags();
  server_options.interceptors.push_back(metrics->ServerInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(
      auto server,
      rpc::Server::Start(std::move(server_options), {&service, &access_key_service}, &health));
  health.Set("", true);
  health.Set(v1::KeyManagement::service_full_name(), true);

  COFFER_RETURN_IF_ERROR(runtime::WritePortsFile(*server, *metrics));
  log::Info("kms", "serving",
            {{"grpc_port", absl::StrCat(server->port())},
             {"health_port", absl::StrCat(server->health_port())},
             {"metrics_port", absl::StrCat(metrics->port())}});

  // The sweeper: due deletions and automatic rotations.
  PeriodicTask maintenance("kms-maintenance", absl::GetFlag(FLAGS_maintenance_interval), [&] {
    auto result = store->RunMaintenance();
    probe.MaintenanceRun(result.ok());
    if (!result.ok()) {
      log::Error("kms", "maintenance failed", {{"error", result.status().ToString()}});
    } else if (result->keys_deleted + result->keys_rotated > 0) {
      // Refused rotations (--max_key_versions) the KeyManager logs per key.
      log::Info("kms", "maintenance",
                {{"keys_deleted", absl::StrCat(result->keys_deleted)},
                 {"keys_rotated", absl::StrCat(result->keys_rotated)},
                 {"rotations_refused", absl::StrCat(result->rotations_refused)}});
    }
    probe.SetKeyCounts(store->CountKeysByState());
  });
  maintenance.Start();

  // Every second: health follows the audit log too (a failing log fails
  // every call), and the guarded-memory metrics.
  PeriodicTask status("kms-status", absl::Seconds(1), [&] {
    const bool up = guard->gate->healthy();
    health.Set("", up);
    health.Set(v1::KeyManagement::service_full_name(), up);
    secure_memory.Update();
  });
  status.Start();

  int sig = runtime::WaitForShutdown(guard.get());
  status.Stop();
  log::Info("kms", "shutting down", {{"signal", absl::StrCat(sig)}});
  if (plugin_server != nullptr) {
    plugin_server->Shutdown(std::chrono::system_clock::now() +
                            absl::ToChronoNanoseconds(runtime::ShutdownGrace()));
    plugin_server->Wait();
  }
  server->Shutdown(runtime::ShutdownGrace());
  maintenance.Stop();
  COFFER_RETURN_IF_ERROR(store->database()->Flush());
  log::Info("kms", "stopped");
  return absl::OkStatus();
}

}  // namespace
}  // namespace coffer::kms

int main(int argc, char** argv) {
  return coffer::runtime::ServiceMain(argc, argv, {"kms", 7701, 9701},
                                      "coffer-kms: key management service", coffer::kms::Run);
}
