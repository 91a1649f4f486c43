#include "services/rotator/rotation_clients.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "coffer/rotation/v1/control.grpc.pb.h"
#include "coffer/rotation/v1/worker.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "libs/metrics/metrics.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/client_call.h"
#include "libs/rpc/peer.h"
#include "libs/rpc/status.h"

namespace coffer::rotator {
namespace {

class GrpcRotationControlClient final : public RotationControlClient {
  using Stub = rot::RotationControl::Stub;

 public:
  GrpcRotationControlClient(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : stub_(rot::RotationControl::NewStub(std::move(channel))) {
    options_.timeout = timeout;
    options_.peer = "coffer-store";
  }

  absl::StatusOr<rot::ListRotationSchedulesResponse> ListRotationSchedules(
      const rot::ListRotationSchedulesRequest& request) override {
    return rpc::CallUnary(stub_.get(), &Stub::ListRotationSchedules, request, options_);
  }
  absl::StatusOr<rot::AcquireRotationLeaseResponse> AcquireRotationLease(
      const rot::AcquireRotationLeaseRequest& request) override {
    return rpc::CallUnary(stub_.get(), &Stub::AcquireRotationLease, request, options_);
  }
  absl::StatusOr<rot::RenewRotationLeaseResponse> RenewRotationLease(
      const rot::RenewRotationLeaseRequest& request) override {
    return rpc::CallUnary(stub_.get(), &Stub::RenewRotationLease, request, options_);
  }
  absl::StatusOr<rot::RecordRotationProgressResponse> RecordRotationProgress(
      const rot::RecordRotationProgressRequest& request) override {
    return rpc::CallUnary(stub_.get(), &Stub::RecordRotationProgress, request, options_);
  }
  absl::StatusOr<rot::CompleteRotationResponse> CompleteRotation(
      const rot::CompleteRotationRequest& request) override {
    return rpc::CallUnary(stub_.get(), &Stub::CompleteRotation, request, options_);
  }
  absl::Status ReleaseRotationLease(const rot::ReleaseRotationLeaseRequest& request) override {
    return rpc::CallUnary(stub_.get(), &Stub::ReleaseRotationLease, request, options_).status();
  }

 private:
  std::unique_ptr<Stub> stub_;
  rpc::CallOptions options_;
};

class GrpcChangeStream final : public ChangeStream {
 public:
  GrpcChangeStream(secrets::v1::SecretsManager::Stub* stub, const std::string& start_after) {
    secrets::v1::WatchSecretsRequest request;
    request.set_start_after(start_after);
    reader_ = stub->WatchSecrets(&context_, request);
  }
  bool Next(coffer::v1::ChangeEvent* event) override { return reader_->Read(event); }
  absl::Status Finish() override { return rpc::ClientStatus(reader_->Finish(), "coffer-store"); }
  void Cancel() override { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<coffer::v1::ChangeEvent>> reader_;
};

class GrpcSecretsWatchClient final : public SecretsWatchClient {
 public:
  explicit GrpcSecretsWatchClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(secrets::v1::SecretsManager::NewStub(std::move(channel))) {}
  std::unique_ptr<ChangeStream> Watch(const std::string& start_after) override {
    return std::make_unique<GrpcChangeStream>(stub_.get(), start_after);
  }

 private:
  std::unique_ptr<secrets::v1::SecretsManager::Stub> stub_;
};

class GrpcWorkerClient final : public WorkerClient {
 public:
  GrpcWorkerClient(rpc::TlsFiles tls, metrics::Metrics* metrics)
      : tls_(std::move(tls)), metrics_(metrics) {}

  StepResult Step(const rot::WorkerEndpoint& worker, const rot::StepRequest& request,
                  absl::Duration timeout) override {
    StepResult result;
    auto stub = StubFor(worker.address(), worker.spiffe_id());
    if (!stub.ok()) {
      result.status = stub.status();
      return result;
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    if (!Track(&context)) {
      result.status = absl::CancelledError("the rotator is shutting down");
      return result;
    }
    rot::StepResponse response;
    grpc::Status status = (*stub)->Step(&context, request, &response);
    Untrack(&context);
    result.status = rpc::FromGrpcStatus(status);
    auto auth = context.auth_context();
    result.peer_spiffe_id = rpc::SpiffeIdOf(auth.get()).value_or("");
    return result;
  }

  void CancelAll() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    for (grpc::ClientContext* context : active_) context->TryCancel();
  }

 private:
  // One channel per (address, identity); the identity is pinned in the TLS
  // handshake, so a server with another certificate never sees the request.
  absl::StatusOr<rot::RotationWorker::Stub*> StubFor(const std::string& address,
                                                     const std::string& spiffe_id) {
    absl::MutexLock lock(&mu_);
    const std::string key = address + "|" + spiffe_id;
    auto it = stubs_.find(key);
    if (it != stubs_.end()) return it->second.get();
    rpc::ChannelOptions options;
    options.target = address;
    options.tls = tls_;
    options.expected_spiffe_id = spiffe_id;
    if (metrics_ != nullptr) options.interceptors.push_back(metrics_->ClientInterceptorFactory());
    auto channel = rpc::MakeChannel(std::move(options));
    if (!channel.ok()) return channel.status();
    auto& stub = stubs_[key];
    stub = rot::RotationWorker::NewStub(*channel);
    return stub.get();
  }
  bool Track(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return false;
    active_.insert(context);
    return true;
  }
  void Untrack(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    active_.erase(context);
  }

  const rpc::TlsFiles tls_;
  metrics::Metrics* const metrics_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<rot::RotationWorker::Stub>> stubs_ ABSL_GUARDED_BY(mu_);
  std::set<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<RotationControlClient> MakeGrpcRotationControlClient(
    std::shared_ptr<grpc::Channel> store, absl::Duration timeout) {
  return std::make_unique<GrpcRotationControlClient>(std::move(store), timeout);
}

std::unique_ptr<SecretsWatchClient> MakeGrpcSecretsWatchClient(
    std::shared_ptr<grpc::Channel> store) {
  return std::make_unique<GrpcSecretsWatchClient>(std::move(store));
}

std::unique_ptr<WorkerClient> MakeGrpcWorkerClient(rpc::TlsFiles tls, metrics::Metrics* metrics) {
  return std::make_unique<GrpcWorkerClient>(std::move(tls), metrics);
}

}  // namespace coffer::rotator
