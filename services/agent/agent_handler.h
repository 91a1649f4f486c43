// agent_handler.h: what coffer-agent answers, independent of the HTTP
// server: the AWS Secrets Manager Agent's contract over Coffer's caching
// clients, so that code written for AWS's agent works unchanged.
//
//   AgentHandler handler(&secret_cache, &parameter_cache, {token});
//   HttpResponse r = handler.Handle({"GET", "/secretsmanager/get", "secretId=prod/db",
//                                    {{"x-aws-parameters-secrets-token", token}}, "127.0.0.1"});
//
// Routes (GET only):
//   /ping                                       "healthy" (no token needed)
//   /secretsmanager/get?secretId=&versionId=&versionStage=&refreshNow=
//   /v1/<secretId>?versionId=&versionStage=&refreshNow=   (path style)
//   /systemsmanager/parameters/get?name=&withDecryption=
// Answers are GetSecretValue's / GetParameter's JSON with AWS's member
// names (ARN, Name, VersionId, SecretString | SecretBinary (base64),
// VersionStages, CreatedDate as "<epoch seconds>.<millis>"). Refusals, in
// the order AWS's agent checks them: X-Forwarded-For present -> 400
// "Forwarded"; no or wrong X-Aws-Parameters-Secrets-Token (or
// X-Vault-Token) -> 403 "Bad Token"; not GET -> 405 "Not allowed"; a peer
// that is not loopback -> 403; unknown path -> 404 "Not found"; bad query
// -> 400 naming the parameter. Errors from the store are
// {"__type":"<Reason>","message":"..."} with 400 (502 when the store cannot
// be reached, 504 on a timeout, 500 otherwise). Thread-safe.
#pragma once

#include <map>
#include <string>

#include "libs/client/parameter_cache.h"
#include "libs/client/secret_cache.h"
#include "libs/http/http_server.h"

namespace coffer::agent {

using http::HttpRequest;
using http::HttpResponse;

struct AgentHandlerOptions {
  std::string token;  // the SSRF token every request but /ping must carry
  std::string path_prefix = "/v1/";
};

class AgentHandler {
 public:
  // Neither cache is owned; both must outlive the handler.
  AgentHandler(client::SecretCache* secrets, client::ParameterCache* parameters,
               AgentHandlerOptions options);
  HttpResponse Handle(const HttpRequest& request);

 private:
  HttpResponse GetSecret(const std::string& secret_id, const std::map<std::string, std::string>& q);
  HttpResponse GetParameter(const std::map<std::string, std::string>& q);

  client::SecretCache* secrets_;
  client::ParameterCache* parameters_;
  AgentHandlerOptions options_;
};

// The JSON AWS returns for GetSecretValue / GetParameter (exposed for tests).
std::string SecretJson(const secrets::v1::GetSecretValueResponse& r);
std::string ParameterJson(const params::v1::Parameter& p);
// HTTP status and AWS error body for a failed call.
HttpResponse ErrorResponse(const absl::Status& status);
// Whether `peer` ("127.0.0.1:5000", "[::1]:5000", "127.0.0.1") is loopback.
bool IsLoopbackPeer(const std::string& peer);

}  // namespace coffer::agent
