// command_table.h: which `cofferctl <group> <operation>` commands exist.
//
// Groups map to gRPC services through one small table (kGroupTable in
// command_table.cc); a group is offered only when its service descriptor is
// in the generated descriptor pool, i.e. when its generated code is linked
// in. Operations are the service's RPCs in kebab-case (CreateKey ->
// create-key), found by reflection, so a new RPC or a new linked service gets
// CLI coverage without touching cofferctl.
//
//   coffer::cofferctl::CommandTable table = CommandTable::FromGeneratedPool();
//   const Group* kms = table.FindGroup("kms");
//   const google::protobuf::MethodDescriptor* m = table.FindOperation(*kms, "create-key");
//   std::string help = OperationUsage(*kms, *m);
//
// Server-streaming operations are listed with "(server stream: one JSON
// object per line)"; client-streaming ones cannot be called. A group's
// short forms (short_forms.h: `cofferctl access-keys disable`) are listed
// after its operations.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace coffer::cofferctl {

struct ShortForm;  // short_forms.h

// One row of the group table: what a group is called on the command line,
// which service it calls, where that service listens by default and the
// SPIFFE ID it must present (pinned in the TLS handshake).
struct GroupSpec {
  std::string name;                      // "kms"
  std::string service_name;              // "coffer.kms.v1.KeyManagement"
  std::string default_address;           // "localhost:7701"
  std::string default_server_spiffe_id;  // "spiffe://coffer.local/kms"
};

// Every group cofferctl knows about, linked in or not.
const std::vector<GroupSpec>& KnownGroups();

// A group whose service descriptor was found.
struct Group {
  GroupSpec spec;
  const google::protobuf::ServiceDescriptor* service = nullptr;
};

class CommandTable {
 public:
  // The groups of KnownGroups() whose services are in the generated pool.
  static CommandTable FromGeneratedPool();
  // The groups of `specs` whose services are in `pool` (for tests).
  static CommandTable FromPool(const google::protobuf::DescriptorPool& pool,
                               const std::vector<GroupSpec>& specs);

  const std::vector<Group>& groups() const { return groups_; }
  // nullptr when there is no such group.
  const Group* FindGroup(absl::string_view name) const;
  // Looks an operation up by kebab-case name (or by the exact RPC name);
  // nullptr when the service has no such method.
  static const google::protobuf::MethodDescriptor* FindOperation(const Group& group,
                                                                 absl::string_view operation);

 private:
  std::vector<Group> groups_;
};

// "GenerateDataKeyWithoutPlaintext" -> "generate-data-key-without-plaintext".
// A run of capitals is one word: "GetHTTPConfig" -> "get-http-config".
std::string OperationName(absl::string_view rpc_name);
// The inverse for names without acronyms: "re-encrypt" -> "ReEncrypt".
std::string RpcName(absl::string_view operation);
// "key_id" -> "key-id", the way a field is spelled as a flag.
std::string FlagName(absl::string_view field_name);

// Help texts (end with a newline).
std::string TopUsage(const CommandTable& table);
std::string GroupUsage(const Group& group);
// With `short_form` (an entry of ShortForms() for `method`): the short
// form's help, which names what it stands for and leaves its presets out of
// the flags.
std::string OperationUsage(const Group& group, const google::protobuf::MethodDescriptor& method,
                           const ShortForm* short_form = nullptr);
// `cofferctl watch` help: the watch aliases (WatchAliases() in
// invocation.h) whose groups are in `table`.
std::string WatchUsage(const CommandTable& table);
// Just the alias lines of WatchUsage (also part of TopUsage); empty when
// no alias's group is linked.
std::string WatchUsageLines(const CommandTable& table);

}  // namespace coffer::cofferctl
