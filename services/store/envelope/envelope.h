// envelope.h: envelope encryption of secret and parameter values.
//
// Each value gets its own 256-bit data key, made here from the CSPRNG; the
// value is encrypted with XChaCha20-Poly1305 whose associated data is the
// canonical encoding of the value's encryption context (e.g. {SecretARN,
// SecretVersionId}). The data key is wrapped (the same AEAD, same context)
// by the resource's key-encryption key (KEK): a data key the KMS made with
// GenerateDataKey for the resource's own context (e.g. {SecretARN}) and
// that exists at rest only as the KMS wrapped it. What is stored beside the
// ciphertext holds both: the KMS-wrapped KEK and the KEK-wrapped data key.
//
// The unwrapped KEK of a resource is kept for the DataKeyCache's ttl (and
// counts against its max_entries), so a resource written again within it
// needs no KMS call; reads find KEKs in the DataKeyCache before asking the
// KMS to unwrap them. With the cache off, every Seal asks the KMS for a new
// KEK and every Open asks it to unwrap one: one KMS call per value, as
// before KEKs. Values stored before KEKs (a data key the KMS wrapped
// directly) still open and re-wrap.
//
//   Envelope envelope(kms.get(), &cache);
//   EncryptionContext kek{{"SecretARN", arn}};
//   EncryptionContext ctx{{"SecretARN", arn}, {"SecretVersionId", version}};
//   COFFER_ASSIGN_OR_RETURN(Envelope::Sealed s,
//                           envelope.Seal("alias/coffer/secretsmanager", kek, ctx, value));
//   COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plain,
//                           envelope.Open(kek, ctx, s.wrapped_data_key, s.ciphertext));
//
// Errors (reason, code):
//  - Seal: EncryptionFailure, UNAVAILABLE when the KMS is unreachable, else
//    FAILED_PRECONDITION (key missing, disabled, pending deletion), message
//    naming the cause.
//  - Open: DecryptionFailure, DATA_LOSS when the value or a wrapped key
//    does not authenticate (tampered, or moved to another secret/version),
//    UNAVAILABLE when the KMS is unreachable and the key is not cached,
//    FAILED_PRECONDITION when the KMS key is disabled.
//  - Rewrap (key change): as Seal.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/secure_buffer.h"
#include "services/store/envelope/data_key_cache.h"
#include "services/store/envelope/key_service.h"

namespace coffer::store {

class Envelope {
 public:
  // Neither is owned. `cache` may be null (no caching: tests).
  Envelope(KeyService* kms, DataKeyCache* cache) : kms_(kms), cache_(cache) {}

  struct Sealed {
    std::string ciphertext;        // nonce || AEAD output
    std::string wrapped_data_key;  // the KMS-wrapped KEK and the KEK-wrapped data key
    std::string kms_key_arn;       // the KMS key that wrapped the KEK
  };

  absl::StatusOr<Sealed> Seal(const std::string& kms_key_id, const EncryptionContext& kek_context,
                              const EncryptionContext& context, absl::string_view plaintext);
  absl::StatusOr<crypto::SecureBuffer> Open(const EncryptionContext& kek_context,
                                            const EncryptionContext& context,
                                            absl::string_view wrapped_data_key,
                                            absl::string_view ciphertext);
  // The wrapped key re-wrapped under another KMS key (one KMS ReEncrypt of
  // the KEK; the value and its data key untouched): (wrapped, key ARN).
  absl::StatusOr<std::pair<std::string, std::string>> Rewrap(const EncryptionContext& kek_context,
                                                             const EncryptionContext& context,
                                                             absl::string_view wrapped_data_key,
                                                             const std::string& kms_key_id);

 private:
  // A resource's KEK as the last Seal got it from the KMS.
  struct Kek {
    std::shared_ptr<const crypto::SecureBuffer> key;
    std::string wrapped;  // as the KMS returned it
    std::string key_arn;
    absl::Time expires;
    uint64_t serial = 0;  // its entry in kek_order_
  };
  // The KEK to seal with: cached, or a new one from the KMS.
  absl::StatusOr<Kek> KekFor(const std::string& kms_key_id, const EncryptionContext& kek_context);
  // The unwrapped KEK of a stored value: cached, or from the KMS.
  absl::StatusOr<std::shared_ptr<const crypto::SecureBuffer>> UnwrapKek(
      const EncryptionContext& kek_context, absl::string_view wrapped_kek);

  KeyService* kms_;
  DataKeyCache* cache_;
  absl::Mutex mu_;
  // kms key id + '\0' + encoded KEK context -> KEK; bounded by the cache's
  // max_entries, entries live for its ttl.
  absl::flat_hash_map<std::string, Kek> keks_ ABSL_GUARDED_BY(mu_);
  // Slots in the order they were filled (so in expiry order: one ttl for
  // all), with the serial of that filling; stale ones are skipped.
  std::deque<std::pair<std::string, uint64_t>> kek_order_ ABSL_GUARDED_BY(mu_);
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace coffer::store
