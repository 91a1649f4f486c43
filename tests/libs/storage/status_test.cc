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

}  // namespace
}  // namespace coffer::storage
