// secret_rotation.h: the store's side of automatic rotation, over
// SecretRecords.
//
// Two audiences:
//  - the secrets API's RotateSecret / CancelRotateSecret: enable, change or
//    cancel a secret's rotation (rules checked by libs/schedule; an
//    immediate rotation creates the AWSPENDING placeholder);
//  - the rotation-control API for rotators (RotationControlService): the
//    schedule index, leases with expiry (compare-and-set on the record), step
//    progress and completion. Every call after Acquire must present the
//    current unexpired lease (ABORTED / PreconditionNotMetException
//    otherwise), so two rotators never step the same secret.
//
// A rotation run's state lives in the secret's record (rotation_run), so a
// rotator that dies is replaced by another that resumes from the recorded
// step.
//
//   SecretRotation rotation(&records);
//   COFFER_ASSIGN_OR_RETURN(auto lease, rotation.AcquireRotationLease(acquire));
//   ... run lease.next_step() on the worker ...
//   rotation.RecordRotationProgress(progress);
//
// Thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coffer/rotation/v1/control.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "libs/authz/authorizer.h"
#include "services/store/secrets/secret_records.h"

namespace coffer::store {

class SecretRotation {
 public:
  // `records` is not owned and must outlive this object.
  explicit SecretRotation(SecretRecords* records) : records_(records) {}

  // Rotation configuration (secrets API).
  absl::StatusOr<secrets::v1::RotateSecretResponse> RotateSecret(
      const secrets::v1::RotateSecretRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<secrets::v1::CancelRotateSecretResponse> CancelRotateSecret(
      const secrets::v1::CancelRotateSecretRequest& request,
      const authz::Access& access = authz::Access::Trusted());

  // The rotation-control API for rotators.
  absl::StatusOr<rotation::v1::ListRotationSchedulesResponse> ListRotationSchedules(
      const rotation::v1::ListRotationSchedulesRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<rotation::v1::AcquireRotationLeaseResponse> AcquireRotationLease(
      const rotation::v1::AcquireRotationLeaseRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<rotation::v1::RenewRotationLeaseResponse> RenewRotationLease(
      const rotation::v1::RenewRotationLeaseRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<rotation::v1::RecordRotationProgressResponse> RecordRotationProgress(
      const rotation::v1::RecordRotationProgressRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<rotation::v1::CompleteRotationResponse> CompleteRotation(
      const rotation::v1::CompleteRotationRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<rotation::v1::ReleaseRotationLeaseResponse> ReleaseRotationLease(
      const rotation::v1::ReleaseRotationLeaseRequest& request,
      const authz::Access& access = authz::Access::Trusted());

 private:
  // Runs `mutate` on the record of `secret_id` under a valid lease
  // (ABORTED when `lease_id` is not the current unexpired lease); `result`
  // receives the record as written.
  absl::Status MutateUnderLease(const authz::Access& access, absl::string_view action,
                                const std::string& secret_id, const std::string& lease_id,
                                const RecordMutation& mutate, SecretRecord* result);
  // AcquireRotationLease's transaction.
  absl::Status Acquire(SecretRecord& r, const rotation::v1::AcquireRotationLeaseRequest& request,
                       const std::string& holder, absl::Duration duration,
                       rotation::v1::AcquireRotationLeaseResponse* response);
  // A random moment in the first rotation window after `after`.
  absl::Time NextRotation(const SecretRecord& record, absl::Time after) const;

  SecretRecords* records_;
};

}  // namespace coffer::store
