// FromRocksDb: every rocksdb::Status class maps to its documented code.
#include "libs/storage/status.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/status.h"

namespace coffer::storage {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(FromRocksDbTest, OkIsOk) { EXPECT_TRUE(FromRocksDb(rocksdb::Status::OK(), "put").ok()); }

TEST(FromRocksDbTest, MapsEachClass) {
  struct Case {
    rocksdb::Status in;
    absl::StatusCode want;
  };
  const Case cases[] = {
      {rocksdb::Status::NotFound("x"), absl::StatusCode::kNotFound},
      {rocksdb::Status::Busy("x"), absl::StatusCode::kAborted},
      {rocksdb::Status::TryAgain("x"), absl::StatusCode::kAborted},
      {rocksdb::Status::Corruption("x"), absl::StatusCode::kDataLoss},
      {rocksdb::Status::IOError("x"), absl::StatusCode::kUnavailable},
      {rocksdb::Status::NoSpace("x"), absl::StatusCode::kUnavailable},
      {rocksdb::Status::InvalidArgument("x"), absl::StatusCode::kInvalidArgument},
      {rocksdb::Status::NotSupported("x"), absl::StatusCode::kUnimplemented},
      {rocksdb::Status::Incomplete("x"), absl::StatusCode::kInternal},
      {rocksdb::Status::Aborted("x"), absl::StatusCode::kInternal},
      {rocksdb::Status::TimedOut("x"), absl::StatusCode::kInternal},
      {rocksdb::Status::ShutdownInProgress("x"), absl::StatusCode::kInternal},
      {rocksdb::Status::MergeInProgress("x"), absl::StatusCode::kInternal},
      {rocksdb::Status::Expired("x"), absl::StatusCode::kInternal},
      {rocksdb::Status::CompactionTooLarge("x"), absl::StatusCode::kInternal},
      {rocksdb::Status::ColumnFamilyDropped("x"), absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FromRocksDb(c.in, "op").code(), c.want) << c.in.ToString();
  }
}

TEST(FromRocksDbTest, MessageIsPrefixedWithWhat) {
  absl::Status s = FromRocksDb(rocksdb::Status::IOError("disk on fire"), "write");
  EXPECT_THAT(std::string(s.message()), StartsWith("write: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("disk on fire"));
}

// What callers of reads and writes are told: the code, the operation, and
// never the engine's text (paths, errno, addresses).
TEST(ForCallersTest, EngineFailuresKeepTheirCodeButNotTheirText) {
  const std::string secret_path = "/var/lib/coffer/store/000042.log";
  struct Case {
    rocksdb::Status in;
    absl::StatusCode want;
    std::string message;
  };
  const Case cases[] = {
      {rocksdb::Status::IOError(secret_path, "No space left on device"),
       absl::StatusCode::kUnavailable,
       "storage unavailable: write failed; try again (the server log has the details)"},
      {rocksdb::Status::Corruption(secret_path, "block checksum mismatch"),
       absl::StatusCode::kDataLoss,
       "storage error: write found stored data damaged (the server log has the details)"},
      {rocksdb::Status::Incomplete(secret_path), absl::StatusCode::kInternal,
       "storage error: write failed (the server log has the details)"},
  };
  for (const Case& c : cases) {
    absl::Status s = ForCallers(FromRocksDb(c.in, "write"), "write");
    EXPECT_EQ(s.code(), c.want) << s;
    EXPECT_EQ(s.message(), c.message);
  }
  // What a caller acts on passes unchanged: conflicts, missing keys, bad
  // arguments, the engine's limits.
  for (const absl::Status& s :
       {FromRocksDb(rocksdb::Status::Busy("conflict"), "commit"),
        FromRocksDb(rocksdb::Status::NotFound(), "get"),
        FromRocksDb(rocksdb::Status::InvalidArgument("unknown family"), "get"),
        absl::ResourceExhaustedError("batch of 200 writes; etcd takes at most 128 per Txn"),
        absl::OutOfRangeError("etcd: mvcc: required revision has been compacted")}) {
    EXPECT_EQ(ForCallers(s, "op"), s);
  }
  EXPECT_TRUE(ForCallers(absl::OkStatus(), "op").ok());
  // etcd refusing Coffer's certificate is a storage error, not the caller's
  // permission problem.
  absl::Status refused =
      ForCallers(absl::PermissionDeniedError("etcd: permission denied"), "an etcd request");
  EXPECT_EQ(refused.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(refused.message(),
            "storage error: an etcd request failed (the server log has the details)");
}

}  // namespace
}  // namespace coffer::storage
