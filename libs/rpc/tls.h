// tls.h: mutual-TLS credentials for servers and clients.
//
// Certificates are read through gRPC's FileWatcherCertificateProvider, so a
// renewed certificate or CA on disk (cert-manager style) is picked up every
// `refresh_interval` without a restart.
//
//   coffer::rpc::TlsFiles tls{"/certs/ca.crt", "/certs/kms.crt", "/certs/kms.key"};
//   auto creds = coffer::rpc::MakeServerCredentials(tls);   // client certs required
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
}  // namespace grpc

namespace coffer::rpc {

struct TlsFiles {
  std::string ca_file;    // PEM bundle of trusted CAs
  std::string cert_file;  // PEM certificate chain of this process
  std::string key_file;   // PEM private key of this process
  absl::Duration refresh_interval = absl::Seconds(60);
};

// INVALID_ARGUMENT naming the flag/file when a file is missing or unreadable.
absl::Status CheckTlsFiles(const TlsFiles& files);

// Server side: presents cert_file, requires a client certificate and
// verifies it against ca_file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files);

// Client side: presents cert_file, verifies the server against ca_file and
// the target host name — or, when `expected_spiffe_id` is set, requires the
// server certificate to carry exactly that SPIFFE ID as a URI SAN instead of
// checking the host name. Either check runs in the handshake, so nothing is
// sent to a server that fails it.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, const std::string& expected_spiffe_id = "");

}  // namespace coffer::rpc
