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
//    credential; CREATE ROLE <clone> LOGIN PASSWORD + GRANT <user> TO
//    <clone>, or ALTER ROLE ... PASSWORD when the role exists.
//  - testSecret: log in with the pending credential and SELECT 1.
//  - finishSecret: FinishStandard.
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
};

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
  PgLogin LoginOf(const PostgresCredential& c) const;

  const PostgresRotationOptions options_;
};

}  // namespace coffer::workers
