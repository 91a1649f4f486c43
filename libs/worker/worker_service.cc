#include "libs/worker/worker_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"
#include "libs/common/rotation_steps.h"
#include "libs/rpc/peer.h"
#include "libs/rpc/unary.h"

namespace coffer::worker {

namespace rv1 = ::coffer::rotation::v1;

namespace {

absl::Status ValidateId(absl::string_view field, absl::string_view value, size_t min, size_t max) {
  if (value.size() < min || value.size() > max) {
    return InvalidField(field, absl::StrCat("must be ", min, "-", max, " characters"));
  }
  for (char c : value) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidField(field, "may contain only printable ASCII characters without spaces");
    }
  }
  return absl::OkStatus();
}

}  // namespace

WorkerService::WorkerService(RotationHandler* handler, SecretsClient* secrets, WorkerProbe* probe,
                             WorkerServiceOptions options)
    : handler_(handler), secrets_(secrets), probe_(probe), options_(std::move(options)) {
  const int n = std::max(1, options_.threads);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { WorkLoop(); });
}

WorkerService::~WorkerService() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void WorkerService::Enqueue(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
}

void WorkerService::WorkLoop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerService* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      // Queued steps still run when stopping: each holds a call to finish.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

absl::Status WorkerService::ValidateRequest(const rv1::StepRequest& request) {
  if (absl::Status s = ValidateId("secret_id", request.secret_id(), 1, 2048); !s.ok()) return s;
  if (absl::Status s = ValidateId("client_request_token", request.client_request_token(), 32, 64);
      !s.ok()) {
    return s;
  }
  if (!rv1::RotationStep_IsValid(request.step()) ||
      request.step() == rv1::ROTATION_STEP_UNSPECIFIED) {
    return InvalidField("step", "must be createSecret, setSecret, testSecret or finishSecret");
  }
  return absl::OkStatus();
}

absl::Status WorkerService::RunStep(const rv1::StepRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  const absl::string_view step = RotationStepName(request.step());
  // The store lets this worker write the secret only with the rotation's
  // token: every call of the step carries it.
  std::unique_ptr<SecretsClient> bound = secrets_->ForRotation(request.client_request_token());
  const StepContext ctx{request.secret_id(), request.client_request_token(),
                        bound != nullptr ? *bound : *secrets_};
  log::Info(options_.component, "step started",
            {{"step", std::string(step)},
             {"secret_id", request.secret_id()},
             {"token", request.client_request_token()}});
  const absl::Time start = absl::Now();

  absl::Status status;
  absl::StatusOr<PendingState> state = CheckRotationVersion(ctx);
  bool skipped = false;
  if (!state.ok()) {
    status = state.status();
  } else if (*state == PendingState::kCurrent &&
             request.step() != rv1::ROTATION_STEP_FINISH_SECRET) {
    // The rotation has finished: a late repeat of an earlier step has
    // nothing left to do (and must not write a new value).
    skipped = true;
  } else {
    status = worker::RunStep(*handler_, request.step(), ctx);
  }

  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (probe_ != nullptr) probe_->StepDone(step, status.ok(), seconds);
  if (status.ok()) {
    log::Info(options_.component,
              skipped ? "step skipped: version is already AWSCURRENT" : "step succeeded",
              {{"step", std::string(step)},
               {"secret_id", request.secret_id()},
               {"token", request.client_request_token()},
               {"seconds", absl::StrCat(seconds)}});
  } else {
    log::Warn(options_.component, "step failed",
              {{"step", std::string(step)},
               {"secret_id", request.secret_id()},
               {"token", request.client_request_token()},
               {"seconds", absl::StrCat(seconds)},
               {"error", status.ToString()}});
  }
  return status;
}

grpc::ServerUnaryReactor* WorkerService::Step(grpc::CallbackServerContext* context,
                                              const rv1::StepRequest* request,
                                              rv1::StepResponse* response) {
  auto* reactor = context->DefaultReactor();
  runtime::CallGate& gate =
      options_.gate != nullptr ? *options_.gate : runtime::CallGate::Unguarded();
  authz::Access access = gate.AccessFor(*context);
  access.set_resource(request->secret_id());
  // Every answer is audited first; a record that cannot be written fails
  // the call.
  auto finish = [&gate, reactor, context, access](const absl::Status& status) {
    gate.Record(*context, "rotation:Step", access, status, [reactor, status](absl::Status s) {
      reactor->Finish(rpc::ToGrpcStatus(s.ok() ? status : s));
    });
  };
  if (!options_.allowed_callers.empty() &&
      std::find(options_.allowed_callers.begin(), options_.allowed_callers.end(),
                access.principal()) == options_.allowed_callers.end()) {
    finish(authz::AccessDenied(access.principal(), "rotation:Step", request->secret_id(),
                               "only the rotator may call this worker"));
    return reactor;
  }
  if (absl::Status s = gate.Admit(); !s.ok()) {
    finish(s);
    return reactor;
  }
  if (absl::Status s = ValidateRequest(*request); !s.ok()) {
    finish(s);
    return reactor;
  }
  // Steps block (databases, child processes): never on gRPC's threads.
  Enqueue([this, finish, request, context] {
    // A step that waited in the queue past its caller's deadline (or whose
    // caller went away) must not run: the rotator has already counted it as
    // failed and may be retrying it — or may have given the rotation up.
    if (context->IsCancelled() || context->deadline() <= std::chrono::system_clock::now()) {
      finish(absl::CancelledError("the step's caller gave up before it could start"));
      return;
    }
    finish(RunStep(*request));
  });
  return reactor;
}

}  // namespace coffer::worker
