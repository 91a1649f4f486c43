#include "services/store/changes/etcd_change_log.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/storage/key_encoding.h"
#include "services/store/schema.h"

namespace coffer::store {

namespace {

constexpr int kRankBits = 10;
static_assert(EtcdChangeLog::kMaxEventsPerWrite == (1u << kRankBits));
// Keys read per Range at Open, and deleted per write in Trim.
constexpr int64_t kLoadPage = 1000;
constexpr size_t kTrimChunk = 100;

uint64_t PositionOf(int64_t revision, uint64_t rank) {
  return (static_cast<uint64_t>(revision) << kRankBits) | rank;
}

std::string RandomWriterId() {
  std::string id(8, '\0');
  KernelRandomBytes(id.data(), id.size());
  return id;
}

}  // namespace

// ChangeLog::Open lives here, beside the one engine that is not local, so
// that what links only the local log (the fuzzers) needs no etcd.
absl::StatusOr<std::unique_ptr<ChangeLog>> ChangeLog::Open(storage::Database* db,
                                                           uint64_t capacity) {
  if (db != nullptr && db->shared()) {
    auto* etcd = dynamic_cast<storage::EtcdDatabase*>(db);
    if (etcd == nullptr) return absl::InvalidArgumentError("a shared change log needs etcd");
    COFFER_ASSIGN_OR_RETURN(auto log, EtcdChangeLog::Open(etcd, capacity));
    return std::unique_ptr<ChangeLog>(std::move(log));
  }
  COFFER_ASSIGN_OR_RETURN(auto log, LocalChangeLog::Open(db, capacity));
  return std::unique_ptr<ChangeLog>(std::move(log));
}

EtcdChangeLog::EtcdChangeLog(storage::EtcdDatabase* db, uint64_t capacity,
                             std::string family_prefix)
    : db_(db),
      capacity_(capacity),
      prefix_(std::move(family_prefix)),
      writer_id_(RandomWriterId()) {}

absl::StatusOr<std::unique_ptr<EtcdChangeLog>> EtcdChangeLog::Open(storage::EtcdDatabase* db,
                                                                   uint64_t capacity) {
  if (db == nullptr) return absl::InvalidArgumentError("change log needs a database");
  if (capacity == 0) return absl::InvalidArgumentError("change log capacity must be positive");
  COFFER_ASSIGN_OR_RETURN(std::string prefix, db->FamilyPrefix(schema::kChanges));
  std::unique_ptr<EtcdChangeLog> log(new EtcdChangeLog(db, capacity, std::move(prefix)));
  COFFER_ASSIGN_OR_RETURN(int64_t revision, log->LoadAll());
  EtcdChangeLog* self = log.get();
  log->follower_ = std::thread([self, revision] { self->Follow(revision); });
  return log;
}

EtcdChangeLog::~EtcdChangeLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (follower_.joinable()) follower_.join();  // not started when Open failed
  if (watcher_) watcher_->Stop();
}

absl::StatusOr<int64_t> EtcdChangeLog::LoadAll() {
  std::vector<etcd::KeyValue> kvs;
  const etcd::KeyRange family = etcd::KeyRange::Prefix(prefix_);
  std::string lower = family.key;
  int64_t revision = 0;
  for (;;) {
    etcd::RangeOptions options;
    options.limit = kLoadPage;
    options.revision = revision;  // 0 at first: now; then the same snapshot
    COFFER_ASSIGN_OR_RETURN(
        etcd::RangeResult page,
        db_->client().Range(etcd::KeyRange::Between(lower, family.range_end), options));
    if (revision == 0) revision = page.revision;
    for (etcd::KeyValue& kv : page.kvs) kvs.push_back(std::move(kv));
    if (!page.more || page.kvs.empty()) break;
    lower = kvs.back().key + std::string(1, '\0');
  }
  uint64_t trimmed_through = 0;
  std::vector<etcd::KeyValue*> events;
  for (etcd::KeyValue& kv : kvs) {
    if (kv.key == prefix_) {
      if (kv.value.size() == 8) trimmed_through = storage::ReadBigEndian64(kv.value);
    } else {
      events.push_back(&kv);
    }
  }
  // The events of one write in the order they were staged: their keys'.
  std::sort(events.begin(), events.end(), [](const etcd::KeyValue* a, const etcd::KeyValue* b) {
    return a->mod_revision != b->mod_revision ? a->mod_revision < b->mod_revision : a->key < b->key;
  });
  std::deque<Entry> entries;
  std::vector<std::string> leftovers;  // under the mark, yet still stored
  int64_t last_revision = 0;
  uint64_t rank = 0;
  for (etcd::KeyValue* kv : events) {
    if (kv->mod_revision != last_revision) {
      last_revision = kv->mod_revision;
      rank = 0;
    }
    const uint64_t position = PositionOf(kv->mod_revision, rank++);
    if (position <= trimmed_through) {
      leftovers.push_back(kv->key.substr(prefix_.size()));
      continue;
    }
    entries.push_back({position, kv->key.substr(prefix_.size()), std::move(kv->value)});
  }
  {
    absl::MutexLock lock(&mu_);
    entries_ = std::move(entries);
    trimmed_through_ = std::max(trimmed_through_, trimmed_through);
    watermark_ = std::max(watermark_, PositionOf(revision, kMaxEventsPerWrite - 1));
    last_revision_ = revision;
    next_rank_ = 0;
  }
  // A trim that failed between its mark and its deletes left these: no
  // reader can ask for them any more, so they go now (and on the next load
  // if this fails too).
  if (!leftovers.empty()) {
    if (absl::Status s = DeleteEvents(leftovers); !s.ok()) {
      log::Warn("changes", "could not delete trimmed change events",
                {{"events", std::to_string(leftovers.size())}, {"error", s.ToString()}});
    }
  }
  return revision;
}

void EtcdChangeLog::Follow(int64_t revision) {
  for (;;) {
    watcher_ = db_->client().Watch(
        etcd::KeyRange::Prefix(prefix_), revision + 1,
        [this](absl::StatusOr<etcd::WatchEvent> event) { OnEvent(std::move(event)); });
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || lost_; };
      mu_.Await(absl::Condition(&woken));
      if (stopping_) return;
      lost_ = false;
    }
    watcher_->Stop();  // It ended itself when it lost the history.
    for (;;) {
      absl::StatusOr<int64_t> loaded = LoadAll();
      if (loaded.ok()) {
        revision = *loaded;
        break;
      }
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1))) return;
    }
    Publish();
  }
}

void EtcdChangeLog::OnEvent(absl::StatusOr<etcd::WatchEvent> event) {
  {
    absl::MutexLock lock(&mu_);
    if (!event.ok()) {
      lost_ = true;
      return;
    }
    const etcd::KeyValue& kv = event->kv;
    if (kv.key == prefix_) {  // the trim mark
      if (event->type == etcd::WatchEvent::Type::kPut && kv.value.size() == 8) {
        trimmed_through_ = std::max(trimmed_through_, storage::ReadBigEndian64(kv.value));
        DropTrimmedLocked();
      }
      return;
    }
    if (event->type != etcd::WatchEvent::Type::kPut) return;  // trimmed
    if (kv.mod_revision != last_revision_) {
      last_revision_ = kv.mod_revision;
      next_rank_ = 0;
    }
    const uint64_t position = PositionOf(kv.mod_revision, next_rank_++);
    if (position <= watermark_) return;
    entries_.push_back({position, kv.key.substr(prefix_.size()), kv.value});
    watermark_ = position;
  }
  Publish();
}

void EtcdChangeLog::DropTrimmedLocked() {
  while (!entries_.empty() && entries_.front().position <= trimmed_through_) entries_.pop_front();
}

std::string EtcdChangeLog::NextKey() {
  std::string key = writer_id_;
  absl::MutexLock lock(&mu_);
  storage::AppendBigEndian64(++counter_, &key);
  return key;
}

absl::Status EtcdChangeLog::Commit(storage::Database* db, Clock* clock,
                                   coffer::v1::ResourceKind resource, size_t max_events,
                                   const EventfulChanges& fn) {
  if (max_events > kMaxEventsPerWrite) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxEventsPerWrite, " change events per write"));
  }
  size_t staged = 0;
  COFFER_RETURN_IF_ERROR(db->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    std::vector<coffer::v1::ChangeEvent> events;
    COFFER_RETURN_IF_ERROR(fn(txn, &events));
    staged = events.size();
    COFFER_CHECK(events.size() <= max_events, "more change events than reserved");
    const absl::Time now = clock->Now();
    for (coffer::v1::ChangeEvent& event : events) {
      event.set_resource_kind(resource);
      *event.mutable_time() = ToProto(now);
      event.clear_position();  // Known once etcd committed the write.
      txn.Put(schema::kChanges, NextKey(), event.SerializeAsString());
    }
    return absl::OkStatus();
  }));
  // A change this replica acknowledged is in its watch streams: wait until
  // the watch delivered its events (they are the write's first `staged`).
  if (staged > 0) {
    const uint64_t last =
        PositionOf(storage::EtcdDatabase::LastCommitRevision(), static_cast<uint64_t>(staged - 1));
    if (AwaitWatermark(last, absl::Seconds(5)) < last) {
      log::Warn("store", "change events not yet seen by this replica's watch",
                {{"position", EncodePosition(last)}});
    }
  }
  return absl::OkStatus();
}

uint64_t EtcdChangeLog::Watermark() const {
  absl::MutexLock lock(&mu_);
  return watermark_;
}

uint64_t EtcdChangeLog::AwaitWatermark(uint64_t position, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, position]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return watermark_ >= position; };
  mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  return watermark_;
}

uint64_t EtcdChangeLog::Oldest() const {
  absl::MutexLock lock(&mu_);
  return trimmed_through_ == 0 ? 0 : trimmed_through_ + 1;
}

absl::StatusOr<std::vector<coffer::v1::ChangeEvent>> EtcdChangeLog::Read(uint64_t after,
                                                                         size_t limit) const {
  absl::MutexLock lock(&mu_);
  // Positions are sparse: what matters is whether an event after `after`
  // was deleted.
  if (after < trimmed_through_) {
    return absl::OutOfRangeError(absl::StrCat("position ", after,
                                              " is older than the retained change log (trimmed "
                                              "through ",
                                              trimmed_through_, ")"));
  }
  std::vector<coffer::v1::ChangeEvent> events;
  auto it = std::upper_bound(entries_.begin(), entries_.end(), after,
                             [](uint64_t p, const Entry& e) { return p < e.position; });
  for (; it != entries_.end() && events.size() < limit; ++it) {
    coffer::v1::ChangeEvent event;
    if (!event.ParseFromString(it->value)) {
      return absl::DataLossError(absl::StrCat("corrupt change event at position ", it->position));
    }
    event.set_position(EncodePosition(it->position));
    events.push_back(std::move(event));
  }
  return events;
}

absl::StatusOr<uint64_t> EtcdChangeLog::Trim() {
  absl::MutexLock trim_lock(&trim_mu_);
  // What an earlier Trim marked but failed to delete (this replica's watch
  // has dropped those events since): deleted first.
  if (!undeleted_.empty()) {
    COFFER_RETURN_IF_ERROR(DeleteEvents(undeleted_));
    undeleted_.clear();
  }
  uint64_t through;  // the last position deleted
  std::vector<std::string> keys;
  {
    absl::MutexLock lock(&mu_);
    if (entries_.size() <= capacity_) return 0;
    // Whole writes only: a replica that reads the log again ranks the
    // events of a write among those left, so a write cut in two would
    // renumber (and drop) the rest of it.
    size_t deleted = entries_.size() - capacity_;
    while (deleted > 0 && (entries_[deleted - 1].position >> kRankBits) ==
                              (entries_[deleted].position >> kRankBits)) {
      --deleted;
    }
    if (deleted == 0) return 0;
    through = entries_[deleted - 1].position;
    for (size_t i = 0; i < deleted; ++i) keys.push_back(entries_[i].key);
  }
  // The mark first: a reader never takes a gap for the whole log. It only
  // moves forward (a replica whose watch lags must not move it back).
  const std::string mark = storage::BigEndian64(through);
  bool moved = false;
  COFFER_RETURN_IF_ERROR(db_->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(std::optional<std::string> current,
                            txn.GetForUpdate(schema::kChanges, ""));
    moved = !current.has_value() || current->size() != 8 || *current < mark;
    if (moved) txn.Put(schema::kChanges, "", mark);
    return absl::OkStatus();
  }));
  // Deleted even when another replica moved the mark this far: that one
  // may have died before its deletes (deleting twice is harmless).
  if (absl::Status deleted = DeleteEvents(keys); !deleted.ok()) {
    undeleted_ = std::move(keys);  // the next Trim's
    return deleted;
  }
  absl::MutexLock lock(&mu_);
  trimmed_through_ = std::max(trimmed_through_, through);
  DropTrimmedLocked();
  return moved ? keys.size() : 0;
}

absl::Status EtcdChangeLog::DeleteEvents(const std::vector<std::string>& keys) {
  for (size_t i = 0; i < keys.size(); i += kTrimChunk) {
    storage::WriteBatch batch;
    for (size_t j = i; j < std::min(keys.size(), i + kTrimChunk); ++j) {
      batch.Delete(schema::kChanges, keys[j]);
    }
    COFFER_RETURN_IF_ERROR(db_->Write(batch));
  }
  return absl::OkStatus();
}

}  // namespace coffer::store
