#include "tests/integration/params_e2e_fixture.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "libs/common/errors.h"
#include "libs/crypto/random.h"
#include "libs/rpc/status.h"

namespace coffer::params_e2e {

std::string Reason(const grpc::Status& status) { return ErrorReason(rpc::FromGrpcStatus(status)); }

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

bool Services::Start() {
  absl::Status started =
      testing::StartKmsAndStore(dir,
                                {"--policy_interval=200ms",
                                 // The strictest level for the "nothing secret in logs" test.
                                 "--log_level=debug"},
                                &kms, &store);
  if (!started.ok()) {
    failure = started.ToString();
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

int Services::Health() {
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(kParamsService);
  HealthResponse resp;
  if (!health->Check(&ctx, req, &resp).ok()) return -1;
  return resp.status();
}

bool Services::WaitForServing() {
  return testing::WaitFor([&] { return Health() == HealthResponse::SERVING; }, absl::Seconds(20));
}

std::pair<int, int> Services::Stop() {
  int s = store && store->running() ? store->Stop() : 0;
  int k = kms && kms->running() ? kms->Stop() : 0;
  return {s, k};
}

}  // namespace coffer::params_e2e
