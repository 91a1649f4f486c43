#include "tests/testing/test_env.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

extern char** environ;

#ifndef COFFER_SOURCE_DIR
#error "COFFER_SOURCE_DIR must be defined by CMake"
#endif
#ifndef COFFER_BINARY_DIR
#error "COFFER_BINARY_DIR must be defined by CMake"
#endif

namespace coffer::testing {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "coffer::testing: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

// ---- TempDir ----

TempDir::TempDir() {
  std::string templ = TempRoot() + "/coffer-test.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    Die(absl::StrCat("mkdtemp(", templ, "): ", std::strerror(errno)));
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---- Pki ----

absl::StatusOr<std::unique_ptr<Pki>> Pki::Create() {
  std::unique_ptr<Pki> pki(new Pki());
  Subprocess script({"bash", SourceDir() + "/deploy/certs/make-certs.sh", pki->dir()});
  if (absl::Status s = script.Start(); !s.ok()) return s;
  int code = script.Wait(absl::Seconds(60));
  if (code != 0) {
    return absl::InternalError(
        absl::StrCat("make-certs.sh exited with ", code, ": ", script.Output()));
  }
  return pki;
}

rpc::TlsFiles Pki::Identity(const std::string& name) const {
  rpc::TlsFiles files;
  files.ca_file = ca_file();
  files.cert_file = dir_.Join(name + ".crt");
  files.key_file = dir_.Join(name + ".key");
  return files;
}

namespace {
// Lives until exit, when its directory (with the private keys) is removed.
std::unique_ptr<Pki> MakePkiOrDie(const char* what) {
  absl::StatusOr<std::unique_ptr<Pki>> pki = Pki::Create();
  if (!pki.ok()) Die(absl::StrCat(what, ": ", pki.status().ToString()));
  return *std::move(pki);
}
}  // namespace

const Pki& SharedPki() {
  static const std::unique_ptr<Pki> pki = MakePkiOrDie("SharedPki");
  return *pki;
}

const Pki& ForeignPki() {
  static const std::unique_ptr<Pki> pki = MakePkiOrDie("ForeignPki");
  return *pki;
}

// ---- Subprocess ----

Subprocess::Subprocess(std::vector<std::string> argv, std::map<std::string, std::string> extra_env)
    : argv_(std::move(argv)), env_(std::move(extra_env)), log_dir_(std::make_unique<TempDir>()) {
  std::string base = argv_.empty() ? "empty" : std::filesystem::path(argv_[0]).filename().string();
  log_file_ = log_dir_->Join(base + ".log");
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && exit_code_ == -1) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

absl::Status Subprocess::Start() {
  if (argv_.empty()) return absl::InvalidArgumentError("Subprocess: empty argv");
  if (pid_ > 0) return absl::FailedPreconditionError("Subprocess: already started");

  // Everything the child needs is prepared before fork(): after it, in a
  // multi-threaded parent, only async-signal-safe calls are allowed.
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    env.emplace(std::string(*e, eq - *e), std::string(eq + 1));
  }
  for (const auto& [key, value] : env_) env[key] = value;
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (std::string& s : argv_) argv.push_back(s.data());
  argv.push_back(nullptr);

  int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", log_file_, ": ", std::strerror(errno)));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // Reports an exec failure (errno) to the parent; closed by a successful exec.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }

  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    ::close(report[0]);
    ::close(report[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    // Child. Signals blocked by the test (BlockShutdownSignals) must not
    // stay blocked in the program under test.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execvpe(argv[0], argv.data(), envp.data());
    int err = errno;
    ssize_t ignored = ::write(report[1], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  ::close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  pid_ = pid;
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    Wait(absl::Seconds(5));
    return absl::NotFoundError(
        absl::StrCat("cannot execute ", argv_[0], ": ", std::strerror(child_errno)));
  }
  return absl::OkStatus();
}

bool Subprocess::running() {
  if (pid_ <= 0 || exit_code_ != -1) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return false;
  }
  return r == 0;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && exit_code_ == -1) ::kill(pid_, sig);
}

int Subprocess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  const absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_code_;
}

std::string Subprocess::Output() const { return ReadFile(log_file_); }

// ---- helpers ----

bool WaitFor(const std::function<bool()>& fn, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (fn()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string ReadAllFiles(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> paths;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) paths.push_back(it->path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::string all;
  for (const std::string& path : paths) all += ReadFile(path);
  return all;
}

std::string SourceDir() { return COFFER_SOURCE_DIR; }

std::string BinaryPath(const std::string& name) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* cache = new std::map<std::string, std::string>();
  absl::MutexLock lock(&mu);
  if (auto it = cache->find(name); it != cache->end()) return it->second;

  namespace fs = std::filesystem;
  const fs::path root(COFFER_BINARY_DIR);
  auto is_binary = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
  };
  std::string found;
  // Where binaries normally live, then anywhere in the build tree.
  for (const char* dir :
       {"services/kms", "services/store", "services/rotator", "tools/cofferctl",
        "services/workers/postgres", "services/workers/exec", "tools", "services", "bench"}) {
    fs::path candidate = root / dir / name;
    if (is_binary(candidate)) {
      found = candidate.string();
      break;
    }
  }
  if (found.empty()) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path& p = it->path();
      if (it->is_directory(ec) && p.filename() == "CMakeFiles") {
        it.disable_recursion_pending();
        continue;
      }
      if (p.filename() == name && is_binary(p)) {
        found = p.string();
        break;
      }
    }
  }
  if (found.empty()) {
    Die(absl::StrCat("binary '", name, "' not found under ", COFFER_BINARY_DIR,
                     " (build it first, e.g. ninja ", name, ")"));
  }
  (*cache)[name] = found;
  return found;
}

}  // namespace coffer::testing
