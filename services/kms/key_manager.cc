// KeyManager: lifecycle (open, load), ARNs and key resolution, key creation,
// metadata, states, rotation, tags and maintenance. Aliases are in
// key_manager_aliases.cc, crypto operations in key_manager_crypto.cc.
#include "services/kms/key_manager.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/blocking.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/common/paging.h"
#include "libs/common/proto_time.h"
#include "libs/common/retry.h"
#include "libs/common/status_macros.h"
#include "libs/common/tags.h"
#include "libs/crypto/aead.h"
#include "services/kms/key_manager_internal.h"

namespace coffer::kms {

using key_manager_internal::AliasRecord;
using key_manager_internal::CheckNotPendingDeletion;
using key_manager_internal::CheckUsable;
using key_manager_internal::DecodeMarker;
using key_manager_internal::EncodeMarker;
using key_manager_internal::InvalidMarkerError;
using key_manager_internal::kAlgorithm;
using key_manager_internal::kAliasesFamily;
using key_manager_internal::KeyRecord;
using key_manager_internal::kGenerationFamily;
using key_manager_internal::kGenerationKey;
using key_manager_internal::kKeysFamily;
using key_manager_internal::kMaterialFamily;
using key_manager_internal::NotFound;
using key_manager_internal::PageLimit;
using key_manager_internal::SealedMaterial;
using key_manager_internal::ValidateKeyRef;

// ---- checks shared by the key_manager*.cc files (key_manager_internal.h) ----

namespace key_manager_internal {
namespace {

absl::Status PendingDeletionError(const v1::KeyMetadata& md) {
  return Error(reason::kInvalidState, absl::StrCat("Key '", md.arn(), "' is pending deletion"),
               md.arn());
}

}  // namespace

absl::Status ValidateKeyRef(absl::string_view field, absl::string_view ref) {
  constexpr size_t kMaxKeyRef = 2048;
  if (ref.empty()) return InvalidField(field, "is required");
  if (ref.size() > kMaxKeyRef) {
    return InvalidField(field, absl::StrCat("must be at most ", kMaxKeyRef, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAliasName(absl::string_view field, absl::string_view name,
                               bool allow_reserved) {
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
      return PendingDeletionError(md);
  }
}

absl::Status CheckNotPendingDeletion(const KeyRecord& record) {
  if (record.metadata().key_state() == v1::KEY_STATE_PENDING_DELETION) {
    return PendingDeletionError(record.metadata());
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageLimit(absl::string_view field, int value, int max, int dflt) {
  return PageSize(value, {max, dflt}, {field, reason::kValidation});
}

std::string EncodeMarker(absl::string_view last) { return EncodePageToken("m1", last); }

absl::Status InvalidMarkerError() {
  return Error(reason::kInvalidMarker, "marker: is not a marker returned by this operation", "",
               "marker");
}

absl::StatusOr<std::string> DecodeMarker(absl::string_view marker) {
  auto decoded = DecodePageToken("m1", marker, {"marker", reason::kInvalidMarker});
  if (!decoded.ok()) return InvalidMarkerError();
  return decoded;
}

}  // namespace key_manager_internal

namespace {

constexpr size_t kMaterialBytes = 32;
constexpr size_t kMaxDescription = 8192;
constexpr int kMaxTagsPerKey = 50;

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

absl::Status ValidateDescription(absl::string_view d) {
  if (d.size() > kMaxDescription) {
    return InvalidField("description",
                        absl::StrCat("must be at most ", kMaxDescription, " characters"));
  }
  return absl::OkStatus();
}

// KMS reports a malformed tag as TagException and too many as
// LimitExceededException.
constexpr TagRules kKmsTagRules{kMaxTagsPerKey, reason::kTag, reason::kLimitExceeded};

absl::Status ValidateTags(absl::string_view field,
                          const google::protobuf::RepeatedPtrField<v1::Tag>& tags) {
  std::vector<TagView> views;
  views.reserve(tags.size());
  for (const auto& tag : tags) views.push_back({tag.tag_key(), tag.tag_value()});
  return ::coffer::ValidateTags(field, views, kKmsTagRules);
}

}  // namespace

// ---- lifecycle ----

KeyManager::KeyManager(const KeyManagerOptions& options, crypto::SecureBuffer root_key)
    : options_(options),
      clock_(options.clock ? options.clock : RealClock()),
      root_key_(std::move(root_key)) {}

KeyManager::~KeyManager() {
  stopping_ = true;  // a refresh retrying in the watch's callback gives up
  watch_.reset();
}

void KeyManager::RefreshUntilDone() {
  // A replica that failed to refresh (etcd electing a leader, say) would
  // stay stale until the next change: try again until it refreshed or this
  // KeyManager goes.
  RetryUntilOk([this] { return Refresh(); }, stopping_,
               [](const absl::Status& s) {
                 log::Warn("kms", "keystore refresh failed; retrying", {{"error", s.ToString()}});
               });
}

namespace {
constexpr char kReplicaConflict[] = "the keystore was changed by another replica";
}  // namespace

bool IsReplicaConflict(const absl::Status& status) {
  return absl::IsAborted(status) && absl::StartsWith(status.message(), kReplicaConflict);
}

std::vector<std::string> KeyManager::ColumnFamilies() {
  return {kKeysFamily, kMaterialFamily, kAliasesFamily, kGenerationFamily};
}

absl::StatusOr<std::unique_ptr<KeyManager>> KeyManager::Open(const KeyManagerOptions& options,
                                                             crypto::SecureBuffer root_key) {
  storage::DatabaseOptions db_options;
  db_options.path = options.db_path;
  db_options.column_families = ColumnFamilies();
  db_options.sync_writes = options.sync_writes;
  COFFER_ASSIGN_OR_RETURN(auto db, storage::Database::Open(db_options));
  return Open(options, std::move(root_key), std::move(db));
}

absl::StatusOr<std::unique_ptr<KeyManager>> KeyManager::Open(
    const KeyManagerOptions& options, crypto::SecureBuffer root_key,
    std::unique_ptr<storage::Database> db) {
  if (root_key.size() != crypto::kAeadKeyBytes) {
    return absl::FailedPreconditionError("root key must be 32 bytes");
  }
  if (options.max_key_versions < 1) {
    return absl::InvalidArgumentError("max_key_versions must be at least 1");
  }
  std::unique_ptr<KeyManager> store(new KeyManager(options, std::move(root_key)));
  store->db_ = std::move(db);
  if (store->db_->shared()) {
    // Watch first, then read: a change between the two is seen either way.
    KeyManager* self = store.get();
    COFFER_ASSIGN_OR_RETURN(store->watch_,
                            store->db_->WatchFamily(kGenerationFamily, [self](absl::string_view) {
                              self->RefreshUntilDone();
                            }));
    {
      absl::MutexLock turn(&store->write_mu_);
      store->generation_ = std::string(1, '\0');  // no generation is this: Refresh reads
    }
    COFFER_RETURN_IF_ERROR(store->Refresh());
    return store;
  }
  absl::MutexLock turn(&store->write_mu_);
  absl::WriterMutexLock lock(&store->mu_);
  COFFER_RETURN_IF_ERROR(store->LoadFrom(store->keys_, store->aliases_));
  return store;
}

absl::Status KeyManager::Refresh() {
  if (!db_->shared()) return absl::OkStatus();
  // Before waiting for write_mu_, which a change holds across etcd calls.
  if (!MayBlock()) return WouldBlockError("a keystore refresh");
  const uint64_t begun_before = checks_begun_.load();
  absl::MutexLock turn(&write_mu_);  // no change of this replica meanwhile
  // A check that began after this call did has read what this one would.
  if (last_check_done_ > begun_before) return absl::OkStatus();
  const uint64_t check = checks_begun_.fetch_add(1) + 1;
  absl::Status refreshed = RefreshLocked();
  if (refreshed.ok()) last_check_done_ = check;
  return refreshed;
}

absl::Status KeyManager::RefreshLocked() {
  for (int attempt = 0; attempt < 5; ++attempt) {
    COFFER_ASSIGN_OR_RETURN(std::optional<std::string> before,
                            db_->Get(kGenerationFamily, kGenerationKey));
    if (before.value_or("") == generation_) return absl::OkStatus();
    std::map<std::string, std::unique_ptr<LoadedKey>> keys;
    std::map<std::string, AliasRecord> aliases;
    absl::Status loaded = LoadFrom(keys, aliases);
    COFFER_ASSIGN_OR_RETURN(std::optional<std::string> after,
                            db_->Get(kGenerationFamily, kGenerationKey));
    if (after != before) continue;   // changed while it was read: a mix
    COFFER_RETURN_IF_ERROR(loaded);  // unchanged: what was read is what is there
    {
      absl::WriterMutexLock lock(&mu_);
      keys_.swap(keys);
      aliases_.swap(aliases);
    }
    generation_ = before.value_or("");
    return absl::OkStatus();
  }
  return absl::UnavailableError("the keystore kept changing while it was read; try again");
}

absl::Status KeyManager::LoadFrom(std::map<std::string, std::unique_ptr<LoadedKey>>& keys,
                                  std::map<std::string, AliasRecord>& aliases) {
  absl::Status status;
  COFFER_RETURN_IF_ERROR(db_->Scan(kKeysFamily, {}, [&](absl::string_view k, absl::string_view v) {
    auto key = std::make_unique<LoadedKey>();
    if (!key->record.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      status = absl::DataLossError(absl::StrCat("keystore: unreadable key record ", k));
      return false;
    }
    keys[std::string(k)] = std::move(key);
    return true;
  }));
  COFFER_RETURN_IF_ERROR(status);
  COFFER_RETURN_IF_ERROR(
      db_->Scan(kMaterialFamily, {}, [&](absl::string_view k, absl::string_view v) {
        size_t slash = k.rfind('/');
        SealedMaterial sealed;
        if (slash == absl::string_view::npos ||
            !sealed.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
          status = absl::DataLossError(absl::StrCat("keystore: unreadable material record ", k));
          return false;
        }
        std::string key_id(k.substr(0, slash));
        auto it = keys.find(key_id);
        if (it == keys.end()) return true;  // orphan from an interrupted purge; ignored
        auto opened =
            crypto::AeadOpen(root_key_, sealed.sealed(), MaterialAd(key_id, sealed.version()));
        if (!opened.ok()) {
          status = absl::FailedPreconditionError(
              absl::StrCat("keystore: material of key ", key_id, " version ", sealed.version(),
                           " does not unseal with this root key"));
          return false;
        }
        auto material = std::make_shared<Material>();
        material->version = sealed.version();
        material->key = crypto::SecureBuffer::ReadOnlyCopy(opened->view());  // `opened` is wiped
        auto& versions = it->second->material;
        if (versions.size() < sealed.version()) versions.resize(sealed.version());
        versions[sealed.version() - 1] = std::move(material);
        return true;
      }));
  COFFER_RETURN_IF_ERROR(status);
  for (auto& [id, key] : keys) {
    if (key->material.empty() || !key->material.back()) {
      return absl::DataLossError(absl::StrCat("keystore: key ", id, " has no current material"));
    }
    // Records from before on_demand_rotations existed: their history is
    // complete, so it has the count (stored with the key's next change).
    uint32_t on_demand = 0;
    for (const auto& rotation : key->record.rotations()) {
      if (rotation.rotation_type() == v1::ROTATION_TYPE_ON_DEMAND) ++on_demand;
    }
    if (on_demand > key->record.on_demand_rotations()) {
      key->record.set_on_demand_rotations(on_demand);
    }
    FillMetadata(*key);
  }
  COFFER_RETURN_IF_ERROR(
      db_->Scan(kAliasesFamily, {}, [&](absl::string_view k, absl::string_view v) {
        AliasRecord alias;
        if (!alias.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
          status = absl::DataLossError(absl::StrCat("keystore: unreadable alias record ", k));
          return false;
        }
        aliases[std::string(k)] = std::move(alias);
        return true;
      }));
  return status;
}

// ---- ARNs, metadata, resolution, writes ----

std::string KeyManager::ArnPrefix() const {
  return absl::StrCat("arn:", options_.partition, ":kms:", options_.region, ":", options_.account,
                      ":");
}

std::string KeyManager::KeyArn(const std::string& key_id) const {
  return absl::StrCat(ArnPrefix(), "key/", key_id);
}

std::string KeyManager::AliasArn(const std::string& alias_name) const {
  return absl::StrCat(ArnPrefix(), alias_name);
}

void KeyManager::FillMetadata(LoadedKey& key) const {
  auto* md = key.record.mutable_metadata();
  md->set_arn(KeyArn(md->key_id()));
  md->set_enabled(md->key_state() == v1::KEY_STATE_ENABLED);
  md->clear_encryption_algorithms();
  md->add_encryption_algorithms(kAlgorithm);
  md->set_current_key_material_version(static_cast<uint32_t>(key.material.size()));
}

absl::Status KeyManager::WriteOrInternal(const storage::WriteBatch& batch) {
  write_mu_.AssertHeld();
  mu_.Unlock();  // readers go on during the synced write (see the header)
  if (options_.before_write_for_test) options_.before_write_for_test();
  absl::Status s;
  if (db_->shared()) {
    // Commits only on the generation this replica's memory reflects.
    std::string next = NewUuid();
    s = db_->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
      COFFER_ASSIGN_OR_RETURN(std::optional<std::string> current,
                              txn.GetForUpdate(kGenerationFamily, kGenerationKey));
      if (current.value_or("") != generation_) return absl::AbortedError(kReplicaConflict);
      for (const storage::WriteBatch::Op& op : batch.ops()) {
        if (op.is_delete) {
          txn.Delete(op.column_family, op.key);
        } else {
          txn.Put(op.column_family, op.key, op.value);
        }
      }
      txn.Put(kGenerationFamily, kGenerationKey, next);
      return absl::OkStatus();
    });
    if (s.ok()) generation_ = std::move(next);
    if (absl::IsAborted(s)) s = absl::AbortedError(kReplicaConflict);
  } else {
    s = db_->Write(batch);
  }
  mu_.Lock();
  if (IsReplicaConflict(s)) return s;
  if (s.ok() || IsWouldBlock(s)) return s;  // the latter: runs again where it may block
  return ErrorWithCode(s.code(), reason::kKmsInternal,
                       absl::StrCat("keystore write failed: ", s.message()));
}

absl::Status KeyManager::UpdateKey(absl::string_view ref,
                                   const std::function<absl::Status(KeyRecord&)>& change) {
  absl::MutexLock turn(&write_mu_);  // one change at a time
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", ref));
  KeyRecord updated = key->record;
  COFFER_RETURN_IF_ERROR(change(updated));
  storage::WriteBatch batch;
  batch.Put(kKeysFamily, updated.metadata().key_id(), updated.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  key->record = std::move(updated);
  FillMetadata(*key);
  return absl::OkStatus();
}

absl::StatusOr<std::string> KeyManager::ResolveLocked(absl::string_view field,
                                                      absl::string_view ref) const {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef(field, ref));
  absl::string_view rest = ref;
  if (absl::StartsWith(ref, "arn:")) {
    const std::string prefix = ArnPrefix();
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

absl::StatusOr<KeyManager::LoadedKey*> KeyManager::FindKeyLocked(absl::string_view field,
                                                                 absl::string_view ref) {
  COFFER_ASSIGN_OR_RETURN(std::string id, ResolveLocked(field, ref));
  auto it = keys_.find(id);
  if (it == keys_.end()) return NotFound("Key", ref);
  return it->second.get();
}

// ---- key creation, description, listing ----

absl::StatusOr<std::shared_ptr<KeyManager::Material>> KeyManager::NewMaterial(
    const std::string& key_id, uint32_t version, storage::WriteBatch& batch) {
  // Drawn in writable memory (wiped when this returns), kept read-only.
  const crypto::SecureBuffer fresh = crypto::SecureBuffer::Random(kMaterialBytes);
  auto material = std::make_shared<Material>();
  material->version = version;
  material->key = crypto::SecureBuffer::ReadOnlyCopy(fresh.view());
  SealedMaterial sealed;
  sealed.set_version(version);
  sealed.set_sealed(crypto::AeadSeal(root_key_, fresh.view(), MaterialAd(key_id, version)));
  *sealed.mutable_creation_date() = ToProto(clock_->Now());
  batch.Put(kMaterialFamily, MaterialKey(key_id, version), sealed.SerializeAsString());
  return material;
}

absl::StatusOr<std::string> KeyManager::CreateKeyLocked(v1::KeyManager manager,
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

absl::StatusOr<v1::CreateKeyResponse> KeyManager::CreateKey(const v1::CreateKeyRequest& request) {
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
  absl::MutexLock turn(&write_mu_);  // one change at a time
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(
      std::string id,
      CreateKeyLocked(v1::KEY_MANAGER_CUSTOMER, request.description(),
                      std::vector<v1::Tag>(request.tags().begin(), request.tags().end()), ""));
  v1::CreateKeyResponse response;
  *response.mutable_key_metadata() = keys_[id]->record.metadata();
  return response;
}

absl::StatusOr<v1::DescribeKeyResponse> KeyManager::DescribeKey(
    const v1::DescribeKeyRequest& request) {
  absl::ReaderMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  v1::DescribeKeyResponse response;
  *response.mutable_key_metadata() = key->record.metadata();
  return response;
}

absl::StatusOr<v1::ListKeysResponse> KeyManager::ListKeys(const v1::ListKeysRequest& request) {
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

// ---- description and states ----

absl::StatusOr<v1::UpdateKeyDescriptionResponse> KeyManager::UpdateKeyDescription(
    const v1::UpdateKeyDescriptionRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateDescription(request.description()));
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    updated.mutable_metadata()->set_description(request.description());
    return absl::OkStatus();
  }));
  return v1::UpdateKeyDescriptionResponse();
}

absl::StatusOr<v1::EnableKeyResponse> KeyManager::EnableKey(const v1::EnableKeyRequest& request) {
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    updated.mutable_metadata()->set_key_state(v1::KEY_STATE_ENABLED);
    return absl::OkStatus();
  }));
  return v1::EnableKeyResponse();
}

absl::StatusOr<v1::DisableKeyResponse> KeyManager::DisableKey(
    const v1::DisableKeyRequest& request) {
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    updated.mutable_metadata()->set_key_state(v1::KEY_STATE_DISABLED);
    return absl::OkStatus();
  }));
  return v1::DisableKeyResponse();
}

absl::StatusOr<v1::ScheduleKeyDeletionResponse> KeyManager::ScheduleKeyDeletion(
    const v1::ScheduleKeyDeletionRequest& request) {
  int days = request.pending_window_in_days() == 0 ? 30 : request.pending_window_in_days();
  if (days < 7 || days > 30) {
    return InvalidField("pending_window_in_days", "must be between 7 and 30");
  }
  absl::Time deletion = clock_->Now() + absl::Hours(24 * days);
  v1::ScheduleKeyDeletionResponse response;
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    if (updated.metadata().key_manager() == v1::KEY_MANAGER_COFFER) {
      return Error(reason::kUnsupportedOperation, "built-in keys cannot be deleted",
                   updated.metadata().arn());
    }
    auto* md = updated.mutable_metadata();
    md->set_key_state(v1::KEY_STATE_PENDING_DELETION);
    *md->mutable_deletion_date() = ToProto(deletion);
    md->set_pending_deletion_window_in_days(days);
    response.set_key_id(md->arn());
    *response.mutable_deletion_date() = md->deletion_date();
    return absl::OkStatus();
  }));
  response.set_key_state(v1::KEY_STATE_PENDING_DELETION);
  response.set_pending_window_in_days(days);
  return response;
}

absl::StatusOr<v1::CancelKeyDeletionResponse> KeyManager::CancelKeyDeletion(
    const v1::CancelKeyDeletionRequest& request) {
  v1::CancelKeyDeletionResponse response;
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    auto* md = updated.mutable_metadata();
    if (md->key_state() != v1::KEY_STATE_PENDING_DELETION) {
      return Error(reason::kInvalidState,
                   absl::StrCat("Key '", md->arn(), "' is not pending deletion"), md->arn());
    }
    md->set_key_state(v1::KEY_STATE_DISABLED);
    md->clear_deletion_date();
    md->set_pending_deletion_window_in_days(0);
    response.set_key_id(md->arn());
    return absl::OkStatus();
  }));
  return response;
}

// ---- rotation ----

absl::StatusOr<v1::EnableKeyRotationResponse> KeyManager::EnableKeyRotation(
    const v1::EnableKeyRotationRequest& request) {
  int days = request.rotation_period_in_days() == 0 ? 365 : request.rotation_period_in_days();
  if (days < 90 || days > 2560) {
    return InvalidField("rotation_period_in_days", "must be between 90 and 2560");
  }
  absl::Time next = clock_->Now() + absl::Hours(24 * days);
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckUsable(updated));
    updated.set_rotation_enabled(true);
    updated.set_rotation_period_in_days(days);
    *updated.mutable_next_rotation_date() = ToProto(next);
    return absl::OkStatus();
  }));
  return v1::EnableKeyRotationResponse();
}

absl::StatusOr<v1::DisableKeyRotationResponse> KeyManager::DisableKeyRotation(
    const v1::DisableKeyRotationRequest& request) {
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckUsable(updated));
    updated.set_rotation_enabled(false);
    updated.set_rotation_period_in_days(0);
    updated.clear_next_rotation_date();
    return absl::OkStatus();
  }));
  return v1::DisableKeyRotationResponse();
}

absl::StatusOr<v1::GetKeyRotationStatusResponse> KeyManager::GetKeyRotationStatus(
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

absl::StatusOr<uint32_t> KeyManager::RotateLocked(LoadedKey& key, v1::RotationType type) {
  const std::string& id = key.record.metadata().key_id();
  const std::string& arn = key.record.metadata().arn();
  const bool on_demand = type == v1::ROTATION_TYPE_ON_DEMAND;
  if (on_demand &&
      key.record.on_demand_rotations() >= static_cast<uint32_t>(kMaxOnDemandRotations)) {
    return Error(reason::kLimitExceeded,
                 absl::StrCat("Key '", arn, "' has reached the limit of ", kMaxOnDemandRotations,
                              " on-demand rotations (RotateKeyOnDemand)"),
                 arn);
  }
  // Bounds the history too: it has one entry per version after the first.
  const auto max_versions = static_cast<size_t>(options_.max_key_versions);
  if (key.material.size() >= max_versions) {
    return Error(reason::kLimitExceeded,
                 absl::StrCat("Key '", arn, "' has reached the limit of ", max_versions,
                              " key material versions"),
                 arn);
  }
  auto version = static_cast<uint32_t>(key.material.size() + 1);
  absl::Time now = clock_->Now();
  storage::WriteBatch batch;
  COFFER_ASSIGN_OR_RETURN(auto material, NewMaterial(id, version, batch));
  KeyRecord updated = key.record;
  auto* rotation = updated.add_rotations();  // key_id (the ARN) filled in when listed
  *rotation->mutable_rotation_date() = ToProto(now);
  rotation->set_rotation_type(type);
  rotation->set_key_material_version(version);
  if (type == v1::ROTATION_TYPE_AUTOMATIC) {
    *updated.mutable_next_rotation_date() =
        ToProto(now + absl::Hours(24 * updated.rotation_period_in_days()));
  }
  if (on_demand) updated.set_on_demand_rotations(updated.on_demand_rotations() + 1);
  updated.mutable_metadata()->set_current_key_material_version(version);
  batch.Put(kKeysFamily, id, updated.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  key.record = std::move(updated);
  key.material.push_back(std::move(material));
  FillMetadata(key);
  return version;
}

absl::StatusOr<v1::RotateKeyOnDemandResponse> KeyManager::RotateKeyOnDemand(
    const v1::RotateKeyOnDemandRequest& request) {
  absl::MutexLock turn(&write_mu_);  // one change at a time
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  COFFER_RETURN_IF_ERROR(CheckUsable(key->record));
  COFFER_ASSIGN_OR_RETURN(uint32_t version, RotateLocked(*key, v1::ROTATION_TYPE_ON_DEMAND));
  v1::RotateKeyOnDemandResponse response;
  response.set_key_id(key->record.metadata().arn());
  response.set_key_material_version(version);
  return response;
}

absl::StatusOr<v1::ListKeyRotationsResponse> KeyManager::ListKeyRotations(
    const v1::ListKeyRotationsRequest& request) {
  COFFER_ASSIGN_OR_RETURN(int limit, PageLimit("limit", request.limit(), 1000, 100));
  COFFER_ASSIGN_OR_RETURN(std::string after, DecodeMarker(request.marker()));
  uint32_t after_version = 0;
  if (!after.empty() && !absl::SimpleAtoi(after, &after_version)) return InvalidMarkerError();
  absl::ReaderMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("key_id", request.key_id()));
  v1::ListKeyRotationsResponse response;
  const auto& rotations = key->record.rotations();
  int i = 0;
  while (i < rotations.size() && rotations[i].key_material_version() <= after_version) ++i;
  for (; i < rotations.size() && response.rotations_size() < limit; ++i) {
    auto* rotation = response.add_rotations();
    *rotation = rotations[i];
    rotation->set_key_id(key->record.metadata().arn());
  }
  if (i < rotations.size()) {
    response.set_truncated(true);
    response.set_next_marker(EncodeMarker(
        absl::StrCat(response.rotations(response.rotations_size() - 1).key_material_version())));
  }
  return response;
}

// ---- tags ----

absl::StatusOr<v1::TagResourceResponse> KeyManager::TagResource(
    const v1::TagResourceRequest& request) {
  if (request.tags().empty()) return InvalidField("tags", "at least one tag is required");
  COFFER_RETURN_IF_ERROR(ValidateTags("tags", request.tags()));
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    std::map<std::string, std::string> merged;
    for (const auto& tag : updated.tags()) merged[tag.tag_key()] = tag.tag_value();
    for (const auto& tag : request.tags()) merged[tag.tag_key()] = tag.tag_value();
    if (static_cast<int>(merged.size()) > kMaxTagsPerKey) {
      return Error(reason::kLimitExceeded,
                   absl::StrCat("tags: a key may have at most ", kMaxTagsPerKey, " tags"),
                   updated.metadata().arn(), "tags");
    }
    updated.clear_tags();
    for (const auto& [k, v] : merged) {
      auto* tag = updated.add_tags();
      tag->set_tag_key(k);
      tag->set_tag_value(v);
    }
    return absl::OkStatus();
  }));
  return v1::TagResourceResponse();
}

absl::StatusOr<v1::UntagResourceResponse> KeyManager::UntagResource(
    const v1::UntagResourceRequest& request) {
  if (request.tag_keys().empty() || request.tag_keys_size() > kMaxTagsPerKey) {
    return InvalidField("tag_keys", absl::StrCat("must name 1-", kMaxTagsPerKey, " tag keys"));
  }
  for (const auto& k : request.tag_keys())
    COFFER_RETURN_IF_ERROR(ValidateTagKey("tag_keys", k, kKmsTagRules));
  COFFER_RETURN_IF_ERROR(UpdateKey(request.key_id(), [&](KeyRecord& updated) {
    COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(updated));
    std::set<std::string> remove(request.tag_keys().begin(), request.tag_keys().end());
    auto* tags = updated.mutable_tags();
    tags->erase(std::remove_if(tags->begin(), tags->end(),
                               [&](const v1::Tag& tag) { return remove.count(tag.tag_key()) > 0; }),
                tags->end());
    return absl::OkStatus();
  }));
  return v1::UntagResourceResponse();
}

absl::StatusOr<v1::ListResourceTagsResponse> KeyManager::ListResourceTags(
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

// ---- maintenance ----

absl::StatusOr<MaintenanceResult> KeyManager::RunMaintenance() {
  // Replicas: act on what the others did (a stale replica's changes would
  // only conflict).
  COFFER_RETURN_IF_ERROR(Refresh());
  MaintenanceResult result;
  absl::Time now = clock_->Now();
  absl::MutexLock turn(&write_mu_);  // one change at a time
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
    refusal_logged_.erase(id);
    ++result.keys_deleted;
  }
  for (LoadedKey* key : due_rotation) {
    absl::Status rotated = RotateLocked(*key, v1::ROTATION_TYPE_AUTOMATIC).status();
    if (ErrorReason(rotated) == reason::kLimitExceeded) {
      // The key keeps its newest version and stays due: it rotates once the
      // limit is raised. Said once, not every pass.
      ++result.rotations_refused;
      const std::string& id = key->record.metadata().key_id();
      if (refusal_logged_.insert(id).second) {
        log::Warn("kms", "automatic rotation refused",
                  {{"key_id", id}, {"error", std::string(rotated.message())}});
      }
      continue;
    }
    COFFER_RETURN_IF_ERROR(rotated);
    ++result.keys_rotated;
  }
  return result;
}

std::map<v1::KeyState, int> KeyManager::CountKeysByState() const {
  absl::ReaderMutexLock lock(&mu_);
  std::map<v1::KeyState, int> counts;
  for (const auto& [id, key] : keys_) ++counts[key->record.metadata().key_state()];
  return counts;
}

}  // namespace coffer::kms
