#include "libs/storage/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, storage, "",
          "rocksdb:<dir> (default: RocksDB under --data_dir) or etcd:<host:port>,... (replicas "
          "share one etcd cluster)");
ABSL_FLAG(std::string, etcd_ca, "", "CA certificate of the etcd members (PEM)");
ABSL_FLAG(std::string, etcd_cert, "", "client certificate presented to etcd (PEM)");
ABSL_FLAG(std::string, etcd_key, "", "private key of --etcd_cert (PEM)");
ABSL_FLAG(std::string, etcd_prefix, "coffer/", "prefix of every etcd key Coffer writes");

namespace coffer::storage {

absl::StatusOr<std::unique_ptr<Engine>> EngineFromFlags(const std::string& data_dir,
                                                        const std::string& service) {
  EngineOptions options;
  options.storage = absl::GetFlag(FLAGS_storage);
  options.default_dir = data_dir;
  options.etcd_tls.ca_file = absl::GetFlag(FLAGS_etcd_ca);
  options.etcd_tls.cert_file = absl::GetFlag(FLAGS_etcd_cert);
  options.etcd_tls.key_file = absl::GetFlag(FLAGS_etcd_key);
  options.etcd_prefix = absl::GetFlag(FLAGS_etcd_prefix);
  options.service = service;
  return Engine::Create(options);
}

}  // namespace coffer::storage
