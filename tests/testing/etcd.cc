#include "tests/testing/etcd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "libs/common/ids.h"

namespace coffer::testing {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

// `count` distinct free loopback ports (all bound at once, then released).
absl::StatusOr<std::vector<int>> FreePorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = absl::InternalError(absl::StrCat("bind: ", std::strerror(errno)));
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (!status.ok()) return status;
  return ports;
}

// GET `path` from 127.0.0.1:port over plain HTTP/1.0; "" on any failure.
std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{};
  tv.tv_sec = 2;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\n\r\n");
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, n);
    }
  }
  ::close(fd);
  return out;
}

// A server certificate for 127.0.0.1 and localhost signed by SharedPki()'s
// CA, made once per process into `dir`.
absl::Status MakeServerCertificate(const std::string& dir, const std::string& ca_dir) {
  const std::string script = absl::StrCat(
      "set -e; umask 077; cd '", dir, "';",
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out etcd.key;",
      "openssl req -new -sha256 -key etcd.key -subj '/O=Coffer development/CN=etcd' -out etcd.csr;",
      "printf '%s\\n' 'basicConstraints = critical, CA:FALSE' ",
      "'keyUsage = critical, digitalSignature' ", "'extendedKeyUsage = serverAuth, clientAuth' ",
      "'subjectAltName = DNS:localhost, IP:127.0.0.1' > etcd.ext;",
      "openssl x509 -req -sha256 -days 2 -in etcd.csr -CA '", ca_dir, "/ca.crt' -CAkey '", ca_dir,
      "/ca.key' -set_serial 0x$(openssl rand -hex 16) -extfile etcd.ext -out etcd.crt");
  Subprocess openssl({"/bin/sh", "-c", script});
  if (absl::Status s = openssl.Start(); !s.ok()) return s;
  if (int code = openssl.Wait(absl::Seconds(30)); code != 0) {
    return absl::InternalError(
        absl::StrCat("openssl failed (", code, ") making etcd's certificate: ", openssl.Output()));
  }
  return absl::OkStatus();
}

}  // namespace

bool EtcdCluster::Installed() { return ::access(kEtcd, X_OK) == 0; }

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(int members) {
  if (!Installed()) {
    return absl::NotFoundError(
        "etcd is not installed (no /usr/bin/etcd); apt-get install etcd-server");
  }
  if (members != 1 && members != 3) {
    return absl::InvalidArgumentError("EtcdCluster: 1 or 3 members");
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster());
  const Pki& pki = SharedPki();
  if (absl::Status s = MakeServerCertificate(cluster->dir_.path(), pki.dir()); !s.ok()) return s;
  cluster->cert_file_ = cluster->dir_.Join("etcd.crt");
  cluster->key_file_ = cluster->dir_.Join("etcd.key");
  cluster->ca_file_ = pki.ca_file();
  cluster->token_ = absl::StrCat("coffer-test-", ::getpid(), "-", absl::ToUnixNanos(absl::Now()));
  absl::StatusOr<std::vector<int>> ports = FreePorts(3 * members);
  if (!ports.ok()) return ports.status();
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = absl::StrCat("m", i);
    m.client_port = (*ports)[3 * i];
    m.peer_port = (*ports)[3 * i + 1];
    m.metrics_port = (*ports)[3 * i + 2];
    cluster->members_.push_back(std::move(m));
  }
  for (int i = 0; i < members; ++i) {
    if (absl::Status s = cluster->Launch(i); !s.ok()) return s;
  }
  for (int i = 0; i < members; ++i) {
    if (absl::Status s = cluster->WaitHealthy(i, absl::Seconds(30)); !s.ok()) return s;
  }
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

std::string EtcdCluster::endpoint(int member) const {
  return absl::StrCat("127.0.0.1:", members_[member].client_port);
}

rpc::TlsFiles EtcdCluster::client_tls() const { return SharedPki().Identity("store"); }

std::vector<std::string> EtcdCluster::Args(int member) const {
  const Member& m = members_[member];
  std::vector<std::string> initial;
  for (const Member& other : members_) {
    initial.push_back(absl::StrCat(other.name, "=http://127.0.0.1:", other.peer_port));
  }
  const std::string client_url = absl::StrCat("https://127.0.0.1:", m.client_port);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", m.peer_port);
  return {"/usr/bin/setpriv",
          "--pdeathsig",
          "KILL",
          kEtcd,
          "--name=" + m.name,
          "--data-dir=" + dir_.Join(m.name),
          "--listen-client-urls=" + client_url,
          "--advertise-client-urls=" + client_url,
          "--listen-peer-urls=" + peer_url,
          "--initial-advertise-peer-urls=" + peer_url,
          "--initial-cluster=" + absl::StrJoin(initial, ","),
          "--initial-cluster-state=new",
          "--initial-cluster-token=" + token_,
          absl::StrCat("--listen-metrics-urls=http://127.0.0.1:", m.metrics_port),
          "--cert-file=" + cert_file_,
          "--key-file=" + key_file_,
          "--client-cert-auth",
          "--trusted-ca-file=" + ca_file_,
          "--heartbeat-interval=100",
          "--election-timeout=1500",  // headroom on a loaded 2-core CI machine
          "--logger=zap",
          "--log-level=warn"};
}

absl::Status EtcdCluster::Launch(int member) {
  Member& m = members_[member];
  m.process = std::make_unique<Subprocess>(Args(member));
  return m.process->Start();
}

void EtcdCluster::Kill(int member) {
  Member& m = members_[member];
  if (m.process == nullptr) return;
  if (m.process->running()) {
    m.process->Signal(SIGKILL);
    m.process->Wait(absl::Seconds(10));
  }
}

void EtcdCluster::Pause(int member) {
  Member& m = members_[member];
  if (m.process != nullptr && m.process->running()) m.process->Signal(SIGSTOP);
}

void EtcdCluster::Resume(int member) {
  Member& m = members_[member];
  if (m.process != nullptr && m.process->running()) m.process->Signal(SIGCONT);
}

absl::Status EtcdCluster::Restart(int member, bool wait_healthy) {
  Member& m = members_[member];
  if (m.process != nullptr && m.process->running()) {
    return absl::FailedPreconditionError(absl::StrCat("etcd member ", m.name, " is running"));
  }
  // Keep the old process object's log readable through Log() by appending
  // to it: a new Subprocess has a log of its own, so carry the old text.
  prior_logs_.resize(members_.size());
  if (m.process != nullptr) prior_logs_[member] += m.process->Output();
  if (absl::Status s = Launch(member); !s.ok()) return s;
  if (!wait_healthy) return absl::OkStatus();
  return WaitHealthy(member, absl::Seconds(30));
}

EtcdCluster* EtcdCluster::Shared() {
  // Owned by a static, not leaked: at exit the member is killed and its data
  // dir removed. ctest runs every test in a process of its own, and etcd
  // preallocates a 64 MB WAL, so a leaked dir per process filled the disk.
  static const std::unique_ptr<EtcdCluster> shared = [] {
    auto started = Start(1);
    EXPECT_TRUE(started.ok()) << started.status();
    return started.ok() ? *std::move(started) : nullptr;
  }();
  if (shared == nullptr) ADD_FAILURE() << "the shared etcd member did not start";
  return shared.get();
}

absl::StatusOr<std::unique_ptr<storage::Engine>> EtcdCluster::SharedEngine(
    const std::string& service) {
  EtcdCluster* etcd = Shared();
  if (etcd == nullptr) return absl::UnavailableError("no etcd member");
  storage::EngineOptions options;
  options.storage = "etcd:" + etcd->endpoint(0);
  options.etcd_tls = etcd->client_tls();
  options.etcd_prefix = absl::StrCat(service, "-test/", NewUuid(), "/");
  options.service = service;
  return storage::Engine::Create(options);
}

std::string EtcdCluster::data_dir(int member) const { return dir_.Join(members_[member].name); }

int EtcdCluster::Leader() const {
  for (int i = 0; i < size(); ++i) {
    if (members_[i].process == nullptr || !members_[i].process->running()) continue;
    const std::string metrics = HttpGet(members_[i].metrics_port, "/metrics");
    if (absl::StrContains(metrics, "\netcd_server_is_leader 1")) return i;
  }
  return -1;
}

double EtcdCluster::Metric(int member, const std::string& name) const {
  const std::string metrics = HttpGet(members_[member].metrics_port, "/metrics");
  const std::string line_start = "\n" + name + " ";
  size_t at = metrics.find(line_start);
  if (at == std::string::npos) return -1;
  at += line_start.size();
  const size_t end = metrics.find('\n', at);
  double value = -1;
  if (!absl::SimpleAtod(metrics.substr(at, end == std::string::npos ? end : end - at), &value)) {
    return -1;
  }
  return value;
}

bool EtcdCluster::Healthy(int member) const {
  const std::string body = HttpGet(members_[member].metrics_port, "/health");
  return absl::StrContains(body, "\"health\":\"true\"");
}

absl::Status EtcdCluster::WaitHealthy(int member, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Healthy(member)) return absl::OkStatus();
    const Member& m = members_[member];
    if (m.process == nullptr || !m.process->running()) {
      return absl::InternalError(
          absl::StrCat("etcd member ", m.name, " exited during start-up: ", Log(member)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd member ", members_[member].name, " not healthy within ",
                   absl::FormatDuration(timeout), ": ", Log(member)));
}

std::string EtcdCluster::Log(int member) const {
  std::string out = member < static_cast<int>(prior_logs_.size()) ? prior_logs_[member] : "";
  if (members_[member].process != nullptr) out += members_[member].process->Output();
  return out;
}

}  // namespace coffer::testing
