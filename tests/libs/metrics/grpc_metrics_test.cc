// Unit tests of the probe's naming rules (no server needed).
#include "libs/metrics/grpc_metrics.h"

#include <prometheus/registry.h>

#include <memory>
#include <utility>

#include "gtest/gtest.h"

namespace coffer::metrics {
namespace {

TEST(GrpcCodeNameTest, UsesGoGrpcPrometheusSpelling) {
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::CANCELLED), "Canceled");
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::NOT_FOUND), "NotFound");
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::INVALID_ARGUMENT), "InvalidArgument");
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "Unauthenticated");
  EXPECT_STREQ(GrpcCodeName(static_cast<grpc::StatusCode>(99)), "Unknown");
  EXPECT_STREQ(GrpcCodeName(static_cast<grpc::StatusCode>(-1)), "Unknown");
}

TEST(RpcTypeNameTest, UsesGoGrpcPrometheusNames) {
  EXPECT_STREQ(RpcTypeName(RpcType::kUnary), "unary");
  EXPECT_STREQ(RpcTypeName(RpcType::kClientStream), "client_stream");
  EXPECT_STREQ(RpcTypeName(RpcType::kServerStream), "server_stream");
  EXPECT_STREQ(RpcTypeName(RpcType::kBidiStream), "bidi_stream");
}

TEST(SplitMethodNameTest, SplitsServiceAndMethod) {
  EXPECT_EQ(SplitMethodName("/grpc.health.v1.Health/Check"),
            std::make_pair(std::string("grpc.health.v1.Health"), std::string("Check")));
}

TEST(SplitMethodNameTest, MalformedNamesBecomeUnknown) {
  const auto unknown = std::make_pair(std::string("unknown"), std::string("unknown"));
  EXPECT_EQ(SplitMethodName(""), unknown);
  EXPECT_EQ(SplitMethodName("unknown"), unknown);
  EXPECT_EQ(SplitMethodName("/OnlyService"), unknown);
  EXPECT_EQ(SplitMethodName("//Method"), unknown);
  EXPECT_EQ(SplitMethodName("/Service/"), unknown);
  EXPECT_EQ(SplitMethodName("/a/b/c"), unknown);
}

TEST(IsKnownMethodTest, KnowsMethodsOfLinkedServices) {
  // health.proto is linked into this test (metrics_test.cc uses its stub).
  EXPECT_TRUE(IsKnownMethod("/grpc.health.v1.Health/Check"));
  EXPECT_TRUE(IsKnownMethod("/grpc.health.v1.Health/Watch"));
  EXPECT_FALSE(IsKnownMethod("/grpc.health.v1.Health/Nope"));
  EXPECT_FALSE(IsKnownMethod("/grpc.health.v1.Nope/Check"));
  EXPECT_FALSE(IsKnownMethod("/x.Y/M"));
  // Only the gRPC spelling of a method: not the dotted name, not a message.
  EXPECT_FALSE(IsKnownMethod("/grpc.health.v1/Health.Check"));
  EXPECT_FALSE(IsKnownMethod("/grpc.health.v1.Health.Check"));
  EXPECT_FALSE(IsKnownMethod("/grpc.health.v1/HealthCheckRequest"));
  EXPECT_FALSE(IsKnownMethod("unknown"));
  EXPECT_FALSE(IsKnownMethod(""));
}

TEST(RpcProbeTest, CachesSeriesPerMethodAndType) {
  auto registry = std::make_shared<prometheus::Registry>();
  GrpcMetrics probe(registry);
  const char* kCheck = "/grpc.health.v1.Health/Check";
  RpcProbe::Series* a = probe.server().For(kCheck, RpcType::kUnary);
  EXPECT_EQ(a->service, "grpc.health.v1.Health");
  EXPECT_EQ(a->method, "Check");
  EXPECT_EQ(probe.server().For(kCheck, RpcType::kUnary), a);
  EXPECT_NE(probe.server().For(kCheck, RpcType::kBidiStream), a);
  EXPECT_NE(probe.server().For("/grpc.health.v1.Health/Watch", RpcType::kUnary), a);
  EXPECT_NE(probe.client().For(kCheck, RpcType::kUnary), a);

  probe.server().Started(a);
  probe.server().Handled(a, grpc::StatusCode::OK, 0.001);
  probe.server().Handled(a, grpc::StatusCode::OK, 0.002);
  ASSERT_NE(a->handled[0], nullptr);
  EXPECT_EQ(a->handled[0]->Value(), 2);
  EXPECT_EQ(a->started->Value(), 1);
  EXPECT_EQ(a->handled[5], nullptr);  // NOT_FOUND never seen: no series
}

TEST(RpcProbeTest, ServerCountsUnknownMethodsInOneSeriesPerType) {
  auto registry = std::make_shared<prometheus::Registry>();
  GrpcMetrics probe(registry);
  RpcProbe::Series* unknown = probe.server().For("/x.Y/M1", RpcType::kBidiStream);
  EXPECT_EQ(unknown->service, "unknown");
  EXPECT_EQ(unknown->method, "unknown");
  EXPECT_EQ(probe.server().For("/x.Y/M2", RpcType::kBidiStream), unknown);
  EXPECT_EQ(probe.server().For("/grpc.health.v1.Health/Nope", RpcType::kBidiStream), unknown);
  EXPECT_EQ(probe.server().For("unknown", RpcType::kBidiStream), unknown);
  EXPECT_EQ(probe.server().For("/x.Y/M1", RpcType::kBidiStream), unknown);
  RpcProbe::Series* unary = probe.server().For("/x.Y/M1", RpcType::kUnary);
  EXPECT_NE(unary, unknown);
  EXPECT_EQ(unary->service, "unknown");
  EXPECT_NE(probe.server().For("/grpc.health.v1.Health/Check", RpcType::kBidiStream), unknown);
}

TEST(RpcProbeTest, ClientNamesEveryWellFormedMethod) {
  // The client side counts what our own stubs call: names stay as they are.
  auto registry = std::make_shared<prometheus::Registry>();
  GrpcMetrics probe(registry);
  RpcProbe::Series* a = probe.client().For("/p.S/M", RpcType::kUnary);
  EXPECT_EQ(a->service, "p.S");
  EXPECT_EQ(a->method, "M");
  EXPECT_EQ(probe.client().For("/p.S/M", RpcType::kUnary), a);
  EXPECT_NE(probe.client().For("/p.S/N", RpcType::kUnary), a);
}

TEST(LatencyBucketsTest, AreIncreasing) {
  const auto& b = LatencyBuckets();
  ASSERT_FALSE(b.empty());
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
}

}  // namespace
}  // namespace coffer::metrics
