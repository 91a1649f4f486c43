#include "libs/rpc/unix_socket_server.h"

#include <errno.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/server_builder.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/log.h"

namespace coffer::rpc {
namespace {

// Drops the reflection plugin gRPC registers globally: the socket serves
// exactly the given services.
class NoPlugins final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }
};

std::string Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// True when something accepts connections on the socket at `path`.
bool Listening(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  const bool connected =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

absl::Status PrepareSocketPath(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path, "\" must be absolute"));
  }
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path, "\" is longer than ",
                                                   sizeof(sockaddr_un{}.sun_path) - 1, " bytes"));
  }
  struct stat parent {};
  const std::string dir = Parent(path);
  if (::stat(dir.c_str(), &parent) != 0 || !S_ISDIR(parent.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("socket directory ", dir, " does not exist"));
  }
  if ((parent.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (parent.st_mode & S_ISVTX) == 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "socket directory %s (mode %04o) may be written by others without the sticky bit: "
        "anyone could replace the socket; use a directory only its owner can write",
        dir, parent.st_mode & 07777));
  }
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) != 0) return absl::OkStatus();
  if (!S_ISSOCK(existing.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
  }
  if (Listening(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is in use: another process listens on it"));
  }
  if (::unlink(path.c_str()) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot remove the stale socket ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<grpc::Server>> StartUnixSocketServer(
    UnixSocketServerOptions options, const std::vector<grpc::Service*>& services) {
  if (absl::Status prepared = PrepareSocketPath(options.path); !prepared.ok()) return prepared;
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<NoPlugins>());
  int port = 0;
  builder.AddListeningPort(absl::StrCat("unix:", options.path), grpc::InsecureServerCredentials(),
                           &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (!options.interceptors.empty()) {
    builder.experimental().SetInterceptorCreators(std::move(options.interceptors));
  }
  // The umask is per process: other threads creating files meanwhile get
  // them no wider than `mode` allows, never wider than they asked for.
  const mode_t previous = ::umask(static_cast<mode_t>(~options.mode & 0777));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ::umask(previous);
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on unix:", options.path));
  }
  struct stat bound {};
  if (::chmod(options.path.c_str(), options.mode) != 0 ||
      ::lstat(options.path.c_str(), &bound) != 0 || !S_ISSOCK(bound.st_mode) ||
      (bound.st_mode & 07777) != options.mode) {
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot give the socket %s mode %04o", options.path, options.mode));
  }
  log::Info("rpc", "serving on a Unix socket",
            {{"path", options.path}, {"mode", absl::StrFormat("%04o", options.mode)}});
  return server;
}

}  // namespace coffer::rpc
