#include "tools/cofferctl/caller.h"

#include <grpcpp/client_context.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/generic_call.h"
#include "libs/rpc/status.h"
#include "libs/rpc/tls.h"
#include "tools/cofferctl/output.h"
#include "tools/cofferctl/text_output.h"

namespace coffer::cofferctl {

namespace pb = google::protobuf;

namespace {

std::string MethodPath(const pb::MethodDescriptor& method) {
  return absl::StrCat("/", method.service()->full_name(), "/", method.name());
}

absl::StatusOr<std::unique_ptr<pb::Message>> NewResponse(const pb::MethodDescriptor& method) {
  std::unique_ptr<pb::Message> response = rpc::NewMessage(*method.output_type());
  if (response == nullptr) {
    return absl::InternalError(
        absl::StrCat("no generated code for ", method.output_type()->full_name()));
  }
  return response;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const ConnectionOptions& connection) {
  rpc::ChannelOptions options;
  options.target = connection.address;
  options.tls.ca_file = connection.ca_file;
  options.tls.cert_file = connection.cert_file;
  options.tls.key_file = connection.key_file;
  options.authority = connection.authority;
  options.expected_spiffe_id = connection.server_spiffe_id.value_or("");
  COFFER_RETURN_IF_ERROR(rpc::CheckTlsFiles(options.tls));
  return rpc::MakeChannel(std::move(options));
}

// A rotation worker's script acts inside one rotation: the exec worker puts
// the rotation's token in $COFFER_ROTATION_TOKEN and every call carries it,
// as the store requires of workers writing the secret they rotate.
static void AddRotationToken(grpc::ClientContext& context) {
  const char* token = std::getenv("COFFER_ROTATION_TOKEN");
  if (token != nullptr && *token != '\0') context.AddMetadata("coffer-rotation-token", token);
}

absl::StatusOr<std::unique_ptr<pb::Message>> CallUnary(
    const std::shared_ptr<grpc::Channel>& channel, const pb::MethodDescriptor& method,
    const pb::Message& request, absl::Duration timeout) {
  if (method.client_streaming() || method.server_streaming()) {
    return absl::UnimplementedError(
        absl::StrCat(method.full_name(), " is a streaming RPC; CallUnary cannot call it"));
  }
  COFFER_ASSIGN_OR_RETURN(std::unique_ptr<pb::Message> response, NewResponse(method));

  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  AddRotationToken(context);
  const grpc::Status result =
      rpc::CallGenericUnary(channel, method, request, context, response.get());
  if (!result.ok()) return rpc::FromGrpcStatus(result);
  return response;
}

void Canceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

bool Canceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Canceller::Attach(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  context_ = context;
  return true;
}

void Canceller::Detach() {
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
}

absl::Status CallServerStreaming(const std::shared_ptr<grpc::Channel>& channel,
                                 const pb::MethodDescriptor& method, const pb::Message& request,
                                 absl::Duration timeout,
                                 const std::function<bool(const pb::Message&)>& on_message,
                                 Canceller* canceller) {
  if (method.client_streaming() || !method.server_streaming()) {
    return absl::UnimplementedError(
        absl::StrCat(method.full_name(), " is not a server-streaming RPC"));
  }
  COFFER_ASSIGN_OR_RETURN(std::unique_ptr<pb::Message> message, NewResponse(method));

  grpc::ClientContext context;
  AddRotationToken(context);
  const bool bounded = timeout != absl::InfiniteDuration();
  if (bounded) context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (canceller != nullptr && !canceller->Attach(&context)) return absl::OkStatus();

  const std::string path = MethodPath(method);
  const grpc::internal::RpcMethod rpc_method(path.c_str(),
                                             grpc::internal::RpcMethod::SERVER_STREAMING);
  grpc::Status result;
  bool stopped = false;  // on_message said enough
  {
    // What generated stubs do for a server-streaming method; the reader
    // (de)serializes through pb::Message, so any method type works.
    std::unique_ptr<grpc::ClientReader<pb::Message>> reader(
        grpc::internal::ClientReaderFactory<pb::Message>::Create(channel.get(), rpc_method,
                                                                 &context, request));
    while (reader->Read(message.get())) {
      if (!on_message(*message)) {
        stopped = true;
        context.TryCancel();
        break;
      }
      message->Clear();
    }
    if (stopped) {
      while (reader->Read(message.get())) {  // drops what was still in flight
      }
    }
    result = reader->Finish();
  }
  bool cancelled = false;
  if (canceller != nullptr) {
    cancelled = canceller->cancelled();
    canceller->Detach();  // before `context` goes away
  }
  if (result.ok() || stopped || cancelled) return absl::OkStatus();
  if (bounded && result.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::OkStatus();  // the --timeout of a watch ran out
  }
  return rpc::FromGrpcStatus(result);
}

absl::StatusOr<int64_t> PrintServerStream(const std::shared_ptr<grpc::Channel>& channel,
                                          const pb::MethodDescriptor& method,
                                          const pb::Message& request, absl::Duration timeout,
                                          int64_t max_events, std::ostream& out,
                                          Canceller* canceller, OutputFormat format) {
  int64_t printed = 0;
  absl::Status output_error;
  absl::Status status = CallServerStreaming(
      channel, method, request, timeout,
      [&](const pb::Message& message) {
        absl::StatusOr<std::string> line =
            format == OutputFormat::kText ? absl::StatusOr<std::string>(FormatTextLine(message))
                                          : FormatJsonLine(message);
        if (!line.ok()) {
          output_error = line.status();
          return false;
        }
        out << *line << std::flush;
        if (!out) {
          output_error = absl::UnavailableError("cannot write to the output");
          return false;
        }
        ++printed;
        return max_events <= 0 || printed < max_events;
      },
      canceller);
  if (!output_error.ok()) return output_error;
  if (!status.ok()) return status;
  return printed;
}

}  // namespace coffer::cofferctl
