#include "services/workers/postgres/pg_session.h"

#include <libpq-fe.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace coffer::workers {
namespace {

std::string Trimmed(const char* message) {
  return std::string(absl::StripAsciiWhitespace(message == nullptr ? "" : message));
}

bool IsAuthFailure(absl::string_view message) {
  return absl::StrContains(message, "password authentication failed") ||
         absl::StrContains(message, "no password supplied") ||
         absl::StrContains(message, "authentication failed") ||
         (absl::StrContains(message, "role \"") && absl::StrContains(message, "does not exist"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgSession>> PgSession::Connect(const PgLogin& login) {
  if (login.password.empty()) {
    // libpq would fall back to ~/.pgpass or PGPASSWORD: a credential must
    // prove itself.
    return absl::InvalidArgumentError("empty password");
  }
  const std::string port = absl::StrCat(login.port);
  const std::string timeout =
      absl::StrCat(std::max<int64_t>(2, absl::ToInt64Seconds(login.connect_timeout)));
  std::vector<const char*> keys = {
      "host", "port", "dbname", "user", "password", "connect_timeout", "application_name"};
  std::vector<const char*> values = {
      login.host.c_str(),     port.c_str(),    login.dbname.c_str(),    login.user.c_str(),
      login.password.c_str(), timeout.c_str(), "coffer-worker-postgres"};
  if (!login.sslmode.empty()) {
    keys.push_back("sslmode");
    values.push_back(login.sslmode.c_str());
  }
  if (!login.sslrootcert.empty()) {
    keys.push_back("sslrootcert");
    values.push_back(login.sslrootcert.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  // expand_dbname = 0: dbname is a name, never parsed as a connection string.
  pg_conn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/0);
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    std::string text = absl::StrCat("cannot log in as role \"", login.user, "\" on ", login.host,
                                    ":", login.port, "/", login.dbname, ": ", message);
    if (IsAuthFailure(message)) return absl::UnauthenticatedError(text);
    if (absl::StrContains(message, "does not support SSL")) {
      // sslmode require/verify-*: a configuration problem, not an outage.
      return absl::FailedPreconditionError(absl::StrCat(
          text, " (sslmode ", login.sslmode.empty() ? "libpq default" : login.sslmode,
          ": plaintext is refused; a secret may set \"sslmode\":\"disable\" to allow it)"));
    }
    return absl::UnavailableError(text);
  }
  return std::unique_ptr<PgSession>(new PgSession(conn));
}

PgSession::~PgSession() { PQfinish(conn_); }

std::string PgSession::LastError() const { return Trimmed(PQerrorMessage(conn_)); }

absl::Status PgSession::Exec(const std::string& sql) {
  PGresult* result = PQexec(conn_, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  std::string error = result != nullptr ? Trimmed(PQresultErrorMessage(result)) : LastError();
  PQclear(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return absl::OkStatus();
  if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(error);
  return absl::FailedPreconditionError(error);
}

absl::StatusOr<int> PgSession::Query(const std::string& sql,
                                     const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  PGresult* result = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, /*resultFormat=*/0);
  const ExecStatusType status = PQresultStatus(result);
  std::string error = result != nullptr ? Trimmed(PQresultErrorMessage(result)) : LastError();
  const int rows = status == PGRES_TUPLES_OK ? PQntuples(result) : 0;
  PQclear(result);
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return rows;
  if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(error);
  return absl::FailedPreconditionError(error);
}

absl::StatusOr<std::vector<std::vector<std::string>>> PgSession::Rows(
    const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  PGresult* result = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, /*resultFormat=*/0);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK) {
    std::string error = result != nullptr ? Trimmed(PQresultErrorMessage(result)) : LastError();
    PQclear(result);
    if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(error);
    return absl::FailedPreconditionError(error);
  }
  std::vector<std::vector<std::string>> rows(PQntuples(result));
  const int columns = PQnfields(result);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int c = 0; c < columns; ++c) {
      rows[r].emplace_back(PQgetvalue(result, static_cast<int>(r), c),
                           PQgetlength(result, static_cast<int>(r), c));
    }
  }
  PQclear(result);
  return rows;
}

int PgSession::ServerVersion() const { return PQserverVersion(conn_); }

absl::StatusOr<std::string> PgSession::QuoteIdentifier(absl::string_view name) {
  char* quoted = PQescapeIdentifier(conn_, name.data(), name.size());
  if (quoted == nullptr) return absl::InvalidArgumentError(LastError());
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

absl::StatusOr<std::string> PgSession::QuoteLiteral(absl::string_view value) {
  char* quoted = PQescapeLiteral(conn_, value.data(), value.size());
  // The error would be about the encoding only; it never echoes the value.
  if (quoted == nullptr) return absl::InvalidArgumentError("cannot quote a literal");
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

absl::StatusOr<std::string> PgSession::EncryptPassword(absl::string_view password,
                                                       absl::string_view user) {
  const std::string pw(password);
  const std::string u(user);
  char* encrypted = PQencryptPasswordConn(conn_, pw.c_str(), u.c_str(), /*algorithm=*/nullptr);
  if (encrypted == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot hash the new password: ", LastError()));
  }
  std::string out(encrypted);
  PQfreemem(encrypted);
  return out;
}

}  // namespace coffer::workers
