// status.cc: rocksdb::Status -> absl::Status, the only such conversion.
#include "libs/storage/status.h"

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
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

absl::Status ForCallers(const absl::Status& status, absl::string_view what) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kOutOfRange:
      return status;
    default:
      break;
  }
  // Damage is always logged; other failures at most once a second.
  static std::atomic<int64_t> last_logged{0};
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  if (status.code() == absl::StatusCode::kDataLoss || last_logged.exchange(now) != now) {
    log::Error("storage", "storage failure", {{"error", status.ToString()}});
  }
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return absl::UnavailableError(absl::StrCat(
          "storage unavailable: ", what, " failed; try again (the server log has the details)"));
    case absl::StatusCode::kDataLoss:
      return absl::DataLossError(absl::StrCat(
          "storage error: ", what, " found stored data damaged (the server log has the details)"));
    default:
      return absl::InternalError(
          absl::StrCat("storage error: ", what, " failed (the server log has the details)"));
  }
}

}  // namespace coffer::storage
