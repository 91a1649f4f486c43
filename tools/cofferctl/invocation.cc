#include "tools/cofferctl/invocation.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tools/cofferctl/short_forms.h"

namespace coffer::cofferctl {
namespace {

enum class Global {
  kAddress,
  kCa,
  kCert,
  kKey,
  kAuthority,
  kServerSpiffeId,
  kTimeout,
  kOutput,
  kOutputFile,
  kOutputField,
  kMaxEvents,
};

std::optional<Global> FindGlobal(absl::string_view flag) {
  std::string name(flag);
  for (char& c : name) {
    if (c == '_') c = '-';
  }
  if (name == "address") return Global::kAddress;
  if (name == "ca") return Global::kCa;
  if (name == "cert") return Global::kCert;
  if (name == "key") return Global::kKey;
  if (name == "authority") return Global::kAuthority;
  if (name == "server-spiffe-id") return Global::kServerSpiffeId;
  if (name == "timeout") return Global::kTimeout;
  if (name == "output") return Global::kOutput;
  if (name == "output-file") return Global::kOutputFile;
  if (name == "output-field") return Global::kOutputField;
  if (name == "max-events") return Global::kMaxEvents;
  return std::nullopt;
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  absl::Duration d;
  double seconds;
  if (absl::SimpleAtod(text, &seconds) && !text.empty() &&
      !absl::ascii_isspace(static_cast<unsigned char>(text.front()))) {
    d = absl::Seconds(seconds);  // a bare number means seconds
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout: '", text, "' is not a duration (e.g. 30s, 500ms, 2m)"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout: must be positive");
  }
  return d;
}

absl::StatusOr<int64_t> ParseMaxEvents(absl::string_view text) {
  bool digits = !text.empty();
  for (char c : text) digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
  int64_t n = 0;
  if (!digits || !absl::SimpleAtoi(text, &n) || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-events: '", text, "' is not a positive number"));
  }
  return n;
}

// Rewrites `watch <target>` to the group and operation it stands for.
absl::Status ResolveWatchAlias(Invocation& inv) {
  if (inv.group != kWatchGroup || inv.operation.empty()) return absl::OkStatus();
  std::vector<std::string> targets;
  for (const WatchAlias& alias : WatchAliases()) {
    if (inv.operation == alias.target) {
      inv.group = alias.group;
      inv.operation = alias.operation;
      return absl::OkStatus();
    }
    targets.push_back(alias.target);
  }
  return absl::InvalidArgumentError(absl::StrCat("watch: unknown target '", inv.operation,
                                                 "'; expected ", absl::StrJoin(targets, " or ")));
}

// Rewrites a short form to the operation it stands for.
void ResolveShortForm(Invocation& inv) {
  if (const ShortForm* form = FindShortForm(inv.group, inv.operation)) {
    inv.short_form = form;
    inv.operation = form->operation;
  }
}

std::string EnvOr(const EnvLookup& env, const std::string& name, const std::string& fallback) {
  std::optional<std::string> value = env(name);
  return value.has_value() && !value->empty() ? *value : fallback;
}

}  // namespace

const std::vector<WatchAlias>& WatchAliases() {
  static const auto* const kAliases = new std::vector<WatchAlias>{
      {"params", "params", "watch-parameters", "--path=/app [--recursive] [--start-after=POS]"},
      {"secrets", "secrets", "watch-secrets", "[--name-prefix=P] [--start-after=POS]"},
  };
  return *kAliases;
}

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "json") return OutputFormat::kJson;
  if (name == "table") return OutputFormat::kTable;
  if (name == "text") return OutputFormat::kText;
  return absl::InvalidArgumentError("--output: expected json, table or text");
}

absl::string_view OutputFormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kJson:
      return "json";
    case OutputFormat::kTable:
      return "table";
    case OutputFormat::kText:
      return "text";
  }
  return "json";
}

std::optional<std::string> SystemEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args,
                                           const EnvLookup& env) {
  Invocation inv;
  bool output_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "help") {
      // "help" only counts as a word where the group or operation would be.
      if (arg != "help" || inv.operation.empty()) {
        inv.help = true;
        continue;
      }
    }
    if (!absl::StartsWith(arg, "--")) {
      if (inv.group.empty()) {
        inv.group = arg;
      } else if (inv.operation.empty()) {
        inv.operation = arg;
      } else {
        inv.request_args.push_back(arg);  // the value of the flag before it
      }
      continue;
    }
    std::vector<std::string> parts = absl::StrSplit(arg.substr(2), absl::MaxSplits('=', 1));
    const std::optional<Global> global = FindGlobal(parts[0]);
    if (!global.has_value()) {
      if (inv.operation.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown flag ", parts[0].empty() ? arg : "--" + parts[0],
            inv.group.empty() ? " (expected a group first)" : " (expected an operation first)"));
      }
      inv.request_args.push_back(arg);
      continue;
    }
    std::string value;
    if (parts.size() == 2) {
      value = parts[1];
    } else if (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", parts[0], ": needs a value"));
    }
    switch (*global) {
      case Global::kAddress:
        inv.connection.address = value;
        break;
      case Global::kCa:
        inv.connection.ca_file = value;
        break;
      case Global::kCert:
        inv.connection.cert_file = value;
        break;
      case Global::kKey:
        inv.connection.key_file = value;
        break;
      case Global::kAuthority:
        inv.connection.authority = value;
        break;
      case Global::kServerSpiffeId:
        inv.connection.server_spiffe_id = value;
        break;
      case Global::kOutput: {
        absl::StatusOr<OutputFormat> format = ParseOutputFormat(value);
        if (!format.ok()) return format.status();
        inv.output = *format;
        output_given = true;
        break;
      }
      case Global::kOutputFile:
        inv.output_file = value;
        break;
      case Global::kOutputField:
        inv.output_field = value;
        break;
      case Global::kTimeout: {
        absl::StatusOr<absl::Duration> d = ParseTimeout(value);
        if (!d.ok()) return d.status();
        inv.connection.timeout = *d;
        inv.connection.timeout_given = true;
        break;
      }
      case Global::kMaxEvents: {
        absl::StatusOr<int64_t> n = ParseMaxEvents(value);
        if (!n.ok()) return n.status();
        inv.max_events = *n;
        break;
      }
    }
  }
  if (absl::Status alias = ResolveWatchAlias(inv); !alias.ok()) return alias;
  ResolveShortForm(inv);
  if (!inv.output_field.empty() && inv.output_file.empty()) {
    return absl::InvalidArgumentError("--output-field: only makes sense with --output-file");
  }
  if (std::optional<std::string> env_output = env("COFFER_OUTPUT");
      !output_given && env_output.has_value() && !env_output->empty()) {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(*env_output);
    if (!format.ok()) {
      return absl::InvalidArgumentError("$COFFER_OUTPUT: expected json, table or text");
    }
    inv.output = *format;
  }
  if (inv.connection.ca_file.empty()) {
    inv.connection.ca_file = EnvOr(env, "COFFER_CA", "./var/certs/ca.crt");
  }
  if (inv.connection.cert_file.empty()) {
    inv.connection.cert_file = EnvOr(env, "COFFER_CERT", "./var/certs/cofferctl.crt");
  }
  if (inv.connection.key_file.empty()) {
    inv.connection.key_file = EnvOr(env, "COFFER_KEY", "./var/certs/cofferctl.key");
  }
  return inv;
}

std::string AddressVariable(absl::string_view group) {
  std::string name = absl::AsciiStrToUpper(group);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return absl::StrCat("COFFER_", name, "_ADDRESS");
}

void ApplyAddressDefault(Invocation& inv, const std::string& default_address,
                         const EnvLookup& env) {
  if (!inv.connection.address.empty()) return;
  const std::string group_var = AddressVariable(inv.group);
  // COFFER_ENDPOINT is the client library's name for the same setting
  // (libs/client), so one environment serves an application and cofferctl.
  inv.connection.address = EnvOr(
      env, group_var, EnvOr(env, "COFFER_ADDRESS", EnvOr(env, "COFFER_ENDPOINT", default_address)));
}

void ApplyServerIdentityDefault(Invocation& inv, const std::string& default_spiffe_id,
                                const EnvLookup& env) {
  if (inv.connection.server_spiffe_id.has_value()) return;
  inv.connection.server_spiffe_id = EnvOr(env, "COFFER_SERVER_SPIFFE_ID", default_spiffe_id);
}

std::string GlobalFlagsUsage(absl::string_view default_address, bool server_streaming) {
  const char* output =
      server_streaming
          ? "Output (server stream: one line per message, until the stream ends):\n"
            "  --output=json|text     compact JSON (default) or tab-separated columns;\n"
            "                         $COFFER_OUTPUT sets the default\n"
            "  --max-events=<n>       stop after n messages\n"
          : "Output:\n"
            "  --output=json|table|text\n"
            "                         JSON (default; $COFFER_OUTPUT sets the default), a table\n"
            "                         to read, or text for scripts: the value alone, or\n"
            "                         tab-separated rows\n"
            "  --output-file=<path>   write the raw bytes of the response's first bytes field\n"
            "                         (mode 0600) and leave it out of the output\n"
            "  --output-field=<name>  which bytes field --output-file writes\n";
  const char* timeout =
      server_streaming
          ? "  --timeout=<duration>   end the stream after this long (default: none; Ctrl-C\n"
            "                         or SIGTERM ends it too)\n"
          : "  --timeout=<duration>   deadline of the call (default 30s)\n";
  return absl::StrCat(
      output,
      "\nConnection (mTLS always):\n"
      "  --address=<host:port>  $COFFER_<GROUP>_ADDRESS, $COFFER_ADDRESS, $COFFER_ENDPOINT or ",
      default_address,
      "\n"
      "  --ca=<path>            $COFFER_CA or ./var/certs/ca.crt\n"
      "  --cert=<path>          $COFFER_CERT or ./var/certs/cofferctl.crt\n"
      "  --key=<path>           $COFFER_KEY or ./var/certs/cofferctl.key\n"
      "  --authority=<name>     server name to verify instead of the address host\n"
      "  --server-spiffe-id=<id>\n"
      "                         the SPIFFE ID the server must present: $COFFER_SERVER_SPIFFE_ID\n"
      "                         or the service's own (spiffe://coffer.local/kms or /store);\n"
      "                         empty: check the server name instead\n",
      timeout,
      "\nExit status: 0 success, 252 bad command line, 253 TLS files unreadable,\n"
      "254 the service refused (Reason: message on stderr), 255 no answer.\n");
}

}  // namespace coffer::cofferctl
