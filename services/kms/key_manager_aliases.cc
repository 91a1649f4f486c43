// KeyManager: aliases (CreateAlias, UpdateAlias, DeleteAlias, ListAliases).
// See key_manager_internal.h for how the KeyManager is spread over files.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "services/kms/key_manager.h"
#include "services/kms/key_manager_internal.h"

namespace coffer::kms {

using key_manager_internal::AliasRecord;
using key_manager_internal::CheckNotPendingDeletion;
using key_manager_internal::DecodeMarker;
using key_manager_internal::EncodeMarker;
using key_manager_internal::kAliasesFamily;
using key_manager_internal::NotFound;
using key_manager_internal::PageLimit;
using key_manager_internal::ValidateAliasName;
using key_manager_internal::ValidateKeyRef;

namespace {

absl::Status ValidateAliasTarget(absl::string_view ref) {
  COFFER_RETURN_IF_ERROR(ValidateKeyRef("target_key_id", ref));
  if (absl::StartsWith(ref, "alias/") || absl::StrContains(ref, ":alias/")) {
    return InvalidField("target_key_id", "must be a key id or key ARN, not an alias");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status KeyManager::CheckAliasLimitLocked(const LoadedKey& key) const {
  const std::string& key_id = key.record.metadata().key_id();
  int n = 0;
  for (const auto& [name, alias] : aliases_) n += alias.target_key_id() == key_id;
  if (n < options_.max_aliases_per_key) return absl::OkStatus();
  return Error(reason::kLimitExceeded,
               absl::StrCat("a key may have at most ", options_.max_aliases_per_key, " aliases"),
               key.record.metadata().arn());
}

absl::StatusOr<v1::CreateAliasResponse> KeyManager::CreateAlias(
    const v1::CreateAliasRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAliasName("alias_name", request.alias_name(), false));
  COFFER_RETURN_IF_ERROR(ValidateAliasTarget(request.target_key_id()));
  absl::MutexLock turn(&write_mu_);  // one change at a time
  absl::WriterMutexLock lock(&mu_);
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("target_key_id", request.target_key_id()));
  COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(key->record));
  if (aliases_.count(request.alias_name())) {
    return Error(reason::kAlreadyExists,
                 absl::StrCat("Alias '", request.alias_name(), "' already exists"),
                 request.alias_name());
  }
  COFFER_RETURN_IF_ERROR(CheckAliasLimitLocked(*key));
  AliasRecord alias;
  alias.set_alias_name(request.alias_name());
  alias.set_target_key_id(key->record.metadata().key_id());
  *alias.mutable_creation_date() = ToProto(clock_->Now());
  *alias.mutable_last_updated_date() = alias.creation_date();
  storage::WriteBatch batch;
  batch.Put(kAliasesFamily, alias.alias_name(), alias.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  aliases_[alias.alias_name()] = std::move(alias);
  return v1::CreateAliasResponse();
}

absl::StatusOr<v1::UpdateAliasResponse> KeyManager::UpdateAlias(
    const v1::UpdateAliasRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAliasName("alias_name", request.alias_name(), false));
  COFFER_RETURN_IF_ERROR(ValidateAliasTarget(request.target_key_id()));
  absl::MutexLock turn(&write_mu_);  // one change at a time
  absl::WriterMutexLock lock(&mu_);
  auto it = aliases_.find(request.alias_name());
  if (it == aliases_.end()) return NotFound("Alias", request.alias_name());
  COFFER_ASSIGN_OR_RETURN(LoadedKey * key, FindKeyLocked("target_key_id", request.target_key_id()));
  COFFER_RETURN_IF_ERROR(CheckNotPendingDeletion(key->record));
  const std::string& id = key->record.metadata().key_id();
  if (it->second.target_key_id() != id) COFFER_RETURN_IF_ERROR(CheckAliasLimitLocked(*key));
  AliasRecord alias = it->second;
  alias.set_target_key_id(id);
  *alias.mutable_last_updated_date() = ToProto(clock_->Now());
  storage::WriteBatch batch;
  batch.Put(kAliasesFamily, alias.alias_name(), alias.SerializeAsString());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  it->second = std::move(alias);
  return v1::UpdateAliasResponse();
}

absl::StatusOr<v1::DeleteAliasResponse> KeyManager::DeleteAlias(
    const v1::DeleteAliasRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAliasName("alias_name", request.alias_name(), false));
  absl::MutexLock turn(&write_mu_);  // one change at a time
  absl::WriterMutexLock lock(&mu_);
  auto it = aliases_.find(request.alias_name());
  if (it == aliases_.end()) return NotFound("Alias", request.alias_name());
  storage::WriteBatch batch;
  batch.Delete(kAliasesFamily, request.alias_name());
  COFFER_RETURN_IF_ERROR(WriteOrInternal(batch));
  aliases_.erase(it);
  return v1::DeleteAliasResponse();
}

absl::StatusOr<v1::ListAliasesResponse> KeyManager::ListAliases(
    const v1::ListAliasesRequest& request) {
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

KeyManager::KeyNames KeyManager::NamesOf(absl::string_view ref) const {
  KeyNames names;
  absl::string_view rest = ref;
  const std::string prefix = ArnPrefix();
  if (absl::StartsWith(rest, prefix)) rest = rest.substr(prefix.size());
  if (absl::StartsWith(rest, "alias/")) names.alias = std::string(rest);
  absl::ReaderMutexLock lock(&mu_);
  auto id = ResolveLocked("key_id", ref);
  if (!id.ok()) return names;
  names.arn = KeyArn(*id);
  auto key = keys_.find(*id);
  names.coffer_managed =
      key != keys_.end() && key->second->record.metadata().key_manager() == v1::KEY_MANAGER_COFFER;
  return names;
}

}  // namespace coffer::kms
