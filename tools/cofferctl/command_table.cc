#include "tools/cofferctl/command_table.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coffer/iam/v1/access_keys.pb.h"
#include "coffer/kms/v1/kms.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "tools/cofferctl/api_docs.h"
#include "tools/cofferctl/audit_command.h"
#include "tools/cofferctl/completion.h"
#include "tools/cofferctl/invocation.h"
#include "tools/cofferctl/operation_docs.h"
#include "tools/cofferctl/request_builder.h"
#include "tools/cofferctl/short_forms.h"

namespace coffer::cofferctl {
namespace {

// Generated code lands in the pool only if the linker keeps it; referencing
// a descriptor keeps the whole generated file. Add one line per service here
// when its group is added to the table below.
void LinkGeneratedServices() {
  static const void* const kLinked[] = {
      coffer::kms::v1::EncryptRequest::descriptor(),
      coffer::secrets::v1::GetSecretValueRequest::descriptor(),
      coffer::params::v1::GetParameterRequest::descriptor(),
      coffer::iam::v1::CreateAccessKeyRequest::descriptor(),
  };
  (void)kLinked;
}

// How an operation's calls behave, for the operation lists.
std::string StreamingNote(const google::protobuf::MethodDescriptor& method) {
  if (method.client_streaming()) return " (client streaming: not supported by cofferctl)";
  if (method.server_streaming()) return " (server stream: one JSON object per line)";
  return "";
}

}  // namespace

const std::vector<GroupSpec>& KnownGroups() {
  // The one table of groups. Entries whose service is not linked in are
  // skipped at run time.
  static const auto* const kGroupTable = new std::vector<GroupSpec>{
      {"kms", "coffer.kms.v1.KeyManagement", "localhost:7701", "spiffe://coffer.local/kms"},
      {"secrets", "coffer.secrets.v1.SecretsManager", "localhost:7702",
       "spiffe://coffer.local/store"},
      {"params", "coffer.params.v1.ParameterStore", "localhost:7702",
       "spiffe://coffer.local/store"},
      {"access-keys", "coffer.iam.v1.AccessKeys", "localhost:7701", "spiffe://coffer.local/kms"},
  };
  return *kGroupTable;
}

CommandTable CommandTable::FromGeneratedPool() {
  LinkGeneratedServices();
  return FromPool(*google::protobuf::DescriptorPool::generated_pool(), KnownGroups());
}

CommandTable CommandTable::FromPool(const google::protobuf::DescriptorPool& pool,
                                    const std::vector<GroupSpec>& specs) {
  CommandTable table;
  for (const GroupSpec& spec : specs) {
    const google::protobuf::ServiceDescriptor* service = pool.FindServiceByName(spec.service_name);
    if (service != nullptr) table.groups_.push_back(Group{spec, service});
  }
  return table;
}

const Group* CommandTable::FindGroup(absl::string_view name) const {
  for (const Group& group : groups_) {
    if (group.spec.name == name) return &group;
  }
  return nullptr;
}

const google::protobuf::MethodDescriptor* CommandTable::FindOperation(const Group& group,
                                                                      absl::string_view operation) {
  for (int i = 0; i < group.service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* method = group.service->method(i);
    if (OperationName(method->name()) == operation || method->name() == operation) {
      return method;
    }
  }
  return nullptr;
}

std::string OperationName(absl::string_view rpc_name) {
  std::string out;
  for (size_t i = 0; i < rpc_name.size(); ++i) {
    const char c = rpc_name[i];
    if (std::isupper(static_cast<unsigned char>(c)) && i > 0) {
      const char prev = rpc_name[i - 1];
      const bool prev_lower_or_digit = std::islower(static_cast<unsigned char>(prev)) ||
                                       std::isdigit(static_cast<unsigned char>(prev));
      // The last capital of an acronym starts the next word: HTTPConfig.
      const bool acronym_end = std::isupper(static_cast<unsigned char>(prev)) &&
                               i + 1 < rpc_name.size() &&
                               std::islower(static_cast<unsigned char>(rpc_name[i + 1]));
      if (prev_lower_or_digit || acronym_end) out.push_back('-');
    }
    out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string RpcName(absl::string_view operation) {
  std::string out;
  for (absl::string_view word : absl::StrSplit(operation, '-', absl::SkipEmpty())) {
    std::string w(word);
    w[0] = absl::ascii_toupper(static_cast<unsigned char>(w[0]));
    out += w;
  }
  return out;
}

std::string FlagName(absl::string_view field_name) {
  std::string out(field_name);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

std::string TopUsage(const CommandTable& table) {
  std::string out =
      "Usage: cofferctl <group> <operation> [--field=value ...] [connection flags]\n\n"
      "Groups:\n";
  for (const Group& group : table.groups()) {
    absl::StrAppend(&out, "  ", group.spec.name, "\t", group.service->full_name(), " (default ",
                    group.spec.default_address, ")\n");
  }
  const std::string watch = WatchUsageLines(table);
  if (!watch.empty()) {
    absl::StrAppend(&out, "\nWatching (server stream: one JSON object per line):\n", watch);
  }
  absl::StrAppend(&out, "\nLocal (no server):\n  cofferctl ", kAuditGroup,
                  " verify FILE...\n      check the hash chain of audit log files\n",
                  "  cofferctl ", kCompletionGroup,
                  " bash\n      print a bash completion script (source <(cofferctl completion "
                  "bash))\n");
  absl::StrAppend(&out,
                  "\n`cofferctl <group>` lists its operations; "
                  "`cofferctl <group> <operation> --help` lists its flags.\n");
  return out;
}

std::string WatchUsageLines(const CommandTable& table) {
  std::string out;
  for (const WatchAlias& alias : WatchAliases()) {
    if (table.FindGroup(alias.group) == nullptr) continue;
    absl::StrAppend(&out, "  cofferctl ", kWatchGroup, " ", alias.target, " ", alias.synopsis,
                    "\n      same as `cofferctl ", alias.group, " ", alias.operation, "`\n");
  }
  return out;
}

std::string WatchUsage(const CommandTable& table) {
  return absl::StrCat(
      "Usage: cofferctl watch <target> [request flags] [--max-events=N] [--timeout=D]\n"
      "                                [connection flags]\n\n"
      "Streams changes as one JSON object per line until Ctrl-C / SIGTERM, N\n"
      "events or the --timeout (each ends with exit status 0).\n\n"
      "Targets:\n",
      WatchUsageLines(table));
}

std::string GroupUsage(const Group& group) {
  std::string out = absl::StrCat("Usage: cofferctl ", group.spec.name,
                                 " <operation> [--field=value ...] [connection flags]\n\n",
                                 "Operations of ", group.service->full_name(), ":\n");
  for (int i = 0; i < group.service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* method = group.service->method(i);
    absl::StrAppend(&out, "  ", OperationName(method->name()));
    absl::StrAppend(&out, StreamingNote(*method), "\n");
  }
  const std::vector<const ShortForm*> forms = ShortFormsOf(group.spec.name);
  if (!forms.empty()) {
    size_t width = 0;
    for (const ShortForm* form : forms) width = std::max(width, form->name.size());
    absl::StrAppend(&out, "\nShort forms:\n");
    for (const ShortForm* form : forms) {
      absl::StrAppend(&out, "  ", form->name, std::string(width + 2 - form->name.size(), ' '),
                      "same as ", ShortFormExpansion(*form), "\n");
    }
  }
  absl::StrAppend(&out, "\n`cofferctl ", group.spec.name,
                  " <operation> --help` lists the flags of an operation.\n");
  return out;
}

// "--output=text prints ..." for an operation's help.
std::string TextOutputNote(const google::protobuf::MethodDescriptor& method,
                           const OperationDoc& doc) {
  if (method.server_streaming()) {
    return "--output=text prints one tab-separated line per message.\n";
  }
  if (doc.text_value.empty()) {
    return "--output=text prints tab-separated rows (see README, \"Output formats\").\n";
  }
  std::vector<std::string> paths = absl::StrSplit(doc.text_value, '|');
  if (paths.size() == 1 && absl::StrContains(paths[0], ',')) {
    std::vector<std::string> columns = absl::StrSplit(paths[0], ',');
    return absl::StrCat("--output=text prints ", absl::StrJoin(columns, " and "),
                        " on one line, tab-separated; bytes in base64.\n");
  }
  return absl::StrCat("--output=text prints the value of ", absl::StrJoin(paths, " (or else "),
                      paths.size() > 1 ? ")" : "", " alone; bytes in base64.\n");
}

std::string OperationUsage(const Group& group, const google::protobuf::MethodDescriptor& method,
                           const ShortForm* short_form) {
  const OperationDoc& doc = DocFor(method);
  std::set<std::string> preset;
  std::string same_as;
  if (short_form != nullptr) {
    std::vector<std::string> flags;
    for (const Preset& p : short_form->presets) {
      preset.insert(p.field);
      flags.push_back(absl::StrCat("--", FlagName(p.field)));
    }
    same_as = absl::StrCat("Same as `cofferctl ", group.spec.name, " ",
                           ShortFormExpansion(*short_form), "`.\n",
                           flags.empty() ? ""
                                         : absl::StrCat(absl::StrJoin(flags, ", "),
                                                        ": set by this short form; giving it "
                                                        "again is an error.\n"),
                           "\n");
  }
  std::string synopsis;
  for (const std::string& field : doc.required) {
    if (preset.count(field) > 0) continue;
    absl::StrAppend(&synopsis, " --", FlagName(field), "=<", field, ">");
  }
  std::string examples;
  for (const std::string& example : doc.examples) absl::StrAppend(&examples, "  ", example, "\n");
  const std::set<std::string> required(doc.required.begin(), doc.required.end());
  return absl::StrCat(
      "Usage: cofferctl ", group.spec.name, " ",
      short_form != nullptr ? short_form->name : OperationName(method.name()), synopsis,
      " [flags]\n\n", same_as, "Calls ", method.full_name(), "(", method.input_type()->full_name(),
      ") -> ", method.server_streaming() ? "stream " : "", method.output_type()->full_name(),
      StreamingNote(method), ".\n\n", Indented(MethodComment(method), 0),
      MethodComment(method).empty() ? "" : "\n", "Request fields:\n",
      RequestFlagsUsage(*method.input_type(), required, preset),
      "\nAny value may instead be file://<path> (the file's content; string and bytes\n"
      "fields take every byte as it is), fileb://<path> (bytes fields) or - (standard\n"
      "input), so that no secret has to be on the command line.\n\n",
      examples.empty() ? "" : absl::StrCat("Examples:\n", examples, "\n"),
      TextOutputNote(method, doc), "\n",
      GlobalFlagsUsage(group.spec.default_address,
                       method.server_streaming() && !method.client_streaming()));
}

}  // namespace coffer::cofferctl
