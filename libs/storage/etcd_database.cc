#include "libs/storage/etcd_database.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/common/blocking.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/storage/status.h"

namespace coffer::storage {
namespace {

// The smallest key greater than every key starting with `prefix` ("" when
// there is none).
std::string PrefixEnd(absl::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    const unsigned char last = static_cast<unsigned char>(out.back());
    if (last != 0xff) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();
  }
  return out;
}

// The batch's operations with later writes of a key replacing earlier ones
// (etcd refuses a key twice in one Txn; the last write wins, as in a batch).
std::vector<etcd::Op> LastWriteWins(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& writes) {
  std::map<std::string, size_t> last;
  for (size_t i = 0; i < writes.size(); ++i) last[writes[i].first] = i;
  std::vector<etcd::Op> ops;
  for (size_t i = 0; i < writes.size(); ++i) {
    if (last[writes[i].first] != i) continue;
    ops.push_back(writes[i].second.has_value()
                      ? etcd::Op::Put(writes[i].first, *writes[i].second)
                      : etcd::Op::Delete(etcd::KeyRange::Key(writes[i].first)));
  }
  return ops;
}

// A family watch: an etcd watch on the family's prefix from the revision
// after the one current when it starts. When etcd compacted the history the
// watch needed, a thread of its own reports it (on_change("")) and watches
// again from now.
class EtcdFamilyWatch final : public Database::FamilyWatch {
 public:
  EtcdFamilyWatch(etcd::EtcdClient* client, std::string prefix,
                  std::function<void(absl::string_view)> on_change)
      : client_(client), prefix_(std::move(prefix)), on_change_(std::move(on_change)) {}

  ~EtcdFamilyWatch() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (restarter_.joinable()) restarter_.join();
    if (watcher_) watcher_->Stop();
  }

  absl::Status Start() {
    COFFER_RETURN_IF_ERROR(StartWatcher());
    restarter_ = std::thread([this] { Restarts(); });
    return absl::OkStatus();
  }

 private:
  absl::Status StartWatcher() {
    etcd::RangeOptions now;
    now.count_only = true;
    COFFER_ASSIGN_OR_RETURN(etcd::RangeResult current,
                            client_->Range(etcd::KeyRange::Key(prefix_), now));
    watcher_ = client_->Watch(etcd::KeyRange::Prefix(prefix_), current.revision + 1,
                              [this](absl::StatusOr<etcd::WatchEvent> event) {
                                if (!event.ok()) {
                                  absl::MutexLock lock(&mu_);
                                  lost_ = true;
                                  return;
                                }
                                on_change_(absl::string_view(event->kv.key).substr(prefix_.size()));
                              });
    return absl::OkStatus();
  }

  void Restarts() {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || lost_; };
        mu_.Await(absl::Condition(&woken));
        if (stopping_) return;
        lost_ = false;
      }
      watcher_->Stop();  // Its callback has returned: it ended the watch.
      while (!StartWatcher().ok()) {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1))) return;
      }
      on_change_("");
    }
  }

  etcd::EtcdClient* const client_;
  const std::string prefix_;
  const std::function<void(absl::string_view)> on_change_;
  std::unique_ptr<etcd::Watcher> watcher_;  // Replaced only by restarter_.
  std::thread restarter_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
};

// What callers of the engine (and so the services' clients) are told when
// etcd cannot be reached: the code, and a short reason; the endpoints and
// each one's error go to the log (at most once a second), not to clients.
// Other failures of etcd itself (it refusing Coffer's certificate, an
// internal error) are ForCallers'.
absl::Status EngineStatus(const absl::Status& status) {
  if (status.ok()) return status;
  if (!absl::IsUnavailable(status) && !absl::IsDeadlineExceeded(status)) {
    return ForCallers(status, "an etcd request");
  }
  static std::atomic<int64_t> last_logged{0};
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  if (last_logged.exchange(now) != now) {
    log::Warn("storage", "etcd unavailable", {{"error", std::string(status.message())}});
  }
  const bool maybe_applied = absl::StrContains(status.message(), "may have been applied");
  return absl::UnavailableError(absl::StrCat(
      "storage unavailable: no etcd member answered with a leader in time",
      maybe_applied ? " (the write may have been applied; retry it idempotently)" : "; try again"));
}

// Each key's pair (nullopt: absent), all at one revision: one Range for one
// key, else one read-only Txn of Ranges. Errors as EngineStatus.
absl::StatusOr<std::vector<std::optional<etcd::KeyValue>>> ReadKeys(
    etcd::EtcdClient& client, const std::vector<std::string>& etcd_keys) {
  std::vector<std::optional<etcd::KeyValue>> out(etcd_keys.size());
  if (etcd_keys.size() == 1) {
    absl::StatusOr<std::optional<etcd::KeyValue>> kv = client.Get(etcd_keys.front());
    if (!kv.ok()) return EngineStatus(kv.status());
    out.front() = *std::move(kv);
  } else if (!etcd_keys.empty()) {
    etcd::TxnBuilder txn;  // no compares: the Then branch
    for (const std::string& key : etcd_keys) txn.Then(etcd::Op::Get(etcd::KeyRange::Key(key)));
    absl::StatusOr<etcd::TxnResult> result = client.Txn(txn);
    if (!result.ok()) return EngineStatus(result.status());
    if (result->responses.size() != etcd_keys.size()) {
      return absl::InternalError("etcd answered a read of several keys with another number");
    }
    for (size_t i = 0; i < etcd_keys.size(); ++i) {
      std::vector<etcd::KeyValue>& kvs = result->responses[i].kvs;
      if (!kvs.empty()) out[i] = std::move(kvs.front());
    }
  }
  return out;
}

// The revision of the last transaction this thread committed.
thread_local int64_t last_commit_revision = 0;

class EtcdTransaction final : public Transaction {
 public:
  explicit EtcdTransaction(const EtcdDatabase* db) : db_(db) {}

  absl::StatusOr<std::optional<std::string>> GetForUpdate(absl::string_view column_family,
                                                          absl::string_view key) override {
    absl::StatusOr<std::string> etcd_key = db_->EtcdKey(column_family, key);
    if (!etcd_key.ok()) return Fail(etcd_key.status());
    // A transaction reads its own writes.
    if (const std::optional<std::string>* written = Written(*etcd_key)) return *written;
    auto read = reads_.find(*etcd_key);
    if (read != reads_.end()) return read->second.value;
    absl::StatusOr<std::optional<etcd::KeyValue>> kv = db_->client().Get(*etcd_key);
    if (!kv.ok()) return Fail(EngineStatus(kv.status()));
    return Remember(*etcd_key, *std::move(kv)).value;
  }

  // The keys neither written nor read yet are read in one read-only Txn
  // (at one revision); each is then checked at commit like any read.
  absl::StatusOr<std::vector<std::optional<std::string>>> GetManyForUpdate(
      absl::Span<const KeyRef> keys) override {
    std::vector<std::string> etcd_keys;
    etcd_keys.reserve(keys.size());
    std::vector<std::string> unread;
    for (const KeyRef& k : keys) {
      absl::StatusOr<std::string> etcd_key = db_->EtcdKey(k.column_family, k.key);
      if (!etcd_key.ok()) return Fail(etcd_key.status());
      if (!Written(*etcd_key) && reads_.count(*etcd_key) == 0 &&
          std::find(unread.begin(), unread.end(), *etcd_key) == unread.end()) {
        unread.push_back(*etcd_key);
      }
      etcd_keys.push_back(*std::move(etcd_key));
    }
    absl::StatusOr<std::vector<std::optional<etcd::KeyValue>>> read =
        ReadKeys(db_->client(), unread);
    if (!read.ok()) return Fail(read.status());
    for (size_t i = 0; i < unread.size(); ++i) Remember(unread[i], std::move((*read)[i]));
    std::vector<std::optional<std::string>> out;
    out.reserve(keys.size());
    for (const std::string& etcd_key : etcd_keys) {
      const std::optional<std::string>* written = Written(etcd_key);
      out.push_back(written != nullptr ? *written : reads_[etcd_key].value);
    }
    return out;
  }

  void Put(absl::string_view column_family, absl::string_view key,
           absl::string_view value) override {
    Write(column_family, key, std::string(value));
  }
  void Delete(absl::string_view column_family, absl::string_view key) override {
    Write(column_family, key, std::nullopt);
  }

  // One Txn: the reads unchanged, then the writes. OK, ABORTED on a
  // conflict, or the error.
  absl::Status Commit(size_t max_ops) {
    COFFER_RETURN_IF_ERROR(error_);
    std::vector<etcd::Op> ops = LastWriteWins(writes_);
    if (ops.empty()) return absl::OkStatus();
    if (ops.size() + reads_.size() > max_ops) {
      return absl::ResourceExhaustedError(
          absl::StrCat("transaction of ", ops.size(), " writes and ", reads_.size(),
                       " reads; etcd takes at most ", max_ops, " operations per Txn"));
    }
    etcd::TxnBuilder txn;
    for (const auto& [key, read] : reads_) {
      txn.If(etcd::Compare::ModRevision(key, etcd::CompareOp::kEqual, read.mod_revision));
    }
    for (etcd::Op& op : ops) txn.Then(std::move(op));
    absl::StatusOr<etcd::TxnResult> result = db_->client().Txn(txn);
    if (!result.ok()) return EngineStatus(result.status());
    if (!result->succeeded) return absl::AbortedError("a key read changed before the commit");
    last_commit_revision = result->revision;
    return absl::OkStatus();
  }

 private:
  struct Read {
    int64_t mod_revision = 0;  // 0: absent
    std::optional<std::string> value;
  };

  absl::Status Fail(absl::Status status) {
    if (error_.ok()) error_ = status;
    return status;
  }
  // This transaction's last write of the key, if it wrote it.
  const std::optional<std::string>* Written(const std::string& etcd_key) const {
    for (auto it = writes_.rbegin(); it != writes_.rend(); ++it) {
      if (it->first == etcd_key) return &it->second;
    }
    return nullptr;
  }
  const Read& Remember(const std::string& etcd_key, std::optional<etcd::KeyValue> kv) {
    Read& r = reads_[etcd_key];
    if (kv.has_value()) {
      r.mod_revision = kv->mod_revision;
      r.value = std::move(kv->value);
    }
    return r;
  }
  void Write(absl::string_view column_family, absl::string_view key,
             std::optional<std::string> value) {
    if (!error_.ok()) return;
    absl::StatusOr<std::string> etcd_key = db_->EtcdKey(column_family, key);
    if (!etcd_key.ok()) {
      error_ = etcd_key.status();
      return;
    }
    writes_.emplace_back(*std::move(etcd_key), std::move(value));
  }

  const EtcdDatabase* db_;
  std::map<std::string, Read> reads_;
  std::vector<std::pair<std::string, std::optional<std::string>>> writes_;
  absl::Status error_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdDatabase>> EtcdDatabase::Open(
    const EtcdDatabaseOptions& options, std::shared_ptr<etcd::EtcdClient> client) {
  if (client == nullptr) return absl::InvalidArgumentError("no etcd client");
  for (const std::string& family : options.column_families) {
    if (family.empty() || family.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("column family '", family, "' must be non-empty without '/'"));
    }
  }
  if (options.max_txn_ops < 2 || options.scan_page < 1) {
    return absl::InvalidArgumentError("max_txn_ops >= 2 and scan_page >= 1");
  }
  return std::unique_ptr<EtcdDatabase>(new EtcdDatabase(options, std::move(client)));
}

absl::StatusOr<std::string> EtcdDatabase::FamilyPrefix(absl::string_view column_family) const {
  for (const std::string& family : options_.column_families) {
    if (family == column_family) return absl::StrCat(options_.key_prefix, family, "/");
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown column family '", column_family, "'"));
}

absl::StatusOr<std::string> EtcdDatabase::EtcdKey(absl::string_view column_family,
                                                  absl::string_view key) const {
  COFFER_ASSIGN_OR_RETURN(std::string prefix, FamilyPrefix(column_family));
  return absl::StrCat(prefix, key);
}

absl::StatusOr<std::optional<std::string>> EtcdDatabase::Get(absl::string_view column_family,
                                                             absl::string_view key) const {
  COFFER_ASSIGN_OR_RETURN(std::string etcd_key, EtcdKey(column_family, key));
  if (!MayBlock()) return WouldBlockError("an etcd read");
  absl::StatusOr<std::optional<etcd::KeyValue>> kv = client_->Get(etcd_key);
  if (!kv.ok()) return EngineStatus(kv.status());
  if (!kv->has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::move((*kv)->value));
}

absl::StatusOr<std::vector<std::optional<std::string>>> EtcdDatabase::MultiGet(
    absl::Span<const KeyRef> keys) const {
  if (keys.size() > options_.max_txn_ops) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "read of ", keys.size(), " keys; etcd takes at most ", options_.max_txn_ops, " per Txn"));
  }
  std::vector<std::string> etcd_keys;
  etcd_keys.reserve(keys.size());
  for (const KeyRef& k : keys) {
    COFFER_ASSIGN_OR_RETURN(std::string etcd_key, EtcdKey(k.column_family, k.key));
    etcd_keys.push_back(std::move(etcd_key));
  }
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  if (!MayBlock()) return WouldBlockError("an etcd read");
  COFFER_ASSIGN_OR_RETURN(auto read, ReadKeys(*client_, etcd_keys));
  for (size_t i = 0; i < keys.size(); ++i) {
    if (read[i]) out[i] = std::move(read[i]->value);
  }
  return out;
}

absl::Status EtcdDatabase::Write(const WriteBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  if (!MayBlock()) return WouldBlockError("an etcd write");
  std::vector<std::pair<std::string, std::optional<std::string>>> writes;
  writes.reserve(batch.size());
  for (const WriteBatch::Op& op : batch.ops()) {
    COFFER_ASSIGN_OR_RETURN(std::string etcd_key, EtcdKey(op.column_family, op.key));
    writes.emplace_back(std::move(etcd_key),
                        op.is_delete ? std::nullopt : std::optional<std::string>(op.value));
  }
  std::vector<etcd::Op> ops = LastWriteWins(writes);
  if (ops.size() > options_.max_txn_ops) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "batch of ", ops.size(), " writes; etcd takes at most ", options_.max_txn_ops, " per Txn"));
  }
  etcd::TxnBuilder txn;
  for (etcd::Op& op : ops) txn.Then(std::move(op));
  return EngineStatus(client_->Txn(txn).status());
}

absl::Status EtcdDatabase::RunTransaction(const std::function<absl::Status(Transaction&)>& fn,
                                          int max_attempts) {
  if (max_attempts < 1) max_attempts = 1;
  if (!MayBlock()) return WouldBlockError("an etcd transaction");
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    EtcdTransaction txn(this);
    COFFER_RETURN_IF_ERROR(fn(txn));
    absl::Status committed = txn.Commit(options_.max_txn_ops);
    if (!absl::IsAborted(committed)) return committed;
    if (attempt + 1 == max_attempts) break;  // no wait before giving up
    // Writers racing on one key (replicas on one counter) would collide
    // again at once: wait a random few milliseconds, longer each time.
    thread_local absl::BitGen bitgen;
    absl::SleepFor(absl::Microseconds(absl::Uniform(bitgen, 0, 500 * (1 << std::min(attempt, 4)))));
  }
  return absl::AbortedError(
      absl::StrCat("transaction conflict persisted after ", max_attempts, " attempts"));
}

absl::Status EtcdDatabase::Scan(
    absl::string_view column_family, const ScanOptions& options,
    absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn) const {
  COFFER_ASSIGN_OR_RETURN(std::string family, FamilyPrefix(column_family));
  if (!MayBlock()) return WouldBlockError("an etcd scan");
  // [lower, upper) in etcd keys; the family's own range bounds both.
  std::string lower = family + options.prefix;
  std::string upper = PrefixEnd(lower);
  if (!options.end_before.empty()) upper = std::min(upper, family + options.end_before);
  if (!options.start_after.empty()) {
    const std::string after = family + options.start_after;
    if (options.reverse) {
      upper = std::min(upper, after);
    } else {
      lower = std::max(lower, after + std::string(1, '\0'));
    }
  }
  size_t visited = 0;
  while (lower < upper) {
    etcd::RangeOptions range;
    range.limit = options_.scan_page;
    if (options.limit != 0) {
      range.limit = std::min<int64_t>(range.limit, static_cast<int64_t>(options.limit - visited));
    }
    range.descending = options.reverse;
    absl::StatusOr<etcd::RangeResult> page =
        client_->Range(etcd::KeyRange::Between(lower, upper), range);
    if (!page.ok()) return EngineStatus(page.status());
    for (const etcd::KeyValue& kv : page->kvs) {
      ++visited;
      if (!fn(absl::string_view(kv.key).substr(family.size()), kv.value)) return absl::OkStatus();
      if (options.limit != 0 && visited >= options.limit) return absl::OkStatus();
    }
    if (!page->more || page->kvs.empty()) break;
    if (options.reverse) {
      upper = page->kvs.back().key;
    } else {
      lower = page->kvs.back().key + std::string(1, '\0');
    }
  }
  return absl::OkStatus();
}

int64_t EtcdDatabase::LastCommitRevision() { return last_commit_revision; }

absl::StatusOr<std::unique_ptr<Database::FamilyWatch>> EtcdDatabase::WatchFamily(
    absl::string_view column_family, std::function<void(absl::string_view key)> on_change) {
  COFFER_ASSIGN_OR_RETURN(std::string prefix, FamilyPrefix(column_family));
  auto watch =
      std::make_unique<EtcdFamilyWatch>(client_.get(), std::move(prefix), std::move(on_change));
  COFFER_RETURN_IF_ERROR(watch->Start());
  return watch;
}

uint64_t EtcdDatabase::EstimateKeys(absl::string_view column_family) const {
  return CountKeys(column_family).value_or(0);
}

absl::StatusOr<uint64_t> EtcdDatabase::CountKeys(absl::string_view column_family) const {
  COFFER_ASSIGN_OR_RETURN(std::string family, FamilyPrefix(column_family));
  if (!MayBlock()) return WouldBlockError("an etcd read");
  etcd::RangeOptions options;
  options.count_only = true;
  absl::StatusOr<etcd::RangeResult> counted =
      client_->Range(etcd::KeyRange::Prefix(family), options);
  if (!counted.ok()) return EngineStatus(counted.status());
  return static_cast<uint64_t>(counted->count);
}

}  // namespace coffer::storage
