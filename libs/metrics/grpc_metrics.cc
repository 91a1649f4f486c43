#include "libs/metrics/grpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace coffer::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;

// go-grpc-prometheus spells codes as Go does (codes.Code.String()), and
// existing dashboards query those spellings.
constexpr const char* kCodeNames[kNumGrpcCodes] = {
    "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated",
};

size_t CodeIndex(grpc::StatusCode code) {
  int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(kNumGrpcCodes) ? static_cast<size_t>(i)
                                                       : static_cast<size_t>(grpc::UNKNOWN);
}

// Both sides' RpcInfo::Type enums spell the four types alike.
template <typename Type>
RpcType ToRpcType(Type type) {
  if (type == Type::UNARY) return RpcType::kUnary;
  if (type == Type::CLIENT_STREAMING) return RpcType::kClientStream;
  if (type == Type::SERVER_STREAMING) return RpcType::kServerStream;
  if (type == Type::BIDI_STREAMING) return RpcType::kBidiStream;
  return RpcType::kUnknown;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One RPC on one side: started once and handled once, with the time between.
// A server RPC starts on creation (the handler is about to run) and is
// handled when its status is about to be sent. A client call starts when its
// initial metadata goes out and is handled when its status arrives
// (including failures the channel itself produces).
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  enum class Side { kServer, kClient };

  CallInterceptor(std::shared_ptr<GrpcMetrics> metrics, Side side, const char* method, RpcType type)
      : metrics_(std::move(metrics)),
        side_(side),
        probe_(side == Side::kServer ? metrics_->server() : metrics_->client()),
        series_(probe_.For(method != nullptr ? method : "", type)) {
    if (side_ == Side::kServer) probe_.Started(series_);
  }

  void Intercept(InterceptorBatchMethods* methods) override {
    if (side_ == Side::kClient &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      start_ = std::chrono::steady_clock::now();
      probe_.Started(series_);
    }
    if (!done_ && side_ == Side::kServer &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Handled(methods->GetSendStatus().error_code());
    }
    if (!done_ && side_ == Side::kClient &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_STATUS)) {
      const grpc::Status* status = methods->GetRecvStatus();
      Handled(status ? status->error_code() : grpc::UNKNOWN);
    }
    methods->Proceed();
  }

 private:
  void Handled(grpc::StatusCode code) {
    done_ = true;
    probe_.Handled(series_, code, SecondsSince(start_));
  }

  // Keeps the probe alive as long as a call uses it.
  const std::shared_ptr<GrpcMetrics> metrics_;
  const Side side_;
  RpcProbe& probe_;
  RpcProbe::Series* const series_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  bool done_ = false;
};

class ServerFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ServerFactory(std::shared_ptr<GrpcMetrics> metrics) : metrics_(std::move(metrics)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(metrics_, CallInterceptor::Side::kServer, info->method(),
                               ToRpcType(info->type()));
  }

 private:
  std::shared_ptr<GrpcMetrics> metrics_;
};

class ClientFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit ClientFactory(std::shared_ptr<GrpcMetrics> metrics) : metrics_(std::move(metrics)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    return new CallInterceptor(metrics_, CallInterceptor::Side::kClient, info->method(),
                               ToRpcType(info->type()));
  }

 private:
  std::shared_ptr<GrpcMetrics> metrics_;
};

}  // namespace

const char* RpcTypeName(RpcType type) {
  switch (type) {
    case RpcType::kUnary:
      return "unary";
    case RpcType::kClientStream:
      return "client_stream";
    case RpcType::kServerStream:
      return "server_stream";
    case RpcType::kBidiStream:
      return "bidi_stream";
    case RpcType::kUnknown:
      break;
  }
  return "unknown";
}

const char* GrpcCodeName(grpc::StatusCode code) { return kCodeNames[CodeIndex(code)]; }

std::pair<std::string, std::string> SplitMethodName(absl::string_view full_method) {
  absl::string_view rest = full_method;
  if (absl::ConsumePrefix(&rest, "/")) {
    size_t slash = rest.find('/');
    if (slash != absl::string_view::npos && slash > 0 && slash + 1 < rest.size() &&
        rest.find('/', slash + 1) == absl::string_view::npos) {
      return {std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
    }
  }
  return {"unknown", "unknown"};
}

bool IsKnownMethod(absl::string_view full_method) {
  const auto [service, method] = SplitMethodName(full_method);
  if (service == "unknown" && method == "unknown") return false;  // malformed
  // The pool answers from what is already built, else from the encoded
  // descriptors of the linked .proto files (building that file once). A miss
  // costs a lookup under the pool's lock and is not remembered: the pool
  // clears its "known bad" names on every lookup that needs its fallback.
  const google::protobuf::MethodDescriptor* found =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrCat(service, ".", method));
  // "/pkg/Svc.M" spells "pkg.Svc.M" too but is no gRPC path of pkg.Svc.
  return found != nullptr && found->service()->full_name() == service && found->name() == method;
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
  return *kBuckets;
}

RpcProbe::RpcProbe(prometheus::Registry& registry, absl::string_view side, Methods methods)
    : started_(prometheus::BuildCounter()
                   .Name(absl::StrCat("grpc_", side, "_started_total"))
                   .Help(absl::StrCat("Total number of RPCs started on the ", side, "."))
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name(absl::StrCat("grpc_", side, "_handled_total"))
                   .Help(absl::StrCat("Total number of RPCs completed on the ", side,
                                      ", regardless of success or failure."))
                   .Register(registry)),
      handling_seconds_(prometheus::BuildHistogram()
                            .Name(absl::StrCat("grpc_", side, "_handling_seconds"))
                            .Help(absl::StrCat("Histogram of response latency (seconds) of "
                                               "gRPC calls until handled by the ",
                                               side, "."))
                            .Register(registry)),
      methods_(methods) {}

RpcProbe::Series* RpcProbe::For(absl::string_view full_method, RpcType type) {
  auto& by_method = series_[static_cast<size_t>(type)];
  {
    absl::MutexLock lock(&mu_);
    auto it = by_method.find(full_method);
    if (it != by_method.end()) return it->second.get();
  }

  // First call of this path (or a path that is no known method): decide
  // outside our mutex, the descriptor pool has its own.
  const bool named = methods_ == Methods::kAny || IsKnownMethod(full_method);
  absl::MutexLock lock(&mu_);
  if (!named) {
    // Never keyed by the path: a client choosing random names grows nothing.
    std::unique_ptr<Series>& unknown = unknown_[static_cast<size_t>(type)];
    if (unknown == nullptr) unknown = NewSeries("unknown", "unknown", type);
    return unknown.get();
  }
  auto it = by_method.find(full_method);  // another call may have added it meanwhile
  if (it != by_method.end()) return it->second.get();
  auto [service, method] = SplitMethodName(full_method);
  return by_method
      .emplace(std::string(full_method), NewSeries(std::move(service), std::move(method), type))
      .first->second.get();
}

std::unique_ptr<RpcProbe::Series> RpcProbe::NewSeries(std::string service, std::string method,
                                                      RpcType type) {
  auto series = std::make_unique<Series>();
  series->service = std::move(service);
  series->method = std::move(method);
  series->type = type;
  const prometheus::Labels labels = {{"grpc_service", series->service},
                                     {"grpc_method", series->method},
                                     {"grpc_type", RpcTypeName(type)}};
  series->started = &started_.Add(labels);
  series->handling_seconds = &handling_seconds_.Add(labels, LatencyBuckets());
  return series;
}

void RpcProbe::Started(Series* series) { series->started->Increment(); }

void RpcProbe::Handled(Series* series, grpc::StatusCode code, double seconds) {
  const size_t index = CodeIndex(code);
  prometheus::Counter* handled;
  {
    absl::MutexLock lock(&mu_);
    handled = series->handled[index];
    if (handled == nullptr) {
      handled = &handled_.Add({{"grpc_service", series->service},
                               {"grpc_method", series->method},
                               {"grpc_type", RpcTypeName(series->type)},
                               {"grpc_code", kCodeNames[index]}});
      series->handled[index] = handled;
    }
  }
  handled->Increment();
  series->handling_seconds->Observe(seconds);
}

GrpcMetrics::GrpcMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      server_(*registry_, "server", RpcProbe::Methods::kKnown),
      client_(*registry_, "client", RpcProbe::Methods::kAny) {}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewServerInterceptorFactory(
    std::shared_ptr<GrpcMetrics> metrics) {
  return std::make_unique<ServerFactory>(std::move(metrics));
}

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> NewClientInterceptorFactory(
    std::shared_ptr<GrpcMetrics> metrics) {
  return std::make_unique<ClientFactory>(std::move(metrics));
}

}  // namespace coffer::metrics
