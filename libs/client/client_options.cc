#include "libs/client/client_options.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace coffer::client {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

std::string DefaultServerIdentity(Service service, const std::string& trust_domain) {
  return absl::StrCat("spiffe://", trust_domain, service == Service::kKms ? "/kms" : "/store");
}

std::string DefaultEndpoint(Service service) {
  return service == Service::kKms ? "localhost:7701" : "localhost:7702";
}

absl::StatusOr<ClientOptions> OptionsFromEnvironment(Service service) {
  ClientOptions options;
  options.endpoint = Env("COFFER_ENDPOINT");
  if (options.endpoint.empty()) options.endpoint = DefaultEndpoint(service);
  struct Required {
    const char* name;
    std::string* into;
  };
  for (const Required& r : {Required{"COFFER_CA", &options.tls.ca_file},
                            Required{"COFFER_CERT", &options.tls.cert_file},
                            Required{"COFFER_KEY", &options.tls.key_file}}) {
    *r.into = Env(r.name);
    if (r.into->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(r.name, " is not set"));
    }
  }
  std::string pinned = Env("COFFER_SERVER_SPIFFE_ID");
  if (pinned.empty()) {
    std::string domain = Env("COFFER_TRUST_DOMAIN");
    pinned = DefaultServerIdentity(service, domain.empty() ? "coffer.local" : domain);
  } else if (pinned == "none") {
    pinned.clear();
  }
  options.server_spiffe_id = pinned;
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  return options;
}

absl::Status ValidateOptions(const ClientOptions& options) {
  if (options.endpoint.empty()) return absl::InvalidArgumentError("endpoint is empty");
  if (absl::Status s = rpc::CheckTlsFiles(options.tls); !s.ok()) return s;
  if (!options.server_spiffe_id.empty() && options.server_spiffe_id.rfind("spiffe://", 0) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("server_spiffe_id must start with spiffe://: ", options.server_spiffe_id));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  const RetryPolicy& r = options.retry;
  if (r.max_attempts < 1 || r.initial_backoff < absl::ZeroDuration() ||
      r.max_backoff < r.initial_backoff || r.multiplier < 1.0) {
    return absl::InvalidArgumentError(
        "retry: max_attempts >= 1, 0 <= initial_backoff <= max_backoff, multiplier >= 1");
  }
  return absl::OkStatus();
}

}  // namespace coffer::client
