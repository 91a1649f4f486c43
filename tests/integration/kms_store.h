// kms_store.h: what the end-to-end suites share to bring up Coffer itself: a
// dev-mode coffer-kms and a coffer-store backed by it, the TLS flags of a
// service, the real cofferctl, and a unary call with a deadline.
//
//   testing::TempDir dir;
//   std::unique_ptr<ServiceProcess> kms, store;
//   ASSERT_TRUE(StartKmsAndStore(dir, {"--log_level=debug"}, &kms, &store).ok());
//   auto stub = sm::SecretsManager::NewStub(store->Channel("cofferctl"));
//   grpc::Status s = Invoke(stub.get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
//
// The KMS runs with --maintenance_interval=1s, the store with
// --kms_check_interval=200ms and --kms_timeout=1s, each with its own
// certificate from testing::SharedPki().
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "libs/rpc/tls.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer::testing {

// Appends --tls_ca, --tls_cert and --tls_key for `tls` to `args`.
void TlsArgs(const rpc::TlsFiles& tls, std::vector<std::string>* args);

// Starts coffer-kms (data in <dir>/kms) and then coffer-store (data in
// <dir>/store, `store_flags` added to its own). On failure the status names
// the service and holds its output; `kms` and `store` keep what was made.
absl::Status StartKmsAndStore(const TempDir& dir, const std::vector<std::string>& store_flags,
                              std::unique_ptr<ServiceProcess>* kms,
                              std::unique_ptr<ServiceProcess>* store);
// The same with `both_flags` given to both services (their storage, say).
absl::Status StartKmsAndStore(const TempDir& dir, const std::vector<std::string>& both_flags,
                              const std::vector<std::string>& store_flags,
                              std::unique_ptr<ServiceProcess>* kms,
                              std::unique_ptr<ServiceProcess>* store);

// `env` plus the TLS variables of the "cofferctl" identity (COFFER_CA,
// COFFER_CERT, COFFER_KEY): the environment cofferctl runs with in tests.
std::map<std::string, std::string> CofferctlEnv(const std::map<std::string, std::string>& env);

// Runs the real cofferctl with `args`, as the "cofferctl" identity, with
// `env` added to the TLS variables (COFFER_CA, COFFER_CERT, COFFER_KEY);
// waits at most 20 s. Returns (exit code, output).
std::pair<int, std::string> RunCofferctl(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env);

// What one run of cofferctl did, its two output streams apart.
struct CofferctlResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// RunCofferctl with `input` on cofferctl's standard input, and stdout and
// stderr kept apart (for --output=text, which must print the value alone,
// and for errors, which go to stderr only).
CofferctlResult RunCofferctlIo(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env,
                               const std::string& input = "");

// The port a libs/http server logged ("serving HTTP" ... "port":"N") in a
// process's output, or 0 before it did.
int LoggedHttpPort(const std::string& output);

// One unary call on `stub` with a 10 s deadline.
template <typename Stub, typename Req, typename Resp, typename Call>
grpc::Status Invoke(Stub* stub, Call call, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return (stub->*call)(&ctx, req, resp);
}

}  // namespace coffer::testing
