#include "tests/integration/kms_store.h"

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace coffer::testing {

void TlsArgs(const rpc::TlsFiles& tls, std::vector<std::string>* args) {
  args->push_back("--tls_ca=" + tls.ca_file);
  args->push_back("--tls_cert=" + tls.cert_file);
  args->push_back("--tls_key=" + tls.key_file);
}

absl::Status StartKmsAndStore(const TempDir& dir, const std::vector<std::string>& store_flags,
                              std::unique_ptr<ServiceProcess>* kms,
                              std::unique_ptr<ServiceProcess>* store) {
  return StartKmsAndStore(dir, {}, store_flags, kms, store);
}

absl::Status StartKmsAndStore(const TempDir& dir, const std::vector<std::string>& both_flags,
                              const std::vector<std::string>& store_flags,
                              std::unique_ptr<ServiceProcess>* kms,
                              std::unique_ptr<ServiceProcess>* store) {
  std::vector<std::string> kms_args = {"--data_dir=" + dir.Join("kms"), "--dev_mode",
                                       "--maintenance_interval=1s"};
  kms_args.insert(kms_args.end(), both_flags.begin(), both_flags.end());
  TlsArgs(SharedPki().Identity("kms"), &kms_args);
  *kms = std::make_unique<ServiceProcess>("coffer-kms", kms_args);
  if (absl::Status s = (*kms)->Start(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("kms: ", s.message(), "\n", (*kms)->Output()));
  }

  std::vector<std::string> store_args = {"--data_dir=" + dir.Join("store"),
                                         "--kms_address=" + (*kms)->address(),
                                         "--kms_check_interval=200ms", "--kms_timeout=1s"};
  TlsArgs(SharedPki().Identity("store"), &store_args);
  store_args.insert(store_args.end(), both_flags.begin(), both_flags.end());
  store_args.insert(store_args.end(), store_flags.begin(), store_flags.end());
  *store = std::make_unique<ServiceProcess>("coffer-store", store_args);
  if (absl::Status s = (*store)->Start(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("store: ", s.message(), "\n", (*store)->Output()));
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> CofferctlEnv(const std::map<std::string, std::string>& env) {
  const rpc::TlsFiles tls = SharedPki().Identity("cofferctl");
  std::map<std::string, std::string> all = {
      {"COFFER_CA", tls.ca_file}, {"COFFER_CERT", tls.cert_file}, {"COFFER_KEY", tls.key_file}};
  for (const auto& [k, v] : env) all[k] = v;
  return all;
}

std::pair<int, std::string> RunCofferctl(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {BinaryPath("cofferctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess ctl(argv, CofferctlEnv(env));
  if (absl::Status s = ctl.Start(); !s.ok()) return {-1, std::string(s.message())};
  int code = ctl.Wait(absl::Seconds(20));
  return {code, ctl.Output()};
}

CofferctlResult RunCofferctlIo(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env,
                               const std::string& input) {
  TempDir io;
  std::ofstream(io.Join("in"), std::ios::binary) << input;
  // sh sets up the redirections and then becomes cofferctl ($0).
  std::vector<std::string> argv = {"/bin/sh", "-c",
                                   absl::StrCat("exec \"$0\" \"$@\" <'", io.Join("in"), "' >'",
                                                io.Join("out"), "' 2>'", io.Join("err"), "'"),
                                   BinaryPath("cofferctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess ctl(argv, CofferctlEnv(env));
  CofferctlResult result;
  if (absl::Status s = ctl.Start(); !s.ok()) {
    result.err = std::string(s.message());
    return result;
  }
  result.code = ctl.Wait(absl::Seconds(20));
  result.out = ReadFile(io.Join("out"));
  result.err = ReadFile(io.Join("err"));
  return result;
}

int LoggedHttpPort(const std::string& output) {
  const size_t at = output.find("\"message\":\"serving HTTP\"");
  if (at == std::string::npos) return 0;
  const size_t p = output.find("\"port\":\"", at);
  if (p == std::string::npos) return 0;
  const size_t start = p + 8;
  int port = 0;
  return absl::SimpleAtoi(output.substr(start, output.find('"', start) - start), &port) ? port : 0;
}

}  // namespace coffer::testing
