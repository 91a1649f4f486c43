#include "services/workers/postgres/postgres_rotation.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

PgLogin PostgresRotation::LoginOf(const PostgresCredential& c) const {
  PgLogin login;
  login.host = c.host;
  login.port = c.port;
  login.dbname = c.dbname;
  login.user = c.username;
  login.password = c.password;
  login.sslmode = c.sslmode;
  login.connect_timeout = options_.connect_timeout;
  return login;
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

  const std::string base =
      absl::EndsWith(pending.username, kCloneSuffix)
          ? pending.username.substr(0, pending.username.size() - (sizeof(kCloneSuffix) - 1))
          : pending.username;
  PgLogin login = LoginOf(master);
  if (login.sslmode.empty()) login.sslmode = pending.sslmode;
  COFFER_ASSIGN_OR_RETURN(std::unique_ptr<PgSession> session, PgSession::Connect(login));
  COFFER_ASSIGN_OR_RETURN(
      int exists,
      session->Query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", {pending.username}));
  COFFER_ASSIGN_OR_RETURN(std::string role, session->QuoteIdentifier(pending.username));
  COFFER_ASSIGN_OR_RETURN(std::string verifier,
                          session->EncryptPassword(pending.password, pending.username));
  COFFER_ASSIGN_OR_RETURN(std::string literal, session->QuoteLiteral(verifier));
  std::string sql = absl::StrCat("BEGIN; ", exists > 0 ? "ALTER" : "CREATE", " ROLE ", role,
                                 " WITH LOGIN PASSWORD ", literal, "; ");
  if (base != pending.username) {
    // The clone gets the original's privileges through membership.
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
