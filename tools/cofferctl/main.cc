// cofferctl: the operator command-line client of Coffer.
//
//   cofferctl kms create-key --description="app data" --tags env=prod
//   cofferctl kms encrypt --key-id=alias/app --plaintext-file=pw.txt
//       --encryption-context app=catagram
//   cofferctl kms decrypt --ciphertext-blob-file=pw.enc --output-file=pw.txt
//
// Exit codes: 0 success, 1 the call failed (or the output could not be
// written), 2 bad command line.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/cofferctl/caller.h"
#include "tools/cofferctl/command_table.h"
#include "tools/cofferctl/invocation.h"
#include "tools/cofferctl/output.h"
#include "tools/cofferctl/request_builder.h"

namespace coffer::cofferctl {
namespace {

constexpr int kCallFailed = 1;
constexpr int kUsage = 2;

int UsageError(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return kUsage;
}

int Run(const std::vector<std::string>& args) {
  const CommandTable table = CommandTable::FromGeneratedPool();
  absl::StatusOr<Invocation> parsed = ParseInvocation(args, SystemEnv);
  if (!parsed.ok()) return UsageError(std::string(parsed.status().message()));
  Invocation& inv = *parsed;

  if (inv.group.empty()) {
    std::cout << TopUsage(table);
    return 0;
  }
  const Group* group = table.FindGroup(inv.group);
  if (group == nullptr) {
    std::vector<std::string> names;
    for (const Group& g : table.groups()) names.push_back(g.spec.name);
    return UsageError(absl::StrCat("unknown group '", inv.group,
                                   "'; known groups: ", absl::StrJoin(names, ", ")));
  }
  if (inv.operation.empty()) {
    std::cout << GroupUsage(*group);
    return 0;
  }
  const google::protobuf::MethodDescriptor* method =
      CommandTable::FindOperation(*group, inv.operation);
  if (method == nullptr) {
    return UsageError(absl::StrCat("unknown operation '", inv.operation, "' in group '",
                                   group->spec.name, "'; `cofferctl ", group->spec.name,
                                   "` lists the operations"));
  }
  if (inv.help) {
    std::cout << OperationUsage(*group, *method);
    return 0;
  }
  if (method->client_streaming() || method->server_streaming()) {
    return UsageError(absl::StrCat(inv.operation, " is a streaming RPC; streaming not supported yet"));
  }

  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
      BuildRequest(*method->input_type(), inv.request_args);
  if (!request.ok()) return UsageError(std::string(request.status().message()));
  const OutputOptions output{inv.output_file, inv.output_field};
  if (!output.file.empty()) {
    // Check --output-field before the call, not after a plaintext arrived.
    std::unique_ptr<google::protobuf::Message> probe(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(method->output_type())
            ->New());
    absl::StatusOr<std::string> field = TakeBytesField(*probe, output.field);
    if (!field.ok()) return UsageError(std::string(field.status().message()));
  }

  ApplyAddressDefault(inv, group->spec.default_address, SystemEnv);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(inv.connection);
  if (!channel.ok()) {
    std::cerr << FormatError(channel.status()) << "\n";
    return kCallFailed;
  }
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> response =
      CallUnary(*channel, *method, **request, inv.connection.timeout);
  if (!response.ok()) {
    std::cerr << FormatError(response.status()) << "\n";
    return kCallFailed;
  }
  absl::StatusOr<std::string> json = RenderResponse(**response, output);
  if (!json.ok()) {
    std::cerr << FormatError(json.status()) << "\n";
    return kCallFailed;
  }
  std::cout << *json;
  return 0;
}

}  // namespace
}  // namespace coffer::cofferctl

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return coffer::cofferctl::Run(args);
}
