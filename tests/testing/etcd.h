// etcd.h: a private etcd cluster for tests — Debian's etcd-server 3.4
// (/usr/bin/etcd), one or three members on free loopback ports with data in
// a temp dir, clients over TLS with client-certificate auth against the
// SharedPki() CA (a server certificate for 127.0.0.1 and localhost is made
// from its ca.key with openssl). Members talk to each other over plaintext
// on loopback. Each member dies with the test process (setpriv --pdeathsig).
//
//   ASSERT_TRUE(coffer::testing::EtcdCluster::Installed());  // never skip: CI installs it
//   auto etcd = coffer::testing::EtcdCluster::Start(3);
//   ASSERT_TRUE(etcd.ok()) << etcd.status();
//   options.endpoints = (*etcd)->endpoints();        // {"127.0.0.1:port", ...}
//   options.tls = (*etcd)->client_tls();
//   (*etcd)->Kill(0);                                // SIGKILL one member
//   ASSERT_TRUE((*etcd)->Restart(0).ok());           // same data, same ports
//
// The debian package also runs a system etcd on 2379/2380; these members
// never use those ports.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/rpc/tls.h"
#include "libs/storage/engine.h"
#include "tests/testing/test_env.h"

namespace coffer::testing {

class EtcdCluster {
 public:
  // True when /usr/bin/etcd exists.
  static bool Installed();
  // Starts `members` members (1 or 3) and waits until every one is healthy
  // (has a leader and serves reads). NOT_FOUND when etcd is not installed.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(int members = 1);
  // One member started on first use and kept for the whole test program
  // (tests give their keys prefixes of their own); nullptr, with a test
  // failure, when it cannot start.
  static EtcdCluster* Shared();
  // A storage engine for `service` on Shared(), under a prefix no other
  // test uses ("<service>-test/<uuid>/").
  static absl::StatusOr<std::unique_ptr<storage::Engine>> SharedEngine(const std::string& service);
  ~EtcdCluster();  // kills every member
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:<client port>" of each member, in member order.
  std::vector<std::string> endpoints() const;
  std::string endpoint(int member) const;
  // ca.crt + the "store" identity of SharedPki(): a certificate etcd accepts.
  rpc::TlsFiles client_tls() const;

  // SIGKILL and reap; idempotent.
  void Kill(int member);
  // SIGSTOP / SIGCONT: a member that hangs (accepts connections, answers
  // nothing) and comes back.
  void Pause(int member);
  void Resume(int member);
  // Starts a killed member again on its data dir and ports; waits until
  // it is healthy when `wait_healthy` (with a quorum of the others up).
  absl::Status Restart(int member, bool wait_healthy = true);
  // Whether the member answers /health with "true" now.
  bool Healthy(int member) const;
  // The member that is the leader now (its etcd_server_is_leader gauge is
  // 1), or -1 when none is.
  int Leader() const;
  // A sample of the member's /metrics by its whole series name, labels and
  // all as etcd prints them (etcd_mvcc_range_total,
  // grpc_server_started_total{grpc_method="Range",...}); -1 when absent.
  double Metric(int member, const std::string& name) const;
  // The member's log so far.
  std::string Log(int member) const;
  // The member's --data-dir (its WAL and database files).
  std::string data_dir(int member) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    int metrics_port = 0;
    std::unique_ptr<Subprocess> process;
  };
  EtcdCluster() = default;
  std::vector<std::string> Args(int member) const;
  absl::Status Launch(int member);
  absl::Status WaitHealthy(int member, absl::Duration timeout) const;

  TempDir dir_;
  std::string cert_file_;
  std::string key_file_;
  std::string ca_file_;
  std::string token_;
  std::vector<Member> members_;
  std::vector<std::string> prior_logs_;  // logs of members' earlier runs
};

}  // namespace coffer::testing
