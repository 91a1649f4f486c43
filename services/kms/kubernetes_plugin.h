// kubernetes_plugin.h: coffer-kms as a Kubernetes KMS v2 plugin, so that the
// API server encrypts its own Secrets (and any other resource its
// EncryptionConfiguration names) under a Coffer key.
//
// The API server wraps each data-encryption-key seed with Encrypt, unwraps
// it with Decrypt, and polls Status for health and the key_id that Encrypt
// would report now. Served on a Unix socket (main.cc: --kubernetes_kms_socket)
// whose file mode (0600) is the authentication: every call acts as one
// principal (--kubernetes_kms_identity, by default
// spiffe://coffer.local/kubernetes-apiserver), is authorized by the same
// identity policy as every gRPC call, and audited.
//
//   KubernetesKmsPlugin plugin(keys.get(), &access, &plugin_gate, &probe, "alias/kubernetes");
//   ... register &plugin with a grpc::ServerBuilder listening on unix:///run/coffer/kms.sock
//
// What each call does:
//  - Status (authorized as kms:DescribeKey on the configured key): version
//    "v2"; healthz "ok" while the key is Enabled, else its state; key_id =
//    KeyIdOf(key ARN, current material version). A rotation (automatic or
//    RotateKeyOnDemand) changes the key_id, which tells the API server to
//    wrap new seeds under the new material.
//  - Encrypt (kms:Encrypt on the configured key): 1-kMaxPlaintextBytes of
//    plaintext, sealed under the key's newest material with the encryption
//    context {kEncryptionContextKey: "v2"} (so a ciphertext made here is not
//    a plain Decrypt away for a gRPC caller who lacks that condition); the
//    key_id is that of the material actually used.
//  - Decrypt (kms:Decrypt on the key the ciphertext names): any earlier
//    material version of the key decrypts, and a ciphertext of a key the
//    plugin was configured with before, as long as the policy allows it.
//
// Limits are the API server's own (k8s.io/apiserver kmsv2): ciphertext and
// key_id 1-1024 bytes, annotations at most 32 KiB (keys plus values); uid at
// most 256 characters. Anything else is INVALID_ARGUMENT naming the field.
#pragma once

#include <string>

#include "k8s/kms/apis/v2/api.grpc.pb.h"
#include "libs/runtime/call_gate.h"
#include "services/kms/key_manager.h"
#include "services/kms/kms_access.h"
#include "services/kms/kms_probe.h"

namespace coffer::kms {

class KubernetesKmsPlugin final : public ::v2::KeyManagementService::CallbackService {
 public:
  static constexpr size_t kMaxCiphertextBytes = 1024;
  static constexpr size_t kMaxKeyIdBytes = 1024;
  static constexpr size_t kMaxAnnotationsBytes = 32 * 1024;
  static constexpr size_t kMaxUidBytes = 256;
  // The API server sends a 32-byte seed (or key); 512 keeps every
  // ciphertext well under kMaxCiphertextBytes.
  static constexpr size_t kMaxPlaintextBytes = 512;
  static constexpr char kEncryptionContextKey[] = "coffer:kubernetes-kms";
  // The audit's and gRPC's largest request: the limits above plus framing.
  static constexpr int kMaxRequestBytes = 64 * 1024;

  // None is owned; all must outlive the plugin. `gate` is the plugin
  // listener's (its fixed principal is the API server's identity); `probe`
  // may be null. `key` is a key id, key ARN, alias name or alias ARN.
  KubernetesKmsPlugin(KeyManager* keys, const KmsAccess* access, runtime::CallGate* gate,
                      KmsProbe* probe, std::string key)
      : keys_(keys), access_(access), gate_(gate), probe_(probe), key_(std::move(key)) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const ::v2::StatusRequest* request,
                                   ::v2::StatusResponse* response) override;
  grpc::ServerUnaryReactor* Encrypt(grpc::CallbackServerContext* context,
                                    const ::v2::EncryptRequest* request,
                                    ::v2::EncryptResponse* response) override;
  grpc::ServerUnaryReactor* Decrypt(grpc::CallbackServerContext* context,
                                    const ::v2::DecryptRequest* request,
                                    ::v2::DecryptResponse* response) override;

  // The key_id reported for material `version` of the key `key_arn`:
  // "<key ARN>:v<version>".
  static std::string KeyIdOf(absl::string_view key_arn, uint32_t version);

 private:
  KeyManager* keys_;
  const KmsAccess* access_;
  runtime::CallGate* gate_;
  KmsProbe* probe_;
  std::string key_;
};

}  // namespace coffer::kms
