// KeyManager: crypto operations (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*,
// GenerateRandom) and the built-in alias/coffer/<service> keys made on first
// use. See key_manager_internal.h for how the KeyManager is spread over files.
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/encryption_context.h"
#include "libs/crypto/random.h"
#include "services/kms/ciphertext.h"
#include "services/kms/key_manager.h"
#include "services/kms/key_manager_internal.h"

namespace coffer::kms {

using key_manager_internal::CheckUsable;
using key_manager_internal::kAlgorithm;
using key_manager_internal::NotFound;
using key_manager_internal::ValidateAliasName;
using key_manager_internal::ValidateKeyRef;

namespace {

constexpr size_t kMaxPlaintext = 4096;
constexpr size_t kMaxContextBytes = 8192;
constexpr int kMaxDataKeyBytes = 1024;

std::map<std::string, std::string> ToContext(
    const google::protobuf::Map<std::string, std::string>& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

absl::Status ValidateContext(absl::string_view field, const std::map<std::string, std::string>& c) {
  for (const auto& [k, v] : c) {
    if (k.empty()) return InvalidField(field, "keys must not be empty");
  }
  if (crypto::EncodeEncryptionContext(c).size() > kMaxContextBytes) {
    return InvalidField(field, absl::StrCat("must encode to at most ", kMaxContextBytes, " bytes"));
  }
  return absl::OkStatus();
}

// GenerateRandom and GenerateDataKey's number_of_bytes: 1-1024.
absl::Status ValidateNumberOfBytes(int number_of_bytes) {
  if (number_of_bytes < 1 || number_of_bytes > kMaxDataKeyBytes) {
    return InvalidField("number_of_bytes",
                        absl::StrCat("must be between 1 and ", kMaxDataKeyBytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> DataKeyBytes(int number_of_bytes, v1::DataKeySpec spec) {
  bool has_spec = spec != v1::DATA_KEY_SPEC_UNSPECIFIED;
  if (has_spec == (number_of_bytes != 0)) {
    return InvalidField("number_of_bytes",
                        "exactly one of number_of_bytes and key_spec is required");
  }
  if (has_spec) {
    if (spec == v1::DATA_KEY_SPEC_AES_256) return 32;
    if (spec == v1::DATA_KEY_SPEC_AES_128) return 16;
    return InvalidField("key_spec", "must be AES_256 or AES_128");
  }
  COFFER_RETURN_IF_ERROR(ValidateNumberOfBytes(number_of_bytes));
  return number_of_bytes;
}

}  // namespace

// ---- picking the key ----

absl::StatusOr<std::string> KeyManager::ResolveForEncrypt(absl::string_view field,
                                                          absl::string_view ref) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto id = ResolveLocked(field, ref);
    if (id.ok() || id.status().code() != absl::StatusCode::kNotFound) return id;
  }
  // Built-in keys (alias/coffer/<service>) come into being on first use, as
  // AWS managed keys do.
  std::string alias(ref);
  std::string alias_arn_prefix = AliasArn("");
  if (absl::StartsWith(alias, alias_arn_prefix)) alias = alias.substr(alias_arn_prefix.size());
  if (!absl::StartsWith(alias, "alias/coffer/") ||
      !ValidateAliasName(field, alias, /*allow_reserved=*/true).ok()) {
    absl::ReaderMutexLock lock(&mu_);
    return ResolveLocked(field, ref);
  }
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::string> id;
    {
      absl::MutexLock turn(&write_mu_);  // one change at a time
      absl::WriterMutexLock lock(&mu_);
      id = ResolveLocked(field, ref);
      if (id.ok() || id.status().code() != absl::StatusCode::kNotFound) return id;
      id = CreateKeyLocked(v1::KEY_MANAGER_COFFER,
                           absl::StrCat("Default key that protects ", alias.substr(13),
                                        " when no other key is defined"),
                           {}, alias);
    }
    // Replicas: another one may have made it first; read what it wrote.
    if (!IsReplicaConflict(id.status()) || attempt == 4) return id;
    COFFER_RETURN_IF_ERROR(Refresh());
  }
}

absl::StatusOr<KeyManager::ResolvedKey> KeyManager::KeyForEncrypt(absl::string_view field,
                                                                  absl::string_view ref) {
  COFFER_ASSIGN_OR_RETURN(std::string id, ResolveForEncrypt(field, ref));
  absl::ReaderMutexLock lock(&mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return NotFound("Key", ref);
  COFFER_RETURN_IF_ERROR(CheckUsable(it->second->record));
  return ResolvedKey{id, it->second->record.metadata().arn(), it->second->material.back()};
}

absl::StatusOr<crypto::SecureBuffer> KeyManager::DecryptBlob(absl::string_view blob,
                                                             const Context& context,
                                                             absl::string_view key_field,
                                                             absl::string_view key_ref,
                                                             ResolvedKey* used) {
  if (blob.empty() || blob.size() > kMaxCiphertextBytes) {
    return InvalidField("ciphertext_blob",
                        absl::StrCat("must be 1-", kMaxCiphertextBytes, " bytes"));
  }
  COFFER_ASSIGN_OR_RETURN(ParsedCiphertext parsed, ParseCiphertext(blob));
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!key_ref.empty()) {
      COFFER_ASSIGN_OR_RETURN(std::string id, ResolveLocked(key_field, key_ref));
      if (id != parsed.key_id) {
        return Error(
            reason::kIncorrectKey,
            absl::StrCat(key_field, ": the ciphertext was not encrypted under key '", key_ref, "'"),
            key_ref, key_field);
      }
    }
    auto it = keys_.find(parsed.key_id);
    if (it == keys_.end() || parsed.version > it->second->material.size() ||
        !it->second->material[parsed.version - 1]) {
      return InvalidCiphertextError();
    }
    COFFER_RETURN_IF_ERROR(CheckUsable(it->second->record));
    *used = ResolvedKey{parsed.key_id, it->second->record.metadata().arn(),
                        it->second->material[parsed.version - 1]};
  }
  return OpenCiphertext(parsed, used->material->key, context);
}

// ---- the operations ----

absl::StatusOr<v1::EncryptResponse> KeyManager::Encrypt(const v1::EncryptRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef("key_id", request.key_id()));
  if (request.plaintext().empty() || request.plaintext().size() > kMaxPlaintext) {
    return InvalidField("plaintext", absl::StrCat("must be 1-", kMaxPlaintext, " bytes"));
  }
  Context context = ToContext(request.encryption_context());
  COFFER_RETURN_IF_ERROR(ValidateContext("encryption_context", context));
  COFFER_ASSIGN_OR_RETURN(ResolvedKey key, KeyForEncrypt("key_id", request.key_id()));
  v1::EncryptResponse response;
  response.set_ciphertext_blob(SealCiphertext(key.key_id, key.material->version, key.material->key,
                                              request.plaintext(), context));
  response.set_key_id(key.arn);
  response.set_encryption_algorithm(kAlgorithm);
  return response;
}

absl::StatusOr<v1::DecryptResponse> KeyManager::Decrypt(const v1::DecryptRequest& request) {
  Context context = ToContext(request.encryption_context());
  COFFER_RETURN_IF_ERROR(ValidateContext("encryption_context", context));
  ResolvedKey used;
  COFFER_ASSIGN_OR_RETURN(
      crypto::SecureBuffer plaintext,
      DecryptBlob(request.ciphertext_blob(), context, "key_id", request.key_id(), &used));
  v1::DecryptResponse response;
  response.set_key_id(used.arn);
  response.set_plaintext(std::string(plaintext.view()));
  response.set_encryption_algorithm(kAlgorithm);
  return response;
}

absl::StatusOr<v1::ReEncryptResponse> KeyManager::ReEncrypt(const v1::ReEncryptRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef("destination_key_id", request.destination_key_id()));
  Context source_context = ToContext(request.source_encryption_context());
  COFFER_RETURN_IF_ERROR(ValidateContext("source_encryption_context", source_context));
  Context destination_context = ToContext(request.destination_encryption_context());
  COFFER_RETURN_IF_ERROR(ValidateContext("destination_encryption_context", destination_context));
  ResolvedKey source;
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plaintext,
                          DecryptBlob(request.ciphertext_blob(), source_context, "source_key_id",
                                      request.source_key_id(), &source));
  COFFER_ASSIGN_OR_RETURN(ResolvedKey destination,
                          KeyForEncrypt("destination_key_id", request.destination_key_id()));
  v1::ReEncryptResponse response;
  response.set_ciphertext_blob(SealCiphertext(destination.key_id, destination.material->version,
                                              destination.material->key, plaintext.view(),
                                              destination_context));
  response.set_source_key_id(source.arn);
  response.set_key_id(destination.arn);
  response.set_source_key_material_version(source.material->version);
  response.set_destination_key_material_version(destination.material->version);
  return response;
}

template <typename Request, typename Response>
absl::StatusOr<crypto::SecureBuffer> KeyManager::NewDataKey(const Request& request,
                                                            Response& response) {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef("key_id", request.key_id()));
  Context context = ToContext(request.encryption_context());
  COFFER_RETURN_IF_ERROR(ValidateContext("encryption_context", context));
  COFFER_ASSIGN_OR_RETURN(int bytes, DataKeyBytes(request.number_of_bytes(), request.key_spec()));
  COFFER_ASSIGN_OR_RETURN(ResolvedKey key, KeyForEncrypt("key_id", request.key_id()));
  crypto::SecureBuffer plaintext = crypto::SecureBuffer::Random(static_cast<size_t>(bytes));
  response.set_key_id(key.arn);
  response.set_ciphertext_blob(SealCiphertext(key.key_id, key.material->version, key.material->key,
                                              plaintext.view(), context));
  return plaintext;
}

absl::StatusOr<v1::GenerateDataKeyResponse> KeyManager::GenerateDataKey(
    const v1::GenerateDataKeyRequest& request) {
  v1::GenerateDataKeyResponse response;
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plaintext, NewDataKey(request, response));
  response.set_plaintext(std::string(plaintext.view()));
  return response;
}

absl::StatusOr<v1::GenerateDataKeyWithoutPlaintextResponse>
KeyManager::GenerateDataKeyWithoutPlaintext(
    const v1::GenerateDataKeyWithoutPlaintextRequest& request) {
  v1::GenerateDataKeyWithoutPlaintextResponse response;
  COFFER_RETURN_IF_ERROR(NewDataKey(request, response).status());
  return response;
}

absl::StatusOr<v1::GenerateRandomResponse> KeyManager::GenerateRandom(
    const v1::GenerateRandomRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateNumberOfBytes(request.number_of_bytes()));
  v1::GenerateRandomResponse response;
  response.set_plaintext(crypto::RandomString(static_cast<size_t>(request.number_of_bytes())));
  return response;
}

}  // namespace coffer::kms
