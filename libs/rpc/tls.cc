#include "libs/rpc/tls.h"

#include <fcntl.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

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

namespace {
// Pins the server's identity: its certificate must carry `expected` as a URI
// SAN. Runs during the handshake, after chain verification.
class SpiffeIdVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit SpiffeIdVerifier(std::string expected) : expected_(std::move(expected)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    std::string seen;
    for (const grpc::string_ref& uri : request->uri_names()) {
      std::string id(uri.data(), uri.size());
      if (id == expected_) {
        *sync_status = grpc::Status::OK;
        return true;
      }
      if (!seen.empty()) seen += ",";
      seen += id;
    }
    *sync_status = grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        absl::StrCat("server identity '", seen, "' is not the expected '", expected_, "'"));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::string expected_;
};
}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, const std::string& expected_spiffe_id) {
  COFFER_RETURN_IF_ERROR(CheckTlsFiles(files));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(MakeProvider(files));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  if (expected_spiffe_id.empty()) {
    // Chain verification against ca_file plus the host name (or the
    // authority override) against the server certificate's SANs.
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  } else {
    // Chain verification plus the pinned SPIFFE identity.
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<SpiffeIdVerifier>(
            expected_spiffe_id));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) return absl::InvalidArgumentError("TLS channel credentials rejected");
  return creds;
}

}  // namespace coffer::rpc
