// status.h: the one place rocksdb::Status becomes absl::Status.
//
//   rocksdb::Status s = db->Put(...);
//   COFFER_RETURN_IF_ERROR(coffer::storage::FromRocksDb(s, "put"));
//
// NotFound -> NOT_FOUND, Busy/TryAgain (write conflict) -> ABORTED,
// Corruption -> DATA_LOSS, IOError/NoSpace -> UNAVAILABLE,
// InvalidArgument/NotSupported -> INVALID_ARGUMENT / UNIMPLEMENTED, anything
// else INTERNAL. Messages are prefixed with `what`.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class Status;
}

namespace coffer::storage {

absl::Status FromRocksDb(const rocksdb::Status& status, absl::string_view what);

}  // namespace coffer::storage
