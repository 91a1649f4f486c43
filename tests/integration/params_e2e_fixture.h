// params_e2e_fixture.h: what the parameter-store and watch end-to-end suites
// (params_e2e_test.cc, watch_e2e_test.cc) share: a KMS+store pair
// (Services), a server stream read on its own thread (EventStream), the
// helpers over one store (ParamsTestBase) and a base for suites that share
// one pair (SharedServicesTest).
//
//   class MySuiteE2ETest : public SharedServicesTest<MySuiteE2ETest> {};
//   TEST_F(MySuiteE2ETest, Something) {
//     EXPECT_EQ(Put("/app/x", "v"), 1);
//     std::string probe;
//     auto stream = OpenLiveWatch("/app", /*recursive=*/true, &probe);
//   }
//
// A watch "from now" starts when the server handles the call, which the
// client cannot observe (no message or metadata comes back before the first
// event). OpenLiveWatch therefore touches a probe parameter under the watched
// path until the stream shows it; every event of the probe parameter is
// dropped from what the tests compare.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer::params_e2e {

using testing::Invoke;
using testing::ServiceProcess;
namespace pm = ::coffer::params::v1;
namespace sm = ::coffer::secrets::v1;
using ChangeEvent = ::coffer::v1::ChangeEvent;
using HealthResponse = ::grpc::health::v1::HealthCheckResponse;

inline constexpr char kParamsService[] = "coffer.params.v1.ParameterStore";

// The Coffer reason of a call's status ("" when it has none).
std::string Reason(const grpc::Status& status);
// `bytes` random bytes as hex.
std::string Hex(size_t bytes);
// The event's position as a number (a test failure when it is not one).
uint64_t Position(const ChangeEvent& e);
// "CHANGE_KIND_CREATED /w/a v1" — compact, for readable failure messages.
std::string Describe(const ChangeEvent& e);
std::vector<std::string> Describe(const std::vector<ChangeEvent>& events);

// A KMS and a store, started in a temp dir.
struct Services {
  testing::TempDir dir;
  std::unique_ptr<ServiceProcess> kms;
  std::unique_ptr<ServiceProcess> store;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pm::ParameterStore::Stub> params;
  std::unique_ptr<sm::SecretsManager::Stub> secrets;
  std::string failure;  // why Start failed

  // The store runs with --policy_interval=200ms and --log_level=debug.
  bool Start();
  // The params service's health over mTLS; -1 when the call fails.
  int Health();
  bool WaitForServing();
  // Stops both; the exit codes (store, kms).
  std::pair<int, int> Stop();
};

// A server stream read on its own thread.
class EventStream {
 public:
  using Open =
      std::function<std::unique_ptr<grpc::ClientReader<ChangeEvent>>(grpc::ClientContext*)>;

  explicit EventStream(const Open& open) {
    reader_ = open(&ctx_);
    thread_ = std::thread([this] {
      ChangeEvent event;
      while (reader_->Read(&event)) {
        absl::MutexLock lock(&mu_);
        events_.push_back(event);
      }
      grpc::Status status = reader_->Finish();
      absl::MutexLock lock(&mu_);
      status_ = status;
      done_ = true;
    });
  }
  ~EventStream() {
    ctx_.TryCancel();
    thread_.join();
  }

  // True once at least `n` events arrived that `keep` accepts.
  bool WaitForCount(size_t n, absl::Duration timeout,
                    const std::function<bool(const ChangeEvent&)>& keep = nullptr) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ || Count(keep) >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return Count(keep) >= n;
  }

  std::vector<ChangeEvent> events(const std::function<bool(const ChangeEvent&)>& keep = nullptr) {
    absl::MutexLock lock(&mu_);
    std::vector<ChangeEvent> out;
    for (const ChangeEvent& e : events_) {
      if (!keep || keep(e)) out.push_back(e);
    }
    return out;
  }

  // Waits for the server to end the stream; its status (or DEADLINE_EXCEEDED
  // when it did not end).
  grpc::Status WaitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "stream still open");
    }
    return status_;
  }

  // Cancels the call; its final status.
  grpc::Status Cancel() {
    ctx_.TryCancel();
    return WaitDone(absl::Seconds(10));
  }

 private:
  size_t Count(const std::function<bool(const ChangeEvent&)>& keep)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!keep) return events_.size();
    return static_cast<size_t>(std::count_if(events_.begin(), events_.end(), keep));
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<ChangeEvent>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<ChangeEvent> events_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// Helpers over one store, shared by the fixtures.
class ParamsTestBase : public ::testing::Test {
 protected:
  virtual Services& services() = 0;
  pm::ParameterStore::Stub* params() { return services().params.get(); }
  sm::SecretsManager::Stub* secrets() { return services().secrets.get(); }

  grpc::Status TryPut(const std::string& name, const std::string& value, pm::ParameterType type,
                      bool overwrite = false, pm::PutParameterResponse* out = nullptr,
                      const std::function<void(pm::PutParameterRequest&)>& more = nullptr) {
    pm::PutParameterRequest req;
    req.set_name(name);
    req.set_value(value);
    req.set_type(type);
    req.set_overwrite(overwrite);
    if (more) more(req);
    pm::PutParameterResponse resp;
    grpc::Status s = Invoke(params(), &pm::ParameterStore::Stub::PutParameter, req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }
  // Puts and expects success; the new version (0 on failure).
  int64_t Put(const std::string& name, const std::string& value,
              pm::ParameterType type = pm::PARAMETER_TYPE_STRING, bool overwrite = false) {
    pm::PutParameterResponse resp;
    grpc::Status s = TryPut(name, value, type, overwrite, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_code() << " " << s.error_message();
    return s.ok() ? resp.version() : 0;
  }
  grpc::Status Get(const std::string& name, pm::Parameter* out, bool with_decryption = false) {
    pm::GetParameterRequest req;
    req.set_name(name);
    req.set_with_decryption(with_decryption);
    pm::GetParameterResponse resp;
    grpc::Status s = Invoke(params(), &pm::ParameterStore::Stub::GetParameter, req, &resp);
    *out = resp.parameter();
    return s;
  }
  // The value, or "<error: CODE REASON>".
  std::string Value(const std::string& name, bool with_decryption = false) {
    pm::Parameter p;
    grpc::Status s = Get(name, &p, with_decryption);
    if (!s.ok()) return absl::StrCat("<error: ", s.error_code(), " ", Reason(s), ">");
    return p.value();
  }
  void Delete(const std::string& name) {
    pm::DeleteParameterRequest req;
    req.set_name(name);
    pm::DeleteParameterResponse resp;
    grpc::Status s = Invoke(params(), &pm::ParameterStore::Stub::DeleteParameter, req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
  }
  pm::LabelParameterVersionResponse Label(const std::string& name, int64_t version,
                                          std::vector<std::string> labels) {
    pm::LabelParameterVersionRequest req;
    req.set_name(name);
    req.set_parameter_version(version);
    for (const auto& l : labels) req.add_labels(l);
    pm::LabelParameterVersionResponse resp;
    grpc::Status s = Invoke(params(), &pm::ParameterStore::Stub::LabelParameterVersion, req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    return resp;
  }
  // Every page of GetParametersByPath (at most `page_size` each); fails the
  // test on an oversized page or an error.
  std::vector<pm::Parameter> ByPath(const std::string& path, bool recursive,
                                    bool with_decryption = false, int page_size = 10,
                                    int* pages = nullptr) {
    std::vector<pm::Parameter> out;
    pm::GetParametersByPathRequest req;
    req.set_path(path);
    req.set_recursive(recursive);
    req.set_with_decryption(with_decryption);
    req.set_max_results(page_size);
    int n = 0;
    for (; n < 100; ++n) {
      pm::GetParametersByPathResponse resp;
      grpc::Status s = Invoke(params(), &pm::ParameterStore::Stub::GetParametersByPath, req, &resp);
      EXPECT_TRUE(s.ok()) << path << ": " << s.error_message();
      if (!s.ok()) break;
      EXPECT_LE(resp.parameters_size(), page_size) << path << " page " << n;
      for (const auto& p : resp.parameters()) out.push_back(p);
      if (resp.next_token().empty()) break;
      req.set_next_token(resp.next_token());
    }
    EXPECT_LT(n, 100) << "endless paging under " << path;
    if (pages != nullptr) *pages = n + 1;
    return out;
  }

  std::unique_ptr<EventStream> WatchParams(const std::string& path, bool recursive,
                                           const std::string& start_after = "") {
    pm::WatchParametersRequest req;
    req.set_path(path);
    req.set_recursive(recursive);
    req.set_start_after(start_after);
    auto* stub = params();
    return std::make_unique<EventStream>(
        [stub, req](grpc::ClientContext* ctx) { return stub->WatchParameters(ctx, req); });
  }
  std::unique_ptr<EventStream> WatchSecrets(const std::string& prefix,
                                            const std::string& start_after = "") {
    sm::WatchSecretsRequest req;
    req.set_name_prefix(prefix);
    req.set_start_after(start_after);
    auto* stub = secrets();
    return std::make_unique<EventStream>(
        [stub, req](grpc::ClientContext* ctx) { return stub->WatchSecrets(ctx, req); });
  }

  // Touches `probe` (a parameter under the watched path) until `stream`
  // shows it: from then on the watch sees every change. Returns false when
  // it never did.
  bool MakeLive(EventStream& stream, const std::string& probe) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (TryPut(probe, "probe", pm::PARAMETER_TYPE_STRING, /*overwrite=*/true).ok() &&
          stream.WaitForCount(1, absl::Milliseconds(100),
                              [&](const ChangeEvent& e) { return e.name() == probe; })) {
        return true;
      }
    }
    return false;
  }
  std::unique_ptr<EventStream> OpenLiveWatch(const std::string& path, bool recursive,
                                             std::string* probe) {
    *probe = absl::StrCat(path, "/watch-probe-", Hex(4));
    auto stream = WatchParams(path, recursive);
    EXPECT_TRUE(MakeLive(*stream, *probe)) << "the watch of " << path << " never went live";
    return stream;
  }
};

// A suite whose tests share one KMS+store pair, started before the first
// test and stopped (each expected to exit 0) after the last. `Suite` is the
// fixture itself, so that every suite has its own pair.
template <typename Suite>
class SharedServicesTest : public ParamsTestBase {
 protected:
  static void SetUpTestSuite() {
    shared_ = new Services();
    shared_ok_ = shared_->Start();
  }
  static void TearDownTestSuite() {
    auto [store_code, kms_code] = shared_->Stop();
    EXPECT_EQ(store_code, 0) << shared_->store->Output();
    EXPECT_EQ(kms_code, 0) << shared_->kms->Output();
    delete shared_;
    shared_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(shared_ok_) << shared_->failure; }
  Services& services() override { return *shared_; }

  static inline Services* shared_ = nullptr;
  static inline bool shared_ok_ = false;
};

}  // namespace coffer::params_e2e
