// flags.h: the storage flags coffer-kms and coffer-store share.
//
//   --storage=rocksdb:<dir> | etcd:<host:port>,...   (default: RocksDB under
//                                                    --data_dir)
//   --etcd_ca, --etcd_cert, --etcd_key                etcd's client TLS
//   --etcd_prefix                                     "coffer/" by default
//
//   COFFER_ASSIGN_OR_RETURN(auto engine, storage::EngineFromFlags(data_dir, "kms"));
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "libs/storage/engine.h"

namespace coffer::storage {

absl::StatusOr<std::unique_ptr<Engine>> EngineFromFlags(const std::string& data_dir,
                                                        const std::string& service);

}  // namespace coffer::storage
