#include "libs/runtime/call_gate.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <chrono>
#include <future>

#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/rpc/peer.h"
#include "libs/runtime/inline_actions.h"

namespace coffer::runtime {

CallGate::CallGate(const authz::Authorizer* authorizer, audit::AuditLog* audit,
                   prometheus::Registry* registry, BoundedExecutor* executor)
    : authorizer_(authorizer), executor_(executor), audit_(audit) {
  if (registry == nullptr) return;
  denied_ = &prometheus::BuildCounter()
                 .Name("coffer_authz_denied_total")
                 .Help("Calls refused with PERMISSION_DENIED, by action")
                 .Register(*registry);
  records_ = &prometheus::BuildCounter()
                  .Name("coffer_audit_records_total")
                  .Help("Audit records written durably")
                  .Register(*registry)
                  .Add({});
  failures_ = &prometheus::BuildCounter()
                   .Name("coffer_audit_write_failures_total")
                   .Help("Audit records that could not be written (their calls failed)")
                   .Register(*registry)
                   .Add({});
}

CallGate::CallGate(const CallGate& base, std::string principal)
    : authorizer_(base.authorizer_),
      fixed_principal_(std::move(principal)),
      executor_(base.executor_),
      audit_(base.audit_),
      denied_(base.denied_),
      records_(base.records_),
      failures_(base.failures_) {}

bool CallGate::InlineFirst(absl::string_view action) { return InlineFirstAction(action); }

CallGate& CallGate::Unguarded() {
  static CallGate* gate = new CallGate(nullptr, nullptr, nullptr);
  return *gate;
}

authz::Access CallGate::AccessFor(const grpc::ServerContextBase& context) const {
  std::string peer =
      !fixed_principal_.empty() ? fixed_principal_ : rpc::PeerSpiffeId(context).value_or("");
  if (signed_callers_ != nullptr && signed_callers_->IsDelegate(peer)) {
    // The gateway by itself may do nothing (Unary replaces this with the
    // signed caller's Access; streams are refused).
    static const authz::Authorizer* const kNothing = new authz::Authorizer(
        authz::Policy::Parse(R"({"statements": []})", authz::Policy::kIdentity).value());
    return authz::Access(kNothing, std::move(peer));
  }
  authz::Access access(authorizer_, std::move(peer));
  const auto& metadata = context.client_metadata();
  auto token = metadata.find(authz::kRotationTokenMetadata);
  if (token != metadata.end() && token->second.size() <= 64) {
    access.set_rotation_token(std::string(token->second.data(), token->second.size()));
  }
  return access;
}

absl::Status CallGate::Admit() const {
  if (audit_ == nullptr || audit_->healthy()) return absl::OkStatus();
  return ErrorWithCode(absl::StatusCode::kUnavailable, reason::kUnavailable,
                       "audit log unavailable: calls fail until it can be written again");
}

absl::Status CallGate::StillWanted(const grpc::CallbackServerContext& context) {
  if (context.IsCancelled()) return absl::CancelledError("the caller went away");
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError("the call's deadline passed before it could run");
  }
  return absl::OkStatus();
}

absl::Status CallGate::Overloaded() const {
  return ErrorWithCode(absl::StatusCode::kResourceExhausted, reason::kThrottling,
                       absl::StrCat("too many calls in flight (limit ", executor_->max_pending(),
                                    "); retry with backoff"));
}

void CallGate::Finish(grpc::CallbackServerContext& context, absl::string_view action,
                      const authz::Access& access, const absl::Status& status,
                      rpc::CallbackReactor* reactor) {
  if (!status.ok()) rpc::LogServerFailure(action, status);
  Record(context, action, access, status, [this, reactor, status](absl::Status audited) {
    // A call whose record could not be written fails; its answer (held in
    // the response until OnDone wipes it) is never sent.
    reactor->Finish(rpc::ToGrpcStatus(audited.ok() ? status : audited));
    if (executor_ != nullptr) in_flight_.fetch_sub(1);
  });
}

bool CallGate::healthy() const { return audit_ == nullptr || audit_->healthy(); }

void CallGate::Record(const grpc::ServerContextBase& context, absl::string_view action,
                      const authz::Access& access, const absl::Status& status,
                      std::function<void(absl::Status)> done) {
  // The context is const for callers that only read it; the request id is
  // the one thing the gate adds to the call.
  std::string request_id = NewUuid();
  const_cast<grpc::ServerContextBase&>(context).AddInitialMetadata("x-request-id", request_id);
  if (status.code() == absl::StatusCode::kPermissionDenied && denied_ != nullptr) {
    denied_->Add({{"action", std::string(action)}}).Increment();
  }
  if (audit_ == nullptr) {
    done(absl::OkStatus());
    return;
  }
  audit::Record record;
  record.request_id = std::move(request_id);
  record.principal = access.principal();
  record.action = std::string(action);
  record.resource = access.resource();
  record.code = absl::StatusCodeToString(status.code());
  record.peer = rpc::PeerAddress(context);
  // The reason only (e.g. AccessDeniedException): messages may quote input.
  record.detail = ErrorReason(status);
  // Reads changed nothing: their record need not be on disk before the
  // answer, only in the file (audit_log.h, Durability).
  const audit::AuditLog::Durability durability = InlineFirst(action)
                                                     ? audit::AuditLog::Durability::kWritten
                                                     : audit::AuditLog::Durability::kSynced;
  audit_->Append(
      std::move(record),
      [this, done = std::move(done)](absl::Status written) {
        if (written.ok()) {
          if (records_ != nullptr) records_->Increment();
        } else {
          if (failures_ != nullptr) failures_->Increment();
          log::Error("audit", "audit record not written; the call fails",
                     {{"error", std::string(written.message())}});
        }
        done(std::move(written));
      },
      durability);
}

absl::Status CallGate::RecordAndWait(const grpc::ServerContextBase& context,
                                     absl::string_view action, const authz::Access& access,
                                     const absl::Status& status) {
  std::promise<absl::Status> written;
  std::future<absl::Status> result = written.get_future();
  Record(context, action, access, status,
         [&written](absl::Status s) { written.set_value(std::move(s)); });
  absl::Status audited = result.get();
  return audited.ok() ? status : audited;
}

}  // namespace coffer::runtime
