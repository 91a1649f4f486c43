#include "libs/client/clients.h"

#include "libs/common/ids.h"

namespace coffer::client {

namespace {

constexpr char kSecretsService[] = "/coffer.secrets.v1.SecretsManager/";
constexpr char kParamsService[] = "/coffer.params.v1.ParameterStore/";
constexpr char kKmsService[] = "/coffer.kms.v1.KeyManagement/";

// Writes that carry a client_request_token repeat to the same effect once
// they have one: give them one, then they may be retried.
template <typename Request>
Idempotency Prepare(Request&, Idempotency otherwise) {
  return otherwise;
}
template <typename Request>
Idempotency WithToken(Request& request) {
  if (request.client_request_token().empty()) request.set_client_request_token(NewUuid());
  return Idempotency::kIdempotent;
}
Idempotency Prepare(secrets::v1::CreateSecretRequest& r, Idempotency) { return WithToken(r); }
Idempotency Prepare(secrets::v1::PutSecretValueRequest& r, Idempotency) { return WithToken(r); }
Idempotency Prepare(secrets::v1::UpdateSecretRequest& r, Idempotency) { return WithToken(r); }
Idempotency Prepare(secrets::v1::RotateSecretRequest& r, Idempotency) { return WithToken(r); }

}  // namespace

#define COFFER_CLIENT_DEFINE(Client, ns, path, Method, idempotency)                             \
  absl::StatusOr<ns::Method##Response> Client::Method(ns::Method##Request request) const {      \
    const Idempotency idem = Prepare(request, Idempotency::idempotency);                        \
    return connection_->Call<ns::Method##Response>(std::string(path) + #Method, request, idem); \
  }

#define COFFER_X(Method, idempotency) \
  COFFER_CLIENT_DEFINE(SecretsClient, secrets::v1, kSecretsService, Method, idempotency)
COFFER_CLIENT_SECRETS_RPCS(COFFER_X)
#undef COFFER_X
#define COFFER_X(Method, idempotency) \
  COFFER_CLIENT_DEFINE(ParametersClient, params::v1, kParamsService, Method, idempotency)
COFFER_CLIENT_PARAMS_RPCS(COFFER_X)
#undef COFFER_X
#define COFFER_X(Method, idempotency) \
  COFFER_CLIENT_DEFINE(KmsClient, kms::v1, kKmsService, Method, idempotency)
COFFER_CLIENT_KMS_RPCS(COFFER_X)
#undef COFFER_X
#undef COFFER_CLIENT_DEFINE

std::unique_ptr<ChangeStream> SecretsClient::WatchSecrets(
    const secrets::v1::WatchSecretsRequest& request) const {
  return connection_->Watch(std::string(kSecretsService) + "WatchSecrets", request);
}

std::unique_ptr<ChangeStream> ParametersClient::WatchParameters(
    const params::v1::WatchParametersRequest& request) const {
  return connection_->Watch(std::string(kParamsService) + "WatchParameters", request);
}

}  // namespace coffer::client
