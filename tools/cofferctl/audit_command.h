// audit_command.h: `cofferctl audit verify FILE...`, the one local command:
// it checks the hash chain of audit log files (libs/audit) without calling
// any service.
//
//   cofferctl audit verify /var/lib/coffer/audit/store-audit-*.jsonl
//   ok: 120394 records in 3 files                       (exit 0)
//   broken: record 5812 (store-audit-000001.jsonl): hash mismatch   (exit 1)
//
// Files are checked in the order given (the first must start with the
// genesis record); a shell glob lists a service's files in chain order.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace coffer::cofferctl {

// The pseudo-group of local commands on audit logs.
inline constexpr char kAuditGroup[] = "audit";

// `cofferctl audit` help (ends with a newline).
std::string AuditUsage();

// Runs `cofferctl audit <args>` (`args` after "audit"). Returns the exit
// code: 0 the chain is intact (or help was asked for), 1 it is broken or a
// file cannot be read, 252 bad command line (failures.h). "ok: ..." goes to `out`,
// "broken: ..." and usage errors to `err`.
int RunAudit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace coffer::cofferctl
