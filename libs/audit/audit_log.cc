#include "libs/audit/audit_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/audit/record_format.h"
#include "libs/common/log.h"
#include "libs/common/process.h"

namespace coffer::audit {

using SteadyTime = std::chrono::steady_clock::time_point;

struct AuditLog::Pending {
  Record record;
  Durability durability = Durability::kSynced;
  std::function<void(absl::Status)> done;
  SteadyTime deadline;
  std::atomic<bool> completed{false};
};

namespace {

constexpr char kComponent[] = "audit";
constexpr size_t kTailChunk = 64 * 1024;

absl::Status Errno(absl::string_view what, const std::string& path, int err) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// Where the chain stands at the end of a file.
struct ChainHead {
  uint64_t seq = 0;
  std::string hash;
};

// Offset of the last '\n' before `end`, or -1.
absl::StatusOr<int64_t> FindLastNewline(int fd, const std::string& path, uint64_t end) {
  std::string chunk;
  while (end > 0) {
    const uint64_t start = end > kTailChunk ? end - kTailChunk : 0;
    chunk.resize(end - start);
    size_t got = 0;
    while (got < chunk.size()) {
      ssize_t n = ::pread(fd, chunk.data() + got, chunk.size() - got, start + got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("read", path, errno);
      if (n == 0) return absl::DataLossError(absl::StrCat(path, " shrank while being read"));
      got += static_cast<size_t>(n);
    }
    const size_t at = chunk.rfind('\n');
    if (at != std::string::npos) return static_cast<int64_t>(start + at);
    end = start;
  }
  return -1;
}

// The chain head of the file open as `fd` (size `*size`); nullopt when it
// has no record. With `repair`, a last line without its newline (torn by a
// crash) is truncated away first and *size updated.
absl::StatusOr<std::optional<ChainHead>> ReadHead(int fd, const std::string& path, bool repair,
                                                  uint64_t* size) {
  if (*size == 0) return std::optional<ChainHead>();
  absl::StatusOr<int64_t> last = FindLastNewline(fd, path, *size);
  if (!last.ok()) return last.status();
  if (static_cast<uint64_t>(*last + 1) != *size) {
    const uint64_t keep = static_cast<uint64_t>(*last + 1);
    if (!repair) {
      return absl::DataLossError(absl::StrCat(path, " ends with an incomplete line"));
    }
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) return Errno("truncate", path, errno);
    if (::fdatasync(fd) != 0) return Errno("fdatasync", path, errno);
    log::Warn(kComponent, "truncated a torn last record (crash during a write)",
              {{"file", path}, {"bytes", absl::StrCat(*size - keep)}});
    *size = keep;
    if (keep == 0) return std::optional<ChainHead>();
  }
  absl::StatusOr<int64_t> before = FindLastNewline(fd, path, *size - 1);
  if (!before.ok()) return before.status();
  const uint64_t start = static_cast<uint64_t>(*before + 1);
  std::string line(*size - 1 - start, '\0');
  size_t got = 0;
  while (got < line.size()) {
    ssize_t n = ::pread(fd, line.data() + got, line.size() - got, start + got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("read", path, n < 0 ? errno : EIO);
    got += static_cast<size_t>(n);
  }
  absl::StatusOr<ChainLink> link = CheckLine(line);
  if (!link.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": last record is broken (",
                                            link.status().message(),
                                            "); check it with `cofferctl audit verify`"));
  }
  return ChainHead{link->seq, link->hash};
}

absl::StatusOr<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

// Numbers of the service's files in `dir`, ascending.
absl::StatusOr<std::vector<uint64_t>> ListFiles(const std::string& dir,
                                                const std::string& service) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Errno("open directory", dir, errno);
  std::vector<uint64_t> numbers;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    uint64_t n;
    if (ParseAuditFileName(e->d_name, service, &n)) numbers.push_back(n);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return Errno("read directory", dir, err);
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

bool ValidServiceName(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return s != "." && s != "..";
}

absl::Duration Until(SteadyTime t) {
  return absl::FromChrono(t - std::chrono::steady_clock::now());
}

AuditFileOps* SystemFileOps() {
  static auto* const kOps = new AuditFileOps();
  return kOps;
}

}  // namespace

ssize_t AuditFileOps::Write(int fd, const void* data, size_t size) {
  return ::write(fd, data, size);
}
int AuditFileOps::Fdatasync(int fd) { return ::fdatasync(fd); }
int AuditFileOps::Ftruncate(int fd, off_t size) { return ::ftruncate(fd, size); }

AuditLog::AuditLog(AuditOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      ops_(options_.file_ops != nullptr ? options_.file_ops : SystemFileOps()) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("audit log: dir is empty");
  if (!ValidServiceName(options.service)) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit log: bad service name '", options.service, "'"));
  }
  if (options.max_file_bytes == 0 || options.write_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "audit log: max_file_bytes and write_timeout must be positive");
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  if (absl::Status s = log->Start(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("audit log: ", s.message()));
  }
  return log;
}

absl::Status AuditLog::Start() {
  const std::string& dir = options_.dir;
  if (absl::Status s = MakeDirectories(dir, 0700); !s.ok()) return s;
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return Errno("open directory", dir, errno);
  // One writer per service and directory: a second process would
  // interleave chains. Services may share a directory (their files differ).
  const std::string lock_path = dir + "/" + options_.service + "-audit.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Errno("open", lock_path, errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, " is in use by another ", options_.service, " audit log (another process?)"));
    }
    return Errno("lock", lock_path, errno);
  }
  absl::StatusOr<std::vector<uint64_t>> numbers = ListFiles(dir, options_.service);
  if (!numbers.ok()) return numbers.status();

  std::optional<ChainHead> head;
  if (numbers->empty()) {
    file_number_ = 1;
  } else {
    file_number_ = numbers->back();
    const std::string path = absl::StrCat(dir, "/", AuditFileName(options_.service, file_number_));
    fd_ = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) return Errno("open", path, errno);
    absl::StatusOr<uint64_t> size = FileSize(fd_, path);
    if (!size.ok()) return size.status();
    durable_size_ = *size;
    absl::StatusOr<std::optional<ChainHead>> newest = ReadHead(fd_, path, true, &durable_size_);
    if (!newest.ok()) return newest.status();
    head = *newest;
    if (!head.has_value() && numbers->size() > 1) {
      // A file created by a rotation whose first write never made it: the
      // chain continues from the file before it.
      const uint64_t prev_number = (*numbers)[numbers->size() - 2];
      const std::string prev_name = AuditFileName(options_.service, prev_number);
      const std::string prev_path = absl::StrCat(dir, "/", prev_name);
      const int prev_fd = ::open(prev_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (prev_fd < 0) return Errno("open", prev_path, errno);
      absl::StatusOr<uint64_t> prev_size = FileSize(prev_fd, prev_path);
      absl::StatusOr<std::optional<ChainHead>> prev =
          prev_size.ok() ? ReadHead(prev_fd, prev_path, false, &*prev_size)
                         : absl::StatusOr<std::optional<ChainHead>>(prev_size.status());
      ::close(prev_fd);
      if (!prev.ok()) return prev.status();
      if (!prev->has_value()) {
        return absl::DataLossError(absl::StrCat(prev_path, " is empty"));
      }
      head = *prev;
      needs_continue_from_ = prev_name;
    }
  }
  const std::string path = absl::StrCat(dir, "/", AuditFileName(options_.service, file_number_));
  if (fd_ < 0) {
    fd_ = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) return Errno("create", path, errno);
    if (::fsync(dir_fd_) != 0) return Errno("fsync directory", dir, errno);
  }
  {
    absl::MutexLock lock(&mu_);
    current_file_ = path;
  }
  if (head.has_value()) {
    next_seq_ = head->seq + 1;
    last_hash_ = head->hash;
  } else {
    // A new log (or a first file whose genesis never made it).
    std::string hash;
    const std::string line =
        SealLine(GenesisBody(clock_->Now(), options_.service), kZeroHash, &hash) + "\n";
    if (absl::Status s = WriteDurably(line); !s.ok()) return s;
    next_seq_ = 1;
    last_hash_ = hash;
    log::Info(kComponent, "started a new audit log", {{"file", path}});
  }

  writer_ = std::thread([this] { WriterLoop(); });
  timer_ = std::thread([this] { TimerLoop(); });
  return absl::OkStatus();
}

AuditLog::~AuditLog() {
  if (writer_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stop_writer_ = true;
      writer_wake_.Signal();
    }
    writer_.join();  // writes everything queued first
  }
  if (timer_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stop_timer_ = true;
      timer_wake_.Signal();
    }
    timer_.join();
  }
  // Nothing should be left; never leave a callback unrun.
  std::vector<PendingPtr> left;
  {
    absl::MutexLock lock(&mu_);
    left.assign(deadlines_.begin(), deadlines_.end());
    left.insert(left.end(), refused_.begin(), refused_.end());
    deadlines_.clear();
    refused_.clear();
  }
  for (const PendingPtr& p : left) {
    Complete(*p, absl::UnavailableError("audit log unavailable: closed"));
  }
  if (fd_ >= 0) ::close(fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string AuditLog::current_file() const {
  absl::MutexLock lock(&mu_);
  return current_file_;
}

void AuditLog::Append(Record record, std::function<void(absl::Status)> done,
                      Durability durability) {
  auto pending = std::make_shared<Pending>();
  if (record.time == absl::InfinitePast()) record.time = clock_->Now();
  pending->record = std::move(record);
  pending->durability = durability;
  pending->done = std::move(done);
  pending->deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.write_timeout);
  absl::MutexLock lock(&mu_);
  if (stalled_) {
    // The writer is stuck past the timeout: fail at once, on the timer.
    refused_.push_back(std::move(pending));
    timer_wake_.Signal();
    return;
  }
  if (deadlines_.empty()) timer_wake_.Signal();  // the timer may be waiting without a deadline
  deadlines_.push_back(pending);
  queue_.push_back(std::move(pending));
  writer_wake_.Signal();
}

absl::Status AuditLog::AppendAndWait(Record record) {
  absl::Notification written;
  absl::Status result;
  Append(std::move(record), [&](absl::Status s) {
    result = std::move(s);
    written.Notify();
  });
  written.WaitForNotification();
  return result;
}

void AuditLog::Complete(Pending& pending, const absl::Status& status) {
  if (pending.completed.exchange(true)) return;
  if (!status.ok()) write_failures_.fetch_add(1);
  std::function<void(absl::Status)> done = std::move(pending.done);
  pending.done = nullptr;
  if (done) done(status);
}

void AuditLog::WriterLoop() {
  pthread_setname_np(pthread_self(), "audit-writer");
  while (true) {
    std::vector<PendingPtr> batch;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stop_writer_) writer_wake_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, and everything is written
      for (PendingPtr& p : queue_) {
        if (!p->completed.load()) batch.push_back(std::move(p));  // else: timed out waiting
      }
      queue_.clear();
      writing_ = !batch.empty();
    }
    if (batch.empty()) continue;
    // Records that need only be written are answered between write() and
    // fdatasync (the batch's other records wait for the sync).
    const absl::Status written = WriteBatch(batch, [&] {
      for (const PendingPtr& p : batch) {
        if (p->durability == Durability::kWritten) Complete(*p, absl::OkStatus());
      }
    });
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      stalled_ = false;
    }
    if (written.ok()) {
      records_written_.fetch_add(batch.size());
      if (!healthy_.exchange(true)) log::Info(kComponent, "audit writes work again");
      for (const PendingPtr& p : batch) Complete(*p, absl::OkStatus());
    } else {
      // Logged once per outage, not per batch.
      if (healthy_.exchange(false)) {
        log::Error(kComponent, "audit write failed; requests fail until a write succeeds",
                   {{"error", written.ToString()}, {"records", absl::StrCat(batch.size())}});
      }
      const absl::Status failed =
          absl::UnavailableError(absl::StrCat("audit log unavailable: ", written.message()));
      for (const PendingPtr& p : batch) Complete(*p, failed);
    }
  }
}

void AuditLog::TimerLoop() {
  pthread_setname_np(pthread_self(), "audit-timer");
  const absl::Status timed_out =
      absl::UnavailableError(absl::StrCat("audit log unavailable: record not written within ",
                                          absl::FormatDuration(options_.write_timeout)));
  const absl::Status refused =
      absl::UnavailableError("audit log unavailable: a write is stuck past the timeout");
  absl::MutexLock lock(&mu_);
  while (!stop_timer_) {
    std::vector<PendingPtr> expired;
    std::vector<PendingPtr> now_refused;
    now_refused.swap(refused_);
    const SteadyTime now = std::chrono::steady_clock::now();
    // Deadlines are in Append order: all the same timeout after a
    // monotonic clock.
    while (!deadlines_.empty() &&
           (deadlines_.front()->completed.load() || deadlines_.front()->deadline <= now)) {
      if (!deadlines_.front()->completed.load()) expired.push_back(deadlines_.front());
      deadlines_.pop_front();
    }
    if (!expired.empty() || !now_refused.empty()) {
      // A record the writer already holds timing out means the write is stuck.
      if (!expired.empty() && writing_) stalled_ = true;
      mu_.Unlock();
      if (!expired.empty() && healthy_.exchange(false)) {
        log::Error(kComponent, "audit write timed out; requests fail until a write succeeds",
                   {{"timeout", absl::FormatDuration(options_.write_timeout)}});
      }
      for (const PendingPtr& p : expired) Complete(*p, timed_out);
      for (const PendingPtr& p : now_refused) Complete(*p, refused);
      mu_.Lock();
      continue;
    }
    if (deadlines_.empty()) {
      timer_wake_.Wait(&mu_);
    } else {
      timer_wake_.WaitWithTimeout(&mu_, Until(deadlines_.front()->deadline));
    }
  }
}

absl::Status AuditLog::WriteBatch(const std::vector<PendingPtr>& batch,
                                  const std::function<void()>& on_written) {
  const std::string path = current_file();
  if (dirty_) {
    // A failed write may have left part of a batch behind.
    if (ops_->Ftruncate(fd_, static_cast<off_t>(durable_size_)) != 0) {
      return Errno("truncate", path, errno);
    }
    dirty_ = false;
  }
  if (durable_size_ >= options_.max_file_bytes && needs_continue_from_.empty()) {
    if (absl::Status s = Rotate(); !s.ok()) return s;
  }
  uint64_t seq = next_seq_;
  std::string prev = last_hash_;
  std::string bytes;
  std::string hash;
  if (!needs_continue_from_.empty()) {
    bytes +=
        SealLine(ContinueBody(seq, clock_->Now(), options_.service, needs_continue_from_, prev),
                 prev, &hash);
    bytes += '\n';
    prev = hash;
    ++seq;
  }
  for (const PendingPtr& p : batch) {
    bytes += SealLine(RecordBody(seq, options_.service, p->record, prev), prev, &hash);
    bytes += '\n';
    prev = hash;
    ++seq;
  }
  if (absl::Status s = WriteDurably(bytes, on_written); !s.ok()) return s;
  next_seq_ = seq;
  last_hash_ = prev;
  needs_continue_from_.clear();
  return absl::OkStatus();
}

absl::Status AuditLog::WriteDurably(const std::string& bytes,
                                    const std::function<void()>& on_written) {
  const std::string path = current_file();
  absl::Status failed;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ops_->Write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed = Errno("write", path, n < 0 ? errno : EIO);
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (failed.ok() && on_written) on_written();
  if (failed.ok() && ops_->Fdatasync(fd_) != 0) failed = Errno("fdatasync", path, errno);
  if (failed.ok()) {
    durable_size_ += bytes.size();
    return absl::OkStatus();
  }
  // Take back whatever part of the batch reached the file; if even that
  // fails, the next batch tries again before writing.
  dirty_ = ops_->Ftruncate(fd_, static_cast<off_t>(durable_size_)) != 0;
  return failed;
}

absl::Status AuditLog::Rotate() {
  const std::string previous = AuditFileName(options_.service, file_number_);
  const std::string name = AuditFileName(options_.service, file_number_ + 1);
  const std::string path = absl::StrCat(options_.dir, "/", name);
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("create", path, errno);
  if (::fsync(dir_fd_) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Errno("fsync directory", options_.dir, err);
  }
  ::close(fd_);
  fd_ = fd;
  ++file_number_;
  durable_size_ = 0;
  dirty_ = false;
  needs_continue_from_ = previous;
  {
    absl::MutexLock lock(&mu_);
    current_file_ = path;
  }
  log::Info(kComponent, "audit log rotated", {{"file", path}});
  return absl::OkStatus();
}

}  // namespace coffer::audit
