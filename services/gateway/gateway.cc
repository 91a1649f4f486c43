#include "services/gateway/gateway.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/dynamic_message.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/metrics/grpc_metrics.h"
#include "libs/rpc/client_call.h"
#include "libs/rpc/generic_call.h"
#include "libs/rpc/unary.h"
#include "libs/sigv4/sigv4.h"

namespace coffer::gateway {
namespace {

namespace pb = google::protobuf;

constexpr char kJson[] = "application/x-amz-json-1.1";

absl::Status UnknownOperation(absl::string_view target) {
  return ErrorWithCode(
      absl::StatusCode::kUnimplemented, "UnknownOperationException",
      target.empty() ? "X-Amz-Target is missing" : absl::StrCat("Unknown operation ", target));
}

class GrpcBackends final : public Backends {
 public:
  GrpcBackends(std::shared_ptr<grpc::Channel> store, std::shared_ptr<grpc::Channel> kms,
               absl::Duration timeout)
      : store_(std::move(store)), kms_(std::move(kms)), timeout_(timeout) {}

  absl::StatusOr<std::unique_ptr<pb::Message>> Call(
      const AwsOperation& op, const pb::Message& request,
      const runtime::ForwardedSignature& signature) override {
    const bool kms = op.backend == Backend::kKms;
    std::unique_ptr<pb::Message> response = rpc::NewMessage(*op.method->output_type());
    if (response == nullptr) {
      return absl::InternalError(absl::StrCat("no response type for ", op.target));
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    context.AddMetadata(runtime::kSigV4AuthorizationMetadata, signature.authorization);
    context.AddMetadata(runtime::kSigV4DateMetadata, signature.amz_date);
    context.AddMetadata(runtime::kSigV4CanonicalRequestMetadata, signature.canonical_request);
    const grpc::Status result =
        rpc::CallGenericUnary(kms ? kms_ : store_, *op.method, request, context, response.get());
    if (!result.ok()) {
      WipeMessage(response.get());
      return rpc::ClientStatus(result, kms ? "coffer-kms" : "coffer-store");
    }
    return response;
  }

 private:
  std::shared_ptr<grpc::Channel> store_;
  std::shared_ptr<grpc::Channel> kms_;
  absl::Duration timeout_;
};

// The first value of header `name` (lower case), or "".
std::string Header(const http::HttpRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? std::string() : it->second;
}

}  // namespace

std::unique_ptr<Backends> MakeGrpcBackends(std::shared_ptr<grpc::Channel> store,
                                           std::shared_ptr<grpc::Channel> kms,
                                           absl::Duration timeout) {
  return std::make_unique<GrpcBackends>(std::move(store), std::move(kms), timeout);
}

http::HttpResponse HttpRefusal(int status) {
  std::string message;
  switch (status) {
    case 413:
      message = "Request body too large";
      break;
    case 431:
      message = "Too many request headers";
      break;
    default:
      message = absl::StrCat("Malformed HTTP request (", status, ")");
  }
  http::HttpResponse response(status, kJson,
                              AwsErrorBody(AwsError{status, "SerializationException", message}));
  response.headers.emplace_back("x-amzn-RequestId", NewUuid());
  return response;
}

Gateway::Gateway(const GatewayOptions& options, Backends* backends, prometheus::Registry* registry)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : RealClock()),
      backends_(backends),
      limiter_(options.requests_per_second, options.burst, options.max_tracked_keys) {
  if (registry == nullptr) return;
  requests_ = &prometheus::BuildCounter()
                   .Name("coffer_gateway_requests_total")
                   .Help(
                       "AWS requests answered, by operation (X-Amz-Target; \"unknown\" for "
                       "none) and result (OK or the AWS error type)")
                   .Register(*registry);
  seconds_ = &prometheus::BuildHistogram()
                  .Name("coffer_gateway_request_duration_seconds")
                  .Help("Time to answer an AWS request, by operation")
                  .Register(*registry);
}

http::HttpResponse Gateway::Handle(const http::HttpRequest& request) {
  const absl::Time start = absl::Now();
  const AwsOperation* op = nullptr;
  std::string result = "OK";
  http::HttpResponse response = Serve(request, &op, &result);
  response.headers.emplace_back("x-amzn-RequestId", NewUuid());
  if (requests_ != nullptr) {
    const std::string operation = op != nullptr ? op->target : "unknown";
    requests_->Add({{"operation", operation}, {"result", result}}).Increment();
    seconds_->Add({{"operation", operation}}, metrics::LatencyBuckets())
        .Observe(absl::ToDoubleSeconds(absl::Now() - start));
  }
  return response;
}

http::HttpResponse Gateway::Serve(const http::HttpRequest& request, const AwsOperation** op_out,
                                  std::string* result) {
  const AwsOperation* op = nullptr;
  auto fail = [&](const absl::Status& status) {
    const AwsError error = AwsErrorFromStatus(op, status);
    *result = error.type;  // one of a fixed set: a metric label
    return http::HttpResponse{error.http_status, kJson, AwsErrorBody(error)};
  };
  if (request.method == "GET" && request.path == "/ping") {
    return http::HttpResponse{200, "text/plain", "ok\n"};
  }
  const std::string target = Header(request, "x-amz-target");
  op = FindAwsOperation(target);
  *op_out = op;
  if (request.method != "POST" || request.path != "/" || op == nullptr) {
    return fail(UnknownOperation(target));
  }

  // Who signed, for which service (the answering service checks the rest).
  const std::string authorization = Header(request, "authorization");
  if (authorization.empty()) {
    return fail(sigv4::MakeSigV4Error(sigv4::SigV4Error::kMissingAuthenticationToken,
                                      "Missing Authentication Token"));
  }
  absl::StatusOr<sigv4::Authorization> auth = sigv4::ParseAuthorization(authorization);
  if (!auth.ok()) return fail(auth.status());
  if (auth->scope.service != op->signing_service) {
    return fail(
        sigv4::MakeSigV4Error(sigv4::SigV4Error::kInvalidSignature,
                              absl::StrCat("Credential should be scoped to correct service: '",
                                           op->signing_service, "'. ")));
  }
  const std::string amz_date = Header(request, "x-amz-date");
  if (amz_date.empty()) {
    return fail(sigv4::MakeSigV4Error(sigv4::SigV4Error::kIncompleteSignature,
                                      "Authorization header requires existence of either a "
                                      "'X-Amz-Date' or a 'Date' header."));
  }
  if (!limiter_.Allow(auth->access_key_id, clock_->Now())) {
    return fail(Error(reason::kThrottling, "Rate exceeded"));
  }
  std::vector<sigv4::HttpHeader> headers;
  headers.reserve(request.header_list.size());
  for (const auto& [name, value] : request.header_list) headers.push_back({name, value});
  const sigv4::HttpRequestView view{request.method, request.path, request.query, headers,
                                    request.body};
  absl::StatusOr<std::string> canonical = sigv4::CanonicalRequest(view, auth->signed_headers);
  if (!canonical.ok()) return fail(canonical.status());

  absl::StatusOr<std::unique_ptr<pb::Message>> call = RequestFromAwsJson(*op, request.body);
  if (!call.ok()) return fail(call.status());
  absl::StatusOr<std::unique_ptr<pb::Message>> answer =
      backends_->Call(*op, **call, {authorization, amz_date, *std::move(canonical)});
  WipeMessage(call->get());
  if (!answer.ok()) return fail(answer.status());
  absl::StatusOr<std::string> json = ResponseToAwsJson(*op, **answer);
  WipeMessage(answer->get());
  if (!json.ok()) return fail(json.status());
  http::HttpResponse ok{200, kJson, *std::move(json)};
  ok.sensitive = true;
  return ok;
}

}  // namespace coffer::gateway
