#include "tools/cofferctl/audit_command.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/audit/audit_log.h"
#include "tools/cofferctl/failures.h"

namespace coffer::cofferctl {
namespace {

int UsageError(std::ostream& err, const std::string& message) {
  err << FormatLocalError(kUsageReason, message) << "\n";
  return kExitUsage;
}

}  // namespace

std::string AuditUsage() {
  return "Usage: cofferctl audit verify FILE...\n\n"
         "Checks the hash chain of audit log files, locally (no server is called).\n"
         "Give all of a service's files in order, oldest first (the first starts\n"
         "with the genesis record), e.g. /var/lib/coffer/audit/store-audit-*.jsonl.\n"
         "Prints `ok: N records in M files` (exit 0) or\n"
         "`broken: record N (FILE): REASON` for the first broken record (exit 1).\n"
         "Records cut off the end of the newest file cannot be detected: compare N\n"
         "with the service's coffer_audit_records_total.\n";
}

int RunAudit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> words;
  bool files_only = false;  // after "--" everything is a file
  for (const std::string& arg : args) {
    if (!files_only && arg == "--") {
      files_only = true;
    } else if (!files_only && (arg == "--help" || arg == "-h" || arg == "help")) {
      out << AuditUsage();
      return 0;
    } else if (!files_only && absl::StartsWith(arg, "-")) {
      return UsageError(err, absl::StrCat("audit: unknown flag ", arg));
    } else {
      words.push_back(arg);
    }
  }
  if (words.empty()) {
    out << AuditUsage();
    return 0;
  }
  if (words[0] != "verify") {
    return UsageError(err, absl::StrCat("audit: unknown operation '", words[0],
                                        "'; `cofferctl audit` lists the operations"));
  }
  const std::vector<std::string> files(words.begin() + 1, words.end());
  if (files.empty()) return UsageError(err, "audit verify: needs at least one FILE");

  const audit::VerifyResult result = audit::Verify(files);
  if (!result.ok) {
    err << "broken: record " << result.bad_record << " (" << result.file << "): " << result.reason
        << "\n";
    return kExitAuditBroken;
  }
  out << "ok: " << result.records << " records in " << files.size() << " files\n";
  return 0;
}

}  // namespace coffer::cofferctl
