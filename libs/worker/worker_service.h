// worker_service.h: coffer.rotation.v1.RotationWorker over a RotationHandler.
//
//   MyRotation handler(...);
//   auto secrets = coffer::worker::MakeGrpcSecretsClient(store_channel, absl::Seconds(5));
//   coffer::worker::WorkerProbe probe(*metrics->registry());
//   coffer::worker::WorkerService service(&handler, secrets.get(), &probe, {"worker-postgres"});
//   ... rpc::Server::Start(std::move(options), {&service}, &health) ...
//
// For each Step call it validates the request (INVALID_ARGUMENT naming the
// field), checks the caller against `allowed_callers` (PERMISSION_DENIED),
// checks that the token is a rotation in progress (a step repeated after
// finishSecret is a no-op; a token that is not AWSPENDING is
// FAILED_PRECONDITION), runs the handler's method off the gRPC callback
// threads, logs the step's start and end (ids, step, duration, error text —
// never a value) and records coffer_worker_steps_total /
// coffer_worker_step_seconds.
//
// Handlers run on a small pool of threads and must be thread-safe (steps of
// different secrets may run at the same time).
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coffer/rotation/v1/worker.grpc.pb.h"
#include "libs/runtime/call_gate.h"
#include "libs/worker/rotation_handler.h"
#include "libs/worker/secrets_client.h"
#include "libs/worker/worker_probe.h"

namespace coffer::worker {

struct WorkerServiceOptions {
  // Log component, e.g. "worker-postgres".
  std::string component = "worker";
  // SPIFFE IDs that may call Step; empty: any authenticated peer (every
  // listener is mTLS already).
  std::vector<std::string> allowed_callers;
  // Steps that may run at the same time.
  int threads = 4;
  // Where every Step call is audited (not owned); null: not audited.
  runtime::CallGate* gate = nullptr;
};

class WorkerService final : public rotation::v1::RotationWorker::CallbackService {
 public:
  // `handler` and `secrets` are not owned and must outlive the service;
  // `probe` may be null (no metrics).
  WorkerService(RotationHandler* handler, SecretsClient* secrets, WorkerProbe* probe,
                WorkerServiceOptions options);
  // Waits for the steps still running.
  ~WorkerService() override;
  WorkerService(const WorkerService&) = delete;
  WorkerService& operator=(const WorkerService&) = delete;

  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext* context,
                                 const rotation::v1::StepRequest* request,
                                 rotation::v1::StepResponse* response) override;

  // One step without gRPC: validation, the version check, the handler,
  // logging and metrics (the caller check is Step's).
  absl::Status RunStep(const rotation::v1::StepRequest& request);

  // INVALID_ARGUMENT naming the field: secret_id 1-2048 and
  // client_request_token 32-64 printable ASCII characters without spaces,
  // step one of the four.
  static absl::Status ValidateRequest(const rotation::v1::StepRequest& request);

 private:
  void Enqueue(std::function<void()> task);
  void WorkLoop();

  RotationHandler* const handler_;
  SecretsClient* const secrets_;
  WorkerProbe* const probe_;
  const WorkerServiceOptions options_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace coffer::worker
