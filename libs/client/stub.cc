#include "libs/client/stub.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"
#include "libs/rpc/client_call.h"

namespace coffer::client {

namespace {

constexpr char kComponent[] = "client";
constexpr char kWatchSecrets[] = "/coffer.secrets.v1.SecretsManager/WatchSecrets";
constexpr char kWatchParameters[] = "/coffer.params.v1.ParameterStore/WatchParameters";

using Message = google::protobuf::Message;

class GrpcChangeStream final : public ChangeStream {
 public:
  GrpcChangeStream(std::unique_ptr<grpc::ClientContext> context,
                   std::unique_ptr<grpc::ClientReader<coffer::v1::ChangeEvent>> reader,
                   std::string peer)
      : context_(std::move(context)), reader_(std::move(reader)), peer_(std::move(peer)) {}

  void WaitStarted() override { reader_->WaitForInitialMetadata(); }
  bool Read(coffer::v1::ChangeEvent* event) override { return reader_->Read(event); }
  void Cancel() override { context_->TryCancel(); }
  absl::Status Finish() override { return rpc::ClientStatus(reader_->Finish(), peer_); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<coffer::v1::ChangeEvent>> reader_;
  std::string peer_;
};

// A stream that failed before it started.
class FailedStream final : public ChangeStream {
 public:
  explicit FailedStream(absl::Status status) : status_(std::move(status)) {}
  void WaitStarted() override {}
  bool Read(coffer::v1::ChangeEvent*) override { return false; }
  void Cancel() override {}
  absl::Status Finish() override { return status_; }

 private:
  absl::Status status_;
};

class GrpcStub final : public Stub {
 public:
  GrpcStub(std::shared_ptr<grpc::Channel> channel, std::string peer)
      : generic_(channel),
        secrets_(secrets::v1::SecretsManager::NewStub(channel)),
        params_(params::v1::ParameterStore::NewStub(channel)),
        peer_(std::move(peer)) {}

  absl::Status Unary(const CallInfo& call, const Message& request, Message* response) override {
    if (!MayBlock()) return WouldBlockError(absl::StrCat("a call to ", peer_));
    grpc::ClientContext context;
    if (call.deadline != absl::InfiniteFuture()) {
      context.set_deadline(absl::ToChronoTime(call.deadline));
    }
    absl::Notification done;
    grpc::Status status;
    generic_.UnaryCall(&context, call.method, grpc::StubOptions(), &request, response,
                       [&](grpc::Status s) {
                         status = std::move(s);
                         done.Notify();
                       });
    done.WaitForNotification();
    return rpc::ClientStatus(status, peer_);
  }

  std::unique_ptr<ChangeStream> Watch(const std::string& method, const Message& request) override {
    auto context = std::make_unique<grpc::ClientContext>();
    if (method == kWatchSecrets) {
      auto reader = secrets_->WatchSecrets(
          context.get(), static_cast<const secrets::v1::WatchSecretsRequest&>(request));
      return std::make_unique<GrpcChangeStream>(std::move(context), std::move(reader), peer_);
    }
    if (method == kWatchParameters) {
      auto reader = params_->WatchParameters(
          context.get(), static_cast<const params::v1::WatchParametersRequest&>(request));
      return std::make_unique<GrpcChangeStream>(std::move(context), std::move(reader), peer_);
    }
    return std::make_unique<FailedStream>(
        absl::InvalidArgumentError(absl::StrCat("not a watch method: ", method)));
  }

 private:
  grpc::TemplatedGenericStub<Message, Message> generic_;
  std::unique_ptr<secrets::v1::SecretsManager::Stub> secrets_;
  std::unique_ptr<params::v1::ParameterStore::Stub> params_;
  std::string peer_;
};

class RetryingStub final : public Stub {
 public:
  RetryingStub(std::shared_ptr<Stub> inner, RetryPolicy policy,
               std::function<void(absl::Duration)> sleep)
      : inner_(std::move(inner)), policy_(policy), sleep_(std::move(sleep)) {
    if (!sleep_) sleep_ = [](absl::Duration d) { absl::SleepFor(d); };
  }

  absl::Status Unary(const CallInfo& call, const Message& request, Message* response) override {
    absl::Duration ceiling = policy_.initial_backoff;
    for (int attempt = 1;; ++attempt) {
      absl::Status s = inner_->Unary(call, request, response);
      if (s.ok() || !absl::IsUnavailable(s) || call.idempotency != Idempotency::kIdempotent ||
          attempt >= policy_.max_attempts) {
        return s;
      }
      // Full jitter: a uniform wait up to the current ceiling, so that
      // clients that failed together do not come back together.
      absl::Duration wait;
      {
        absl::MutexLock lock(&mu_);
        wait = absl::Nanoseconds(absl::Uniform<int64_t>(
            bitgen_, 0, std::max<int64_t>(1, absl::ToInt64Nanoseconds(ceiling))));
      }
      if (absl::Now() + wait >= call.deadline) return s;
      sleep_(wait);
      ceiling = std::min(policy_.max_backoff, ceiling * policy_.multiplier);
    }
  }

  std::unique_ptr<ChangeStream> Watch(const std::string& method, const Message& request) override {
    return inner_->Watch(method, request);  // the watchers resume streams themselves
  }

 private:
  std::shared_ptr<Stub> inner_;
  RetryPolicy policy_;
  std::function<void(absl::Duration)> sleep_;
  absl::Mutex mu_;
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);
};

class LoggingStub final : public Stub {
 public:
  explicit LoggingStub(std::shared_ptr<Stub> inner) : inner_(std::move(inner)) {}

  absl::Status Unary(const CallInfo& call, const Message& request, Message* response) override {
    const absl::Time start = absl::Now();
    absl::Status s = inner_->Unary(call, request, response);
    if (!s.ok()) {
      log::Warn(kComponent, "call failed",
                {{"method", call.method},
                 {"code", absl::StatusCodeToString(s.code())},
                 {"reason", ErrorReason(s)},
                 {"latency", absl::FormatDuration(absl::Now() - start)}});
    }
    return s;
  }

  std::unique_ptr<ChangeStream> Watch(const std::string& method, const Message& request) override {
    return inner_->Watch(method, request);
  }

 private:
  std::shared_ptr<Stub> inner_;
};

}  // namespace

bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

std::shared_ptr<Stub> MakeGrpcStub(std::shared_ptr<grpc::Channel> channel, std::string peer) {
  return std::make_shared<GrpcStub>(std::move(channel), std::move(peer));
}

std::shared_ptr<Stub> MakeRetryingStub(std::shared_ptr<Stub> inner, RetryPolicy policy,
                                       std::function<void(absl::Duration)> sleep) {
  return std::make_shared<RetryingStub>(std::move(inner), policy, std::move(sleep));
}

std::shared_ptr<Stub> MakeLoggingStub(std::shared_ptr<Stub> inner) {
  return std::make_shared<LoggingStub>(std::move(inner));
}

}  // namespace coffer::client
