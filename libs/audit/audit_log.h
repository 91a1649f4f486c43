// audit_log.h: the tamper-evident, durable, fail-closed audit log every
// service writes one record per request to.
//
//   coffer::audit::AuditOptions opts;
//   opts.dir = data_dir + "/audit";   // created 0700
//   opts.service = "store";           // files store-audit-000001.jsonl, ...
//   COFFER_ASSIGN_OR_RETURN(std::unique_ptr<coffer::audit::AuditLog> audit,
//                           coffer::audit::AuditLog::Open(opts));
//
//   coffer::audit::Record r;
//   r.request_id = request_id;
//   r.principal = "spiffe://coffer.local/app/catagram";
//   r.action = "secretsmanager:GetSecretValue";
//   r.resource = arn;
//   r.code = "OK";
//   r.peer = "ipv4:127.0.0.1:50312";
//   audit->Append(std::move(r), [reactor](absl::Status s) {
//     // OK: written and fdatasync'd. UNAVAILABLE: fail the request.
//   });
//
//   coffer::audit::VerifyResult v = coffer::audit::Verify({"store-audit-000001.jsonl"});
//   // v.ok, or v.bad_record / v.file / v.reason of the first broken record
//   // (`cofferctl audit verify FILE...` prints the same).
//
// Format (record_format.h): one compact JSON object per line, fields in a
// fixed order, never a secret value: only the Record's fields plus "seq",
// "service", "prev" and "hash". hash = hex BLAKE2b(prev + "\n" + the line up
// to `,"hash":`), prev = the hash of the line before; the first file starts
// with a genesis record (seq 0, prev 64 zeros), every later file with a
// "continue" record. Editing, deleting, inserting or reordering lines breaks
// the chain at that line. Cutting records off the END of the newest file
// cannot be told from a log that simply ended there (a chain has no
// checkpoint): compare records_written() / the `records` count of Verify
// with what was expected.
//
// Durability and failure:
//  - One writer thread takes everything queued, write()s it at once (group
//    commit), fdatasync()s once and then runs the callbacks: OK means the
//    record is on disk. Records appended with Durability::kWritten (reads)
//    get their OK between the write() and the fdatasync.
//  - A failed write or fdatasync is truncated back to the last durable size;
//    the batch's callbacks get UNAVAILABLE ("audit log unavailable: ..."),
//    healthy() turns false, and the next batch tries again (true again
//    after the next success).
//  - A record whose callback has not run within write_timeout (a stuck
//    disk) gets UNAVAILABLE from a timer thread; if the stuck write finishes
//    later the record is in the log anyway (the log may over-report a
//    request, never under-report one), and its callback is not run again.
//    While a write is stuck past write_timeout, Append fails new records at
//    once (on the timer thread) instead of queueing them.
//  - `done` runs exactly once, on the writer or the timer thread, never
//    under the log's lock, never on the caller's thread; it must not block
//    on the log itself (AppendAndWait from `done` deadlocks).
//  - Append may be called from any thread; all calls must finish before the
//    destructor starts. The destructor writes what is queued and joins the
//    threads (a write stuck in the kernel forever keeps it waiting).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"

namespace coffer::audit {

struct Record {
  absl::Time time = absl::InfinitePast();  // filled by Append when InfinitePast()
  std::string request_id;
  std::string principal;  // the caller's SPIFFE ID
  std::string action;     // e.g. "secretsmanager:GetSecretValue"
  std::string resource;   // e.g. a secret ARN
  std::string code;       // gRPC code name, e.g. "OK", "PERMISSION_DENIED"
  std::string peer;       // source address, e.g. "ipv4:127.0.0.1:5000"
  std::string detail;     // optional short reason (never a value); omitted when empty
};

// Test seam: the calls the writer makes on the open file, so tests can fail
// or stall them. The default is the system calls.
class AuditFileOps {
 public:
  virtual ~AuditFileOps() = default;
  virtual ssize_t Write(int fd, const void* data, size_t size);
  virtual int Fdatasync(int fd);
  virtual int Ftruncate(int fd, off_t size);
};

struct AuditOptions {
  std::string dir;      // created 0700 if missing
  std::string service;  // "store", "kms", ...: files <service>-audit-<6 digits>.jsonl
  uint64_t max_file_bytes = 64 << 20;  // rotate to the next file past this size
  // A record not durable by then fails UNAVAILABLE (stuck disk). Measured in
  // real time, not on `clock`.
  absl::Duration write_timeout = absl::Seconds(2);
  Clock* clock = nullptr;            // record times; default RealClock()
  AuditFileOps* file_ops = nullptr;  // tests only; default the system calls
};

class AuditLog {
 public:
  // Opens the newest file in dir and resumes the chain from its last
  // complete record (a torn last line from a crash is truncated away and
  // logged); creates the first file with a genesis record when dir has
  // none. Holds an flock on dir while open (one writer per directory).
  // Errors: INVALID_ARGUMENT for bad options; UNAVAILABLE (naming the path
  // and errno) when the directory or file cannot be created, opened or
  // written; FAILED_PRECONDITION when another AuditLog holds dir; DATA_LOSS
  // when the last record is not a valid record.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditOptions options);
  ~AuditLog();  // writes what is queued, stops the threads
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // How far a record must get before its `done` runs with OK.
  enum class Durability {
    // write() and fdatasync(): on disk. For calls that changed something.
    kSynced,
    // write() only: in the file (the kernel's page cache); the fdatasync of
    // the same batch follows at once. For calls that changed nothing
    // (reads): they need not wait for the disk. A crash of the machine (not
    // of the process) in between, or a failed fdatasync (the batch is
    // truncated away), can lose such records after their calls were
    // answered.
    kWritten,
  };

  // Queues `record`; `done` runs exactly once with OK once the record is
  // written (and, for kSynced, fdatasync'd), or UNAVAILABLE ("audit log
  // unavailable: ...") when it could not be written within write_timeout.
  // Records queued together share one write and one fdatasync.
  void Append(Record record, std::function<void(absl::Status)> done,
              Durability durability = Durability::kSynced);
  absl::Status AppendAndWait(Record record);  // blocks at most about write_timeout

  // For metrics: records in the log (coffer_audit_records_total) and records
  // whose `done` got UNAVAILABLE (coffer_audit_write_failures_total). A
  // record that timed out and was written later counts in both.
  uint64_t records_written() const { return records_written_.load(); }
  uint64_t write_failures() const { return write_failures_.load(); }
  // False after a failed or timed-out write, true again after the next
  // successful one.
  bool healthy() const { return healthy_.load(); }
  std::string current_file() const;  // full path

 private:
  struct Pending;
  using PendingPtr = std::shared_ptr<Pending>;

  explicit AuditLog(AuditOptions options);
  absl::Status Start();  // Open's work before the threads start
  void WriterLoop();
  void TimerLoop();
  // Writer thread only (and Start): writes `batch` after the continue
  // record a new file still needs; advances the chain only on success.
  // `on_written` runs after write() succeeded, before fdatasync.
  absl::Status WriteBatch(const std::vector<PendingPtr>& batch,
                          const std::function<void()>& on_written = nullptr);
  absl::Status WriteDurably(const std::string& bytes,
                            const std::function<void()>& on_written = nullptr);
  absl::Status Rotate();
  void Complete(Pending& pending, const absl::Status& status);

  const AuditOptions options_;
  Clock* const clock_;
  AuditFileOps* const ops_;

  // Writer-thread state (set up by Start before the threads exist).
  int dir_fd_ = -1;
  int lock_fd_ = -1;  // <dir>/<service>-audit.lock, flock'd while open
  int fd_ = -1;
  uint64_t file_number_ = 0;
  uint64_t durable_size_ = 0;  // size of the current file after the last good write
  bool dirty_ = false;         // bytes past durable_size_ may be on disk
  uint64_t next_seq_ = 0;
  std::string last_hash_;
  std::string needs_continue_from_;  // previous file's name while the new file has no record

  mutable absl::Mutex mu_;
  absl::CondVar writer_wake_;
  absl::CondVar timer_wake_;
  std::deque<PendingPtr> queue_ ABSL_GUARDED_BY(mu_);      // for the writer
  std::deque<PendingPtr> deadlines_ ABSL_GUARDED_BY(mu_);  // not yet done, in deadline order
  std::vector<PendingPtr> refused_ ABSL_GUARDED_BY(mu_);   // to fail at once (stalled)
  bool writing_ ABSL_GUARDED_BY(mu_) = false;              // a batch is being written
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;              // that batch outlived write_timeout
  bool stop_writer_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_timer_ ABSL_GUARDED_BY(mu_) = false;
  std::string current_file_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> records_written_{0};
  std::atomic<uint64_t> write_failures_{0};
  std::atomic<bool> healthy_{true};
  std::thread writer_;
  std::thread timer_;
};

struct VerifyResult {
  bool ok = false;
  uint64_t records = 0;     // records checked and found good (genesis included)
  uint64_t bad_record = 0;  // 1-based number across all files of the first broken record; 0 if ok
  std::string file;         // file holding it
  // "not JSON", "unexpected fields", "hash mismatch", "prev does not link",
  // "sequence gap", "missing genesis", "unexpected genesis", "missing
  // continue record", "unexpected continue record", "incomplete last line",
  // "empty file", "no files", "cannot read: <error>".
  std::string reason;
};

// Recomputes the chain over `files` in order (the first must start with
// genesis, each later one with the continue record linking to the one
// before). A last line without its newline is broken ("incomplete last
// line"): AuditLog::Open repairs that, Verify only reports it.
VerifyResult Verify(const std::vector<std::string>& files);

}  // namespace coffer::audit
