#include "libs/metrics/grpc_metrics.h"

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
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
};

size_t CodeIndex(grpc::StatusCode code) {
  int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(kNumGrpcCodes) ? static_cast<size_t>(i)
                                                       : static_cast<size_t>(grpc::UNKNOWN);
}

RpcType FromServerType(grpc::experimental::ServerRpcInfo::Type type) {
  using T = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case T::UNARY:
      return RpcType::kUnary;
    case T::CLIENT_STREAMING:
      return RpcType::kClientStream;
    case T::SERVER_STREAMING:
      return RpcType::kServerStream;
    case T::BIDI_STREAMING:
      return RpcType::kBidiStream;
  }
  return RpcType::kUnknown;
}

RpcType FromClientType(grpc::experimental::ClientRpcInfo::Type type) {
  using T = grpc::experimental::ClientRpcInfo::Type;
  switch (type) {
    case T::UNARY:
      return RpcType::kUnary;
    case T::CLIENT_STREAMING:
      return RpcType::kClientStream;
    case T::SERVER_STREAMING:
      return RpcType::kServerStream;
    case T::BIDI_STREAMING:
      return RpcType::kBidiStream;
    case T::UNKNOWN:
      break;
  }
  return RpcType::kUnknown;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One per server RPC. Started on creation (the handler is about to run),
// handled when the status is about to be sent.
class ServerInterceptor : public grpc::experimental::Interceptor {
 public:
  ServerInterceptor(std::shared_ptr<GrpcMetrics> metrics, RpcProbe::Series* series)
      : metrics_(std::move(metrics)), series_(series) {
    metrics_->server().Started(series_);
  }

  void Intercept(InterceptorBatchMethods* methods) override {
    if (!done_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      done_ = true;
      metrics_->server().Handled(series_, methods->GetSendStatus().error_code(),
                                 SecondsSince(start_));
    }
    methods->Proceed();
  }

 private:
  std::shared_ptr<GrpcMetrics> metrics_;
  RpcProbe::Series* series_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  bool done_ = false;
};

class ServerFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ServerFactory(std::shared_ptr<GrpcMetrics> metrics) : metrics_(std::move(metrics)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    RpcProbe::Series* series =
        metrics_->server().For(method ? method : "", FromServerType(info->type()));
    return new ServerInterceptor(metrics_, series);
  }

 private:
  std::shared_ptr<GrpcMetrics> metrics_;
};

// One per client call. Started when initial metadata goes out, handled when
// the status arrives (including failures the channel itself produces).
class ClientInterceptor : public grpc::experimental::Interceptor {
 public:
  ClientInterceptor(std::shared_ptr<GrpcMetrics> metrics, RpcProbe::Series* series)
      : metrics_(std::move(metrics)), series_(series) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      start_ = std::chrono::steady_clock::now();
      metrics_->client().Started(series_);
    }
    if (!done_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_STATUS)) {
      done_ = true;
      const grpc::Status* status = methods->GetRecvStatus();
      metrics_->client().Handled(series_, status ? status->error_code() : grpc::UNKNOWN,
                                 SecondsSince(start_));
    }
    methods->Proceed();
  }

 private:
  std::shared_ptr<GrpcMetrics> metrics_;
  RpcProbe::Series* series_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  bool done_ = false;
};

class ClientFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit ClientFactory(std::shared_ptr<GrpcMetrics> metrics) : metrics_(std::move(metrics)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    const char* method = info->method();
    RpcProbe::Series* series =
        metrics_->client().For(method ? method : "", FromClientType(info->type()));
    return new ClientInterceptor(metrics_, series);
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

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
  return *kBuckets;
}

RpcProbe::RpcProbe(prometheus::Registry& registry, absl::string_view side)
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
                            .Register(registry)) {}

RpcProbe::Series* RpcProbe::For(absl::string_view full_method, RpcType type) {
  absl::MutexLock lock(&mu_);
  auto& by_method = series_[static_cast<size_t>(type)];
  auto it = by_method.find(full_method);
  if (it != by_method.end()) return it->second.get();

  auto series = std::make_unique<Series>();
  std::tie(series->service, series->method) = SplitMethodName(full_method);
  series->type = type;
  const prometheus::Labels labels = {{"grpc_service", series->service},
                                     {"grpc_method", series->method},
                                     {"grpc_type", RpcTypeName(type)}};
  series->started = &started_.Add(labels);
  series->handling_seconds = &handling_seconds_.Add(labels, LatencyBuckets());
  Series* raw = series.get();
  by_method.emplace(std::string(full_method), std::move(series));
  return raw;
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
      server_(*registry_, "server"),
      client_(*registry_, "client") {}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewServerInterceptorFactory(
    std::shared_ptr<GrpcMetrics> metrics) {
  return std::make_unique<ServerFactory>(std::move(metrics));
}

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> NewClientInterceptorFactory(
    std::shared_ptr<GrpcMetrics> metrics) {
  return std::make_unique<ClientFactory>(std::move(metrics));
}

}  // namespace coffer::metrics
