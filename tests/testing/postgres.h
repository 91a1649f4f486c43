// postgres.h: a private PostgreSQL server for tests — its own cluster in a
// temp dir (initdb), listening on a free port on 127.0.0.1 with
// scram-sha-256 password authentication for every connection (never
// `trust`, so tests prove that passwords are checked), and a superuser with
// a known password.
//
//   ASSERT_TRUE(coffer::testing::PostgresServer::Installed());  // never skip: CI installs it
//   auto pg = coffer::testing::PostgresServer::Start();
//   ASSERT_TRUE(pg.ok()) << pg.status();
//   ASSERT_TRUE((*pg)->Exec("CREATE ROLE app LOGIN PASSWORD 'pw1'").ok());
//   EXPECT_TRUE((*pg)->CanLogin("app", "pw1"));
//   EXPECT_FALSE((*pg)->CanLogin("app", "wrong"));
//
// When the test runs as root the server runs as the OS user `postgres`
// (PostgreSQL refuses root); the temp dir is handed to that user. The server
// dies with the test process (PR_SET_PDEATHSIG) even when the test crashes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/testing/test_env.h"

namespace coffer::testing {

class PostgresServer {
 public:
  // True when initdb and postgres exist under /usr/lib/postgresql/*/bin.
  static bool Installed();
  // initdb + start + wait until the superuser can log in. NOT_FOUND when
  // PostgreSQL is not installed.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();
  ~PostgresServer();  // Stop()
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  std::string host() const { return "127.0.0.1"; }
  int port() const { return port_; }
  const std::string& superuser() const { return superuser_; }
  const std::string& superuser_password() const { return superuser_password_; }

  // Runs `sql` (one or more statements) as the superuser in database
  // "postgres".
  absl::Status Exec(const std::string& sql);
  // Runs `sql` as `user` with `password` (over TCP, password checked).
  absl::Status ExecAs(const std::string& user, const std::string& password, const std::string& sql,
                      const std::string& dbname = "postgres");
  // Whether `user` can log in with `password` over TCP.
  bool CanLogin(const std::string& user, const std::string& password,
                const std::string& dbname = "postgres");
  // Fast shutdown; idempotent.
  void Stop();
  // The server's log so far.
  std::string Log() const;

 private:
  PostgresServer() = default;
  absl::Status StartOnce(const std::string& bin_dir);

  TempDir dir_;
  std::string data_dir_;
  std::string log_file_;
  std::string superuser_ = "coffer_admin";
  std::string superuser_password_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace coffer::testing
