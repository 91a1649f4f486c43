// rocksdb_database.cc: storage::Database on rocksdb::OptimisticTransactionDB.
#include "libs/storage/rocksdb_database.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/blocking.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/storage/status.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/optimistic_transaction_db.h"
#include "rocksdb/utilities/transaction.h"
#include "rocksdb/write_batch.h"

namespace coffer::storage {

namespace {

// The status a caller of a read or a write gets (status.h: ForCallers).
absl::Status CallStatus(const rocksdb::Status& status, absl::string_view what) {
  return ForCallers(FromRocksDb(status, what), what);
}

// RocksDB's info log, forwarded to libs/common/log at warning level and up.
class ForwardingLogger final : public rocksdb::Logger {
 public:
  ForwardingLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buffer[1024];
    int n = std::vsnprintf(buffer, sizeof(buffer), format, ap);
    if (n < 0) return;
    const absl::string_view text(buffer,
                                 std::min<size_t>(static_cast<size_t>(n), sizeof(buffer) - 1));
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      log::Error("rocksdb", text);
    } else {
      log::Warn("rocksdb", text);
    }
  }
};

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// The smallest key greater than every key starting with `prefix`, or "" when
// there is none (empty prefix, or all bytes 0xff).
std::string PrefixSuccessor(absl::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    unsigned char last = static_cast<unsigned char>(out.back());
    if (last != 0xff) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();  // 0xff carries into the previous byte.
  }
  return out;
}

}  // namespace

// One attempt of RunTransaction: the rocksdb::Transaction, and the first
// error of a write (kept for the commit).
class RocksTransaction final : public Transaction {
 public:
  RocksTransaction(const RocksDatabase* db, rocksdb::Transaction* txn) : db_(db), txn_(txn) {}
  absl::StatusOr<std::optional<std::string>> GetForUpdate(absl::string_view column_family,
                                                          absl::string_view key) override;
  void Put(absl::string_view column_family, absl::string_view key,
           absl::string_view value) override;
  void Delete(absl::string_view column_family, absl::string_view key) override;
  const absl::Status& deferred_error() const { return deferred_error_; }

 private:
  // Put and Delete: the family to write to, or nullptr when the transaction
  // has failed already or the family is unknown (the error is kept for
  // Commit).
  rocksdb::ColumnFamilyHandle* FamilyForWrite(absl::string_view column_family);
  const RocksDatabase* db_;
  rocksdb::Transaction* txn_;
  absl::Status deferred_error_;
};

// --------------------------------------------------------------- Transaction

absl::StatusOr<std::optional<std::string>> RocksTransaction::GetForUpdate(
    absl::string_view column_family, absl::string_view key) {
  auto cf = db_->Family(column_family);
  if (!cf.ok()) {
    if (deferred_error_.ok()) deferred_error_ = cf.status();
    return cf.status();
  }
  std::string value;
  rocksdb::Status s = txn_->GetForUpdate(rocksdb::ReadOptions(), *cf, ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) {
    absl::Status status = CallStatus(s, "transaction get");
    if (deferred_error_.ok()) deferred_error_ = status;
    return status;
  }
  return std::optional<std::string>(std::move(value));
}

rocksdb::ColumnFamilyHandle* RocksTransaction::FamilyForWrite(absl::string_view column_family) {
  if (!deferred_error_.ok()) return nullptr;
  auto cf = db_->Family(column_family);
  if (!cf.ok()) {
    deferred_error_ = cf.status();
    return nullptr;
  }
  return *cf;
}

void RocksTransaction::Put(absl::string_view column_family, absl::string_view key,
                           absl::string_view value) {
  rocksdb::ColumnFamilyHandle* cf = FamilyForWrite(column_family);
  if (cf == nullptr) return;
  deferred_error_ = CallStatus(txn_->Put(cf, ToSlice(key), ToSlice(value)), "transaction put");
}

void RocksTransaction::Delete(absl::string_view column_family, absl::string_view key) {
  rocksdb::ColumnFamilyHandle* cf = FamilyForWrite(column_family);
  if (cf == nullptr) return;
  deferred_error_ = CallStatus(txn_->Delete(cf, ToSlice(key)), "transaction delete");
}

// ------------------------------------------------------------------ Database

absl::StatusOr<std::unique_ptr<RocksDatabase>> RocksDatabase::Open(const DatabaseOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("database path is empty");
  // A fresh database's directory made here: RocksDB would report the
  // missing directory as an error in its log (forwarded to ours) first.
  if (options.create_if_missing && options.env == nullptr) {
    std::error_code ec;
    std::filesystem::create_directories(options.path, ec);
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;
  // RocksDB's own messages go to our log (warnings and worse), not to a LOG
  // file: Debian's RocksDB asserts (aborts) when writing LOG fails after an
  // earlier write error, so a full disk would crash the process instead of
  // failing the write.
  db_options.info_log = std::make_shared<ForwardingLogger>();
  if (options.env != nullptr) db_options.env = options.env;

  // One table configuration (and so one block cache) shared by every family.
  rocksdb::BlockBasedTableOptions table_options;
  if (options.block_cache_bytes > 0) {
    table_options.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  }
  table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  cf_options.level_compaction_dynamic_level_bytes = true;

  // "default", the requested families, then any other family already on disk
  // (RocksDB refuses to open a database without all of its families).
  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName};
  auto add = [&names](const std::string& name) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  };
  for (const auto& name : options.column_families) add(name);
  std::vector<std::string> existing;
  // Fails when the database does not exist yet; Open reports real problems.
  if (rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing).ok()) {
    for (const auto& name : existing) add(name);
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(names.size());
  for (const auto& name : names) descriptors.emplace_back(name, cf_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::OptimisticTransactionDB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::OptimisticTransactionDB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) {
    delete raw;
    return FromRocksDb(s, absl::StrCat("open ", options.path));
  }
  COFFER_CHECK(handles.size() == names.size(), "RocksDB returned one handle per family");

  std::unique_ptr<RocksDatabase> db(new RocksDatabase());
  db->path_ = options.path;
  db->sync_writes_ = options.sync_writes;
  db->db_.reset(raw);
  db->family_names_ = std::move(names);
  db->families_ = std::move(handles);
  return db;
}

RocksDatabase::~RocksDatabase() {
  if (db_ == nullptr) return;
  // Best effort: the WAL already holds every acknowledged write.
  (void)Flush();
  for (rocksdb::ColumnFamilyHandle* handle : families_) {
    db_->DestroyColumnFamilyHandle(handle);
  }
  families_.clear();
  db_.reset();
}

absl::StatusOr<rocksdb::ColumnFamilyHandle*> RocksDatabase::Family(absl::string_view name) const {
  for (size_t i = 0; i < family_names_.size(); ++i) {
    if (family_names_[i] == name) return families_[i];
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown column family '", name, "'"));
}

absl::StatusOr<std::optional<std::string>> RocksDatabase::Get(absl::string_view column_family,
                                                              absl::string_view key) const {
  COFFER_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Family(column_family));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  COFFER_RETURN_IF_ERROR(CallStatus(s, "get"));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::vector<std::optional<std::string>>> RocksDatabase::MultiGet(
    absl::Span<const KeyRef> keys) const {
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  families.reserve(keys.size());
  for (const KeyRef& k : keys) {
    COFFER_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Family(k.column_family));
    families.push_back(cf);
  }
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot;
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  absl::Status status;
  for (size_t i = 0; i < keys.size() && status.ok(); ++i) {
    std::string value;
    rocksdb::Status s = db_->Get(read_options, families[i], ToSlice(keys[i].key), &value);
    if (s.IsNotFound()) {
      out.emplace_back();
    } else if (s.ok()) {
      out.emplace_back(std::move(value));
    } else {
      status = CallStatus(s, "get");
    }
  }
  db_->ReleaseSnapshot(snapshot);
  if (!status.ok()) return status;
  return out;
}

absl::Status RocksDatabase::Write(const WriteBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  if (!MayBlock()) return WouldBlockError("a synced write");
  // Resolve every family before writing anything: all or nothing.
  rocksdb::WriteBatch rocks_batch;
  for (const WriteBatch::Op& op : batch.ops()) {
    COFFER_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Family(op.column_family));
    rocksdb::Status s =
        op.is_delete ? rocks_batch.Delete(cf, op.key) : rocks_batch.Put(cf, op.key, op.value);
    COFFER_RETURN_IF_ERROR(CallStatus(s, "batch"));
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = sync_writes_;
  return CallStatus(db_->Write(write_options, &rocks_batch), "write");
}

absl::Status RocksDatabase::Put(absl::string_view column_family, absl::string_view key,
                                absl::string_view value) {
  if (!MayBlock()) return WouldBlockError("a synced write");
  COFFER_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Family(column_family));
  rocksdb::WriteOptions write_options;
  write_options.sync = sync_writes_;
  return CallStatus(db_->Put(write_options, cf, ToSlice(key), ToSlice(value)), "put");
}

absl::Status RocksDatabase::Delete(absl::string_view column_family, absl::string_view key) {
  if (!MayBlock()) return WouldBlockError("a synced write");
  COFFER_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Family(column_family));
  rocksdb::WriteOptions write_options;
  write_options.sync = sync_writes_;
  return CallStatus(db_->Delete(write_options, cf, ToSlice(key)), "delete");
}

absl::Status RocksDatabase::RunTransaction(const std::function<absl::Status(Transaction&)>& fn,
                                           int max_attempts) {
  if (max_attempts < 1) max_attempts = 1;
  if (!MayBlock()) return WouldBlockError("a synced transaction");
  rocksdb::WriteOptions write_options;
  write_options.sync = sync_writes_;
  absl::Status last_conflict;
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    std::unique_ptr<rocksdb::Transaction> rocks_txn(db_->BeginTransaction(write_options));
    RocksTransaction txn(this, rocks_txn.get());
    // An error from fn (or a deferred one) drops the transaction unwritten.
    COFFER_RETURN_IF_ERROR(fn(txn));
    COFFER_RETURN_IF_ERROR(txn.deferred_error());
    rocksdb::Status s = rocks_txn->Commit();
    if (s.ok()) return absl::OkStatus();
    if (!s.IsBusy() && !s.IsTryAgain()) return CallStatus(s, "commit");
    last_conflict = CallStatus(s, "commit");
  }
  return absl::AbortedError(absl::StrCat("transaction conflict persisted after ", max_attempts,
                                         " attempts: ", last_conflict.message()));
}

absl::Status RocksDatabase::Scan(
    absl::string_view column_family, const ScanOptions& options,
    absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn) const {
  COFFER_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, Family(column_family));

  // [lower, upper): "" means unbounded on that side.
  std::string lower = options.prefix;
  std::string upper = PrefixSuccessor(options.prefix);
  auto lower_to = [&lower](std::string candidate) {
    if (candidate > lower) lower = std::move(candidate);
  };
  auto upper_to = [&upper](const std::string& candidate) {
    if (!candidate.empty() && (upper.empty() || candidate < upper)) upper = candidate;
  };
  upper_to(options.end_before);
  if (!options.start_after.empty()) {
    if (options.reverse) {
      upper_to(options.start_after);
    } else {
      lower_to(options.start_after + std::string(1, '\0'));
    }
  }
  if (!upper.empty() && lower >= upper) return absl::OkStatus();  // Empty range.

  // The slices must outlive the iterator.
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read_options;
  if (!lower.empty()) read_options.iterate_lower_bound = &lower_slice;
  if (!upper.empty()) read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, cf));

  size_t visited = 0;
  if (options.reverse) {
    it->SeekToLast();  // Honors iterate_upper_bound.
  } else {
    it->SeekToFirst();  // Honors iterate_lower_bound.
  }
  while (it->Valid()) {
    absl::string_view key = ToView(it->key());
    // RocksDB enforces the bounds; this only guards against running past them.
    if (!upper.empty() && key >= upper) break;
    if (key < lower) break;
    ++visited;
    if (!fn(key, ToView(it->value()))) break;
    if (options.limit != 0 && visited >= options.limit) break;
    if (options.reverse) {
      it->Prev();
    } else {
      it->Next();
    }
  }
  return CallStatus(it->status(), "scan");
}

uint64_t RocksDatabase::EstimateKeys(absl::string_view column_family) const {
  auto cf = Family(column_family);
  if (!cf.ok()) return 0;
  uint64_t n = 0;
  if (!db_->GetIntProperty(*cf, rocksdb::DB::Properties::kEstimateNumKeys, &n)) return 0;
  return n;
}

absl::Status RocksDatabase::Flush() {
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  return FromRocksDb(db_->Flush(flush_options, families_), "flush");
}

}  // namespace coffer::storage
