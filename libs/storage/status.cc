// status.cc: rocksdb::Status -> absl::Status, the only such conversion.
#include "libs/storage/status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "rocksdb/status.h"

namespace coffer::storage {

namespace {

absl::StatusCode CodeFor(const rocksdb::Status& status) {
  switch (status.code()) {
    case rocksdb::Status::kNotFound:
      return absl::StatusCode::kNotFound;
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
      return absl::StatusCode::kAborted;
    case rocksdb::Status::kCorruption:
      return absl::StatusCode::kDataLoss;
    case rocksdb::Status::kIOError:  // Includes NoSpace (a subcode).
      return absl::StatusCode::kUnavailable;
    case rocksdb::Status::kInvalidArgument:
      return absl::StatusCode::kInvalidArgument;
    case rocksdb::Status::kNotSupported:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status FromRocksDb(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(CodeFor(status), absl::StrCat(what, ": ", status.ToString()));
}

}  // namespace coffer::storage
