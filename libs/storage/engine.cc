#include "libs/storage/engine.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/status_macros.h"
#include "libs/etcd/etcd_client.h"
#include "libs/storage/etcd_database.h"

namespace coffer::storage {

namespace {

absl::Status BadStorage(absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--storage='", value, "': ", why, " (rocksdb:<dir> or etcd:<host:port>,...)"));
}

}  // namespace

Engine::~Engine() = default;

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->options_ = options;
  const std::string& value = options.storage;
  if (value.empty() || absl::StartsWith(value, "rocksdb:")) {
    engine->rocksdb_dir_ = value.empty() ? options.default_dir : value.substr(8);
    if (engine->rocksdb_dir_.empty()) return BadStorage(value, "no directory");
    engine->description_ = absl::StrCat("rocksdb:", engine->rocksdb_dir_);
    return engine;
  }
  if (!absl::StartsWith(value, "etcd:")) return BadStorage(value, "unknown engine");
  if (options.service.empty()) return absl::InvalidArgumentError("storage engine without service");
  etcd::EtcdOptions etcd_options;
  for (absl::string_view endpoint : absl::StrSplit(value.substr(5), ',')) {
    if (endpoint.empty() || !absl::StrContains(endpoint, ':')) {
      return BadStorage(value, absl::StrCat("endpoint '", endpoint, "' is not host:port"));
    }
    etcd_options.endpoints.emplace_back(endpoint);
  }
  if (options.etcd_tls.ca_file.empty() || options.etcd_tls.cert_file.empty() ||
      options.etcd_tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--storage=etcd:... needs --etcd_ca, --etcd_cert and --etcd_key (etcd's client TLS)");
  }
  etcd_options.tls = options.etcd_tls;
  COFFER_ASSIGN_OR_RETURN(engine->etcd_, etcd::EtcdClient::Create(std::move(etcd_options)));
  engine->description_ = value;
  return engine;
}

absl::StatusOr<std::unique_ptr<Database>> Engine::Open(
    absl::string_view name, const std::vector<std::string>& column_families) {
  if (etcd_ == nullptr) {
    DatabaseOptions db_options;
    db_options.path = absl::StrCat(rocksdb_dir_, "/", name);
    db_options.column_families = column_families;
    db_options.sync_writes = options_.sync_writes;
    return Database::Open(db_options);
  }
  EtcdDatabaseOptions db_options;
  db_options.key_prefix = absl::StrCat(options_.etcd_prefix, options_.service, "/", name, "/");
  db_options.column_families = column_families;
  COFFER_ASSIGN_OR_RETURN(auto db, EtcdDatabase::Open(db_options, etcd_));
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace coffer::storage
