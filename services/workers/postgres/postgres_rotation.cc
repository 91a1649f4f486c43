#include "services/workers/postgres/postgres_rotation.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "libs/common/status_macros.h"

namespace coffer::workers {

using worker::kAwsCurrent;
using worker::kAwsPending;
using worker::kAwsPrevious;
using worker::StepContext;

namespace {

constexpr char kCloneSuffix[] = "_clone";
constexpr size_t kMaxRoleName = 63;  // NAMEDATALEN - 1

// Adds the step to an error's message (the code stays).
absl::Status InStep(absl::string_view step, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(step, ": ", status.message()));
}

absl::StatusOr<PostgresCredential> ReadVersion(const StepContext& ctx,
                                               const std::string& version_id,
                                               const std::string& stage, absl::string_view what) {
  COFFER_ASSIGN_OR_RETURN(worker::SecretValue value,
                          ctx.secrets.GetSecretValue(ctx.secret_id, version_id, stage));
  if (value.binary) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret value (", what, ") is binary; expected a JSON string"));
  }
  return ParseCredential(value.value, what);
}

absl::StatusOr<PostgresCredential> ReadPending(const StepContext& ctx) {
  return ReadVersion(ctx, ctx.token, "", "pending version");
}

absl::StatusOr<PostgresCredential> ReadCurrent(const StepContext& ctx) {
  return ReadVersion(ctx, "", kAwsCurrent, "AWSCURRENT");
}

// Why the master may not hand a login with `role`'s privileges to a secret:
// one row per reason, none when it may. $1 = the role, the master is
// session_user. Memberships are followed through pg_auth_members (not
// pg_has_role, which is true for every role when the master is a superuser).
// MASTER_GRANTS restricts the master's memberships to the ones that give it
// something: from PostgreSQL 16 a CREATEROLE master holds an ADMIN-only
// membership in every role it creates.
constexpr char kRoleProblemsSql[] = R"SQL(
WITH RECURSIVE
  target AS (
    SELECT oid, rolsuper, rolcreaterole, rolreplication, rolbypassrls
    FROM pg_catalog.pg_roles WHERE rolname = $1),
  master AS (SELECT oid, rolname FROM pg_catalog.pg_roles WHERE rolname = session_user),
  target_in(roleid) AS (
    SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN target t ON m.member = t.oid
    UNION
    SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN target_in i ON m.member = i.roleid),
  master_in(roleid) AS (
    SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN master s ON m.member = s.oid
    WHERE MASTER_GRANTS
    UNION
    SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN master_in i ON m.member = i.roleid
    WHERE MASTER_GRANTS)
SELECT reason FROM (
  SELECT 'it is the master secret''s own role' FROM target t JOIN master s ON t.oid = s.oid
  UNION ALL SELECT 'it has SUPERUSER' FROM target WHERE rolsuper
  UNION ALL SELECT 'it has CREATEROLE' FROM target WHERE rolcreaterole
  UNION ALL SELECT 'it has REPLICATION' FROM target WHERE rolreplication
  UNION ALL SELECT 'it has BYPASSRLS' FROM target WHERE rolbypassrls
  UNION ALL SELECT 'it is a member of the master secret''s role "' || s.rolname || '"'
    FROM master s WHERE s.oid IN (SELECT roleid FROM target_in)
  UNION ALL SELECT 'the master secret''s role "' || s.rolname || '" is a member of it'
    FROM master s, target t WHERE t.oid IN (SELECT roleid FROM master_in)
  UNION ALL SELECT 'it is a member of role "' || r.rolname ||
                   '", which has SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS'
    FROM pg_catalog.pg_roles r
    WHERE r.oid IN (SELECT roleid FROM target_in)
      AND (r.rolsuper OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls)
) AS reasons(reason)
)SQL";

// FAILED_PRECONDITION naming `role` and every reason it may not be rotated
// by alternating users (see kRoleProblemsSql).
absl::Status CheckRotatable(PgSession& session, const std::string& role) {
  const std::string master_grants =
      session.ServerVersion() >= 160000 ? "(m.inherit_option OR m.set_option)" : "true";
  COFFER_ASSIGN_OR_RETURN(
      auto rows,
      session.Rows(absl::StrReplaceAll(kRoleProblemsSql, {{"MASTER_GRANTS", master_grants}}),
                   {role}));
  if (rows.empty()) return absl::OkStatus();
  std::vector<std::string> reasons;
  for (const auto& row : rows) reasons.push_back(row.empty() ? "" : row[0]);
  return absl::FailedPreconditionError(
      absl::StrCat("refusing to rotate role \"", role,
                   "\" with alternating users (its clone would get its privileges): ",
                   absl::StrJoin(reasons, "; ")));
}

// An existing clone must be a member of `base` only: it gets no more than
// the original.
absl::Status CheckCloneMembership(PgSession& session, const std::string& clone,
                                  const std::string& base) {
  COFFER_ASSIGN_OR_RETURN(auto rows, session.Rows(R"SQL(
SELECT r.rolname FROM pg_catalog.pg_auth_members m
  JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
  JOIN pg_catalog.pg_roles c ON c.oid = m.member
WHERE c.rolname = $1 ORDER BY 1)SQL",
                                                  {clone}));
  std::vector<std::string> other;
  bool has_base = false;
  for (const auto& row : rows) {
    if (row.empty()) continue;
    if (row[0] == base) {
      has_base = true;
    } else {
      other.push_back(absl::StrCat("\"", row[0], "\""));
    }
  }
  if (!other.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to rotate role \"", clone, "\": it is a member of ",
                     absl::StrJoin(other, ", "), ", not only of \"", base, "\""));
  }
  if (!has_base) {
    return absl::FailedPreconditionError(absl::StrCat("refusing to rotate role \"", clone,
                                                      "\": it exists but is not a member of \"",
                                                      base, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PostgresStrategy> ParseStrategy(absl::string_view text) {
  if (text == "single-user") return PostgresStrategy::kSingleUser;
  if (text == "alternating-users") return PostgresStrategy::kAlternatingUsers;
  return absl::InvalidArgumentError("--strategy must be single-user or alternating-users");
}

absl::StatusOr<std::string> AlternateUsername(const std::string& username) {
  if (absl::EndsWith(username, kCloneSuffix) && username.size() > sizeof(kCloneSuffix) - 1) {
    return username.substr(0, username.size() - (sizeof(kCloneSuffix) - 1));
  }
  std::string clone = username + kCloneSuffix;
  if (clone.size() > kMaxRoleName) {
    return absl::InvalidArgumentError(absl::StrCat("role name \"", username,
                                                   "\" is too long for a \"", kCloneSuffix,
                                                   "\" twin (63 bytes at most)"));
  }
  return clone;
}

PgLogin LoginFor(const PostgresCredential& c, const PostgresRotationOptions& options) {
  PgLogin login;
  login.host = c.host;
  login.port = c.port;
  login.dbname = c.dbname;
  login.user = c.username;
  login.password = c.password;
  if (!c.sslmode.empty()) {
    login.sslmode = c.sslmode;
  } else {
    login.sslmode = options.ssl_root_cert.empty() ? "require" : "verify-full";
  }
  login.sslrootcert = options.ssl_root_cert;
  login.connect_timeout = options.connect_timeout;
  return login;
}

bool IsReservedRoleName(absl::string_view name) {
  return name == "postgres" || absl::StartsWith(name, "pg_");
}

absl::Status PostgresRotation::CreateSecret(const StepContext& ctx) {
  return InStep(
      "createSecret", worker::CreatePendingIfMissing(ctx, [&]() -> absl::StatusOr<std::string> {
        COFFER_ASSIGN_OR_RETURN(PostgresCredential next, ReadCurrent(ctx));
        if (options_.strategy == PostgresStrategy::kAlternatingUsers) {
          if (next.master_secret.empty()) {
            return absl::InvalidArgumentError(
                "secret value (AWSCURRENT): \"master_secret\" is required for alternating users");
          }
          COFFER_ASSIGN_OR_RETURN(next.username, AlternateUsername(next.username));
        }
        secrets::v1::GetRandomPasswordRequest request;
        request.set_password_length(options_.password_length);
        request.set_exclude_characters(options_.exclude_characters);
        request.set_include_space(false);
        COFFER_ASSIGN_OR_RETURN(next.password, ctx.secrets.GetRandomPassword(request));
        return SerializeCredential(next);
      }));
}

absl::Status PostgresRotation::SetSecret(const StepContext& ctx) {
  absl::StatusOr<PostgresCredential> pending = ReadPending(ctx);
  if (!pending.ok()) return InStep("setSecret", pending.status());
  absl::StatusOr<PostgresCredential> current = ReadCurrent(ctx);
  if (!current.ok()) return InStep("setSecret", current.status());
  return InStep("setSecret", options_.strategy == PostgresStrategy::kSingleUser
                                 ? SetSingleUser(ctx, *pending, *current)
                                 : SetAlternating(ctx, *pending, *current));
}

absl::Status PostgresRotation::SetSingleUser(const StepContext& ctx,
                                             const PostgresCredential& pending,
                                             const PostgresCredential& current) {
  if (pending.username != current.username || pending.host != current.host) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to rotate role \"", current.username,
                     "\": the pending version names another username or host than AWSCURRENT"));
  }
  // Already set (a repeated step, or a crash after ALTER ROLE).
  if (PgSession::Connect(LoginOf(pending)).ok()) return absl::OkStatus();

  std::vector<PostgresCredential> candidates = {current};
  absl::StatusOr<PostgresCredential> previous = ReadVersion(ctx, "", kAwsPrevious, "AWSPREVIOUS");
  if (previous.ok() && previous->username == current.username && previous->host == current.host) {
    candidates.push_back(*std::move(previous));
  }
  absl::Status last;
  for (const PostgresCredential& candidate : candidates) {
    absl::StatusOr<std::unique_ptr<PgSession>> session = PgSession::Connect(LoginOf(candidate));
    if (!session.ok()) {
      last = session.status();
      continue;
    }
    COFFER_ASSIGN_OR_RETURN(std::string role, (*session)->QuoteIdentifier(pending.username));
    COFFER_ASSIGN_OR_RETURN(std::string verifier,
                            (*session)->EncryptPassword(pending.password, pending.username));
    COFFER_ASSIGN_OR_RETURN(std::string literal, (*session)->QuoteLiteral(verifier));
    absl::Status altered =
        (*session)->Exec(absl::StrCat("ALTER ROLE ", role, " WITH PASSWORD ", literal));
    if (!altered.ok()) {
      return absl::Status(altered.code(),
                          absl::StrCat("cannot change the password of role \"", pending.username,
                                       "\": ", altered.message()));
    }
    return absl::OkStatus();
  }
  const absl::StatusCode code = last.code() == absl::StatusCode::kUnavailable
                                    ? absl::StatusCode::kUnavailable
                                    : absl::StatusCode::kFailedPrecondition;
  return absl::Status(code, absl::StrCat("cannot log in with the pending, current or previous "
                                         "credential of role \"",
                                         pending.username, "\": ", last.message()));
}

absl::Status PostgresRotation::SetAlternating(const StepContext& ctx,
                                              const PostgresCredential& pending,
                                              const PostgresCredential& current) {
  const std::string master_id =
      !pending.master_secret.empty() ? pending.master_secret : current.master_secret;
  if (master_id.empty()) {
    return absl::InvalidArgumentError(
        "secret value (pending version): \"master_secret\" is required for alternating users");
  }
  if (pending.host != current.host) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to rotate role \"", current.username,
                     "\": the pending version names another host than AWSCURRENT"));
  }
  // The pending user is AWSCURRENT's or its twin, nothing else.
  absl::StatusOr<std::string> twin = AlternateUsername(current.username);
  if (pending.username != current.username && (!twin.ok() || pending.username != *twin)) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to rotate role \"", current.username,
                     "\": the pending version names a username that is neither it nor its \"",
                     kCloneSuffix, "\" twin"));
  }
  const std::string base =
      absl::EndsWith(pending.username, kCloneSuffix)
          ? pending.username.substr(0, pending.username.size() - (sizeof(kCloneSuffix) - 1))
          : pending.username;
  const bool is_clone = base != pending.username;
  for (const std::string& name : {base, pending.username}) {
    if (IsReservedRoleName(name)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to rotate role \"", name, "\": postgres and pg_* are PostgreSQL's own roles"));
    }
  }

  absl::StatusOr<worker::SecretValue> master_value =
      ctx.secrets.GetSecretValue(master_id, "", kAwsCurrent);
  if (!master_value.ok()) {
    return absl::Status(
        master_value.status().code(),
        absl::StrCat("master secret ", master_id, ": ", master_value.status().message()));
  }
  COFFER_ASSIGN_OR_RETURN(PostgresCredential master,
                          ParseCredential(master_value->value, "master secret"));
  // The master password goes only to the master secret's own host.
  if (master.host != pending.host) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to rotate role \"", pending.username,
                     "\": the master secret is for another host than the secret"));
  }
  if (master.username == base || master.username == pending.username) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to rotate role \"", pending.username, "\": it is the master secret's own role"));
  }

  // The master login follows the master secret's sslmode (or the worker's
  // default), never the rotated secret's: that one must not downgrade it.
  COFFER_ASSIGN_OR_RETURN(std::unique_ptr<PgSession> session, PgSession::Connect(LoginOf(master)));
  COFFER_ASSIGN_OR_RETURN(
      int exists,
      session->Query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", {pending.username}));
  if (is_clone) {
    COFFER_ASSIGN_OR_RETURN(
        int base_exists,
        session->Query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", {base}));
    if (base_exists == 0) {
      return absl::FailedPreconditionError(absl::StrCat("refusing to create role \"",
                                                        pending.username, "\": role \"", base,
                                                        "\" does not exist"));
    }
  }
  // Every check before any DDL.
  COFFER_RETURN_IF_ERROR(CheckRotatable(*session, base));
  if (is_clone && exists > 0) {
    COFFER_RETURN_IF_ERROR(CheckRotatable(*session, pending.username));
    COFFER_RETURN_IF_ERROR(CheckCloneMembership(*session, pending.username, base));
  }

  COFFER_ASSIGN_OR_RETURN(std::string role, session->QuoteIdentifier(pending.username));
  COFFER_ASSIGN_OR_RETURN(std::string verifier,
                          session->EncryptPassword(pending.password, pending.username));
  COFFER_ASSIGN_OR_RETURN(std::string literal, session->QuoteLiteral(verifier));
  std::string sql = "BEGIN; ";
  if (exists > 0) {
    absl::StrAppend(&sql, "ALTER ROLE ", role, " WITH LOGIN PASSWORD ", literal, "; ");
  } else {
    // Every attribute spelled out: nothing comes from defaults.
    absl::StrAppend(&sql, "CREATE ROLE ", role,
                    " WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT "
                    "LOGIN PASSWORD ",
                    literal, "; ");
  }
  if (is_clone && exists == 0) {
    // The clone gets the original's privileges through membership in it,
    // and nothing else.
    COFFER_ASSIGN_OR_RETURN(std::string base_role, session->QuoteIdentifier(base));
    absl::StrAppend(&sql, "GRANT ", base_role, " TO ", role, "; ");
  }
  absl::StrAppend(&sql, "COMMIT;");
  absl::Status done = session->Exec(sql);
  if (!done.ok()) {
    session->Exec("ROLLBACK").IgnoreError();
    return absl::Status(
        done.code(),
        absl::StrCat(exists > 0 ? "cannot change the password of role \"" : "cannot create role \"",
                     pending.username, "\": ", done.message()));
  }
  return absl::OkStatus();
}

absl::Status PostgresRotation::TestSecret(const StepContext& ctx) {
  absl::StatusOr<PostgresCredential> pending = ReadPending(ctx);
  if (!pending.ok()) return InStep("testSecret", pending.status());
  absl::StatusOr<std::unique_ptr<PgSession>> session = PgSession::Connect(LoginOf(*pending));
  if (!session.ok()) {
    const absl::StatusCode code = session.status().code() == absl::StatusCode::kUnavailable
                                      ? absl::StatusCode::kUnavailable
                                      : absl::StatusCode::kFailedPrecondition;
    return absl::Status(code, absl::StrCat("testSecret: ", session.status().message()));
  }
  absl::StatusOr<int> rows = (*session)->Query("SELECT 1", {});
  if (!rows.ok()) return InStep("testSecret", rows.status());
  if (*rows != 1) return absl::InternalError("testSecret: SELECT 1 returned no row");
  return absl::OkStatus();
}

absl::Status PostgresRotation::FinishSecret(const StepContext& ctx) {
  return InStep("finishSecret", worker::FinishStandard(ctx));
}

}  // namespace coffer::workers
