// Method paths a client makes up must not create metric series: a real
// Coffer server (libs/rpc: mTLS, callback health service, reflection) with
// the metrics interceptor, called through a generic stub.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/metrics/metrics.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/health.h"
#include "libs/rpc/server.h"
#include "tests/testing/test_env.h"

namespace coffer::metrics {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

constexpr char kReflectionMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

class UnknownMethodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rpc::ServerOptions options;
    options.tls = testing::SharedPki().Identity("store");
    options.interceptors.push_back(metrics_->ServerInterceptorFactory());
    absl::StatusOr<std::unique_ptr<rpc::Server>> server =
        rpc::Server::Start(std::move(options), {}, &health_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    health_.Set("", true);

    rpc::ChannelOptions channel;
    channel.target = absl::StrCat("localhost:", server_->port());
    channel.tls = testing::SharedPki().Identity("cofferctl");
    absl::StatusOr<std::shared_ptr<grpc::Channel>> made = rpc::MakeChannel(std::move(channel));
    ASSERT_TRUE(made.ok()) << made.status();
    channel_ = *std::move(made);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  // A unary call of `method` with an empty request through a generic stub.
  grpc::Status CallGeneric(const std::string& method) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status status) { done.set_value(std::move(status)); });
    return done.get_future().get();
  }

  grpc::Status CheckHealth() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckResponse response;
    return Health::NewStub(channel_)->Check(&context, HealthCheckRequest(), &response);
  }

  // list_services on the reflection stream.
  grpc::Status ListServices() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel_.get(),
            grpc::internal::RpcMethod(kReflectionMethod, grpc::internal::RpcMethod::BIDI_STREAMING),
            &context));
    // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
    grpc::Slice slice(std::string("\x3a\x00", 2));
    grpc::ByteBuffer request(&slice, 1);
    stream->Write(request);
    stream->WritesDone();
    grpc::ByteBuffer response;
    while (stream->Read(&response)) {
    }
    return stream->Finish();
  }

  // Declaration order: the server goes before the health state it uses.
  std::unique_ptr<Metrics> metrics_ = Metrics::Create("store");
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The label sets (without grpc_code) of the grpc_server_started_total lines.
std::set<std::string> ServerStartedSeries(const std::string& scrape) {
  std::set<std::string> series;
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (absl::ConsumePrefix(&line, "grpc_server_started_total{")) {
      series.insert(std::string(line.substr(0, line.find('}'))));
    }
  }
  return series;
}

TEST_F(UnknownMethodsTest, MadeUpMethodsShareOneUnknownSeries) {
  // Warm up the known methods so their series exist before and after.
  ASSERT_TRUE(CheckHealth().ok());
  ASSERT_TRUE(ListServices().ok());
  const std::string before = metrics_->Scrape();

  std::mt19937_64 random(std::random_device{}());
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) {
    const std::string tag = absl::StrCat(random());
    // Mostly the shape; some under real packages and services.
    switch (i % 4) {
      case 0:
      case 1:
        names.push_back(absl::StrCat("/x.Y/M", tag));
        break;
      case 2:
        names.push_back(absl::StrCat("/grpc.health.v1.Health/M", tag));
        break;
      default:
        names.push_back(absl::StrCat("/p", tag, ".S", tag, "/Get"));
        break;
    }
    ASSERT_EQ(CallGeneric(names.back()).error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << names.back();
  }
  ASSERT_TRUE(CheckHealth().ok());
  ASSERT_TRUE(ListServices().ok());

  const std::string scrape = metrics_->Scrape();
  for (const std::string& name : names) {
    // Every name ends in the random tag, or embeds it after "/p".
    const std::string tag = absl::EndsWith(name, "/Get") ? name.substr(2, name.find('.') - 2)
                                                         : name.substr(name.rfind('/') + 2);
    ASSERT_FALSE(absl::StrContains(scrape, tag)) << name << " leaked into\n" << scrape;
  }

  const std::set<std::string> series = ServerStartedSeries(scrape);
  int unknown = 0;
  for (const std::string& labels : series) {
    if (absl::StrContains(labels, "grpc_service=\"unknown\"")) {
      ++unknown;
      EXPECT_TRUE(absl::StrContains(labels, "grpc_method=\"unknown\"")) << labels;
    }
  }
  EXPECT_EQ(unknown, 1) << scrape;
  EXPECT_TRUE(series.count(
      "grpc_method=\"Check\",grpc_service=\"grpc.health.v1.Health\",grpc_type=\"unary\""))
      << scrape;
  EXPECT_TRUE(
      series.count("grpc_method=\"ServerReflectionInfo\","
                   "grpc_service=\"grpc.reflection.v1alpha.ServerReflection\","
                   "grpc_type=\"bidi_stream\""))
      << scrape;
  // Only the unknown series was added, with all 200 calls in it.
  EXPECT_EQ(series.size(), ServerStartedSeries(before).size() + 1) << scrape;
  EXPECT_TRUE(absl::StrContains(scrape,
                                "grpc_server_handled_total{grpc_code=\"Unimplemented\","
                                "grpc_method=\"unknown\",grpc_service=\"unknown\","
                                "grpc_type=\"bidi_stream\"} 200"))
      << scrape;

  // More made-up names add no line at all.
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(CallGeneric(absl::StrCat("/x.Y/M", random())).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  const std::string after = metrics_->Scrape();
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'),
            std::count(scrape.begin(), scrape.end(), '\n'));
}

}  // namespace
}  // namespace coffer::metrics
