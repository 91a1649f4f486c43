// change_log.h: the bounded, durable log of changes behind WatchSecrets and
// WatchParameters.
//
// A writer reserves a sequence number, puts the event into the SAME
// transaction as the change itself (so the event exists exactly when the
// change does), and after the commit publishes — or abandons — the number:
//
//   LocalChangeLog::Ticket t = log.Reserve();
//   db->RunTransaction([&](storage::Transaction& txn) {
//     ... the change ...
//     log.Stage(txn, t, event);              // key = 8-byte BE sequence
//     return absl::OkStatus();
//   });
//   log.Finish(t);                           // published or abandoned, either way
//
// Sequence numbers are handed out concurrently, but readers only see up to
// the *watermark*: the highest number below which every reserved number is
// finished. So a reader never skips a change that commits late. Positions
// survive restarts (the last key is read at Open). The log keeps at most
// `capacity` events; Trim() drops older ones; a reader resuming from a
// position older than what is kept gets OUT_OF_RANGE.
//
// That is the LocalChangeLog, for a database only this process writes. When
// replicas share the database on etcd, ChangeLog::Open makes an
// EtcdChangeLog instead (etcd_change_log.h): positions come from etcd's
// revisions, so that they are the same on every replica.
//
// Readers:
//   uint64_t from = log.Watermark();              // "from now"
//   auto events = log.Read(from, 100);            // (position, event) after `from`
//   auto sub = log.Subscribe([] { ...wake up... });   // called on each advance
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coffer/v1/change_event.pb.h"
#include "libs/common/clock.h"
#include "libs/storage/database.h"

namespace coffer::store {

class ChangeLog;

// A change that may describe itself: it fills the event's kind (and name,
// version...) when it wants one recorded.
using EventfulChange = std::function<absl::Status(storage::Transaction&, coffer::v1::ChangeEvent*)>;

// Runs `fn` in one transaction of `db`. When `fn` sets the event's kind, the
// event, stamped with `resource` and `clock`'s time, is staged in `log` in
// the same write (so it exists exactly when the change does). `log` may be
// null: then no event is kept. The one commit path of both APIs.
absl::Status CommitWithEvent(storage::Database* db, ChangeLog* log, Clock* clock,
                             coffer::v1::ResourceKind resource, const EventfulChange& fn);

// Several changes that may each describe themselves, committed as one write
// (a group commit): `fn` appends at most `max_events` events, in the order
// their sequence numbers are given.
using EventfulChanges =
    std::function<absl::Status(storage::Transaction&, std::vector<coffer::v1::ChangeEvent>*)>;
absl::Status CommitWithEvents(storage::Database* db, ChangeLog* log, Clock* clock,
                              coffer::v1::ResourceKind resource, size_t max_events,
                              const EventfulChanges& fn);

// The change log of one database: which one Open makes depends on the
// engine (LocalChangeLog below for RocksDB, EtcdChangeLog for etcd, where
// replicas share the log). Readers and writers use this interface.
class ChangeLog {
 public:
  class Subscription;

  // The log of `db`, which must have the schema::kChanges family: a
  // LocalChangeLog, or an EtcdChangeLog when replicas share `db`.
  static absl::StatusOr<std::unique_ptr<ChangeLog>> Open(storage::Database* db,
                                                         uint64_t capacity = 100000);
  virtual ~ChangeLog();

  // Runs `fn` in one transaction of `db` (this log's database) and puts
  // the events it appends (at most `max_events`), stamped with `resource`
  // and `clock`'s time, in the same write. See CommitWithEvents.
  virtual absl::Status Commit(storage::Database* db, Clock* clock,
                              coffer::v1::ResourceKind resource, size_t max_events,
                              const EventfulChanges& fn) = 0;

  // Every position <= the watermark is final.
  virtual uint64_t Watermark() const = 0;
  // Whether other replicas write this log too (then a position from one of
  // them may be ahead of this replica's watermark for a moment).
  virtual bool shared() const { return false; }
  // Positions below this may have been trimmed (0: nothing was).
  virtual uint64_t Oldest() const = 0;

  // Events with position in (after, Watermark()], at most `limit`, in order,
  // with ChangeEvent.position filled. OUT_OF_RANGE when events after
  // `after` were trimmed.
  virtual absl::StatusOr<std::vector<coffer::v1::ChangeEvent>> Read(uint64_t after,
                                                                    size_t limit) const = 0;

  // Deletes events beyond `capacity` (oldest first). Returns how many.
  virtual absl::StatusOr<uint64_t> Trim() = 0;

  // `on_advance` runs (on the publishing thread, without locks held) each
  // time the watermark moves. Dropping the Subscription unsubscribes; once
  // that returns, `on_advance` is not running and will not run again (a
  // Subscription dropped from inside its own callback does not wait for it).
  // Subscriptions must be dropped before the ChangeLog.
  std::unique_ptr<Subscription> Subscribe(std::function<void()> on_advance);

  // Positions on the wire: decimal strings. "" = none.
  static std::string EncodePosition(uint64_t position);
  // INVALID_ARGUMENT naming `field` when malformed.
  static absl::StatusOr<uint64_t> DecodePosition(absl::string_view field, absl::string_view text);

  class Subscription {
   public:
    ~Subscription();

   private:
    friend class ChangeLog;
    Subscription(ChangeLog* log, uint64_t id) : log_(log), id_(id) {}
    ChangeLog* log_;
    uint64_t id_;
  };

 protected:
  ChangeLog() = default;
  // Calls every subscriber, without locks held: the watermark moved.
  void Publish();

 private:
  void Unsubscribe(uint64_t id);

  mutable absl::Mutex subscribers_mu_;
  uint64_t next_subscriber_ ABSL_GUARDED_BY(subscribers_mu_) = 1;
  std::map<uint64_t, std::function<void()>> subscribers_ ABSL_GUARDED_BY(subscribers_mu_);
  // Subscriber calls under way (id -> calling thread); Unsubscribe waits for
  // those on other threads, so no call starts or runs after it returns.
  std::multimap<uint64_t, std::thread::id> running_ ABSL_GUARDED_BY(subscribers_mu_);
};

// The log in a database only this process writes (RocksDB): sequence
// numbers are handed out here, as described at the top.
class LocalChangeLog final : public ChangeLog {
 public:
  struct Ticket {
    uint64_t sequence = 0;
  };

  // Reads the last sequence number.
  static absl::StatusOr<std::unique_ptr<LocalChangeLog>> Open(storage::Database* db,
                                                              uint64_t capacity = 100000);
  ~LocalChangeLog() override;

  absl::Status Commit(storage::Database* db, Clock* clock, coffer::v1::ResourceKind resource,
                      size_t max_events, const EventfulChanges& fn) override;

  Ticket Reserve();
  // Adds the event under the ticket's key to `txn` (may be called again if
  // the transaction is retried).
  void Stage(storage::Transaction& txn, const Ticket& ticket, const coffer::v1::ChangeEvent& event);
  // Must be called exactly once per ticket, after the transaction ended
  // (committed or not). Advances the watermark and wakes subscribers.
  void Finish(const Ticket& ticket);

  uint64_t Watermark() const override;
  // The oldest position still kept (0 when the log is empty).
  uint64_t Oldest() const override;
  absl::StatusOr<std::vector<coffer::v1::ChangeEvent>> Read(uint64_t after,
                                                            size_t limit) const override;
  absl::StatusOr<uint64_t> Trim() override;

 private:
  LocalChangeLog(storage::Database* db, uint64_t capacity) : db_(db), capacity_(capacity) {}

  storage::Database* db_;
  const uint64_t capacity_;
  mutable absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t watermark_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t oldest_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<uint64_t> in_flight_ ABSL_GUARDED_BY(mu_);
  // One Trim at a time.
  absl::Mutex trim_mu_;
  // Every key below this position was deleted by an earlier Trim of this
  // object, which resumes here. RocksDB keeps deleted keys as tombstones
  // until compaction drops them, so a scan from the first key would step
  // over every event ever trimmed, on every call. 0 (after Open): the first
  // Trim scans from the first key, deleting what an interrupted one left.
  uint64_t trimmed_below_ ABSL_GUARDED_BY(trim_mu_) = 0;
};

}  // namespace coffer::store
