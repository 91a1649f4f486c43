// secrets_client.h: what a rotation worker needs from coffer-store, behind a
// small interface (google-cloud-cpp's stub idea) so that worker logic can be
// tested against an in-memory fake and run against coffer-store over mTLS.
//
//   COFFER_ASSIGN_OR_RETURN(auto channel, coffer::rpc::MakeChannel(std::move(opts)));
//   auto secrets = coffer::worker::MakeGrpcSecretsClient(channel, absl::Seconds(5));
//   COFFER_ASSIGN_OR_RETURN(coffer::worker::SecretValue current,
//       secrets->GetSecretValue(arn, /*version_id=*/"", coffer::worker::kAwsCurrent));
//
// Errors keep the store's reason (ResourceNotFoundException,
// InvalidParameterException...) through rpc::FromGrpcStatus. When the store
// cannot be reached (no connection, deadline) the status is UNAVAILABLE with
// reason ServiceUnavailableException and a message saying so.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coffer/secrets/v1/secrets.pb.h"

namespace grpc {
class Channel;
}

namespace coffer::worker {

inline constexpr char kAwsCurrent[] = "AWSCURRENT";
inline constexpr char kAwsPrevious[] = "AWSPREVIOUS";
inline constexpr char kAwsPending[] = "AWSPENDING";

// One version's value. Workers deal in string secrets; a binary value is
// returned in `value` with `binary` set.
struct SecretValue {
  std::string arn;
  std::string version_id;
  std::string value;
  bool binary = false;
  std::vector<std::string> version_stages;
};

// A secret's labelled versions (DescribeSecret's version_ids_to_stages).
struct SecretVersions {
  std::string arn;
  std::map<std::string, std::vector<std::string>> stages_by_version;

  // The version that has `stage`, or "" when none has it.
  std::string VersionWithStage(const std::string& stage) const;
  bool HasStage(const std::string& version_id, const std::string& stage) const;
  bool Contains(const std::string& version_id) const {
    return stages_by_version.count(version_id) != 0;
  }
};

class SecretsClient {
 public:
  virtual ~SecretsClient() = default;

  // The version named by `version_id` and/or `version_stage` (both empty:
  // AWSCURRENT). ResourceNotFoundException when there is no such version or
  // it has no value yet (rotation's placeholder).
  virtual absl::StatusOr<SecretValue> GetSecretValue(const std::string& secret_id,
                                                     const std::string& version_id,
                                                     const std::string& version_stage) = 0;
  // Stores a string value as version `token` with `stages` (which fills a
  // placeholder version of that id). Repeating it with the same value
  // succeeds; another value for an existing token is ResourceExistsException.
  virtual absl::Status PutSecretValue(const std::string& secret_id, const std::string& token,
                                      const std::string& value,
                                      const std::vector<std::string>& stages) = 0;
  // Moves `stage` to `move_to_version_id` (empty: only remove) from
  // `remove_from_version_id` (required when the label is attached).
  virtual absl::Status UpdateSecretVersionStage(const std::string& secret_id,
                                                const std::string& stage,
                                                const std::string& remove_from_version_id,
                                                const std::string& move_to_version_id) = 0;
  virtual absl::StatusOr<SecretVersions> DescribeSecret(const std::string& secret_id) = 0;
  virtual absl::StatusOr<std::string> GetRandomPassword(
      const secrets::v1::GetRandomPasswordRequest& request) = 0;

  // A client whose calls carry the rotation's token (`coffer-rotation-token`
  // metadata): the store lets a worker write a secret only inside that
  // secret's running rotation. Null when the client needs none (fakes).
  virtual std::unique_ptr<SecretsClient> ForRotation(const std::string& token) const {
    return nullptr;
  }
};

// The SecretsClient of a coffer-store reached through `channel` (mTLS).
// Every call has `timeout` as its deadline.
std::unique_ptr<SecretsClient> MakeGrpcSecretsClient(std::shared_ptr<grpc::Channel> channel,
                                                     absl::Duration timeout,
                                                     std::string rotation_token = "");

// True for the store's "no such version / no value yet" answer.
bool IsValueNotFound(const absl::Status& status);

}  // namespace coffer::worker
