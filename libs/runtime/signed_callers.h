// signed_callers.h: calls that coffer-gateway makes on behalf of a caller
// who signed an AWS request with an access key (SigV4), verified again by
// the service that answers them — so the service, not the gateway, decides
// who is calling, and the gateway's own certificate can do nothing by
// itself.
//
// The gateway forwards, as metadata of each gRPC call, what the signature
// covers: the Authorization header, X-Amz-Date and the canonical request it
// rebuilt from the HTTP request (method, path, query, the signed headers
// and the body's hash). The service checks:
//  - the Authorization syntax and the scope (IncompleteSignature);
//  - X-Amz-Date is the scope's day and within 5 minutes of its clock, and
//    the canonical request is well formed, lists exactly the signed headers
//    with that X-Amz-Date and an X-Amz-Target naming THIS call's operation
//    in the service the scope names (InvalidSignatureException);
//  - the access key is known and active (UnrecognizedClientException, from
//    the SigningKeySource: coffer-kms's access keys);
//  - HMAC(signing key, string to sign) equals the signature, compared in
//    constant time (InvalidSignatureException).
// Then the call runs as the access key's identity, through the same
// policies as a call made with that identity's certificate.
//
// What a compromised gateway could still do: within the 5 minutes, repeat a
// signed operation of a caller with other arguments (the service never sees
// the HTTP body, only its hash). It cannot invent a caller, act for one who
// did not sign, or change the operation.
//
//   SignedCallers signed_callers("spiffe://coffer.local/gateway", kms_signing_keys.get());
//   gate->set_signed_callers(&signed_callers);   // CallGate does the rest
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coffer/iam/v1/access_keys.pb.h"
#include "libs/common/clock.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/sigv4/authorization.h"

namespace grpc {
class ServerContextBase;
}

namespace coffer::runtime {

// The metadata the gateway sends (the canonical request as binary metadata:
// it holds newlines).
inline constexpr char kSigV4AuthorizationMetadata[] = "coffer-sigv4-authorization";
inline constexpr char kSigV4DateMetadata[] = "coffer-sigv4-date";
inline constexpr char kSigV4CanonicalRequestMetadata[] = "coffer-sigv4-canonical-request-bin";
// Largest canonical request accepted.
inline constexpr size_t kMaxForwardedCanonicalRequest = 16 * 1024;

struct ForwardedSignature {
  std::string authorization;
  std::string amz_date;
  std::string canonical_request;
};

// Where signing keys come from: coffer-kms's access keys (GetSigningKey).
class SigningKeySource {
 public:
  struct SigningKey {
    std::string identity;
    crypto::SecureBuffer key;  // 32 bytes
  };
  virtual ~SigningKeySource() = default;
  // May block. UnrecognizedClientException for an unknown or inactive key;
  // other errors (the KMS unreachable) pass through unchanged.
  virtual absl::StatusOr<SigningKey> Find(absl::string_view access_key_id,
                                          const sigv4::CredentialScope& scope) = 0;
};

// coffer-kms's GetSigningKey for `access_key_id` and `scope` (both sources
// ask it: coffer-kms in-process, coffer-store over gRPC), and the key of its
// answer (whose copy is wiped).
iam::v1::GetSigningKeyRequest SigningKeyRequest(absl::string_view access_key_id,
                                                const sigv4::CredentialScope& scope);
SigningKeySource::SigningKey TakeSigningKey(iam::v1::GetSigningKeyResponse& response);

// Remembers `source`'s answers: found keys for `ttl` (how long a disabled or
// deleted key may still be honoured), unknown keys for `negative_ttl` (a
// flood of made-up ids costs one lookup each per interval); at most
// `max_entries`, the oldest dropped first. Errors other than
// UnrecognizedClientException are not remembered. `source` is not owned.
std::unique_ptr<SigningKeySource> CachingSigningKeySource(SigningKeySource* source,
                                                          absl::Duration ttl,
                                                          absl::Duration negative_ttl,
                                                          size_t max_entries,
                                                          Clock* clock = nullptr);

// The Coffer action and SigV4 service an X-Amz-Target names:
// "secretsmanager.GetSecretValue" -> {"secretsmanager:GetSecretValue",
// "secretsmanager"}, "AmazonSSM.GetParameter" -> {"ssm:GetParameter",
// "ssm"}, "TrentService.Decrypt" -> {"kms:Decrypt", "kms"}.
struct AwsTarget {
  std::string action;
  std::string signing_service;
};
std::optional<AwsTarget> MapAwsTarget(absl::string_view target);

struct SignedCaller {
  std::string identity;
  std::string access_key_id;
};

// Verifies `forwarded` for the call of `action` at `now`.
absl::StatusOr<SignedCaller> VerifyForwardedSignature(
    const ForwardedSignature& forwarded, absl::string_view action, absl::Time now,
    SigningKeySource& keys, absl::Duration max_clock_skew = absl::Minutes(5));

// The gate's side: who the delegate is, and the caller a call of it carries.
class SignedCallers {
 public:
  // `keys` is not owned and must outlive this object.
  SignedCallers(std::string delegate_spiffe_id, SigningKeySource* keys, Clock* clock = nullptr)
      : delegate_(std::move(delegate_spiffe_id)),
        keys_(keys),
        clock_(clock != nullptr ? clock : RealClock()) {}

  bool IsDelegate(absl::string_view principal) const {
    return !delegate_.empty() && principal == delegate_;
  }
  // The signed caller of a call the delegate made for `action`. May block.
  // MissingAuthenticationTokenException when the call carries no signature.
  absl::StatusOr<SignedCaller> Authenticate(const grpc::ServerContextBase& context,
                                            absl::string_view action) const;

 private:
  std::string delegate_;
  SigningKeySource* keys_;
  Clock* clock_;
};

}  // namespace coffer::runtime
