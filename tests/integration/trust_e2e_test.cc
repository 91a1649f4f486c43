// Trust end to end, with the real binaries: authorization by the development
// policy (tests/integration/policy.json), live policy reloads, and the
// hash-chained audit log (every call once, in order, durable before the
// answer, fail closed, nothing secret in it, verified by cofferctl).
//
//   TrustE2ETest  a fresh KMS + store per test (each test reads its audit files)
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/http_get.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

namespace sm = ::coffer::secrets::v1;
namespace kmsv1 = ::coffer::kms::v1;
using ::testing::HasSubstr;
using testing::Invoke;
using ::testing::Not;
using testing::ServiceProcess;

constexpr char kAdmin[] = "spiffe://coffer.local/admin/cofferctl";
constexpr char kOther[] = "spiffe://coffer.local/app/other";
constexpr char kDistinctive[] = "zebra-unicorn-4815162342-do-not-log";

// One audit record, by field (the records are flat JSON objects).
std::string Field(const std::string& line, const std::string& key) {
  const std::string open = "\"" + key + "\":\"";
  size_t at = line.find(open);
  if (at == std::string::npos) return "";
  at += open.size();
  size_t end = line.find('"', at);
  return line.substr(at, end - at);
}

// The audit files of a directory, oldest first.
std::vector<std::string> AuditFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (absl::EndsWith(e.path().string(), ".jsonl")) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> AuditLines(const std::string& dir) {
  std::vector<std::string> lines;
  for (const std::string& f : AuditFiles(dir)) {
    for (absl::string_view l : absl::StrSplit(testing::ReadFile(f), '\n', absl::SkipEmpty())) {
      lines.emplace_back(l);
    }
  }
  return lines;
}

class TrustE2ETest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(const std::vector<std::string>& store_flags) {
    kms_.reset();
    store_.reset();
    ASSERT_TRUE(testing::StartKmsAndStore(dir_, store_flags, &kms_, &store_).ok())
        << (store_ ? store_->Output() : "");
  }

  std::unique_ptr<sm::SecretsManager::Stub> Secrets(const std::string& identity) {
    return sm::SecretsManager::NewStub(store_->Channel(identity));
  }

  grpc::Status Create(const std::string& name, const std::string& value) {
    sm::CreateSecretRequest req;
    req.set_name(name);
    req.set_secret_string(value);
    sm::CreateSecretResponse resp;
    return Invoke(Secrets("cofferctl").get(), &sm::SecretsManager::Stub::CreateSecret, req, &resp);
  }

  grpc::Status Get(const std::string& identity, const std::string& id,
                   std::string* request_id = nullptr) {
    sm::GetSecretValueRequest req;
    req.set_secret_id(id);
    sm::GetSecretValueResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = Secrets(identity)->GetSecretValue(&ctx, req, &resp);
    if (request_id != nullptr) {
      auto it = ctx.GetServerInitialMetadata().find("x-request-id");
      if (it != ctx.GetServerInitialMetadata().end()) {
        *request_id = std::string(it->second.data(), it->second.size());
      }
    }
    return s;
  }

  std::string StoreMetrics() {
    return testing::HttpGet(store_->ports().metrics, "/metrics").value_or("");
  }

  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> kms_, store_;
};

TEST_F(TrustE2ETest, CatagramReadsItsSecretsAndNothingElseAndCannotWrite) {
  ASSERT_TRUE(Create("demo/catagram/db", "cat-password").ok());
  ASSERT_TRUE(Create("demo/postgres/master", "admin-password").ok());
  EXPECT_TRUE(Get("app-catagram", "demo/catagram/db").ok());
  grpc::Status denied = Get("app-catagram", "demo/postgres/master");
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(),
              HasSubstr("spiffe://coffer.local/app/catagram is not authorized to perform "
                        "secretsmanager:GetSecretValue on demo/postgres/master"));
  EXPECT_THAT(denied.error_message(), Not(HasSubstr("admin-password")));

  sm::PutSecretValueRequest put;
  put.set_secret_id("demo/catagram/db");
  put.set_secret_string("chosen-by-the-app");
  sm::PutSecretValueResponse put_resp;
  EXPECT_EQ(Invoke(Secrets("app-catagram").get(), &sm::SecretsManager::Stub::PutSecretValue, put,
                   &put_resp)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  sm::ListSecretsRequest list;
  sm::ListSecretsResponse listed;
  ASSERT_TRUE(
      Invoke(Secrets("app-catagram").get(), &sm::SecretsManager::Stub::ListSecrets, list, &listed)
          .ok());
  ASSERT_EQ(listed.secret_list_size(), 1);
  EXPECT_EQ(listed.secret_list(0).name(), "demo/catagram/db");
}

TEST_F(TrustE2ETest, AppOtherIsDeniedEverythingCountedAndAudited) {
  ASSERT_TRUE(Create("demo/catagram/db", "cat-password").ok());
  EXPECT_EQ(Get("app-other", "demo/catagram/db").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  sm::DeleteSecretRequest del;
  del.set_secret_id("demo/catagram/db");
  del.set_force_delete_without_recovery(true);
  sm::DeleteSecretResponse del_resp;
  EXPECT_EQ(
      Invoke(Secrets("app-other").get(), &sm::SecretsManager::Stub::DeleteSecret, del, &del_resp)
          .error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  sm::ListSecretsResponse listed;
  ASSERT_TRUE(Invoke(Secrets("app-other").get(), &sm::SecretsManager::Stub::ListSecrets,
                     sm::ListSecretsRequest(), &listed)
                  .ok());
  EXPECT_EQ(listed.secret_list_size(), 0);

  const std::string metrics = StoreMetrics();
  EXPECT_THAT(metrics,
              HasSubstr("coffer_authz_denied_total{action=\"secretsmanager:GetSecretValue\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("coffer_authz_denied_total{action=\"secretsmanager:DeleteSecret\"} 1"));
  int denied_records = 0;
  for (const std::string& line : AuditLines(store_->audit_dir())) {
    if (Field(line, "principal") == kOther && Field(line, "code") == "PERMISSION_DENIED") {
      ++denied_records;
      EXPECT_EQ(Field(line, "detail"), "AccessDeniedException") << line;
    }
  }
  EXPECT_EQ(denied_records, 2);
}

TEST_F(TrustE2ETest, OnlyTheStoreUnwrapsSecretsDataKeysAndBuiltInKeysAreCoffers) {
  ASSERT_TRUE(Create("demo/catagram/db", "cat-password").ok());  // creates the built-in key
  auto kms = kmsv1::KeyManagement::NewStub(kms_->Channel("cofferctl"));
  kmsv1::GenerateDataKeyRequest gen;
  gen.set_key_id("alias/coffer/secretsmanager");
  gen.set_number_of_bytes(32);
  (*gen.mutable_encryption_context())["SecretARN"] =
      "arn:coffer:secretsmanager:local:000000000000:secret:demo/catagram/db-AbCdEf";
  kmsv1::GenerateDataKeyResponse gen_resp;
  grpc::Status s = Invoke(kms.get(), &kmsv1::KeyManagement::Stub::GenerateDataKey, gen, &gen_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("only coffer-store"));

  // A data key the store would hold (same key, same context, made by the
  // store's identity) cannot be unwrapped by the administrator either.
  auto as_store = kmsv1::KeyManagement::NewStub(kms_->Channel("store"));
  ASSERT_TRUE(
      Invoke(as_store.get(), &kmsv1::KeyManagement::Stub::GenerateDataKey, gen, &gen_resp).ok());
  kmsv1::DecryptRequest decrypt;
  decrypt.set_ciphertext_blob(gen_resp.ciphertext_blob());
  *decrypt.mutable_encryption_context() = gen.encryption_context();
  kmsv1::DecryptResponse plain;
  EXPECT_EQ(Invoke(kms.get(), &kmsv1::KeyManagement::Stub::Decrypt, decrypt, &plain).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(plain.plaintext().empty());

  kmsv1::DisableKeyRequest disable;
  disable.set_key_id("alias/coffer/secretsmanager");
  kmsv1::DisableKeyResponse disabled;
  EXPECT_EQ(
      Invoke(kms.get(), &kmsv1::KeyManagement::Stub::DisableKey, disable, &disabled).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  // Writes still work: the key was not disabled.
  EXPECT_TRUE(Create("demo/catagram/other", "x").ok());
}

TEST_F(TrustE2ETest, AWorkerCertificateCannotWriteOutsideARotation) {
  ASSERT_TRUE(Create("demo/catagram/db", "cat-password").ok());
  sm::PutSecretValueRequest put;
  put.set_secret_id("demo/catagram/db");
  put.set_secret_string("chosen-by-a-worker");
  sm::PutSecretValueResponse resp;
  grpc::Status s = Invoke(Secrets("worker-postgres").get(),
                          &sm::SecretsManager::Stub::PutSecretValue, put, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("only the secret it rotates"));
}

TEST_F(TrustE2ETest, APolicyEditTakesEffectWithoutRestart) {
  const std::string policy = dir_.Join("policy.json");
  const std::string base =
      testing::ReadFile(testing::SourceDir() + "/tests/integration/policy.json");
  std::ofstream(policy) << base;
  Start({"--policy_file=" + policy});
  ASSERT_TRUE(Create("demo/shared/db", "shared").ok());
  EXPECT_EQ(Get("app-other", "demo/shared/db").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Grant app/other the secret: an edit (written to a new file and renamed,
  // as editors and config management do) is picked up within a second.
  std::string edited = base;
  const std::string grant =
      R"({"effect": "Allow", "principals": ["spiffe://coffer.local/app/other"],
          "actions": ["secretsmanager:GetSecretValue"], "resources": ["demo/shared/*"]},)";
  edited.insert(edited.find('{', edited.find("\"statements\"")), grant);
  std::ofstream(policy + ".new") << edited;
  ASSERT_EQ(::rename((policy + ".new").c_str(), policy.c_str()), 0);
  EXPECT_TRUE(
      testing::WaitFor([&] { return Get("app-other", "demo/shared/db").ok(); }, absl::Seconds(10)));
  // A broken edit keeps the policy in force.
  std::ofstream(policy + ".new") << "{\"statements\": [";
  ASSERT_EQ(::rename((policy + ".new").c_str(), policy.c_str()), 0);
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_TRUE(Get("app-other", "demo/shared/db").ok());
  EXPECT_TRUE(Get("cofferctl", "demo/shared/db").ok());
  EXPECT_THAT(store_->Output(), HasSubstr("line 1"));

  // SIGHUP reloads at once (and does not stop the service): the original
  // policy again, so app/other loses the grant.
  std::ofstream(policy + ".new") << base;
  ASSERT_EQ(::rename((policy + ".new").c_str(), policy.c_str()), 0);
  ASSERT_EQ(::kill(store_->pid(), SIGHUP), 0);
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Get("app-other", "demo/shared/db").error_code() ==
               grpc::StatusCode::PERMISSION_DENIED;
      },
      absl::Seconds(10)));
  EXPECT_TRUE(store_->running());
  EXPECT_THAT(store_->Output(), HasSubstr("SIGHUP: reloading the policy"));
}

TEST_F(TrustE2ETest, EveryCallOfASessionIsAuditedOnceInOrderAndVerifies) {
  std::vector<std::pair<std::string, std::string>> calls;  // (action, request id)
  auto stub = Secrets("cofferctl");
  auto call = [&](const std::string& action, auto method, const auto& req, auto* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = (stub.get()->*method)(&ctx, req, resp);
    EXPECT_TRUE(s.ok()) << action << ": " << s.error_message();
    auto it = ctx.GetServerInitialMetadata().find("x-request-id");
    ASSERT_NE(it, ctx.GetServerInitialMetadata().end()) << action;
    calls.emplace_back(action, std::string(it->second.data(), it->second.size()));
  };
  sm::CreateSecretRequest create;
  create.set_name("audit/session");
  create.set_secret_string(kDistinctive);
  sm::CreateSecretResponse created;
  call("secretsmanager:CreateSecret", &sm::SecretsManager::Stub::CreateSecret, create, &created);
  sm::GetSecretValueRequest get;
  get.set_secret_id("audit/session");
  sm::GetSecretValueResponse got;
  call("secretsmanager:GetSecretValue", &sm::SecretsManager::Stub::GetSecretValue, get, &got);
  sm::PutSecretValueRequest put;
  put.set_secret_id("audit/session");
  put.set_secret_string(std::string(kDistinctive) + "-2");
  sm::PutSecretValueResponse put_resp;
  call("secretsmanager:PutSecretValue", &sm::SecretsManager::Stub::PutSecretValue, put, &put_resp);
  sm::DescribeSecretRequest describe;
  describe.set_secret_id("audit/session");
  sm::DescribeSecretResponse described;
  call("secretsmanager:DescribeSecret", &sm::SecretsManager::Stub::DescribeSecret, describe,
       &described);
  sm::DeleteSecretRequest del;
  del.set_secret_id("audit/session");
  del.set_force_delete_without_recovery(true);
  sm::DeleteSecretResponse deleted;
  call("secretsmanager:DeleteSecret", &sm::SecretsManager::Stub::DeleteSecret, del, &deleted);

  std::vector<std::pair<std::string, std::string>> audited;
  for (const std::string& line : AuditLines(store_->audit_dir())) {
    if (Field(line, "principal") != kAdmin) continue;
    audited.emplace_back(Field(line, "action"), Field(line, "request_id"));
    EXPECT_EQ(Field(line, "code"), "OK") << line;
    EXPECT_THAT(Field(line, "peer"), HasSubstr("127.0.0.1")) << line;
    if (Field(line, "action") != "secretsmanager:CreateSecret") {
      EXPECT_THAT(Field(line, "resource"), HasSubstr(":secret:audit/session-")) << line;
    }
  }
  EXPECT_EQ(audited, calls);

  // Nothing secret in any audit file of either service.
  for (const std::string& dir : {store_->audit_dir(), kms_->audit_dir()}) {
    for (const std::string& file : AuditFiles(dir)) {
      EXPECT_THAT(testing::ReadFile(file), Not(HasSubstr(kDistinctive))) << file;
    }
  }
  // The chain verifies (the KMS's too: the store's calls to it are audited).
  std::vector<std::string> args = {"audit", "verify"};
  for (const std::string& f : AuditFiles(store_->audit_dir())) args.push_back(f);
  auto [code, out] = testing::RunCofferctl(args, {});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("ok: "));
  args = {"audit", "verify"};
  for (const std::string& f : AuditFiles(kms_->audit_dir())) args.push_back(f);
  std::tie(code, out) = testing::RunCofferctl(args, {});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(testing::ReadFile(AuditFiles(kms_->audit_dir()).front()),
              HasSubstr("\"principal\":\"spiffe://coffer.local/store\""));

  // An edited record is reported at its number.
  const std::string file = AuditFiles(store_->audit_dir()).front();
  std::string text = testing::ReadFile(file);
  const size_t at = text.find("secretsmanager:GetSecretValue");
  ASSERT_NE(at, std::string::npos);
  text[at + 15] = 'X';
  std::ofstream(file, std::ios::trunc) << text;
  std::tie(code, out) = testing::RunCofferctl({"audit", "verify", file}, {});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("broken: record"));
}

TEST_F(TrustE2ETest, AnUnwritableAuditLogFailsCallsFastAndRaisesTheMetric) {
  ASSERT_TRUE(Create("demo/catagram/db", "cat-password").ok());
  // A full disk, for the store only: its files may not grow past the audit
  // file's size (a soft RLIMIT_FSIZE; writes fail with EFBIG).
  const int pid = store_->pid();
  ASSERT_GT(pid, 0);
  const std::string limit =
      absl::StrCat(std::filesystem::file_size(AuditFiles(store_->audit_dir()).back()));
  testing::Subprocess limit_fsize(
      {"/usr/bin/prlimit", "--pid", absl::StrCat(pid), "--fsize=" + limit + ":unlimited"});
  ASSERT_TRUE(limit_fsize.Start().ok());
  ASSERT_EQ(limit_fsize.Wait(), 0) << limit_fsize.Output();

  const absl::Time start = absl::Now();
  grpc::Status s = Get("cofferctl", "demo/catagram/db");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("audit log unavailable")) << store_->Output();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // Later calls are refused at once while the log cannot be written.
  EXPECT_EQ(Get("cofferctl", "demo/catagram/db").error_code(), grpc::StatusCode::UNAVAILABLE);
  const std::string metrics = StoreMetrics();
  EXPECT_THAT(metrics, Not(HasSubstr("coffer_audit_write_failures_total 0")));
  EXPECT_THAT(metrics, HasSubstr("coffer_audit_write_failures_total"));

  // Room again: the log recovers and calls succeed.
  testing::Subprocess unlimit(
      {"/usr/bin/prlimit", "--pid", absl::StrCat(pid), "--fsize=unlimited"});
  ASSERT_TRUE(unlimit.Start().ok());
  ASSERT_EQ(unlimit.Wait(), 0) << unlimit.Output();
  EXPECT_TRUE(testing::WaitFor([&] { return Get("cofferctl", "demo/catagram/db").ok(); },
                               absl::Seconds(10)));
}

TEST_F(TrustE2ETest, SigkillDuringLoadLosesNoRecordOfAnAcknowledgedCall) {
  ASSERT_TRUE(Create("demo/catagram/db", "cat-password").ok());
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        std::string id;
        if (Get("cofferctl", "demo/catagram/db", &id).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.insert(id);
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(800));
  store_->Kill();  // SIGKILL while calls are in flight
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_GT(acknowledged.size(), 10u);

  std::set<std::string> audited;
  for (const std::string& line : AuditLines(store_->audit_dir())) {
    audited.insert(Field(line, "request_id"));
  }
  for (const std::string& id : acknowledged) EXPECT_EQ(audited.count(id), 1u) << id;

  // A torn last record is repaired when the store starts again, and the
  // chain still verifies.
  ASSERT_TRUE(store_->Restart().ok()) << store_->Output();
  EXPECT_TRUE(Get("cofferctl", "demo/catagram/db").ok());
  std::vector<std::string> args = {"audit", "verify"};
  for (const std::string& f : AuditFiles(store_->audit_dir())) args.push_back(f);
  auto [code, out] = testing::RunCofferctl(args, {});
  EXPECT_EQ(code, 0) << out;
}

}  // namespace
}  // namespace coffer
