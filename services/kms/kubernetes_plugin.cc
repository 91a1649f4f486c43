#include "services/kms/kubernetes_plugin.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/rpc/unary.h"
#include "services/kms/ciphertext.h"

namespace coffer::kms {
namespace {

constexpr char kVersion[] = "v2";

// The encryption context of every ciphertext the plugin makes and opens.
KmsAccess::ProtoContext PluginContext() {
  KmsAccess::ProtoContext context;
  context[KubernetesKmsPlugin::kEncryptionContextKey] = kVersion;
  return context;
}

absl::Status CheckSize(absl::string_view field, size_t size, size_t min, size_t max) {
  if (size < min) return InvalidField(field, "must not be empty");
  if (size > max) {
    return InvalidField(field, absl::StrCat("is ", size, " bytes; at most ", max, " are allowed"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDecrypt(const ::v2::DecryptRequest& request) {
  COFFER_RETURN_IF_ERROR(CheckSize("ciphertext", request.ciphertext().size(), 1,
                                   KubernetesKmsPlugin::kMaxCiphertextBytes));
  COFFER_RETURN_IF_ERROR(
      CheckSize("key_id", request.key_id().size(), 1, KubernetesKmsPlugin::kMaxKeyIdBytes));
  COFFER_RETURN_IF_ERROR(
      CheckSize("uid", request.uid().size(), 0, KubernetesKmsPlugin::kMaxUidBytes));
  size_t annotations = 0;
  for (const auto& [key, value] : request.annotations()) annotations += key.size() + value.size();
  return CheckSize("annotations", annotations, 0, KubernetesKmsPlugin::kMaxAnnotationsBytes);
}

}  // namespace

std::string KubernetesKmsPlugin::KeyIdOf(absl::string_view key_arn, uint32_t version) {
  return absl::StrCat(key_arn, ":v", version);
}

grpc::ServerUnaryReactor* KubernetesKmsPlugin::Status(grpc::CallbackServerContext* context,
                                                      const ::v2::StatusRequest* /*request*/,
                                                      ::v2::StatusResponse* response) {
  return gate_->Unary<::v2::StatusResponse>(
      context, "kms:DescribeKey",
      [this](const authz::Access& access) -> absl::StatusOr<::v2::StatusResponse> {
        COFFER_RETURN_IF_ERROR(access_->Check(access, "kms:DescribeKey", key_));
        v1::DescribeKeyRequest describe;
        describe.set_key_id(key_);
        COFFER_ASSIGN_OR_RETURN(v1::DescribeKeyResponse described, keys_->DescribeKey(describe));
        const v1::KeyMetadata& key = described.key_metadata();
        ::v2::StatusResponse status;
        status.set_version(kVersion);
        if (key.key_state() == v1::KEY_STATE_ENABLED) {
          status.set_healthz("ok");
        } else {
          // "key <ref> is disabled": the API server reports it as unhealthy.
          std::string state(absl::StripPrefix(v1::KeyState_Name(key.key_state()), "KEY_STATE_"));
          absl::AsciiStrToLower(&state);
          status.set_healthz(absl::StrCat("key ", key_, " is ", state));
        }
        status.set_key_id(KeyIdOf(key.arn(), key.current_key_material_version()));
        return status;
      },
      response);
}

grpc::ServerUnaryReactor* KubernetesKmsPlugin::Encrypt(grpc::CallbackServerContext* context,
                                                       const ::v2::EncryptRequest* request,
                                                       ::v2::EncryptResponse* response) {
  return gate_->Unary<::v2::EncryptResponse>(
      context, "kms:Encrypt",
      [this, request](const authz::Access& access) -> absl::StatusOr<::v2::EncryptResponse> {
        COFFER_RETURN_IF_ERROR(
            CheckSize("plaintext", request->plaintext().size(), 1, kMaxPlaintextBytes));
        COFFER_RETURN_IF_ERROR(CheckSize("uid", request->uid().size(), 0, kMaxUidBytes));
        const KmsAccess::ProtoContext context = PluginContext();
        COFFER_RETURN_IF_ERROR(access_->Check(access, "kms:Encrypt", key_, &context));
        v1::EncryptRequest encrypt;
        encrypt.set_key_id(key_);
        *encrypt.mutable_encryption_context() = context;
        encrypt.set_plaintext(request->plaintext());
        absl::StatusOr<v1::EncryptResponse> sealed = keys_->Encrypt(encrypt);
        rpc::WipeString(encrypt.plaintext());
        if (probe_ != nullptr) probe_->CryptoOperation("Encrypt", sealed.ok());
        if (!sealed.ok()) return sealed.status();
        // The material version the blob was sealed under names the key_id,
        // so a rotation racing this call cannot mislabel it.
        COFFER_ASSIGN_OR_RETURN(ParsedCiphertext parsed,
                                ParseCiphertext(sealed->ciphertext_blob()));
        ::v2::EncryptResponse out;
        out.set_key_id(KeyIdOf(sealed->key_id(), parsed.version));
        out.set_ciphertext(std::move(*sealed->mutable_ciphertext_blob()));
        return out;
      },
      response, [request] { rpc::WipeString(request->plaintext()); });
}

grpc::ServerUnaryReactor* KubernetesKmsPlugin::Decrypt(grpc::CallbackServerContext* context,
                                                       const ::v2::DecryptRequest* request,
                                                       ::v2::DecryptResponse* response) {
  return gate_->Unary<::v2::DecryptResponse>(
      context, "kms:Decrypt",
      [this, request](const authz::Access& access) -> absl::StatusOr<::v2::DecryptResponse> {
        COFFER_RETURN_IF_ERROR(ValidateDecrypt(*request));
        const KmsAccess::ProtoContext context = PluginContext();
        COFFER_RETURN_IF_ERROR(access_->Check(access, "kms:Decrypt",
                                              KmsAccess::KeyOfCiphertext("", request->ciphertext()),
                                              &context));
        v1::DecryptRequest decrypt;
        decrypt.set_ciphertext_blob(request->ciphertext());
        *decrypt.mutable_encryption_context() = context;
        absl::StatusOr<v1::DecryptResponse> opened = keys_->Decrypt(decrypt);
        if (probe_ != nullptr) probe_->CryptoOperation("Decrypt", opened.ok());
        if (!opened.ok()) return opened.status();
        ::v2::DecryptResponse out;
        out.set_plaintext(std::move(*opened->mutable_plaintext()));
        return out;
      },
      response, [response] { rpc::WipeString(response->plaintext()); });
}

}  // namespace coffer::kms
