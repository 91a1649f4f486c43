// service_process.h: one Coffer service binary run as a child process for
// end-to-end tests.
//
// Starts the binary with the given flags plus --ports_file (and, unless the
// caller gives them, --listen_address, --health_listen_address and
// --metrics_address on 127.0.0.1:0, --policy_file=tests/integration/
// policy.json and --audit_dir=<its temp dir>/audit), waits for the ports file
// {"grpc":N,"health":N,"metrics":N}, and makes mTLS channels to it.
//
//   coffer::testing::ServiceProcess kms("coffer-kms", {"--dev_mode", "--data_dir=" + dir,
//                                       "--tls_ca=...", "--tls_cert=...", "--tls_key=..."});
//   ASSERT_TRUE(kms.Start().ok());
//   auto stub = KeyManagement::NewStub(kms.Channel("cofferctl"));
//   ASSERT_EQ(kms.Stop(), 0);     // SIGTERM, exit code
//   ASSERT_TRUE(kms.Restart().ok());  // same gRPC port: existing channels reconnect
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/rpc/tls.h"
#include "tests/testing/test_env.h"

namespace coffer::testing {

struct Ports {
  int grpc = 0;
  int health = 0;
  int metrics = 0;
};

// Parses {"grpc":N,"health":N,"metrics":N}.
bool ParsePorts(const std::string& json, Ports* ports);

class ServiceProcess {
 public:
  // `binary` is a name for BinaryPath() ("coffer-kms") or a path (with '/').
  ServiceProcess(std::string binary, std::vector<std::string> args);
  ~ServiceProcess();  // SIGKILLs a still running process
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  // Starts the process and waits until its ports file is written. The gRPC
  // listener binds the flags' address (default 127.0.0.1:0: a fresh port).
  absl::Status Start(absl::Duration timeout = absl::Seconds(20));
  // Stops a running process first (SIGTERM), then starts it again with the
  // gRPC listener on the SAME port as before, so that channels made earlier
  // (the test's, or another service's) reconnect to it.
  absl::Status Restart(absl::Duration timeout = absl::Seconds(20));
  // SIGTERM and wait; the exit code (128+signal, -1 on timeout or when not
  // running).
  int Stop(absl::Duration timeout = absl::Seconds(20));
  // SIGKILL and wait.
  void Kill();
  bool running();

  // mTLS channel to the gRPC port as "localhost:<port>".
  std::shared_ptr<grpc::Channel> Channel(const rpc::TlsFiles& tls) const;
  // The same with SharedPki().Identity(identity), e.g. "cofferctl".
  std::shared_ptr<grpc::Channel> Channel(const std::string& identity) const;

  const Ports& ports() const { return ports_; }
  std::string address() const;  // "localhost:<grpc port>"
  // The running process's pid (-1 when none).
  int pid() const;
  // The default --audit_dir (unused when the caller gave its own).
  std::string audit_dir() const { return dir_.Join("audit"); }
  // Everything every run of the process wrote to stdout and stderr.
  std::string Output() const;

 private:
  absl::Status StartWith(const std::string& listen_address, absl::Duration timeout);

  std::string binary_;
  std::vector<std::string> args_;
  TempDir dir_;  // the ports file
  std::string ports_file_;
  Ports ports_;
  std::string earlier_output_;  // of runs before the current one
  std::unique_ptr<Subprocess> process_;
};

}  // namespace coffer::testing
