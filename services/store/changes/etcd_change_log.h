// etcd_change_log.h: the change log when replicas of coffer-store share
// one etcd (storage::EtcdDatabase), so that a watch started on one replica
// resumes on any other from the same position.
//
// Positions come from etcd: the revision of the write that committed an
// event, times 1024, plus the event's rank among the events of that write.
// Every replica sees the same writes in the same order, so every replica
// gives an event the same position, and no replica hands out numbers.
//
// Layout: the events live in schema::kChanges under keys of 16 bytes (8
// random bytes of the writing process, then its 8-byte big-endian counter,
// so that the events of one write sort in the order they were staged); the
// key "" holds the trim mark, the 8-byte big-endian position of the last
// event deleted (positions are sparse: a reader is behind only if it has
// not seen that one).
//
// Each replica keeps the retained events in memory: read once at Open
// (every key of the family at one revision), then followed through an etcd
// watch from the next revision; the watermark is the position of the last
// event the watch delivered. A watch that lost its history (etcd compacted
// it) reads everything again. Trim (any replica may) writes the trim mark,
// then deletes the events below it; events a failed trim left below the
// mark are deleted by the next Trim of them or the next load.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/etcd/etcd_client.h"
#include "libs/storage/etcd_database.h"
#include "services/store/changes/change_log.h"

namespace coffer::store {

class EtcdChangeLog final : public ChangeLog {
 public:
  // Reads the retained events and starts following the family.
  static absl::StatusOr<std::unique_ptr<EtcdChangeLog>> Open(storage::EtcdDatabase* db,
                                                             uint64_t capacity = 100000);
  ~EtcdChangeLog() override;

  absl::Status Commit(storage::Database* db, Clock* clock, coffer::v1::ResourceKind resource,
                      size_t max_events, const EventfulChanges& fn) override;
  uint64_t Watermark() const override;
  bool shared() const override { return true; }
  // The watermark once it reached `position`, or after `timeout`.
  uint64_t AwaitWatermark(uint64_t position, absl::Duration timeout) const;
  uint64_t Oldest() const override;
  absl::StatusOr<std::vector<coffer::v1::ChangeEvent>> Read(uint64_t after,
                                                            size_t limit) const override;
  absl::StatusOr<uint64_t> Trim() override;

  // Events a write may hold (the rank takes 10 bits).
  static constexpr size_t kMaxEventsPerWrite = 1024;

 private:
  struct Entry {
    uint64_t position;
    std::string key;  // in the family
    std::string value;
  };
  EtcdChangeLog(storage::EtcdDatabase* db, uint64_t capacity, std::string family_prefix);

  // Reads every key of the family at one revision and replaces what is held;
  // returns that revision.
  absl::StatusOr<int64_t> LoadAll();
  // Deletes event keys (relative to the family), in chunks.
  absl::Status DeleteEvents(const std::vector<std::string>& keys);
  // Watches from `revision`; when etcd lost the history, loads again.
  void Follow(int64_t revision);
  void OnEvent(absl::StatusOr<etcd::WatchEvent> event);
  // Drops held events up to the trim mark.
  void DropTrimmedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NextKey();

  storage::EtcdDatabase* const db_;
  const uint64_t capacity_;
  const std::string prefix_;  // etcd key prefix of the family
  const std::string writer_id_;

  mutable absl::Mutex mu_;
  std::deque<Entry> entries_ ABSL_GUARDED_BY(mu_);  // position order
  uint64_t watermark_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t trimmed_through_ ABSL_GUARDED_BY(mu_) = 0;  // 0: nothing trimmed
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  // Rank of the next event of revision last_revision_ in the watch.
  int64_t last_revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_rank_ ABSL_GUARDED_BY(mu_) = 0;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::unique_ptr<etcd::Watcher> watcher_;  // Replaced only by follower_.
  std::thread follower_;
  absl::Mutex trim_mu_;  // One Trim at a time.
  // Event keys under the mark whose deletion failed (a dead replica's are
  // deleted by the next load of any replica).
  std::vector<std::string> undeleted_ ABSL_GUARDED_BY(trim_mu_);
};

}  // namespace coffer::store
