// aws_json_client.h: coffer_load's AWS client — one HTTPS connection
// (cpp-httplib's SSLClient, kept alive) to coffer-gateway, sending AWS JSON
// 1.1 requests signed with SigV4 as the SDKs send them: POST / with
// Content-Type application/x-amz-json-1.1, Host, X-Amz-Target, and a fresh
// X-Amz-Date and Authorization for every request (libs/sigv4's SignRequest).
//
//   AwsJsonClient client({"localhost", 7704, "pki/ca.crt", {"AKCO...", secret}});
//   absl::StatusOr<AwsAnswer> a = client.Call("secretsmanager",
//       "secretsmanager.GetSecretValue", R"({"SecretId":"bench/s-00000"})");
//   if (a.ok() && a->http_status != 200) ... AwsErrorStatus(*a) ...
//
// The server is verified against the CA bundle and the host name, as the
// SDKs do. One request at a time per client (HTTP/1.1): a load of N in
// flight needs N clients.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace httplib {
class SSLClient;
}

namespace coffer::bench {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
};

// The credentials in `file` ("<id> <secret>", any whitespace between: what
// `cofferctl access-keys create --output text` prints), or, when `file` is
// empty, in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
absl::StatusOr<AwsCredentials> LoadAwsCredentials(const std::string& file);

struct AwsEndpoint {
  std::string host;  // connected to, verified in the certificate, sent as Host
  int port = 0;
  std::string ca_file;  // PEM bundle the server's certificate must chain to
  AwsCredentials credentials;
  std::string region = "local";
  absl::Duration timeout = absl::Seconds(10);
};

// "host:port" (a bracketed IPv6 host keeps its brackets in Host).
absl::StatusOr<AwsEndpoint> ParseAwsTarget(absl::string_view target);

struct AwsAnswer {
  int http_status = 0;
  std::string body;
};

class AwsJsonClient {
 public:
  explicit AwsJsonClient(AwsEndpoint endpoint);
  ~AwsJsonClient();
  AwsJsonClient(const AwsJsonClient&) = delete;
  AwsJsonClient& operator=(const AwsJsonClient&) = delete;

  // Signs (scope `service`, e.g. "secretsmanager") and sends one request
  // with X-Amz-Target `target`. UNAVAILABLE when no answer came (connection,
  // TLS or timeout); any HTTP answer otherwise, errors included.
  absl::StatusOr<AwsAnswer> Call(absl::string_view service, absl::string_view target,
                                 const std::string& body);

 private:
  AwsEndpoint endpoint_;
  std::string host_header_;
  std::unique_ptr<httplib::SSLClient> client_;
};

// The status of an answer other than 200: the code from its AWS error type
// (ResourceExistsException: ALREADY_EXISTS, ResourceNotFoundException:
// NOT_FOUND, ThrottlingException: RESOURCE_EXHAUSTED, AccessDenied:
// PERMISSION_DENIED, the signature errors: UNAUTHENTICATED; otherwise from
// the HTTP status), the message "HTTP <status> <type>: <message>".
absl::Status AwsErrorStatus(const AwsAnswer& answer);

// Finds `"name":"value"` in JSON as the gateway writes it (no white space)
// and sets *value to the value with \" and \\ unescaped (other escapes
// are left as they are); false when there is no such member.
bool FindJsonString(absl::string_view json, absl::string_view name, std::string* value);

}  // namespace coffer::bench
