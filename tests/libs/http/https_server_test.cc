// HttpsServer over real TLS with the development PKI, called by
// cpp-httplib's client: the handler sees the method, the raw path and
// query, every header in order and the body; limits answer with the
// server's refusal; TLS below 1.2 and plain HTTP are refused.
#include "libs/http/https_server.h"

#include <httplib.h>
#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace coffer::http {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpsServerOptions options;
    const rpc::TlsFiles tls = testing::SharedPki().Identity("gateway");
    options.tls_cert_file = tls.cert_file;
    options.tls_key_file = tls.key_file;
    options.max_body_bytes = 1024;
    options.max_headers = 16;
    options.error_response = [](int status) {
      return HttpResponse(status, "application/json", absl::StrCat("{\"refused\":", status, "}"));
    };
    auto server = HttpsServer::Start(options, [this](const HttpRequest& request) {
      absl::MutexLock lock(&mu_);
      last_ = request;
      HttpResponse response(201, "application/x-amz-json-1.1", "{\"ok\":true}");
      response.headers.emplace_back("x-amzn-RequestId", "r-1");
      response.sensitive = request.path == "/secret";
      return response;
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  std::unique_ptr<httplib::SSLClient> Client() {
    auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port());
    client->set_ca_cert_path(testing::SharedPki().ca_file().c_str());
    client->enable_server_certificate_verification(true);
    return client;
  }

  absl::Mutex mu_;
  HttpRequest last_;
  std::unique_ptr<HttpsServer> server_;
};

TEST_F(HttpsServerTest, TheHandlerSeesTheRequestAsSent) {
  auto client = Client();
  httplib::Headers headers = {
      {"X-Amz-Target", "secretsmanager.GetSecretValue"}, {"X-Repeat", "one"}, {"X-Repeat", "two"}};
  auto result = client->Post("/a%2Fb?x=1&y=%20", headers, "{\"SecretId\":\"s\"}",
                             "application/x-amz-json-1.1");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 201);
  EXPECT_EQ(result->body, "{\"ok\":true}");
  EXPECT_EQ(result->get_header_value("x-amzn-RequestId"), "r-1");
  EXPECT_EQ(result->get_header_value("Cache-Control"), "no-store");
  {
    absl::MutexLock lock(&mu_);  // released before the next request
    EXPECT_EQ(last_.method, "POST");
    EXPECT_EQ(last_.path, "/a%2Fb");  // not decoded
    EXPECT_EQ(last_.query, "x=1&y=%20");
    EXPECT_EQ(last_.body, "{\"SecretId\":\"s\"}");
    EXPECT_EQ(last_.headers["x-amz-target"], "secretsmanager.GetSecretValue");
    std::vector<std::pair<std::string, std::string>> repeats;
    for (const auto& h : last_.header_list) {
      if (h.first == "X-Repeat") repeats.push_back(h);
    }
    EXPECT_THAT(repeats, ElementsAre(Pair("X-Repeat", "one"), Pair("X-Repeat", "two")));
  }

  // A sensitive answer is sent whole before it is wiped, also to a client
  // that asks for "Connection: close" (Python's urllib does).
  testing::Subprocess python({"/usr/bin/python3", "-c",
                              absl::StrCat("import ssl, urllib.request\n"
                                           "c = ssl.create_default_context(cafile='",
                                           testing::SharedPki().ca_file(),
                                           "')\n"
                                           "r = urllib.request.urlopen('https://127.0.0.1:",
                                           server_->port(),
                                           "/secret', context=c, timeout=10)\n"
                                           "print(r.status, r.read().decode())\n")});
  ASSERT_TRUE(python.Start().ok());
  EXPECT_EQ(python.Wait(absl::Seconds(20)), 0) << python.Output();
  EXPECT_EQ(python.Output(), "201 {\"ok\":true}\n");
}

TEST_F(HttpsServerTest, LimitsAnswerWithTheRefusal) {
  auto client = Client();
  auto big = client->Post("/", std::string(1025, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(big->body, "{\"refused\":413}");
  httplib::Headers many;
  for (int i = 0; i < 17; ++i) many.emplace(absl::StrCat("X-H", i), "v");
  auto crowded = client->Get("/", many);
  ASSERT_TRUE(crowded);
  EXPECT_EQ(crowded->status, 431);
  EXPECT_EQ(crowded->body, "{\"refused\":431}");
  auto exact = client->Post("/", std::string(1024, 'x'), "application/json");
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->status, 201);
}

TEST_F(HttpsServerTest, OldTlsAndPlainHttpAreRefused) {
  auto old = Client();
  old->set_ca_cert_path(testing::SharedPki().ca_file().c_str());
  SSL_CTX_set_max_proto_version(old->ssl_context(), TLS1_1_VERSION);
  EXPECT_FALSE(old->Get("/"));
  httplib::Client plain("127.0.0.1", server_->port());
  plain.set_read_timeout(2, 0);
  auto answer = plain.Get("/");
  EXPECT_TRUE(!answer || answer->status != 201);
}

TEST(HttpsServerStartTest, BadOptionsAndFilesAreRefused) {
  HttpsServerOptions options;
  options.tls_cert_file = "/nonexistent.crt";
  options.tls_key_file = "/nonexistent.key";
  auto handler = [](const HttpRequest&) { return HttpResponse(); };
  EXPECT_EQ(HttpsServer::Start(options, handler).status().code(),
            absl::StatusCode::kInvalidArgument);
  const rpc::TlsFiles tls = testing::SharedPki().Identity("gateway");
  options.tls_cert_file = tls.cert_file;
  options.tls_key_file = testing::SharedPki().Identity("kms").key_file;  // not its key
  EXPECT_EQ(HttpsServer::Start(options, handler).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.tls_key_file = tls.key_file;
  options.listen_address = "127.0.0.1";
  EXPECT_EQ(HttpsServer::Start(options, handler).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::http
