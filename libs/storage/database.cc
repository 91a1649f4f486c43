// database.cc: WriteBatch, the engine-independent parts of Database, and
// Database::Open (the RocksDB engine: rocksdb_database.cc).
#include "libs/storage/database.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/storage/rocksdb_database.h"

namespace coffer::storage {

// ---------------------------------------------------------------- WriteBatch

WriteBatch::WriteBatch() = default;
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

void WriteBatch::Put(absl::string_view column_family, absl::string_view key,
                     absl::string_view value) {
  ops_.push_back(Op{false, std::string(column_family), std::string(key), std::string(value)});
}

void WriteBatch::Delete(absl::string_view column_family, absl::string_view key) {
  ops_.push_back(Op{true, std::string(column_family), std::string(key), std::string()});
}

// --------------------------------------------------------------- Transaction

absl::StatusOr<std::vector<std::optional<std::string>>> Transaction::GetManyForUpdate(
    absl::Span<const KeyRef> keys) {
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const KeyRef& k : keys) {
    COFFER_ASSIGN_OR_RETURN(std::optional<std::string> value, GetForUpdate(k.column_family, k.key));
    out.push_back(std::move(value));
  }
  return out;
}

// ------------------------------------------------------------------ Database

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const DatabaseOptions& options) {
  COFFER_ASSIGN_OR_RETURN(std::unique_ptr<RocksDatabase> db, RocksDatabase::Open(options));
  return std::unique_ptr<Database>(std::move(db));
}

absl::StatusOr<uint64_t> Database::CountKeys(absl::string_view column_family) const {
  return absl::UnimplementedError(absl::StrCat("this engine does not count the keys of ",
                                               column_family, " without reading them"));
}

absl::Status Database::Put(absl::string_view column_family, absl::string_view key,
                           absl::string_view value) {
  WriteBatch batch;
  batch.Put(column_family, key, value);
  return Write(batch);
}

absl::Status Database::Delete(absl::string_view column_family, absl::string_view key) {
  WriteBatch batch;
  batch.Delete(column_family, key);
  return Write(batch);
}

absl::Status Database::CompareAndSet(absl::string_view column_family, absl::string_view key,
                                     const std::optional<std::string>& expected,
                                     const std::optional<std::string>& desired) {
  // A commit conflict means someone wrote the key after our read; the retry
  // re-reads it and then reports the mismatch (or succeeds if it matches).
  absl::Status status = RunTransaction([&](Transaction& txn) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(std::optional<std::string> current,
                            txn.GetForUpdate(column_family, key));
    if (current != expected) return absl::AbortedError("compare-and-set conflict");
    if (desired.has_value()) {
      txn.Put(column_family, key, *desired);
    } else {
      txn.Delete(column_family, key);
    }
    return absl::OkStatus();
  });
  // Retries exhausted by concurrent writers: the same outcome for the caller.
  if (absl::IsAborted(status)) return absl::AbortedError("compare-and-set conflict");
  return status;
}

absl::StatusOr<std::unique_ptr<Database::FamilyWatch>> Database::WatchFamily(
    absl::string_view column_family, std::function<void(absl::string_view)>) {
  return absl::UnimplementedError(absl::StrCat("watching family ", column_family,
                                               ": this engine is not shared by other processes"));
}

}  // namespace coffer::storage
