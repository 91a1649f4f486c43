// test_env.h: real parts for tests — temp dirs, a development PKI made by the
// same script users run, and real child processes.
//
//   coffer::testing::TempDir dir;                       // removed at scope end
//   const coffer::testing::Pki& pki = coffer::testing::SharedPki();
//   coffer::rpc::TlsFiles tls = pki.Identity("kms");   // ca + kms.crt + kms.key
//
//   coffer::testing::Subprocess kms({KMS_BINARY, "--data_dir=" + dir.path(), ...});
//   ASSERT_TRUE(kms.Start().ok());
//   kms.Signal(SIGTERM);
//   int code = kms.Wait();
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/rpc/tls.h"

namespace coffer::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A development PKI made by deploy/certs/make-certs.sh into a temp dir.
class Pki {
 public:
  // Runs the script into a new temp dir. `trust_domain` as the script takes.
  static absl::StatusOr<std::unique_ptr<Pki>> Create();
  const std::string& dir() const { return dir_.path(); }
  std::string ca_file() const { return dir_.Join("ca.crt"); }
  // ca.crt + <name>.crt + <name>.key, e.g. "kms", "store", "cofferctl",
  // "app-catagram".
  rpc::TlsFiles Identity(const std::string& name) const;

 private:
  Pki() = default;
  TempDir dir_;
};

// One PKI per test process (made on first use, crashes if the script fails).
const Pki& SharedPki();
// A second, unrelated CA with its own identities ("foreign" certificates).
const Pki& ForeignPki();

// A child process with stdout and stderr appended to a log file.
class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv,
                      std::map<std::string, std::string> extra_env = {});
  ~Subprocess();  // SIGKILLs and reaps if still running
  absl::Status Start();
  bool running();
  void Signal(int sig);
  // Waits for exit; returns the exit code, or 128+signal, or -1 on timeout.
  int Wait(absl::Duration timeout = absl::Seconds(30));
  int pid() const { return pid_; }
  // Everything the child wrote to stdout and stderr so far.
  std::string Output() const;
  const std::string& log_file() const { return log_file_; }

 private:
  std::vector<std::string> argv_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<TempDir> log_dir_;  // holds log_file_
  std::string log_file_;
  int pid_ = -1;
  int exit_code_ = -1;
};

// Polls `fn` every 20 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& fn, absl::Duration timeout);

// Reads a whole file ("" if missing).
std::string ReadFile(const std::string& path);
// Every regular file under `dir` (recursively), concatenated in name order
// ("" if missing): an audit directory, a data directory searched for a value.
std::string ReadAllFiles(const std::string& dir);

// Paths of the build's binaries and scripts (set by CMake as compile
// definitions on the test support library).
std::string SourceDir();
std::string BinaryPath(const std::string& name);  // e.g. "coffer-kms"

}  // namespace coffer::testing
