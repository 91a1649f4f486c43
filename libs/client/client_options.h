// client_options.h: how an application reaches Coffer — the endpoint, the
// mTLS files, the server identity it pins, deadlines and retries — from a
// small struct or from the standard environment.
//
//   // COFFER_ENDPOINT=store.coffer:7702 COFFER_CA=/certs/ca.crt
//   // COFFER_CERT=/certs/app.crt COFFER_KEY=/certs/app.key
//   COFFER_ASSIGN_OR_RETURN(coffer::client::ClientOptions options,
//                           coffer::client::OptionsFromEnvironment(coffer::client::Service::kStore));
//   options.timeout = absl::Seconds(2);
//
// Pinning: by default the client accepts only the well-known SPIFFE ID of
// the service it talks to (spiffe://<trust domain>/store or /kms), checked
// in the TLS handshake, so another certificate of the same CA that names the
// host cannot pose as the store. COFFER_SERVER_SPIFFE_ID (or
// server_spiffe_id) overrides it; "none" turns pinning off and checks the
// host name instead.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/rpc/tls.h"

namespace coffer::metrics {
class Metrics;
}

namespace coffer::client {

enum class Service { kStore, kKms };

// Retries of calls that are safe to repeat (idempotent ones, and writes the
// client made idempotent with a request token), on UNAVAILABLE only:
// exponential backoff with full jitter, within the call's deadline.
struct RetryPolicy {
  int max_attempts = 4;  // 1: no retries
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  double multiplier = 2.0;
};

struct ClientOptions {
  std::string endpoint;  // host:port
  rpc::TlsFiles tls;
  // The SPIFFE ID the server must present; empty: check the host name.
  std::string server_spiffe_id;
  // Deadline of each call, retries included.
  absl::Duration timeout = absl::Seconds(10);
  RetryPolicy retry;
  // Log each failed call (method, code, attempts, latency; never a value).
  bool log_calls = true;
  // Optional: grpc_client_* metrics and the caches' counters go here (not
  // owned; must outlive the clients).
  metrics::Metrics* metrics = nullptr;
};

// The well-known identity of `service` in `trust_domain`.
std::string DefaultServerIdentity(Service service, const std::string& trust_domain);
// The default endpoint of `service` (localhost:7702 / localhost:7701).
std::string DefaultEndpoint(Service service);

// Options from COFFER_ENDPOINT (default DefaultEndpoint), COFFER_CA,
// COFFER_CERT, COFFER_KEY (all three required), COFFER_SERVER_SPIFFE_ID
// (default DefaultServerIdentity in COFFER_TRUST_DOMAIN, default
// coffer.local; "none": no pinning). INVALID_ARGUMENT naming the variable
// when one is missing or a file cannot be read.
absl::StatusOr<ClientOptions> OptionsFromEnvironment(Service service);

// INVALID_ARGUMENT naming the field when `options` cannot work.
absl::Status ValidateOptions(const ClientOptions& options);

}  // namespace coffer::client
