#include "libs/rpc/peer.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/match.h"

namespace coffer::rpc {

std::optional<std::string> SpiffeIdOf(const grpc::AuthContext* auth) {
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return std::nullopt;
  // gRPC sets this property only for exactly one spiffe:// URI SAN.
  std::vector<grpc::string_ref> values =
      auth->FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  if (values.size() != 1) return std::nullopt;
  std::string id(values[0].data(), values[0].size());
  if (!absl::StartsWith(id, "spiffe://")) return std::nullopt;
  return id;
}

std::optional<std::string> PeerSpiffeId(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  return SpiffeIdOf(auth.get());
}

std::string PeerAddress(const grpc::ServerContextBase& context) { return context.peer(); }

}  // namespace coffer::rpc
