#include "services/kms/key_store.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/proto_time.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/encryption_context.h"
#include "libs/crypto/random.h"
#include "services/kms/ciphertext.h"

namespace coffer::kms {

using ::coffer::internal::kms::v1::AliasRecord;
using ::coffer::internal::kms::v1::KeyRecord;
using ::coffer::internal::kms::v1::SealedMaterial;

namespace {

constexpr char kKeysFamily[] = "keys";
constexpr char kMaterialFamily[] = "material";
constexpr char kAliasesFamily[] = "aliases";
constexpr char kAlgorithm[] = "SYMMETRIC_DEFAULT";
constexpr size_t kMaterialBytes = 32;
constexpr size_t kMaxDescription = 8192;
constexpr size_t kMaxKeyRef = 2048;
constexpr size_t kMaxPlaintext = 4096;
constexpr size_t kMaxContextBytes = 8192;
constexpr int kMaxTagsPerKey = 50;
constexpr int kMaxDataKeyBytes = 1024;

std::string MaterialKey(absl::string_view key_id, uint32_t version) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08u", version);
  return absl::StrCat(key_id, "/", buf);
}

// Associated data binding sealed material to its key and version, so that
// material cannot be moved between keys or versions on disk.
std::string MaterialAd(absl::string_view key_id, uint32_t version) {
  return absl::StrCat("coffer-kms/material/v1|", key_id, "|", version);
}

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

absl::Status ValidateKeyRef(absl::string_view field, absl::string_view ref) {
  if (ref.empty()) return InvalidField(field, "is required");
  if (ref.size() > kMaxKeyRef) {
    return InvalidField(field, absl::StrCat("must be at most ", kMaxKeyRef, " characters"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageLimit(absl::string_view field, int value, int max, int dflt) {
  if (value == 0) return dflt;
  if (value < 1 || value > max) {
    return InvalidField(field, absl::StrCat("must be between 1 and ", max));
  }
  return value;
}

// Markers are opaque to callers: the last item returned, base64url-encoded.
std::string EncodeMarker(absl::string_view last) {
  return absl::WebSafeBase64Escape(absl::StrCat("m1:", last));
}

absl::StatusOr<std::string> DecodeMarker(absl::string_view marker) {
  if (marker.empty()) return std::string();
  std::string raw;
  if (marker.size() > 4096 || !absl::WebSafeBase64Unescape(marker, &raw) ||
      !absl::StartsWith(raw, "m1:") || raw.size() == 3) {
    return Error(reason::kInvalidMarker, "marker: is not a marker returned by this operation", "",
                 "marker");
  }
  return raw.substr(3);
}

absl::Status ValidateDescription(absl::string_view d) {
  if (d.size() > kMaxDescription) {
    return InvalidField("description", absl::StrCat("must be at most ", kMaxDescription, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTagKey(absl::string_view field, absl::string_view key) {
  if (key.empty() || key.size() > 128) {
    return Error(reason::kTag, absl::StrCat(field, ": tag keys must be 1-128 characters"), "", field);
  }
  if (absl::StartsWithIgnoreCase(key, "aws:")) {
    return Error(reason::kTag, absl::StrCat(field, ": tag keys starting with aws: are reserved"), "",
                 field);
  }
  return absl::OkStatus();
}

absl::Status ValidateTags(absl::string_view field, const google::protobuf::RepeatedPtrField<v1::Tag>& tags) {
  if (tags.size() > kMaxTagsPerKey) {
    return Error(reason::kLimitExceeded, absl::StrCat(field, ": at most ", kMaxTagsPerKey, " tags"), "",
                 field);
  }
  std::set<std::string> seen;
  for (const auto& tag : tags) {
    COFFER_RETURN_IF_ERROR(ValidateTagKey(field, tag.tag_key()));
    if (tag.tag_value().size() > 256) {
      return Error(reason::kTag, absl::StrCat(field, ": tag values must be at most 256 characters"), "",
                   field);
    }
    if (!seen.insert(tag.tag_key()).second) {
      return Error(reason::kTag, absl::StrCat(field, ": duplicate tag key '", tag.tag_key(), "'"), "",
                   field);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAliasName(absl::string_view field, absl::string_view name, bool allow_reserved) {
  auto bad = [&](absl::string_view why) {
    return Error(reason::kInvalidAliasName, absl::StrCat(field, ": ", why), name, field);
  };
  if (!absl::StartsWith(name, "alias/")) return bad("must start with alias/");
  if (name.size() > 256) return bad("must be at most 256 characters");
  if (name.size() == 6) return bad("needs a name after alias/");
  for (char c : name.substr(6)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ':' || c == '/' || c == '_' || c == '-';
    if (!ok) return bad("may contain only letters, digits and :/_-");
  }
  if (!allow_reserved &&
      (absl::StartsWith(name, "alias/aws/") || absl::StartsWith(name, "alias/coffer/"))) {
    return bad("alias/aws/ and alias/coffer/ are reserved for built-in keys");
  }
  return absl::OkStatus();
}

absl::Status NotFound(absl::string_view what, absl::string_view ref) {
  return Error(reason::kNotFound, absl::StrCat(what, " '", ref, "' does not exist"), ref);
}

absl::Status CheckUsable(const KeyRecord& record) {
  const auto& md = record.metadata();
  switch (md.key_state()) {
    case v1::KEY_STATE_ENABLED:
      return absl::OkStatus();
    case v1::KEY_STATE_DISABLED:
      return Error(reason::kDisabled, absl::StrCat("Key '", md.arn(), "' is disabled"), md.arn());
    default:
      return Error(reason::kInvalidState,
                   absl::StrCat("Key '", md.arn(), "' is pending deletion"), md.arn());
  }
}

absl::Status CheckNotPendingDeletion(const KeyRecord& record) {
  if (record.metadata().key_state() == v1::KEY_STATE_PENDING_DELETION) {
    return Error(reason::kInvalidState,
                 absl::StrCat("Key '", record.metadata().arn(), "' is pending deletion"),
                 record.metadata().arn());
  }
  return absl::OkStatus();
}

absl::StatusOr<int> DataKeyBytes(int number_of_bytes, v1::DataKeySpec spec) {
  bool has_spec = spec != v1::DATA_KEY_SPEC_UNSPECIFIED;
  if (has_spec == (number_of_bytes != 0)) {
    return InvalidField("number_of_bytes", "exactly one of number_of_bytes and key_spec is required");
  }
  if (has_spec) {
    if (spec == v1::DATA_KEY_SPEC_AES_256) return 32;
    if (spec == v1::DATA_KEY_SPEC_AES_128) return 16;
    return InvalidField("key_spec", "must be AES_256 or AES_128");
  }
  if (number_of_bytes < 1 || number_of_bytes > kMaxDataKeyBytes) {
    return InvalidField("number_of_bytes", absl::StrCat("must be between 1 and ", kMaxDataKeyBytes));
  }
  return number_of_bytes;
}

}  // namespace

struct KeyStore::Material {
  uint32_t version = 0;
  crypto::SecureBuffer key;
};

struct KeyStore::LoadedKey {
  KeyRecord record;
  // material[i] is version i + 1.
  std::vector<std::shared_ptr<Material>> material;
};

struct KeyStore::ResolvedKey {
  std::string key_id;
  std::string arn;
  std::shared_ptr<Material> material;
};

KeyStore::KeyStore(const KeyStoreOptions& options, crypto::SecureBuffer root_key)
    : options_(options),
      clock_(options.clock ? options.clock : RealClock()),
      root_key_(std::move(root_key)) {}

KeyStore::~KeyStore() = default;

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const KeyStoreOptions& options,
                                                         crypto::SecureBuffer root_key) {
  if (root_key.size() != crypto::kAeadKeyBytes) {
    return absl::FailedPreconditionError("root key must be 32 bytes");
  }
  std::unique_ptr<KeyStore> store(new KeyStore(options, std::move(root_key)));
  storage::DatabaseOptions db_options;
  db_options.path = options.db_path;
  db_options.column_families = {kKeysFamily, kMaterialFamily, kAliasesFamily};
  db_options.sync_writes = options.sync_writes;
  COFFER_ASSIGN_OR_RETURN(store->db_, storage::Database::Open(db_options));
  COFFER_RETURN_IF_ERROR(store->Load());
  return store;
}

absl::Status KeyStore::Load() {
  absl::WriterMutexLock lock(&mu_);
  absl::Status status;
  COFFER_RETURN_IF_ERROR(db_->Scan(kKeysFamily, {}, [&](absl::string_view k, absl::string_view v) {
    auto key = std::make_unique<LoadedKey>();
    if (!key->record.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      status = absl::DataLossError(absl::StrCat("keystore: unreadable key record ", k));
      return false;
    }
    keys_[std::string(k)] = std::move(key);
    return true;
  }));
  COFFER_RETURN_IF_ERROR(status);
  COFFER_RETURN_IF_ERROR(db_->Scan(kMaterialFamily, {}, [&](absl::string_view k, absl::string_view v) {
    size_t slash = k.rfind('/');
    SealedMaterial sealed;
    if (slash == absl::string_view::npos ||
        !sealed.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      status = absl::DataLossError(absl::StrCat("keystore: unreadable material record ", k));
      return false;
    }
    std::string key_id(k.substr(0, slash));
    auto it = keys_.find(key_id);
    if (it == keys_.end()) return true;  // orphan from an interrupted purge; ignored
    auto opened = crypto::AeadOpen(root_key_, sealed.sealed(), MaterialAd(key_id, sealed.version()));
    if (!opened.ok()) {
      status = absl::FailedPreconditionError(absl::StrCat(
          "keystore: material of key ", key_id, " version ", sealed.version(),
          " does not unseal with this root key"));
      return false;
    }
    auto material = std::make_shared<Material>();
    material->version = sealed.version();
    material->key = std::move(opened).value();
    material->key.MakeReadOnly();
    auto& versions = it->second->material;
    if (versions.size() < sealed.version()) versions.resize(sealed.version());
    versions[sealed.version() - 1] = std::move(material);
    return true;
  }));
  COFFER_RETURN_IF_ERROR(status);
  for (auto& [id, key] : keys_) {
    if (key->material.empty() || !key->material.back()) {
      return absl::DataLossError(absl::StrCat("keystore: key ", id, " has no current material"));
    }
    FillMetadata(*key);
  }
  COFFER_RETURN_IF_ERROR(db_->Scan(kAliasesFamily, {}, [&](absl::string_view k, absl::string_view v) {
    AliasRecord alias;
    if (!alias.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      status = absl::DataLossError(absl::StrCat("keystore: unreadable alias record ", k));
      return false;
    }
    aliases_[std::string(k)] = std::move(alias);
    return true;
  }));
  return status;
}

std::string KeyStore::KeyArn(const std::string& key_id) const {
  return absl::StrCat("arn:", options_.partition, ":kms:", options_.region, ":", options_.account,
                      ":key/", key_id);
}

std::string KeyStore::AliasArn(const std::string& alias_name) const {
  return absl::StrCat("arn:", options_.partition, ":kms:", options_.region, ":", options_.account,
                      ":", alias_name);
}

void KeyStore::FillMetadata(LoadedKey& key) const {
  auto* md = key.record.mutable_metadata();
  md->set_arn(KeyArn(md->key_id()));
  md->set_enabled(md->key_state() == v1::KEY_STATE_ENABLED);
  md->clear_encryption_algorithms();
  md->add_encryption_algorithms(kAlgorithm);
  md->set_current_key_material_version(static_cast<uint32_t>(key.material.size()));
}

absl::Status KeyStore::WriteOrInternal(const storage::WriteBatch& batch) {
  absl::Status s = db_->Write(batch);
  if (s.ok()) return s;
  return ErrorWithCode(s.code(), reason::kKmsInternal,
                       absl::StrCat("keystore write failed: ", s.message()));
}

absl::StatusOr<std::string> KeyStore::ResolveLocked(absl::string_view field,
                                                    absl::string_view ref) const {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef(field, ref));
  absl::string_view rest = ref;
  if (absl::StartsWith(ref, "arn:")) {
    std::string prefix = absl::StrCat("arn:", options_.partition, ":kms:", options_.region, ":",
                                      options_.account, ":");
    if (!absl::StartsWith(ref, prefix)) return NotFound("Key", ref);
    rest = ref.substr(prefix.size());
    if (absl::StartsWith(rest, "key/")) {
      rest = rest.substr(4);
    } else if (!absl::StartsWith(rest, "alias/")) {
      return NotFound("Key", ref);
    }
  }
  if (absl::StartsWith(rest, "alias/")) {
    auto it = aliases_.find(std::string(rest));
    if (it == aliases_.end()) return NotFound("Alias", ref);
    return it->second.target_key_id();
  }
  if (keys_.find(std::string(rest)) == keys_.end()) return NotFound("Key", ref);
  return std::string(rest);
}

absl::StatusOr<KeyStore::LoadedKey*> KeyStore::FindKeyLocked(absl::string_view field,
                                                             absl::string_view ref) {
  COFFER_ASSIGN_OR_RETURN(std::string id, ResolveLocked(field, ref));
  auto it = keys_.find(id);
  if (it == keys_.end()) return NotFound("Key", ref);
  return it->second.get();
}

absl::StatusOr<std::string> KeyStore::ResolveForEncrypt(absl::string_view field,
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
  absl::WriterMutexLock lock(&mu_);
  auto id = ResolveLocked(field, ref);
  if (id.ok() || id.status().code() != absl::StatusCode::kNotFound) return id;
  return CreateKeyLocked(v1::KEY_MANAGER_COFFER,
                         absl::StrCat("Default key that protects ", alias.substr(13),
                                      " when no other key is defined"),
                         {}, alias);
}

absl::StatusOr<KeyStore::ResolvedKey> KeyStore::KeyForEncrypt(absl::string_view field,
                                                              absl::string_view ref) {
  COFFER_ASSIGN_OR_RETURN(std::string id, ResolveForEncrypt(field, ref));
  absl::ReaderMutexLock lock(&mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return NotFound("Key", ref);
  COFFER_RETURN_IF_ERROR(CheckUsable(it->second->record));
  return ResolvedKey{id, it->second->record.metadata().arn(), it->second->material.back()};
}

absl::StatusOr<crypto::SecureBuffer> KeyStore::DecryptBlob(absl::string_view blob,
                                                           const Context& context,
                                                           absl::string_view key_field,
                                                           absl::string_view key_ref,
                                                           ResolvedKey* used) {
  if (blob.empty() || blob.size() > kMaxCiphertextBytes) {
    return InvalidField("ciphertext_blob", absl::StrCat("must be 1-", kMaxCiphertextBytes, " bytes"));
  }
  COFFER_ASSIGN_OR_RETURN(ParsedCiphertext parsed, ParseCiphertext(blob));
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!key_ref.empty()) {
      COFFER_ASSIGN_OR_RETURN(std::string id, ResolveLocked(key_field, key_ref));
      if (id != parsed.key_id) {
        return Error(reason::kIncorrectKey,
                     absl::StrCat(key_field, ": the ciphertext was not encrypted under key '",
                                  key_ref, "'"),
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

absl::StatusOr<std::shared_ptr<KeyStore::Material>> KeyStore::NewMaterial(
    const std::string& key_id, uint32_t version, storage::WriteBatch& batch) {
  auto material = std::make_shared<Material>();
  material->version = version;
  material->key = crypto::SecureBuffer::Random(kMaterialBytes);
  SealedMaterial sealed;
  sealed.set_version(version);
  sealed.set_sealed(crypto::AeadSeal(root_key_, material->key.view(), MaterialAd(key_id, version)));
  *sealed.mutable_creation_date() = ToProto(clock_->Now());
  material->key.MakeReadOnly();
  batch.Put(kMaterialFamily, MaterialKey(key_id, version), sealed.SerializeAsString());
  return material;
}

absl::StatusOr<std::string> KeyStore::CreateKeyLocked(v1::KeyManager manager,
                                                      const std::string& description,
                                                      const std::vector<v1::Tag>& tags,
                                                      const std::string& alias) {
  if (static_cast<int>(keys_.size()) >= options_.max_keys) {
    return Error(reason::kLimitExceeded,
                 absl::StrCat("at most ", options_.max_keys, " keys may exist"));
  }
  std::string id = NewUuid();
  absl::Time now = clock_->Now();
  auto key = std::make_unique<LoadedKey>();
  auto* md = key->record.mutable_metadata();
  md->set_key_id(id);
  *md->mutable_creation_date() = ToProto(now);
  md->set_description(description);
  md->set_key_usage(v1::KEY_USAGE_ENCRYPT_DECRYPT);
  md->set_key_state(v1::KEY_STATE_ENABLED);
  md->set_key_spec(v1::KEY_SPEC_SYMMETRIC_DEFAULT);
  md->set_key_manager(manager);
  for (const auto& tag : tags) *key->record.add_tags() = tag;
  std::sort(key->record.mutable_tags()->begin(), key->record.mutable_tags()->end(),
            [](const v1::Tag& a, const v1::Tag& b) { return a.tag_key() < b.tag_key(); });
  if (manager == v1::KEY_MANAGER_COFFER) {
    key->record.set_rotation_enabled(true);
    key->record.set_rotation_period_in_days(365);
    *key->record.mutable_next_rotation_date() = ToProto(now + absl::Hours(24 * 365));
  }
  storage::WriteBatch batch;
  COFFER_ASSIGN_OR_RETURN(auto material, NewMaterial(id, 1, batch));
  key->material.push_back(std::move(material));
  FillMetadata(*key);
  batch.Put(kKeysFamily, id, key->record.SerializeAsString());
  AliasRecord alias_record;
  if (!alias.empty()) {
    alias_record.set_alias_name(alias);
    alias_record.set_target_key_id(id);
    *alias_record.mutable_creation_date() = ToProto(now);
    *alias_record.mutable_last_updated_date() = ToProto(now);
    batch.Put(kAliasesFamily, alias, alias_record.SerializeAsString());
  }
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  keys_[id] = std::move(key);
  if (!alias.empty()) aliases_[alias] = std::move(alias_record);
  return id;
}

absl::StatusOr<v1::CreateKeyResponse> KeyStore::CreateKey(const v1::CreateKeyRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateDescription(request.description()));
  if (request.key_usage() != v1::KEY_USAGE_UNSPECIFIED &&
      request.key_usage() != v1::KEY_USAGE_ENCRYPT_DECRYPT) {
    return InvalidField("key_usage", "must be ENCRYPT_DECRYPT");
  }
  if (request.key_spec() != v1::KEY_SPEC_UNSPECIFIED &&
      request.key_spec() != v1::KEY_SPEC_SYMMETRIC_DEFAULT) {
    return InvalidField("key_spec", "must be SYMMETRIC_DEFAULT");
  }
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", request.tags()));
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(
      std::string id,
      CreateKeyLocked(v1::KEY_MANAGER_CUSTOMER, request.description(),
                      std::vector<v1::Tag>(request.tags().begin(), request.tags().end()), ""));
  v1::CreateKeyResponse response;
  *response.mutable_key_metadata() = keys_[id]->record.metadata();
  return response;
}

absl::StatusOr<v1::DescribeKeyResponse> KeyStore::DescribeKey(const v1::DescribeKeyRequest& request) {
  absl::ReaderMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  v1::DescribeKeyResponse response;
  *response.mutable_key_metadata() = key->record.metadata();
  return response;
}

absl::StatusOr<v1::ListKeysResponse> KeyStore::ListKeys(const v1::ListKeysRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int limit, PageLimit("limit", request.limit(), 1000, 100));
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeMarker(request.marker()));
  absl::ReaderMutexLock lock(&mu_);
  v1::ListKeysResponse response;
  auto it = after.empty() ? keys_.begin() : keys_.upper_bound(after);
  for (; it != keys_.end() && response.keys_size() < limit; ++it) {
    auto* entry = response.add_keys();
    entry->set_key_id(it->first);
    entry->set_key_arn(it->second->record.metadata().arn());
  }
  if (it != keys_.end()) {
    response.set_truncated(true);
    response.set_next_marker(EncodeMarker(response.keys(response.keys_size() - 1).key_id()));
  }
  return response;
}

#define COFFER_KMS_UPDATE_KEY(field_ref, body)                                  \
  absl::WriterMutexLock lock(&mu_);                                            \
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", field_ref)); \
  KeyRecord updated = key->record;                                             \
  body;                                                                        \
  storage::WriteBatch batch;                                                   \
  batch.Put(kKeysFamily, updated.metadata().key_id(), updated.SerializeAsString()); \
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));                              \
  key->record = std::move(updated);                                            \
  FillMetadata(*key)

absl::StatusOr<v1::UpdateKeyDescriptionResponse> KeyStore::UpdateKeyDescription(
    const v1::UpdateKeyDescriptionRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateDescription(request.description()));
  COFFER_KMS_UPDATE_KEY(request.key_id(), {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    updated.mutable_metadata()->set_description(request.description());
  });
  return v1::UpdateKeyDescriptionResponse();
}

absl::StatusOr<v1::EnableKeyResponse> KeyStore::EnableKey(const v1::EnableKeyRequest& request) {
  COFFER_KMS_UPDATE_KEY(request.key_id(), {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    updated.mutable_metadata()->set_key_state(v1::KEY_STATE_ENABLED);
  });
  return v1::EnableKeyResponse();
}

absl::StatusOr<v1::DisableKeyResponse> KeyStore::DisableKey(const v1::DisableKeyRequest& request) {
  COFFER_KMS_UPDATE_KEY(request.key_id(), {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    updated.mutable_metadata()->set_key_state(v1::KEY_STATE_DISABLED);
  });
  return v1::DisableKeyResponse();
}

absl::StatusOr<v1::ScheduleKeyDeletionResponse> KeyStore::ScheduleKeyDeletion(
    const v1::ScheduleKeyDeletionRequest& request) {
  int days = request.pending_window_in_days() == 0 ? 30 : request.pending_window_in_days();
  if (days < 7 || days > 30) return InvalidField("pending_window_in_days", "must be between 7 and 30");
  absl::Time deletion = clock_->Now() + absl::Hours(24 * days);
  COFFER_KMS_UPDATE_KEY(request.key_id(), {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    if (updated.metadata().key_manager() == v1::KEY_MANAGER_COFFER) {
      return Error(reason::kUnsupportedOperation, "built-in keys cannot be deleted",
                   updated.metadata().arn());
    }
    auto* md = updated.mutable_metadata();
    md->set_key_state(v1::KEY_STATE_PENDING_DELETION);
    *md->mutable_deletion_date() = ToProto(deletion);
    md->set_pending_deletion_window_in_days(days);
  });
  v1::ScheduleKeyDeletionResponse response;
  response.set_key_id(key->record.metadata().arn());
  *response.mutable_deletion_date() = key->record.metadata().deletion_date();
  response.set_key_state(v1::KEY_STATE_PENDING_DELETION);
  response.set_pending_window_in_days(days);
  return response;
}

absl::StatusOr<v1::CancelKeyDeletionResponse> KeyStore::CancelKeyDeletion(
    const v1::CancelKeyDeletionRequest& request) {
  COFFER_KMS_UPDATE_KEY(request.key_id(), {
    auto* md = updated.mutable_metadata();
    if (md->key_state() != v1::KEY_STATE_PENDING_DELETION) {
      return Error(reason::kInvalidState,
                   absl::StrCat("Key '", md->arn(), "' is not pending deletion"), md->arn());
    }
    md->set_key_state(v1::KEY_STATE_DISABLED);
    md->clear_deletion_date();
    md->set_pending_deletion_window_in_days(0);
  });
  v1::CancelKeyDeletionResponse response;
  response.set_key_id(key->record.metadata().arn());
  return response;
}

absl::StatusOr<v1::EnableKeyRotationResponse> KeyStore::EnableKeyRotation(
    const v1::EnableKeyRotationRequest& request) {
  int days = request.rotation_period_in_days() == 0 ? 365 : request.rotation_period_in_days();
  if (days < 90 || days > 2560) {
    return InvalidField("rotation_period_in_days", "must be between 90 and 2560");
  }
  absl::Time next = clock_->Now() + absl::Hours(24 * days);
  COFFER_KMS_UPDATE_KEY(request.key_id(), {
    COFFER_RETURN_IF_ERROR(CheckUsable(updated));
    updated.set_rotation_enabled(true);
    updated.set_rotation_period_in_days(days);
    *updated.mutable_next_rotation_date() = ToProto(next);
  });
  return v1::EnableKeyRotationResponse();
}

absl::StatusOr<v1::DisableKeyRotationResponse> KeyStore::DisableKeyRotation(
    const v1::DisableKeyRotationRequest& request) {
  COFFER_KMS_UPDATE_KEY(request.key_id(), {
    COFFER_RETURN_IF_ERROR(CheckUsable(updated));
    updated.set_rotation_enabled(false);
    updated.set_rotation_period_in_days(0);
    updated.clear_next_rotation_date();
  });
  return v1::DisableKeyRotationResponse();
}

#undef COFFER_KMS_UPDATE_KEY

absl::StatusOr<v1::GetKeyRotationStatusResponse> KeyStore::GetKeyRotationStatus(
    const v1::GetKeyRotationStatusRequest& request) {
  absl::ReaderMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  v1::GetKeyRotationStatusResponse response;
  response.set_key_id(key->record.metadata().arn());
  response.set_key_rotation_enabled(key->record.rotation_enabled());
  if (key->record.rotation_enabled()) {
    response.set_rotation_period_in_days(key->record.rotation_period_in_days());
    *response.mutable_next_rotation_date() = key->record.next_rotation_date();
  }
  return response;
}

absl::StatusOr<uint32_t> KeyStore::RotateLocked(LoadedKey& key, v1::RotationType type) {
  const std::string& id = key.record.metadata().key_id();
  auto version = static_cast<uint32_t>(key.material.size() + 1);
  absl::Time now = clock_->Now();
  storage::WriteBatch batch;
  COFFER_ASSIGN_OR_RETURN(auto material, NewMaterial(id, version, batch));
  KeyRecord updated = key.record;
  auto* rotation = updated.add_rotations();
  rotation->set_key_id(updated.metadata().arn());
  *rotation->mutable_rotation_date() = ToProto(now);
  rotation->set_rotation_type(type);
  rotation->set_key_material_version(version);
  if (type == v1::ROTATION_TYPE_AUTOMATIC) {
    *updated.mutable_next_rotation_date() =
        ToProto(now + absl::Hours(24 * updated.rotation_period_in_days()));
  }
  updated.mutable_metadata()->set_current_key_material_version(version);
  batch.Put(kKeysFamily, id, updated.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  key.record = std::move(updated);
  key.material.push_back(std::move(material));
  FillMetadata(key);
  return version;
}

absl::StatusOr<v1::RotateKeyOnDemandResponse> KeyStore::RotateKeyOnDemand(
    const v1::RotateKeyOnDemandRequest& request) {
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  COFFER_RETURN_IF_ERROR(CheckUsable(key->record));
  COFFER_ASSIGN_OR_RETURN(uint32_t version, RotateLocked(*key, v1::ROTATION_TYPE_ON_DEMAND));
  v1::RotateKeyOnDemandResponse response;
  response.set_key_id(key->record.metadata().arn());
  response.set_key_material_version(version);
  return response;
}

absl::StatusOr<v1::ListKeyRotationsResponse> KeyStore::ListKeyRotations(
    const v1::ListKeyRotationsRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int limit, PageLimit("limit", request.limit(), 1000, 100));
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeMarker(request.marker()));
  uint32_t after_version = 0;
  if (!after.empty() && !absl::SimpleAtoi(after, &after_version)) {
    return Error(reason::kInvalidMarker, "marker: is not a marker returned by this operation", "",
                 "marker");
  }
  absl::ReaderMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  v1::ListKeyRotationsResponse response;
  const auto& rotations = key->record.rotations();
  int i = 0;
  while (i < rotations.size() && rotations[i].key_material_version() <= after_version) ++i;
  for (; i < rotations.size() && response.rotations_size() < limit; ++i) {
    *response.add_rotations() = rotations[i];
  }
  if (i < rotations.size()) {
    response.set_truncated(true);
    response.set_next_marker(EncodeMarker(
        absl::StrCat(response.rotations(response.rotations_size() - 1).key_material_version())));
  }
  return response;
}

int KeyStore::AliasCountLocked(const std::string& key_id) const {
  int n = 0;
  for (const auto& [name, alias] : aliases_) n += alias.target_key_id() == key_id;
  return n;
}

namespace {
absl::Status ValidateAliasTarget(absl::string_view ref) {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef("target_key_id", ref));
  if (absl::StartsWith(ref, "alias/") || absl::StrContains(ref, ":alias/")) {
    return InvalidField("target_key_id", "must be a key id or key ARN, not an alias");
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<v1::CreateAliasResponse> KeyStore::CreateAlias(const v1::CreateAliasRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAliasName("alias_name", request.alias_name(), false));
  COFFER_RETURN_IF_ERROR(ValidateAliasTarget(request.target_key_id()));
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("target_key_id", request.target_key_id()));
  COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(key->record));
  if (aliases_.count(request.alias_name())) {
    return Error(reason::kAlreadyExists,
                 absl::StrCat("Alias '", request.alias_name(), "' already exists"),
                 request.alias_name());
  }
  const std::string& id = key->record.metadata().key_id();
  if (AliasCountLocked(id) >= options_.max_aliases_per_key) {
    return Error(reason::kLimitExceeded,
                 absl::StrCat("a key may have at most ", options_.max_aliases_per_key, " aliases"),
                 key->record.metadata().arn());
  }
  AliasRecord alias;
  alias.set_alias_name(request.alias_name());
  alias.set_target_key_id(id);
  *alias.mutable_creation_date() = ToProto(clock_->Now());
  *alias.mutable_last_updated_date() = alias.creation_date();
  storage::WriteBatch batch;
  batch.Put(kAliasesFamily, alias.alias_name(), alias.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  aliases_[alias.alias_name()] = std::move(alias);
  return v1::CreateAliasResponse();
}

absl::StatusOr<v1::UpdateAliasResponse> KeyStore::UpdateAlias(const v1::UpdateAliasRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAliasName("alias_name", request.alias_name(), false));
  COFFER_RETURN_IF_ERROR(ValidateAliasTarget(request.target_key_id()));
  absl::WriterMutexLock lock(&mu_);
  auto it = aliases_.find(request.alias_name());
  if (it == aliases_.end()) return NotFound("Alias", request.alias_name());
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("target_key_id", request.target_key_id()));
  COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(key->record));
  const std::string& id = key->record.metadata().key_id();
  if (it->second.target_key_id() != id && AliasCountLocked(id) >= options_.max_aliases_per_key) {
    return Error(reason::kLimitExceeded,
                 absl::StrCat("a key may have at most ", options_.max_aliases_per_key, " aliases"),
                 key->record.metadata().arn());
  }
  AliasRecord alias = it->second;
  alias.set_target_key_id(id);
  *alias.mutable_last_updated_date() = ToProto(clock_->Now());
  storage::WriteBatch batch;
  batch.Put(kAliasesFamily, alias.alias_name(), alias.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  it->second = std::move(alias);
  return v1::UpdateAliasResponse();
}

absl::StatusOr<v1::DeleteAliasResponse> KeyStore::DeleteAlias(const v1::DeleteAliasRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAliasName("alias_name", request.alias_name(), false));
  absl::WriterMutexLock lock(&mu_);
  auto it = aliases_.find(request.alias_name());
  if (it == aliases_.end()) return NotFound("Alias", request.alias_name());
  storage::WriteBatch batch;
  batch.Delete(kAliasesFamily, request.alias_name());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  aliases_.erase(it);
  return v1::DeleteAliasResponse();
}

absl::StatusOr<v1::ListAliasesResponse> KeyStore::ListAliases(const v1::ListAliasesRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int limit, PageLimit("limit", request.limit(), 100, 50));
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeMarker(request.marker()));
  absl::ReaderMutexLock lock(&mu_);
  std::string only_key;
  if (!request.key_id().empty()) {
    COFFER_ASSIGN_OR_RETURN(only_key, ResolveLocked("key_id", request.key_id()));
  }
  v1::ListAliasesResponse response;
  auto it = after.empty() ? aliases_.begin() : aliases_.upper_bound(after);
  for (; it != aliases_.end(); ++it) {
    const AliasRecord& alias = it->second;
    if (!only_key.empty() && alias.target_key_id() != only_key) continue;
    if (response.aliases_size() == limit) {
      response.set_truncated(true);
      response.set_next_marker(EncodeMarker(response.aliases(limit - 1).alias_name()));
      break;
    }
    auto* entry = response.add_aliases();
    entry->set_alias_name(alias.alias_name());
    entry->set_alias_arn(AliasArn(alias.alias_name()));
    entry->set_target_key_id(alias.target_key_id());
    *entry->mutable_creation_date() = alias.creation_date();
    *entry->mutable_last_updated_date() = alias.last_updated_date();
  }
  return response;
}

absl::StatusOr<v1::EncryptResponse> KeyStore::Encrypt(const v1::EncryptRequest& request) {
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

absl::StatusOr<v1::DecryptResponse> KeyStore::Decrypt(const v1::DecryptRequest& request) {
  Context context = ToContext(request.encryption_context());
  COFFER_RETURN_IF_ERROR(ValidateContext("encryption_context", context));
  ResolvedKey used;
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer plaintext,
                          DecryptBlob(request.ciphertext_blob(), context, "key_id",
                                      request.key_id(), &used));
  v1::DecryptResponse response;
  response.set_key_id(used.arn);
  response.set_plaintext(std::string(plaintext.view()));
  response.set_encryption_algorithm(kAlgorithm);
  return response;
}

absl::StatusOr<v1::ReEncryptResponse> KeyStore::ReEncrypt(const v1::ReEncryptRequest& request) {
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

absl::StatusOr<std::string> KeyStore::GenerateDataKeyBlob(const std::string& key_ref,
                                                          const Context& context,
                                                          int number_of_bytes,
                                                          v1::DataKeySpec spec,
                                                          std::string* key_arn,
                                                          crypto::SecureBuffer* plaintext) {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef("key_id", key_ref));
  COFFER_RETURN_IF_ERROR(ValidateContext("encryption_context", context));
  COFFER_ASSIGN_OR_RETURN(int bytes, DataKeyBytes(number_of_bytes, spec));
  COFFER_ASSIGN_OR_RETURN(ResolvedKey key, KeyForEncrypt("key_id", key_ref));
  *plaintext = crypto::SecureBuffer::Random(static_cast<size_t>(bytes));
  *key_arn = key.arn;
  return SealCiphertext(key.key_id, key.material->version, key.material->key, plaintext->view(),
                        context);
}

absl::StatusOr<v1::GenerateDataKeyResponse> KeyStore::GenerateDataKey(
    const v1::GenerateDataKeyRequest& request) {
  v1::GenerateDataKeyResponse response;
  crypto::SecureBuffer plaintext;
  COFFER_ASSIGN_OR_RETURN(
      *response.mutable_ciphertext_blob(),
      GenerateDataKeyBlob(request.key_id(), ToContext(request.encryption_context()),
                          request.number_of_bytes(), request.key_spec(),
                          response.mutable_key_id(), &plaintext));
  response.set_plaintext(std::string(plaintext.view()));
  return response;
}

absl::StatusOr<v1::GenerateDataKeyWithoutPlaintextResponse>
KeyStore::GenerateDataKeyWithoutPlaintext(const v1::GenerateDataKeyWithoutPlaintextRequest& request) {
  v1::GenerateDataKeyWithoutPlaintextResponse response;
  crypto::SecureBuffer plaintext;
  COFFER_ASSIGN_OR_RETURN(
      *response.mutable_ciphertext_blob(),
      GenerateDataKeyBlob(request.key_id(), ToContext(request.encryption_context()),
                          request.number_of_bytes(), request.key_spec(),
                          response.mutable_key_id(), &plaintext));
  return response;
}

absl::StatusOr<v1::GenerateRandomResponse> KeyStore::GenerateRandom(
    const v1::GenerateRandomRequest& request) {
  if (request.number_of_bytes() < 1 || request.number_of_bytes() > kMaxDataKeyBytes) {
    return InvalidField("number_of_bytes", absl::StrCat("must be between 1 and ", kMaxDataKeyBytes));
  }
  v1::GenerateRandomResponse response;
  response.set_plaintext(crypto::RandomString(static_cast<size_t>(request.number_of_bytes())));
  return response;
}

absl::StatusOr<v1::TagResourceResponse> KeyStore::TagResource(const v1::TagResourceRequest& request) {
  if (request.tags().empty()) return InvalidField("tags", "at least one tag is required");
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", request.tags()));
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(key->record));
  std::map<std::string, std::string> merged;
  for (const auto& tag : key->record.tags()) merged[tag.tag_key()] = tag.tag_value();
  for (const auto& tag : request.tags()) merged[tag.tag_key()] = tag.tag_value();
  if (static_cast<int>(merged.size()) > kMaxTagsPerKey) {
    return Error(reason::kLimitExceeded,
                 absl::StrCat("tags: a key may have at most ", kMaxTagsPerKey, " tags"),
                 key->record.metadata().arn(), "tags");
  }
  KeyRecord updated = key->record;
  updated.clear_tags();
  for (const auto& [k, v] : merged) {
    auto* tag = updated.add_tags();
    tag->set_tag_key(k);
    tag->set_tag_value(v);
  }
  storage::WriteBatch batch;
  batch.Put(kKeysFamily, updated.metadata().key_id(), updated.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  key->record = std::move(updated);
  return v1::TagResourceResponse();
}

absl::StatusOr<v1::UntagResourceResponse> KeyStore::UntagResource(
    const v1::UntagResourceRequest& request) {
  if (request.tag_keys().empty() || request.tag_keys_size() > kMaxTagsPerKey) {
    return InvalidField("tag_keys", absl::StrCat("must name 1-", kMaxTagsPerKey, " tag keys"));
  }
  for (const auto& k : request.tag_keys()) COFFER_RETURN_IF_ERROR(ValidateTagKey("tag_keys", k));
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(key->record));
  std::set<std::string> remove(request.tag_keys().begin(), request.tag_keys().end());
  KeyRecord updated = key->record;
  updated.clear_tags();
  for (const auto& tag : key->record.tags()) {
    if (!remove.count(tag.tag_key())) *updated.add_tags() = tag;
  }
  storage::WriteBatch batch;
  batch.Put(kKeysFamily, updated.metadata().key_id(), updated.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  key->record = std::move(updated);
  return v1::UntagResourceResponse();
}

absl::StatusOr<v1::ListResourceTagsResponse> KeyStore::ListResourceTags(
    const v1::ListResourceTagsRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int limit, PageLimit("limit", request.limit(), 50, 50));
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeMarker(request.marker()));
  absl::ReaderMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  v1::ListResourceTagsResponse response;
  const auto& tags = key->record.tags();
  int i = 0;
  while (i < tags.size() && !after.empty() && tags[i].tag_key() <= after) ++i;
  for (; i < tags.size() && response.tags_size() < limit; ++i) *response.add_tags() = tags[i];
  if (i < tags.size()) {
    response.set_truncated(true);
    response.set_next_marker(EncodeMarker(response.tags(response.tags_size() - 1).tag_key()));
  }
  return response;
}

absl::StatusOr<MaintenanceResult> KeyStore::RunMaintenance() {
  MaintenanceResult result;
  absl::Time now = clock_->Now();
  absl::WriterMutexLock lock(&mu_);
  std::vector<std::string> due_deletion;
  std::vector<LoadedKey*> due_rotation;
  for (auto& [id, key] : keys_) {
    const auto& md = key->record.metadata();
    if (md.key_state() == v1::KEY_STATE_PENDING_DELETION && FromProto(md.deletion_date()) <= now) {
      due_deletion.push_back(id);
    } else if (md.key_state() == v1::KEY_STATE_ENABLED && key->record.rotation_enabled() &&
               FromProto(key->record.next_rotation_date()) <= now) {
      due_rotation.push_back(key.get());
    }
  }
  for (const std::string& id : due_deletion) {
    storage::WriteBatch batch;
    batch.Delete(kKeysFamily, id);
    auto& key = keys_[id];
    for (uint32_t v = 1; v <= key->material.size(); ++v) {
      batch.Delete(kMaterialFamily, MaterialKey(id, v));
    }
    std::vector<std::string> alias_names;
    for (const auto& [name, alias] : aliases_) {
      if (alias.target_key_id() == id) {
        batch.Delete(kAliasesFamily, name);
        alias_names.push_back(name);
      }
    }
    COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
    for (const auto& name : alias_names) aliases_.erase(name);
    keys_.erase(id);  // material is wiped when the last in-flight user drops it
    ++result.keys_deleted;
  }
  for (LoadedKey* key : due_rotation) {
    COFFER_RETURN_IF_ERROR(RotateLocked(*key, v1::ROTATION_TYPE_AUTOMATIC).status());
    ++result.keys_rotated;
  }
  return result;
}

std::map<v1::KeyState, int> KeyStore::CountKeysByState() const {
  absl::ReaderMutexLock lock(&mu_);
  std::map<v1::KeyState, int> counts;
  for (const auto& [id, key] : keys_) ++counts[key->record.metadata().key_state()];
  return counts;
}

}  // namespace coffer::kms
