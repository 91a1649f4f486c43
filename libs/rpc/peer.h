// peer.h: who is calling.
//
// A caller's identity is the SPIFFE ID in its client certificate's URI SAN
// (spiffe://coffer.local/app/catagram), which gRPC exposes as the
// "peer_spiffe_id" auth property; never the common name.
//
//   std::string who = coffer::rpc::PeerSpiffeId(*context).value_or("");
#pragma once

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>

namespace coffer::rpc {

// The SPIFFE ID of the authenticated peer, or nullopt (no certificate, or
// not exactly one spiffe:// URI SAN).
std::optional<std::string> PeerSpiffeId(const grpc::ServerContextBase& context);

// The peer address as gRPC reports it ("ipv4:127.0.0.1:53412").
std::string PeerAddress(const grpc::ServerContextBase& context);

// The SPIFFE ID in an auth context, on either side of a call (a client can
// check whom it reached with ClientContext::auth_context()); nullopt as above.
std::optional<std::string> SpiffeIdOf(const grpc::AuthContext* auth);

}  // namespace coffer::rpc
