// failures.h: how cofferctl fails — the one line it writes on stderr,
// `Reason: message`, and its exit status.
//
// The exit statuses are the AWS CLI's (252-255), so that a script written
// for `aws` reads them the same way:
//
//   0    success (a watch also when Ctrl-C, --max-events or --timeout ends it)
//   1    `cofferctl audit verify` only: the chain is broken or a file unreadable
//   252  the command line: an unknown group, operation or flag, a value that
//        does not parse, a missing required flag, a file:// or - that cannot
//        be read. Nothing was sent.
//   253  the configuration: the TLS files cannot be read. Nothing was sent.
//   254  the service answered with an error; the reason says which
//   255  no usable answer: the service could not be reached, did not answer in
//        time or is unavailable (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED,
//        UNKNOWN) — retrying later may help — or the result could not be
//        written out
//
//   absl::Status s = CallUnary(...).status();
//   std::cerr << FormatError(s) << "\n";   // ResourceNotFoundException: Secret 'x' ...
//   return ExitCodeFor(s);                 // 254
//
// The reason is the one the service sent in its coffer.v1.ErrorInfo (the AWS
// exception name), or the gRPC code's name (UNAVAILABLE) when there is none.
// cofferctl's own failures have reasons of their own: UsageError (252),
// ConfigurationError (253), OutputError (255).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coffer::cofferctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitAuditBroken = 1,
  kExitUsage = 252,
  kExitConfig = 253,
  kExitService = 254,
  kExitNoAnswer = 255,
};

inline constexpr char kUsageReason[] = "UsageError";
inline constexpr char kConfigReason[] = "ConfigurationError";
inline constexpr char kOutputReason[] = "OutputError";

// The exit status for a call that failed with `status`: kExitNoAnswer for
// UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED and UNKNOWN, kExitService for
// every other code.
ExitCode ExitCodeFor(const absl::Status& status);

// The reason of a failed call: the ErrorInfo reason, or the code's name.
std::string ReasonOf(const absl::Status& status);

// "<reason>: <message>" for a failed call (just "<reason>" when the message
// is empty).
std::string FormatError(const absl::Status& status);

// "<reason>: <message>" for one of cofferctl's own failures.
std::string FormatLocalError(absl::string_view reason, absl::string_view message);

}  // namespace coffer::cofferctl
