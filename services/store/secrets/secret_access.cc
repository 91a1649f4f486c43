#include "services/store/secrets/secret_access.h"

#include <algorithm>

#include "libs/common/errors.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"

namespace coffer::store {
namespace {

bool IsWorkerAction(absl::string_view action) {
  return action == "secretsmanager:GetSecretValue" || action == "secretsmanager:DescribeSecret" ||
         action == "secretsmanager:PutSecretValue" ||
         action == "secretsmanager:UpdateSecretVersionStage";
}

bool IsReadAction(absl::string_view action) {
  return action == "secretsmanager:GetSecretValue" || action == "secretsmanager:DescribeSecret";
}

}  // namespace

bool IsRotationWorker(const SecretRecords& records, const authz::Access& access) {
  if (access.trusted()) return false;
  for (const std::string& pattern : records.options().worker_principals) {
    if (authz::Glob(pattern).Matches(access.principal())) return true;
  }
  return false;
}

bool RunsRotationOf(const SecretRecords& records, const authz::Access& access,
                    const SecretRecord& record) {
  const auto& run = record.rotation_run();
  if (access.rotation_token().empty() || run.next_step() == 0) return false;
  if (run.state().version_id() != access.rotation_token()) return false;
  if (FromProto(run.lease_expires()) <= records.clock()->Now()) return false;
  return run.worker_spiffe_id().empty() || run.worker_spiffe_id() == access.principal();
}

absl::StatusOr<SecretRecord> AuthorizeSecret(const SecretRecords& records,
                                             const authz::Access& access, absl::string_view action,
                                             const std::string& secret_id, ValueRead* value) {
  auto record = records.Resolve("secret_id", secret_id, value);
  if (!record.ok()) {
    if (record.status().code() == absl::StatusCode::kNotFound) {
      if (IsRotationWorker(records, access) && !IsReadAction(action)) {
        return authz::AccessDenied(access.principal(), action, secret_id,
                                   "a rotation worker writes only the secret it rotates");
      }
      COFFER_RETURN_IF_ERROR(access.Check(action, secret_id));
    }
    return record.status();
  }
  const authz::Resource resource(secret_id, record->arn(), record->name());
  if (IsRotationWorker(records, access)) {
    if (IsWorkerAction(action) && RunsRotationOf(records, access, *record)) {
      access.set_resource(record->arn());
      return record;
    }
    if (!IsReadAction(action)) {
      return authz::AccessDenied(access.principal(), action, secret_id,
                                 "a rotation worker writes only the secret it rotates, with the "
                                 "rotation's token");
    }
  }
  COFFER_RETURN_IF_ERROR(access.Check(action, resource, nullptr, record->resource_policy()));
  return record;
}

absl::Status CheckPendingOwnership(const SecretRecords& records, const authz::Access& access,
                                   const SecretRecord& r, const std::string& version_id,
                                   const std::vector<std::string>& stages) {
  const auto& run = r.rotation_run();
  if (access.trusted() || run.next_step() == 0 || RunsRotationOf(records, access, r)) {
    return absl::OkStatus();
  }
  const bool pending_version = !version_id.empty() && version_id == run.state().version_id();
  const bool pending_label = std::find(stages.begin(), stages.end(), "AWSPENDING") != stages.end();
  if (!pending_version && !pending_label) return absl::OkStatus();
  return Error(reason::kInvalidRequest,
               "a rotation is in progress: its AWSPENDING version belongs to the rotation "
               "(cancel it with CancelRotateSecret first)",
               r.name(), pending_version ? "client_request_token" : "version_stages");
}

bool MayDescribe(const authz::Access& access, const SecretRecord& record) {
  return access.Allows("secretsmanager:DescribeSecret",
                       authz::Resource(record.name(), record.arn(), record.name()), nullptr,
                       record.resource_policy());
}

}  // namespace coffer::store
