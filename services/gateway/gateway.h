// gateway.h: coffer-gateway's request path — an AWS JSON 1.1 request over
// HTTPS in, the Coffer gRPC call made for the caller who signed it, the AWS
// JSON answer out.
//
// For each request: the operation from X-Amz-Target (aws_json.h); the SigV4
// Authorization parsed (never verified here: the service that answers
// verifies it, libs/runtime/signed_callers.h, so the gateway cannot act for
// anyone who did not sign); its scope's service must be the operation's;
// the access key's request rate bounded (ThrottlingException); the
// canonical request rebuilt from the HTTP request; the JSON body translated
// to the gRPC request; the call made with the gateway's certificate, the
// signature forwarded as metadata; the response or the error translated
// back. Every answer carries x-amzn-RequestId. Bodies, messages and answers
// that may hold secrets are wiped once done.
//
//   auto backends = MakeGrpcBackends(store_channel, kms_channel, absl::Seconds(10));
//   Gateway gateway(GatewayOptions{}, backends.get(), metrics->registry().get());
//   http::HttpServer::Start(http_options, [&](const http::HttpRequest& r) {
//     return gateway.Handle(r);
//   });
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "libs/common/clock.h"
#include "libs/http/http_server.h"
#include "libs/runtime/signed_callers.h"
#include "services/gateway/aws_json.h"
#include "services/gateway/rate_limiter.h"

namespace grpc {
class Channel;
}
namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace coffer::gateway {

// Where operations go: coffer-store (secrets, parameters) or coffer-kms.
class Backends {
 public:
  virtual ~Backends() = default;
  // Calls `op` with `request` on behalf of the caller who signed `signature`.
  // Errors as the service answered them (UNAVAILABLE when it cannot be
  // reached).
  virtual absl::StatusOr<std::unique_ptr<google::protobuf::Message>> Call(
      const AwsOperation& op, const google::protobuf::Message& request,
      const runtime::ForwardedSignature& signature) = 0;
};

// The backends over mTLS channels (the gateway's own certificate); each
// call's deadline is `timeout`.
std::unique_ptr<Backends> MakeGrpcBackends(std::shared_ptr<grpc::Channel> store,
                                           std::shared_ptr<grpc::Channel> kms,
                                           absl::Duration timeout);

struct GatewayOptions {
  // Requests per second each access key may make, and the burst above it.
  double requests_per_second = 100;
  double burst = 200;
  // Distinct access keys whose rate is remembered (least recently seen
  // forgotten first).
  size_t max_tracked_keys = 100000;
  Clock* clock = nullptr;  // default RealClock()
};

// The AWS-shaped answer to a request the HTTPS server refused before the
// gateway saw it (413 body too large, 431 too many headers, 400 bad HTTP).
http::HttpResponse HttpRefusal(int status);

class Gateway {
 public:
  // `backends` is not owned; `registry` may be null (no metrics).
  Gateway(const GatewayOptions& options, Backends* backends, prometheus::Registry* registry);

  http::HttpResponse Handle(const http::HttpRequest& request);

 private:
  // The request's answer, the operation it named (null when none) and its
  // result ("OK" or the AWS error type).
  http::HttpResponse Serve(const http::HttpRequest& request, const AwsOperation** op,
                           std::string* result);

  GatewayOptions options_;
  Clock* clock_;
  Backends* backends_;
  RateLimiter limiter_;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Histogram>* seconds_ = nullptr;
};

}  // namespace coffer::gateway
