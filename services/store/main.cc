// coffer-store: secrets and parameters in RocksDB, every secret version and
// SecureString value encrypted under its own data key from coffer-kms, with
// a change log behind WatchSecrets / WatchParameters.
//
//   coffer-store --data_dir=var/data/store --kms_address=localhost:7701
//                --tls_ca=var/certs/ca.crt --tls_cert=var/certs/store.crt
//                --tls_key=var/certs/store.key
#include <algorithm>
#include <atomic>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "libs/common/log.h"
#include "libs/common/periodic.h"
#include "libs/common/status_macros.h"
#include "libs/metrics/secure_memory_metrics.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "libs/runtime/service_flags.h"
#include "libs/storage/database.h"
#include "libs/storage/flags.h"
#include "services/store/changes/change_log.h"
#include "services/store/changes/watch_stream.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/envelope.h"
#include "services/store/envelope/key_service.h"
#include "services/store/envelope/kms_monitor.h"
#include "services/store/envelope/signing_keys.h"
#include "services/store/params/param_store.h"
#include "services/store/params/params_service.h"
#include "services/store/rotation_control_service.h"
#include "services/store/schema.h"
#include "services/store/secrets/secret_records.h"
#include "services/store/secrets/secret_rotation.h"
#include "services/store/secrets/secret_store.h"
#include "services/store/secrets/secrets_service.h"
#include "services/store/secrets/staging_labels.h"
#include "services/store/store_probe.h"

ABSL_FLAG(std::string, data_dir, "var/data/store",
          "directory of the store's RocksDB (unless --storage says otherwise)");
ABSL_FLAG(std::string, kms_address, "localhost:7701", "host:port of coffer-kms (mTLS)");
ABSL_FLAG(std::string, gateway_spiffe_id, "spiffe://coffer.local/gateway",
          "the identity of coffer-gateway: its calls run as the access key's identity whose SigV4 "
          "signature they carry (verified here with signing keys from the KMS), never as the "
          "gateway; empty: no gateway");
ABSL_FLAG(absl::Duration, signing_key_ttl, absl::Minutes(1),
          "how long a signing key from the KMS is reused: the longest a disabled or deleted "
          "access key may still be honoured");
ABSL_FLAG(std::string, kms_spiffe_id, "spiffe://coffer.local/kms",
          "SPIFFE ID the KMS must present (checked in the TLS handshake, before any data key is "
          "sent); empty: check the kms_address host name instead");
ABSL_FLAG(std::string, kms_authority, "",
          "name to verify in the KMS certificate instead of the kms_address host");
ABSL_FLAG(absl::Duration, kms_timeout, absl::Seconds(2), "deadline of each call to the KMS");
ABSL_FLAG(absl::Duration, kms_check_interval, absl::Seconds(1),
          "how often the KMS's health is checked (drives this service's health)");
ABSL_FLAG(std::string, default_kms_key_id, "alias/coffer/secretsmanager",
          "KMS key of secrets created without kms_key_id");
ABSL_FLAG(absl::Duration, dek_cache_ttl, absl::Minutes(5),
          "how long unwrapped data keys stay cached in guarded memory (0 disables the cache)");
ABSL_FLAG(int, dek_cache_max_entries, 10000, "most data keys cached (0 disables the cache)");
ABSL_FLAG(absl::Duration, sweep_interval, absl::Minutes(1),
          "how often secrets past their recovery window are purged");
ABSL_FLAG(std::string, default_ssm_kms_key_id, "alias/coffer/ssm",
          "KMS key of SecureString parameters created without key_id");
ABSL_FLAG(absl::Duration, policy_interval, absl::Seconds(10),
          "how often parameter policies (expiration, notifications) are enforced");
ABSL_FLAG(std::vector<std::string>, rotation_control_callers, {"spiffe://coffer.local/rotator"},
          "SPIFFE ids allowed to call coffer.rotation.v1.RotationControl (comma-separated; "
          "empty: any authenticated caller)");
ABSL_FLAG(std::vector<std::string>, worker_principals, {"spiffe://coffer.local/worker/*"},
          "SPIFFE ID globs of rotation workers: they write only the secret they rotate, with the "
          "rotation's token, and read other secrets only where a policy allows");
ABSL_FLAG(int, max_versions_per_secret, 200,
          "versions one secret may hold at once (LimitExceededException beyond; versions "
          "without a staging label are removed 24 hours after they were made)");
ABSL_FLAG(int, max_watch_streams, 10000,
          "WatchSecrets/WatchParameters streams open at once (RESOURCE_EXHAUSTED beyond)");
ABSL_FLAG(int, max_watch_streams_per_identity, 100,
          "watch streams one caller identity may hold open at once");
ABSL_FLAG(int64_t, change_log_capacity, 100000,
          "change events kept for WatchSecrets/WatchParameters resumption");

namespace coffer::store {
namespace {

absl::Status Run() {
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  COFFER_RETURN_IF_ERROR(runtime::InitProcess(data_dir));
  COFFER_ASSIGN_OR_RETURN(auto engine, storage::EngineFromFlags(data_dir, "store"));
  COFFER_ASSIGN_OR_RETURN(auto db, engine->Open("db", schema::ColumnFamilies()));
  COFFER_ASSIGN_OR_RETURN(
      auto changes, ChangeLog::Open(db.get(), static_cast<uint64_t>(std::max<int64_t>(
                                                  1, absl::GetFlag(FLAGS_change_log_capacity)))));

  COFFER_ASSIGN_OR_RETURN(auto metrics, runtime::StartMetrics("store"));
  StoreProbe probe(*metrics->registry());
  metrics::SecureMemoryMetrics secure_memory(*metrics->registry());

  rpc::ChannelOptions kms_options;
  kms_options.target = absl::GetFlag(FLAGS_kms_address);
  kms_options.authority = absl::GetFlag(FLAGS_kms_authority);
  kms_options.expected_spiffe_id = absl::GetFlag(FLAGS_kms_spiffe_id);
  kms_options.tls = runtime::TlsFromFlags();
  kms_options.interceptors.push_back(metrics->ClientInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(auto kms_channel, rpc::MakeChannel(std::move(kms_options)));
  auto kms = MakeGrpcKeyService(kms_channel, absl::GetFlag(FLAGS_kms_timeout));

  DataKeyCacheOptions cache_options;
  cache_options.ttl = absl::GetFlag(FLAGS_dek_cache_ttl);
  cache_options.max_entries =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_dek_cache_max_entries)));
  DataKeyCache cache(cache_options);
  Envelope envelope(kms.get(), &cache);

  SecretStoreOptions store_options;
  const runtime::ArnParts arn = runtime::ArnFromFlags();
  store_options.arns = {arn.partition, arn.region, arn.account};
  store_options.default_kms_key_id = absl::GetFlag(FLAGS_default_kms_key_id);
  store_options.changes = changes.get();
  if (engine->shared()) {  // etcd's 128 operations per Txn
    store_options.max_group_commit = 16;
    store_options.bounded_writes = true;
  }
  store_options.worker_principals = absl::GetFlag(FLAGS_worker_principals);
  store_options.max_versions_per_secret =
      std::max(kMaxVersionsKept + 1, absl::GetFlag(FLAGS_max_versions_per_secret));
  SecretRecords records(db.get(), &envelope, store_options);
  SecretStore store(&records);
  SecretRotation rotation(&records);
  ParamStoreOptions param_options;
  param_options.arns = store_options.arns;
  param_options.default_kms_key_id = absl::GetFlag(FLAGS_default_ssm_kms_key_id);
  param_options.changes = changes.get();
  ParamStore params(db.get(), &envelope, param_options);
  COFFER_RETURN_IF_ERROR(records.Load());
  log::Info(
      "store", "database open",
      {{"storage", engine->description()}, {"secrets", absl::StrCat(records.secret_count())}});

  COFFER_ASSIGN_OR_RETURN(auto guard, runtime::StartGuard("store", *metrics));
  runtime::CallGate* gate = guard->gate.get();
  auto kms_signing_keys = MakeKmsSigningKeySource(kms_channel, absl::GetFlag(FLAGS_kms_timeout));
  auto signing_keys = runtime::CachingSigningKeySource(
      kms_signing_keys.get(), absl::GetFlag(FLAGS_signing_key_ttl), absl::Seconds(10), 10000);
  runtime::SignedCallers signed_callers(absl::GetFlag(FLAGS_gateway_spiffe_id), signing_keys.get());
  gate->set_signed_callers(&signed_callers);
  WatchRegistry watches(
      {static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_watch_streams))),
       static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_watch_streams_per_identity)))});
  SecretsService secrets_service(&store, &rotation, changes.get(), &watches, gate);
  ParamsService params_service(&params, changes.get(), &watches, gate);
  RotationControlService rotation_control(&rotation, absl::GetFlag(FLAGS_rotation_control_callers),
                                          gate);
  rpc::HealthStatus health(runtime::MaxHealthWatches());
  rpc::ServerOptions server_options = runtime::ServerOptionsFromFlags();
  server_options.interceptors.push_back(metrics->ServerInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(
      auto server,
      rpc::Server::Start(std::move(server_options),
                         {&secrets_service, &params_service, &rotation_control}, &health));

  // SERVING exactly while the KMS answers: without it no new value can be
  // written (reads of cached data keys keep working regardless).
  // ... and while the audit log can be written (a failing log fails every
  // call).
  std::atomic<bool> kms_up{false};
  auto set_health = [&] {
    const bool up = kms_up.load() && gate->healthy();
    health.Set("", up);
    health.Set(secrets::v1::SecretsManager::service_full_name(), up);
    health.Set(params::v1::ParameterStore::service_full_name(), up);
  };
  KmsMonitor monitor(kms_channel, absl::GetFlag(FLAGS_kms_check_interval), [&](bool up) {
    kms_up = up;
    set_health();
    probe.SetKmsReachable(up);
    if (up) {
      log::Info("store", "KMS reachable", {{"kms_address", absl::GetFlag(FLAGS_kms_address)}});
    } else {
      log::Warn("store", "KMS unreachable: writes fail until it is back",
                {{"kms_address", absl::GetFlag(FLAGS_kms_address)}});
    }
  });
  monitor.Start();
  COFFER_RETURN_IF_ERROR(runtime::WritePortsFile(*server, *metrics));
  log::Info("store", "serving",
            {{"grpc_port", absl::StrCat(server->port())},
             {"health_port", absl::StrCat(server->health_port())},
             {"metrics_port", absl::StrCat(metrics->port())}});

  // Housekeeping: metrics every second (and the change-log trim, bounded:
  // it deletes only what exceeds --change_log_capacity); the deletion
  // sweeper and the parameter policy scanner at their intervals.
  PeriodicTask metrics_task("store-metrics", absl::Seconds(1), [&] {
    set_health();
    probe.SyncCache(cache);
    secure_memory.Update();
    probe.SetSecrets(records.secret_count());
    auto trimmed = changes->Trim();
    if (!trimmed.ok()) {
      log::Error("store", "change log trim failed", {{"error", trimmed.status().ToString()}});
    }
  });
  PeriodicTask sweeper("store-sweeper", absl::GetFlag(FLAGS_sweep_interval), [&] {
    auto purged = records.PurgeExpired();
    if (!purged.ok()) {
      log::Error("store", "sweeper failed", {{"error", purged.status().ToString()}});
    } else if (*purged > 0) {
      probe.Purged(*purged);
      log::Info("store", "purged secrets past their recovery window",
                {{"count", absl::StrCat(*purged)}});
    }
  });
  PeriodicTask policy_scanner("store-policies", absl::GetFlag(FLAGS_policy_interval), [&] {
    auto run = params.RunPolicies();
    if (!run.ok()) {
      log::Error("store", "parameter policy scan failed", {{"error", run.status().ToString()}});
    } else {
      probe.PolicyRun(run->expired, run->notifications);
    }
  });
  // With replicas, the others' creations and purges count too.
  PeriodicTask recount("store-recount", absl::Seconds(10), [&] {
    if (absl::Status s = records.Recount(); !s.ok()) {
      log::Warn("store", "could not count the secrets", {{"error", s.ToString()}});
    }
  });
  metrics_task.RunNow();
  for (PeriodicTask* task : {&metrics_task, &sweeper, &policy_scanner, &recount}) task->Start();

  int sig = runtime::WaitForShutdown(guard.get());
  log::Info("store", "shutting down", {{"signal", absl::StrCat(sig)}});
  watches.StopAll();  // endless streams would otherwise hold Shutdown for its whole grace
  server->Shutdown(runtime::ShutdownGrace());
  monitor.Stop();
  for (PeriodicTask* task : {&metrics_task, &sweeper, &policy_scanner, &recount}) task->Stop();
  cache.Clear();
  COFFER_RETURN_IF_ERROR(db->Flush());
  log::Info("store", "stopped");
  return absl::OkStatus();
}

}  // namespace
}  // namespace coffer::store

int main(int argc, char** argv) {
  return coffer::runtime::ServiceMain(argc, argv, {"store", 7702, 9702},
                                      "coffer-store: secrets and parameters service",
                                      coffer::store::Run);
}
