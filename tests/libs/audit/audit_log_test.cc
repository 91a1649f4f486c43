#include "libs/audit/audit_log.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/audit/record_format.h"
#include "libs/common/clock.h"
#include "tests/testing/test_env.h"

namespace coffer::audit {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::SizeIs;

Record MakeRecord(const std::string& id) {
  Record r;
  r.request_id = id;
  r.principal = "spiffe://coffer.local/app/catagram";
  r.action = "secretsmanager:GetSecretValue";
  r.resource = "arn:coffer:secretsmanager:local:000000000000:secret:app/db-" + id;
  r.code = "OK";
  r.peer = "ipv4:127.0.0.1:5000";
  return r;
}

AuditOptions Options(const std::string& dir) {
  AuditOptions o;
  o.dir = dir;
  o.service = "store";
  o.write_timeout = absl::Seconds(10);  // generous: only the timeout tests use short ones
  return o;
}

std::unique_ptr<AuditLog> OpenOrDie(const AuditOptions& o) {
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(o);
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? std::move(*log) : nullptr;
}

// The service's files in `dir`, in chain order.
std::vector<std::string> AuditFiles(const std::string& dir) {
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    uint64_t n;
    if (ParseAuditFileName(e.path().filename().string(), "store", &n)) {
      found.emplace_back(n, e.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::vector<std::string> Lines(const std::string& path) {
  std::string content = coffer::testing::ReadFile(path);
  std::vector<std::string> lines = absl::StrSplit(content, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

void WriteContent(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string content;
  for (const std::string& l : lines) absl::StrAppend(&content, l, "\n");
  WriteContent(path, content);
}

std::string Field(const std::string& line, const std::string& key) {
  absl::StatusOr<std::vector<FlatField>> fields = ParseFlatObject(line);
  if (!fields.ok()) return "<not JSON>";
  for (const FlatField& f : *fields) {
    if (f.key == key) return f.value;
  }
  return "<missing>";
}

std::vector<std::string> Keys(const std::string& line) {
  std::vector<std::string> keys;
  absl::StatusOr<std::vector<FlatField>> fields = ParseFlatObject(line);
  if (fields.ok()) {
    for (const FlatField& f : *fields) keys.push_back(f.key);
  }
  return keys;
}

// A log of genesis + `n` records (lines 1..n+1), closed.
std::string MakeLog(const std::string& dir, int n) {
  auto log = OpenOrDie(Options(dir));
  for (int i = 1; i <= n; ++i) {
    EXPECT_TRUE(log->AppendAndWait(MakeRecord(absl::StrCat("req-", i))).ok());
  }
  std::string file = log->current_file();
  log.reset();
  return file;
}

// Fault injection on the writer's file calls.
class FaultyOps : public AuditFileOps {
 public:
  ssize_t Write(int fd, const void* data, size_t size) override {
    {
      absl::MutexLock lock(&mu_);
      ++writes_;
      if (block_) {
        blocked_ = true;
        mu_.Await(absl::Condition(
            +[](bool* b) { return !*b; }, &block_));
        blocked_ = false;
      }
      if (write_errno_ != 0) {
        if (partial_ && !partial_done_ && size > 1) {
          partial_done_ = true;
          return AuditFileOps::Write(fd, data, size / 2);  // half a batch reaches the file
        }
        partial_done_ = false;
        errno = write_errno_;
        return -1;
      }
    }
    if (write_delay_ > absl::ZeroDuration()) absl::SleepFor(write_delay_);
    return AuditFileOps::Write(fd, data, size);
  }
  int Fdatasync(int fd) override {
    absl::MutexLock lock(&mu_);
    ++syncs_;
    mu_.Await(absl::Condition(
        +[](bool* b) { return !*b; }, &block_syncs_));
    if (sync_fails_) {
      errno = EIO;
      return -1;
    }
    return AuditFileOps::Fdatasync(fd);
  }

  void Block() {
    absl::MutexLock lock(&mu_);
    block_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    block_ = false;
  }
  bool blocked() {
    absl::MutexLock lock(&mu_);
    return blocked_;
  }
  void FailWrites(int err, bool partial) {
    absl::MutexLock lock(&mu_);
    write_errno_ = err;
    partial_ = partial;
    partial_done_ = false;
  }
  void BlockSyncs(bool block) {
    absl::MutexLock lock(&mu_);
    block_syncs_ = block;
  }
  void FailSyncs(bool fail) {
    absl::MutexLock lock(&mu_);
    sync_fails_ = fail;
  }
  int writes() {
    absl::MutexLock lock(&mu_);
    return writes_;
  }
  int syncs() {
    absl::MutexLock lock(&mu_);
    return syncs_;
  }
  absl::Duration write_delay_;  // set before use

 private:
  absl::Mutex mu_;
  bool block_ = false;
  bool blocked_ = false;
  int write_errno_ = 0;
  bool partial_ = false;
  bool partial_done_ = false;
  bool sync_fails_ = false;
  bool block_syncs_ = false;
  int writes_ = 0;
  int syncs_ = 0;
};

// ---- writing ----

TEST(AuditLogTest, NewLogStartsWithGenesisInPrivateFiles) {
  coffer::testing::TempDir tmp;
  FakeClock clock(absl::FromUnixMicros(1'700'000'000'123'456));
  AuditOptions o = Options(tmp.Join("var/audit"));  // parents created too
  o.clock = &clock;
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->current_file(), tmp.Join("var/audit/store-audit-000001.jsonl"));
  EXPECT_TRUE(log->healthy());

  struct stat st;
  ASSERT_EQ(::stat(tmp.Join("var/audit").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(log->current_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::vector<std::string> lines = Lines(log->current_file());
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_EQ(Field(lines[0], "type"), "genesis");
  EXPECT_EQ(Field(lines[0], "seq"), "0");
  EXPECT_EQ(Field(lines[0], "prev"), kZeroHash);
  EXPECT_EQ(Field(lines[0], "time"), "2023-11-14T22:13:20.123456Z");
  VerifyResult v = Verify({log->current_file()});
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.records, 1u);
}

TEST(AuditLogTest, RecordLineHasExactlyTheRecordFields) {
  coffer::testing::TempDir tmp;
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  AuditOptions o = Options(tmp.path());
  o.clock = &clock;
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);

  Record with_detail = MakeRecord("r1");
  with_detail.code = "PERMISSION_DENIED";
  // Nothing in a Record is special: a secret-looking detail is written as
  // given (callers must never put a value there).
  with_detail.detail = "password=hunter2 \"quoted\"\nsecond line \xff";
  ASSERT_TRUE(log->AppendAndWait(with_detail).ok());
  Record plain = MakeRecord("r2");
  plain.time = absl::FromUnixSeconds(1'000'000'000);  // a given time is kept
  ASSERT_TRUE(log->AppendAndWait(plain).ok());

  std::vector<std::string> lines = Lines(log->current_file());
  ASSERT_THAT(lines, SizeIs(3));  // one line per record despite the newline in detail
  EXPECT_THAT(Keys(lines[1]),
              ElementsAre("seq", "time", "service", "request_id", "principal", "action", "resource",
                          "code", "peer", "detail", "prev", "hash"));
  EXPECT_THAT(Keys(lines[2]),
              ElementsAre("seq", "time", "service", "request_id", "principal", "action", "resource",
                          "code", "peer", "prev", "hash"));  // no empty detail
  EXPECT_EQ(Field(lines[1], "seq"), "1");
  EXPECT_EQ(Field(lines[1], "time"), "2027-01-15T08:00:00.000000Z");  // from the clock
  EXPECT_EQ(Field(lines[1], "service"), "store");
  EXPECT_EQ(Field(lines[1], "request_id"), "r1");
  EXPECT_EQ(Field(lines[1], "principal"), "spiffe://coffer.local/app/catagram");
  EXPECT_EQ(Field(lines[1], "action"), "secretsmanager:GetSecretValue");
  EXPECT_EQ(Field(lines[1], "code"), "PERMISSION_DENIED");
  EXPECT_EQ(Field(lines[1], "peer"), "ipv4:127.0.0.1:5000");
  EXPECT_EQ(Field(lines[1], "detail"), "password=hunter2 \"quoted\"\nsecond line \xef\xbf\xbd");
  EXPECT_EQ(Field(lines[1], "prev"), Field(lines[0], "hash"));
  EXPECT_EQ(Field(lines[2], "time"), "2001-09-09T01:46:40.000000Z");
  EXPECT_EQ(Field(lines[2], "prev"), Field(lines[1], "hash"));
  // The documented hash: BLAKE2b(prev + "\n" + line up to ,"hash":).
  const std::string body = lines[2].substr(0, lines[2].find(",\"hash\":"));
  EXPECT_EQ(Field(lines[2], "hash"), ChainHash(Field(lines[2], "prev"), body));
  EXPECT_TRUE(Verify({log->current_file()}).ok);
  EXPECT_EQ(log->records_written(), 2u);
}

TEST(AuditLogTest, ConcurrentAppendsAreEachWrittenOnceAndVerify) {
  coffer::testing::TempDir tmp;
  auto log = OpenOrDie(Options(tmp.path()));
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(log->AppendAndWait(MakeRecord(absl::StrCat("seq-", i))).ok());
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!log->AppendAndWait(MakeRecord(absl::StrCat("t", t, "-", i))).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const int n = 10 + kThreads * kPerThread;
  EXPECT_EQ(log->records_written(), static_cast<uint64_t>(n));
  EXPECT_EQ(log->write_failures(), 0u);

  VerifyResult v = Verify({log->current_file()});
  EXPECT_TRUE(v.ok) << v.reason << " at " << v.bad_record;
  EXPECT_EQ(v.records, static_cast<uint64_t>(n + 1));
  std::map<std::string, int> seen;
  for (const std::string& line : Lines(log->current_file())) ++seen[Field(line, "request_id")];
  seen.erase("<missing>");  // genesis
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id;
}

TEST(AuditLogTest, RecordsQueuedTogetherShareOneWriteAndOneSync) {
  coffer::testing::TempDir tmp;
  FaultyOps ops;
  AuditOptions o = Options(tmp.path());
  o.file_ops = &ops;
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  const int writes_before = ops.writes();
  const int syncs_before = ops.syncs();

  ops.Block();
  absl::Notification first_done;
  log->Append(MakeRecord("first"), [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    first_done.Notify();
  });
  ASSERT_TRUE(coffer::testing::WaitFor([&] { return ops.blocked(); }, absl::Seconds(10)));
  // These queue up behind the blocked write...
  std::atomic<int> ok{0};
  for (int i = 0; i < 10; ++i) {
    log->Append(MakeRecord(absl::StrCat("group-", i)), [&](absl::Status s) {
      if (s.ok()) ++ok;
    });
  }
  ops.Release();
  ASSERT_TRUE(first_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(coffer::testing::WaitFor([&] { return ok.load() == 10; }, absl::Seconds(10)));
  // ...and go out in one write and one fdatasync.
  EXPECT_EQ(ops.writes() - writes_before, 2);
  EXPECT_EQ(ops.syncs() - syncs_before, 2);
  EXPECT_TRUE(Verify({log->current_file()}).ok);
}

TEST(AuditLogTest, DestructorWritesEverythingQueued) {
  coffer::testing::TempDir tmp;
  std::atomic<int> ok{0};
  std::string file;
  {
    auto log = OpenOrDie(Options(tmp.path()));
    ASSERT_NE(log, nullptr);
    file = log->current_file();
    for (int i = 0; i < 200; ++i) {
      log->Append(MakeRecord(absl::StrCat("r", i)), [&](absl::Status s) {
        if (s.ok()) ++ok;
      });
    }
  }  // no waiting: the destructor drains
  EXPECT_EQ(ok.load(), 200);
  VerifyResult v = Verify({file});
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.records, 201u);
}

// ---- tampering ----

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = MakeLog(tmp_.path(), 10);  // records 1 (genesis) .. 11
    lines_ = Lines(file_);
    ASSERT_THAT(lines_, SizeIs(11));
    ASSERT_TRUE(Verify({file_}).ok);
  }
  VerifyResult VerifyLines(const std::vector<std::string>& lines) {
    WriteLines(file_, lines);
    return Verify({file_});
  }

  coffer::testing::TempDir tmp_;
  std::string file_;
  std::vector<std::string> lines_;
};

TEST_F(TamperTest, AnyOneByteEditIsCaughtAtThatRecord) {
  constexpr int k = 6;  // record number (1-based), line index k-1
  const std::string original = lines_[k - 1];
  for (size_t i = 0; i < original.size(); ++i) {
    std::vector<std::string> lines = lines_;
    lines[k - 1][i] = static_cast<char>(original[i] ^ 0x01);
    VerifyResult v = VerifyLines(lines);
    ASSERT_FALSE(v.ok) << "byte " << i;
    EXPECT_EQ(v.bad_record, static_cast<uint64_t>(k)) << "byte " << i << ": " << v.reason;
    EXPECT_EQ(v.records, static_cast<uint64_t>(k - 1));
    EXPECT_EQ(v.file, file_);
  }
  // A readable edit of the resource names the reason.
  std::vector<std::string> lines = lines_;
  lines[k - 1] = absl::StrReplaceAll(lines[k - 1], {{"app/db-req-5", "app/db-req-X"}});
  ASSERT_NE(lines[k - 1], original);
  VerifyResult v = VerifyLines(lines);
  EXPECT_EQ(v.bad_record, static_cast<uint64_t>(k));
  EXPECT_EQ(v.reason, "hash mismatch");
}

TEST_F(TamperTest, EditingAndRehashingOneRecordBreaksTheNext) {
  // Someone who recomputes the edited record's hash still breaks the link.
  constexpr int k = 4;
  std::string body = lines_[k - 1].substr(0, lines_[k - 1].find(",\"hash\":"));
  body = absl::StrReplaceAll(body, {{"\"code\":\"OK\"", "\"code\":\"NOT_FOUND\""}});
  std::string hash;
  std::vector<std::string> lines = lines_;
  lines[k - 1] = SealLine(body, Field(lines_[k - 1], "prev"), &hash);
  VerifyResult v = VerifyLines(lines);
  EXPECT_EQ(v.bad_record, static_cast<uint64_t>(k + 1));
  EXPECT_EQ(v.reason, "prev does not link");
}

TEST_F(TamperTest, DeletedRecord) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 4);  // record 5
  VerifyResult v = VerifyLines(lines);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_record, 5u);
  EXPECT_EQ(v.reason, "prev does not link");
}

TEST_F(TamperTest, SwappedRecords) {
  std::vector<std::string> lines = lines_;
  std::swap(lines[6], lines[7]);  // records 7 and 8
  VerifyResult v = VerifyLines(lines);
  EXPECT_EQ(v.bad_record, 7u);
  EXPECT_EQ(v.reason, "prev does not link");
}

TEST_F(TamperTest, MiddleChunkRemoved) {
  // Whole records 4..6 gone.
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 3, lines.begin() + 6);
  VerifyResult v = VerifyLines(lines);
  EXPECT_EQ(v.bad_record, 4u);
  EXPECT_EQ(v.reason, "prev does not link");

  // A byte range from inside record 4 to inside record 7.
  std::string content = absl::StrJoin(lines_, "\n") + "\n";
  size_t from = 0;
  for (int i = 0; i < 3; ++i) from = content.find('\n', from) + 1;  // start of record 4
  size_t to = from;
  for (int i = 0; i < 3; ++i) to = content.find('\n', to) + 1;  // start of record 7
  content.erase(from + 40, (to + 40) - (from + 40));
  WriteContent(file_, content);
  v = Verify({file_});
  EXPECT_EQ(v.bad_record, 4u);
  EXPECT_FALSE(v.ok);
}

TEST_F(TamperTest, GenesisRemovedOrInsertedRecord) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin());
  VerifyResult v = VerifyLines(lines);
  EXPECT_EQ(v.bad_record, 1u);
  EXPECT_EQ(v.reason, "missing genesis");

  // A forged record with a consistent hash of its own, between 3 and 4.
  lines = lines_;
  Record forged = MakeRecord("forged");
  std::string hash;
  lines.insert(lines.begin() + 3, SealLine(RecordBody(3, "store", forged, Field(lines_[2], "hash")),
                                           Field(lines_[2], "hash"), &hash));
  v = VerifyLines(lines);
  EXPECT_EQ(v.bad_record, 5u);  // the forged one links; the real record 4 no longer does
  EXPECT_EQ(v.reason, "prev does not link");

  lines = lines_;
  lines.insert(lines.begin() + 3, "not json at all");
  v = VerifyLines(lines);
  EXPECT_EQ(v.bad_record, 4u);
  EXPECT_EQ(v.reason, "not JSON");
}

TEST_F(TamperTest, TailTruncation) {
  // What a chain without a checkpoint promises: cutting whole records off
  // the end verifies, with fewer records (compare with the expected count)...
  std::vector<std::string> lines(lines_.begin(), lines_.end() - 3);
  VerifyResult v = VerifyLines(lines);
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.records, 8u);
  // ...a cut inside a record is reported...
  std::string content = absl::StrJoin(lines_, "\n") + "\n";
  WriteContent(file_, content.substr(0, content.size() - 30));
  v = Verify({file_});
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_record, 11u);
  EXPECT_EQ(v.reason, "incomplete last line");
  // ...and an empty file is not a log.
  WriteContent(file_, "");
  v = Verify({file_});
  EXPECT_EQ(v.bad_record, 1u);
  EXPECT_EQ(v.reason, "missing genesis");
  EXPECT_EQ(Verify({}).reason, "no files");
  EXPECT_THAT(Verify({tmp_.Join("missing.jsonl")}).reason, HasSubstr("cannot read"));
}

// ---- files ----

TEST(AuditLogTest, RotatesBySizeAndReopenContinuesTheChain) {
  coffer::testing::TempDir tmp;
  AuditOptions o = Options(tmp.path());
  o.max_file_bytes = 2000;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(log->AppendAndWait(MakeRecord(absl::StrCat("a", i))).ok());
    }
  }
  std::vector<std::string> files = AuditFiles(tmp.path());
  ASSERT_GE(files.size(), 4u);
  EXPECT_THAT(files[1], HasSubstr("store-audit-000002.jsonl"));
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    // A file is rotated once past the limit: at most one record over.
    EXPECT_LT(std::filesystem::file_size(files[i]), 2000u + 600u) << files[i];
  }
  for (size_t i = 1; i < files.size(); ++i) {
    const std::string first = Lines(files[i])[0];
    EXPECT_EQ(Field(first, "type"), "continue");
    EXPECT_EQ(Field(first, "previous_file"),
              std::filesystem::path(files[i - 1]).filename().string());
    EXPECT_EQ(Field(first, "prev"), Field(Lines(files[i - 1]).back(), "hash"));
  }
  VerifyResult v = Verify(files);
  EXPECT_TRUE(v.ok) << v.reason << " at " << v.bad_record << " " << v.file;
  const uint64_t records = 1 + 60 + (files.size() - 1);
  EXPECT_EQ(v.records, records);

  {
    auto log = OpenOrDie(o);  // resumes the newest file
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->current_file(), files.back());
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(log->AppendAndWait(MakeRecord(absl::StrCat("b", i))).ok());
    }
  }
  std::vector<std::string> after = AuditFiles(tmp.path());
  v = Verify(after);
  EXPECT_TRUE(v.ok) << v.reason << " at " << v.bad_record << " " << v.file;
  EXPECT_EQ(v.records, 1 + 80 + (after.size() - 1));

  // A missing middle file or a wrong order breaks at the first record of
  // the file that no longer links.
  std::vector<std::string> gap = after;
  const uint64_t first_of_third = Verify({after[0], after[1]}).records + 1;
  gap.erase(gap.begin() + 1);
  v = Verify(gap);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.file, after[2]);
  EXPECT_EQ(v.bad_record, Verify({after[0]}).records + 1);
  EXPECT_EQ(v.reason, "prev does not link");
  std::vector<std::string> swapped = after;
  std::swap(swapped[1], swapped[2]);
  v = Verify(swapped);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.file, after[2]);
  EXPECT_LT(v.bad_record, first_of_third);
  // A later file alone has no genesis.
  EXPECT_EQ(Verify({after[1]}).reason, "missing genesis");
}

TEST(AuditLogTest, TornLastLineIsRepairedAtOpen) {
  coffer::testing::TempDir tmp;
  const std::string file = MakeLog(tmp.path(), 5);
  const std::string good = coffer::testing::ReadFile(file);
  // A crash in the middle of a write.
  WriteContent(file, good + "{\"seq\":6,\"time\":\"2026-11-30T07:4");
  VerifyResult v = Verify({file});
  EXPECT_EQ(v.bad_record, 7u);
  EXPECT_EQ(v.reason, "incomplete last line");

  {
    auto log = OpenOrDie(Options(tmp.path()));
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(coffer::testing::ReadFile(file), good);  // the torn part is gone
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->AppendAndWait(MakeRecord("after")).ok());
  }
  v = Verify({file});
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.records, 9u);
  EXPECT_EQ(Field(Lines(file)[6], "seq"), "6");
}

TEST(AuditLogTest, CrashRightAfterRotationContinuesFromThePreviousFile) {
  coffer::testing::TempDir tmp;
  const std::string first = MakeLog(tmp.path(), 3);
  // The next file was created, but its first write never reached the disk.
  const std::string second = tmp.Join("store-audit-000002.jsonl");
  WriteContent(second, "{\"seq\":4,\"ty");
  {
    auto log = OpenOrDie(Options(tmp.path()));
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->current_file(), second);
    ASSERT_TRUE(log->AppendAndWait(MakeRecord("x")).ok());
  }
  std::vector<std::string> lines = Lines(second);
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_EQ(Field(lines[0], "type"), "continue");
  VerifyResult v = Verify({first, second});
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.records, 6u);

  // A first file whose genesis never made it gets one.
  coffer::testing::TempDir fresh;
  WriteContent(fresh.Join("store-audit-000001.jsonl"), "{\"seq\":0,");
  auto log = OpenOrDie(Options(fresh.path()));
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(Verify({log->current_file()}).ok);
}

TEST(AuditLogTest, OpenFailsClearly) {
  coffer::testing::TempDir tmp;
  WriteContent(tmp.Join("plain-file"), "x");

  absl::StatusOr<std::unique_ptr<AuditLog>> log =
      AuditLog::Open(Options(tmp.Join("plain-file/audit")));
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(log.status().message(), HasSubstr("audit log"));
  EXPECT_THAT(log.status().message(), HasSubstr("plain-file/audit"));
  EXPECT_THAT(log.status().message(), HasSubstr("Not a directory"));

  log = AuditLog::Open(Options(tmp.Join("plain-file")));
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(log.status().message(), HasSubstr("plain-file"));

  if (::geteuid() != 0) {  // root ignores permissions
    const std::string ro = tmp.Join("read-only");
    ASSERT_EQ(::mkdir(ro.c_str(), 0500), 0);
    log = AuditLog::Open(Options(ro));
    ASSERT_FALSE(log.ok());
    EXPECT_THAT(log.status().message(), HasSubstr("Permission denied"));
  }

  {
    auto first = OpenOrDie(Options(tmp.Join("shared")));
    log = AuditLog::Open(Options(tmp.Join("shared")));  // one writer per directory
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_TRUE(AuditLog::Open(Options(tmp.Join("shared"))).ok());  // released on close

  AuditOptions bad = Options(tmp.path());
  bad.service = "../x";
  EXPECT_EQ(AuditLog::Open(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = Options("");
  EXPECT_EQ(AuditLog::Open(bad).status().code(), absl::StatusCode::kInvalidArgument);

  // A broken last record is not silently continued.
  const std::string file = MakeLog(tmp.Join("broken"), 2);
  std::vector<std::string> lines = Lines(file);
  lines.back()[20] ^= 0x01;
  WriteLines(file, lines);
  log = AuditLog::Open(Options(tmp.Join("broken")));
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(log.status().message(), HasSubstr("cofferctl audit verify"));
}

// ---- failing closed ----

TEST(AuditLogTest, FailedWriteOrSyncFailsTheBatchAndRecovers) {
  coffer::testing::TempDir tmp;
  FaultyOps ops;
  AuditOptions o = Options(tmp.path());
  o.file_ops = &ops;
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendAndWait(MakeRecord("ok-1")).ok());
  const auto size_before = std::filesystem::file_size(log->current_file());

  ops.FailWrites(ENOSPC, /*partial=*/true);  // half the batch lands, then the disk is full
  const absl::Time start = absl::Now();
  absl::Status s = log->AppendAndWait(MakeRecord("lost-1"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("audit log unavailable"));
  EXPECT_THAT(s.message(), HasSubstr("No space left on device"));
  EXPECT_EQ(log->write_failures(), 1u);
  EXPECT_FALSE(log->healthy());
  EXPECT_EQ(std::filesystem::file_size(log->current_file()), size_before);  // truncated back

  ops.FailWrites(0, false);
  ops.FailSyncs(true);
  s = log->AppendAndWait(MakeRecord("lost-2"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("fdatasync"));
  EXPECT_EQ(log->write_failures(), 2u);
  EXPECT_EQ(std::filesystem::file_size(log->current_file()), size_before);

  ops.FailSyncs(false);
  EXPECT_TRUE(log->AppendAndWait(MakeRecord("ok-2")).ok());
  EXPECT_TRUE(log->healthy());
  EXPECT_EQ(log->records_written(), 2u);
  VerifyResult v = Verify({log->current_file()});
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.records, 3u);
  std::vector<std::string> ids;
  for (const std::string& line : Lines(log->current_file())) {
    ids.push_back(Field(line, "request_id"));
  }
  EXPECT_THAT(ids, ElementsAre("<missing>", "ok-1", "ok-2"));
}

TEST(AuditLogTest, WrittenRecordsAreAnsweredBeforeTheSyncSyncedOnesAfter) {
  coffer::testing::TempDir tmp;
  FaultyOps ops;
  AuditOptions o = Options(tmp.path());
  o.file_ops = &ops;
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  ops.BlockSyncs(true);
  absl::Notification read_done, write_done;
  absl::Status read_status, write_status;
  log->Append(
      MakeRecord("a-read"),
      [&](absl::Status s) {
        read_status = s;
        read_done.Notify();
      },
      AuditLog::Durability::kWritten);
  // The read's record is in the file: its call is answered while the
  // fdatasync has not finished.
  ASSERT_TRUE(read_done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(read_status.ok()) << read_status;
  log->Append(MakeRecord("a-write"), [&](absl::Status s) {
    write_status = s;
    write_done.Notify();
  });
  EXPECT_FALSE(write_done.WaitForNotificationWithTimeout(absl::Milliseconds(300)))
      << "a synced record waits for its fdatasync";
  ops.BlockSyncs(false);
  ASSERT_TRUE(write_done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(write_status.ok()) << write_status;

  // A failed fdatasync fails the synced records of its batch; a written
  // record of that batch was answered already and is truncated away with it.
  ops.BlockSyncs(true);
  ops.FailSyncs(true);
  absl::Notification lost_read, lost_write;
  absl::Status lost_write_status;
  log->Append(
      MakeRecord("lost-read"), [&](absl::Status) { lost_read.Notify(); },
      AuditLog::Durability::kWritten);
  ASSERT_TRUE(lost_read.WaitForNotificationWithTimeout(absl::Seconds(5)));
  log->Append(MakeRecord("lost-write"), [&](absl::Status s) {
    lost_write_status = s;
    lost_write.Notify();
  });
  ops.BlockSyncs(false);
  ASSERT_TRUE(lost_write.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(lost_write_status.code(), absl::StatusCode::kUnavailable);
  ops.FailSyncs(false);
  ASSERT_TRUE(log->AppendAndWait(MakeRecord("after")).ok());
  VerifyResult v = Verify({log->current_file()});
  EXPECT_TRUE(v.ok) << v.reason;
}

// A real full disk: RLIMIT_FSIZE (enforced for root too) with SIGXFSZ
// ignored makes write() fail with EFBIG. In a child process so the limit
// touches nothing else.
std::string FileSizeLimitScenario(const std::string& dir) {
  auto opened = AuditLog::Open(Options(dir));
  if (!opened.ok()) return opened.status().ToString();
  std::unique_ptr<AuditLog> log = std::move(*opened);
  if (!log->AppendAndWait(MakeRecord("before")).ok()) return "first append failed";
  const uint64_t size = std::filesystem::file_size(log->current_file());

  ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit;
  ::getrlimit(RLIMIT_FSIZE, &limit);
  const struct rlimit original = limit;
  limit.rlim_cur = size + 100;  // part of the next record fits
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return "setrlimit failed";
  absl::Status s = log->AppendAndWait(MakeRecord("refused"));
  if (s.code() != absl::StatusCode::kUnavailable) return "expected UNAVAILABLE: " + s.ToString();
  if (!absl::StrContains(s.message(), "File too large")) return "unexpected: " + s.ToString();
  if (log->healthy() || log->write_failures() != 1) return "expected unhealthy, one failure";
  if (std::filesystem::file_size(log->current_file()) != size) return "not truncated back";

  ::setrlimit(RLIMIT_FSIZE, &original);  // space again
  s = log->AppendAndWait(MakeRecord("after"));
  if (!s.ok()) return "append after recovery: " + s.ToString();
  if (!log->healthy()) return "still unhealthy";
  VerifyResult v = Verify({log->current_file()});
  if (!v.ok || v.records != 3) return "verify: " + v.reason;
  return "";
}

TEST(AuditLogDeathTest, FullFilesystemFailsFastAndRecovers) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  coffer::testing::TempDir tmp;
  EXPECT_EXIT(
      {
        const std::string error = FileSizeLimitScenario(tmp.Join("audit"));
        std::error_code ignored;
        std::filesystem::remove_all(tmp.path(), ignored);  // _exit skips TempDir's destructor
        if (!error.empty()) {
          std::fprintf(stderr, "%s\n", error.c_str());
          std::_Exit(1);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(AuditLogTest, StuckWriteTimesOutOnceAndRefusesNewRecords) {
  coffer::testing::TempDir tmp;
  FaultyOps ops;
  AuditOptions o = Options(tmp.path());
  o.file_ops = &ops;
  // Long enough for the writer to pick the record up before it expires.
  o.write_timeout = absl::Seconds(1);
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);

  ops.Block();  // the disk hangs
  std::atomic<int> stuck_calls{0};
  absl::Notification stuck_done;
  absl::Status stuck_status;
  const absl::Time start = absl::Now();
  log->Append(MakeRecord("stuck"), [&](absl::Status s) {
    stuck_status = s;
    if (++stuck_calls == 1) stuck_done.Notify();
  });
  ASSERT_TRUE(coffer::testing::WaitFor([&] { return ops.blocked(); }, absl::Seconds(10)));
  ASSERT_TRUE(stuck_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(stuck_status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(stuck_status.message(), HasSubstr("audit log unavailable"));
  EXPECT_FALSE(log->healthy());
  EXPECT_TRUE(ops.blocked());

  // While the write hangs, new records fail at once instead of queueing.
  const absl::Time refused_at = absl::Now();
  absl::Status refused = log->AppendAndWait(MakeRecord("refused"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - refused_at, absl::Seconds(5));

  ops.Release();  // the write finishes after all
  ASSERT_TRUE(
      coffer::testing::WaitFor([&] { return log->records_written() == 1; }, absl::Seconds(10)));
  EXPECT_TRUE(log->AppendAndWait(MakeRecord("later")).ok());
  EXPECT_TRUE(log->healthy());
  EXPECT_EQ(stuck_calls.load(), 1);  // never a second completion
  EXPECT_EQ(log->write_failures(), 2u);

  // The stuck record reached the log (over-reporting is allowed); the
  // refused one did not.
  std::vector<std::string> ids;
  for (const std::string& line : Lines(log->current_file())) {
    ids.push_back(Field(line, "request_id"));
  }
  EXPECT_THAT(ids, ElementsAre("<missing>", "stuck", "later"));
  EXPECT_TRUE(Verify({log->current_file()}).ok);
}

TEST(AuditLogTest, RecordsQueuedBehindAStuckWriteTimeOutAndAreDropped) {
  coffer::testing::TempDir tmp;
  FaultyOps ops;
  AuditOptions o = Options(tmp.path());
  o.file_ops = &ops;
  o.write_timeout = absl::Seconds(1);
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);

  ops.Block();
  std::atomic<int> calls{0};
  log->Append(MakeRecord("stuck"), [&](absl::Status) { ++calls; });
  ASSERT_TRUE(coffer::testing::WaitFor([&] { return ops.blocked(); }, absl::Seconds(10)));
  absl::Status queued = log->AppendAndWait(MakeRecord("queued"));  // returns after the timeout
  EXPECT_EQ(queued.code(), absl::StatusCode::kUnavailable);
  ops.Release();
  ASSERT_TRUE(
      coffer::testing::WaitFor([&] { return log->records_written() == 1; }, absl::Seconds(10)));
  EXPECT_TRUE(log->AppendAndWait(MakeRecord("later")).ok());
  EXPECT_EQ(calls.load(), 1);

  std::vector<std::string> ids;
  for (const std::string& line : Lines(log->current_file())) {
    ids.push_back(Field(line, "request_id"));
  }
  EXPECT_THAT(ids, ElementsAre("<missing>", "stuck", "later"));
}

TEST(AuditLogTest, EveryCallbackRunsExactlyOnceUnderTimeoutRaces) {
  coffer::testing::TempDir tmp;
  FaultyOps ops;
  ops.write_delay_ = absl::Milliseconds(3);
  AuditOptions o = Options(tmp.path());
  o.file_ops = &ops;
  o.write_timeout = absl::Milliseconds(2);  // about as long as a write: both paths race
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::atomic<int>> calls(kThreads * kPerThread);
  std::vector<std::atomic<int>> ok(kThreads * kPerThread);
  std::string file;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    file = log->current_file();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const int id = t * kPerThread + i;
          log->Append(MakeRecord(absl::StrCat(id)), [&, id](absl::Status s) {
            ++calls[id];
            if (s.ok()) ++ok[id];
          });
          if (i % 8 == 0) absl::SleepFor(absl::Milliseconds(1));
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }  // the destructor drains and joins
  std::map<std::string, int> in_file;
  for (const std::string& line : Lines(file)) ++in_file[Field(line, "request_id")];
  for (int id = 0; id < kThreads * kPerThread; ++id) {
    EXPECT_EQ(calls[id].load(), 1) << id;
    const int written = in_file.count(absl::StrCat(id)) ? in_file[absl::StrCat(id)] : 0;
    EXPECT_LE(written, 1) << id;
    if (ok[id].load() == 1) {
      EXPECT_EQ(written, 1) << id;  // OK means it is in the file
    }
  }
  EXPECT_TRUE(Verify({file}).ok);
}

// ---- the parser ----

TEST(RecordFormatTest, FlatObjectParser) {
  auto fields = ParseFlatObject(R"( {"a":"x\"y\\z\/\n\u00e9\ud83d\ude00", "n":-12 ,"z":0} )");
  ASSERT_TRUE(fields.ok()) << fields.status();
  ASSERT_THAT(*fields, SizeIs(3));
  EXPECT_EQ((*fields)[0].value, "x\"y\\z/\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE((*fields)[1].is_number);
  EXPECT_EQ((*fields)[1].value, "-12");
  EXPECT_TRUE(ParseFlatObject("{}").ok());
  for (const char* bad :
       {"", "{", "{\"a\":1", "{\"a\":1.5}", "{\"a\":01}", "{\"a\":{}}", "{\"a\":true}",
        "{\"a\":\"\\ud83d\"}", "{\"a\":\"x\"} x", "[1]", "{\"a\" 1}", "{\"a\":\"tab\there\"}"}) {
    EXPECT_FALSE(ParseFlatObject(bad).ok()) << bad;
  }
  std::vector<std::string> names = {AuditFileName("kms", 7), AuditFileName("kms", 1234567)};
  EXPECT_THAT(names, ElementsAreArray({"kms-audit-000007.jsonl", "kms-audit-1234567.jsonl"}));
  uint64_t n = 0;
  EXPECT_TRUE(ParseAuditFileName("kms-audit-000007.jsonl", "kms", &n));
  EXPECT_EQ(n, 7u);
  EXPECT_FALSE(ParseAuditFileName("store-audit-000007.jsonl", "kms", &n));
  EXPECT_FALSE(ParseAuditFileName("kms-audit-7.jsonl", "kms", &n));
  EXPECT_FALSE(ParseAuditFileName("kms-audit-000007.jsonl.tmp", "kms", &n));
}

}  // namespace
}  // namespace coffer::audit
