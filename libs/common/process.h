// process.h: process-level hardening and small file helpers every service
// main uses.
//
//   COFFER_RETURN_IF_ERROR(coffer::DisableCoreDumps());   // first thing in main
//   coffer::WriteFileAtomically(ports_file, "{\"grpc\":7701}", 0644);
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coffer {

// RLIMIT_CORE = 0 and PR_SET_DUMPABLE = 0: no core file, no ptrace attach by
// other processes of the same user, so key material cannot leave through a
// crash dump.
absl::Status DisableCoreDumps();

// Writes `contents` to `path` via a temp file + fsync + rename, so readers
// see either the old or the whole new file.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents, int mode);

// mkdir -p with `mode` for directories it creates.
absl::Status MakeDirectories(const std::string& path, int mode);

}  // namespace coffer
