// clients.h: the top layer — one method per RPC of the secrets, parameters
// and KMS APIs, over a Connection (deadline, retries, logging, metrics).
//
//   COFFER_ASSIGN_OR_RETURN(auto options, OptionsFromEnvironment(Service::kStore));
//   COFFER_ASSIGN_OR_RETURN(auto store, Connection::Create(options, "coffer-store"));
//   SecretsClient secrets(store);
//   secrets::v1::GetSecretValueRequest req;
//   req.set_secret_id("prod/catagram/db");
//   COFFER_ASSIGN_OR_RETURN(auto value, secrets.GetSecretValue(req));
//
// Retries: reads, and writes that repeat to the same effect, are retried on
// UNAVAILABLE. CreateSecret, PutSecretValue, UpdateSecret and RotateSecret
// get a client_request_token when the caller gave none (as AWS's SDKs do), so
// a retried write cannot make a second version. Calls that would not repeat
// cleanly (e.g. DeleteSecret, Encrypt) are sent once.
#pragma once

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "coffer/kms/v1/kms.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "libs/client/connection.h"

namespace coffer::client {

// X(method, idempotency when no token makes it so)
#define COFFER_CLIENT_SECRETS_RPCS(X)      \
  X(CreateSecret, kNonIdempotent)          \
  X(GetSecretValue, kIdempotent)           \
  X(BatchGetSecretValue, kIdempotent)      \
  X(PutSecretValue, kNonIdempotent)        \
  X(UpdateSecret, kNonIdempotent)          \
  X(UpdateSecretVersionStage, kIdempotent) \
  X(DescribeSecret, kIdempotent)           \
  X(ListSecrets, kIdempotent)              \
  X(ListSecretVersionIds, kIdempotent)     \
  X(DeleteSecret, kNonIdempotent)          \
  X(RestoreSecret, kNonIdempotent)         \
  X(TagResource, kIdempotent)              \
  X(UntagResource, kIdempotent)            \
  X(GetRandomPassword, kIdempotent)        \
  X(PutResourcePolicy, kIdempotent)        \
  X(GetResourcePolicy, kIdempotent)        \
  X(DeleteResourcePolicy, kIdempotent)     \
  X(ValidateResourcePolicy, kIdempotent)   \
  X(RotateSecret, kNonIdempotent)          \
  X(CancelRotateSecret, kNonIdempotent)

#define COFFER_CLIENT_PARAMS_RPCS(X)      \
  X(PutParameter, kNonIdempotent)         \
  X(GetParameter, kIdempotent)            \
  X(GetParameters, kIdempotent)           \
  X(GetParametersByPath, kIdempotent)     \
  X(DescribeParameters, kIdempotent)      \
  X(GetParameterHistory, kIdempotent)     \
  X(DeleteParameter, kNonIdempotent)      \
  X(DeleteParameters, kNonIdempotent)     \
  X(LabelParameterVersion, kIdempotent)   \
  X(UnlabelParameterVersion, kIdempotent) \
  X(AddTagsToResource, kIdempotent)       \
  X(RemoveTagsFromResource, kIdempotent)  \
  X(ListTagsForResource, kIdempotent)

#define COFFER_CLIENT_KMS_RPCS(X)                    \
  X(CreateKey, kNonIdempotent)                       \
  X(DescribeKey, kIdempotent)                        \
  X(ListKeys, kIdempotent)                           \
  X(UpdateKeyDescription, kIdempotent)               \
  X(EnableKey, kIdempotent)                          \
  X(DisableKey, kIdempotent)                         \
  X(ScheduleKeyDeletion, kNonIdempotent)             \
  X(CancelKeyDeletion, kNonIdempotent)               \
  X(EnableKeyRotation, kIdempotent)                  \
  X(DisableKeyRotation, kIdempotent)                 \
  X(GetKeyRotationStatus, kIdempotent)               \
  X(RotateKeyOnDemand, kNonIdempotent)               \
  X(ListKeyRotations, kIdempotent)                   \
  X(CreateAlias, kNonIdempotent)                     \
  X(UpdateAlias, kIdempotent)                        \
  X(DeleteAlias, kNonIdempotent)                     \
  X(ListAliases, kIdempotent)                        \
  X(Encrypt, kNonIdempotent)                         \
  X(Decrypt, kIdempotent)                            \
  X(ReEncrypt, kNonIdempotent)                       \
  X(GenerateDataKey, kNonIdempotent)                 \
  X(GenerateDataKeyWithoutPlaintext, kNonIdempotent) \
  X(GenerateRandom, kNonIdempotent)                  \
  X(TagResource, kIdempotent)                        \
  X(UntagResource, kIdempotent)                      \
  X(ListResourceTags, kIdempotent)

#define COFFER_CLIENT_DECLARE(ns, Method, idempotency) \
  absl::StatusOr<ns::Method##Response> Method(ns::Method##Request request) const;

class SecretsClient {
 public:
  explicit SecretsClient(std::shared_ptr<Connection> connection)
      : connection_(std::move(connection)) {}
#define COFFER_X(Method, idempotency) COFFER_CLIENT_DECLARE(secrets::v1, Method, idempotency)
  COFFER_CLIENT_SECRETS_RPCS(COFFER_X)
#undef COFFER_X
  // WatchSecrets' stream (see ChangeWatcher for one that resumes).
  std::unique_ptr<ChangeStream> WatchSecrets(const secrets::v1::WatchSecretsRequest& request) const;
  const std::shared_ptr<Connection>& connection() const { return connection_; }

 private:
  std::shared_ptr<Connection> connection_;
};

class ParametersClient {
 public:
  explicit ParametersClient(std::shared_ptr<Connection> connection)
      : connection_(std::move(connection)) {}
#define COFFER_X(Method, idempotency) COFFER_CLIENT_DECLARE(params::v1, Method, idempotency)
  COFFER_CLIENT_PARAMS_RPCS(COFFER_X)
#undef COFFER_X
  std::unique_ptr<ChangeStream> WatchParameters(
      const params::v1::WatchParametersRequest& request) const;
  const std::shared_ptr<Connection>& connection() const { return connection_; }

 private:
  std::shared_ptr<Connection> connection_;
};

class KmsClient {
 public:
  explicit KmsClient(std::shared_ptr<Connection> connection) : connection_(std::move(connection)) {}
#define COFFER_X(Method, idempotency) COFFER_CLIENT_DECLARE(kms::v1, Method, idempotency)
  COFFER_CLIENT_KMS_RPCS(COFFER_X)
#undef COFFER_X
  const std::shared_ptr<Connection>& connection() const { return connection_; }

 private:
  std::shared_ptr<Connection> connection_;
};

#undef COFFER_CLIENT_DECLARE

}  // namespace coffer::client
