// completion.h: `cofferctl completion bash`, a bash completion script made
// from the command table, so that it completes exactly what this binary can
// call: groups, operations and short forms (`access-keys disable`, without
// the flags it presets), the flags of the operation on the line (its
// request fields and cofferctl's own), enum values after an enum flag,
// json/table/text after --output, and file names after --ca, --cert, --key,
// --output-file, --<field>-file and `audit verify`.
//
//   source <(cofferctl completion bash)     # in ~/.bashrc
//
// The script defines _cofferctl (and helpers named _cofferctl_*) and
// registers it with `complete -o default -F _cofferctl cofferctl`; it needs
// bash only (not the bash-completion package).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "tools/cofferctl/command_table.h"

namespace coffer::cofferctl {

// The pseudo-group of `cofferctl completion <shell>`.
inline constexpr char kCompletionGroup[] = "completion";

std::string BashCompletion(const CommandTable& table);

// `cofferctl completion` help (ends with a newline).
std::string CompletionUsage();

// Runs `cofferctl completion <args>` (`args` after "completion"): the script
// on `out`, exit 0; usage errors on `err`, exit kExitUsage.
int RunCompletion(const CommandTable& table, const std::vector<std::string>& args,
                  std::ostream& out, std::ostream& err);

}  // namespace coffer::cofferctl
