#include "services/workers/exec/exec_rotation.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace coffer::workers {

using worker::StepContext;

absl::Status CheckCommand(const std::string& command) {
  if (command.empty() || command[0] != '/') {
    return absl::InvalidArgumentError("--command must be an absolute path");
  }
  struct stat st;
  if (::stat(command.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      ::access(command.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--command: ", command, " is not an executable file"));
  }
  return absl::OkStatus();
}

absl::Status ExecRotation::CreateSecret(const StepContext& ctx) { return Run(ctx, "createSecret"); }
absl::Status ExecRotation::SetSecret(const StepContext& ctx) { return Run(ctx, "setSecret"); }
absl::Status ExecRotation::TestSecret(const StepContext& ctx) { return Run(ctx, "testSecret"); }
absl::Status ExecRotation::FinishSecret(const StepContext& ctx) { return Run(ctx, "finishSecret"); }

absl::Status ExecRotation::Run(const StepContext& ctx, absl::string_view step) {
  // Everything the child needs is prepared before fork(): after it, in a
  // multi-threaded process, only async-signal-safe calls are allowed.
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr) env.emplace(std::string(*e, eq - *e), std::string(eq + 1));
  }
  env["COFFER_ROTATION_STEP"] = std::string(step);
  env["COFFER_SECRET_ID"] = ctx.secret_id;
  env["COFFER_CLIENT_REQUEST_TOKEN"] = ctx.token;
  // cofferctl sends it to the store, which lets a worker write only the
  // secret it rotates, inside that rotation.
  env["COFFER_ROTATION_TOKEN"] = ctx.token;
  env["COFFER_STORE_ADDRESS"] = options_.store_address;
  env["COFFER_SECRETS_ADDRESS"] = options_.store_address;
  env["COFFER_CA"] = options_.tls.ca_file;
  env["COFFER_CERT"] = options_.tls.cert_file;
  env["COFFER_KEY"] = options_.tls.key_file;
  env["COFFER_SERVER_SPIFFE_ID"] = options_.store_spiffe_id;
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string command = options_.command;
  char* argv[] = {command.data(), nullptr};

  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0)
    return absl::InternalError(absl::StrCat("open /dev/null: ", std::strerror(errno)));
  int report[2];  // the child's exec errno; closed by a successful exec
  if (::pipe2(report, O_CLOEXEC) != 0) {
    ::close(null_fd);
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(null_fd);
    ::close(report[0]);
    ::close(report[1]);
    return absl::UnavailableError(absl::StrCat(step, ": fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    // Own process group, so a timeout kills whatever the program started.
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the worker blocks SIGTERM/SIGINT
    ::signal(SIGPIPE, SIG_DFL);
    // The worker reads nothing but the exit status: whatever the program
    // prints (it may print the credential) never reaches the worker's logs.
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDERR_FILENO);
    ::execve(argv[0], argv, envp.data());
    int err = errno;
    ssize_t ignored = ::write(report[1], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here: no race with the kill below
  ::close(null_fd);
  ::close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);

  const absl::Time deadline = absl::Now() + options_.step_timeout;
  int status = 0;
  bool timed_out = false;
  while (true) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat(step, ": waitpid: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }

  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    return absl::FailedPreconditionError(absl::StrCat(step, ": cannot execute ", options_.command,
                                                      ": ", std::strerror(child_errno)));
  }
  if (timed_out) {
    return absl::UnavailableError(
        absl::StrCat(step, ": ", options_.command, " did not finish within ",
                     absl::FormatDuration(options_.step_timeout), "; killed"));
  }
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == 0) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat(step, ": ", options_.command, " exited with status ", code));
  }
  if (WIFSIGNALED(status)) {
    return absl::UnavailableError(
        absl::StrCat(step, ": ", options_.command, " was killed by signal ", WTERMSIG(status)));
  }
  return absl::InternalError(absl::StrCat(step, ": ", options_.command, " ended abnormally"));
}

}  // namespace coffer::workers
