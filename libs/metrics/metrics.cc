#include "libs/metrics/metrics.h"

#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/metrics/grpc_metrics.h"

#ifndef COFFER_VERSION
#error "COFFER_VERSION must be defined by the build (CMake project version)"
#endif

namespace coffer::metrics {

const char* CofferVersion() { return COFFER_VERSION; }

std::unique_ptr<Metrics> Metrics::Create(const std::string& component) {
  std::unique_ptr<Metrics> metrics(new Metrics());
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("coffer_build_info")
      .Help("Coffer build information; the value is always 1.")
      .Register(*metrics->registry_)
      .Add({{"version", CofferVersion()}, {"component", component}})
      .Set(1);
  metrics->grpc_ = std::make_shared<GrpcMetrics>(metrics->registry_);
  return metrics;
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen_address,
                                                        const std::string& component) {
  std::unique_ptr<Metrics> metrics = Create(component);
  // prometheus-cpp (civetweb) reports a failed bind only by throwing; this is
  // the one place Coffer turns that into a status.
  try {
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(listen_address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen_address, ": ", e.what()));
  }
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  const std::vector<int> ports = metrics->exposer_->GetListeningPorts();
  if (ports.empty() || ports.front() <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics: no listening port on ", listen_address));
  }
  metrics->port_ = ports.front();
  return metrics;
}

Metrics::~Metrics() = default;

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::ServerInterceptorFactory() {
  return NewServerInterceptorFactory(grpc_);
}

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
Metrics::ClientInterceptorFactory() {
  return NewClientInterceptorFactory(grpc_);
}

std::string Metrics::Scrape() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace coffer::metrics
