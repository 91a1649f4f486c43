// access_keys_service.h: the gRPC face of coffer-kms's access keys
// (coffer.iam.v1.AccessKeys), thin like KmsService: each handler passes the
// call gate, authorizes, and calls the AccessKeyStore method of the same
// name.
//
// Authorization: iam:<Operation> on the identity the key belongs to (for
// ListAccessKeys the identity asked for, or "*"), so a policy can let a team
// manage the keys of its own workloads only. GetSigningKey is pinned to
// coffer-store's SPIFFE ID and no policy can grant it. The secret access key
// in a CreateAccessKey response and the signing key in a GetSigningKey
// response are wiped once sent.
//
//   AccessKeysService service(access_keys.get(), gate, "spiffe://coffer.local/store");
#pragma once

#include <string>

#include "coffer/iam/v1/access_keys.grpc.pb.h"
#include "libs/runtime/call_gate.h"
#include "libs/runtime/signed_callers.h"
#include "services/kms/access_keys.h"

namespace coffer::kms {

class AccessKeysService final : public iam::v1::AccessKeys::CallbackService {
 public:
  // Neither pointer is owned. `gate` null: every caller trusted (tests).
  AccessKeysService(AccessKeyStore* store, runtime::CallGate* gate, std::string store_spiffe_id)
      : store_(store),
        gate_(gate != nullptr ? gate : &runtime::CallGate::Unguarded()),
        store_spiffe_id_(std::move(store_spiffe_id)) {}

#define COFFER_ACCESS_KEYS_RPC(Method)                                      \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context,    \
                                   const iam::v1::Method##Request* request, \
                                   iam::v1::Method##Response* response) override;
  COFFER_ACCESS_KEYS_RPC(CreateAccessKey)
  COFFER_ACCESS_KEYS_RPC(ListAccessKeys)
  COFFER_ACCESS_KEYS_RPC(UpdateAccessKey)
  COFFER_ACCESS_KEYS_RPC(DeleteAccessKey)
  COFFER_ACCESS_KEYS_RPC(GetSigningKey)
#undef COFFER_ACCESS_KEYS_RPC

 private:
  AccessKeyStore* store_;
  runtime::CallGate* gate_;
  std::string store_spiffe_id_;
};

// The signing keys of `store`'s access keys, for coffer-kms's own
// verification of the gateway's calls (signed_callers.h). Not owned.
std::unique_ptr<runtime::SigningKeySource> LocalSigningKeys(AccessKeyStore* store);

}  // namespace coffer::kms
