#include "tests/testing/postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace coffer::testing {
namespace {

// The newest /usr/lib/postgresql/<version>/bin with initdb and postgres.
std::string FindBinDir() {
  glob_t g;
  std::string best;
  int best_version = -1;
  if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string initdb = g.gl_pathv[i];
      std::string bin = initdb.substr(0, initdb.size() - std::strlen("/initdb"));
      if (::access(initdb.c_str(), X_OK) != 0 || ::access((bin + "/postgres").c_str(), X_OK) != 0) {
        continue;
      }
      std::string version = bin.substr(std::strlen("/usr/lib/postgresql/"));
      version = version.substr(0, version.find('/'));
      const int v = std::atoi(version.c_str());
      if (v > best_version) {
        best_version = v;
        best = bin;
      }
    }
  }
  ::globfree(&g);
  return best;
}

struct RunAs {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

absl::StatusOr<RunAs> ServerUser() {
  RunAs who;
  if (::geteuid() != 0) return who;
  struct passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) {
    return absl::FailedPreconditionError(
        "running as root and there is no OS user 'postgres' to run PostgreSQL as");
  }
  who.switch_user = true;
  who.uid = pw->pw_uid;
  who.gid = pw->pw_gid;
  return who;
}

absl::Status HandOver(const std::string& path, const RunAs& who) {
  if (!who.switch_user) return absl::OkStatus();
  if (::chown(path.c_str(), who.uid, who.gid) != 0) {
    return absl::InternalError(absl::StrCat("chown ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Starts argv[0] (a path) as `who`, output appended to `log`. The child
// dies when this thread's process dies.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, const std::string& log,
                            const std::string& cwd, const RunAs& who) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr) env.emplace(std::string(*e, eq - *e), std::string(eq + 1));
  }
  env["LC_ALL"] = "C";
  env["LANG"] = "C";
  env.erase("PGPASSWORD");
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = args;
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0)
    return absl::InternalError(absl::StrCat("open ", log, ": ", std::strerror(errno)));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    if (who.switch_user) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
        ::_exit(126);
      }
    }
    // After the uid change, which would clear it. SIGQUIT: immediate stop.
    ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (::getppid() != parent) ::_exit(126);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

// Exit code, 128+signal, or -1 on timeout (the child is then killed).
int WaitChild(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (absl::Now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

absl::StatusOr<int> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("bind: ", std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

absl::Status WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  ::chmod(path.c_str(), 0600);
  return absl::OkStatus();
}

// A TCP connection with a password (sslmode off: the test server has no
// certificate). nullptr plus the message when it fails.
PGconn* Connect(int port, const std::string& user, const std::string& password,
                const std::string& dbname, std::string* error) {
  const std::string port_text = absl::StrCat(port);
  const char* keys[] = {"host",    "port", "dbname", "user", "password", "connect_timeout",
                        "sslmode", nullptr};
  const char* values[] = {
      "127.0.0.1", port_text.c_str(), dbname.c_str(), user.c_str(), password.c_str(),
      "5",         "disable",         nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 0);
  if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) return conn;
  if (error != nullptr) {
    *error = conn != nullptr ? std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn)))
                             : "out of memory";
  }
  PQfinish(conn);
  return nullptr;
}

}  // namespace

bool PostgresServer::Installed() { return !FindBinDir().empty(); }

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  const std::string bin = FindBinDir();
  if (bin.empty()) {
    return absl::NotFoundError(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); apt-get install "
        "postgresql");
  }
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    last = server->StartOnce(bin);
    if (last.ok()) return server;
    server->Stop();
  }
  return last;
}

absl::Status PostgresServer::StartOnce(const std::string& bin) {
  absl::StatusOr<RunAs> who = ServerUser();
  if (!who.ok()) return who.status();
  if (absl::Status s = HandOver(dir_.path(), *who); !s.ok()) return s;
  data_dir_ = dir_.Join("data");
  log_file_ = dir_.Join("postgres.log");
  const std::string socket_dir = dir_.Join("sock");
  const std::string pwfile = dir_.Join("pwfile");

  if (::access((data_dir_ + "/PG_VERSION").c_str(), F_OK) != 0) {
    superuser_password_ = absl::StrCat("pw-", ::getpid(), "-", absl::ToUnixNanos(absl::Now()));
    if (absl::Status s = WriteFile(pwfile, superuser_password_ + "\n"); !s.ok()) return s;
    if (absl::Status s = HandOver(pwfile, *who); !s.ok()) return s;
    if (absl::Status s = WriteFile(log_file_, ""); !s.ok()) return s;
    if (absl::Status s = HandOver(log_file_, *who); !s.ok()) return s;
    ::mkdir(socket_dir.c_str(), 0700);
    if (absl::Status s = HandOver(socket_dir, *who); !s.ok()) return s;

    absl::StatusOr<pid_t> initdb = Spawn(
        {bin + "/initdb", "-D", data_dir_, "-U", superuser_, "--pwfile=" + pwfile,
         "--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"},
        log_file_, dir_.path(), *who);
    if (!initdb.ok()) return initdb.status();
    const int code = WaitChild(*initdb, absl::Seconds(120));
    ::unlink(pwfile.c_str());
    if (code != 0) {
      return absl::InternalError(absl::StrCat("initdb exited with ", code, ": ", Log()));
    }
  }

  absl::StatusOr<int> port = FreePort();
  if (!port.ok()) return port.status();
  port_ = *port;
  absl::StatusOr<pid_t> pid = Spawn({bin + "/postgres",
                                     "-D",
                                     data_dir_,
                                     "-p",
                                     absl::StrCat(port_),
                                     "-k",
                                     socket_dir,
                                     "-c",
                                     "listen_addresses=127.0.0.1",
                                     "-c",
                                     "fsync=off",
                                     "-c",
                                     "synchronous_commit=off",
                                     "-c",
                                     "full_page_writes=off",
                                     "-c",
                                     "max_connections=40",
                                     "-c",
                                     "shared_buffers=16MB",
                                     "-c",
                                     "password_encryption=scram-sha-256"},
                                    log_file_, dir_.path(), *who);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;

  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("postgres exited during start-up: ", Log()));
    }
    std::string error;
    PGconn* conn = Connect(port_, superuser_, superuser_password_, "postgres", &error);
    if (conn != nullptr) {
      PQfinish(conn);
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("postgres did not accept logins within 60s (", error, "): ", Log()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

PostgresServer::~PostgresServer() { Stop(); }

void PostgresServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);  // fast shutdown
  if (WaitChild(pid_, absl::Seconds(20)) == -1) {
    // WaitChild killed it.
  }
  pid_ = -1;
}

std::string PostgresServer::Log() const { return ReadFile(log_file_); }

absl::Status PostgresServer::Exec(const std::string& sql) {
  return ExecAs(superuser_, superuser_password_, sql);
}

absl::Status PostgresServer::ExecAs(const std::string& user, const std::string& password,
                                    const std::string& sql, const std::string& dbname) {
  std::string error;
  PGconn* conn = Connect(port_, user, password, dbname, &error);
  if (conn == nullptr) return absl::UnauthenticatedError(error);
  PGresult* result = PQexec(conn, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  std::string message(absl::StripTrailingAsciiWhitespace(PQresultErrorMessage(result)));
  PQclear(result);
  PQfinish(conn);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return absl::OkStatus();
  return absl::FailedPreconditionError(message);
}

bool PostgresServer::CanLogin(const std::string& user, const std::string& password,
                              const std::string& dbname) {
  PGconn* conn = Connect(port_, user, password, dbname, nullptr);
  if (conn == nullptr) return false;
  PQfinish(conn);
  return true;
}

}  // namespace coffer::testing
