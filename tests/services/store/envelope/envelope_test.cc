// Envelope against a real KMS (KeyManager + KmsService) served in-process over
// mTLS, reached through the production GrpcKeyService (counted by a thin
// wrapper, to show which operations reach the KMS).
#include "services/store/envelope/envelope.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/errors.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/encryption_context.h"
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

// The production KeyService, counting the calls that reach the KMS.
class CountingKeyService : public KeyService {
 public:
  explicit CountingKeyService(KeyService* kms) : kms_(kms) {}
  absl::StatusOr<DataKey> GenerateDataKey(const std::string& key_id,
                                          const EncryptionContext& context) override {
    ++generated;
    return kms_->GenerateDataKey(key_id, context);
  }
  absl::StatusOr<crypto::SecureBuffer> Decrypt(const std::string& wrapped,
                                               const EncryptionContext& context) override {
    ++decrypted;
    return kms_->Decrypt(wrapped, context);
  }
  absl::StatusOr<std::pair<std::string, std::string>> ReEncrypt(
      const std::string& wrapped, const EncryptionContext& context,
      const std::string& destination_key_id) override {
    return kms_->ReEncrypt(wrapped, context, destination_key_id);
  }
  int generated = 0;
  int decrypted = 0;

 private:
  KeyService* kms_;
};

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
    grpc_kms_ = MakeGrpcKeyService(*channel, absl::Seconds(2));
    kms_ = std::make_unique<CountingKeyService>(grpc_kms_.get());
    cached_ = std::make_unique<Envelope>(kms_.get(), &cache_);
    uncached_ = std::make_unique<Envelope>(kms_.get(), &no_cache_);
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

  static constexpr char kArn[] = "arn:coffer:secretsmanager:local:000000000000:secret:db-AbCdEf";
  const EncryptionContext kek_{{"SecretARN", kArn}};
  const EncryptionContext ctx_{{"SecretARN", kArn}, {"SecretVersionId", "v1"}};
  const std::string value_ = "hunter2-top-secret";

  testing::TempDir dir_;
  std::unique_ptr<kms::KeyManager> store_;
  std::unique_ptr<kms::KmsService> service_;
  rpc::HealthStatus health_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<KeyService> grpc_kms_;
  std::unique_ptr<CountingKeyService> kms_;
  FakeClock clock_;
  DataKeyCache cache_{{.max_entries = 100, .ttl = absl::Minutes(5), .clock = &clock_}};
  DataKeyCache no_cache_{{.max_entries = 100, .ttl = absl::ZeroDuration()}};
  std::unique_ptr<Envelope> cached_, uncached_;

  Envelope& Cached() { return *cached_; }
  Envelope& Uncached() { return *uncached_; }
  std::vector<Envelope*> Both() { return {cached_.get(), uncached_.get()}; }
};

TEST_F(EnvelopeTest, SealOpenRoundTrip) {
  auto sealed = Cached().Seal(kAlias, kek_, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->kms_key_arn.rfind("arn:coffer:kms:", 0), 0u) << sealed->kms_key_arn;
  EXPECT_EQ(sealed->ciphertext.find(value_), std::string::npos);
  // The stored key: format byte, the KMS-wrapped KEK, the wrapped data key.
  const std::string& wrapped = sealed->wrapped_data_key;
  ASSERT_GT(wrapped.size(), 3u);
  EXPECT_EQ(static_cast<uint8_t>(wrapped[0]), 0xC1);
  const size_t w = (static_cast<uint8_t>(wrapped[1]) << 8) | static_cast<uint8_t>(wrapped[2]);
  EXPECT_TRUE(kms::ParseCiphertext(wrapped.substr(3, w)).ok());
  EXPECT_EQ(kms_->generated, 1);
  EXPECT_EQ(cache_.size(), 1u);  // the KEK, for reads

  // Just written: served from the cache.
  auto opened = Cached().Open(kek_, ctx_, wrapped, sealed->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), value_);
  EXPECT_EQ(cache_.hits(), 1u);
  EXPECT_EQ(kms_->decrypted, 0);

  // Through the KMS.
  auto again = Uncached().Open(kek_, ctx_, wrapped, sealed->ciphertext);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->view(), value_);
  EXPECT_EQ(kms_->decrypted, 1);

  // A KMS unwrap fills the cache.
  cache_.Clear();
  ASSERT_TRUE(Cached().Open(kek_, ctx_, wrapped, sealed->ciphertext).ok());
  EXPECT_EQ(cache_.size(), 1u);
}

TEST_F(EnvelopeTest, EveryValueHasItsOwnDataKeyUnderOneKekPerResource) {
  EncryptionContext v2 = ctx_;
  v2["SecretVersionId"] = "v2";
  auto first = Cached().Seal(kAlias, kek_, ctx_, value_);
  auto second = Cached().Seal(kAlias, kek_, v2, value_);
  ASSERT_TRUE(first.ok() && second.ok());
  // One KMS call for the resource: the second write reuses its KEK...
  EXPECT_EQ(kms_->generated, 1);
  const size_t w = (static_cast<uint8_t>(first->wrapped_data_key[1]) << 8) |
                   static_cast<uint8_t>(first->wrapped_data_key[2]);
  EXPECT_EQ(first->wrapped_data_key.substr(0, 3 + w), second->wrapped_data_key.substr(0, 3 + w));
  // ...but each value has a data key of its own.
  EXPECT_NE(first->wrapped_data_key, second->wrapped_data_key);
  EXPECT_NE(first->ciphertext, second->ciphertext);
  for (Envelope* envelope : Both()) {
    EXPECT_EQ(envelope->Open(kek_, v2, second->wrapped_data_key, second->ciphertext)->view(),
              value_);
  }
  // Another resource, another KEK.
  const EncryptionContext other_kek{{"SecretARN", std::string(kArn) + "x"}};
  ASSERT_TRUE(Cached().Seal(kAlias, other_kek, ctx_, value_).ok());
  EXPECT_EQ(kms_->generated, 2);
  // Without a cache every write asks the KMS.
  ASSERT_TRUE(Uncached().Seal(kAlias, kek_, ctx_, value_).ok());
  ASSERT_TRUE(Uncached().Seal(kAlias, kek_, ctx_, value_).ok());
  EXPECT_EQ(kms_->generated, 4);
  // After the cache's ttl the resource gets a new KEK.
  clock_.Advance(absl::Minutes(6));
  ASSERT_TRUE(Cached().Seal(kAlias, kek_, ctx_, value_).ok());
  EXPECT_EQ(kms_->generated, 5);
}

TEST_F(EnvelopeTest, KeksHeldForWritesAreBoundedByTheCacheSize) {
  DataKeyCache small({.max_entries = 2, .ttl = absl::Minutes(5), .clock = &clock_});
  Envelope envelope(kms_.get(), &small);
  auto kek = [](int i) { return EncryptionContext{{"SecretARN", absl::StrCat(kArn, i)}}; };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(envelope.Seal(kAlias, kek(i), ctx_, value_).ok());
  EXPECT_EQ(kms_->generated, 3);
  // 1 and 2 are held; 0, the oldest, made room.
  ASSERT_TRUE(envelope.Seal(kAlias, kek(2), ctx_, value_).ok());
  ASSERT_TRUE(envelope.Seal(kAlias, kek(1), ctx_, value_).ok());
  EXPECT_EQ(kms_->generated, 3);
  ASSERT_TRUE(envelope.Seal(kAlias, kek(0), ctx_, value_).ok());
  EXPECT_EQ(kms_->generated, 4);
}

TEST_F(EnvelopeTest, EmptyValueRoundTrips) {
  auto sealed = Cached().Seal(kAlias, kek_, ctx_, "");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  auto opened = Uncached().Open(kek_, ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->empty());
}

TEST_F(EnvelopeTest, OpenWithAnotherContextIsDataLoss) {
  auto sealed = Cached().Seal(kAlias, kek_, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EncryptionContext other = ctx_;
  other["SecretVersionId"] = "v2";
  const EncryptionContext other_kek{{"SecretARN", std::string(kArn) + "x"}};
  for (Envelope* envelope : Both()) {
    for (const auto& [kek, ctx] : {std::make_pair(kek_, other), std::make_pair(other_kek, ctx_)}) {
      auto opened = envelope->Open(kek, ctx, sealed->wrapped_data_key, sealed->ciphertext);
      ExpectError(opened.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
      EXPECT_EQ(opened.status().message().find(value_), std::string::npos);
    }
  }
}

TEST_F(EnvelopeTest, TamperedCiphertextIsDataLoss) {
  auto sealed = Cached().Seal(kAlias, kek_, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  const std::string& ct = sealed->ciphertext;
  for (size_t pos : {size_t{0}, ct.size() / 2, ct.size() - 1}) {
    for (Envelope* envelope : Both()) {
      auto opened = envelope->Open(kek_, ctx_, sealed->wrapped_data_key, Flip(ct, pos));
      ExpectError(opened.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
    }
  }
  auto truncated = Cached().Open(kek_, ctx_, sealed->wrapped_data_key, ct.substr(0, 10));
  ExpectError(truncated.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
}

TEST_F(EnvelopeTest, TamperedWrappedKeyIsDataLoss) {
  auto sealed = Cached().Seal(kAlias, kek_, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  const std::string& wrapped = sealed->wrapped_data_key;
  // The format byte, the KEK's length, inside the KMS-wrapped KEK, inside
  // the wrapped data key.
  for (size_t pos : {size_t{0}, size_t{1}, size_t{2}, size_t{8}, wrapped.size() / 2,
                     wrapped.size() - 20, wrapped.size() - 1}) {
    for (Envelope* envelope : Both()) {
      auto opened = envelope->Open(kek_, ctx_, Flip(wrapped, pos), sealed->ciphertext);
      ExpectError(opened.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
    }
  }
  for (const std::string& cut : {std::string(), wrapped.substr(0, 2), wrapped.substr(0, 40)}) {
    auto opened = Uncached().Open(kek_, ctx_, cut, sealed->ciphertext);
    ExpectError(opened.status(), absl::StatusCode::kDataLoss, reason::kDecryptionFailure);
  }
}

TEST_F(EnvelopeTest, DisabledKmsKeyIsFailedPrecondition) {
  const std::string key_id = CreateKey();
  auto sealed = Cached().Seal(key_id, kek_, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  kms::v1::DisableKeyRequest disable;
  disable.set_key_id(key_id);
  ASSERT_TRUE(store_->DisableKey(disable).ok());

  auto refused = Uncached().Seal(key_id, kek_, ctx_, value_);
  ExpectError(refused.status(), absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure);
  EXPECT_NE(refused.status().message().find("disabled"), std::string::npos) << refused.status();
  // The trade-off of cached KEKs, as for cached data keys on reads: a
  // resource's KEK already held serves until the cache's ttl.
  EXPECT_TRUE(Cached().Seal(key_id, kek_, ctx_, value_).ok());
  clock_.Advance(absl::Minutes(6));
  auto later = Cached().Seal(key_id, kek_, ctx_, value_);
  ExpectError(later.status(), absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure);

  auto opened = Uncached().Open(kek_, ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ExpectError(opened.status(), absl::StatusCode::kFailedPrecondition, reason::kDecryptionFailure);
}

TEST_F(EnvelopeTest, MissingKmsKeyIsFailedPrecondition) {
  auto refused = Cached().Seal("alias/does-not-exist", kek_, ctx_, value_);
  ExpectError(refused.status(), absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure);
}

TEST_F(EnvelopeTest, KmsDownSealFailsFastOpenUsesCache) {
  auto sealed = Cached().Seal(kAlias, kek_, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  server_->Shutdown(absl::ZeroDuration());
  server_.reset();

  const absl::Time start = absl::Now();
  auto refused = Uncached().Seal(kAlias, kek_, ctx_, value_);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ExpectError(refused.status(), absl::StatusCode::kUnavailable, reason::kEncryptionFailure);
  EXPECT_NE(refused.status().message().find("KMS unavailable"), std::string::npos)
      << refused.status();
  // A resource whose KEK is cached is still written; a new one is not.
  EXPECT_TRUE(Cached().Seal(kAlias, kek_, ctx_, value_).ok());
  const EncryptionContext other_kek{{"SecretARN", std::string(kArn) + "x"}};
  ExpectError(Cached().Seal(kAlias, other_kek, ctx_, value_).status(),
              absl::StatusCode::kUnavailable, reason::kEncryptionFailure);

  auto opened = Cached().Open(kek_, ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), value_);

  auto uncached = Uncached().Open(kek_, ctx_, sealed->wrapped_data_key, sealed->ciphertext);
  ExpectError(uncached.status(), absl::StatusCode::kUnavailable, reason::kDecryptionFailure);

  auto rewrap = Cached().Rewrap(kek_, ctx_, sealed->wrapped_data_key, kAlias);
  ExpectError(rewrap.status(), absl::StatusCode::kUnavailable, reason::kEncryptionFailure);
}

TEST_F(EnvelopeTest, RewrapToAnotherKey) {
  auto sealed = Cached().Seal(kAlias, kek_, ctx_, value_);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  const std::string key_id = CreateKey();

  auto rewrapped = Cached().Rewrap(kek_, ctx_, sealed->wrapped_data_key, key_id);
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status();
  const auto& [wrapped, arn] = *rewrapped;
  EXPECT_NE(wrapped, sealed->wrapped_data_key);
  EXPECT_NE(arn, sealed->kms_key_arn);
  EXPECT_EQ(arn.substr(arn.size() - key_id.size()), key_id);
  const size_t w = (static_cast<uint8_t>(wrapped[1]) << 8) | static_cast<uint8_t>(wrapped[2]);
  auto parsed = kms::ParseCiphertext(wrapped.substr(3, w));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->key_id, key_id);

  // The value is untouched and opens with the new wrapped key, through the
  // KMS and through the cache.
  for (Envelope* envelope : {uncached_.get(), cached_.get()}) {
    auto opened = envelope->Open(kek_, ctx_, wrapped, sealed->ciphertext);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->view(), value_);
  }

  kms::v1::DisableKeyRequest disable;
  disable.set_key_id(key_id);
  ASSERT_TRUE(store_->DisableKey(disable).ok());
  auto refused = Cached().Rewrap(kek_, ctx_, sealed->wrapped_data_key, key_id);
  ExpectError(refused.status(), absl::StatusCode::kFailedPrecondition, reason::kEncryptionFailure);
}

TEST_F(EnvelopeTest, ValuesStoredBeforeKeksStillOpenAndRewrap) {
  // The earlier format: the KMS wrapped the value's data key itself.
  auto data_key = grpc_kms_->GenerateDataKey(kAlias, ctx_);
  ASSERT_TRUE(data_key.ok()) << data_key.status();
  const std::string ciphertext =
      crypto::AeadSeal(data_key->plaintext, value_, crypto::EncodeEncryptionContext(ctx_));
  for (Envelope* envelope : Both()) {
    auto opened = envelope->Open(kek_, ctx_, data_key->wrapped, ciphertext);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->view(), value_);
  }
  const std::string key_id = CreateKey();
  auto rewrapped = Cached().Rewrap(kek_, ctx_, data_key->wrapped, key_id);
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status();
  EXPECT_EQ(kms::ParseCiphertext(rewrapped->first)->key_id, key_id);
  EXPECT_EQ(Uncached().Open(kek_, ctx_, rewrapped->first, ciphertext)->view(), value_);
}

}  // namespace
}  // namespace coffer::store
