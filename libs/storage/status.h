// status.h: the one place rocksdb::Status becomes absl::Status.
//
//   rocksdb::Status s = db->Put(...);
//   COFFER_RETURN_IF_ERROR(coffer::storage::FromRocksDb(s, "put"));
//
// NotFound -> NOT_FOUND, Busy/TryAgain (write conflict) -> ABORTED,
// Corruption -> DATA_LOSS, IOError/NoSpace -> UNAVAILABLE,
// InvalidArgument/NotSupported -> INVALID_ARGUMENT / UNIMPLEMENTED, anything
// else INTERNAL. Messages are prefixed with `what`.
//
// FromRocksDb's messages are for operators (opening a database, flushing
// it). What the engines answer callers of a read or a write goes through
// ForCallers: an engine's own failure (an I/O error, corruption, etcd
// refusing Coffer's certificate) has file names, addresses and errno texts
// in it that are no client's business. The code stays; the message becomes
// a fixed one naming the operation, and the detail goes to the log (damaged
// data always, other failures at most once a second). Conflicts, missing keys, refused arguments,
// sizes beyond the engine's limits and compacted revisions pass unchanged.
//
//   return ForCallers(FromRocksDb(s, "write"), "write");
//   // UNAVAILABLE "storage unavailable: write failed; try again (the server log has the details)"
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class Status;
}

namespace coffer::storage {

absl::Status FromRocksDb(const rocksdb::Status& status, absl::string_view what);

absl::Status ForCallers(const absl::Status& status, absl::string_view what);

}  // namespace coffer::storage
