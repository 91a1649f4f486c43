// call_gate.h: what every API call of a Coffer service passes through —
// the caller's identity, authorization, the audit record, and the metrics of
// both — so that a handler stays one line and no service can forget a step.
//
//   CallGate gate(authorizer.get(), audit.get(), metrics->registry().get());
//   grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const GetRequest* req,
//                                 GetResponse* resp) override {
//     return gate_->Unary<GetResponse>(ctx, "secretsmanager:GetSecretValue",
//         [&](const authz::Access& access) { return store_->Get(*req, access); }, resp);
//   }
//
// Unary(): builds the call's authz::Access from the peer's SPIFFE ID (or
// the gate's fixed principal, or for the gateway the signed caller:
// signed_callers.h); hands
// the work to the service's bounded executor, off gRPC's callback threads
// (a full queue answers RESOURCE_EXHAUSTED at once: load shedding; a call
// whose caller left or whose deadline passed while queued is not run).
// Reads (InlineFirst: GetSecretValue, DescribeKey, Decrypt, ...) are first
// tried right on the callback thread inside a NonBlockingScope
// (libs/common/blocking.h): a cached read completes there without a thread
// hop; one that would wait (a KMS call, a synced write) stops before doing
// anything and goes to the executor like any other call. Then it
// it unless the audit log is failing (fail closed: UNAVAILABLE at once,
// never a hang); writes one audit record (time, request id, principal,
// action, the resource the work checked, the gRPC code, the peer address;
// never a value) and finishes the call only once that record is durable
// (for the reads of InlineFirst: once it is written; audit_log.h). If
// the record cannot be written the caller gets UNAVAILABLE instead of the
// answer. The request id goes back to the caller as `x-request-id` initial
// metadata.
//
// Metrics: coffer_authz_denied_total{action} (PERMISSION_DENIED answers),
// coffer_audit_records_total, coffer_audit_write_failures_total.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "libs/audit/audit_log.h"
#include "libs/authz/authorizer.h"
#include "libs/common/blocking.h"
#include "libs/common/executor.h"
#include "libs/rpc/status.h"
#include "libs/rpc/unary.h"
#include "libs/runtime/signed_callers.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
}  // namespace prometheus

namespace coffer::runtime {

class CallGate {
 public:
  // None of the pointers is owned. `authorizer` null: every caller is
  // trusted (in-process tests only); `audit` null: no audit log;
  // `registry` null: no metrics; `executor` null: the work runs on gRPC's
  // callback thread (tests) instead of a bounded pool that sheds load.
  CallGate(const authz::Authorizer* authorizer, audit::AuditLog* audit,
           prometheus::Registry* registry, BoundedExecutor* executor = nullptr);
  // A gate for a listener whose transport, not a certificate, says who the
  // caller is (a Unix socket whose file mode admits one local user): every
  // call acts as `principal`, whatever the peer; authorization, audit,
  // metrics and the executor are shared with `base`.
  CallGate(const CallGate& base, std::string principal);
  CallGate(const CallGate&) = delete;
  CallGate& operator=(const CallGate&) = delete;

  // A gate without authorizer, audit log or metrics: every caller trusted.
  // For services built in-process by tests only.
  static CallGate& Unguarded();

  // The Access of the call's peer.
  authz::Access AccessFor(const grpc::ServerContextBase& context) const;

  // OK, or UNAVAILABLE while the audit log cannot be written.
  absl::Status Admit() const;

  // Writes the call's audit record; `done` gets OK once it is durable (at
  // once without an audit log), UNAVAILABLE when it cannot be written.
  void Record(const grpc::ServerContextBase& context, absl::string_view action,
              const authz::Access& access, const absl::Status& status,
              std::function<void(absl::Status)> done);
  // The same, waiting (stream starts); the status to answer with.
  absl::Status RecordAndWait(const grpc::ServerContextBase& context, absl::string_view action,
                             const authz::Access& access, const absl::Status& status);

  template <typename Response>
  grpc::ServerUnaryReactor* Unary(
      grpc::CallbackServerContext* context, absl::string_view action,
      std::function<absl::StatusOr<Response>(const authz::Access&)> work, Response* response,
      std::function<void()> on_done = nullptr) {
    auto* reactor = new rpc::CallbackReactor(std::move(on_done));
    authz::Access access = AccessFor(*context);
    // A call of the gateway runs as the caller who signed it, once that
    // signature verifies (which may wait for the KMS: never inline).
    const bool delegated =
        signed_callers_ != nullptr && signed_callers_->IsDelegate(access.principal());
    // Every call counts until it is answered (Finish), wherever it runs.
    if (executor_ != nullptr && in_flight_.fetch_add(1) >= executor_->max_pending()) {
      Finish(*context, action, access, Overloaded(), reactor);
      return reactor;
    }
    if (!delegated && executor_ != nullptr && InlineFirst(action) && Admit().ok()) {
      authz::Access attempt = access;
      absl::StatusOr<Response> result = [&] {
        NonBlockingScope scope;
        return work(attempt);
      }();
      if (!IsWouldBlock(result.status())) {
        if (result.ok()) *response = std::move(result).value();
        Finish(*context, action, attempt, result.status(), reactor);
        return reactor;
      }
    }
    // Runs on the executor (or here without one). `work` must capture what
    // it needs by value: the handler has returned by then.
    auto run = [this, context, action = std::string(action), work = std::move(work), response,
                reactor](const authz::Access& access) {
      absl::Status status = Admit();
      if (status.ok()) status = StillWanted(*context);
      if (status.ok()) {
        absl::StatusOr<Response> result = work(access);
        status = result.status();
        if (result.ok()) *response = std::move(result).value();
      }
      Finish(*context, action, access, status, reactor);
    };
    auto start = [this, context, action = std::string(action), reactor, delegated,
                  run = std::move(run)](const authz::Access& access) {
      if (!delegated) return run(access);
      absl::StatusOr<SignedCaller> caller = signed_callers_->Authenticate(*context, action);
      if (!caller.ok()) return Finish(*context, action, access, caller.status(), reactor);
      run(authz::Access(authorizer_, std::move(caller->identity)));
    };
    if (executor_ == nullptr) {
      start(access);
    } else if (!executor_->TrySchedule([start = std::move(start), access] { start(access); })) {
      Finish(*context, action, access, Overloaded(), reactor);
    }
    return reactor;
  }

  // Actions tried on the callback thread first: reads that never change
  // anything they could not change again, and whose errors pass through
  // unchanged (so a would-block status is seen, never answered).
  static bool InlineFirst(absl::string_view action);

  // True while the audit log accepts records (drives health).
  bool healthy() const;

  // Calls from `signed_callers`' delegate (coffer-gateway) run as the
  // caller whose SigV4 signature they carry, or fail UNAUTHENTICATED; the
  // delegate's own identity is allowed nothing. Not owned; null: none.
  void set_signed_callers(const SignedCallers* signed_callers) { signed_callers_ = signed_callers; }

 private:
  // OK, or CANCELLED / DEADLINE_EXCEEDED when the caller is gone or out of
  // time (work that waited in the queue is not started for no one).
  static absl::Status StillWanted(const grpc::CallbackServerContext& context);
  // RESOURCE_EXHAUSTED: the executor's queue is full.
  absl::Status Overloaded() const;
  // Audits the call, then finishes it with `status` (or UNAVAILABLE when its
  // record cannot be written); it no longer counts as in flight.
  void Finish(grpc::CallbackServerContext& context, absl::string_view action,
              const authz::Access& access, const absl::Status& status,
              rpc::CallbackReactor* reactor);

  const authz::Authorizer* authorizer_;
  // Non-empty: the principal of every call (see the second constructor).
  std::string fixed_principal_;
  const SignedCallers* signed_callers_ = nullptr;
  BoundedExecutor* executor_;
  audit::AuditLog* audit_;
  // Unary calls between their start and their answer (with an executor).
  std::atomic<size_t> in_flight_{0};
  prometheus::Family<prometheus::Counter>* denied_ = nullptr;
  prometheus::Counter* records_ = nullptr;
  prometheus::Counter* failures_ = nullptr;
};

}  // namespace coffer::runtime
