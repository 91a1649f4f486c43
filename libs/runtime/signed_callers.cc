#include "libs/runtime/signed_callers.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/status_macros.h"
#include "libs/sigv4/canonical.h"
#include "libs/sigv4/digest.h"
#include "libs/sigv4/sigv4_error.h"

namespace coffer::runtime {
namespace {

using sigv4::MakeSigV4Error;
using sigv4::SigV4Error;

absl::Status Invalid(absl::string_view message) {
  return MakeSigV4Error(SigV4Error::kInvalidSignature, message);
}

bool IsUnrecognized(const absl::Status& status) {
  std::optional<SigV4Error> e = sigv4::GetSigV4Error(status);
  return e.has_value() && *e == SigV4Error::kUnrecognizedClient;
}

class CachingSource final : public SigningKeySource {
 public:
  CachingSource(SigningKeySource* source, absl::Duration ttl, absl::Duration negative_ttl,
                size_t max_entries, Clock* clock)
      : source_(source),
        ttl_(ttl),
        negative_ttl_(negative_ttl),
        max_entries_(std::max<size_t>(1, max_entries)),
        clock_(clock != nullptr ? clock : RealClock()) {}

  absl::StatusOr<SigningKey> Find(absl::string_view access_key_id,
                                  const sigv4::CredentialScope& scope) override {
    const std::string key = absl::StrCat(access_key_id, "/", scope.ToString());
    const absl::Time now = clock_->Now();
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.expires > now) {
        if (!it->second.found) {
          return MakeSigV4Error(SigV4Error::kUnrecognizedClient,
                                "The security token included in the request is invalid.");
        }
        return SigningKey{it->second.identity, crypto::SecureBuffer::Copy(it->second.key.view())};
      }
    }
    absl::StatusOr<SigningKey> found = source_->Find(access_key_id, scope);
    if (!found.ok() && !IsUnrecognized(found.status())) return found;
    Entry entry;
    entry.found = found.ok();
    entry.expires = now + (found.ok() ? ttl_ : negative_ttl_);
    if (found.ok()) {
      entry.identity = found->identity;
      entry.key = crypto::SecureBuffer::Copy(found->key.view());
    }
    absl::MutexLock lock(&mu_);
    if (entries_.count(key) == 0) order_.push_back(key);
    entries_[key] = std::move(entry);
    while (entries_.size() > max_entries_ && !order_.empty()) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    return found;
  }

 private:
  struct Entry {
    bool found = false;
    std::string identity;
    crypto::SecureBuffer key;
    absl::Time expires;
  };
  SigningKeySource* source_;
  const absl::Duration ttl_;
  const absl::Duration negative_ttl_;
  const size_t max_entries_;
  Clock* clock_;
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // insertion order
};

// The value of metadata `key` on `context` ("" when absent).
std::string Metadata(const grpc::ServerContextBase& context, absl::string_view key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  return it == metadata.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

}  // namespace

iam::v1::GetSigningKeyRequest SigningKeyRequest(absl::string_view access_key_id,
                                                const sigv4::CredentialScope& scope) {
  iam::v1::GetSigningKeyRequest request;
  request.set_access_key_id(std::string(access_key_id));
  request.set_date(scope.date);
  request.set_region(scope.region);
  request.set_service(scope.service);
  return request;
}

SigningKeySource::SigningKey TakeSigningKey(iam::v1::GetSigningKeyResponse& response) {
  SigningKeySource::SigningKey key{response.identity(),
                                   crypto::SecureBuffer::Copy(response.signing_key())};
  crypto::Wipe(response.mutable_signing_key()->data(), response.signing_key().size());
  return key;
}

std::unique_ptr<SigningKeySource> CachingSigningKeySource(SigningKeySource* source,
                                                          absl::Duration ttl,
                                                          absl::Duration negative_ttl,
                                                          size_t max_entries, Clock* clock) {
  return std::make_unique<CachingSource>(source, ttl, negative_ttl, max_entries, clock);
}

std::optional<AwsTarget> MapAwsTarget(absl::string_view target) {
  struct Prefix {
    absl::string_view target_prefix;
    absl::string_view action_prefix;  // and the SigV4 service
  };
  static constexpr Prefix kTable[] = {
      {"secretsmanager.", "secretsmanager"}, {"AmazonSSM.", "ssm"}, {"TrentService.", "kms"}};
  for (const Prefix& p : kTable) {
    if (!absl::StartsWith(target, p.target_prefix)) continue;
    absl::string_view operation = target.substr(p.target_prefix.size());
    if (operation.empty() || operation.size() > 64) return std::nullopt;
    for (char c : operation) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return std::nullopt;
    }
    return AwsTarget{absl::StrCat(p.action_prefix, ":", operation), std::string(p.action_prefix)};
  }
  return std::nullopt;
}

absl::StatusOr<SignedCaller> VerifyForwardedSignature(const ForwardedSignature& forwarded,
                                                      absl::string_view action, absl::Time now,
                                                      SigningKeySource& keys,
                                                      absl::Duration max_clock_skew) {
  COFFER_ASSIGN_OR_RETURN(sigv4::Authorization auth,
                          sigv4::ParseAuthorization(forwarded.authorization));
  COFFER_ASSIGN_OR_RETURN(absl::Time signed_at, sigv4::ParseAmzDate(forwarded.amz_date));
  if (auth.scope.date != forwarded.amz_date.substr(0, 8)) {
    return Invalid("The credential scope's date is not the day of X-Amz-Date.");
  }
  if (absl::AbsDuration(now - signed_at) > max_clock_skew) {
    return Invalid(absl::StrCat("Signature expired or not yet current: ", forwarded.amz_date,
                                " is more than ", absl::FormatDuration(max_clock_skew),
                                " from the server's time."));
  }

  // The canonical request: method, path, query, one line per signed header,
  // a blank line, the signed-header list, the body's hash.
  if (forwarded.canonical_request.size() > kMaxForwardedCanonicalRequest) {
    return Invalid("The canonical request is too long.");
  }
  const std::vector<absl::string_view> lines = absl::StrSplit(forwarded.canonical_request, '\n');
  const size_t n = auth.signed_headers.size();
  if (lines.size() != n + 6 || !lines[3 + n].empty() ||
      lines[4 + n] != absl::StrJoin(auth.signed_headers, ";") || lines[5 + n].size() != 64) {
    return Invalid("The forwarded canonical request does not match the signed headers.");
  }
  std::string amz_date_header;
  std::string target;
  for (size_t i = 0; i < n; ++i) {
    const absl::string_view line = lines[3 + i];
    const std::string& name = auth.signed_headers[i];
    if (!absl::StartsWith(line, name) || line.size() <= name.size() || line[name.size()] != ':') {
      return Invalid("The forwarded canonical request does not match the signed headers.");
    }
    const absl::string_view value = line.substr(name.size() + 1);
    if (name == "x-amz-date") amz_date_header = std::string(value);
    if (name == "x-amz-target") target = std::string(value);
  }
  if (amz_date_header != forwarded.amz_date) {
    return Invalid("The signed X-Amz-Date is not the request's.");
  }
  // The signature must name this very operation, in the service it was
  // signed for.
  const std::optional<AwsTarget> named = MapAwsTarget(target);
  if (!named.has_value()) return Invalid("X-Amz-Target is not signed or names no operation.");
  if (named->action != action || named->signing_service != auth.scope.service) {
    return Invalid(absl::StrCat("The request was signed for ", target, " in service ",
                                auth.scope.service, ", not for this call."));
  }

  COFFER_ASSIGN_OR_RETURN(SigningKeySource::SigningKey key,
                          keys.Find(auth.access_key_id, auth.scope));
  const std::string string_to_sign =
      sigv4::StringToSign(forwarded.amz_date, auth.scope, forwarded.canonical_request);
  std::string expected = sigv4::SignatureHex(key.key, string_to_sign);
  const bool match = crypto::ConstantTimeEquals(expected, auth.signature);
  crypto::Wipe(expected.data(), expected.size());
  if (!match) {
    return Invalid(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method.");
  }
  return SignedCaller{std::move(key.identity), auth.access_key_id};
}

absl::StatusOr<SignedCaller> SignedCallers::Authenticate(const grpc::ServerContextBase& context,
                                                         absl::string_view action) const {
  ForwardedSignature forwarded;
  forwarded.authorization = Metadata(context, kSigV4AuthorizationMetadata);
  forwarded.amz_date = Metadata(context, kSigV4DateMetadata);
  forwarded.canonical_request = Metadata(context, kSigV4CanonicalRequestMetadata);
  if (forwarded.authorization.empty()) {
    return MakeSigV4Error(SigV4Error::kMissingAuthenticationToken,
                          "The gateway acts only for callers who signed their request.");
  }
  return VerifyForwardedSignature(forwarded, action, clock_->Now(), *keys_);
}

}  // namespace coffer::runtime
