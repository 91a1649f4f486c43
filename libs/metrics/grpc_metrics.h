// grpc_metrics.h: the gRPC "probe" behind Metrics' interceptors (internal).
//
// Holds the go-grpc-prometheus families for one side (server or client) and
// caches the series of each (method, type), so that an RPC costs one map
// lookup under a mutex and no label maps or bucket vectors are rebuilt. The
// server side names only methods of the linked protobuf services; any other
// path a client sends shares one series per type labelled "unknown", and
// creates no series and no cache entry of its own:
//
//   auto probe = std::make_shared<GrpcMetrics>(registry);
//   RpcProbe::Series* s = probe->server().For("/pkg.Svc/Get", RpcType::kUnary);
//   probe->server().Started(s);
//   probe->server().Handled(s, grpc::StatusCode::NOT_FOUND, 0.004);
//
// Only libs/metrics uses this header; services go through metrics.h.
#pragma once

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace coffer::metrics {

enum class RpcType { kUnary, kClientStream, kServerStream, kBidiStream, kUnknown };
inline constexpr size_t kNumRpcTypes = 5;
inline constexpr size_t kNumGrpcCodes = 17;  // OK .. UNAUTHENTICATED

// "unary", "client_stream", "server_stream", "bidi_stream" (go-grpc-prometheus).
const char* RpcTypeName(RpcType type);
// Go spelling as go-grpc-prometheus writes it: "OK", "NotFound", ...; codes
// outside the canonical range are "Unknown".
const char* GrpcCodeName(grpc::StatusCode code);
// "/pkg.Service/Method" -> {"pkg.Service", "Method"}; anything else (the sync
// server names unimplemented methods "unknown") -> {"unknown", "unknown"}, so
// labels never carry an arbitrary client-sent path.
std::pair<std::string, std::string> SplitMethodName(absl::string_view full_method);
// True if "/pkg.Service/Method" names a method of a service in the generated
// descriptor pool (the .proto files linked into the process: Coffer's
// services, grpc.health.v1.Health, and grpc.reflection.v1alpha.ServerReflection
// where gRPC's reflection library is linked). Never caches: a miss leaves no
// trace (protobuf keeps at most the last missed name).
bool IsKnownMethod(absl::string_view full_method);

// The latency buckets of both handling_seconds histograms.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

// One side's families: <prefix>_started_total, <prefix>_handled_total and
// <prefix>_handling_seconds. Thread-safe.
class RpcProbe {
 public:
  // The series of one (method, type). Owned by the probe; stable.
  struct Series {
    prometheus::Counter* started = nullptr;
    prometheus::Histogram* handling_seconds = nullptr;
    std::string service;
    std::string method;
    RpcType type = RpcType::kUnknown;
    // Filled on first use of each code, under the probe's mutex.
    std::array<prometheus::Counter*, kNumGrpcCodes> handled{};
  };

  // Which paths get a series of their own.
  enum class Methods {
    kAny,    // every well-formed "/pkg.Service/Method" (the client side: our own stubs)
    kKnown,  // only IsKnownMethod ones; the rest share the "unknown" series
  };

  // `side` is "server" or "client" (names and help texts).
  RpcProbe(prometheus::Registry& registry, absl::string_view side, Methods methods);
  RpcProbe(const RpcProbe&) = delete;
  RpcProbe& operator=(const RpcProbe&) = delete;

  // The series of `full_method`; with Methods::kKnown, the shared unknown
  // series of `type` for a path that is not a known method.
  Series* For(absl::string_view full_method, RpcType type);
  void Started(Series* series);
  void Handled(Series* series, grpc::StatusCode code, double seconds);

 private:
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  const Methods methods_;

  std::unique_ptr<Series> NewSeries(std::string service, std::string method, RpcType type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  // Per type, keyed by the full method name (string_view lookups allocate
  // nothing). With Methods::kKnown only known methods are keys, so the maps
  // are bounded by the linked services.
  std::array<absl::flat_hash_map<std::string, std::unique_ptr<Series>>, kNumRpcTypes> series_
      ABSL_GUARDED_BY(mu_);
  // Per type, the series of every path that is not a known method (kKnown);
  // made on first use.
  std::array<std::unique_ptr<Series>, kNumRpcTypes> unknown_ ABSL_GUARDED_BY(mu_);
};

// The gRPC probe of one process: server and client sides over one registry.
class GrpcMetrics {
 public:
  explicit GrpcMetrics(std::shared_ptr<prometheus::Registry> registry);

  RpcProbe& server() { return server_; }
  RpcProbe& client() { return client_; }

 private:
  // Keeps the families alive as long as an interceptor factory holds us.
  std::shared_ptr<prometheus::Registry> registry_;
  RpcProbe server_;
  RpcProbe client_;
};

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewServerInterceptorFactory(
    std::shared_ptr<GrpcMetrics> metrics);
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> NewClientInterceptorFactory(
    std::shared_ptr<GrpcMetrics> metrics);

}  // namespace coffer::metrics
