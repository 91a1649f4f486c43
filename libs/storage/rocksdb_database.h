// rocksdb_database.h: the RocksDB engine of storage::Database — an
// OptimisticTransactionDB with one column family per family name, synced
// writes, optimistic transactions validated at commit, and bounded
// iterators for scans. Database::Open makes one; nothing outside
// libs/storage needs this header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "libs/storage/database.h"

namespace rocksdb {
class OptimisticTransactionDB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace coffer::storage {

class RocksDatabase final : public Database {
 public:
  static absl::StatusOr<std::unique_ptr<RocksDatabase>> Open(const DatabaseOptions& options);
  ~RocksDatabase() override;

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view column_family,
                                                 absl::string_view key) const override;
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::Span<const KeyRef> keys) const override;
  absl::Status Write(const WriteBatch& batch) override;
  absl::Status Put(absl::string_view column_family, absl::string_view key,
                   absl::string_view value) override;
  absl::Status Delete(absl::string_view column_family, absl::string_view key) override;
  absl::Status RunTransaction(const std::function<absl::Status(Transaction&)>& fn,
                              int max_attempts = 10) override;
  absl::Status Scan(
      absl::string_view column_family, const ScanOptions& options,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn) const override;
  uint64_t EstimateKeys(absl::string_view column_family) const override;
  absl::Status Flush() override;

  const std::string& path() const { return path_; }

  // The handle of a family; INVALID_ARGUMENT naming an unknown one.
  absl::StatusOr<rocksdb::ColumnFamilyHandle*> Family(absl::string_view name) const;

 private:
  RocksDatabase() = default;

  std::string path_;
  bool sync_writes_ = true;
  std::unique_ptr<rocksdb::OptimisticTransactionDB> db_;
  std::vector<std::string> family_names_;
  std::vector<rocksdb::ColumnFamilyHandle*> families_;
};

}  // namespace coffer::storage
