// unix_socket_server.h: a plaintext gRPC server on a Unix socket, for a
// local caller that cannot present a certificate (the Kubernetes API server
// calling its KMS plugin). The socket's file mode is the authentication:
// create it where only the intended user can reach it.
//
//   UnixSocketServerOptions options;
//   options.path = "/run/coffer/kms-plugin.sock";
//   options.mode = 0600;                  // the owner (and root) only
//   COFFER_ASSIGN_OR_RETURN(auto server, StartUnixSocketServer(std::move(options), {&plugin}));
//   ...
//   server->Shutdown(deadline);  // the socket file stays; the next start replaces it
//
// The socket is bound with the umask set so that it never exists with a
// wider mode than `mode`, then chmod'ed to exactly `mode` and checked.
// Refused (FAILED_PRECONDITION, naming the path): a path that exists and is
// not a socket; a socket another process still listens on; a parent
// directory that others may write to without the sticky bit (anyone could
// swap the socket). INVALID_ARGUMENT: a relative path or one longer than a
// socket address holds. Serves `services` only: no health, no reflection.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coffer::rpc {

struct UnixSocketServerOptions {
  // Absolute path of the socket file.
  std::string path;
  mode_t mode = 0600;
  // Largest request accepted (bigger: RESOURCE_EXHAUSTED from gRPC).
  int max_receive_message_bytes = 64 * 1024;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
};

absl::StatusOr<std::unique_ptr<grpc::Server>> StartUnixSocketServer(
    UnixSocketServerOptions options, const std::vector<grpc::Service*>& services);

}  // namespace coffer::rpc
