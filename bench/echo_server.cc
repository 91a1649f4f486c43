// echo_server: the echo baseline of the benchmarks — a unary service that
// sends its request's payload back from memory, served exactly as Coffer's
// services are served (libs/runtime's flags and main, libs/rpc's server with
// mTLS and client certificates required, the gRPC metrics interceptor, the
// callback API), so that its throughput and latency are the ceiling that a
// Coffer call, which does real work on top, is measured against.
//
//   build/bench/echo_server --listen_address=127.0.0.1:0 --metrics_address=
//     --tls_ca=pki/ca.crt --tls_cert=pki/store.crt --tls_key=pki/store.key
//     --ports_file=echo.ports      # {"grpc":N,...} once serving
//   build/bench/coffer_load --op=echo --target=localhost:N ...
//
// --via_executor: answer from a pool of --call_threads threads instead of
// gRPC's callback thread, the hop every Coffer call makes through its
// CallGate (without authorization or audit): the difference between the two
// is what that hop costs.
#include <algorithm>
#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "bench/proto/echo.grpc.pb.h"
#include "libs/common/executor.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/server.h"
#include "libs/runtime/service_flags.h"

ABSL_FLAG(bool, via_executor, false,
          "answer from a BoundedExecutor of --call_threads threads (the services' hop off "
          "gRPC's threads) instead of gRPC's callback thread");
ABSL_DECLARE_FLAG(int, call_threads);
ABSL_DECLARE_FLAG(int, max_calls_in_flight);

namespace coffer::bench {
namespace {

namespace ev1 = ::coffer::bench::v1;

class EchoService final : public ev1::Echo::CallbackService {
 public:
  explicit EchoService(BoundedExecutor* executor) : executor_(executor) {}

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const ev1::EchoRequest* request,
                                 ev1::EchoResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto answer = [request, response, reactor] {
      response->set_payload(request->payload());
      reactor->Finish(grpc::Status::OK);
    };
    if (executor_ == nullptr) {
      answer();
    } else if (!executor_->TrySchedule(answer)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many calls"));
    }
    return reactor;
  }

 private:
  BoundedExecutor* executor_;
};

absl::Status Run() {
  COFFER_RETURN_IF_ERROR(runtime::InitProcess());
  COFFER_ASSIGN_OR_RETURN(auto metrics, runtime::StartMetrics("echo"));
  std::unique_ptr<BoundedExecutor> executor;
  if (absl::GetFlag(FLAGS_via_executor)) {
    executor = std::make_unique<BoundedExecutor>(
        "echo-calls", absl::GetFlag(FLAGS_call_threads),
        static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_calls_in_flight))));
  }
  EchoService echo(executor.get());
  rpc::HealthStatus health(runtime::MaxHealthWatches());
  rpc::ServerOptions server_options = runtime::ServerOptionsFromFlags();
  server_options.interceptors.push_back(metrics->ServerInterceptorFactory());
  COFFER_ASSIGN_OR_RETURN(auto server,
                          rpc::Server::Start(std::move(server_options), {&echo}, &health));
  health.Set("", true);
  health.Set(ev1::Echo::service_full_name(), true);
  COFFER_RETURN_IF_ERROR(runtime::WritePortsFile(*server, *metrics));
  log::Info("echo", "serving",
            {{"grpc_port", absl::StrCat(server->port())},
             {"via_executor", absl::GetFlag(FLAGS_via_executor) ? "true" : "false"}});
  runtime::WaitForShutdown(nullptr);
  server->Shutdown(runtime::ShutdownGrace());
  executor.reset();
  return absl::OkStatus();
}

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) {
  return coffer::runtime::ServiceMain(argc, argv, {"echo", 7790, 9790},
                                      "echo_server: the echo baseline of the benchmarks",
                                      coffer::bench::Run);
}
