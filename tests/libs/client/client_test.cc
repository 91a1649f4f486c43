// libs/client against a real store served in-process over mTLS: options,
// the decorators, the clients, and both caches (TTL on a fake clock, push
// invalidation and resume on real streams).
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/client/change_watcher.h"
#include "libs/client/clients.h"
#include "libs/client/connection.h"
#include "libs/client/parameter_cache.h"
#include "libs/client/secret_cache.h"
#include "libs/client/stub.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "libs/storage/database.h"
#include "services/kms/key_manager.h"
#include "services/store/changes/change_log.h"
#include "services/store/changes/watch_stream.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/envelope.h"
#include "services/store/params/param_store.h"
#include "services/store/params/params_service.h"
#include "services/store/schema.h"
#include "services/store/secrets/secret_records.h"
#include "services/store/secrets/secret_rotation.h"
#include "services/store/secrets/secret_store.h"
#include "services/store/secrets/secrets_service.h"
#include "tests/services/store/in_process_kms.h"
#include "tests/testing/test_env.h"

namespace coffer::client {
namespace {

namespace sm = ::coffer::secrets::v1;
namespace pm = ::coffer::params::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Counts calls by method and fails the next `fail_next` with UNAVAILABLE
// (as a store that went away would).
class CountingStub final : public Stub {
 public:
  explicit CountingStub(std::shared_ptr<Stub> inner) : inner_(std::move(inner)) {}
  absl::Status Unary(const CallInfo& call, const google::protobuf::Message& request,
                     google::protobuf::Message* response) override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_[call.method.substr(call.method.rfind('/') + 1)];
      if (fail_next_ > 0) {
        --fail_next_;
        return absl::UnavailableError("coffer-store unavailable: injected");
      }
    }
    return inner_->Unary(call, request, response);
  }
  std::unique_ptr<ChangeStream> Watch(const std::string& method,
                                      const google::protobuf::Message& request) override {
    return inner_->Watch(method, request);
  }
  int calls(const std::string& method) {
    absl::MutexLock lock(&mu_);
    return calls_[method];
  }
  void FailNext(int n) {
    absl::MutexLock lock(&mu_);
    fail_next_ = n;
  }

 private:
  std::shared_ptr<Stub> inner_;
  absl::Mutex mu_;
  std::map<std::string, int> calls_;
  int fail_next_ = 0;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kms::KeyManagerOptions kms_options;
    kms_options.db_path = dir_.Join("kms");
    kms_options.sync_writes = false;
    keys_ = std::move(kms::KeyManager::Open(kms_options, crypto::SecureBuffer::Random(32))).value();
    kms_ = std::make_unique<store::InProcessKeyService>(keys_.get());
    storage::DatabaseOptions db_options;
    db_options.path = dir_.Join("store");
    db_options.column_families = store::schema::ColumnFamilies();
    db_options.sync_writes = false;
    db_ = std::move(storage::Database::Open(db_options)).value();
    changes_ = std::move(store::ChangeLog::Open(db_.get())).value();
    data_keys_ = std::make_unique<store::DataKeyCache>(store::DataKeyCacheOptions{});
    envelope_ = std::make_unique<store::Envelope>(kms_.get(), data_keys_.get());
    store::SecretStoreOptions secret_options;
    secret_options.changes = changes_.get();
    records_ = std::make_unique<store::SecretRecords>(db_.get(), envelope_.get(), secret_options);
    ASSERT_TRUE(records_->Load().ok());
    secrets_ = std::make_unique<store::SecretStore>(records_.get());
    rotation_ = std::make_unique<store::SecretRotation>(records_.get());
    store::ParamStoreOptions param_options;
    param_options.changes = changes_.get();
    params_ = std::make_unique<store::ParamStore>(db_.get(), envelope_.get(), param_options);
    StartServer(0);

    options_.endpoint = absl::StrCat("localhost:", port_);
    options_.tls = testing::SharedPki().Identity("cofferctl");
    options_.server_spiffe_id = "spiffe://coffer.local/store";
    options_.timeout = absl::Seconds(5);
    options_.retry.initial_backoff = absl::Milliseconds(10);
    options_.retry.max_backoff = absl::Milliseconds(50);
    rpc::ChannelOptions channel;
    channel.target = options_.endpoint;
    channel.tls = options_.tls;
    channel.expected_spiffe_id = options_.server_spiffe_id;
    auto made = rpc::MakeChannel(std::move(channel));
    ASSERT_TRUE(made.ok()) << made.status();
    counting_ = std::make_shared<CountingStub>(MakeGrpcStub(*made, "coffer-store"));
    connection_ =
        std::make_shared<Connection>(MakeRetryingStub(counting_, options_.retry), options_);
  }

  void TearDown() override { StopServer(); }

  // Serves the secrets and parameters APIs on `port` (0: a free one).
  void StartServer(int port) {
    watches_ = std::make_unique<store::WatchRegistry>();
    secrets_service_ = std::make_unique<store::SecretsService>(secrets_.get(), rotation_.get(),
                                                               changes_.get(), watches_.get());
    params_service_ =
        std::make_unique<store::ParamsService>(params_.get(), changes_.get(), watches_.get());
    rpc::ServerOptions server_options;
    server_options.listen_address = absl::StrCat("127.0.0.1:", port);
    server_options.tls = testing::SharedPki().Identity("store");
    auto server = rpc::Server::Start(std::move(server_options),
                                     {secrets_service_.get(), params_service_.get()}, &health_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    port_ = server_->port();
  }

  void StopServer() {
    if (server_ == nullptr) return;
    watches_->StopAll();
    server_->Shutdown(absl::Seconds(1));
    server_.reset();
  }

  void CreateSecret(const std::string& name, const std::string& value) {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    ASSERT_TRUE(secrets_->CreateSecret(req).ok());
  }
  void PutValue(const std::string& name, const std::string& value) {
    sm::PutSecretValueRequest req;
    req.set_secret_id(name);
    req.set_secret_string(value);
    ASSERT_TRUE(secrets_->PutSecretValue(req).ok());
  }
  void PutParameter(const std::string& name, const std::string& value,
                    pm::ParameterType type = pm::PARAMETER_TYPE_STRING) {
    pm::PutParameterRequest req;
    req.set_name(name);
    req.set_value(value);
    req.set_type(type);
    req.set_overwrite(true);
    ASSERT_TRUE(params_->PutParameter(req).ok());
  }

  // Polls `get` on real time until it returns `want` (at most `limit`);
  // how long it took, or limit + 1s.
  template <typename Get>
  absl::Duration TimeUntil(const std::string& want, Get get,
                           absl::Duration limit = absl::Seconds(5)) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < limit) {
      absl::StatusOr<std::string> got = get();
      if (got.ok() && *got == want) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return limit + absl::Seconds(1);
  }

  // Until the cache's watch stream is anchored (what it read before may be
  // invalidated once, when it is).
  static void WaitForWatch(const ChangeWatcher* watcher) {
    const absl::Time start = absl::Now();
    while (watcher->opens() < 1 && absl::Now() - start < absl::Seconds(5)) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<kms::KeyManager> keys_;
  std::unique_ptr<store::InProcessKeyService> kms_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<store::ChangeLog> changes_;
  std::unique_ptr<store::DataKeyCache> data_keys_;
  std::unique_ptr<store::Envelope> envelope_;
  std::unique_ptr<store::SecretRecords> records_;
  std::unique_ptr<store::SecretStore> secrets_;
  std::unique_ptr<store::SecretRotation> rotation_;
  std::unique_ptr<store::ParamStore> params_;
  std::unique_ptr<store::WatchRegistry> watches_;
  std::unique_ptr<store::SecretsService> secrets_service_;
  std::unique_ptr<store::ParamsService> params_service_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
  int port_ = 0;

  ClientOptions options_;
  std::shared_ptr<CountingStub> counting_;
  std::shared_ptr<Connection> connection_;
};

// ------------------------------------------------------------- options

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    had_ = old != nullptr;
    if (value.empty()) {
      unsetenv(name);
    } else {
      setenv(name, value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(ClientOptionsTest, FromEnvironmentPinsTheWellKnownIdentityAndNamesWhatIsMissing) {
  const rpc::TlsFiles tls = testing::SharedPki().Identity("app-catagram");
  ScopedEnv ca("COFFER_CA", tls.ca_file), cert("COFFER_CERT", tls.cert_file), key("COFFER_KEY", ""),
      endpoint("COFFER_ENDPOINT", "store.example:7702"), pin("COFFER_SERVER_SPIFFE_ID", ""),
      domain("COFFER_TRUST_DOMAIN", "");
  absl::StatusOr<ClientOptions> missing = OptionsFromEnvironment(Service::kStore);
  ASSERT_TRUE(absl::IsInvalidArgument(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr("COFFER_KEY"));

  ScopedEnv key2("COFFER_KEY", tls.key_file);
  absl::StatusOr<ClientOptions> store = OptionsFromEnvironment(Service::kStore);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(store->endpoint, "store.example:7702");
  EXPECT_EQ(store->server_spiffe_id, "spiffe://coffer.local/store");
  {
    ScopedEnv d("COFFER_TRUST_DOMAIN", "prod.example");
    EXPECT_EQ(OptionsFromEnvironment(Service::kKms)->server_spiffe_id, "spiffe://prod.example/kms");
  }
  {
    ScopedEnv none("COFFER_SERVER_SPIFFE_ID", "none");
    EXPECT_EQ(OptionsFromEnvironment(Service::kStore)->server_spiffe_id, "");
  }
  {
    ScopedEnv bad("COFFER_SERVER_SPIFFE_ID", "store");
    EXPECT_TRUE(absl::IsInvalidArgument(OptionsFromEnvironment(Service::kStore).status()));
  }
  {
    ScopedEnv gone("COFFER_CERT", "/nonexistent/cert.pem");
    EXPECT_TRUE(absl::IsInvalidArgument(OptionsFromEnvironment(Service::kStore).status()));
  }
}

// ------------------------------------------------------------- clients

TEST_F(ClientTest, ClientsReachTheStoreAndWritesGetATokenSoThatRetriesAreSafe) {
  auto created = Connection::Create(options_, "coffer-store");
  ASSERT_TRUE(created.ok()) << created.status();
  SecretsClient secrets(*created);
  sm::CreateSecretRequest create;
  create.set_name("app/db");
  create.set_secret_string("hunter2");
  auto made = secrets.CreateSecret(create);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(IsUuid(made->version_id())) << made->version_id();

  sm::GetSecretValueRequest get;
  get.set_secret_id("app/db");
  auto value = secrets.GetSecretValue(get);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->secret_string(), "hunter2");

  ParametersClient params(*created);
  pm::PutParameterRequest put;
  put.set_name("/app/port");
  put.set_value("5432");
  put.set_type(pm::PARAMETER_TYPE_STRING);
  ASSERT_TRUE(params.PutParameter(put).ok());
  pm::GetParameterRequest get_param;
  get_param.set_name("/app/port");
  EXPECT_EQ(params.GetParameter(get_param)->parameter().value(), "5432");

  // Errors keep the server's reason.
  get.set_secret_id("nope");
  auto missing = secrets.GetSecretValue(get);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_EQ(ErrorReason(missing.status()), "ResourceNotFoundException");
}

TEST_F(ClientTest, TheServerMustPresentThePinnedIdentity) {
  ClientOptions wrong = options_;
  wrong.server_spiffe_id = "spiffe://coffer.local/kms";  // the store is not the KMS
  wrong.retry.max_attempts = 1;
  auto connection = Connection::Create(wrong, "coffer-kms");
  ASSERT_TRUE(connection.ok());
  sm::GetRandomPasswordRequest req;
  auto got = SecretsClient(*connection).GetRandomPassword(req);
  EXPECT_TRUE(absl::IsUnavailable(got.status())) << got.status();
}

TEST_F(ClientTest, RetriesOnlyIdempotentCallsAndOnlyOnUnavailable) {
  CreateSecret("r", "v1");
  SecretsClient secrets(connection_);
  sm::GetSecretValueRequest get;
  get.set_secret_id("r");
  counting_->FailNext(2);
  auto value = secrets.GetSecretValue(get);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(counting_->calls("GetSecretValue"), 3);

  counting_->FailNext(10);  // more than max_attempts (4)
  EXPECT_TRUE(absl::IsUnavailable(secrets.GetSecretValue(get).status()));
  EXPECT_EQ(counting_->calls("GetSecretValue"), 3 + 4);
  counting_->FailNext(0);

  // DeleteSecret would not repeat cleanly: sent once.
  sm::DeleteSecretRequest del;
  del.set_secret_id("r");
  counting_->FailNext(1);
  EXPECT_TRUE(absl::IsUnavailable(secrets.DeleteSecret(del).status()));
  EXPECT_EQ(counting_->calls("DeleteSecret"), 1);

  // PutSecretValue gets a token, so it is retried, and lands once.
  sm::PutSecretValueRequest put;
  put.set_secret_id("r");
  put.set_secret_string("v2");
  counting_->FailNext(1);
  auto put_result = secrets.PutSecretValue(put);
  ASSERT_TRUE(put_result.ok()) << put_result.status();
  EXPECT_EQ(counting_->calls("PutSecretValue"), 2);

  // Other errors are answers: not retried.
  get.set_secret_id("missing");
  EXPECT_TRUE(absl::IsNotFound(secrets.GetSecretValue(get).status()));
  EXPECT_EQ(counting_->calls("GetSecretValue"), 3 + 4 + 1);
}

TEST(RetryingStubTest, BacksOffWithJitterWithinTheDeadline) {
  class Unavailable final : public Stub {
   public:
    absl::Status Unary(const CallInfo&, const google::protobuf::Message&,
                       google::protobuf::Message*) override {
      ++calls;
      return absl::UnavailableError("down");
    }
    std::unique_ptr<ChangeStream> Watch(const std::string&,
                                        const google::protobuf::Message&) override {
      return nullptr;
    }
    int calls = 0;
  };
  auto inner = std::make_shared<Unavailable>();
  RetryPolicy policy;
  policy.max_attempts = 6;
  policy.initial_backoff = absl::Milliseconds(100);
  policy.max_backoff = absl::Milliseconds(400);
  std::vector<absl::Duration> waits;
  auto stub = MakeRetryingStub(inner, policy, [&](absl::Duration d) { waits.push_back(d); });
  sm::GetRandomPasswordRequest req;
  sm::GetRandomPasswordResponse resp;
  CallInfo call{"/x/Y", Idempotency::kIdempotent, absl::Now() + absl::Hours(1)};
  EXPECT_TRUE(absl::IsUnavailable(stub->Unary(call, req, &resp)));
  EXPECT_EQ(inner->calls, 6);
  ASSERT_EQ(waits.size(), 5u);
  const absl::Duration ceilings[] = {absl::Milliseconds(100), absl::Milliseconds(200),
                                     absl::Milliseconds(400), absl::Milliseconds(400),
                                     absl::Milliseconds(400)};
  for (size_t i = 0; i < waits.size(); ++i) {
    EXPECT_GE(waits[i], absl::ZeroDuration());
    EXPECT_LT(waits[i], ceilings[i]) << i;
  }
  // A deadline that a wait would pass ends the retries.
  inner->calls = 0;
  call.deadline = absl::Now() + absl::Microseconds(1);
  EXPECT_TRUE(absl::IsUnavailable(stub->Unary(call, req, &resp)));
  EXPECT_EQ(inner->calls, 1);
}

// ------------------------------------------------------------- SecretCache

TEST_F(ClientTest, SecretCacheHitsUntilTheTtlThenRefreshesThroughTheVersionMap) {
  CreateSecret("c", "one");
  SecretCacheOptions options;
  options.clock = &clock_;
  options.push_invalidation = false;
  options.ttl = absl::Minutes(10);
  SecretCache cache(SecretsClient(connection_), options);
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "one");
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "one");
  EXPECT_EQ(counting_->calls("DescribeSecret"), 1);
  EXPECT_EQ(counting_->calls("GetSecretValue"), 1);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);

  PutValue("c", "two");
  clock_.Advance(absl::Minutes(9));
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "one");  // within the TTL
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "two");
  EXPECT_EQ(counting_->calls("DescribeSecret"), 2);
  EXPECT_EQ(counting_->calls("GetSecretValue"), 2);

  // Unchanged version map: the value is not fetched again.
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "two");
  EXPECT_EQ(counting_->calls("DescribeSecret"), 3);
  EXPECT_EQ(counting_->calls("GetSecretValue"), 2);

  // Other stages, by name; labels as the map says.
  auto previous = cache.GetSecretValue("c", "AWSPREVIOUS");
  ASSERT_TRUE(previous.ok()) << previous.status();
  EXPECT_EQ(previous->secret_string(), "one");
  EXPECT_THAT(previous->version_stages(), ElementsAre("AWSPREVIOUS"));
  EXPECT_TRUE(absl::IsNotFound(cache.GetSecretValue("c", "NOSUCH").status()));

  // RefreshNow: at once, whatever the TTL.
  PutValue("c", "three");
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "two");
  ASSERT_TRUE(cache.RefreshNow("c").ok());
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "three");
}

TEST_F(ClientTest, SecretCacheServesStaleOnTransientErrorsAndBacksOff) {
  CreateSecret("s", "cached");
  SecretCacheOptions options;
  options.clock = &clock_;
  options.push_invalidation = false;
  options.ttl = absl::Minutes(1);
  options.refresh_backoff = absl::Seconds(10);
  SecretCache cache(SecretsClient(connection_), options);
  ASSERT_EQ(cache.GetSecretString("s").value_or("?"), "cached");

  clock_.Advance(absl::Minutes(2));
  counting_->FailNext(100);
  EXPECT_EQ(cache.GetSecretString("s").value_or("?"), "cached");  // stale
  const int calls = counting_->calls("DescribeSecret");
  clock_.Advance(absl::Seconds(5));  // within the backoff: no call
  EXPECT_EQ(cache.GetSecretString("s").value_or("?"), "cached");
  EXPECT_EQ(counting_->calls("DescribeSecret"), calls);
  EXPECT_EQ(cache.stats().stale_served, 2u);
  EXPECT_EQ(cache.stats().refresh_failures, 1u);
  EXPECT_FALSE(cache.RefreshNow("s").ok());

  // Nothing cached: the error itself.
  EXPECT_TRUE(absl::IsUnavailable(cache.GetSecretString("other").status()));

  counting_->FailNext(0);
  PutValue("s", "fresh");
  clock_.Advance(absl::Minutes(1));  // past the doubled backoff
  EXPECT_EQ(cache.GetSecretString("s").value_or("?"), "fresh");
}

TEST_F(ClientTest, SecretCacheDropsASecretThatIsGone) {
  CreateSecret("gone", "v");
  SecretCacheOptions options;
  options.clock = &clock_;
  options.push_invalidation = false;
  SecretCache cache(SecretsClient(connection_), options);
  ASSERT_TRUE(cache.GetSecretString("gone").ok());
  sm::DeleteSecretRequest del;
  del.set_secret_id("gone");
  del.set_force_delete_without_recovery(true);
  ASSERT_TRUE(secrets_->DeleteSecret(del).ok());
  clock_.Advance(absl::Hours(2));
  EXPECT_TRUE(absl::IsNotFound(cache.GetSecretString("gone").status()));
}

TEST_F(ClientTest, SecretCacheEvictsTheLeastRecentlyUsed) {
  for (const char* n : {"a", "b", "c"}) CreateSecret(n, n);
  SecretCacheOptions options;
  options.clock = &clock_;
  options.push_invalidation = false;
  options.max_entries = 2;
  SecretCache cache(SecretsClient(connection_), options);
  EXPECT_EQ(cache.GetSecretString("a").value_or("?"), "a");
  EXPECT_EQ(cache.GetSecretString("b").value_or("?"), "b");
  EXPECT_EQ(cache.GetSecretString("a").value_or("?"), "a");  // a is now the newest
  EXPECT_EQ(cache.GetSecretString("c").value_or("?"), "c");  // evicts b
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(cache.GetSecretString("a").value_or("?"), "a");
  EXPECT_EQ(counting_->calls("DescribeSecret"), 3);
  EXPECT_EQ(cache.GetSecretString("b").value_or("?"), "b");
  EXPECT_EQ(counting_->calls("DescribeSecret"), 4);
}

TEST_F(ClientTest, PushInvalidationDeliversANewValueWithinASecond) {
  CreateSecret("pushed", "before");
  SecretCacheOptions options;
  options.clock = &clock_;  // the TTL never passes: only the watch can refresh
  SecretCache cache(SecretsClient(connection_), options);
  WaitForWatch(cache.watcher());
  ASSERT_EQ(cache.GetSecretString("pushed").value_or("?"), "before");
  PutValue("pushed", "after");
  const absl::Duration took = TimeUntil("after", [&] { return cache.GetSecretString("pushed"); });
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_GE(cache.stats().invalidations, 1u);
}

TEST_F(ClientTest, TheWatchResumesAfterTheStreamDropsWithoutMissingAChange) {
  CreateSecret("resumed", "v1");
  SecretCacheOptions options;
  options.clock = &clock_;
  SecretCache cache(SecretsClient(connection_), options);
  WaitForWatch(cache.watcher());
  ASSERT_EQ(cache.GetSecretString("resumed").value_or("?"), "v1");
  PutValue("resumed", "v2");  // gives the watcher a position
  ASSERT_LT(TimeUntil("v2", [&] { return cache.GetSecretString("resumed"); }), absl::Seconds(2));
  // Until the entry is fresh (an event that came in during the refresh
  // leaves it stale once more).
  const absl::Time start = absl::Now();
  for (uint64_t hits = cache.stats().hits;
       cache.stats().hits == hits && absl::Now() - start < absl::Seconds(2);) {
    ASSERT_EQ(cache.GetSecretString("resumed").value_or("?"), "v2");
  }
  const std::string position = cache.watcher()->position();
  ASSERT_FALSE(position.empty());

  const int port = port_;
  StopServer();
  PutValue("resumed", "v3");  // while the stream is down
  StartServer(port);
  // Resumed from its position: the change made while it was down arrives.
  EXPECT_LT(TimeUntil("v3", [&] { return cache.GetSecretString("resumed"); }), absl::Seconds(4));
  EXPECT_GE(cache.watcher()->opens(), 2);
  // ...by the event itself, not by a gap that invalidated everything.
  EXPECT_EQ(cache.watcher()->gaps(), 1);
  EXPECT_GE(cache.stats().invalidations, 2u);
  EXPECT_NE(cache.watcher()->position(), position);
}

// ------------------------------------------------------------- ParameterCache

TEST_F(ClientTest, ParameterCacheCachesNamesAndSubtreesAndTheWatchInvalidatesThem) {
  for (int i = 0; i < 15; ++i) PutParameter(absl::StrCat("/app/cfg/k", 10 + i), "x");
  PutParameter("/app/db/host", "db1");
  PutParameter("/app/db/password", "s3cret", pm::PARAMETER_TYPE_SECURE_STRING);
  ParameterCacheOptions options;
  options.clock = &clock_;
  ParameterCache cache(ParametersClient(connection_), options);
  WaitForWatch(cache.watcher());

  auto host = cache.GetParameter("/app/db/host");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(host->value(), "db1");
  EXPECT_EQ(cache.GetParameter("/app/db/password")->value(), "s3cret");
  auto all = cache.GetParametersByPath("/app", true);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), 17u);  // every page
  const int pages = counting_->calls("GetParametersByPath");
  EXPECT_GE(pages, 2);
  EXPECT_EQ(cache.GetParametersByPath("/app", true)->size(), 17u);
  EXPECT_EQ(counting_->calls("GetParametersByPath"), pages);
  EXPECT_EQ(cache.GetParametersByPath("/app/db", false)->size(), 2u);

  PutParameter("/app/db/host", "db2");
  EXPECT_LT(TimeUntil("db2",
                      [&]() -> absl::StatusOr<std::string> {
                        auto p = cache.GetParameter("/app/db/host");
                        if (!p.ok()) return p.status();
                        return p->value();
                      }),
            absl::Seconds(2));
  // The subtrees holding it were invalidated too; others were not.
  auto db = cache.GetParametersByPath("/app/db", false);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ((*db)[0].value(), "db2");
  const int before = counting_->calls("GetParameter");
  EXPECT_EQ(cache.GetParameter("/app/db/password")->value(), "s3cret");
  EXPECT_EQ(counting_->calls("GetParameter"), before);
}

TEST_F(ClientTest, ParameterCacheUsesTheTtlWithoutTheWatch) {
  PutParameter("/t/v", "1");
  ParameterCacheOptions options;
  options.clock = &clock_;
  options.push_invalidation = false;
  options.ttl = absl::Minutes(5);
  ParameterCache cache(ParametersClient(connection_), options);
  EXPECT_EQ(cache.GetParameter("/t/v")->value(), "1");
  PutParameter("/t/v", "2");
  EXPECT_EQ(cache.GetParameter("/t/v")->value(), "1");
  clock_.Advance(absl::Minutes(6));
  EXPECT_EQ(cache.GetParameter("/t/v")->value(), "2");
  // Selectors are entries of their own, invalidated with their name.
  EXPECT_EQ(cache.GetParameter("/t/v:1")->value(), "1");
  cache.Invalidate("/t/v");
  EXPECT_EQ(cache.GetParameter("/t/v:1")->value(), "1");
  EXPECT_EQ(cache.stats().invalidations, 2u);
}

}  // namespace
}  // namespace coffer::client
