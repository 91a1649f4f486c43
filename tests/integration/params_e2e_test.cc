// End-to-end tests of the parameter store and the change-event streams
// (WatchParameters, WatchSecrets) of the real coffer-store binary, backed by
// the real coffer-kms, over mutual TLS.
//
// Suites:
//   ParamsE2ETest             one KMS+store pair for the suite: CRUD rules,
//                             paging, cofferctl.
//   ParamsSecureStringE2ETest its own pair (the test stops it to inspect the
//                             data directories).
//   WatchE2ETest              one pair for the suite: watch streams, resume
//                             across a store restart, policies.
//
// A watch "from now" starts when the server handles the call, which the
// client cannot observe (no message or metadata comes back before the first
// event). OpenLiveWatch therefore touches a probe parameter under the watched
// path until the stream shows it; every event of the probe parameter is
// dropped from what the tests compare.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "coffer/params/v1/params.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/crypto/random.h"
#include "libs/rpc/status.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;
using testing::ServiceProcess;
namespace pm = ::coffer::params::v1;
namespace sm = ::coffer::secrets::v1;
using ChangeEvent = ::coffer::v1::ChangeEvent;
using HealthResponse = ::grpc::health::v1::HealthCheckResponse;

constexpr char kParamsService[] = "coffer.params.v1.ParameterStore";

std::string Reason(const grpc::Status& status) {
  return ErrorReason(rpc::FromGrpcStatus(status));
}

std::string Hex(size_t bytes) { return absl::BytesToHexString(crypto::RandomString(bytes)); }

uint64_t Position(const ChangeEvent& e) {
  uint64_t p = 0;
  EXPECT_TRUE(absl::SimpleAtoi(e.position(), &p)) << "position '" << e.position() << "'";
  return p;
}

// "CHANGE_KIND_CREATED /w/a v1" — compact, for readable failure messages.
std::string Describe(const ChangeEvent& e) {
  return absl::StrCat(coffer::v1::ChangeKind_Name(e.kind()), " ", e.name(),
                      e.version().empty() ? "" : " v" + e.version());
}
std::vector<std::string> Describe(const std::vector<ChangeEvent>& events) {
  std::vector<std::string> out;
  for (const ChangeEvent& e : events) out.push_back(Describe(e));
  return out;
}

template <typename Stub, typename Req, typename Resp, typename Call>
grpc::Status Invoke(Stub* stub, Call call, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return (stub->*call)(&ctx, req, resp);
}

// A KMS and a store, started in a temp dir.
struct Services {
  testing::TempDir dir;
  std::unique_ptr<ServiceProcess> kms;
  std::unique_ptr<ServiceProcess> store;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pm::ParameterStore::Stub> params;
  std::unique_ptr<sm::SecretsManager::Stub> secrets;
  std::string failure;  // why Start failed

  bool Start() {
    rpc::TlsFiles kms_tls = testing::SharedPki().Identity("kms");
    kms = std::make_unique<ServiceProcess>(
        "coffer-kms",
        std::vector<std::string>{"--data_dir=" + dir.Join("kms"), "--dev_mode",
                                 "--tls_ca=" + kms_tls.ca_file, "--tls_cert=" + kms_tls.cert_file,
                                 "--tls_key=" + kms_tls.key_file, "--maintenance_interval=1s"});
    if (absl::Status s = kms->Start(); !s.ok()) {
      failure = absl::StrCat("kms: ", s.ToString(), "\n", kms->Output());
      return false;
    }
    rpc::TlsFiles tls = testing::SharedPki().Identity("store");
    store = std::make_unique<ServiceProcess>(
        "coffer-store",
        std::vector<std::string>{"--data_dir=" + dir.Join("store"),
                                 "--kms_address=" + kms->address(), "--tls_ca=" + tls.ca_file,
                                 "--tls_cert=" + tls.cert_file, "--tls_key=" + tls.key_file,
                                 "--kms_check_interval=200ms", "--kms_timeout=1s",
                                 "--policy_interval=200ms",
                                 // The strictest level for the "nothing secret in logs" test.
                                 "--log_level=debug"});
    if (absl::Status s = store->Start(); !s.ok()) {
      failure = absl::StrCat("store: ", s.ToString(), "\n", store->Output());
      return false;
    }
    channel = store->Channel("cofferctl");
    if (channel == nullptr) {
      failure = "no channel";
      return false;
    }
    params = pm::ParameterStore::NewStub(channel);
    secrets = sm::SecretsManager::NewStub(channel);
    if (!WaitForServing()) {
      failure = absl::StrCat("store not SERVING: ", store->Output());
      return false;
    }
    return true;
  }

  // The params service's health over mTLS; -1 when the call fails.
  int Health() {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(kParamsService);
    HealthResponse resp;
    if (!health->Check(&ctx, req, &resp).ok()) return -1;
    return resp.status();
  }
  bool WaitForServing() {
    return testing::WaitFor([&] { return Health() == HealthResponse::SERVING; },
                            absl::Seconds(20));
  }

  // Stops both; the exit codes (store, kms).
  std::pair<int, int> Stop() {
    int s = store && store->running() ? store->Stop() : 0;
    int k = kms && kms->running() ? kms->Stop() : 0;
    return {s, k};
  }
};

// A server stream read on its own thread.
class EventStream {
 public:
  using Open = std::function<std::unique_ptr<grpc::ClientReader<ChangeEvent>>(
      grpc::ClientContext*)>;

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
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return done_ || Count(keep) >= n;
    };
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

// ---------------------------------------------------------------------------
// CRUD, paging and cofferctl on one shared pair.

class ParamsE2ETest : public ParamsTestBase {
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

  static Services* shared_;
  static bool shared_ok_;
};
Services* ParamsE2ETest::shared_ = nullptr;
bool ParamsE2ETest::shared_ok_ = false;

TEST_F(ParamsE2ETest, StringAndStringListVersionsSelectorsAndErrors) {
  // String, create.
  pm::PutParameterResponse put;
  ASSERT_TRUE(TryPut("/app/db/url", "postgres://db:5432/a", pm::PARAMETER_TYPE_STRING, false, &put)
                  .ok());
  EXPECT_EQ(put.version(), 1);
  EXPECT_EQ(put.tier(), pm::PARAMETER_TIER_STANDARD);
  pm::Parameter p;
  ASSERT_TRUE(Get("/app/db/url", &p).ok());
  EXPECT_EQ(p.name(), "/app/db/url");
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(p.value(), "postgres://db:5432/a");
  EXPECT_EQ(p.version(), 1);
  EXPECT_EQ(p.selector(), "");
  EXPECT_EQ(p.data_type(), "text");
  EXPECT_EQ(p.arn(), "arn:coffer:ssm:local:000000000000:parameter/app/db/url");
  EXPECT_GT(p.last_modified_date().seconds(), 0);
  // with_decryption is ignored for String.
  EXPECT_EQ(Value("/app/db/url", /*with_decryption=*/true), "postgres://db:5432/a");

  // Without overwrite: ParameterAlreadyExists, value untouched.
  grpc::Status s = TryPut("/app/db/url", "other", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterAlreadyExists);
  EXPECT_EQ(Value("/app/db/url"), "postgres://db:5432/a");

  // Overwrite without a type keeps the type; each put is version + 1.
  ASSERT_TRUE(TryPut("/app/db/url", "postgres://db:5432/b", pm::PARAMETER_TYPE_UNSPECIFIED,
                     /*overwrite=*/true, &put)
                  .ok());
  EXPECT_EQ(put.version(), 2);
  EXPECT_EQ(Put("/app/db/url", "postgres://db:5432/c", pm::PARAMETER_TYPE_STRING, true), 3);
  ASSERT_TRUE(Get("/app/db/url", &p).ok());
  EXPECT_EQ(p.version(), 3);
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(p.value(), "postgres://db:5432/c");

  // Overwrite with tags: ValidationException (AWS: use AddTagsToResource).
  s = TryPut("/app/db/url", "x", pm::PARAMETER_TYPE_STRING, true, nullptr,
             [](pm::PutParameterRequest& r) {
               auto* t = r.add_tags();
               t->set_key("k");
               t->set_value("v");
             });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  // Creating without a type: ValidationException.
  s = TryPut("/app/untyped", "x", pm::PARAMETER_TYPE_UNSPECIFIED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  EXPECT_EQ(Value("/app/untyped"), absl::StrCat("<error: ", grpc::StatusCode::NOT_FOUND, " ",
                                                reason::kParameterNotFound, ">"));

  // Selectors: version and label.
  ASSERT_TRUE(Get("/app/db/url:1", &p).ok());
  EXPECT_EQ(p.value(), "postgres://db:5432/a");
  EXPECT_EQ(p.version(), 1);
  EXPECT_EQ(p.selector(), ":1");
  EXPECT_EQ(Value("/app/db/url:2"), "postgres://db:5432/b");
  pm::LabelParameterVersionResponse labelled =
      Label("/app/db/url", 1, {"stable", "1bad", "awsx", "release-1.0"});
  EXPECT_EQ(labelled.parameter_version(), 1);
  EXPECT_THAT(labelled.invalid_labels(), UnorderedElementsAre("1bad", "awsx"));
  ASSERT_TRUE(Get("/app/db/url:stable", &p).ok());
  EXPECT_EQ(p.value(), "postgres://db:5432/a");
  EXPECT_EQ(p.version(), 1);
  EXPECT_EQ(p.selector(), ":stable");
  EXPECT_EQ(Value("/app/db/url:release-1.0"), "postgres://db:5432/a");
  // Re-labelling moves the label; version 0 means the latest.
  labelled = Label("/app/db/url", 0, {"stable"});
  EXPECT_EQ(labelled.parameter_version(), 3);
  EXPECT_TRUE(labelled.invalid_labels().empty());
  EXPECT_EQ(Value("/app/db/url:stable"), "postgres://db:5432/c");
  EXPECT_EQ(Value("/app/db/url:release-1.0"), "postgres://db:5432/a");

  // History: every version, oldest first, with its labels.
  pm::GetParameterHistoryRequest hist;
  hist.set_name("/app/db/url");
  pm::GetParameterHistoryResponse history;
  ASSERT_TRUE(Invoke(params(), &pm::ParameterStore::Stub::GetParameterHistory, hist, &history).ok());
  ASSERT_EQ(history.parameters_size(), 3);
  EXPECT_EQ(history.parameters(0).version(), 1);
  EXPECT_EQ(history.parameters(0).value(), "postgres://db:5432/a");
  EXPECT_THAT(history.parameters(0).labels(), ElementsAre("release-1.0"));
  EXPECT_THAT(history.parameters(2).labels(), ElementsAre("stable"));

  // Unknown versions, labels and names.
  s = Get("/app/db/url:9", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterVersionNotFound);
  s = Get("/app/db/url:nolabel", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterVersionNotFound);
  s = Get("/app/db/none", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);
  pm::DeleteParameterRequest del;
  del.set_name("/app/db/none");
  pm::DeleteParameterResponse deleted;
  s = Invoke(params(), &pm::ParameterStore::Stub::DeleteParameter, del, &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);

  // StringList: comma-separated, returned as given.
  EXPECT_EQ(Put("/app/hosts", "a.example,b.example,c.example", pm::PARAMETER_TYPE_STRING_LIST), 1);
  ASSERT_TRUE(Get("/app/hosts", &p, true).ok());
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_STRING_LIST);
  EXPECT_EQ(p.value(), "a.example,b.example,c.example");

  // GetParameters: found ones plus invalid_parameters.
  pm::GetParametersRequest several;
  several.add_names("/app/hosts");
  several.add_names("/app/db/url:1");
  several.add_names("/app/missing");
  pm::GetParametersResponse got;
  ASSERT_TRUE(Invoke(params(), &pm::ParameterStore::Stub::GetParameters, several, &got).ok());
  std::map<std::string, std::string> values;
  for (const auto& q : got.parameters()) values[q.name() + q.selector()] = q.value();
  EXPECT_THAT(values, UnorderedElementsAre(
                          std::make_pair("/app/hosts", "a.example,b.example,c.example"),
                          std::make_pair("/app/db/url:1", "postgres://db:5432/a")));
  EXPECT_THAT(got.invalid_parameters(), ElementsAre("/app/missing"));

  // Names: 15 levels are fine, 16 are not.
  std::string fifteen, sixteen;
  for (int i = 1; i <= 15; ++i) absl::StrAppend(&fifteen, "/l", i);
  sixteen = fifteen + "/l16";
  EXPECT_EQ(Put(fifteen, "deep"), 1);
  EXPECT_EQ(Value(fifteen), "deep");
  s = TryPut(sixteen, "too deep", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), "HierarchyLevelLimitExceededException");
  // Reserved prefixes and a relative hierarchical name.
  s = TryPut("/aws/thing", "x", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  s = TryPut("SSMthing", "x", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  s = TryPut("app/relative", "x", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);

  // Delete: gone, and the name can be created again from version 1.
  Delete("/app/hosts");
  s = Get("/app/hosts", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);
  EXPECT_EQ(Put("/app/hosts", "d.example", pm::PARAMETER_TYPE_STRING_LIST), 1);
}

TEST_F(ParamsE2ETest, GetParametersByPathRecursiveAndOneLevelPagesWithoutGapsOrRepeats) {
  std::set<std::string> direct, nested;
  for (int i = 0; i < 25; ++i) direct.insert(absl::StrCat("/pg/a/p", i < 10 ? "0" : "", i));
  for (int i = 0; i < 8; ++i) nested.insert(absl::StrCat("/pg/a/sub/q", i));
  for (int i = 0; i < 7; ++i) nested.insert(absl::StrCat("/pg/a/sub/deeper/r", i));
  for (const auto& n : direct) Put(n, "v" + n);
  for (const auto& n : nested) Put(n, "v" + n);
  // Neighbours that must not show up: a sibling sharing the prefix, the parent.
  Put("/pg/ab/x", "sibling");
  Put("/pg/a-b", "sibling too");
  Put("/pg/top", "parent level");

  auto names = [](const std::vector<pm::Parameter>& ps) {
    std::vector<std::string> out;
    for (const auto& p : ps) out.push_back(p.name());
    return out;
  };
  auto no_repeats = [](const std::vector<std::string>& v) {
    return std::set<std::string>(v.begin(), v.end()).size() == v.size();
  };

  int pages = 0;
  std::vector<pm::Parameter> all = ByPath("/pg/a", /*recursive=*/true, false, 10, &pages);
  std::vector<std::string> all_names = names(all);
  EXPECT_TRUE(no_repeats(all_names)) << absl::StrJoin(all_names, " ");
  std::set<std::string> expected = direct;
  expected.insert(nested.begin(), nested.end());
  EXPECT_EQ(expected.size(), 40u);
  EXPECT_THAT(all_names, UnorderedElementsAreArray(expected));
  EXPECT_GE(pages, 4);
  for (const auto& p : all) EXPECT_EQ(p.value(), "v" + p.name());

  std::vector<std::string> one_level = names(ByPath("/pg/a", /*recursive=*/false, false, 10, &pages));
  EXPECT_TRUE(no_repeats(one_level)) << absl::StrJoin(one_level, " ");
  EXPECT_THAT(one_level, UnorderedElementsAreArray(direct));
  EXPECT_GE(pages, 3);
  // A trailing '/' is the same path; a smaller page size gives the same set.
  EXPECT_THAT(names(ByPath("/pg/a/", false, false, 7)), UnorderedElementsAreArray(direct));
  EXPECT_THAT(names(ByPath("/pg/a/sub", false, false, 3)),
              UnorderedElementsAre("/pg/a/sub/q0", "/pg/a/sub/q1", "/pg/a/sub/q2", "/pg/a/sub/q3",
                                   "/pg/a/sub/q4", "/pg/a/sub/q5", "/pg/a/sub/q6",
                                   "/pg/a/sub/q7"));

  // A path without a leading '/' and an out-of-range page size.
  pm::GetParametersByPathRequest bad;
  bad.set_path("pg/a");
  pm::GetParametersByPathResponse resp;
  grpc::Status s = Invoke(params(), &pm::ParameterStore::Stub::GetParametersByPath, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  bad.set_path("/pg/a");
  bad.set_max_results(11);
  s = Invoke(params(), &pm::ParameterStore::Stub::GetParametersByPath, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

// cofferctl through the real binary: put/get, and `watch params`.
TEST_F(ParamsE2ETest, CofferctlPutGetAndWatch) {
  rpc::TlsFiles tls = testing::SharedPki().Identity("cofferctl");
  std::map<std::string, std::string> env = {{"COFFER_PARAMS_ADDRESS", services().store->address()},
                                            {"COFFER_CA", tls.ca_file},
                                            {"COFFER_CERT", tls.cert_file},
                                            {"COFFER_KEY", tls.key_file}};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), testing::BinaryPath("cofferctl"));
    testing::Subprocess ctl(args, env);
    EXPECT_TRUE(ctl.Start().ok());
    int code = ctl.Wait(absl::Seconds(20));
    return std::make_pair(code, ctl.Output());
  };
  const std::string secret = "cli-secret-" + Hex(8);

  auto [put_code, put] = run({"params", "put-parameter", "--name=/cli/db/password",
                              "--value=" + secret, "--type=SECURE_STRING"});
  ASSERT_EQ(put_code, 0) << put;
  EXPECT_THAT(put, HasSubstr("\"version\""));
  EXPECT_THAT(put, Not(HasSubstr(secret)));

  auto [get_code, got] =
      run({"params", "get-parameter", "--name=/cli/db/password", "--with-decryption"});
  ASSERT_EQ(get_code, 0) << got;
  EXPECT_THAT(got, HasSubstr(absl::StrCat("\"value\": \"", secret, "\"")));
  EXPECT_THAT(got, HasSubstr("\"type\": \"PARAMETER_TYPE_SECURE_STRING\""));
  auto [enc_code, encrypted] = run({"params", "get-parameter", "--name=/cli/db/password"});
  ASSERT_EQ(enc_code, 0) << encrypted;
  EXPECT_THAT(encrypted, HasSubstr("\"value\": \""));
  EXPECT_THAT(encrypted, Not(HasSubstr(secret)));
  // And what the CLI stored, the API reads.
  EXPECT_EQ(Value("/cli/db/password", true), secret);

  auto [missing_code, missing] = run({"params", "get-parameter", "--name=/cli/none"});
  EXPECT_EQ(missing_code, 1) << missing;
  EXPECT_THAT(missing, HasSubstr(reason::kParameterNotFound));

  // `cofferctl watch params`: from now, so keep changing /x/a (and, before
  // each, /y/z outside the path) until two events made it out.
  std::vector<std::string> argv = {testing::BinaryPath("cofferctl"), "watch", "params", "--path",
                                   "/x", "--recursive", "--max-events", "2"};
  testing::Subprocess watch(argv, env);
  ASSERT_TRUE(watch.Start().ok());
  int64_t puts = 0;
  const bool ended = testing::WaitFor(
      [&] {
        if (!watch.running()) return true;
        TryPut("/y/z", "outside", pm::PARAMETER_TYPE_STRING, true);
        TryPut("/x/a", "inside " + secret, pm::PARAMETER_TYPE_STRING, true);
        ++puts;
        absl::SleepFor(absl::Milliseconds(50));
        return !watch.running();
      },
      absl::Seconds(15));
  ASSERT_TRUE(ended) << watch.Output();
  ASSERT_EQ(watch.Wait(absl::Seconds(5)), 0) << watch.Output();
  const std::string output = watch.Output();
  std::vector<std::string> lines =
      absl::StrSplit(output, '\n', absl::SkipWhitespace());
  ASSERT_EQ(lines.size(), 2u) << output;
  std::vector<ChangeEvent> events;
  for (const std::string& line : lines) {
    EXPECT_TRUE(absl::StartsWith(line, "{") && absl::EndsWith(line, "}")) << line;
    ChangeEvent e;
    auto parsed = google::protobuf::util::JsonStringToMessage(line, &e);
    ASSERT_TRUE(parsed.ok()) << line << ": " << parsed.ToString();
    events.push_back(e);
  }
  for (const ChangeEvent& e : events) {
    EXPECT_EQ(e.name(), "/x/a") << Describe(e);
    EXPECT_EQ(e.resource_kind(), coffer::v1::RESOURCE_KIND_PARAMETER);
    EXPECT_TRUE(e.kind() == coffer::v1::CHANGE_KIND_CREATED ||
                e.kind() == coffer::v1::CHANGE_KIND_UPDATED)
        << Describe(e);
    EXPECT_GT(e.time().seconds(), 0);
  }
  EXPECT_LT(Position(events[0]), Position(events[1]));
  int64_t v0 = 0, v1 = 0;
  ASSERT_TRUE(absl::SimpleAtoi(events[0].version(), &v0) &&
              absl::SimpleAtoi(events[1].version(), &v1));
  EXPECT_EQ(v1, v0 + 1);  // consecutive: no change in between was skipped
  EXPECT_THAT(output, Not(HasSubstr(secret)));
  EXPECT_THAT(output, Not(HasSubstr("/y/z")));
  EXPECT_GE(puts, 2);
}

// ---------------------------------------------------------------------------
// SecureString: encrypted at rest, never in logs. Own pair (stopped by the test).

class ParamsSecureStringE2ETest : public ParamsTestBase {
 protected:
  void SetUp() override { ASSERT_TRUE(services_.Start()) << services_.failure; }
  void TearDown() override {
    auto [store_code, kms_code] = services_.Stop();
    EXPECT_EQ(store_code, 0);
    EXPECT_EQ(kms_code, 0);
  }
  Services& services() override { return services_; }
  Services services_;
};

TEST_F(ParamsSecureStringE2ETest, SecureStringIsStoredEncryptedAndNeverLogged) {
  const std::string marker = "DISTINCTIVE-PARAM-" + Hex(12);
  const std::string marker2 = "DISTINCTIVE-PARAM-" + Hex(12);
  const std::vector<std::string> encodings = {
      marker,
      absl::Base64Escape(marker),
      absl::WebSafeBase64Escape(marker),
      absl::BytesToHexString(marker),
      marker2,
      absl::Base64Escape(marker2),
      absl::WebSafeBase64Escape(marker2),
      absl::BytesToHexString(marker2)};
  auto holds_marker = [&](const std::string& text) {
    for (const std::string& e : encodings) {
      if (text.find(e) != std::string::npos) return e;
    }
    return std::string();
  };

  EXPECT_EQ(Put("/sec/db/password", marker, pm::PARAMETER_TYPE_SECURE_STRING), 1);
  Put("/sec/db/user", "app", pm::PARAMETER_TYPE_STRING);

  pm::Parameter p;
  ASSERT_TRUE(Get("/sec/db/password", &p).ok());
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_SECURE_STRING);
  EXPECT_FALSE(p.value().empty());
  EXPECT_NE(p.value(), marker);
  EXPECT_EQ(holds_marker(p.value()), "") << p.value();
  ASSERT_TRUE(Get("/sec/db/password", &p, /*with_decryption=*/true).ok());
  EXPECT_EQ(p.value(), marker);
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_SECURE_STRING);

  for (bool recursive : {true, false}) {
    const std::string path = recursive ? "/sec" : "/sec/db";
    std::map<std::string, std::string> plain, decrypted;
    for (const auto& q : ByPath(path, recursive, /*with_decryption=*/false)) plain[q.name()] = q.value();
    for (const auto& q : ByPath(path, recursive, /*with_decryption=*/true)) decrypted[q.name()] = q.value();
    ASSERT_EQ(plain.size(), 2u) << path;
    EXPECT_EQ(plain["/sec/db/user"], "app");
    EXPECT_EQ(holds_marker(plain["/sec/db/password"]), "") << plain["/sec/db/password"];
    EXPECT_FALSE(plain["/sec/db/password"].empty());
    EXPECT_EQ(decrypted["/sec/db/user"], "app");
    EXPECT_EQ(decrypted["/sec/db/password"], marker);
  }

  // A second version, a labelled read of the first, and the history.
  EXPECT_EQ(Put("/sec/db/password", marker2, pm::PARAMETER_TYPE_SECURE_STRING, true), 2);
  EXPECT_EQ(Value("/sec/db/password", true), marker2);
  EXPECT_EQ(Value("/sec/db/password:1", true), marker);
  EXPECT_EQ(holds_marker(Value("/sec/db/password:1")), "");
  pm::GetParameterHistoryRequest hist;
  hist.set_name("/sec/db/password");
  pm::GetParameterHistoryResponse history;
  ASSERT_TRUE(Invoke(params(), &pm::ParameterStore::Stub::GetParameterHistory, hist, &history).ok());
  ASSERT_EQ(history.parameters_size(), 2);
  for (const auto& h : history.parameters()) EXPECT_EQ(holds_marker(h.value()), "");
  // DescribeParameters: metadata only.
  pm::DescribeParametersRequest describe;
  pm::DescribeParametersResponse described;
  ASSERT_TRUE(
      Invoke(params(), &pm::ParameterStore::Stub::DescribeParameters, describe, &described).ok());
  EXPECT_EQ(holds_marker(described.SerializeAsString()), "");
  // A failing put carrying the value does not echo it.
  grpc::Status s = TryPut("/sec/db/password", marker, pm::PARAMETER_TYPE_SECURE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(holds_marker(s.error_message()), "");

  auto [store_code, kms_code] = services_.Stop();  // the store flushes its memtables
  ASSERT_EQ(store_code, 0) << services_.store->Output();
  ASSERT_EQ(kms_code, 0) << services_.kms->Output();

  int files = 0;
  for (const std::string& dir : {services_.dir.Join("kms"), services_.dir.Join("store")}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      ++files;
      const std::string contents = testing::ReadFile(entry.path().string());
      EXPECT_EQ(holds_marker(contents), "") << entry.path();
    }
  }
  EXPECT_GT(files, 6);
  const std::string logs = services_.store->Output() + services_.kms->Output();
  EXPECT_THAT(logs, HasSubstr("serving"));  // the logs are there at all
  EXPECT_EQ(holds_marker(logs), "");
}

// ---------------------------------------------------------------------------
// Watch streams and policies on one shared pair.

class WatchE2ETest : public ParamsTestBase {
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
  void SetUp() override {
    ASSERT_TRUE(shared_ok_) << shared_->failure;
    // A test that restarted the store leaves it serving; make sure.
    ASSERT_TRUE(shared_->store->running()) << shared_->store->Output();
  }
  Services& services() override { return *shared_; }

  static Services* shared_;
  static bool shared_ok_;
};
Services* WatchE2ETest::shared_ = nullptr;
bool WatchE2ETest::shared_ok_ = false;

TEST_F(WatchE2ETest, WatchParametersInOrderAndResumesAfterAStoreRestart) {
  std::string probe;
  auto stream = OpenLiveWatch("/w", /*recursive=*/true, &probe);
  ASSERT_FALSE(HasFatalFailure());
  auto mine = [&](const ChangeEvent& e) { return e.name() != probe; };

  // Distinct values, none of which may show up in an event.
  std::vector<std::string> values;
  auto value = [&] {
    values.push_back("wv-" + Hex(8));
    return values.back();
  };
  EXPECT_EQ(Put("/w/a", value()), 1);                              // CREATED /w/a v1
  EXPECT_EQ(Put("/w/deep/er/b", value()), 1);                      // CREATED /w/deep/er/b v1
  EXPECT_EQ(Put("/wx/y", value()), 1);                             // outside (shares "/w")
  EXPECT_EQ(Put("/outside/x", value()), 1);                        // outside
  EXPECT_EQ(Put("/w/a", value(), pm::PARAMETER_TYPE_STRING, true), 2);  // UPDATED /w/a v2
  Label("/w/a", 1, {"stable"});                                    // METADATA_UPDATED /w/a v1
  Delete("/w/deep/er/b");                                          // DELETED /w/deep/er/b

  ASSERT_TRUE(stream->WaitForCount(5, absl::Seconds(10), mine))
      << ::testing::PrintToString(Describe(stream->events()));
  // Anything more would be a wrong event; give it a moment to show up.
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> events = stream->events(mine);
  EXPECT_THAT(Describe(events),
              ElementsAre("CHANGE_KIND_CREATED /w/a v1", "CHANGE_KIND_CREATED /w/deep/er/b v1",
                          "CHANGE_KIND_UPDATED /w/a v2", "CHANGE_KIND_METADATA_UPDATED /w/a v1",
                          "CHANGE_KIND_DELETED /w/deep/er/b"));
  // The probe's events all came before (it stopped before the changes).
  std::vector<ChangeEvent> everything = stream->events();
  ASSERT_GE(everything.size(), events.size());
  for (size_t i = everything.size() - events.size(); i < everything.size(); ++i) {
    EXPECT_NE(everything[i].name(), probe) << i;
  }
  uint64_t previous = 0;
  for (const ChangeEvent& e : everything) {
    EXPECT_EQ(e.resource_kind(), coffer::v1::RESOURCE_KIND_PARAMETER) << Describe(e);
    EXPECT_GT(Position(e), previous) << Describe(e);
    previous = Position(e);
    EXPECT_GT(e.time().seconds(), 0);
    const std::string bytes = e.SerializeAsString();
    for (const std::string& v : values) EXPECT_EQ(bytes.find(v), std::string::npos) << Describe(e);
  }
  ASSERT_FALSE(events.empty());
  const std::string last = events.back().position();

  grpc::Status cancelled = stream->Cancel();
  EXPECT_EQ(cancelled.error_code(), grpc::StatusCode::CANCELLED) << cancelled.error_message();
  stream.reset();

  // Restart the store on the same port; two changes while nobody watches
  // (and one outside the path).
  ASSERT_TRUE(services().store->Restart().ok()) << services().store->Output();
  ASSERT_TRUE(services().WaitForServing()) << services().store->Output();
  EXPECT_EQ(Put("/w/c", value()), 1);                  // CREATED /w/c v1
  EXPECT_EQ(Put("/outside/x", value(), pm::PARAMETER_TYPE_STRING, true), 2);
  Delete("/w/a");                                       // DELETED /w/a

  auto resumed = WatchParams("/w", /*recursive=*/true, last);
  ASSERT_TRUE(resumed->WaitForCount(2, absl::Seconds(10)))
      << ::testing::PrintToString(Describe(resumed->events()));
  // Live again: one more change arrives after the catch-up.
  EXPECT_EQ(Put("/w/c", value(), pm::PARAMETER_TYPE_STRING, true), 2);  // UPDATED /w/c v2
  ASSERT_TRUE(resumed->WaitForCount(3, absl::Seconds(10)))
      << ::testing::PrintToString(Describe(resumed->events()));
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> after = resumed->events();
  EXPECT_THAT(Describe(after),
              ElementsAre("CHANGE_KIND_CREATED /w/c v1", "CHANGE_KIND_DELETED /w/a",
                          "CHANGE_KIND_UPDATED /w/c v2"));
  uint64_t last_position = 0;
  ASSERT_TRUE(absl::SimpleAtoi(last, &last_position));
  previous = last_position;
  for (const ChangeEvent& e : after) {
    EXPECT_GT(Position(e), previous) << Describe(e);
    previous = Position(e);
    const std::string bytes = e.SerializeAsString();
    for (const std::string& v : values) EXPECT_EQ(bytes.find(v), std::string::npos) << Describe(e);
  }

  // One level: only direct children of /w.
  std::string probe2;
  auto one_level = OpenLiveWatch("/w", /*recursive=*/false, &probe2);
  ASSERT_FALSE(HasFatalFailure());
  Put("/w/deep/er/z", value());
  Put("/w/e", value());
  ASSERT_TRUE(one_level->WaitForCount(1, absl::Seconds(10),
                                      [&](const ChangeEvent& e) { return e.name() != probe2; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_THAT(Describe(one_level->events([&](const ChangeEvent& e) { return e.name() != probe2; })),
              ElementsAre("CHANGE_KIND_CREATED /w/e v1"));
}

TEST_F(WatchE2ETest, MalformedWatchRequestsAreInvalidArgument) {
  for (const std::string& start_after :
       std::vector<std::string>{"not-a-position", "-1", "12abc", " 5"}) {
    auto stream = WatchParams("/w", true, start_after);
    grpc::Status s = stream->WaitDone(absl::Seconds(10));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << start_after << ": " << s.error_code() << " " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("start_after")) << start_after;
    EXPECT_TRUE(stream->events().empty());
  }
  for (const std::string& path : std::vector<std::string>{"w", "w/x", ""}) {
    auto stream = WatchParams(path, true);
    grpc::Status s = stream->WaitDone(absl::Seconds(10));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "'" << path << "': " << s.error_code() << " " << s.error_message();
    EXPECT_EQ(Reason(s), reason::kValidation) << path;
  }
  // Secrets too.
  auto secrets_stream = WatchSecrets("", "nope");
  grpc::Status s = secrets_stream->WaitDone(absl::Seconds(10));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // A position this log never handed out: OUT_OF_RANGE.
  auto ahead = WatchParams("/w", true, "99999999999");
  s = ahead->WaitDone(absl::Seconds(10));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
}

TEST_F(WatchE2ETest, WatchSecretsSeesOnlyMatchingSecrets) {
  // The probe: a secret under the prefix, changed until the stream shows it.
  const std::string prefix = "ws-" + Hex(3) + "/match/";
  const std::string probe = prefix + "probe";
  sm::CreateSecretRequest create;
  create.set_name(probe);
  create.set_secret_string("probe");
  sm::CreateSecretResponse created;
  ASSERT_TRUE(Invoke(secrets(), &sm::SecretsManager::Stub::CreateSecret, create, &created).ok());
  auto stream = WatchSecrets(prefix);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool live = false;
  while (!live && absl::Now() < deadline) {
    sm::PutSecretValueRequest put;
    put.set_secret_id(probe);
    put.set_secret_string("probe " + Hex(4));
    sm::PutSecretValueResponse resp;
    ASSERT_TRUE(Invoke(secrets(), &sm::SecretsManager::Stub::PutSecretValue, put, &resp).ok());
    live = stream->WaitForCount(1, absl::Milliseconds(100));
  }
  ASSERT_TRUE(live);
  auto mine = [&](const ChangeEvent& e) { return e.name() != probe; };

  const std::string value = "secret-value-" + Hex(8);
  auto create_and_put = [&](const std::string& name) {
    sm::CreateSecretRequest c;
    c.set_name(name);
    c.set_secret_string(value);
    sm::CreateSecretResponse cr;
    grpc::Status s = Invoke(secrets(), &sm::SecretsManager::Stub::CreateSecret, c, &cr);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    sm::PutSecretValueRequest p;
    p.set_secret_id(name);
    p.set_secret_string(value + "-2");
    sm::PutSecretValueResponse pr;
    s = Invoke(secrets(), &sm::SecretsManager::Stub::PutSecretValue, p, &pr);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    return std::make_pair(cr.version_id(), pr.version_id());
  };
  const std::string other = "ws-other/" + Hex(3);
  const std::string match = prefix + "app";
  create_and_put(other);                            // not under the prefix
  auto [v1, v2] = create_and_put(match);
  Put("/" + prefix + "param", "a parameter, not a secret");  // /ws-.../match/param: a parameter
  create_and_put(other + "/" + prefix);             // contains the prefix, does not start with it

  ASSERT_TRUE(stream->WaitForCount(2, absl::Seconds(10), mine))
      << ::testing::PrintToString(Describe(stream->events()));
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> events = stream->events(mine);
  EXPECT_THAT(Describe(events), ElementsAre("CHANGE_KIND_CREATED " + match + " v" + v1,
                                            "CHANGE_KIND_UPDATED " + match + " v" + v2));
  for (const ChangeEvent& e : events) {
    EXPECT_EQ(e.resource_kind(), coffer::v1::RESOURCE_KIND_SECRET);
    EXPECT_EQ(e.SerializeAsString().find(value), std::string::npos);
  }
  if (events.size() == 2) {
    EXPECT_LT(Position(events[0]), Position(events[1]));
  }
}

TEST_F(WatchE2ETest, ExpirationPolicyNotifiesThenDeletes) {
  std::string probe;
  auto stream = OpenLiveWatch("/exp", /*recursive=*/true, &probe);
  ASSERT_FALSE(HasFatalFailure());
  auto mine = [&](const ChangeEvent& e) { return e.name() != probe; };

  const absl::Time expires = absl::Now() + absl::Seconds(4);
  const std::string timestamp = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", expires, absl::UTCTimeZone());
  const std::string policies = absl::StrCat(
      R"([{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":")", timestamp,
      R"("}},{"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"1","Unit":"Hours"}}])");
  const std::string value = "expiring-" + Hex(6);
  pm::PutParameterResponse put;
  grpc::Status s = TryPut("/exp/token", value, pm::PARAMETER_TYPE_STRING, false, &put,
                          [&](pm::PutParameterRequest& r) {
                            r.set_tier(pm::PARAMETER_TIER_ADVANCED);
                            r.set_policies(policies);
                          });
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << policies;
  EXPECT_EQ(put.tier(), pm::PARAMETER_TIER_ADVANCED);
  EXPECT_EQ(Value("/exp/token"), value);
  // Policies on a Standard parameter are refused.
  s = TryPut("/exp/standard", value, pm::PARAMETER_TYPE_STRING, false, nullptr,
             [&](pm::PutParameterRequest& r) {
               r.set_tier(pm::PARAMETER_TIER_STANDARD);
               r.set_policies(policies);
             });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // The notification is due at once (1 hour before expiry is in the past),
  // the expiry in ~4 s.
  pm::Parameter p;
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Get("/exp/token", &p).error_code() == grpc::StatusCode::NOT_FOUND; },
      absl::Seconds(10)))
      << "still there: " << p.value();
  EXPECT_GE(absl::Now(), expires - absl::Seconds(1));  // not before its time
  s = Get("/exp/token", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);

  ASSERT_TRUE(stream->WaitForCount(3, absl::Seconds(5), mine))
      << ::testing::PrintToString(Describe(stream->events()));
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> events = stream->events(mine);
  EXPECT_THAT(Describe(events),
              ElementsAre("CHANGE_KIND_CREATED /exp/token v1",
                          "CHANGE_KIND_EXPIRATION_NOTIFICATION /exp/token v1",
                          "CHANGE_KIND_EXPIRED /exp/token v1"));
  if (events.size() == 3) {
    EXPECT_FALSE(events[1].detail().empty());
    EXPECT_FALSE(events[2].detail().empty());
    EXPECT_LT(Position(events[0]), Position(events[1]));
    EXPECT_LT(Position(events[1]), Position(events[2]));
  }
  for (const ChangeEvent& e : events) {
    EXPECT_EQ(e.SerializeAsString().find(value), std::string::npos) << Describe(e);
  }
  // Gone from listings too, and the name is free again.
  for (const auto& q : ByPath("/exp", true)) EXPECT_NE(q.name(), "/exp/token");
  EXPECT_EQ(Put("/exp/token", "again"), 1);
}

}  // namespace
}  // namespace coffer
