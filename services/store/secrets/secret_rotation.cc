#include "services/store/secrets/secret_rotation.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/paging.h"
#include "libs/common/proto_time.h"
#include "libs/common/rotation_steps.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/random.h"
#include "libs/schedule/schedule.h"
#include "services/store/schema.h"
#include "services/store/secrets/secret_access.h"
#include "services/store/secrets/staging_labels.h"

namespace coffer::store {
namespace {

namespace rot = ::coffer::rotation::v1;
namespace sm = ::coffer::secrets::v1;
using RotationRun = ::coffer::internal::store::v1::RotationRun;

constexpr size_t kMaxErrorText = 1024;

absl::Status ValidateWorkerName(absl::string_view name) {
  if (name.empty() || name.size() > 256) {
    return InvalidField("rotation_worker", "must be 1-256 characters", reason::kInvalidParameter);
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) {
      return InvalidField("rotation_worker", "may contain only letters, digits and _.-",
                          reason::kInvalidParameter);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> LeaseDuration(const google::protobuf::Duration& d) {
  absl::Duration duration = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  if (duration < absl::Seconds(1) || duration > absl::Minutes(10)) {
    return InvalidField("lease_duration", "must be between 1 second and 10 minutes",
                        reason::kInvalidParameter);
  }
  return duration;
}

absl::Status LeaseLost(absl::string_view name) {
  return ErrorWithCode(absl::StatusCode::kAborted, reason::kPreconditionNotMet,
                       "the rotation lease was lost (expired or taken over by another rotator)",
                       name);
}

// Adds the AWSPENDING placeholder of version `token` (no value yet).
absl::Status AddPendingPlaceholder(SecretRecord& r, const std::string& token, absl::Time now) {
  VersionSummary placeholder;
  placeholder.set_version_id(token);
  *placeholder.mutable_created_date() = ToProto(now);
  return StagingLabels::AddVersion(r, placeholder, {kAwsPending});
}

// Takes AWSPENDING off a version that is not AWSCURRENT (a stale pending
// version: a failed rotation's, or one a client wrote).
absl::Status DropStalePending(SecretRecord& r) {
  const VersionSummary* current = StagingLabels::FindStage(r, kAwsCurrent);
  const VersionSummary* pending = StagingLabels::FindStage(r, kAwsPending);
  if (pending == nullptr || pending == current) return absl::OkStatus();
  return StagingLabels::MoveStage(r, kAwsPending, pending->version_id(), "");
}

// The stored lease holder: the caller's SPIFFE ID and the holder it named,
// so that no other identity can act under the lease.
std::string BoundHolder(const authz::Access& access, const std::string& holder) {
  return access.trusted() ? holder : absl::StrCat(access.principal(), "#", holder);
}

// A new run of version `token`, at createSecret.
void StartRun(SecretRecord& r, const std::string& token, absl::Time now) {
  RotationRun* run = r.mutable_rotation_run();
  run->Clear();
  run->set_next_step(rot::ROTATION_STEP_CREATE_SECRET);
  auto* state = run->mutable_state();
  state->set_status(sm::RotationState::STATUS_IN_PROGRESS);
  state->set_version_id(token);
  state->set_next_step(std::string(RotationStepName(rot::ROTATION_STEP_CREATE_SECRET)));
  *state->mutable_started_date() = ToProto(now);
}

// Ends the run (its state stays for DescribeSecret) and frees the lease.
void EndRun(RotationRun* run, absl::Time now) {
  run->mutable_state()->clear_next_step();
  *run->mutable_state()->mutable_finished_date() = ToProto(now);
  run->set_next_step(0);
}

void ClearLease(RotationRun* run) {
  run->clear_lease_id();
  run->clear_lease_holder();
  run->clear_lease_expires();
}

// The step to report: the four steps, or finishSecret's successor (4) once
// every step is done.
rot::RotationStep ReportedStep(const RotationRun& run) {
  return static_cast<rot::RotationStep>(std::min(run.next_step(), 4));
}

}  // namespace

absl::Time SecretRotation::NextRotation(const SecretRecord& record, absl::Time after) const {
  const auto& rules = record.rotation().rules();
  auto schedule = schedule::RotationSchedule::Parse(rules.automatically_after_days(),
                                                    rules.schedule_expression(), rules.duration());
  if (!schedule.ok()) return absl::InfiniteFuture();
  absl::Time window = schedule->NextWindowStart(after);
  if (window == absl::InfiniteFuture()) return window;
  // A random moment inside the window, so secrets sharing a schedule do not
  // all rotate in the same second.
  double fraction = static_cast<double>(crypto::RandomUniform(1u << 30)) / (1u << 30);
  return schedule->StartInWindow(window, fraction);
}

absl::StatusOr<sm::RotateSecretResponse> SecretRotation::RotateSecret(
    const sm::RotateSecretRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(const std::string token,
                          RequestToken("client_request_token", request.client_request_token()));
  if (!request.rotation_worker().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateWorkerName(request.rotation_worker()));
  }
  if (request.has_rotation_rules()) {
    const auto& rules = request.rotation_rules();
    COFFER_RETURN_IF_ERROR(schedule::RotationSchedule::Parse(rules.automatically_after_days(),
                                                             rules.schedule_expression(),
                                                             rules.duration())
                               .status());
  }
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:RotateSecret", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  const std::string worker =
      request.rotation_worker().empty() ? record.rotation().worker() : request.rotation_worker();
  if (worker.empty()) {
    return InvalidField("rotation_worker", "is required to enable rotation",
                        reason::kInvalidParameter);
  }
  if (!request.has_rotation_rules() && !record.rotation().has_rules()) {
    return InvalidField("rotation_rules", "are required to enable rotation",
                        reason::kInvalidParameter);
  }
  const bool immediately = request.has_rotate_immediately() ? request.rotate_immediately() : true;

  COFFER_RETURN_IF_ERROR(records_->Mutate(
      record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
      [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
        if (IsDeleted(r)) return MarkedForDeletion(r.name());
        if (r.rotation_run().next_step() != 0) {
          return Error(reason::kInvalidRequest, "A rotation of this secret is already in progress.",
                       r.name());
        }
        const VersionSummary* current = StagingLabels::FindStage(r, kAwsCurrent);
        absl::Time now = records_->clock()->Now();
        auto* rotation = r.mutable_rotation();
        rotation->set_enabled(true);
        rotation->set_worker(worker);
        if (request.has_rotation_rules()) *rotation->mutable_rules() = request.rotation_rules();
        if (!immediately) {
          *rotation->mutable_next_rotation_date() = ToProto(NextRotation(r, now));
          return absl::OkStatus();
        }
        if (current == nullptr || !current->has_value()) {
          return Error(reason::kInvalidRequest,
                       "The secret has no AWSCURRENT value to rotate; store one with "
                       "PutSecretValue first.",
                       r.name());
        }
        if (StagingLabels::FindVersion(r, token) != nullptr) {
          return Error(reason::kResourceExists,
                       "client_request_token: a version with this id already exists", r.name(),
                       "client_request_token");
        }
        // A stale AWSPENDING (a failed rotation's, or one a client wrote)
        // is never adopted: the new rotation starts over with its own.
        COFFER_RETURN_IF_ERROR(DropStalePending(r));
        COFFER_RETURN_IF_ERROR(AddPendingPlaceholder(r, token, now));
        *rotation->mutable_next_rotation_date() = ToProto(now);
        StartRun(r, token, now);
        *r.mutable_last_changed_date() = ToProto(now);
        return absl::OkStatus();
      }));
  sm::RotateSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  if (immediately) response.set_version_id(token);
  return response;
}

absl::StatusOr<sm::CancelRotateSecretResponse> SecretRotation::CancelRotateSecret(
    const sm::CancelRotateSecretRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "secretsmanager:CancelRotateSecret", request.secret_id()));
  if (IsDeleted(record)) return MarkedForDeletion(record.name());
  std::string pending_version;
  COFFER_RETURN_IF_ERROR(
      records_->Mutate(record, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
                       [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
                         absl::Time now = records_->clock()->Now();
                         auto* rotation = r.mutable_rotation();
                         rotation->set_enabled(false);
                         rotation->clear_next_rotation_date();
                         auto* run = r.mutable_rotation_run();
                         if (run->next_step() != 0) {
                           pending_version = run->state().version_id();
                           run->mutable_state()->set_status(sm::RotationState::STATUS_CANCELLED);
                           EndRun(run, now);
                         }
                         run->set_next_step(0);
                         ClearLease(run);
                         *r.mutable_last_changed_date() = ToProto(now);
                         return absl::OkStatus();
                       }));
  sm::CancelRotateSecretResponse response;
  response.set_arn(record.arn());
  response.set_name(record.name());
  response.set_version_id(pending_version);
  return response;
}

absl::StatusOr<rot::ListRotationSchedulesResponse> SecretRotation::ListRotationSchedules(
    const rot::ListRotationSchedulesRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(int max, PageSize(request.max_results(), {1000, 1000},
                                            {"max_results", reason::kInvalidParameter}));
  rot::ListRotationSchedulesResponse response;
  if (!request.secret_id().empty()) {
    COFFER_ASSIGN_OR_RETURN(
        SecretRecord record,
        AuthorizeSecret(*records_, access, "rotation:ListRotationSchedules", request.secret_id()));
    std::string entry = RotationIndexEntry(record);
    if (!entry.empty()) response.add_schedules()->ParseFromString(entry);
    return response;
  }
  COFFER_RETURN_IF_ERROR(access.Check("rotation:ListRotationSchedules", authz::Resource("*")));
  storage::ScanOptions scan;
  COFFER_ASSIGN_OR_RETURN(scan.start_after,
                          DecodePageToken("schedules", request.next_token(),
                                          {"next_token", reason::kInvalidNextToken}));
  scan.limit = static_cast<size_t>(max) + 1;
  bool more = false;
  COFFER_RETURN_IF_ERROR(
      records_->db()->Scan(schema::kRotations, scan, [&](absl::string_view, absl::string_view v) {
        if (response.schedules_size() == max) {
          more = true;
          return false;
        }
        response.add_schedules()->ParseFromArray(v.data(), static_cast<int>(v.size()));
        return true;
      }));
  if (more) {
    response.set_next_token(
        EncodePageToken("schedules", response.schedules(response.schedules_size() - 1).name()));
  }
  return response;
}

absl::StatusOr<rot::AcquireRotationLeaseResponse> SecretRotation::AcquireRotationLease(
    const rot::AcquireRotationLeaseRequest& request, const authz::Access& access) {
  if (request.holder().empty() || request.holder().size() > 256) {
    return InvalidField("holder", "must be 1-256 characters", reason::kInvalidParameter);
  }
  if (request.worker_spiffe_ids_size() > 100) {
    return InvalidField("worker_spiffe_ids", "at most 100 workers", reason::kInvalidParameter);
  }
  for (const auto& [name, id] : request.worker_spiffe_ids()) {
    if (name.size() > 256 || id.size() > 2048) {
      return InvalidField("worker_spiffe_ids", "names up to 256, ids up to 2048 characters",
                          reason::kInvalidParameter);
    }
  }
  COFFER_ASSIGN_OR_RETURN(absl::Duration duration, LeaseDuration(request.lease_duration()));
  COFFER_ASSIGN_OR_RETURN(
      SecretRecord record,
      AuthorizeSecret(*records_, access, "rotation:AcquireRotationLease", request.secret_id()));
  const std::string holder = BoundHolder(access, request.holder());
  rot::AcquireRotationLeaseResponse response;
  COFFER_RETURN_IF_ERROR(records_->Mutate(record, coffer::v1::CHANGE_KIND_UNSPECIFIED,
                                          [&](SecretRecord& r, storage::Transaction&) {
                                            return Acquire(r, request, holder, duration, &response);
                                          }));
  return response;
}

absl::Status SecretRotation::Acquire(SecretRecord& r,
                                     const rot::AcquireRotationLeaseRequest& request,
                                     const std::string& holder, absl::Duration duration,
                                     rot::AcquireRotationLeaseResponse* response) {
  if (IsDeleted(r)) return MarkedForDeletion(r.name());
  if (!r.rotation().enabled()) {
    return Error(reason::kInvalidRequest, "rotation is not enabled for this secret", r.name());
  }
  absl::Time now = records_->clock()->Now();
  auto* run = r.mutable_rotation_run();
  if (!run->lease_id().empty() && FromProto(run->lease_expires()) > now &&
      run->lease_holder() != holder) {
    return ErrorWithCode(absl::StatusCode::kAborted, reason::kPreconditionNotMet,
                         absl::StrCat("the rotation lease is held by ", run->lease_holder()),
                         r.name());
  }
  if (run->next_step() == 0) {
    if (FromProto(r.rotation().next_rotation_date()) > now) {
      return Error(reason::kInvalidRequest,
                   absl::StrCat("the rotation is not due until ",
                                absl::FormatTime(FromProto(r.rotation().next_rotation_date()))),
                   r.name());
    }
    const VersionSummary* current = StagingLabels::FindStage(r, kAwsCurrent);
    const VersionSummary* pending = StagingLabels::FindStage(r, kAwsPending);
    if (current == nullptr || !current->has_value()) {
      return Error(reason::kInvalidRequest, "the secret has no AWSCURRENT value to rotate",
                   r.name());
    }
    std::string token;
    if (pending != nullptr && pending != current &&
        pending->version_id() == run->state().version_id()) {
      token = pending->version_id();  // this secret's last rotation did not finish: resume it
    } else {
      // A pending version no rotation made (a client's) is replaced, never
      // adopted: the worker creates the next value.
      COFFER_RETURN_IF_ERROR(DropStalePending(r));
      token = NewUuid();
      COFFER_RETURN_IF_ERROR(AddPendingPlaceholder(r, token, now));
    }
    StartRun(r, token, now);
  }
  run->set_lease_id(NewUuid());
  run->set_lease_holder(holder);
  auto worker = request.worker_spiffe_ids().find(r.rotation().worker());
  run->set_worker_spiffe_id(worker != request.worker_spiffe_ids().end() ? worker->second : "");
  *run->mutable_lease_expires() = ToProto(now + duration);
  response->set_lease_id(run->lease_id());
  *response->mutable_lease_expires() = run->lease_expires();
  response->set_secret_arn(r.arn());
  response->set_client_request_token(run->state().version_id());
  response->set_rotation_worker(r.rotation().worker());
  response->set_next_step(ReportedStep(*run));
  response->set_attempts(run->state().attempts());
  return absl::OkStatus();
}

absl::Status SecretRotation::MutateUnderLease(const authz::Access& access, absl::string_view action,
                                              const std::string& secret_id,
                                              const std::string& lease_id,
                                              const RecordMutation& mutate, SecretRecord* result) {
  if (lease_id.empty()) return InvalidField("lease_id", "is required", reason::kInvalidParameter);
  COFFER_ASSIGN_OR_RETURN(SecretRecord record,
                          AuthorizeSecret(*records_, access, action, secret_id));
  return records_->Mutate(
      record, coffer::v1::CHANGE_KIND_UNSPECIFIED,
      [&](SecretRecord& r, storage::Transaction& txn) -> absl::Status {
        const auto& run = r.rotation_run();
        if (run.lease_id() != lease_id ||
            FromProto(run.lease_expires()) <= records_->clock()->Now()) {
          return LeaseLost(r.name());
        }
        // The lease is its holder's identity's alone.
        if (!access.trusted() &&
            !absl::StartsWith(run.lease_holder(), absl::StrCat(access.principal(), "#"))) {
          return authz::AccessDenied(access.principal(), action, secret_id,
                                     "the lease belongs to another identity");
        }
        COFFER_RETURN_IF_ERROR(mutate(r, txn));
        if (result != nullptr) *result = r;
        return absl::OkStatus();
      });
}

absl::StatusOr<rot::RenewRotationLeaseResponse> SecretRotation::RenewRotationLease(
    const rot::RenewRotationLeaseRequest& request, const authz::Access& access) {
  COFFER_ASSIGN_OR_RETURN(absl::Duration duration, LeaseDuration(request.lease_duration()));
  SecretRecord updated;
  COFFER_RETURN_IF_ERROR(MutateUnderLease(
      access, "rotation:RenewRotationLease", request.secret_id(), request.lease_id(),
      [&](SecretRecord& r, storage::Transaction&) {
        *r.mutable_rotation_run()->mutable_lease_expires() =
            ToProto(records_->clock()->Now() + duration);
        return absl::OkStatus();
      },
      &updated));
  rot::RenewRotationLeaseResponse response;
  *response.mutable_lease_expires() = updated.rotation_run().lease_expires();
  return response;
}

absl::StatusOr<rot::RecordRotationProgressResponse> SecretRotation::RecordRotationProgress(
    const rot::RecordRotationProgressRequest& request, const authz::Access& access) {
  if (request.step() < rot::ROTATION_STEP_CREATE_SECRET ||
      request.step() > rot::ROTATION_STEP_FINISH_SECRET) {
    return InvalidField("step", "must be one of the four rotation steps",
                        reason::kInvalidParameter);
  }
  SecretRecord updated;
  COFFER_RETURN_IF_ERROR(MutateUnderLease(
      access, "rotation:RecordRotationProgress", request.secret_id(), request.lease_id(),
      [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
        auto* run = r.mutable_rotation_run();
        if (run->next_step() == 0) {
          return Error(reason::kInvalidRequest, "no rotation is in progress", r.name());
        }
        auto* state = run->mutable_state();
        if (request.completed()) {
          if (request.step() == run->next_step()) {
            run->set_next_step(run->next_step() + 1);
            state->set_attempts(0);
            state->set_next_step(std::string(RotationStepName(run->next_step())));
          }
        } else if (request.step() == run->next_step()) {
          state->set_attempts(state->attempts() + 1);
          state->set_last_error(request.error().substr(0, kMaxErrorText));
        }
        return absl::OkStatus();
      },
      &updated));
  rot::RecordRotationProgressResponse response;
  response.set_next_step(ReportedStep(updated.rotation_run()));
  response.set_attempts(updated.rotation_run().state().attempts());
  return response;
}

absl::StatusOr<rot::CompleteRotationResponse> SecretRotation::CompleteRotation(
    const rot::CompleteRotationRequest& request, const authz::Access& access) {
  SecretRecord updated;
  COFFER_RETURN_IF_ERROR(MutateUnderLease(
      access, "rotation:CompleteRotation", request.secret_id(), request.lease_id(),
      [&](SecretRecord& r, storage::Transaction&) -> absl::Status {
        absl::Time now = records_->clock()->Now();
        auto* run = r.mutable_rotation_run();
        auto* state = run->mutable_state();
        const VersionSummary* current = StagingLabels::FindStage(r, kAwsCurrent);
        // A finishSecret that completed after the rotator gave up (a timed-out
        // step still running on the worker) did move AWSCURRENT: record the truth.
        const bool finished = current != nullptr && current->version_id() == state->version_id();
        if (request.succeeded() || finished) {
          if (!finished) {
            return Error(reason::kInvalidRequest,
                         "finishSecret has not made the pending version AWSCURRENT", r.name());
          }
          state->set_status(sm::RotationState::STATUS_SUCCEEDED);
          state->clear_last_error();
          state->set_attempts(0);
          *r.mutable_rotation()->mutable_last_rotated_date() = ToProto(now);
        } else {
          // AWSCURRENT stays where it is; the pending version stays too, and
          // the next window resumes it.
          state->set_status(sm::RotationState::STATUS_FAILED);
          if (!request.error().empty()) {
            state->set_last_error(request.error().substr(0, kMaxErrorText));
          }
        }
        EndRun(run, now);
        ClearLease(run);
        *r.mutable_rotation()->mutable_next_rotation_date() = ToProto(NextRotation(r, now));
        *r.mutable_last_changed_date() = ToProto(now);
        return absl::OkStatus();
      },
      &updated));
  rot::CompleteRotationResponse response;
  *response.mutable_next_rotation_date() = updated.rotation().next_rotation_date();
  return response;
}

absl::StatusOr<rot::ReleaseRotationLeaseResponse> SecretRotation::ReleaseRotationLease(
    const rot::ReleaseRotationLeaseRequest& request, const authz::Access& access) {
  COFFER_RETURN_IF_ERROR(MutateUnderLease(
      access, "rotation:ReleaseRotationLease", request.secret_id(), request.lease_id(),
      [&](SecretRecord& r, storage::Transaction&) {
        ClearLease(r.mutable_rotation_run());
        return absl::OkStatus();
      },
      nullptr));
  return rot::ReleaseRotationLeaseResponse();
}

}  // namespace coffer::store
