// pg_session.h: one libpq connection, opened with keyword/value arrays (no
// conninfo string is ever assembled from secret data) and with helpers that
// quote identifiers and literals, so SQL text never carries raw input.
//
//   PgLogin login{"db.internal", 5432, "app", "app", password};
//   COFFER_ASSIGN_OR_RETURN(auto session, PgSession::Connect(login));
//   COFFER_ASSIGN_OR_RETURN(std::string role, session->QuoteIdentifier("app"));
//   COFFER_ASSIGN_OR_RETURN(std::string verifier, session->EncryptPassword(pw, "app"));
//   COFFER_ASSIGN_OR_RETURN(std::string literal, session->QuoteLiteral(verifier));
//   COFFER_RETURN_IF_ERROR(session->Exec("ALTER ROLE " + role + " WITH PASSWORD " + literal));
//
// Error messages are libpq's (they name host, user and database, never the
// password) and never contain the SQL text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct pg_conn;

namespace coffer::workers {

struct PgLogin {
  std::string host;
  int port = 5432;
  std::string dbname;
  std::string user;
  std::string password;
  std::string sslmode;      // "" = libpq's default
  std::string sslrootcert;  // CA file for verify-ca/verify-full ("" = libpq's default)
  absl::Duration connect_timeout = absl::Seconds(5);
};

class PgSession {
 public:
  // UNAUTHENTICATED when the server refused the credential,
  // FAILED_PRECONDITION when sslmode asks for TLS and the server has none,
  // UNAVAILABLE for any other connection failure.
  static absl::StatusOr<std::unique_ptr<PgSession>> Connect(const PgLogin& login);
  ~PgSession();
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  // Runs one statement (or several separated by ';') without parameters.
  absl::Status Exec(const std::string& sql);
  // Runs a parameterised query; returns the number of rows.
  absl::StatusOr<int> Query(const std::string& sql, const std::vector<std::string>& params);
  // Runs a parameterised query; returns its rows as text (NULL = "").
  absl::StatusOr<std::vector<std::vector<std::string>>> Rows(
      const std::string& sql, const std::vector<std::string>& params);
  // PQserverVersion: 150004 for 15.4.
  int ServerVersion() const;

  // "name" with quotes doubled (PQescapeIdentifier).
  absl::StatusOr<std::string> QuoteIdentifier(absl::string_view name);
  // 'value' escaped for this connection (PQescapeLiteral).
  absl::StatusOr<std::string> QuoteLiteral(absl::string_view value);
  // The password hashed for `user` as the server's password_encryption
  // says (SCRAM-SHA-256 by default), so the plaintext never reaches the
  // server, its logs or pg_stat_statements.
  absl::StatusOr<std::string> EncryptPassword(absl::string_view password, absl::string_view user);

 private:
  explicit PgSession(pg_conn* conn) : conn_(conn) {}
  std::string LastError() const;
  pg_conn* conn_;
};

}  // namespace coffer::workers
