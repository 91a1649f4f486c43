// secret_access.h: who may act on a secret — the identity policy, the
// secret's resource policy, and the rotation rules that no policy can widen.
//
//   COFFER_ASSIGN_OR_RETURN(SecretRecord record,
//       AuthorizeSecret(records, access, "secretsmanager:GetSecretValue", secret_id));
//
// A secret is authorized under every name it goes by (the id the caller
// used, its ARN, its name), so policies may name either. A secret that does
// not exist is checked under the caller's id alone: a caller with no right
// to it gets PERMISSION_DENIED whether it exists or not (no existence
// oracle), one with the right gets ResourceNotFoundException.
//
// Rotation workers (SecretStoreOptions::worker_principals) act only inside
// a rotation: with the run's token (Access::rotation_token) and, when the
// rotator named one, as the run's worker, a worker may describe, read and
// write the secret it rotates without any policy; outside that, a worker may
// only read (GetSecretValue, DescribeSecret) what a policy lets it read, e.g.
// an alternating-users master secret.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/authz/authorizer.h"
#include "services/store/secrets/secret_records.h"

namespace coffer::store {

// With `value`, the record is read with a version (ValueRead).
absl::StatusOr<SecretRecord> AuthorizeSecret(const SecretRecords& records,
                                             const authz::Access& access, absl::string_view action,
                                             const std::string& secret_id,
                                             ValueRead* value = nullptr);

// True when the caller is a rotation worker (by its SPIFFE ID).
bool IsRotationWorker(const SecretRecords& records, const authz::Access& access);

// True when the caller is the worker of the rotation running on `record`,
// presenting its token.
bool RunsRotationOf(const SecretRecords& records, const authz::Access& access,
                    const SecretRecord& record);

// While a rotation runs on `r`, its pending version belongs to it: anyone
// but the rotation's worker writing that version (`version_id`) or moving
// AWSPENDING (in `stages`) gets InvalidRequestException. Check inside the
// transaction, on the freshly read record. Trusted callers pass.
absl::Status CheckPendingOwnership(const SecretRecords& records, const authz::Access& access,
                                   const SecretRecord& r, const std::string& version_id,
                                   const std::vector<std::string>& stages);

// May the caller see `record` in lists and watch streams (DescribeSecret)?
bool MayDescribe(const authz::Access& access, const SecretRecord& record);

}  // namespace coffer::store
