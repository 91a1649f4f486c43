// engine.h: the storage engine a service runs on, picked by its --storage
// flag, and the databases it opens there.
//
//   rocksdb:<dir>                 embedded RocksDB under <dir> (the default:
//                                 RocksDB under --data_dir)
//   etcd:<host:port>,<host:port>  an etcd cluster over mTLS, shared by every
//                                 replica of the service
//
//   EngineOptions options;
//   options.storage = "etcd:10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379";
//   options.service = "kms";
//   options.etcd_tls = {ca, cert, key};
//   COFFER_ASSIGN_OR_RETURN(auto engine, Engine::Create(options));
//   COFFER_ASSIGN_OR_RETURN(auto db, engine->Open("keystore", {"keys", "material"}));
//   // RocksDB: <dir>/keystore. etcd: keys under "coffer/kms/keystore/".
//
// All databases of one engine share one etcd client (one connection per
// member).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/rpc/tls.h"
#include "libs/storage/database.h"

namespace coffer::etcd {
class EtcdClient;
}  // namespace coffer::etcd

namespace coffer::storage {

struct EngineOptions {
  // The --storage flag: "rocksdb:<dir>", "etcd:<endpoints>", or "" for
  // RocksDB under default_dir.
  std::string storage;
  std::string default_dir;
  // etcd only: client TLS (etcd runs with --client-cert-auth), the prefix
  // of every key, and the service's name under it ("<prefix><service>/").
  rpc::TlsFiles etcd_tls;
  std::string etcd_prefix = "coffer/";
  std::string service;
  // RocksDB only: fsync every write (tests may turn it off).
  bool sync_writes = true;
};

class Engine {
 public:
  // INVALID_ARGUMENT naming --storage (or the etcd TLS file) when malformed.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Engine();

  // The database `name` with `column_families`.
  absl::StatusOr<std::unique_ptr<Database>> Open(absl::string_view name,
                                                 const std::vector<std::string>& column_families);

  // Whether replicas share it (etcd).
  bool shared() const { return etcd_ != nullptr; }
  // "rocksdb:<dir>" or "etcd:<endpoints>", for logs.
  const std::string& description() const { return description_; }

 private:
  Engine() = default;
  EngineOptions options_;
  std::string description_;
  std::string rocksdb_dir_;
  std::shared_ptr<etcd::EtcdClient> etcd_;
};

}  // namespace coffer::storage
