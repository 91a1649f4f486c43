#include "services/kms/access_keys.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "libs/common/errors.h"
#include "libs/common/log.h"
#include "libs/common/paging.h"
#include "libs/common/proto_time.h"
#include "libs/common/retry.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/random.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/sigv4/digest.h"
#include "libs/sigv4/sigv4_error.h"

namespace coffer::kms {
namespace {

namespace iamv1 = ::coffer::iam::v1;
using Record = ::coffer::internal::iam::v1::AccessKeyRecord;

constexpr char kFamily[] = "access_keys";
constexpr char kIdPrefix[] = "AKCO";
constexpr size_t kIdLength = 20;
constexpr size_t kMaxIdentity = 2048;
constexpr size_t kMaxDescription = 256;
constexpr PagingErrors kMarkerErrors{"marker", reason::kValidation};

// 16 characters of RFC 4648 base32 from 10 random bytes.
std::string NewAccessKeyId() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint8_t bytes[10];
  crypto::RandomBytes(bytes, sizeof(bytes));
  std::string id = kIdPrefix;
  uint64_t bits = 0;
  int have = 0;
  for (uint8_t b : bytes) {
    bits = (bits << 8) | b;
    have += 8;
    while (have >= 5) {
      id += kAlphabet[(bits >> (have - 5)) & 31];
      have -= 5;
    }
  }
  return id;
}

absl::Status ValidateAccessKeyId(absl::string_view id) {
  if (id.empty()) return InvalidField("access_key_id", "is required");
  bool ok = id.size() == kIdLength && absl::StartsWith(id, kIdPrefix);
  for (char c : id) ok = ok && (absl::ascii_isupper(c) || (c >= '2' && c <= '7'));
  if (!ok) {
    return InvalidField("access_key_id", "must be 20 characters: AKCO and 16 of A-Z and 2-7");
  }
  return absl::OkStatus();
}

absl::Status NoSuchKey(absl::string_view id) {
  return Error(reason::kNoSuchEntity, absl::StrCat("The access key ", id, " does not exist"), id);
}

// AWS's words for a signature by a key it does not know (or that is off).
absl::Status Unrecognized() {
  return sigv4::MakeSigV4Error(sigv4::SigV4Error::kUnrecognizedClient,
                               "The security token included in the request is invalid.");
}

absl::Status ValidateScopePart(absl::string_view field, absl::string_view value) {
  if (value.empty() || value.size() > 64) {
    return InvalidField(field, "must be 1-64 characters");
  }
  for (char c : value) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') {
      return InvalidField(field, "may hold only a-z, 0-9 and -");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateIdentity(absl::string_view field, absl::string_view identity) {
  if (identity.empty()) return InvalidField(field, "is required");
  if (identity.size() > kMaxIdentity) {
    return InvalidField(field, absl::StrCat("must be at most ", kMaxIdentity, " characters"));
  }
  if (!absl::StartsWith(identity, "spiffe://")) {
    return InvalidField(field, "must be a SPIFFE ID: spiffe://<trust domain>/<path>");
  }
  const absl::string_view rest = identity.substr(9);
  const size_t slash = rest.find('/');
  if (slash == 0 || slash == absl::string_view::npos || slash + 1 == rest.size()) {
    return InvalidField(field, "must be a SPIFFE ID: spiffe://<trust domain>/<path>");
  }
  for (char c : identity) {
    if (c <= ' ' || c > '~') return InvalidField(field, "must be printable ASCII without spaces");
  }
  return absl::OkStatus();
}

AccessKeyStore::AccessKeyStore(const AccessKeyStoreOptions& options, KeyManager* keys)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : RealClock()),
      keys_(keys) {}

AccessKeyStore::~AccessKeyStore() {
  stopping_ = true;  // a reload retrying in the watch's callback gives up
  watch_.reset();
}

void AccessKeyStore::ReloadUntilDone(absl::string_view id) {
  // A record left stale would keep a disabled or deleted key usable here:
  // try again until it is read or this store goes.
  RetryUntilOk([this, id] { return Reload(id); }, stopping_,
               [id](const absl::Status& s) {
                 log::Warn("kms", "access key reload failed; retrying",
                           {{"access_key_id", std::string(id)}, {"error", s.ToString()}});
               });
}

std::vector<std::string> AccessKeyStore::ColumnFamilies() { return {kFamily}; }

absl::StatusOr<std::unique_ptr<AccessKeyStore>> AccessKeyStore::Open(
    const AccessKeyStoreOptions& options, KeyManager* keys) {
  storage::DatabaseOptions db_options;
  db_options.path = options.db_path;
  db_options.column_families = ColumnFamilies();
  db_options.sync_writes = options.sync_writes;
  COFFER_ASSIGN_OR_RETURN(auto db, storage::Database::Open(db_options));
  return Open(options, keys, std::move(db));
}

absl::StatusOr<std::unique_ptr<AccessKeyStore>> AccessKeyStore::Open(
    const AccessKeyStoreOptions& options, KeyManager* keys, std::unique_ptr<storage::Database> db) {
  std::unique_ptr<AccessKeyStore> store(new AccessKeyStore(options, keys));
  store->db_ = std::move(db);
  if (store->db_->shared()) {
    // Watch first, then read: a change between the two is seen either way.
    AccessKeyStore* self = store.get();
    COFFER_ASSIGN_OR_RETURN(
        store->watch_, store->db_->WatchFamily(
                           kFamily, [self](absl::string_view id) { self->ReloadUntilDone(id); }));
  }
  COFFER_RETURN_IF_ERROR(store->Load());
  return store;
}

absl::Status AccessKeyStore::Reload(absl::string_view id) {
  if (id.empty()) return Load();  // the watch missed changes
  // After any whole Load under way, so that its older copy cannot replace
  // what is read here.
  absl::MutexLock loading(&load_mu_);
  COFFER_ASSIGN_OR_RETURN(std::optional<std::string> value, db_->Get(kFamily, id));
  absl::MutexLock lock(&mu_);
  if (!value.has_value()) {
    records_.erase(std::string(id));
    return absl::OkStatus();
  }
  Record record;
  if (!record.ParseFromString(*value)) {
    return absl::DataLossError(absl::StrCat("access key record ", id, " does not parse"));
  }
  records_[std::string(id)] = std::move(record);
  return absl::OkStatus();
}

absl::Status AccessKeyStore::Load() {
  absl::MutexLock loading(&load_mu_);
  std::map<std::string, Record> records;
  absl::Status bad;
  COFFER_RETURN_IF_ERROR(db_->Scan(kFamily, {}, [&](absl::string_view key, absl::string_view v) {
    Record record;
    if (!record.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      bad = absl::DataLossError(absl::StrCat("access key record ", key, " does not parse"));
      return false;
    }
    records[std::string(key)] = std::move(record);
    return true;
  }));
  COFFER_RETURN_IF_ERROR(bad);
  absl::MutexLock lock(&mu_);
  records_.swap(records);
  return absl::OkStatus();
}

absl::StatusOr<iamv1::CreateAccessKeyResponse> AccessKeyStore::CreateAccessKey(
    const iamv1::CreateAccessKeyRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateIdentity("identity", request.identity()));
  for (const std::string& reserved : options_.reserved_identities) {
    if (!reserved.empty() && request.identity() == reserved) {
      return InvalidField("identity",
                          "is one of Coffer's own services, which act with their certificates "
                          "only");
    }
  }
  if (request.description().size() > kMaxDescription) {
    return InvalidField("description",
                        absl::StrCat("must be at most ", kMaxDescription, " characters"));
  }
  absl::MutexLock write(&write_mu_);
  std::string id;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (static_cast<int>(records_.size()) >= options_.max_keys) {
      return Error(reason::kIamLimitExceeded,
                   absl::StrCat("Cannot exceed quota for AccessKeys: ", options_.max_keys));
    }
    int mine = 0;
    for (const auto& [_, r] : records_) mine += r.metadata().identity() == request.identity();
    if (mine >= options_.max_keys_per_identity) {
      return Error(reason::kIamLimitExceeded,
                   absl::StrCat("Cannot exceed quota for AccessKeysPerUser: ",
                                options_.max_keys_per_identity),
                   request.identity());
    }
    do {
      id = NewAccessKeyId();
    } while (records_.count(id) != 0);
  }

  // 30 random bytes: 40 characters of base64, like AWS's.
  crypto::SecureBuffer raw = crypto::SecureBuffer::Random(30);
  std::string secret =
      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  v1::EncryptRequest seal;
  seal.set_key_id(kAccessKeySealingKey);
  (*seal.mutable_encryption_context())[kAccessKeyContextKey] = id;
  seal.set_plaintext(secret);
  absl::StatusOr<v1::EncryptResponse> sealed = keys_->Encrypt(seal);
  crypto::Wipe(seal.mutable_plaintext()->data(), seal.plaintext().size());
  if (!sealed.ok()) {
    crypto::Wipe(secret.data(), secret.size());
    return sealed.status();
  }

  Record record;
  iamv1::AccessKeyMetadata* metadata = record.mutable_metadata();
  metadata->set_access_key_id(id);
  metadata->set_identity(request.identity());
  metadata->set_status(iamv1::ACCESS_KEY_STATUS_ACTIVE);
  *metadata->mutable_create_date() = ToProto(clock_->Now());
  metadata->set_description(request.description());
  record.set_sealed_secret(sealed->ciphertext_blob());
  if (absl::Status s = db_->Put(kFamily, id, record.SerializeAsString()); !s.ok()) {
    crypto::Wipe(secret.data(), secret.size());
    return s;
  }
  iamv1::CreateAccessKeyResponse response;
  *response.mutable_access_key() = *metadata;
  response.set_secret_access_key(std::move(secret));
  absl::MutexLock lock(&mu_);
  records_[id] = std::move(record);
  return response;
}

absl::StatusOr<iamv1::ListAccessKeysResponse> AccessKeyStore::ListAccessKeys(
    const iamv1::ListAccessKeysRequest& request) const {
  if (!request.identity().empty()) {
    COFFER_RETURN_IF_ERROR(ValidateIdentity("identity", request.identity()));
  }
  COFFER_ASSIGN_OR_RETURN(
      int limit, PageSize(request.max_items(), {1000, 100}, {"max_items", reason::kValidation}));
  COFFER_ASSIGN_OR_RETURN(std::string after,
                          DecodePageToken("access-keys", request.marker(), kMarkerErrors));
  iamv1::ListAccessKeysResponse response;
  absl::ReaderMutexLock lock(&mu_);
  for (auto it = after.empty() ? records_.begin() : records_.upper_bound(after);
       it != records_.end(); ++it) {
    if (!request.identity().empty() && it->second.metadata().identity() != request.identity()) {
      continue;
    }
    if (response.access_keys_size() == limit) {
      response.set_is_truncated(true);
      response.set_marker(
          EncodePageToken("access-keys", response.access_keys(limit - 1).access_key_id()));
      break;
    }
    *response.add_access_keys() = it->second.metadata();
  }
  return response;
}

absl::StatusOr<iamv1::UpdateAccessKeyResponse> AccessKeyStore::UpdateAccessKey(
    const iamv1::UpdateAccessKeyRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAccessKeyId(request.access_key_id()));
  if (request.status() != iamv1::ACCESS_KEY_STATUS_ACTIVE &&
      request.status() != iamv1::ACCESS_KEY_STATUS_INACTIVE) {
    return InvalidField("status", "must be ACTIVE or INACTIVE");
  }
  absl::MutexLock write(&write_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (records_.count(request.access_key_id()) == 0 && !db_->shared()) {
      return NoSuchKey(request.access_key_id());
    }
  }
  // The stored record, not this process's copy: on replicas another one
  // may have deleted the key meanwhile, which a write must not undo.
  Record updated;
  COFFER_RETURN_IF_ERROR(db_->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                            txn.GetForUpdate(kFamily, request.access_key_id()));
    if (!stored.has_value()) return NoSuchKey(request.access_key_id());
    if (!updated.ParseFromString(*stored)) {
      return absl::DataLossError(
          absl::StrCat("access key record ", request.access_key_id(), " does not parse"));
    }
    if (updated.metadata().status() == request.status()) return absl::OkStatus();
    updated.mutable_metadata()->set_status(request.status());
    txn.Put(kFamily, request.access_key_id(), updated.SerializeAsString());
    return absl::OkStatus();
  }));
  absl::MutexLock lock(&mu_);
  records_[request.access_key_id()] = std::move(updated);
  return iamv1::UpdateAccessKeyResponse();
}

absl::StatusOr<iamv1::DeleteAccessKeyResponse> AccessKeyStore::DeleteAccessKey(
    const iamv1::DeleteAccessKeyRequest& request) {
  COFFER_RETURN_IF_ERROR(ValidateAccessKeyId(request.access_key_id()));
  absl::MutexLock write(&write_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (records_.count(request.access_key_id()) == 0 && !db_->shared()) {
      return NoSuchKey(request.access_key_id());
    }
  }
  COFFER_RETURN_IF_ERROR(db_->RunTransaction([&](storage::Transaction& txn) -> absl::Status {
    COFFER_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                            txn.GetForUpdate(kFamily, request.access_key_id()));
    if (!stored.has_value()) return NoSuchKey(request.access_key_id());
    txn.Delete(kFamily, request.access_key_id());
    return absl::OkStatus();
  }));
  absl::MutexLock lock(&mu_);
  records_.erase(request.access_key_id());
  return iamv1::DeleteAccessKeyResponse();
}

absl::StatusOr<iamv1::GetSigningKeyResponse> AccessKeyStore::GetSigningKey(
    const iamv1::GetSigningKeyRequest& request) const {
  // A malformed id is as unknown as a missing one: say nothing more.
  if (!ValidateAccessKeyId(request.access_key_id()).ok()) return Unrecognized();
  absl::CivilDay day;
  if (request.date().size() != 8 ||
      !absl::ParseCivilTime(
          absl::StrCat(request.date().substr(0, 4), "-", request.date().substr(4, 2), "-",
                       request.date().substr(6, 2)),
          &day)) {
    return InvalidField("date", "must be yyyymmdd");
  }
  COFFER_RETURN_IF_ERROR(ValidateScopePart("region", request.region()));
  COFFER_RETURN_IF_ERROR(ValidateScopePart("service", request.service()));
  // A signing key is good for its day only; none for days far from now.
  const absl::CivilDay today = absl::ToCivilDay(clock_->Now(), absl::UTCTimeZone());
  if (day < today - 1 || day > today + 1) {
    return sigv4::MakeSigV4Error(sigv4::SigV4Error::kInvalidSignature,
                                 "Signature date is more than a day from the server's clock.");
  }
  Record record;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = records_.find(request.access_key_id());
    if (it == records_.end() || it->second.metadata().status() != iamv1::ACCESS_KEY_STATUS_ACTIVE) {
      return Unrecognized();
    }
    record = it->second;
  }
  v1::DecryptRequest open;
  open.set_ciphertext_blob(record.sealed_secret());
  (*open.mutable_encryption_context())[kAccessKeyContextKey] = request.access_key_id();
  COFFER_ASSIGN_OR_RETURN(v1::DecryptResponse opened, keys_->Decrypt(open));
  crypto::SecureBuffer signing_key = sigv4::DeriveSigningKey(
      opened.plaintext(), {request.date(), request.region(), request.service()});
  crypto::Wipe(opened.mutable_plaintext()->data(), opened.plaintext().size());
  iamv1::GetSigningKeyResponse response;
  response.set_identity(record.metadata().identity());
  response.set_signing_key(reinterpret_cast<const char*>(signing_key.data()), signing_key.size());
  return response;
}

std::string AccessKeyStore::IdentityOf(absl::string_view access_key_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = records_.find(std::string(access_key_id));
  return it == records_.end() ? "" : it->second.metadata().identity();
}

}  // namespace coffer::kms
