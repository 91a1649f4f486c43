#include "services/store/changes/change_log.h"

#include <algorithm>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/storage/key_encoding.h"
#include "services/store/schema.h"

namespace coffer::store {

namespace {

// Keys are the 8-byte big-endian sequence, so key order is position order.
std::string Key(uint64_t sequence) { return schema::ChangeKey(sequence); }

absl::StatusOr<uint64_t> SequenceOf(absl::string_view key) {
  if (key.size() != 8) {
    return absl::DataLossError(absl::StrCat("change log key of ", key.size(), " bytes (want 8)"));
  }
  return storage::ReadBigEndian64(key);
}

// Keys deleted per write batch in Trim.
constexpr size_t kTrimChunk = 10000;

}  // namespace

ChangeLog::~ChangeLog() = default;

absl::StatusOr<std::unique_ptr<LocalChangeLog>> LocalChangeLog::Open(storage::Database* db,
                                                                     uint64_t capacity) {
  if (db == nullptr) return absl::InvalidArgumentError("change log needs a database");
  if (capacity == 0) return absl::InvalidArgumentError("change log capacity must be positive");

  std::optional<uint64_t> first;
  std::optional<uint64_t> last;
  absl::Status parse_status;
  auto record = [&parse_status](std::optional<uint64_t>& into) {
    return [&parse_status, &into](absl::string_view key, absl::string_view) {
      auto sequence = SequenceOf(key);
      if (!sequence.ok()) {
        parse_status = sequence.status();
      } else {
        into = *sequence;
      }
      return false;
    };
  };
  storage::ScanOptions newest;
  newest.reverse = true;
  newest.limit = 1;
  COFFER_RETURN_IF_ERROR(db->Scan(schema::kChanges, newest, record(last)));
  COFFER_RETURN_IF_ERROR(parse_status);
  storage::ScanOptions oldest;
  oldest.limit = 1;
  COFFER_RETURN_IF_ERROR(db->Scan(schema::kChanges, oldest, record(first)));
  COFFER_RETURN_IF_ERROR(parse_status);

  std::unique_ptr<LocalChangeLog> log(new LocalChangeLog(db, capacity));
  absl::MutexLock lock(&log->mu_);
  if (last.has_value()) {
    log->next_ = *last + 1;
    log->watermark_ = *last;
    log->oldest_ = first.value_or(*last);
  }
  return log;
}

LocalChangeLog::~LocalChangeLog() = default;

LocalChangeLog::Ticket LocalChangeLog::Reserve() {
  absl::MutexLock lock(&mu_);
  Ticket ticket;
  ticket.sequence = next_++;
  in_flight_.insert(ticket.sequence);
  return ticket;
}

void LocalChangeLog::Stage(storage::Transaction& txn, const Ticket& ticket,
                           const coffer::v1::ChangeEvent& event) {
  COFFER_CHECK(ticket.sequence != 0, "staging an unreserved change-log ticket");
  coffer::v1::ChangeEvent stored = event;
  stored.clear_position();  // The key is the position.
  txn.Put(schema::kChanges, Key(ticket.sequence), stored.SerializeAsString());
}

void LocalChangeLog::Finish(const Ticket& ticket) {
  {
    absl::MutexLock lock(&mu_);
    const size_t erased = in_flight_.erase(ticket.sequence);
    COFFER_CHECK(erased == 1, "change-log ticket finished twice or never reserved");
    const uint64_t watermark = in_flight_.empty() ? next_ - 1 : *in_flight_.begin() - 1;
    if (watermark <= watermark_) return;
    watermark_ = watermark;
    if (oldest_ == 0) oldest_ = 1;  // The log was empty; everything from 1 on is kept.
  }
  Publish();
}

void ChangeLog::Publish() {
  std::vector<std::pair<uint64_t, std::function<void()>>> to_call;
  const std::thread::id self = std::this_thread::get_id();
  {
    absl::MutexLock lock(&subscribers_mu_);
    to_call.reserve(subscribers_.size());
    for (const auto& [id, fn] : subscribers_) {
      to_call.emplace_back(id, fn);
      running_.emplace(id, self);
    }
  }
  for (const auto& [id, fn] : to_call) {
    fn();
    absl::MutexLock lock(&subscribers_mu_);
    auto range = running_.equal_range(id);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == self) {
        running_.erase(it);
        break;
      }
    }
  }
}

uint64_t LocalChangeLog::Watermark() const {
  absl::MutexLock lock(&mu_);
  return watermark_;
}

uint64_t LocalChangeLog::Oldest() const {
  absl::MutexLock lock(&mu_);
  return oldest_;
}

absl::StatusOr<std::vector<coffer::v1::ChangeEvent>> LocalChangeLog::Read(uint64_t after,
                                                                          size_t limit) const {
  uint64_t watermark;
  auto trimmed = [this, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (after + 1 < oldest_ && after < watermark_) {
      return absl::OutOfRangeError(absl::StrCat(
          "position ", after, " is older than the retained change log (oldest ", oldest_, ")"));
    }
    return absl::OkStatus();
  };
  {
    absl::MutexLock lock(&mu_);
    COFFER_RETURN_IF_ERROR(trimmed());
    watermark = watermark_;
  }
  std::vector<coffer::v1::ChangeEvent> events;
  if (after >= watermark || limit == 0) return events;

  storage::ScanOptions scan;
  scan.start_after = Key(after);
  scan.end_before = Key(watermark + 1);
  scan.limit = limit;
  absl::Status parse_status;
  COFFER_RETURN_IF_ERROR(
      db_->Scan(schema::kChanges, scan, [&](absl::string_view key, absl::string_view value) {
        auto sequence = SequenceOf(key);
        if (!sequence.ok()) {
          parse_status = sequence.status();
          return false;
        }
        coffer::v1::ChangeEvent event;
        if (!event.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse_status =
              absl::DataLossError(absl::StrCat("corrupt change event at position ", *sequence));
          return false;
        }
        event.set_position(EncodePosition(*sequence));
        events.push_back(std::move(event));
        return true;
      }));
  COFFER_RETURN_IF_ERROR(parse_status);
  // Trim moves oldest_ before deleting anything: if it moved past `after`
  // during the scan, the scan may have missed trimmed events.
  absl::MutexLock lock(&mu_);
  COFFER_RETURN_IF_ERROR(trimmed());
  return events;
}

absl::StatusOr<uint64_t> LocalChangeLog::Trim() {
  absl::MutexLock trim_lock(&trim_mu_);
  uint64_t watermark;
  uint64_t previous_oldest;
  {
    absl::MutexLock lock(&mu_);
    watermark = watermark_;
    previous_oldest = oldest_;
  }
  if (watermark < capacity_) return 0;
  uint64_t cutoff = watermark - capacity_ + 1;  // Keys below are deleted.

  // Always keep the newest event, so that positions continue after a restart
  // even when the newest positions were abandoned tickets.
  std::optional<uint64_t> newest;
  absl::Status parse_status;
  storage::ScanOptions last;
  last.reverse = true;
  last.limit = 1;
  last.end_before = Key(watermark + 1);
  COFFER_RETURN_IF_ERROR(
      db_->Scan(schema::kChanges, last, [&](absl::string_view key, absl::string_view) {
        auto sequence = SequenceOf(key);
        if (sequence.ok()) {
          newest = *sequence;
        } else {
          parse_status = sequence.status();
        }
        return false;
      }));
  COFFER_RETURN_IF_ERROR(parse_status);
  if (!newest.has_value()) return 0;
  cutoff = std::min(cutoff, *newest);
  if (cutoff <= previous_oldest) return 0;
  {
    absl::MutexLock lock(&mu_);
    oldest_ = std::max(oldest_, cutoff);  // Before deleting: see Read.
  }

  uint64_t deleted = 0;
  // Resume point of the next chunk: after the last key an earlier Trim
  // deleted ("" = the first key).
  std::string from = trimmed_below_ > 1 ? Key(trimmed_below_ - 1) : std::string();
  for (;;) {
    storage::ScanOptions scan;
    scan.start_after = from;
    scan.end_before = Key(cutoff);
    scan.limit = kTrimChunk;
    storage::WriteBatch batch;
    COFFER_RETURN_IF_ERROR(
        db_->Scan(schema::kChanges, scan, [&](absl::string_view key, absl::string_view) {
          batch.Delete(schema::kChanges, key);
          from = std::string(key);
          return true;
        }));
    if (batch.empty()) break;
    COFFER_RETURN_IF_ERROR(db_->Write(batch));
    deleted += batch.size();
    if (batch.size() < kTrimChunk) break;
  }
  trimmed_below_ = cutoff;
  return deleted;
}

std::unique_ptr<ChangeLog::Subscription> ChangeLog::Subscribe(std::function<void()> on_advance) {
  absl::MutexLock lock(&subscribers_mu_);
  const uint64_t id = next_subscriber_++;
  subscribers_.emplace(id, std::move(on_advance));
  return std::unique_ptr<Subscription>(new Subscription(this, id));
}

void ChangeLog::Unsubscribe(uint64_t id) {
  const std::thread::id self = std::this_thread::get_id();
  absl::MutexLock lock(&subscribers_mu_);
  subscribers_.erase(id);
  // Calls already under way on other threads finish first, so the callback's
  // captures may be destroyed once this returns. A call on this thread (the
  // callback itself unsubscribing) is not waited for.
  auto idle = [this, id, self]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(subscribers_mu_) {
    auto range = running_.equal_range(id);
    return std::all_of(range.first, range.second,
                       [self](const auto& entry) { return entry.second == self; });
  };
  subscribers_mu_.Await(absl::Condition(&idle));
}

ChangeLog::Subscription::~Subscription() { log_->Unsubscribe(id_); }

std::string ChangeLog::EncodePosition(uint64_t position) { return absl::StrCat(position); }

absl::StatusOr<uint64_t> ChangeLog::DecodePosition(absl::string_view field,
                                                   absl::string_view text) {
  constexpr char kProblem[] = "must be a position received in a ChangeEvent (decimal digits)";
  if (text.empty() || text.size() > 20 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    return InvalidField(field, kProblem);
  }
  uint64_t position = 0;
  if (!absl::SimpleAtoi(text, &position)) return InvalidField(field, kProblem);
  return position;
}

absl::Status CommitWithEvent(storage::Database* db, ChangeLog* log, Clock* clock,
                             coffer::v1::ResourceKind resource, const EventfulChange& fn) {
  return CommitWithEvents(
      db, log, clock, resource, 1,
      [&](storage::Transaction& txn, std::vector<coffer::v1::ChangeEvent>* events) {
        coffer::v1::ChangeEvent event;
        COFFER_RETURN_IF_ERROR(fn(txn, &event));
        if (event.kind() != coffer::v1::CHANGE_KIND_UNSPECIFIED)
          events->push_back(std::move(event));
        return absl::OkStatus();
      });
}

absl::Status CommitWithEvents(storage::Database* db, ChangeLog* log, Clock* clock,
                              coffer::v1::ResourceKind resource, size_t max_events,
                              const EventfulChanges& fn) {
  if (log != nullptr) return log->Commit(db, clock, resource, max_events, fn);
  return db->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    std::vector<coffer::v1::ChangeEvent> events;
    return fn(txn, &events);
  });
}

absl::Status LocalChangeLog::Commit(storage::Database* db, Clock* clock,
                                    coffer::v1::ResourceKind resource, size_t max_events,
                                    const EventfulChanges& fn) {
  std::vector<Ticket> tickets;
  tickets.reserve(max_events);
  for (size_t i = 0; i < max_events; ++i) tickets.push_back(Reserve());
  absl::Status s = db->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    std::vector<coffer::v1::ChangeEvent> events;
    COFFER_RETURN_IF_ERROR(fn(txn, &events));
    COFFER_CHECK(events.size() <= max_events, "more change events than reserved");
    const absl::Time now = clock->Now();
    for (size_t i = 0; i < events.size(); ++i) {
      events[i].set_resource_kind(resource);
      *events[i].mutable_time() = ToProto(now);
      Stage(txn, tickets[i], events[i]);
    }
    return absl::OkStatus();
  });
  for (const Ticket& t : tickets) Finish(t);
  return s;
}

}  // namespace coffer::store
