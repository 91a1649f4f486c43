#include "libs/rpc/tls.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace coffer::rpc {
namespace {

absl::Status CheckReadable(absl::string_view what, const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("TLS ", what, " is not set"));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " '", path, "' cannot be read: ", std::strerror(errno)));
  }
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("TLS ", what, " '", path, "' is empty"));
  }
  return absl::OkStatus();
}

unsigned int RefreshSeconds(const TlsFiles& files) {
  // gRPC re-reads the files every interval; below a second is pointless.
  return static_cast<unsigned int>(
      std::clamp<int64_t>(absl::ToInt64Seconds(files.refresh_interval), 1, 24 * 3600));
}

std::shared_ptr<grpc::experimental::CertificateProviderInterface> MakeProvider(
    const TlsFiles& files) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.ca_file, RefreshSeconds(files));
}

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& files) {
  COFFER_RETURN_IF_ERROR(CheckReadable("ca_file", files.ca_file));
  COFFER_RETURN_IF_ERROR(CheckReadable("cert_file", files.cert_file));
  COFFER_RETURN_IF_ERROR(CheckReadable("key_file", files.key_file));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files) {
  COFFER_RETURN_IF_ERROR(CheckTlsFiles(files));
  grpc::experimental::TlsServerCredentialsOptions options(MakeProvider(files));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::experimental::TlsServerCredentials(options);
  if (creds == nullptr) return absl::InvalidArgumentError("TLS server credentials rejected");
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files) {
  COFFER_RETURN_IF_ERROR(CheckTlsFiles(files));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(MakeProvider(files));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  // Chain verification against ca_file plus the host name (or the authority
  // override) against the server certificate's SANs.
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) return absl::InvalidArgumentError("TLS channel credentials rejected");
  return creds;
}

}  // namespace coffer::rpc
