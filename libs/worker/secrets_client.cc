#include "libs/worker/secrets_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "coffer/secrets/v1/secrets.grpc.pb.h"
#include "libs/authz/authorizer.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/client_call.h"
#include "libs/rpc/unary.h"

namespace coffer::worker {

std::string SecretVersions::VersionWithStage(const std::string& stage) const {
  for (const auto& [version, stages] : stages_by_version) {
    if (std::find(stages.begin(), stages.end(), stage) != stages.end()) return version;
  }
  return "";
}

bool SecretVersions::HasStage(const std::string& version_id, const std::string& stage) const {
  auto it = stages_by_version.find(version_id);
  return it != stages_by_version.end() &&
         std::find(it->second.begin(), it->second.end(), stage) != it->second.end();
}

bool IsValueNotFound(const absl::Status& status) {
  const std::string reason = ErrorReason(status);
  if (!reason.empty()) return reason == reason::kResourceNotFound;
  return status.code() == absl::StatusCode::kNotFound;
}

namespace {

namespace sm = ::coffer::secrets::v1;

class GrpcSecretsClient final : public SecretsClient {
 public:
  GrpcSecretsClient(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout,
                    std::string rotation_token)
      : channel_(channel), timeout_(timeout), stub_(sm::SecretsManager::NewStub(channel)) {
    options_.timeout = timeout;
    options_.peer = "coffer-store";
    if (!rotation_token.empty()) {
      options_.prepare = [token = std::move(rotation_token)](grpc::ClientContext& context) {
        context.AddMetadata(authz::kRotationTokenMetadata, token);
      };
    }
  }

  std::unique_ptr<SecretsClient> ForRotation(const std::string& token) const override {
    return std::make_unique<GrpcSecretsClient>(channel_, timeout_, token);
  }

  absl::StatusOr<SecretValue> GetSecretValue(const std::string& secret_id,
                                             const std::string& version_id,
                                             const std::string& version_stage) override {
    sm::GetSecretValueRequest request;
    request.set_secret_id(secret_id);
    request.set_version_id(version_id);
    request.set_version_stage(version_stage);
    COFFER_ASSIGN_OR_RETURN(
        sm::GetSecretValueResponse response,
        rpc::CallUnary(stub_.get(), &sm::SecretsManager::Stub::GetSecretValue, request, options_));
    SecretValue out;
    out.arn = response.arn();
    out.version_id = response.version_id();
    if (response.has_secret_string()) {
      out.value = response.secret_string();
      rpc::WipeString(response.secret_string());
    } else {
      out.value = response.secret_binary();
      out.binary = true;
      rpc::WipeString(response.secret_binary());
    }
    out.version_stages.assign(response.version_stages().begin(), response.version_stages().end());
    return out;
  }

  absl::Status PutSecretValue(const std::string& secret_id, const std::string& token,
                              const std::string& value,
                              const std::vector<std::string>& stages) override {
    sm::PutSecretValueRequest request;
    request.set_secret_id(secret_id);
    request.set_client_request_token(token);
    request.set_secret_string(value);
    for (const std::string& s : stages) request.add_version_stages(s);
    absl::Status status =
        rpc::CallUnary(stub_.get(), &sm::SecretsManager::Stub::PutSecretValue, request, options_)
            .status();
    rpc::WipeString(request.secret_string());
    return status;
  }

  absl::Status UpdateSecretVersionStage(const std::string& secret_id, const std::string& stage,
                                        const std::string& remove_from_version_id,
                                        const std::string& move_to_version_id) override {
    sm::UpdateSecretVersionStageRequest request;
    request.set_secret_id(secret_id);
    request.set_version_stage(stage);
    request.set_remove_from_version_id(remove_from_version_id);
    request.set_move_to_version_id(move_to_version_id);
    return rpc::CallUnary(stub_.get(), &sm::SecretsManager::Stub::UpdateSecretVersionStage, request,
                          options_)
        .status();
  }

  absl::StatusOr<SecretVersions> DescribeSecret(const std::string& secret_id) override {
    sm::DescribeSecretRequest request;
    request.set_secret_id(secret_id);
    COFFER_ASSIGN_OR_RETURN(
        sm::DescribeSecretResponse response,
        rpc::CallUnary(stub_.get(), &sm::SecretsManager::Stub::DescribeSecret, request, options_));
    SecretVersions out;
    out.arn = response.arn();
    for (const auto& [version, stages] : response.version_ids_to_stages()) {
      out.stages_by_version[version].assign(stages.stages().begin(), stages.stages().end());
    }
    return out;
  }

  absl::StatusOr<std::string> GetRandomPassword(
      const sm::GetRandomPasswordRequest& request) override {
    COFFER_ASSIGN_OR_RETURN(
        sm::GetRandomPasswordResponse response,
        rpc::CallUnary(stub_.get(), &sm::SecretsManager::Stub::GetRandomPassword, request,
                       options_));
    std::string password = response.random_password();
    rpc::WipeString(response.random_password());
    return password;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  absl::Duration timeout_;
  std::unique_ptr<sm::SecretsManager::Stub> stub_;
  rpc::CallOptions options_;
};

}  // namespace

std::unique_ptr<SecretsClient> MakeGrpcSecretsClient(std::shared_ptr<grpc::Channel> channel,
                                                     absl::Duration timeout,
                                                     std::string rotation_token) {
  return std::make_unique<GrpcSecretsClient>(std::move(channel), timeout,
                                             std::move(rotation_token));
}

}  // namespace coffer::worker
