// Real mTLS servers on port 0 with certificates from deploy/certs/make-certs.sh.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "libs/common/errors.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/client_call.h"
#include "libs/rpc/health.h"
#include "libs/rpc/peer.h"
#include "libs/rpc/server.h"
#include "libs/rpc/status.h"
#include "libs/rpc/tls.h"
#include "tests/testing/test_env.h"

namespace coffer::rpc {
namespace {

using ::coffer::testing::ForeignPki;
using ::coffer::testing::SharedPki;
using ::coffer::testing::TempDir;
using ::coffer::testing::WaitFor;
using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

constexpr char kEchoMethod[] = "/coffer.test.v1.Echo/Call";
constexpr char kReflectionMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

grpc::ByteBuffer ToBuffer(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// A tiny business service without a proto: one raw unary method. It replies
// with the caller's SPIFFE ID; "fail" returns a Coffer error; "slow:<ms>"
// answers after <ms> unless the call is cancelled first.
class EchoService final : public grpc::Service {
 public:
  EchoService() {
    AddMethod(new grpc::internal::RpcServiceMethod(kEchoMethod,
                                                   grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
    MarkMethodRawCallback(
        0, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
               [this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                      grpc::ByteBuffer* response) { return Call(context, request, response); }));
  }
  ~EchoService() override {
    for (std::thread& t : threads_) t.join();
  }

  int started() {
    absl::MutexLock lock(&mu_);
    return started_;
  }
  std::string last_peer() {
    absl::MutexLock lock(&mu_);
    return last_peer_;
  }
  std::string last_address() {
    absl::MutexLock lock(&mu_);
    return last_address_;
  }

 private:
  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
    std::string text = FromBuffer(*request);
    std::string peer = PeerSpiffeId(*context).value_or("<none>");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::MutexLock lock(&mu_);
    ++started_;
    last_peer_ = peer;
    last_address_ = PeerAddress(*context);
    if (text == "fail") {
      reactor->Finish(ToGrpcStatus(
          coffer::Error(reason::kResourceNotFound, "Secret 'x' not found", "x", "secret_id")));
    } else if (text.rfind("slow:", 0) == 0) {
      const absl::Duration delay = absl::Milliseconds(std::stoi(text.substr(5)));
      threads_.emplace_back([context, reactor, response, peer, delay] {
        const absl::Time until = absl::Now() + delay;
        while (absl::Now() < until && !context->IsCancelled()) {
          absl::SleepFor(absl::Milliseconds(5));
        }
        if (context->IsCancelled()) {
          reactor->Finish(grpc::Status::CANCELLED);
        } else {
          *response = ToBuffer(peer);
          reactor->Finish(grpc::Status::OK);
        }
      });
    } else {
      *response = ToBuffer(peer);
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  absl::Mutex mu_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_peer_ ABSL_GUARDED_BY(mu_);
  std::string last_address_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

struct CallResult {
  grpc::Status status;
  std::string reply;
  std::string server_identity;  // as the client saw it
};

CallResult Echo(const std::shared_ptr<grpc::Channel>& channel, const std::string& text,
                absl::Duration timeout = absl::Seconds(5)) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  grpc::ByteBuffer request = ToBuffer(text);
  grpc::ByteBuffer response;
  CallResult result;
  result.status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel.get(), grpc::internal::RpcMethod(kEchoMethod, grpc::internal::RpcMethod::NORMAL_RPC),
      &context, request, &response);
  if (result.status.ok()) result.reply = FromBuffer(response);
  result.server_identity = SpiffeIdOf(context.auth_context().get()).value_or("");
  return result;
}

grpc::Status Check(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                   HealthCheckResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(service);
  return Health::NewStub(channel)->Check(&context, request, response);
}

// list_services on the v1alpha reflection stream; the raw response bytes.
grpc::Status ListServices(const std::shared_ptr<grpc::Channel>& channel, std::string* reply) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(),
          grpc::internal::RpcMethod(kReflectionMethod, grpc::internal::RpcMethod::BIDI_STREAMING),
          &context));
  // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
  stream->Write(ToBuffer(std::string("\x3a\x00", 2)));
  stream->WritesDone();
  grpc::ByteBuffer response;
  while (stream->Read(&response)) reply->append(FromBuffer(response));
  return stream->Finish();
}

std::shared_ptr<grpc::Channel> Connect(int port, const TlsFiles& tls,
                                       const std::string& authority = "") {
  ChannelOptions options;
  options.target = absl::StrCat("localhost:", port);
  options.tls = tls;
  options.authority = authority;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(std::move(options));
  EXPECT_TRUE(channel.ok()) << channel.status();
  return channel.ok() ? *channel : nullptr;
}

class RpcServerTest : public ::testing::Test {
 protected:
  void StartServer(TlsFiles tls, bool with_health_listener = false) {
    ServerOptions options;
    options.tls = std::move(tls);
    if (with_health_listener) options.health_listen_address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(std::move(options), {&echo_}, &health_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    health_.Set("", true);
  }
  void StartServer() { StartServer(SharedPki().Identity("kms")); }

  // Declaration order: the server goes first, then the services it uses.
  EchoService echo_;
  HealthStatus health_;
  std::unique_ptr<Server> server_;
};

TEST_F(RpcServerTest, ClientWithValidCertificateIsServed) {
  StartServer();
  auto channel = Connect(server_->port(), SharedPki().Identity("store"));
  HealthCheckResponse response;
  grpc::Status status = Check(channel, "", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  CallResult echo = Echo(channel, "hello");
  ASSERT_TRUE(echo.status.ok()) << echo.status.error_message();
  EXPECT_EQ(echo.reply, "spiffe://coffer.local/store");
  EXPECT_EQ(echo.server_identity, "spiffe://coffer.local/kms");
}

TEST_F(RpcServerTest, ServerSeesCallerSpiffeIdAndAddress) {
  StartServer();
  auto channel = Connect(server_->port(), SharedPki().Identity("app-catagram"));
  CallResult echo = Echo(channel, "who am i");
  ASSERT_TRUE(echo.status.ok()) << echo.status.error_message();
  EXPECT_EQ(echo_.last_peer(), "spiffe://coffer.local/app/catagram");
  EXPECT_EQ(echo.reply, "spiffe://coffer.local/app/catagram");
  EXPECT_THAT(echo_.last_address(), HasSubstr("127.0.0.1:"));
}

TEST_F(RpcServerTest, ClientWithoutCertificateIsRefused) {
  StartServer();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = testing::ReadFile(SharedPki().ca_file());  // trusts the server, no cert
  auto channel =
      grpc::CreateChannel(absl::StrCat("localhost:", server_->port()), grpc::SslCredentials(ssl));
  CallResult echo = Echo(channel, "hello");
  EXPECT_EQ(echo.status.error_code(), grpc::StatusCode::UNAVAILABLE) << echo.status.error_message();
  EXPECT_EQ(echo_.started(), 0);
}

TEST_F(RpcServerTest, PlaintextClientIsRefused) {
  StartServer();
  auto channel = grpc::CreateChannel(absl::StrCat("localhost:", server_->port()),
                                     grpc::InsecureChannelCredentials());
  HealthCheckResponse response;
  EXPECT_EQ(Check(channel, "", &response).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(RpcServerTest, ClientCertificateFromForeignCaIsRefused) {
  StartServer();
  TlsFiles tls = ForeignPki().Identity("app-catagram");
  tls.ca_file = SharedPki().ca_file();  // the client trusts the server; not vice versa
  CallResult echo = Echo(Connect(server_->port(), tls), "hello");
  EXPECT_EQ(echo.status.error_code(), grpc::StatusCode::UNAVAILABLE) << echo.status.error_message();
  EXPECT_EQ(echo_.started(), 0);
}

TEST_F(RpcServerTest, ClientThatDoesNotTrustServerCaRefusesIt) {
  StartServer();
  TlsFiles tls = SharedPki().Identity("app-catagram");
  tls.ca_file = ForeignPki().ca_file();
  CallResult echo = Echo(Connect(server_->port(), tls), "hello");
  EXPECT_EQ(echo.status.error_code(), grpc::StatusCode::UNAVAILABLE) << echo.status.error_message();
  EXPECT_EQ(echo_.started(), 0);
}

TEST_F(RpcServerTest, ServerNameIsVerified) {
  StartServer();
  TlsFiles tls = SharedPki().Identity("cofferctl");
  // A DNS SAN of the kms certificate: accepted.
  EXPECT_TRUE(Echo(Connect(server_->port(), tls, "coffer-kms"), "hi").status.ok());
  // Not in the certificate: refused.
  CallResult wrong = Echo(Connect(server_->port(), tls, "store.example"), "hi");
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << wrong.status.error_message();
}

TEST_F(RpcServerTest, PinnedServerIdentityIsCheckedBeforeAnythingIsSent) {
  StartServer();  // presents spiffe://coffer.local/kms
  auto pinned = [&](const std::string& expected) {
    ChannelOptions options;
    options.target = absl::StrCat("localhost:", server_->port());
    options.tls = SharedPki().Identity("rotator");
    options.expected_spiffe_id = expected;
    return *MakeChannel(std::move(options));
  };
  EXPECT_TRUE(Echo(pinned("spiffe://coffer.local/kms"), "right server").status.ok());
  int served = echo_.started();
  CallResult wrong = Echo(pinned("spiffe://coffer.local/worker/postgres"), "wrong server");
  EXPECT_FALSE(wrong.status.ok());
  EXPECT_EQ(echo_.started(), served) << "the request reached a server with another identity";
}

TEST_F(RpcServerTest, ErrorDetailCrossesTheWire) {
  StartServer();
  CallResult echo = Echo(Connect(server_->port(), SharedPki().Identity("store")), "fail");
  EXPECT_EQ(echo.status.error_code(), grpc::StatusCode::NOT_FOUND);
  absl::Status back = FromGrpcStatus(echo.status);
  EXPECT_EQ(back.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(back.message(), "Secret 'x' not found");
  auto detail = GetErrorDetail(back);
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->reason, reason::kResourceNotFound);
  EXPECT_EQ(detail->resource, "x");
  EXPECT_EQ(detail->field, "secret_id");
}

TEST_F(RpcServerTest, MutualTlsListenerServesReflection) {
  StartServer();
  std::string reply;
  grpc::Status status =
      ListServices(Connect(server_->port(), SharedPki().Identity("cofferctl")), &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(reply, HasSubstr("grpc.health.v1.Health"));
  EXPECT_THAT(reply, HasSubstr("coffer.test.v1.Echo"));
}

TEST_F(RpcServerTest, HealthOnlyListenerServesHealthAndNothingElse) {
  StartServer(SharedPki().Identity("kms"), /*with_health_listener=*/true);
  ASSERT_NE(server_->health_port(), 0);
  ASSERT_NE(server_->health_port(), server_->port());
  auto plain = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->health_port()),
                                   grpc::InsecureChannelCredentials());
  HealthCheckResponse response;
  grpc::Status status = Check(plain, "", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  std::string reply;
  EXPECT_EQ(ListServices(plain, &reply).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(reply, "");
  EXPECT_EQ(Echo(plain, "hello").status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(echo_.started(), 0);

  // Both listeners report the same shared state.
  health_.Set("", false);
  ASSERT_TRUE(Check(plain, "", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  auto secure = Connect(server_->port(), SharedPki().Identity("store"));
  ASSERT_TRUE(Check(secure, "", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
}

TEST_F(RpcServerTest, CheckUnknownServiceIsNotFound) {
  StartServer();
  health_.Set("coffer.kms.v1.KeyManagement", false);
  auto channel = Connect(server_->port(), SharedPki().Identity("store"));
  HealthCheckResponse response;
  ASSERT_TRUE(Check(channel, "coffer.kms.v1.KeyManagement", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check(channel, "no.such.Service", &response).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(health_.Get("no.such.Service"), HealthCheckResponse::SERVICE_UNKNOWN);
}

TEST_F(RpcServerTest, WatchStreamsChangesAndEndsOnShutdown) {
  StartServer();
  health_.Set("svc", true);
  auto channel = Connect(server_->port(), SharedPki().Identity("store"));
  auto stub = Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  HealthCheckRequest request;
  request.set_service("svc");
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  health_.Set("svc", true);  // no change: nothing sent
  health_.Set("svc", false);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  health_.Set("svc", true);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // The stream reports NOT_SERVING, then ends.
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST(HealthWatchLimitTest, WatchStreamsOnThePlaintextPortAreCapped) {
  EchoService echo;
  HealthStatus health(/*max_watchers=*/3);
  ServerOptions options;
  options.tls = SharedPki().Identity("kms");
  options.health_listen_address = "127.0.0.1:0";
  auto server = Server::Start(std::move(options), {&echo}, &health);
  ASSERT_TRUE(server.ok()) << server.status();
  health.Set("", true);
  auto plain = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->health_port()),
                                   grpc::InsecureChannelCredentials());
  auto stub = Health::NewStub(plain);
  struct Open {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;
  };
  std::vector<std::unique_ptr<Open>> open;
  for (int i = 0; i < 3; ++i) {
    auto o = std::make_unique<Open>();
    o->reader = stub->Watch(&o->context, HealthCheckRequest());
    HealthCheckResponse first;
    ASSERT_TRUE(o->reader->Read(&first));  // admitted: the current status arrives
    open.push_back(std::move(o));
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto refused = stub->Watch(&context, HealthCheckRequest());
  HealthCheckResponse response;
  EXPECT_FALSE(refused->Read(&response));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Check still answers.
  grpc::ClientContext check_context;
  EXPECT_TRUE(stub->Check(&check_context, HealthCheckRequest(), &response).ok());
  for (auto& o : open) o->context.TryCancel();
  for (auto& o : open) {
    while (o->reader->Read(&response)) {
    }
    o->reader->Finish();
  }
  (*server)->Shutdown(absl::Seconds(2));
}

TEST_F(RpcServerTest, WatchEndsWhenClientCancels) {
  StartServer();
  auto channel = Connect(server_->port(), SharedPki().Identity("store"));
  auto stub = Health::NewStub(channel);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(i % 2 ? "" : "unknown");
    auto reader = stub->Watch(&context, request);
    HealthCheckResponse response;
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.status(),
              i % 2 ? HealthCheckResponse::SERVING : HealthCheckResponse::SERVICE_UNKNOWN);
    context.TryCancel();
    EXPECT_FALSE(reader->Read(&response));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Shutdown does not wait for the cancelled streams.
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(RpcServerTest, ShutdownLetsInFlightCallFinish) {
  StartServer();
  auto channel = Connect(server_->port(), SharedPki().Identity("store"));
  auto call = std::async(std::launch::async, [&] { return Echo(channel, "slow:400"); });
  ASSERT_TRUE(WaitFor([&] { return echo_.started() == 1; }, absl::Seconds(5)));

  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(10));
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(3));
  CallResult result = call.get();
  EXPECT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.reply, "spiffe://coffer.local/store");

  // Afterwards nothing is accepted; Shutdown is idempotent.
  EXPECT_FALSE(Echo(channel, "hello", absl::Seconds(1)).status.ok());
  server_->Shutdown(absl::Seconds(10));
  EXPECT_EQ(health_.Get(""), HealthCheckResponse::NOT_SERVING);
}

TEST_F(RpcServerTest, ShutdownCancelsCallsPastTheGracePeriod) {
  StartServer();
  auto channel = Connect(server_->port(), SharedPki().Identity("store"));
  auto call = std::async(std::launch::async, [&] { return Echo(channel, "slow:20000"); });
  ASSERT_TRUE(WaitFor([&] { return echo_.started() == 1; }, absl::Seconds(5)));
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_FALSE(call.get().status.ok());
}

TEST_F(RpcServerTest, ReloadsRenewedServerCertificate) {
  TempDir dir;
  auto copy = [&](const std::string& from, const std::string& to) {
    // Written aside and renamed, as cert-manager's atomic writer does.
    std::string tmp = dir.Join(to + ".tmp");
    std::ofstream(tmp, std::ios::binary) << testing::ReadFile(from);
    std::filesystem::rename(tmp, dir.Join(to));
  };
  const TlsFiles kms = SharedPki().Identity("kms");
  const TlsFiles other = SharedPki().Identity("app-other");
  copy(kms.ca_file, "ca.crt");
  copy(kms.cert_file, "server.crt");
  copy(kms.key_file, "server.key");
  TlsFiles files{dir.Join("ca.crt"), dir.Join("server.crt"), dir.Join("server.key"),
                 absl::Seconds(1)};
  StartServer(files);

  // A fresh connection each time (a local subchannel pool: no reuse).
  auto server_identity = [&] {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
        MakeChannelCredentials(SharedPki().Identity("app-catagram"));
    EXPECT_TRUE(creds.ok());
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel =
        grpc::CreateCustomChannel(absl::StrCat("localhost:", server_->port()), *creds, args);
    return Echo(channel, "hi", absl::Seconds(2)).server_identity;
  };
  EXPECT_EQ(server_identity(), "spiffe://coffer.local/kms");

  copy(other.key_file, "server.key");
  copy(other.cert_file, "server.crt");
  EXPECT_TRUE(WaitFor([&] { return server_identity() == "spiffe://coffer.local/app/other"; },
                      absl::Seconds(10)));
}

// ---- CallUnary: one unary client call over a real mTLS channel ----

// Shaped like a generated stub, over the raw Echo method.
class EchoStub {
 public:
  explicit EchoStub(std::shared_ptr<grpc::Channel> channel) : channel_(std::move(channel)) {}
  grpc::Status Call(grpc::ClientContext* context, const grpc::ByteBuffer& request,
                    grpc::ByteBuffer* response) {
    return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(),
        grpc::internal::RpcMethod(kEchoMethod, grpc::internal::RpcMethod::NORMAL_RPC), context,
        request, response);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
};

// A loopback port nothing listens on (bound to find a free one, then closed).
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

CallOptions Options(absl::Duration timeout, const std::string& peer) {
  CallOptions options;
  options.timeout = timeout;
  options.peer = peer;
  return options;
}

TEST_F(RpcServerTest, CallUnaryReturnsTheResponseAfterThePrepareHook) {
  StartServer();
  auto channel = Connect(server_->port(), SharedPki().Identity("store"));
  EchoStub stub(channel);
  CallOptions options = Options(absl::Seconds(5), "coffer-kms");
  int prepared = 0;
  options.prepare = [&](grpc::ClientContext& context) {
    ++prepared;
    context.AddMetadata("x-coffer-test", "1");
  };
  absl::StatusOr<grpc::ByteBuffer> reply =
      CallUnary(&stub, &EchoStub::Call, ToBuffer("hello"), options);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(FromBuffer(*reply), "spiffe://coffer.local/store");
  EXPECT_EQ(prepared, 1);

  // A generated stub works the same way.
  auto health = Health::NewStub(channel);
  HealthCheckRequest request;
  absl::StatusOr<HealthCheckResponse> checked =
      CallUnary(health.get(), &Health::Stub::Check, request, options);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_EQ(checked->status(), HealthCheckResponse::SERVING);
  request.set_service("no.such.Service");
  checked = CallUnary(health.get(), &Health::Stub::Check, request, options);
  EXPECT_EQ(checked.status().code(), absl::StatusCode::kNotFound);  // not a transport failure
  EXPECT_EQ(ErrorReason(checked.status()), "");
}

TEST(CallUnaryTest, AClosedPortIsUnavailableNamingThePeer) {
  ChannelOptions channel;
  channel.target = absl::StrCat("localhost:", ClosedPort());
  channel.tls = SharedPki().Identity("store");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> made = MakeChannel(std::move(channel));
  ASSERT_TRUE(made.ok()) << made.status();
  EchoStub stub(*made);
  absl::StatusOr<grpc::ByteBuffer> reply =
      CallUnary(&stub, &EchoStub::Call, ToBuffer("hello"), Options(absl::Seconds(5), "coffer-kms"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(reply.status()), reason::kUnavailable);
  EXPECT_THAT(std::string(reply.status().message()),
              ::testing::StartsWith("coffer-kms unavailable: "));
}

TEST_F(RpcServerTest, CallUnaryKeepsTheReasonAndCodeOfAServerError) {
  StartServer();
  EchoStub stub(Connect(server_->port(), SharedPki().Identity("store")));
  absl::StatusOr<grpc::ByteBuffer> reply = CallUnary(&stub, &EchoStub::Call, ToBuffer("fail"),
                                                     Options(absl::Seconds(5), "coffer-store"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reply.status().message(), "Secret 'x' not found");
  auto detail = GetErrorDetail(reply.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->reason, reason::kResourceNotFound);
  EXPECT_EQ(detail->resource, "x");
  EXPECT_EQ(detail->field, "secret_id");
}

TEST_F(RpcServerTest, CallUnaryAppliesTheDeadline) {
  StartServer();
  EchoStub stub(Connect(server_->port(), SharedPki().Identity("store")));
  CallOptions options = Options(absl::Milliseconds(300), "coffer-store");
  std::chrono::system_clock::time_point deadline;
  options.prepare = [&](grpc::ClientContext& context) { deadline = context.deadline(); };
  const auto before = std::chrono::system_clock::now();
  const absl::Time start = absl::Now();
  absl::StatusOr<grpc::ByteBuffer> reply =
      CallUnary(&stub, &EchoStub::Call, ToBuffer("slow:20000"), options);
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(deadline, before + std::chrono::milliseconds(300));
  EXPECT_LE(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(5));
  ASSERT_FALSE(reply.ok());
  // DEADLINE_EXCEEDED without a reason: the peer did not answer in time.
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(reply.status()), reason::kUnavailable);
  EXPECT_THAT(std::string(reply.status().message()),
              ::testing::StartsWith("coffer-store unavailable: "));

  // An infinite timeout sets no deadline.
  options.timeout = absl::InfiniteDuration();
  reply = CallUnary(&stub, &EchoStub::Call, ToBuffer("hi"), options);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(deadline, std::chrono::system_clock::time_point::max());
}

TEST(RpcServerStartTest, MissingTlsFileIsInvalidArgumentNamingIt) {
  HealthStatus health;
  ServerOptions options;
  options.tls = SharedPki().Identity("kms");
  options.tls.key_file = "/nonexistent/kms.key";
  auto server = Server::Start(std::move(options), {}, &health);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("key_file"));
  EXPECT_THAT(server.status().message(), HasSubstr("/nonexistent/kms.key"));

  TlsFiles unset = SharedPki().Identity("kms");
  unset.ca_file.clear();
  absl::Status status = CheckTlsFiles(unset);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("ca_file"));
  EXPECT_TRUE(CheckTlsFiles(SharedPki().Identity("kms")).ok());

  ChannelOptions channel;
  channel.target = "localhost:1";
  channel.tls = SharedPki().Identity("store");
  channel.tls.cert_file = "/nonexistent/store.crt";
  auto made = MakeChannel(std::move(channel));
  EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(made.status().message(), HasSubstr("/nonexistent/store.crt"));
}

TEST(RpcServerStartTest, PortInUseIsUnavailableNamingTheAddress) {
  HealthStatus health;
  ServerOptions first;
  first.tls = SharedPki().Identity("kms");
  auto a = Server::Start(std::move(first), {}, &health);
  ASSERT_TRUE(a.ok()) << a.status();

  const std::string taken = absl::StrCat("127.0.0.1:", (*a)->port());
  HealthStatus health2;
  ServerOptions second;
  second.tls = SharedPki().Identity("kms");
  second.listen_address = taken;
  auto b = Server::Start(std::move(second), {}, &health2);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(b.status().message(), HasSubstr(taken));

  HealthStatus health3;
  ServerOptions third;
  third.tls = SharedPki().Identity("kms");
  third.health_listen_address = taken;
  auto c = Server::Start(std::move(third), {}, &health3);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c.status().message(), HasSubstr(taken));
  EXPECT_NE(health3.Get(""), HealthCheckResponse::NOT_SERVING);  // untouched
}

TEST(ShutdownSignalTest, WaitReturnsTheSignal) {
  // gtest runs tests on the main thread; gRPC threads started earlier do not
  // have the signals blocked, so deliver to this thread only.
  BlockShutdownSignals();
  std::thread sender([self = pthread_self()] { pthread_kill(self, SIGTERM); });
  EXPECT_EQ(WaitForShutdownSignal(), SIGTERM);
  sender.join();
}

TEST(SubprocessTest, RunsWithEnvironmentAndCapturesOutput) {
  testing::Subprocess child({"sh", "-c", "echo out-$COFFER_X; echo err >&2; exit 3"},
                            {{"COFFER_X", "42"}});
  ASSERT_TRUE(child.Start().ok());
  EXPECT_EQ(child.Wait(), 3);
  EXPECT_THAT(child.Output(), HasSubstr("out-42"));
  EXPECT_THAT(child.Output(), HasSubstr("err"));

  testing::Subprocess sleeper({"sleep", "30"});
  ASSERT_TRUE(sleeper.Start().ok());
  EXPECT_TRUE(sleeper.running());
  EXPECT_EQ(sleeper.Wait(absl::Milliseconds(50)), -1);
  sleeper.Signal(SIGTERM);
  EXPECT_EQ(sleeper.Wait(), 128 + SIGTERM);

  testing::Subprocess missing({"/nonexistent/binary"});
  EXPECT_FALSE(missing.Start().ok());
}

}  // namespace
}  // namespace coffer::rpc
