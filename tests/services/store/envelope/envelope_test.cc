// Envelope against a real KMS (KeyManager + KmsService) served in-process over
// mTLS, reached through the production GrpcKeyService.
#include "services/store/envelope/envelope.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/rpc/channel.h"
#include "libs/rpc/server.h"
#include "services/kms/ciphertext.h"
#include "services/kms/key_manager.h"
#include "services/kms/kms_service.h"
#include "tests/testing/test_env.h"

namespace coffer::store {
namespace {

constexpr char kAlias[] = "alias/coffer/secretsmanager";

class EnvelopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kms::KeyManagerOptions options;
    options.db_path = dir_.Join("keystore");
    options.sync_writes = false;
    auto store = kms::KeyManager::Open(options, crypto::SecureBuffer::Random(32));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    service_ = std::make_unique<kms::KmsService>(store_.get(), nullptr);

    rpc::ServerOptions server_options;
    server_options.listen_address = "127.0.0.1:0";
    server_options.tls = testing::SharedPki().Identity("kms");
    auto server = rpc::Server::Start(std::move(server_options), {service_.get()}, &health_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);

    rpc::ChannelOptions channel_options;
    channel_options.target = absl::StrCat("localhost:", server_->port());
    channel_options.tls = testing::SharedPki().Identity("store");
    auto channel = rpc::MakeChannel(std::move(channel_options));
    ASSERT_TRUE(channel.ok()) << channel.status();
    key_service_ = MakeGrpcKeyService(*channel, absl::Seconds(2));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  }

  std::string CreateKey() {
    auto created = store_->CreateKey(kms::v1::CreateKeyRequest());
    EXPECT_TRUE(created.ok()) << created.status();
    return created->key_metadata().key_id();
  }

  static void ExpectError(const absl::Status& status, absl::StatusCode code, const char* reason) {
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_EQ(ErrorReason(status), reason) << status;
  }

  static std::string Flip(std::string bytes, size_t pos) {
    bytes[pos] = static_cast<char>(bytes[pos] ^ 0x01);
    return bytes;
  }

  const EncryptionContext ctx_{
      {"SecretARN", "arn:coffer:secretsmanager:local:000000000000:secret:db-AbCdEf"},
      {"SecretVersionId", "v1"}};
  const std::string value_ = "hunter2-top-secret";

  testing::TempDir dir_;
  std::unique_ptr<kms::KeyManager> store_;
  std::unique_ptr<kms::KmsService> service_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<KeyService> key_service_;
  DataKeyCache cache_{{.max_entries = 100, .ttl = absl::Minutes(5)}};
  DataKeyCache no_cache_{{.max_entries = 100, .ttl = absl::ZeroDuration()}};

  Envelope Cached() { return Envelope(key_service_.get(), &cache_); }
  Envelope Uncached() { return Envelope(key_service_.get(), &no_cache_); }
};

TEST_F(EnvelopeTest, SealOpenRoundTrip) {
  Envelope envelope = Cached();
  auto sealed = envelope.Seal(kAlias, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->kms_key_arn.rfind("arn:coffer:kms:", 0), 0u) << sealed->kms_key_arn;
  EXPECT_EQ(sealed->ciphertext.find(value_), std::string::npos);
  EXPECT_EQ(cache_.size(), 1u);

  // Just written: served from the cache.
  auto opened = envelope.Open(ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), value_);
  EXPECT_EQ(cache_.hits(), 1u);

  // Through the KMS.
  auto again = Uncached().Open(ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->view(), value_);

  // A KMS unwrap fills the cache.
  cache_.Clear();
  ASSERT_TRUE(envelope.Open(ctx_, sealed->wrapped_data_key, sealed->ciphertext).ok());
  EXPECT_EQ(cache_.size(), 1u);
}

TEST_F(EnvelopeTest, EmptyValueRoundTrips) {
  auto sealed = Cached().Seal(kAlias, ctx_, "");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  auto opened = Uncached().Open(ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->empty());
}

TEST_F(EnvelopeTest, OpenWithAnotherContextIsDataLoss) {
  auto sealed = Cached().Seal(kAlias, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EncryptionContext other = ctx_;
  other["SecretVersionId"] = "v2";
  for (Envelope envelope : {Cached(), Uncached()}) {
    auto opened = envelope.Open(other, sealed->wrapped_data_key, sealed->ciphertext);
    ExpectError(opened.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
    EXPECT_EQ(opened.status().message().find(value_), std::string::npos);
  }
}

TEST_F(EnvelopeTest, TamperedCiphertextIsDataLoss) {
  auto sealed = Cached().Seal(kAlias, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  const std::string& ct = sealed->ciphertext;
  for (size_t pos : {size_t{0}, ct.size() / 2, ct.size() - 1}) {
    for (Envelope envelope : {Cached(), Uncached()}) {
      auto opened = envelope.Open(ctx_, sealed->wrapped_data_key, Flip(ct, pos));
      ExpectError(opened.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
    }
  }
  auto truncated = Cached().Open(ctx_, sealed->wrapped_data_key, ct.substr(0, 10));
  ExpectError(truncated.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
}

TEST_F(EnvelopeTest, TamperedWrappedKeyIsDataLoss) {
  auto sealed = Cached().Seal(kAlias, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  const std::string& wrapped = sealed->wrapped_data_key;
  for (size_t pos : {size_t{0}, size_t{1}, size_t{5}, wrapped.size() / 2, wrapped.size() - 1}) {
    auto opened = Uncached().Open(ctx_, Flip(wrapped, pos), sealed->ciphertext);
    ExpectError(opened.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
  }
  auto empty = Uncached().Open(ctx_, "", sealed->ciphertext);
  ExpectError(empty.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
}

TEST_F(EnvelopeTest, DisabledKmsKeyIsFailedPrecondition) {
  const std::string key_id = CreateKey();
  auto sealed = Cached().Seal(key_id, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  kms::v1::DisableKeyRequest disable;
  disable.set_key_id(key_id);
  ASSERT_TRUE(store_->DisableKey(disable).ok());

  auto refused = Cached().Seal(key_id, ctx_, value_);
  ExpectError(refused.status(), absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure);
  EXPECT_NE(refused.status().message().find("disabled"), std::string::npos) << refused.status();

  auto opened = Uncached().Open(ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ExpectError(opened.status(), absl::StatusCode::kFailedPrecondition, reason::kDecryptionFailure);
}

TEST_F(EnvelopeTest, MissingKmsKeyIsFailedPrecondition) {
  auto refused = Cached().Seal("alias/does-not-exist", ctx_, value_);
  ExpectError(refused.status(), absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure);
}

TEST_F(EnvelopeTest, KmsDownSealFailsFastOpenUsesCache) {
  auto sealed = Cached().Seal(kAlias, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  server_->Shutdown(absl::ZeroDuration());
  server_.reset();

  const absl::Time start = absl::Now();
  auto refused = Cached().Seal(kAlias, ctx_, value_);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ExpectError(refused.status(), absl::StatusCode::kUnavailable, reason::kEncryptionFailure);
  EXPECT_NE(refused.status().message().find("KMS unavailable"), std::string::npos)
      << refused.status();

  auto opened = Cached().Open(ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), value_);

  auto uncached = Uncached().Open(ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ExpectError(uncached.status(), absl::StatusCode::kUnavailable, reason::kDecryptionFailure);

  auto rewrap = Cached().Rewrap(ctx_, sealed->wrapped_data_key, kAlias);
  ExpectError(rewrap.status(), absl::StatusCode::kUnavailable, reason::kEncryptionFailure);
}

TEST_F(EnvelopeTest, RewrapToAnotherKey) {
  auto sealed = Cached().Seal(kAlias, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  const std::string key_id = CreateKey();

  auto rewrapped = Cached().Rewrap(ctx_, sealed->wrapped_data_key, key_id);
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status();
  const auto& [wrapped, arn] = *rewrapped;
  EXPECT_NE(wrapped, sealed->wrapped_data_key);
  EXPECT_NE(arn, sealed->kms_key_arn);
  EXPECT_EQ(arn.substr(arn.size() - key_id.size()), key_id);
  auto parsed = kms::ParseCiphertext(wrapped);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->key_id, key_id);

  // The value is untouched and opens with the new wrapped key, through the
  // KMS and through the cache.
  for (Envelope envelope : {Uncached(), Cached()}) {
    auto opened = envelope.Open(ctx_, wrapped, sealed->ciphertext);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->view(), value_);
  }

  kms::v1::DisableKeyRequest disable;
  disable.set_key_id(key_id);
  ASSERT_TRUE(store_->DisableKey(disable).ok());
  auto refused = Cached().Rewrap(ctx_, sealed->wrapped_data_key, key_id);
  ExpectError(refused.status(), absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure);
}

}  // namespace
}  // namespace coffer::store
