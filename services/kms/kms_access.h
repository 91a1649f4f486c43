// kms_access.h: who may use which key — the identity policy on the key (by
// the reference the caller used, the key's ARN and the alias) with the
// encryption context as condition keys, plus the rules no policy can widen:
//
//  - Only coffer-store (KmsAccessOptions::store_spiffe_id) may generate,
//    encrypt, decrypt or re-encrypt under an encryption context that names
//    a secret (SecretARN, SecretVersionId) or a parameter (PARAMETER_ARN):
//    a copy of the store's database plus any other certificate yields
//    nothing.
//  - Built-in keys (KEY_MANAGER_COFFER, alias/coffer/<service>) are Coffer's:
//    no one disables, enables, rotates on demand, tags, re-describes,
//    schedules or cancels their deletion, or changes their rotation.
//  - Only coffer-store may cause a built-in key's creation (first use of an
//    alias/coffer/<service> name).
//  - No caller at all may use the encryption context of an access key's
//    sealed secret (coffer:access-key-id): those are opened inside
//    coffer-kms only (access_keys.h).
//
//   KmsAccess guard(key_manager.get(), {"spiffe://coffer.local/store"});
//   COFFER_RETURN_IF_ERROR(guard.Check(access, "kms:Decrypt", key_ref, &context));
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/map.h"
#include "libs/authz/authorizer.h"
#include "services/kms/key_manager.h"

namespace coffer::kms {

struct KmsAccessOptions {
  // The identity of coffer-store ("": no one may use secrets contexts).
  std::string store_spiffe_id = "spiffe://coffer.local/store";
};

class KmsAccess {
 public:
  // `keys` is not owned and must outlive this object.
  KmsAccess(const KeyManager* keys, KmsAccessOptions options)
      : keys_(keys), options_(std::move(options)) {}

  using ProtoContext = google::protobuf::Map<std::string, std::string>;

  // `action` is "kms:<Operation>"; `key_ref` as the request gave it ("" for
  // calls on no key: the resource is then "*"); `context` the encryption
  // context of crypto calls.
  absl::Status Check(const authz::Access& access, absl::string_view action,
                     absl::string_view key_ref, const ProtoContext* context = nullptr) const;

  // The key a Decrypt/ReEncrypt names: `key_id` when the caller gave one,
  // else the key id the ciphertext blob was made under ("" if it is not one).
  static std::string KeyOfCiphertext(const std::string& key_id, absl::string_view blob);

 private:
  const KeyManager* keys_;
  KmsAccessOptions options_;
};

}  // namespace coffer::kms
