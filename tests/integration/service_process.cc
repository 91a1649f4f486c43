#include "tests/integration/service_process.h"

#include <grpc/grpc.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/rpc/channel.h"

namespace coffer::testing {
namespace {

// An idle gRPC client channel in this process is polled only by gRPC's
// backup poller, every 5 s by default; a service being stopped waits for its
// clients to see its GOAWAY, so every Stop() would take 5 s longer than it
// does in production. Poll idle channels often in the test process (only:
// the variable is gone again before any child is started).
class FastBackupPolling : public ::testing::Environment {
 public:
  void SetUp() override {
    constexpr char kVar[] = "GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS";
    const bool preset = ::getenv(kVar) != nullptr;
    if (!preset) ::setenv(kVar, "50", 1);
    grpc_init();  // reads the variable; stays initialized for the whole run
    if (!preset) ::unsetenv(kVar);
  }
};
[[maybe_unused]] ::testing::Environment* const kFastBackupPolling =
    ::testing::AddGlobalTestEnvironment(new FastBackupPolling);

bool HasFlag(const std::vector<std::string>& args, absl::string_view flag) {
  for (const std::string& a : args) {
    if (absl::StartsWith(a, absl::StrCat("--", flag, "="))) return true;
  }
  return false;
}

}  // namespace

bool ParsePorts(const std::string& json, Ports* ports) {
  auto field = [&](const char* name, int* out) {
    std::string key = absl::StrCat("\"", name, "\":");
    size_t pos = json.find(key);
    if (pos == std::string::npos) return false;
    pos += key.size();
    size_t end = json.find_first_of(",}", pos);
    if (end == std::string::npos) return false;
    return absl::SimpleAtoi(json.substr(pos, end - pos), out);
  };
  return field("grpc", &ports->grpc) && field("health", &ports->health) &&
         field("metrics", &ports->metrics);
}

ServiceProcess::ServiceProcess(std::string binary, std::vector<std::string> args)
    : binary_(std::move(binary)), args_(std::move(args)) {
  ports_file_ = dir_.Join("ports.json");
}

ServiceProcess::~ServiceProcess() { Kill(); }

int ServiceProcess::pid() const { return process_ != nullptr ? process_->pid() : -1; }

absl::Status ServiceProcess::Start(absl::Duration timeout) { return StartWith("", timeout); }

absl::Status ServiceProcess::Restart(absl::Duration timeout) {
  if (ports_.grpc == 0) return absl::FailedPreconditionError("Restart: never started");
  if (running()) {
    int code = Stop();
    if (code != 0) {
      return absl::InternalError(absl::StrCat("Restart: ", binary_, " exited with ", code));
    }
  }
  return StartWith(absl::StrCat("127.0.0.1:", ports_.grpc), timeout);
}

absl::Status ServiceProcess::StartWith(const std::string& listen_address, absl::Duration timeout) {
  if (running()) return absl::FailedPreconditionError("already running");
  if (process_ != nullptr) {
    earlier_output_ += process_->Output();
    process_.reset();
  }
  ::unlink(ports_file_.c_str());
  std::vector<std::string> argv = {absl::StrContains(binary_, '/') ? binary_ : BinaryPath(binary_)};
  for (const std::string& a : args_) {
    if (!listen_address.empty() && absl::StartsWith(a, "--listen_address=")) continue;
    argv.push_back(a);
  }
  if (!listen_address.empty()) {
    argv.push_back("--listen_address=" + listen_address);
  } else if (!HasFlag(args_, "listen_address")) {
    argv.push_back("--listen_address=127.0.0.1:0");
  }
  if (!HasFlag(args_, "health_listen_address")) {
    argv.push_back("--health_listen_address=127.0.0.1:0");
  }
  if (!HasFlag(args_, "metrics_address")) argv.push_back("--metrics_address=127.0.0.1:0");
  // Authorization and audit as in development (tests/integration/policy.json:
  // the development policy plus the e2e master secret); the audit log lives
  // as long as this object, across restarts.
  if (!HasFlag(args_, "policy_file")) {
    argv.push_back("--policy_file=" + SourceDir() + "/tests/integration/policy.json");
  }
  if (!HasFlag(args_, "audit_dir")) argv.push_back("--audit_dir=" + dir_.Join("audit"));
  argv.push_back("--ports_file=" + ports_file_);

  process_ = std::make_unique<Subprocess>(std::move(argv));
  if (absl::Status s = process_->Start(); !s.ok()) return s;
  Ports ports;
  bool up = WaitFor(
      [&] { return ParsePorts(ReadFile(ports_file_), &ports) || !process_->running(); }, timeout);
  if (!up || !process_->running()) {
    return absl::UnavailableError(
        absl::StrCat(binary_, " did not start serving: ", process_->Output()));
  }
  ports_ = ports;
  return absl::OkStatus();
}

int ServiceProcess::Stop(absl::Duration timeout) {
  if (process_ == nullptr || !process_->running()) return -1;
  process_->Signal(SIGTERM);
  return process_->Wait(timeout);
}

void ServiceProcess::Kill() {
  if (process_ == nullptr || !process_->running()) return;
  process_->Signal(SIGKILL);
  process_->Wait(absl::Seconds(20));
}

bool ServiceProcess::running() { return process_ != nullptr && process_->running(); }

std::string ServiceProcess::address() const { return absl::StrCat("localhost:", ports_.grpc); }

std::shared_ptr<grpc::Channel> ServiceProcess::Channel(const rpc::TlsFiles& tls) const {
  rpc::ChannelOptions options;
  options.target = address();
  options.tls = tls;
  auto channel = rpc::MakeChannel(std::move(options));
  if (!channel.ok()) {
    ADD_FAILURE() << "MakeChannel(" << address() << "): " << channel.status();
    return nullptr;
  }
  return *channel;
}

std::shared_ptr<grpc::Channel> ServiceProcess::Channel(const std::string& identity) const {
  return Channel(SharedPki().Identity(identity));
}

std::string ServiceProcess::Output() const {
  return earlier_output_ + (process_ != nullptr ? process_->Output() : std::string());
}

}  // namespace coffer::testing
