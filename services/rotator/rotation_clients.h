// rotation_clients.h: everything coffer-rotator calls, behind small
// interfaces (google-cloud-cpp's stub idea) so the runner and the scheduler
// are tested with fakes, and the gRPC implementations used in production.
//
//   auto store = MakeChannel(...);                                  // coffer-store, mTLS
//   auto control = MakeGrpcRotationControlClient(store, absl::Seconds(10));
//   auto watch = MakeGrpcSecretsWatchClient(store);
//   auto workers = MakeGrpcWorkerClient(tls, metrics.get());        // one channel per address
//   StepResult r = workers->Step(endpoint, request, absl::Seconds(60));
//   if (r.peer_spiffe_id != endpoint.spiffe_id()) ...               // do not trust r.status
//
// Control calls go through rpc::CallUnary: errors keep the store's reason
// (ABORTED: the lease is someone else's; FAILED_PRECONDITION/
// InvalidRequestException: not due or not enabled), and a store that cannot
// be reached in time is UNAVAILABLE/ServiceUnavailableException
// ("coffer-store unavailable: ...").
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coffer/rotation/v1/control.pb.h"
#include "coffer/rotation/v1/rotator_config.pb.h"
#include "coffer/rotation/v1/worker.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "libs/rpc/tls.h"

namespace grpc {
class Channel;
}
namespace coffer::metrics {
class Metrics;
}

namespace coffer::rotator {

namespace rot = ::coffer::rotation::v1;

// The store's rotation-control API (control.proto). Thread-safe.
class RotationControlClient {
 public:
  virtual ~RotationControlClient() = default;
  virtual absl::StatusOr<rot::ListRotationSchedulesResponse> ListRotationSchedules(
      const rot::ListRotationSchedulesRequest& request) = 0;
  virtual absl::StatusOr<rot::AcquireRotationLeaseResponse> AcquireRotationLease(
      const rot::AcquireRotationLeaseRequest& request) = 0;
  virtual absl::StatusOr<rot::RenewRotationLeaseResponse> RenewRotationLease(
      const rot::RenewRotationLeaseRequest& request) = 0;
  virtual absl::StatusOr<rot::RecordRotationProgressResponse> RecordRotationProgress(
      const rot::RecordRotationProgressRequest& request) = 0;
  virtual absl::StatusOr<rot::CompleteRotationResponse> CompleteRotation(
      const rot::CompleteRotationRequest& request) = 0;
  virtual absl::Status ReleaseRotationLease(const rot::ReleaseRotationLeaseRequest& request) = 0;
};

// What one Step call returned, and whom it reached.
struct StepResult {
  absl::Status status;
  // The SPIFFE ID of the server's certificate ("" when no TLS session was
  // made or the certificate has none).
  std::string peer_spiffe_id;
};

// Calls RotationWorker.Step on registered workers. Thread-safe.
class WorkerClient {
 public:
  virtual ~WorkerClient() = default;
  virtual StepResult Step(const rot::WorkerEndpoint& worker, const rot::StepRequest& request,
                          absl::Duration timeout) = 0;
  // Cancels every Step call in flight (shutdown after the grace period).
  virtual void CancelAll() = 0;
};

// One WatchSecrets stream.
class ChangeStream {
 public:
  virtual ~ChangeStream() = default;
  // Blocks for the next event; false when the stream ended (then Finish).
  virtual bool Next(coffer::v1::ChangeEvent* event) = 0;
  // Why the stream ended (after Next returned false).
  virtual absl::Status Finish() = 0;
  // Ends a blocked Next from another thread.
  virtual void Cancel() = 0;
};

class SecretsWatchClient {
 public:
  virtual ~SecretsWatchClient() = default;
  // Opens WatchSecrets("" prefix) after `start_after` ("" = from now).
  virtual std::unique_ptr<ChangeStream> Watch(const std::string& start_after) = 0;
};

// `timeout` is the deadline of each control call.
std::unique_ptr<RotationControlClient> MakeGrpcRotationControlClient(
    std::shared_ptr<grpc::Channel> store, absl::Duration timeout);
std::unique_ptr<SecretsWatchClient> MakeGrpcSecretsWatchClient(
    std::shared_ptr<grpc::Channel> store);
// Opens one mTLS channel per worker address on first use, presenting `tls`
// (the rotator's identity). `metrics` (optional, not owned) adds the gRPC
// client metrics to every channel.
std::unique_ptr<WorkerClient> MakeGrpcWorkerClient(rpc::TlsFiles tls, metrics::Metrics* metrics);

}  // namespace coffer::rotator
