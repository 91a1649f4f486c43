// invocation.h: splits a cofferctl command line into the group, the
// operation, cofferctl's own flags (connection, output, help) and the flags
// that belong to the request.
//
//   auto inv = coffer::cofferctl::ParseInvocation(
//       {"kms", "encrypt", "--key-id=alias/app", "--timeout=5s"}, coffer::cofferctl::SystemEnv);
//   inv->group == "kms"; inv->request_args == {"--key-id=alias/app"};
//   inv->connection.timeout == absl::Seconds(5);
//
// cofferctl's own flags may appear anywhere; they shadow request fields of
// the same name (such a field can still be given with --cli-input-json).
// Defaults: --address from COFFER_<GROUP>_ADDRESS (AddressVariable: '-' in
// the group's name is '_', COFFER_ACCESS_KEYS_ADDRESS), then COFFER_ADDRESS, then
// the group's default; --ca/--cert/--key from COFFER_CA/COFFER_CERT/COFFER_KEY,
// then ./var/certs/{ca.crt,cofferctl.crt,cofferctl.key} (what scripts/up.sh
// creates); --output from COFFER_OUTPUT, then json.
//
// `cofferctl watch params ...` and `cofferctl watch secrets ...` are
// aliases, resolved here and nowhere else: they parse exactly like
// `cofferctl params watch-parameters ...` / `cofferctl secrets watch-secrets
// ...` (see WatchAliases()). A short form (`cofferctl access-keys disable`,
// short_forms.h) is resolved here too: the operation becomes the one it
// stands for and `short_form` says which, for its presets.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace coffer::cofferctl {

struct ConnectionOptions {
  std::string address;  // host:port; empty until the group's default applies
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string authority;  // optional TLS name override
  // The SPIFFE ID the server must present; "" checks the host name instead.
  // Unset until --server-spiffe-id, $COFFER_SERVER_SPIFFE_ID or the group's
  // default applies.
  std::optional<std::string> server_spiffe_id;
  // --timeout. Unary calls always have a deadline (30s unless given);
  // server streams have one only when --timeout was given.
  absl::Duration timeout = absl::Seconds(30);
  bool timeout_given = false;
};

// --output: how a response is printed (output.h).
enum class OutputFormat { kJson, kTable, kText };

// "json", "table" or "text"; INVALID_ARGUMENT otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);
absl::string_view OutputFormatName(OutputFormat format);

struct ShortForm;  // short_forms.h

struct Invocation {
  std::string group;      // empty when not given
  std::string operation;  // empty when not given; a short form's operation
  // The short form typed instead of the operation (an entry of
  // ShortForms()); nullptr when the operation was named.
  const ShortForm* short_form = nullptr;
  bool help = false;
  ConnectionOptions connection;
  OutputFormat output = OutputFormat::kJson;  // --output or $COFFER_OUTPUT
  std::string output_file;                    // --output-file
  std::string output_field;                   // --output-field
  int64_t max_events = 0;                     // --max-events; 0: unlimited (server streams only)
  std::vector<std::string> request_args;      // everything else after the operation
};

// Looks an environment variable up; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> SystemEnv(const std::string& name);

// `cofferctl watch <target>` stands for `cofferctl <group> <operation>`.
struct WatchAlias {
  std::string target;     // "params"
  std::string group;      // "params"
  std::string operation;  // "watch-parameters"
  std::string synopsis;   // request flags for the usage text
};
// The pseudo-group of the aliases.
inline constexpr char kWatchGroup[] = "watch";
const std::vector<WatchAlias>& WatchAliases();

// INVALID_ARGUMENT for an unknown flag before the operation, a flag without
// its value, a bad --output, --timeout or --max-events, --output-field without
// --output-file, or `watch` with an unknown target. `watch` without a target
// stays group "watch" with an empty operation (the caller shows the
// aliases).
absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args,
                                           const EnvLookup& env);

// The environment variable of a group's address: COFFER_<GROUP>_ADDRESS with
// the group upper-cased and '-' as '_' ("access-keys" ->
// COFFER_ACCESS_KEYS_ADDRESS), so that a shell can set it.
std::string AddressVariable(absl::string_view group);

// Fills the address from the environment or `default_address` when no
// --address was given.
void ApplyAddressDefault(Invocation& invocation, const std::string& default_address,
                         const EnvLookup& env);

// Help text for cofferctl's own flags; `server_streaming` adds
// --max-events and describes --timeout for streams.
// The server identity, unless given: $COFFER_SERVER_SPIFFE_ID or the group's
// default (its well-known SPIFFE ID).
void ApplyServerIdentityDefault(Invocation& invocation, const std::string& default_spiffe_id,
                                const EnvLookup& env);

std::string GlobalFlagsUsage(absl::string_view default_address, bool server_streaming = false);

}  // namespace coffer::cofferctl
