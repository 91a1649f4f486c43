#include "services/store/envelope/kms_monitor.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "grpc/health/v1/health.grpc.pb.h"

namespace coffer::store {
namespace {

constexpr char kKmsService[] = "coffer.kms.v1.KeyManagement";
constexpr absl::Duration kCheckDeadline = absl::Seconds(1);

}  // namespace

KmsMonitor::KmsMonitor(std::shared_ptr<grpc::Channel> channel, absl::Duration interval,
                       std::function<void(bool reachable)> on_change)
    : channel_(std::move(channel)), interval_(interval), on_change_(std::move(on_change)) {}

KmsMonitor::~KmsMonitor() { Stop(); }

void KmsMonitor::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (thread_.joinable() || stopping_) return;
  }
  thread_ = std::thread([this] { Loop(); });
}

void KmsMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (in_flight_ != nullptr) in_flight_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool KmsMonitor::reachable() const {
  absl::MutexLock lock(&mu_);
  return reachable_;
}

bool KmsMonitor::CheckNow() {
  bool up = Check(/*cancellable=*/false);
  absl::MutexLock lock(&mu_);
  reachable_ = up;
  return up;
}

bool KmsMonitor::Check(bool cancellable) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCheckDeadline));
  // An unreachable KMS is the answer, not something to wait out.
  context.set_wait_for_ready(false);
  if (cancellable) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    in_flight_ = &context;
  }
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(kKmsService);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (cancellable) {
    absl::MutexLock lock(&mu_);
    in_flight_ = nullptr;
  }
  return status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

void KmsMonitor::Loop() {
  bool reported = false;
  bool have_reported = false;
  while (true) {
    const bool up = Check(/*cancellable=*/true);
    {
      absl::MutexLock lock(&mu_);
      // A check cut short by Stop() says nothing about the KMS.
      if (stopping_) return;
      reachable_ = up;
    }
    if (!have_reported || up != reported) {
      have_reported = true;
      reported = up;
      if (on_change_) on_change_(up);
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_)) return;
  }
}

}  // namespace coffer::store
