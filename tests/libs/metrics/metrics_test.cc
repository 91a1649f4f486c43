// Metrics end to end: a real in-process gRPC server and client with the
// interceptors installed, the text exposition, and the HTTP endpoint.
#include "libs/metrics/metrics.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace coffer::metrics {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

class FakeHealth final : public Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest* request,
                     HealthCheckResponse* response) override {
    if (!request->service().empty()) return grpc::Status(grpc::NOT_FOUND, "unknown service");
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
  grpc::Status Watch(grpc::ServerContext*, const HealthCheckRequest*,
                     grpc::ServerWriter<HealthCheckResponse>* writer) override {
    HealthCheckResponse response;
    response.set_status(HealthCheckResponse::SERVING);
    writer->Write(response);
    return grpc::Status::OK;
  }
};

// The value of the sample written exactly as `series` ("name{labels}"), or
// -1 if absent.
double SampleValue(const std::string& scrape, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double value = 0;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (absl::SimpleAtod(parts[0], &value)) return value;
  }
  return -1;
}

std::string CheckLabels(absl::string_view code = "") {
  std::string labels = "{";
  if (!code.empty()) absl::StrAppend(&labels, "grpc_code=\"", code, "\",");
  absl::StrAppend(&labels,
                  "grpc_method=\"Check\",grpc_service=\"grpc.health.v1.Health\","
                  "grpc_type=\"unary\"}");
  return labels;
}

// A Health server on 127.0.0.1:0 and a client, both with `metrics`'
// interceptors installed.
class InstrumentedHealth {
 public:
  explicit InstrumentedHealth(Metrics& metrics) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> server;
    server.push_back(metrics.ServerInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(server));
    server_ = builder.BuildAndStart();

    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> client;
    client.push_back(metrics.ClientInterceptorFactory());
    stub_ = Health::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials(),
        grpc::ChannelArguments(), std::move(client)));
  }
  ~InstrumentedHealth() {
    if (server_) server_->Shutdown();
  }

  bool started() const { return server_ != nullptr && port_ != 0; }
  Health::Stub& stub() { return *stub_; }

  grpc::Status Check(const std::string& service) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    return stub_->Check(&context, request, &response);
  }

  // 3 OK and 2 NOT_FOUND calls.
  void MakeCalls() {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Check("").ok());
    for (int i = 0; i < 2; ++i) ASSERT_EQ(Check("nope").error_code(), grpc::NOT_FOUND);
  }

 private:
  FakeHealth service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Health::Stub> stub_;
};

class MetricsGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(health_.started()); }

  grpc::Status Check(const std::string& service) { return health_.Check(service); }
  void MakeCalls() { health_.MakeCalls(); }

  std::unique_ptr<Metrics> metrics_ = Metrics::Create("test");
  InstrumentedHealth health_{*metrics_};
  Health::Stub* stub_ = &health_.stub();
};

TEST_F(MetricsGrpcTest, ServerCountsStartedHandledAndLatency) {
  MakeCalls();
  const std::string scrape = metrics_->Scrape();
  EXPECT_EQ(SampleValue(scrape, "grpc_server_started_total" + CheckLabels()), 5) << scrape;
  EXPECT_EQ(SampleValue(scrape, "grpc_server_handled_total" + CheckLabels("OK")), 3) << scrape;
  EXPECT_EQ(SampleValue(scrape, "grpc_server_handled_total" + CheckLabels("NotFound")), 2)
      << scrape;
  EXPECT_EQ(SampleValue(scrape, "grpc_server_handling_seconds_count" + CheckLabels()), 5) << scrape;
  EXPECT_GE(SampleValue(scrape, "grpc_server_handling_seconds_sum" + CheckLabels()), 0);
  // Every observation is at most +Inf; the 10 s bucket holds all fast calls.
  EXPECT_EQ(SampleValue(scrape,
                        "grpc_server_handling_seconds_bucket{grpc_method=\"Check\","
                        "grpc_service=\"grpc.health.v1.Health\",grpc_type=\"unary\","
                        "le=\"+Inf\"}"),
            5)
      << scrape;
}

TEST_F(MetricsGrpcTest, ClientCountsStartedHandledAndLatency) {
  MakeCalls();
  const std::string scrape = metrics_->Scrape();
  EXPECT_EQ(SampleValue(scrape, "grpc_client_started_total" + CheckLabels()), 5) << scrape;
  EXPECT_EQ(SampleValue(scrape, "grpc_client_handled_total" + CheckLabels("OK")), 3) << scrape;
  EXPECT_EQ(SampleValue(scrape, "grpc_client_handled_total" + CheckLabels("NotFound")), 2)
      << scrape;
  EXPECT_EQ(SampleValue(scrape, "grpc_client_handling_seconds_count" + CheckLabels()), 5) << scrape;
}

TEST_F(MetricsGrpcTest, ServerStreamingCallsAreTypedServerStream) {
  grpc::ClientContext context;
  HealthCheckRequest request;
  auto reader = stub_->Watch(&context, request);
  HealthCheckResponse response;
  while (reader->Read(&response)) {
  }
  ASSERT_TRUE(reader->Finish().ok());

  const std::string labels =
      "{grpc_code=\"OK\",grpc_method=\"Watch\",grpc_service=\"grpc.health.v1.Health\","
      "grpc_type=\"server_stream\"}";
  const std::string scrape = metrics_->Scrape();
  EXPECT_EQ(SampleValue(scrape, "grpc_server_handled_total" + labels), 1) << scrape;
  EXPECT_EQ(SampleValue(scrape, "grpc_client_handled_total" + labels), 1) << scrape;
}

TEST_F(MetricsGrpcTest, ClientCountsCallsThatNeverReachAServer) {
  // A port nobody listens on: the channel itself fails the call.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int dead_port = ntohs(addr.sin_port);  // bound, not listening
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> client;
  client.push_back(metrics_->ClientInterceptorFactory());
  auto stub = Health::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
      absl::StrCat("127.0.0.1:", dead_port), grpc::InsecureChannelCredentials(),
      grpc::ChannelArguments(), std::move(client)));
  grpc::ClientContext context;
  HealthCheckResponse response;
  EXPECT_EQ(stub->Check(&context, HealthCheckRequest(), &response).error_code(), grpc::UNAVAILABLE);
  close(fd);

  const std::string scrape = metrics_->Scrape();
  EXPECT_EQ(SampleValue(scrape, "grpc_client_handled_total" + CheckLabels("Unavailable")), 1)
      << scrape;
}

// {name -> value} of a sample line "metric{a="x",b="y"} 1".
std::map<std::string, std::string> LabelsOf(absl::string_view line) {
  std::map<std::string, std::string> labels;
  size_t pos = line.find('{');
  if (pos == absl::string_view::npos) return labels;
  ++pos;
  while (pos < line.size() && line[pos] != '}') {
    const size_t eq = line.find("=\"", pos);
    const size_t end = line.find('"', eq + 2);
    if (eq == absl::string_view::npos || end == absl::string_view::npos) break;
    labels[std::string(line.substr(pos, eq - pos))] =
        std::string(line.substr(eq + 2, end - eq - 2));
    pos = end + 1;
    if (pos < line.size() && line[pos] == ',') ++pos;
  }
  return labels;
}

TEST_F(MetricsGrpcTest, LabelsAreOnlyServiceMethodTypeAndCode) {
  MakeCalls();
  Check("a-caller-chosen-service-name-that-must-not-leak");
  const std::set<std::string> allowed_values = {"grpc.health.v1.Health", "Check", "unary", "OK",
                                                "NotFound"};
  int grpc_samples = 0;
  for (absl::string_view line : absl::StrSplit(metrics_->Scrape(), '\n')) {
    if (!absl::StartsWith(line, "grpc_")) continue;
    ++grpc_samples;
    const auto labels = LabelsOf(line);
    EXPECT_GE(labels.size(), 3u) << line;
    for (const auto& [name, value] : labels) {
      if (name == "le") continue;  // histogram bucket bound
      EXPECT_TRUE(name == "grpc_service" || name == "grpc_method" || name == "grpc_type" ||
                  name == "grpc_code")
          << "unexpected label " << name << " in " << line;
      EXPECT_TRUE(allowed_values.count(value)) << "unexpected value " << value << " in " << line;
    }
  }
  EXPECT_GT(grpc_samples, 0);
}

TEST(MetricsTest, BuildInfoIsOne) {
  auto metrics = Metrics::Create("kms");
  EXPECT_EQ(metrics->port(), 0);
  EXPECT_STRNE(CofferVersion(), "");
  const std::string series =
      absl::StrCat("coffer_build_info{component=\"kms\",version=\"", CofferVersion(), "\"}");
  EXPECT_EQ(SampleValue(metrics->Scrape(), series), 1) << metrics->Scrape();
}

TEST(MetricsTest, DomainMetricsOnTheRegistryAreScraped) {
  auto metrics = Metrics::Create("kms");
  auto& family = prometheus::BuildCounter()
                     .Name("coffer_kms_crypto_operations_total")
                     .Help("Crypto operations.")
                     .Register(*metrics->registry());
  family.Add({{"operation", "Encrypt"}}).Increment(4);
  EXPECT_EQ(
      SampleValue(metrics->Scrape(), "coffer_kms_crypto_operations_total{operation=\"Encrypt\"}"),
      4);
}

// A blocking HTTP/1.0 GET against 127.0.0.1:port; the whole response.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = send(fd, request.data() + sent, request.size() - sent, 0);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buf[4096];
    ssize_t n;
    // Until the server closes, or the body announced by Content-Length is in.
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
      response.append(buf, static_cast<size_t>(n));
      const size_t header_end = response.find("\r\n\r\n");
      const size_t length_at = response.find("Content-Length: ");
      size_t length = 0;
      if (header_end != std::string::npos && length_at < header_end &&
          absl::SimpleAtoi(absl::string_view(response).substr(
                               length_at + 16, response.find("\r\n", length_at) - length_at - 16),
                           &length) &&
          response.size() >= header_end + 4 + length) {
        break;
      }
    }
  }
  close(fd);
  return response;
}

TEST(MetricsHttpTest, ServesMetricsOverHttp) {
  auto metrics = Metrics::Start("127.0.0.1:0", "store");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_GT((*metrics)->port(), 0);
  InstrumentedHealth health(**metrics);
  ASSERT_TRUE(health.started());
  health.MakeCalls();
  prometheus::BuildCounter()
      .Name("coffer_store_dek_cache_hits_total")
      .Help("DEK cache hits.")
      .Register(*(*metrics)->registry())
      .Add({})
      .Increment(7);

  const std::string response = HttpGet((*metrics)->port(), "/metrics");
  ASSERT_FALSE(response.empty());
  const std::string status_line = response.substr(0, response.find("\r\n"));
  EXPECT_THAT(status_line, HasSubstr(" 200")) << response;
  EXPECT_THAT(response, HasSubstr("coffer_store_dek_cache_hits_total 7")) << response;
  EXPECT_THAT(response, HasSubstr("coffer_build_info{component=\"store\"")) << response;
  EXPECT_THAT(response, HasSubstr("grpc_server_started_total" + CheckLabels() + " 5")) << response;
  EXPECT_THAT(response, HasSubstr("grpc_server_handled_total" + CheckLabels("NotFound") + " 2"))
      << response;
  EXPECT_THAT(response, HasSubstr("grpc_client_handled_total" + CheckLabels("OK") + " 3"))
      << response;
}

TEST(MetricsHttpTest, StartFailsWithUnavailableWhenAddressIsTaken) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  auto metrics = Metrics::Start(address, "kms");
  close(fd);
  ASSERT_FALSE(metrics.ok());
  EXPECT_EQ(metrics.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(metrics.status().message()), HasSubstr(address));
}

TEST(MetricsHttpTest, SecondExposerOnSamePortFails) {
  auto first = Metrics::Start("127.0.0.1:0", "kms");
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Metrics::Start(absl::StrCat("127.0.0.1:", (*first)->port()), "kms");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace coffer::metrics
