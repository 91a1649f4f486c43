// database.h: Coffer's one door to RocksDB.
//
// Column families, synced atomic write batches, optimistic transactions with
// compare-and-set, and bounded prefix/range scans. rocksdb::Status is
// converted to absl::Status here and nowhere else (status.h).
//
//   DatabaseOptions opts;
//   opts.path = dir + "/kms";
//   opts.column_families = {"keys", "material", "aliases"};
//   COFFER_ASSIGN_OR_RETURN(auto db, Database::Open(opts));
//
//   WriteBatch batch;
//   batch.Put("keys", id, record);
//   batch.Put("material", id + "/00000001", sealed);
//   COFFER_RETURN_IF_ERROR(db->Write(batch));      // atomic, WAL fsync'ed
//
//   // Read-modify-write with conflict detection (retried on conflict):
//   COFFER_RETURN_IF_ERROR(db->RunTransaction([&](Transaction& txn) -> absl::Status {
//     COFFER_ASSIGN_OR_RETURN(auto cur, txn.GetForUpdate("aliases", name));
//     if (cur) return absl::AlreadyExistsError("taken");
//     txn.Put("aliases", name, value);
//     return absl::OkStatus();
//   }));
//
//   ScanOptions scan;
//   scan.prefix = "prod/";
//   scan.limit = 100;
//   db->Scan("names", scan, [&](absl::string_view k, absl::string_view v) {
//     ...; return true;  // false stops
//   });
//
// All writes are synced (WriteOptions::sync) unless DatabaseOptions says
// otherwise (tests may turn it off for speed; services never do).
//
// Database and Transaction are interfaces with two engines behind them:
// RocksDB (rocksdb_database.h, what Database::Open makes), embedded, and
// etcd (etcd_database.h), shared by replicas. Every engine keeps the
// contract written here; engine.h picks one from the --storage flag.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace coffer::storage {

struct DatabaseOptions {
  std::string path;
  // Column families besides "default"; created when missing.
  std::vector<std::string> column_families;
  bool create_if_missing = true;
  // fsync the WAL on every write. Keep true outside tests.
  bool sync_writes = true;
  // Block cache size in bytes (0: RocksDB default).
  size_t block_cache_bytes = 0;
  // RocksDB environment (nullptr: the default). Tests inject file-system
  // faults through it; not owned, must outlive the Database.
  rocksdb::Env* env = nullptr;
};

// Mutations applied atomically by Database::Write.
class WriteBatch {
 public:
  WriteBatch();
  ~WriteBatch();
  WriteBatch(WriteBatch&&) noexcept;
  WriteBatch& operator=(WriteBatch&&) noexcept;

  void Put(absl::string_view column_family, absl::string_view key, absl::string_view value);
  void Delete(absl::string_view column_family, absl::string_view key);

  // Number of operations recorded.
  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }

  // What an engine writes, in order.
  struct Op {
    bool is_delete;
    std::string column_family;
    std::string key;
    std::string value;
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

// One key of a family, for reads of several keys at once.
struct KeyRef {
  absl::string_view column_family;
  absl::string_view key;
};

// A read-modify-write unit. Reads through GetForUpdate are validated at
// commit: if another writer changed one of those keys meanwhile, the commit
// fails and RunTransaction calls the function again.
class Transaction {
 public:
  virtual ~Transaction() = default;
  // The committed value, or nullopt; registers the key for conflict checks.
  virtual absl::StatusOr<std::optional<std::string>> GetForUpdate(absl::string_view column_family,
                                                                  absl::string_view key) = 0;
  // GetForUpdate of several keys, answers in order: on etcd one round trip
  // for the keys not read yet (by default, one GetForUpdate after another).
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> GetManyForUpdate(
      absl::Span<const KeyRef> keys);
  // Errors of Put and Delete (an unknown family) are kept and returned by
  // the commit; nothing is written then.
  virtual void Put(absl::string_view column_family, absl::string_view key,
                   absl::string_view value) = 0;
  virtual void Delete(absl::string_view column_family, absl::string_view key) = 0;
};

struct ScanOptions {
  // Only keys starting with `prefix` (may be empty: the whole family).
  std::string prefix;
  // Start at the first key >= start_after+"\0" (exclusive), or at the start
  // of the prefix range when empty. In reverse scans: keys < start_after.
  std::string start_after;
  // Stop before this key (exclusive upper bound) when non-empty; combined
  // with the prefix's own bound (RocksDB iterate_upper_bound is set).
  std::string end_before;
  // At most this many entries (0: no limit).
  size_t limit = 0;
  // Descending key order.
  bool reverse = false;
};

class Database {
 public:
  // Opens (creating when asked) the RocksDB engine at options.path.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const DatabaseOptions& options);
  // Flushes what the engine buffers and closes.
  virtual ~Database() = default;

  // nullopt when absent. NOT_FOUND is never returned for a missing key.
  virtual absl::StatusOr<std::optional<std::string>> Get(absl::string_view column_family,
                                                         absl::string_view key) const = 0;
  // Several keys (of any families) read at once, answers in order, all from
  // one state of the database: RocksDB reads them from one snapshot, etcd in
  // one read-only Txn at one revision (one round trip instead of one each).
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::Span<const KeyRef> keys) const = 0;
  // One atomic, synced write of the whole batch.
  virtual absl::Status Write(const WriteBatch& batch) = 0;
  // Convenience single-key writes (synced): a batch of one, unless the
  // engine has a shorter way.
  virtual absl::Status Put(absl::string_view column_family, absl::string_view key,
                           absl::string_view value);
  virtual absl::Status Delete(absl::string_view column_family, absl::string_view key);

  // Sets key to `desired` (nullopt: delete) only if its current value is
  // `expected` (nullopt: absent). ABORTED "compare-and-set conflict" when the
  // current value differs; atomic with respect to every other writer.
  virtual absl::Status CompareAndSet(absl::string_view column_family, absl::string_view key,
                                     const std::optional<std::string>& expected,
                                     const std::optional<std::string>& desired);

  // Runs `fn` in an optimistic transaction and commits (synced). On a write
  // conflict retries up to `max_attempts` times in all, then ABORTED. If `fn`
  // returns an error, nothing is written and that error is returned.
  virtual absl::Status RunTransaction(const std::function<absl::Status(Transaction&)>& fn,
                                      int max_attempts = 10) = 0;

  // Calls `fn(key, value)` in key order for keys in range; stops when `fn`
  // returns false or `limit` entries were visited.
  virtual absl::Status Scan(
      absl::string_view column_family, const ScanOptions& options,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn) const = 0;

  // Approximate number of keys in a family (0 for an unknown family).
  virtual uint64_t EstimateKeys(absl::string_view column_family) const = 0;
  // The exact number of keys in a family where the engine counts without
  // reading them (etcd: a count-only Range); UNIMPLEMENTED elsewhere.
  virtual absl::StatusOr<uint64_t> CountKeys(absl::string_view column_family) const;

  // Makes what the engine buffers durable beyond its log (RocksDB:
  // memtables to SST files, before a clean shutdown).
  virtual absl::Status Flush() = 0;

  // Whether other processes write this database too (etcd, with replicas):
  // then whatever a process keeps in memory follows WatchFamily.
  virtual bool shared() const { return false; }

  // Ends the watch when dropped; no call of its function runs after that.
  class FamilyWatch {
   public:
    virtual ~FamilyWatch() = default;
  };
  // Calls `on_change(key)`, on a thread of the engine and one call at a
  // time, for every write or delete of a key of `column_family` by any
  // process from now on (this one included). `on_change("")` says changes
  // may have been missed (the engine lost the history the watch needed):
  // re-read the whole family. That call comes from another thread, after
  // the watch started again, so it may overlap calls for single keys.
  // UNIMPLEMENTED on engines that are not shared.
  virtual absl::StatusOr<std::unique_ptr<FamilyWatch>> WatchFamily(
      absl::string_view column_family, std::function<void(absl::string_view key)> on_change);
};

}  // namespace coffer::storage
