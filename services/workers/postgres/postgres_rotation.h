// postgres_rotation.h: the built-in PostgreSQL rotation worker (rotation.md).
//
//   PostgresRotationOptions options;
//   options.strategy = PostgresStrategy::kAlternatingUsers;
//   PostgresRotation handler(options);
//   WorkerService service(&handler, secrets.get(), &probe, {...});
//
// The secret value is {"engine":"postgres","host","port","dbname","username",
// "password"} (plus "master_secret" for alternating users).
//  - createSecret: a new password from the store's GetRandomPassword
//    (without characters that break connection strings); alternating users
//    switch the username between <user> and <user>_clone.
//  - setSecret, single user: done if the pending credential logs in; else
//    log in with AWSCURRENT (then AWSPREVIOUS) and ALTER ROLE ... PASSWORD.
//    Refuses when username or host differ between the versions.
//  - setSecret, alternating users: log in with the master secret's
//    credential; CREATE ROLE <clone> NOSUPERUSER ... LOGIN PASSWORD + GRANT
//    <user> TO <clone>, or ALTER ROLE ... PASSWORD when the role exists.
//    Before any DDL it refuses (FAILED_PRECONDITION) a role named postgres
//    or pg_*, and, from the catalog, a role that is the master's own, has
//    SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS, is a member (directly
//    or not) of the master's role or of a role with those attributes, or
//    that the master's role is a member of; an existing clone must be a
//    member of <user> and of nothing else.
//  - testSecret: log in with the pending credential and SELECT 1.
//  - finishSecret: FinishStandard.
// Connections use the secret's "sslmode"; without one, verify-full when the
// worker has a CA (--pg_ssl_root_cert), else require: plaintext only when a
// secret says "disable" (or allow/prefer). The alternating-users master login
// follows the master secret's own sslmode, never the rotated secret's.
// Passwords are sent hashed (PQencryptPasswordConn) and quoted
// (PQescapeLiteral); role names are quoted (PQescapeIdentifier). Errors name
// the step and the role, never a password.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/worker/rotation_handler.h"
#include "services/workers/postgres/pg_session.h"
#include "services/workers/postgres/postgres_credential.h"

namespace coffer::workers {

enum class PostgresStrategy { kSingleUser, kAlternatingUsers };

// "single-user" | "alternating-users".
absl::StatusOr<PostgresStrategy> ParseStrategy(absl::string_view text);

struct PostgresRotationOptions {
  PostgresStrategy strategy = PostgresStrategy::kSingleUser;
  absl::Duration connect_timeout = absl::Seconds(5);
  int password_length = 32;
  // Characters that break connection strings or shell quoting.
  std::string exclude_characters = "/@\"'\\:;=`$ ";
  // CA file for the database servers' certificates: the default sslmode
  // becomes verify-full (libpq sslrootcert). "" = none; the default is
  // require.
  std::string ssl_root_cert;
};

// The libpq login for `credential` with the worker's TLS defaults:
// sslmode is the secret's, else verify-full when options.ssl_root_cert is
// set, else require; sslrootcert is options.ssl_root_cert.
PgLogin LoginFor(const PostgresCredential& credential, const PostgresRotationOptions& options);

// "postgres" and "pg_*" (PostgreSQL's own roles): never rotated by
// alternating users.
bool IsReservedRoleName(absl::string_view name);

// "app" -> "app_clone" and "app_clone" -> "app". INVALID_ARGUMENT when the
// clone's name would pass PostgreSQL's 63-byte limit.
absl::StatusOr<std::string> AlternateUsername(const std::string& username);

class PostgresRotation final : public worker::RotationHandler {
 public:
  explicit PostgresRotation(PostgresRotationOptions options) : options_(std::move(options)) {}

  absl::Status CreateSecret(const worker::StepContext& ctx) override;
  absl::Status SetSecret(const worker::StepContext& ctx) override;
  absl::Status TestSecret(const worker::StepContext& ctx) override;
  absl::Status FinishSecret(const worker::StepContext& ctx) override;

 private:
  absl::Status SetSingleUser(const worker::StepContext& ctx, const PostgresCredential& pending,
                             const PostgresCredential& current);
  absl::Status SetAlternating(const worker::StepContext& ctx, const PostgresCredential& pending,
                              const PostgresCredential& current);
  PgLogin LoginOf(const PostgresCredential& c) const { return LoginFor(c, options_); }

  const PostgresRotationOptions options_;
};

}  // namespace coffer::workers
