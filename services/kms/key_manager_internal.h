// key_manager_internal.h: what the KeyManager's .cc files share, the way RocksDB
// spreads DBImpl over db_impl_*.cc: the column families, the in-memory key
// types, and the checks more than one file makes. Only services/kms/
// key_manager*.cc include it; the API is key_manager.h.
//
//   key_manager.cc          lifecycle (open, load), ARNs, key resolution, key
//                         creation, metadata, states, rotation, tags,
//                         maintenance
//   key_manager_aliases.cc  CreateAlias, UpdateAlias, DeleteAlias, ListAliases
//   key_manager_crypto.cc   Encrypt, Decrypt, ReEncrypt, GenerateDataKey*,
//                         GenerateRandom and the built-in key on first use
//
//   namespace ksi = ::coffer::kms::key_manager_internal;
//   COFFER_RETURN_IF_ERROR(ksi::ValidateKeyRef("key_id", request.key_id()));
//   COFFER_RETURN_IF_ERROR(ksi::CheckUsable(key->record));
//
// Every check returns the error the API specifies (libs/common/errors.h
// reasons) and never touches the store's state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coffer/internal/kms/v1/keystore.pb.h"
#include "libs/crypto/secure_buffer.h"
#include "services/kms/key_manager.h"

namespace coffer::kms {

// One version of a key's material, unsealed, in read-only guarded memory
// (SecureBuffer::ReadOnlyCopy: packed with the other versions into a few
// regions, not one mapping per version; wiped when the last holder drops it).
struct KeyManager::Material {
  uint32_t version = 0;
  crypto::SecureBuffer key;
};

struct KeyManager::LoadedKey {
  ::coffer::internal::kms::v1::KeyRecord record;
  // material[i] is version i + 1.
  std::vector<std::shared_ptr<Material>> material;
};

// A key picked for one crypto operation; `material` stays alive (and
// unwiped) while the operation holds it, even if the key is deleted.
struct KeyManager::ResolvedKey {
  std::string key_id;
  std::string arn;
  std::shared_ptr<Material> material;
};

namespace key_manager_internal {

using ::coffer::internal::kms::v1::AliasRecord;
using ::coffer::internal::kms::v1::KeyRecord;
using ::coffer::internal::kms::v1::SealedMaterial;

// RocksDB column families: key id -> KeyRecord, "<key id>/<version>" ->
// SealedMaterial, alias name -> AliasRecord.
inline constexpr char kKeysFamily[] = "keys";
inline constexpr char kMaterialFamily[] = "material";
inline constexpr char kAliasesFamily[] = "aliases";
// Shared keystores (etcd): kGenerationKey holds a value each change
// replaces, in the same write.
inline constexpr char kGenerationFamily[] = "generation";
inline constexpr char kGenerationKey[] = "keystore";
inline constexpr char kAlgorithm[] = "SYMMETRIC_DEFAULT";

// ValidationException: empty, or longer than 2048 characters.
absl::Status ValidateKeyRef(absl::string_view field, absl::string_view ref);

// InvalidAliasNameException unless `name` is alias/<1-250 of [A-Za-z0-9:/_-]>;
// alias/aws/ and alias/coffer/ only when `allow_reserved`.
absl::Status ValidateAliasName(absl::string_view field, absl::string_view name,
                               bool allow_reserved);

// NotFoundException "<what> '<ref>' does not exist".
absl::Status NotFound(absl::string_view what, absl::string_view ref);

// OK for an Enabled key; DisabledException or KMSInvalidStateException.
absl::Status CheckUsable(const KeyRecord& record);

// KMSInvalidStateException for a key pending deletion.
absl::Status CheckNotPendingDeletion(const KeyRecord& record);

// List calls: `value` 0 means `dflt`, otherwise 1..max (ValidationException).
absl::StatusOr<int> PageLimit(absl::string_view field, int value, int max, int dflt);

// Markers are opaque to callers: the last item returned, base64url-encoded.
// DecodeMarker: "" for "", InvalidMarkerException for anything not made by
// EncodeMarker.
std::string EncodeMarker(absl::string_view last);
absl::StatusOr<std::string> DecodeMarker(absl::string_view marker);
absl::Status InvalidMarkerError();

}  // namespace key_manager_internal
}  // namespace coffer::kms
