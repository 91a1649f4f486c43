// End-to-end tests of the real coffer-kms binary over mutual TLS.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coffer/kms/v1/kms.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/crypto/random.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/status.h"
#include "tests/integration/http_get.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/service_process.h"
#include "tests/testing/etcd.h"
#include "tests/testing/test_env.h"

namespace coffer {
namespace {

using ::testing::HasSubstr;
namespace kmsv1 = ::coffer::kms::v1;

using testing::ServiceProcess;

// `storage`: the storage flags (none: RocksDB under data_dir).
std::unique_ptr<ServiceProcess> MakeKms(const std::string& data_dir,
                                        const std::vector<std::string>& storage) {
  rpc::TlsFiles tls = testing::SharedPki().Identity("kms");
  std::vector<std::string> args = {"--data_dir=" + data_dir,    "--dev_mode",
                                   "--tls_ca=" + tls.ca_file,   "--tls_cert=" + tls.cert_file,
                                   "--tls_key=" + tls.key_file, "--maintenance_interval=1s"};
  args.insert(args.end(), storage.begin(), storage.end());
  return std::make_unique<ServiceProcess>("coffer-kms", args);
}

std::unique_ptr<kmsv1::KeyManagement::Stub> KmsStub(const ServiceProcess& kms) {
  return kmsv1::KeyManagement::NewStub(kms.Channel("cofferctl"));
}

// Every test runs twice: the KMS on RocksDB, and on a real etcd member
// (under a prefix of the test's own).
class KmsE2ETest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::vector<std::string> storage;
    if (GetParam() == "etcd") {
      etcd_ = testing::EtcdCluster::Shared();
      ASSERT_NE(etcd_, nullptr);
      const rpc::TlsFiles tls = etcd_->client_tls();
      storage = {"--storage=etcd:" + etcd_->endpoint(0), "--etcd_ca=" + tls.ca_file,
                 "--etcd_cert=" + tls.cert_file, "--etcd_key=" + tls.key_file,
                 "--etcd_prefix=kms-e2e/" + absl::BytesToHexString(crypto::RandomString(8)) + "/"};
    }
    kms_ = MakeKms(dir_.Join("kms"), storage);
    ASSERT_TRUE(kms_->Start().ok()) << kms_->Output();
    stub_ = KmsStub(*kms_);
  }

  void TearDown() override {
    if (kms_ && kms_->running()) {
      EXPECT_EQ(kms_->Stop(), 0);
    }
  }

  template <typename Req, typename Resp, typename Call>
  grpc::Status Invoke(Call call, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ((*stub_).*call)(&ctx, req, resp);
  }

  std::string CreateKey() {
    kmsv1::CreateKeyRequest req;
    kmsv1::CreateKeyResponse resp;
    auto s = Invoke(&kmsv1::KeyManagement::Stub::CreateKey, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.key_metadata().key_id();
  }

  testing::TempDir dir_;
  testing::EtcdCluster* etcd_ = nullptr;  // etcd runs only
  std::unique_ptr<ServiceProcess> kms_;
  std::unique_ptr<kmsv1::KeyManagement::Stub> stub_;
};
INSTANTIATE_TEST_SUITE_P(Engines, KmsE2ETest, ::testing::Values("rocksdb", "etcd"),
                         [](const auto& info) { return info.param; });

grpc::Status DescribeWith(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = kmsv1::KeyManagement::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  kmsv1::ListKeysRequest req;
  kmsv1::ListKeysResponse resp;
  return stub->ListKeys(&ctx, req, &resp);
}

TEST_P(KmsE2ETest, ClientsWithoutAValidCertificateAreRefused) {
  // Trusted CA, no client certificate at all.
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = testing::ReadFile(testing::SharedPki().ca_file());
  auto anonymous = grpc::CreateChannel(absl::StrCat("localhost:", kms_->ports().grpc),
                                       grpc::SslCredentials(no_cert));
  EXPECT_FALSE(DescribeWith(anonymous).ok());

  // A certificate from another CA.
  rpc::TlsFiles foreign = testing::ForeignPki().Identity("cofferctl");
  foreign.ca_file = testing::SharedPki().ca_file();
  EXPECT_FALSE(DescribeWith(kms_->Channel(foreign)).ok());

  // Plaintext on the mTLS port.
  auto plaintext = grpc::CreateChannel(absl::StrCat("localhost:", kms_->ports().grpc),
                                       grpc::InsecureChannelCredentials());
  EXPECT_FALSE(DescribeWith(plaintext).ok());

  // And the real client is served.
  EXPECT_TRUE(DescribeWith(kms_->Channel(testing::SharedPki().Identity("cofferctl"))).ok());
}

TEST_P(KmsE2ETest, RoundTripsWithAndWithoutContext) {
  std::string key = CreateKey();
  for (bool with_context : {false, true}) {
    kmsv1::EncryptRequest enc;
    enc.set_key_id(key);
    enc.set_plaintext("the eagle lands at noon");
    if (with_context) (*enc.mutable_encryption_context())["purpose"] = "test";
    kmsv1::EncryptResponse encrypted;
    ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::Encrypt, enc, &encrypted).ok());
    EXPECT_EQ(encrypted.key_id(), "arn:coffer:kms:local:000000000000:key/" + key);

    kmsv1::DecryptRequest dec;
    dec.set_ciphertext_blob(encrypted.ciphertext_blob());
    *dec.mutable_encryption_context() = enc.encryption_context();
    kmsv1::DecryptResponse decrypted;
    ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::Decrypt, dec, &decrypted).ok());
    EXPECT_EQ(decrypted.plaintext(), "the eagle lands at noon");

    (*dec.mutable_encryption_context())["purpose"] = "other";
    grpc::Status wrong = Invoke(&kmsv1::KeyManagement::Stub::Decrypt, dec, &decrypted);
    EXPECT_EQ(wrong.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ErrorReason(rpc::FromGrpcStatus(wrong)), reason::kInvalidCiphertext);
  }
}

TEST_P(KmsE2ETest, KeysAndAliasesSurviveARestart) {
  std::string key = CreateKey();
  kmsv1::CreateAliasRequest alias;
  alias.set_alias_name("alias/restart");
  alias.set_target_key_id(key);
  kmsv1::CreateAliasResponse alias_resp;
  ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::CreateAlias, alias, &alias_resp).ok());
  kmsv1::EncryptRequest enc;
  enc.set_key_id("alias/restart");
  enc.set_plaintext("before restart");
  kmsv1::EncryptResponse encrypted;
  ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::Encrypt, enc, &encrypted).ok());

  ASSERT_EQ(kms_->Stop(), 0) << kms_->Output();
  ASSERT_TRUE(kms_->Start().ok()) << kms_->Output();
  stub_ = KmsStub(*kms_);

  kmsv1::DescribeKeyRequest describe;
  describe.set_key_id("alias/restart");
  kmsv1::DescribeKeyResponse described;
  ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::DescribeKey, describe, &described).ok());
  EXPECT_EQ(described.key_metadata().key_id(), key);
  kmsv1::DecryptRequest dec;
  dec.set_ciphertext_blob(encrypted.ciphertext_blob());
  kmsv1::DecryptResponse decrypted;
  ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::Decrypt, dec, &decrypted).ok());
  EXPECT_EQ(decrypted.plaintext(), "before restart");
}

void ForEachFile(const std::string& dir, const std::function<void(const std::string&)>& fn) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      ForEachFile(path, fn);
    } else if (S_ISREG(st.st_mode)) {
      fn(path);
    }
  }
  ::closedir(d);
}

TEST_P(KmsE2ETest, DataDirectoryNeverHoldsPlaintextKeysOrData) {
  std::string key = CreateKey();
  kmsv1::GenerateDataKeyRequest gen;
  gen.set_key_id(key);
  gen.set_key_spec(kmsv1::DATA_KEY_SPEC_AES_256);
  kmsv1::GenerateDataKeyResponse data_key;
  ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::GenerateDataKey, gen, &data_key).ok());
  ASSERT_EQ(data_key.plaintext().size(), 32u);
  const std::string marker =
      "DISTINCTIVE-PLAINTEXT-" + absl::BytesToHexString(crypto::RandomString(8));
  kmsv1::EncryptRequest enc;
  enc.set_key_id(key);
  enc.set_plaintext(marker);
  kmsv1::EncryptResponse encrypted;
  ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::Encrypt, enc, &encrypted).ok());
  kmsv1::DecryptRequest dec;
  dec.set_ciphertext_blob(encrypted.ciphertext_blob());
  kmsv1::DecryptResponse decrypted;
  ASSERT_TRUE(Invoke(&kmsv1::KeyManagement::Stub::Decrypt, dec, &decrypted).ok());
  ASSERT_EQ(kms_->Stop(), 0);  // flushes memtables into SST files too

  int files = 0;
  auto check = [&](const std::string& path) {
    std::string contents = testing::ReadFile(path);
    ++files;
    EXPECT_EQ(contents.find(data_key.plaintext()), std::string::npos) << path;
    EXPECT_EQ(contents.find(marker), std::string::npos) << path;
  };
  ForEachFile(dir_.Join("kms"), check);
  if (etcd_ != nullptr) {
    // The keystore is in etcd: its WAL and database hold the sealed material.
    const int local = files;
    ForEachFile(etcd_->data_dir(0), check);
    EXPECT_GE(files - local, 2);
  } else {
    EXPECT_GT(files, 3);
  }
  std::string logs = kms_->Output();
  EXPECT_EQ(logs.find(marker), std::string::npos);
  EXPECT_EQ(logs.find(absl::Base64Escape(data_key.plaintext())), std::string::npos);
}

TEST_P(KmsE2ETest, HealthIsServingOnBothListeners) {
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("coffer.kms.v1.KeyManagement");
  for (auto channel : {kms_->Channel(testing::SharedPki().Identity("cofferctl")),
                       grpc::CreateChannel(absl::StrCat("127.0.0.1:", kms_->ports().health),
                                           grpc::InsecureChannelCredentials())}) {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health->Check(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
}

TEST_P(KmsE2ETest, ReflectionListsTheKmsService) {
  auto channel = kms_->Channel(testing::SharedPki().Identity("cofferctl"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(),
          grpc::internal::RpcMethod(
              "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
              grpc::internal::RpcMethod::BIDI_STREAMING),
          &ctx));
  // ServerReflectionRequest{list_services: ""} is field 7, length 0.
  const char request_bytes[] = {0x3a, 0x00};
  grpc::Slice slice(request_bytes, sizeof request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::ByteBuffer response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(bytes, HasSubstr("coffer.kms.v1.KeyManagement"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  while (stream->Read(&response)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_P(KmsE2ETest, MetricsShowTheCallsJustMade) {
  CreateKey();
  kmsv1::DescribeKeyRequest missing;
  missing.set_key_id("alias/none");
  kmsv1::DescribeKeyResponse resp;
  EXPECT_EQ(Invoke(&kmsv1::KeyManagement::Stub::DescribeKey, missing, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto page = testing::HttpGet(kms_->ports().metrics, "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("grpc_server_handled_total{"));
  EXPECT_THAT(*page, HasSubstr("grpc_method=\"CreateKey\""));
  EXPECT_THAT(*page, HasSubstr("grpc_code=\"NotFound\""));
  EXPECT_THAT(*page, HasSubstr("grpc_service=\"coffer.kms.v1.KeyManagement\""));
  EXPECT_THAT(*page, HasSubstr("coffer_build_info{"));
  EXPECT_THAT(*page, HasSubstr("coffer_kms_keys{"));
}

// The README's cofferctl session, through the real binary.
TEST_P(KmsE2ETest, CofferctlSession) {
  const std::map<std::string, std::string> env = {
      {"COFFER_ADDRESS", absl::StrCat("localhost:", kms_->ports().grpc)}};
  auto run = [&](const std::vector<std::string>& args) { return testing::RunCofferctl(args, env); };
  auto [code, created] = run({"kms", "create-key", "--description=demo key"});
  ASSERT_EQ(code, 0) << created;
  EXPECT_THAT(created, HasSubstr("\"key_state\": \"KEY_STATE_ENABLED\""));
  size_t id_pos = created.find("\"key_id\": \"");
  ASSERT_NE(id_pos, std::string::npos);
  std::string key_id = created.substr(id_pos + 11, 36);

  auto [alias_code, alias_out] =
      run({"kms", "create-alias", "--alias-name=alias/demo", "--target-key-id=" + key_id});
  ASSERT_EQ(alias_code, 0) << alias_out;

  std::string plain = dir_.Join("plain.txt");
  std::string blob = dir_.Join("blob.bin");
  std::string back = dir_.Join("back.txt");
  { std::ofstream(plain) << "hello from cofferctl"; }
  auto [enc_code, enc_out] =
      run({"kms", "encrypt", "--key-id=alias/demo", "--plaintext-file=" + plain,
           "--encryption-context", "app=demo", "--output-file=" + blob});
  ASSERT_EQ(enc_code, 0) << enc_out;
  auto [dec_code, dec_out] = run({"kms", "decrypt", "--ciphertext-blob-file=" + blob,
                                  "--encryption-context", "app=demo", "--output-file=" + back});
  ASSERT_EQ(dec_code, 0) << dec_out;
  EXPECT_EQ(testing::ReadFile(back), "hello from cofferctl");

  auto [bad_code, bad_out] = run({"kms", "decrypt", "--ciphertext-blob-file=" + blob});
  EXPECT_EQ(bad_code, 254);
  EXPECT_THAT(bad_out, HasSubstr("InvalidCiphertextException: "));

  // The plaintext from stdin, the ciphertext as base64 text; back through
  // fileb:// and stdin, each printed alone.
  testing::CofferctlResult encrypted =
      testing::RunCofferctlIo({"kms", "encrypt", "--key-id=alias/demo", "--plaintext", "-",
                               "--encryption-context", "app=demo", "--output", "text"},
                              env, "from stdin\n");
  ASSERT_EQ(encrypted.code, 0) << encrypted.err;
  ASSERT_TRUE(absl::EndsWith(encrypted.out, "\n"));
  std::string ciphertext;
  ASSERT_TRUE(absl::Base64Unescape(encrypted.out.substr(0, encrypted.out.size() - 1), &ciphertext))
      << encrypted.out;
  const std::string blob2 = dir_.Join("blob2.bin");
  std::ofstream(blob2, std::ios::binary) << ciphertext;
  testing::CofferctlResult decrypted =
      testing::RunCofferctlIo({"kms", "decrypt", "--ciphertext-blob=fileb://" + blob2,
                               "--encryption-context=app=demo", "--output=text"},
                              env);
  ASSERT_EQ(decrypted.code, 0) << decrypted.err;
  EXPECT_EQ(decrypted.out, absl::Base64Escape("from stdin\n") + "\n");
  testing::CofferctlResult piped =
      testing::RunCofferctlIo({"kms", "decrypt", "--ciphertext-blob=-",
                               "--encryption-context=app=demo", "--output-file=" + back},
                              env, ciphertext);
  ASSERT_EQ(piped.code, 0) << piped.err;
  EXPECT_EQ(testing::ReadFile(back), "from stdin\n");

  // The key id alone, for $(...); a table to read.
  testing::CofferctlResult key =
      testing::RunCofferctlIo({"kms", "create-key", "--output=text"}, env);
  ASSERT_EQ(key.code, 0) << key.err;
  EXPECT_EQ(key.out.size(), 37u) << key.out;  // a UUID and a newline
  testing::CofferctlResult described = testing::RunCofferctlIo(
      {"kms", "describe-key", "--key-id", key.out.substr(0, 36), "--output", "table"}, env);
  ASSERT_EQ(described.code, 0) << described.err;
  EXPECT_THAT(described.out, HasSubstr("\nkey_state  "));
  EXPECT_THAT(described.out, HasSubstr("  ENABLED\n"));
  testing::CofferctlResult aliases =
      testing::RunCofferctlIo({"kms", "list-aliases", "--output=table"}, env);
  ASSERT_EQ(aliases.code, 0) << aliases.err;
  EXPECT_THAT(aliases.out, HasSubstr("alias_name"));
  EXPECT_THAT(aliases.out, HasSubstr("\nalias/demo  "));
}

}  // namespace
}  // namespace coffer
