// cofferctl: the operator command-line client of Coffer.
//
//   cofferctl kms create-key --description="app data" --tags env=prod
//   cofferctl kms encrypt --key-id=alias/app --plaintext=fileb://pw.txt
//       --encryption-context app=catagram
//   cofferctl kms decrypt --ciphertext-blob-file=pw.enc --output-file=pw.txt
//   cofferctl secrets get-secret-value --secret-id=prod/db --output=text
//   cofferctl watch params --path=/app --recursive     (until Ctrl-C)
//   cofferctl watch secrets --name-prefix=prod/ --max-events=1 --timeout=10m
//   cofferctl access-keys create --identity=spiffe://coffer.local/app/ci --output=text
//   cofferctl access-keys disable --access-key-id=AKCO...   (a short form)
//   cofferctl audit verify var/audit/store-audit-*.jsonl   (local: no server)
//   cofferctl completion bash                              (local)
//
// Server streams print one line per message (compact JSON, or with
// --output=text tab-separated), flushed per line. They end with exit code 0
// on SIGINT/SIGTERM (the call is cancelled), after --max-events messages, at
// the --timeout (none by default) or when the server finishes the stream.
//
// Failures print `Reason: message` on stderr and exit with the AWS CLI's
// codes: 252 command line, 253 configuration, 254 the service's error, 255
// no answer (failures.h); `audit verify` exits 1 for a broken chain.
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/rpc/server.h"
#include "tools/cofferctl/audit_command.h"
#include "tools/cofferctl/caller.h"
#include "tools/cofferctl/command_table.h"
#include "tools/cofferctl/completion.h"
#include "tools/cofferctl/failures.h"
#include "tools/cofferctl/invocation.h"
#include "tools/cofferctl/operation_docs.h"
#include "tools/cofferctl/output.h"
#include "tools/cofferctl/request_builder.h"
#include "tools/cofferctl/short_forms.h"

namespace coffer::cofferctl {
namespace {

int Fail(absl::string_view reason, absl::string_view message, ExitCode code) {
  std::cerr << FormatLocalError(reason, message) << "\n";
  return code;
}

int UsageError(absl::string_view message) { return Fail(kUsageReason, message, kExitUsage); }

// A problem with the flags of an operation: where to read about them (the
// help of the short form, when one was typed).
int RequestUsageError(const Invocation& inv, absl::string_view message) {
  const std::string& command = inv.short_form != nullptr ? inv.short_form->name : inv.operation;
  return UsageError(
      absl::StrCat(message, " (see `cofferctl ", inv.group, " ", command, " --help`)"));
}

// Nothing was sent: the TLS files could not be read.
int ConfigError(const absl::Status& status) {
  return Fail(kConfigReason, status.message(), kExitConfig);
}

int CallFailed(const absl::Status& status) {
  std::cerr << FormatError(status) << "\n";
  return ExitCodeFor(status);
}

// The call succeeded, but its result could not be written out.
int OutputError(absl::string_view message) { return Fail(kOutputReason, message, kExitNoAnswer); }

// While alive, SIGINT and SIGTERM cancel `canceller` instead of killing the
// process. Must be created before any other thread (gRPC's included)
// exists, so that every thread inherits the blocked signals.
class SignalCancel {
 public:
  explicit SignalCancel(Canceller* canceller) {
    const sigset_t set = rpc::ShutdownSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this, canceller, set] {
      const timespec poll{0, 100 * 1000 * 1000};  // 100 ms: how soon the destructor returns
      while (!stop_.load()) {
        if (sigtimedwait(&set, nullptr, &poll) > 0) {
          canceller->Cancel();
          return;
        }
      }
    });
  }
  ~SignalCancel() {
    stop_.store(true);
    thread_.join();
  }
  SignalCancel(const SignalCancel&) = delete;
  SignalCancel& operator=(const SignalCancel&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A server-streaming call: one JSON line per message on stdout.
int RunServerStream(Invocation& inv, const Group& group,
                    const google::protobuf::MethodDescriptor& method,
                    const google::protobuf::Message& request) {
  if (!inv.output_file.empty()) {
    return UsageError(
        absl::StrCat("--output-file: not available for the server stream ", inv.operation));
  }
  if (inv.output == OutputFormat::kTable) {
    return UsageError(absl::StrCat("--output=table: not available for the server stream ",
                                   inv.operation, "; use json or text"));
  }
  ApplyAddressDefault(inv, group.spec.default_address, SystemEnv);
  ApplyServerIdentityDefault(inv, group.spec.default_server_spiffe_id, SystemEnv);
  Canceller canceller;
  SignalCancel signals(&canceller);  // before Connect starts gRPC's threads
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(inv.connection);
  if (!channel.ok()) return ConfigError(channel.status());
  const absl::Duration timeout =
      inv.connection.timeout_given ? inv.connection.timeout : absl::InfiniteDuration();
  absl::StatusOr<int64_t> printed = PrintServerStream(
      *channel, method, request, timeout, inv.max_events, std::cout, &canceller, inv.output);
  if (!printed.ok()) return CallFailed(printed.status());
  return kExitOk;
}

int Run(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == kAuditGroup) {  // local files: no connection flags
    return RunAudit(std::vector<std::string>(args.begin() + 1, args.end()), std::cout, std::cerr);
  }
  const CommandTable table = CommandTable::FromGeneratedPool();
  if (!args.empty() && args[0] == kCompletionGroup) {
    return RunCompletion(table, std::vector<std::string>(args.begin() + 1, args.end()), std::cout,
                         std::cerr);
  }
  absl::StatusOr<Invocation> parsed = ParseInvocation(args, SystemEnv);
  if (!parsed.ok()) return UsageError(std::string(parsed.status().message()));
  Invocation& inv = *parsed;

  if (inv.group.empty()) {
    std::cout << TopUsage(table);
    return 0;
  }
  if (inv.group == kWatchGroup) {  // `cofferctl watch` without a target
    std::cout << WatchUsage(table);
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
    std::cout << OperationUsage(*group, *method, inv.short_form);
    return 0;
  }
  if (method->client_streaming()) {
    return UsageError(
        absl::StrCat(inv.operation, " is a client-streaming RPC; cofferctl cannot call it"));
  }
  if (!method->server_streaming() && inv.max_events > 0) {
    return UsageError(absl::StrCat("--max-events: only for server streams; ", inv.operation,
                                   " returns one response"));
  }

  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
      BuildOperationRequest(*method, inv.request_args, inv.short_form);
  if (!request.ok()) return RequestUsageError(inv, request.status().message());
  const OperationDoc& doc = DocFor(*method);
  if (method->server_streaming()) return RunServerStream(inv, *group, *method, **request);
  const OutputOptions output{inv.output_file, inv.output_field, inv.output, doc.text_value,
                             doc.table_columns};
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
  ApplyServerIdentityDefault(inv, group->spec.default_server_spiffe_id, SystemEnv);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(inv.connection);
  if (!channel.ok()) return ConfigError(channel.status());
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> response =
      CallUnary(*channel, *method, **request, inv.connection.timeout);
  if (!response.ok()) return CallFailed(response.status());
  absl::StatusOr<std::string> rendered = RenderResponse(**response, output);
  if (!rendered.ok()) return OutputError(rendered.status().message());
  std::cout << *rendered << std::flush;
  if (!std::cout) return OutputError("cannot write to standard output");
  return kExitOk;
}

}  // namespace
}  // namespace coffer::cofferctl

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return coffer::cofferctl::Run(args);
}
