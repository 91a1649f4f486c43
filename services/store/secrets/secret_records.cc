#include "services/store/secrets/secret_records.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "coffer/rotation/v1/control.pb.h"
#include "libs/common/blocking.h"
#include "libs/common/errors.h"
#include "libs/common/ids.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "services/store/schema.h"
#include "services/store/secrets/staging_labels.h"

namespace coffer::store {

using ::coffer::internal::store::v1::ListIndexEntry;
using ::coffer::internal::store::v1::ValueType;

namespace {

EncryptionContext ContextOf(const std::string& arn, const std::string& version_id) {
  return {{"SecretARN", arn}, {"SecretVersionId", version_id}};
}

// The context of a secret's key-encryption key (envelope.h).
EncryptionContext KekContextOf(const std::string& arn) { return {{"SecretARN", arn}}; }

ListIndexEntry IndexEntryOf(const SecretRecord& r) {
  ListIndexEntry e;
  e.set_name(r.name());
  e.set_description(r.description());
  *e.mutable_tags() = r.tags();
  e.set_planned_deletion(IsDeleted(r));
  return e;
}

using ::coffer::internal::store::v1::DeprecatedVersions;

// Merges `deprecated` into `r`'s versions (skipping ids it already holds),
// oldest first.
void MergeDeprecated(SecretRecord& r, DeprecatedVersions deprecated) {
  if (deprecated.versions().empty()) return;
  std::set<std::string> held;
  for (const auto& v : r.versions()) held.insert(v.version_id());
  for (auto& v : *deprecated.mutable_versions()) {
    if (held.count(v.version_id()) == 0) *r.add_versions() = std::move(v);
  }
  std::stable_sort(
      r.mutable_versions()->begin(), r.mutable_versions()->end(),
      [](const VersionSummary& a, const VersionSummary& b) { return a.ordinal() < b.ordinal(); });
}

// Takes the versions without labels out of `r` (which holds every version,
// oldest first). Records from before ordinals existed are numbered by
// position first, so the two lists can be merged again.
DeprecatedVersions SplitDeprecated(SecretRecord& r) {
  auto* versions = r.mutable_versions();
  if (std::any_of(versions->begin(), versions->end(),
                  [](const VersionSummary& v) { return v.ordinal() == 0; })) {
    for (int i = 0; i < versions->size(); ++i) versions->Mutable(i)->set_ordinal(i + 1);
  }
  DeprecatedVersions deprecated;
  google::protobuf::RepeatedPtrField<VersionSummary> labelled;
  for (auto& v : *versions) {
    *(v.stages().empty() ? deprecated.add_versions() : labelled.Add()) = std::move(v);
  }
  versions->Swap(&labelled);
  return deprecated;
}

absl::StatusOr<DeprecatedVersions> ParseDeprecated(const std::optional<std::string>& bytes,
                                                   absl::string_view name) {
  DeprecatedVersions deprecated;
  if (bytes && !deprecated.ParseFromString(*bytes)) {
    return Error(reason::kInternal, "stored version list is unreadable", name);
  }
  return deprecated;
}

// Writes `r` (every version) split into its record and deprecated list;
// `deprecated_before` is the list's stored bytes ("" = none).
void WriteSplit(SecretRecord& r, storage::Transaction& txn, const std::string& deprecated_before) {
  DeprecatedVersions deprecated = SplitDeprecated(r);
  txn.Put(schema::kSecrets, r.name(), r.SerializeAsString());
  std::string after = deprecated.versions().empty() ? "" : deprecated.SerializeAsString();
  if (after == deprecated_before) return;
  if (after.empty()) {
    txn.Delete(schema::kDeprecatedVersions, r.name());
  } else {
    txn.Put(schema::kDeprecatedVersions, r.name(), after);
  }
}

absl::Status NameTaken(absl::string_view name) {
  return Error(reason::kResourceExists,
               absl::StrCat("The operation failed because the secret ", name, " already exists."),
               name);
}

}  // namespace

absl::Status SecretNotFound(absl::string_view secret_id) {
  return Error(reason::kResourceNotFound, "Secrets Manager can't find the specified secret.",
               secret_id);
}

absl::Status MarkedForDeletion(absl::string_view name) {
  return Error(reason::kInvalidRequest,
               "You can't perform this operation on the secret because it was marked for "
               "deletion.",
               name);
}

absl::Status VersionExists(absl::string_view name) {
  return Error(reason::kResourceExists,
               "You can't modify an existing version, you can only create new versions.", name);
}

absl::StatusOr<std::string> RequestToken(absl::string_view field, const std::string& token) {
  if (token.empty()) return NewUuid();
  COFFER_RETURN_IF_ERROR(ValidateVersionId(field, token));
  return token;
}

std::string RotationIndexEntry(const SecretRecord& r) {
  if (!r.rotation().enabled() || IsDeleted(r)) return "";
  rotation::v1::RotationScheduleEntry e;
  e.set_secret_arn(r.arn());
  e.set_name(r.name());
  e.set_rotation_worker(r.rotation().worker());
  *e.mutable_next_rotation_date() = r.rotation().next_rotation_date();
  e.set_in_progress(r.rotation_run().next_step() != 0);
  if (r.rotation_run().has_lease_expires()) {
    *e.mutable_lease_expires() = r.rotation_run().lease_expires();
  }
  return e.SerializeAsString();
}

// One writer's change, queued for its secret's turn.
struct SecretRecords::QueuedChange {
  const SecretRecord* resolved = nullptr;
  coffer::v1::ChangeKind kind = coffer::v1::CHANGE_KIND_UNSPECIFIED;
  const RecordMutation* mutate = nullptr;
  const std::string* version = nullptr;
  absl::Status result;
  bool done = false;  // result is final (guarded by the stripe's mutex)
  bool lead = false;  // this writer now holds the secret's turn (ditto)
};

// The queues of the secrets whose names hash to one stripe. A secret has a
// queue while someone holds its turn; the holder commits everything queued,
// then hands the turn to the first writer that queued meanwhile.
struct SecretRecords::WriterStripe {
  absl::Mutex mu;
  absl::node_hash_map<std::string, std::deque<QueuedChange*>> waiting ABSL_GUARDED_BY(mu);
};

SecretRecords::SecretRecords(storage::Database* db, Envelope* envelope, SecretStoreOptions options)
    : db_(db),
      envelope_(envelope),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : RealClock()),
      stripes_(new WriterStripe[kWriterStripes]) {}

SecretRecords::~SecretRecords() = default;

absl::Status SecretRecords::Load() {
  int64_t n = 0;
  COFFER_RETURN_IF_ERROR(db_->Scan(schema::kSecrets, {}, [&](absl::string_view, absl::string_view) {
    ++n;
    return true;
  }));
  count_.store(n);
  return absl::OkStatus();
}

absl::Status SecretRecords::Recount() {
  if (!db_->shared()) return absl::OkStatus();
  COFFER_ASSIGN_OR_RETURN(uint64_t n, db_->CountKeys(schema::kSecrets));
  count_.store(static_cast<int64_t>(n));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<SecretRecord>> SecretRecords::Read(const std::string& name) const {
  COFFER_ASSIGN_OR_RETURN(auto bytes, db_->Get(schema::kSecrets, name));
  if (!bytes) return std::optional<SecretRecord>();
  SecretRecord record;
  if (!record.ParseFromString(*bytes)) {
    return Error(reason::kInternal, "stored secret record is unreadable", name);
  }
  return std::optional<SecretRecord>(std::move(record));
}

std::string SecretRecords::CurrentHint(const std::string& name) const {
  absl::MutexLock lock(&hints_mu_);
  auto it = current_hints_.find(name);
  return it == current_hints_.end() ? std::string() : it->second;
}

void SecretRecords::RememberCurrent(const SecretRecord& record) const {
  const VersionSummary* summary = StagingLabels::FindStage(record, "AWSCURRENT");
  std::string current = summary != nullptr ? summary->version_id() : std::string();
  if (!db_->shared()) return;
  absl::MutexLock lock(&hints_mu_);
  if (current.empty()) {
    current_hints_.erase(record.name());
    return;
  }
  if (current_hints_.size() >= kMaxCurrentHints && !current_hints_.contains(record.name())) {
    current_hints_.erase(current_hints_.begin());  // one out, whichever the table lists first
  }
  current_hints_[record.name()] = std::move(current);
}

absl::StatusOr<std::optional<SecretRecord>> SecretRecords::ReadWithValue(const std::string& name,
                                                                         ValueRead& value) const {
  std::string guess = value.version_id;
  if (guess.empty() && (value.version_stage.empty() || value.version_stage == "AWSCURRENT")) {
    guess = CurrentHint(name);
  }
  if (guess.empty()) {
    COFFER_ASSIGN_OR_RETURN(auto record, Read(name));
    return record;
  }
  const std::string version_key = schema::VersionKey(name, guess);
  COFFER_ASSIGN_OR_RETURN(
      auto got, db_->MultiGet({{schema::kSecrets, name}, {schema::kVersions, version_key}}));
  if (!got[0]) return std::optional<SecretRecord>();
  SecretRecord record;
  if (!record.ParseFromString(*got[0])) {
    return Error(reason::kInternal, "stored secret record is unreadable", name);
  }
  value.read = true;
  value.name = name;
  value.read_version_id = std::move(guess);
  value.bytes = std::move(got[1]);
  return std::optional<SecretRecord>(std::move(record));
}

absl::StatusOr<SecretRecord> SecretRecords::Resolve(absl::string_view field,
                                                    const std::string& secret_id,
                                                    ValueRead* value) const {
  COFFER_ASSIGN_OR_RETURN(SecretRef ref, ParseSecretId(options_.arns, field, secret_id));
  // Only where a round trip is worth saving: RocksDB reads are local.
  if (value != nullptr && !db_->shared()) value = nullptr;
  for (const auto& candidate : ref.candidates) {
    COFFER_ASSIGN_OR_RETURN(auto record, value != nullptr ? ReadWithValue(candidate.name, *value)
                                                          : Read(candidate.name));
    if (record && (candidate.required_arn.empty() || record->arn() == candidate.required_arn)) {
      return *std::move(record);
    }
  }
  return SecretNotFound(secret_id);
}

absl::Status SecretRecords::WithDeprecated(SecretRecord& record) const {
  COFFER_ASSIGN_OR_RETURN(auto bytes, db_->Get(schema::kDeprecatedVersions, record.name()));
  COFFER_ASSIGN_OR_RETURN(DeprecatedVersions deprecated, ParseDeprecated(bytes, record.name()));
  MergeDeprecated(record, std::move(deprecated));
  return absl::OkStatus();
}

std::string SecretRecords::KmsKeyOf(const SecretRecord& record) const {
  return record.kms_key_id().empty() ? options_.default_kms_key_id : record.kms_key_id();
}

absl::StatusOr<SealedVersion> SecretRecords::Seal(const SecretRecord& record,
                                                  const std::string& kms_key,
                                                  const std::string& version_id, bool is_binary,
                                                  absl::string_view value) const {
  COFFER_ASSIGN_OR_RETURN(Envelope::Sealed sealed,
                          envelope_->Seal(kms_key, KekContextOf(record.arn()),
                                          ContextOf(record.arn(), version_id), value));
  SealedVersion out;
  out.record.set_version_id(version_id);
  out.record.set_value_type(is_binary ? internal::store::v1::VALUE_TYPE_BINARY
                                      : internal::store::v1::VALUE_TYPE_STRING);
  out.record.set_ciphertext(std::move(sealed.ciphertext));
  out.record.set_wrapped_data_key(std::move(sealed.wrapped_data_key));
  out.record.set_kms_key_arn(sealed.kms_key_arn);
  out.summary.set_version_id(version_id);
  out.summary.set_kms_key_arn(sealed.kms_key_arn);
  out.summary.set_has_value(true);
  return out;
}

absl::StatusOr<std::optional<std::pair<std::string, VersionRecord>>> SecretRecords::ReadVersion(
    const SecretRecord& record, const std::string& version_id, const ValueRead* value) const {
  using Result = std::optional<std::pair<std::string, VersionRecord>>;
  std::optional<std::string> bytes;
  if (value != nullptr && value->read && value->name == record.name() &&
      value->read_version_id == version_id) {
    bytes = value->bytes;  // read in the same round trip (and revision) as the record
  } else {
    COFFER_ASSIGN_OR_RETURN(
        bytes, db_->Get(schema::kVersions, schema::VersionKey(record.name(), version_id)));
  }
  VersionRecord version;
  if (!bytes || !version.ParseFromString(*bytes)) return Result();
  return Result(std::make_pair(*std::move(bytes), std::move(version)));
}

absl::StatusOr<std::pair<std::string, std::string>> SecretRecords::Rewrap(
    const SecretRecord& record, const std::string& version_id, const std::string& wrapped_data_key,
    const std::string& new_key) const {
  return envelope_->Rewrap(KekContextOf(record.arn()), ContextOf(record.arn(), version_id),
                           wrapped_data_key, new_key);
}

absl::Status SecretRecords::ReplaceVersion(SecretRecord& r, storage::Transaction& txn,
                                           const std::string& expected_bytes,
                                           const VersionRecord& replacement) const {
  const std::string key = schema::VersionKey(r.name(), replacement.version_id());
  COFFER_ASSIGN_OR_RETURN(auto current, txn.GetForUpdate(schema::kVersions, key));
  if (!current || *current != expected_bytes) {
    return absl::AbortedError("a version changed while its key was being changed; retry");
  }
  txn.Put(schema::kVersions, key, replacement.SerializeAsString());
  for (auto& v : *r.mutable_versions()) {
    if (v.version_id() == replacement.version_id()) v.set_kms_key_arn(replacement.kms_key_arn());
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::SecureBuffer> SecretRecords::Open(const SecretRecord& record,
                                                         const std::string& version_id,
                                                         ValueType* type,
                                                         const ValueRead* value) const {
  COFFER_ASSIGN_OR_RETURN(auto version, ReadVersion(record, version_id, value));
  if (!version) {
    return ErrorWithCode(absl::StatusCode::kDataLoss, reason::kDecryptionFailure,
                         "the stored version of the secret is missing or unreadable",
                         record.name());
  }
  if (type != nullptr) *type = version->second.value_type();
  return envelope_->Open(KekContextOf(record.arn()), ContextOf(record.arn(), version_id),
                         version->second.wrapped_data_key(), version->second.ciphertext());
}

absl::StatusOr<bool> SecretRecords::SameValue(const SecretRecord& record,
                                              const std::string& version_id, bool is_binary,
                                              absl::string_view value) const {
  ValueType type;
  COFFER_ASSIGN_OR_RETURN(crypto::SecureBuffer stored, Open(record, version_id, &type));
  bool same_type = (type == internal::store::v1::VALUE_TYPE_BINARY) == is_binary;
  return same_type && crypto::ConstantTimeEquals(stored.view(), value);
}

absl::Status SecretRecords::Commit(const EventfulChange& fn) {
  return CommitWithEvent(db_, options_.changes, clock_, coffer::v1::RESOURCE_KIND_SECRET, fn);
}

absl::Mutex& SecretRecords::WriterLock(absl::string_view name) const {
  return writer_locks_[absl::HashOf(name) % kWriterStripes];
}

SecretRecords::WriterStripe& SecretRecords::StripeOf(absl::string_view name) const {
  return stripes_[absl::HashOf(name) % kWriterStripes];
}

absl::Status SecretRecords::Mutate(const SecretRecord& resolved, coffer::v1::ChangeKind kind,
                                   const RecordMutation& mutate, const std::string& version) {
  if (!MayBlock()) return WouldBlockError("a secret's write");
  QueuedChange me;
  me.resolved = &resolved;
  me.kind = kind;
  me.mutate = &mutate;
  me.version = &version;
  WriterStripe& stripe = StripeOf(resolved.name());
  std::vector<QueuedChange*> group;
  {
    absl::MutexLock lock(&stripe.mu);
    auto [it, first] = stripe.waiting.try_emplace(resolved.name());
    if (first) {
      group.push_back(&me);  // nobody holds the turn: take it
    } else {
      it->second.push_back(&me);
      stripe.mu.Await(absl::Condition(
          +[](QueuedChange* c) { return c->done || c->lead; }, &me));
      if (me.done) return me.result;  // committed by the holder of the turn
      // Handed the turn: commit what queued (this change first), at most
      // max_group_commit changes; the next in line takes the rest.
      size_t take = it->second.size();
      if (options_.max_group_commit > 0) take = std::min(take, options_.max_group_commit);
      group.assign(it->second.begin(), it->second.begin() + take);
      it->second.erase(it->second.begin(), it->second.begin() + take);
    }
  }
  {
    absl::MutexLock turn(&WriterLock(resolved.name()));
    CommitGroup(resolved.name(), group);
  }
  absl::MutexLock lock(&stripe.mu);
  for (QueuedChange* c : group) c->done = true;
  auto it = stripe.waiting.find(resolved.name());
  if (it->second.empty()) {
    stripe.waiting.erase(it);
  } else {
    it->second.front()->lead = true;  // the next in line commits what queued meanwhile
  }
  return me.result;
}

void SecretRecords::CommitGroup(const std::string& name, const std::vector<QueuedChange*>& group) {
  // What the transaction returns when no change of the group succeeded
  // (nothing to write; each change keeps its own error).
  static const absl::Status kNothingToWrite = absl::CancelledError("no change to write");
  // ... and when one change failed in a group: the transaction is dropped
  // and run again without it (no change pays for a copy of the record to
  // undo a failure that rarely happens).
  static const absl::Status kRunAgain = absl::CancelledError("run the group again");
  std::vector<bool> left_out(group.size(), false);
  absl::Status committed;
  while (true) {
    size_t failed = group.size();
    committed = CommitWithEvents(
        db_, options_.changes, clock_, coffer::v1::RESOURCE_KIND_SECRET, group.size(),
        [&](storage::Transaction& txn,
            std::vector<coffer::v1::ChangeEvent>* events) -> absl::Status {
          // The record and its deprecated versions: one round trip on etcd.
          COFFER_ASSIGN_OR_RETURN(
              auto read, txn.GetManyForUpdate(
                             {{schema::kSecrets, name}, {schema::kDeprecatedVersions, name}}));
          SecretRecord record;
          const bool present = read[0] && record.ParseFromString(*read[0]);
          COFFER_ASSIGN_OR_RETURN(DeprecatedVersions deprecated, ParseDeprecated(read[1], name));
          MergeDeprecated(record, std::move(deprecated));
          const ListIndexEntry before = IndexEntryOf(record);
          const std::string rotation_before = RotationIndexEntry(record);
          const size_t remaining = std::count(left_out.begin(), left_out.end(), false);
          bool any = false;
          for (size_t i = 0; i < group.size(); ++i) {
            if (left_out[i]) continue;
            QueuedChange* c = group[i];
            if (!present || record.arn() != c->resolved->arn()) {
              c->result = SecretNotFound(name);  // purged (and maybe re-created) meanwhile
              continue;
            }
            c->result = (*c->mutate)(record, txn);
            if (!c->result.ok()) {
              if (remaining == 1) return c->result;  // alone: nothing is written
              failed = i;
              return kRunAgain;
            }
            any = true;
            if (c->kind != coffer::v1::CHANGE_KIND_UNSPECIFIED) {
              coffer::v1::ChangeEvent& event = events->emplace_back();
              event.set_kind(c->kind);
              event.set_name(name);
              if (!c->version->empty()) event.set_version(*c->version);
            }
          }
          if (!any) return kNothingToWrite;
          WriteSplit(record, txn, read[1].value_or(""));
          const std::string rotation_after = RotationIndexEntry(record);
          if (rotation_after != rotation_before) {
            if (rotation_after.empty()) {
              txn.Delete(schema::kRotations, name);
            } else {
              txn.Put(schema::kRotations, name, rotation_after);
            }
          }
          ListIndexEntry after = IndexEntryOf(record);
          if (after.SerializeAsString() != before.SerializeAsString()) {
            txn.Put(schema::kByCreated, schema::CreatedKey(record.created_micros(), name),
                    after.SerializeAsString());
          }
          return absl::OkStatus();
        });
    if (committed != kRunAgain) break;
    left_out[failed] = true;  // keeps its error
  }
  if (committed.ok() || committed == kNothingToWrite) return;
  // The write failed (or the one change failed alone): no change of the
  // group happened.
  for (size_t i = 0; i < group.size(); ++i) {
    if (!left_out[i] && group[i]->result.ok()) group[i]->result = committed;
  }
}

absl::Status SecretRecords::Insert(const SecretRecord& record, const VersionRecord* version) {
  COFFER_RETURN_IF_ERROR(
      Commit([&](storage::Transaction& txn, coffer::v1::ChangeEvent* event) -> absl::Status {
        COFFER_ASSIGN_OR_RETURN(auto current, txn.GetForUpdate(schema::kSecrets, record.name()));
        if (current) return NameTaken(record.name());
        SecretRecord stored = record;
        WriteSplit(stored, txn, "");
        if (version != nullptr) {
          txn.Put(schema::kVersions, schema::VersionKey(record.name(), version->version_id()),
                  version->SerializeAsString());
          event->set_version(version->version_id());
        }
        txn.Put(schema::kByCreated, schema::CreatedKey(record.created_micros(), record.name()),
                IndexEntryOf(record).SerializeAsString());
        event->set_kind(coffer::v1::CHANGE_KIND_CREATED);
        event->set_name(record.name());
        return absl::OkStatus();
      }));
  count_.fetch_add(1);
  return absl::OkStatus();
}

absl::Status SecretRecords::AddVersion(SecretRecord& r, storage::Transaction& txn,
                                       const VersionRecord& value, const VersionSummary& summary,
                                       const std::vector<std::string>& stages,
                                       absl::Time now) const {
  COFFER_RETURN_IF_ERROR(StagingLabels::AddVersion(r, summary, stages));
  for (const std::string& removed :
       StagingLabels::RemoveDeprecated(r, now, options_.bounded_writes ? 4 : 0)) {
    txn.Delete(schema::kVersions, schema::VersionKey(r.name(), removed));
  }
  // Versions without labels stay 24 hours: without a quota, a client could
  // grow one secret (and the cost of reading it) without bound.
  if (r.versions_size() > options_.max_versions_per_secret) {
    return ErrorWithCode(absl::StatusCode::kResourceExhausted, reason::kLimitExceeded,
                         absl::StrCat("the secret has ", options_.max_versions_per_secret,
                                      " versions, the most it may keep; versions without a "
                                      "staging label are removed 24 hours after they were made"),
                         r.name());
  }
  txn.Put(schema::kVersions, schema::VersionKey(r.name(), summary.version_id()),
          value.SerializeAsString());
  return absl::OkStatus();
}

bool SecretRecords::NeedsTouch(const SecretRecord& record) const {
  absl::Time now = clock_->Now();
  absl::Time today = absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 86400 * 86400);
  return !record.has_last_accessed_date() || FromProto(record.last_accessed_date()) < today;
}

void SecretRecords::TouchAccessed(const SecretRecord& record, const std::string& version_id) {
  if (!NeedsTouch(record)) return;
  absl::Time today = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_->Now()) / 86400 * 86400);
  absl::Status s = Mutate(record, coffer::v1::CHANGE_KIND_UNSPECIFIED,
                          [&](SecretRecord& r, storage::Transaction&) {
                            *r.mutable_last_accessed_date() = ToProto(today);
                            for (auto& v : *r.mutable_versions()) {
                              if (v.version_id() == version_id) {
                                *v.mutable_last_accessed_date() = ToProto(today);
                              }
                            }
                            return absl::OkStatus();
                          });
  if (!s.ok()) log::Debug("store", "last accessed date not updated", {{"error", s.ToString()}});
}

void SecretRecords::ScheduleDeletion(SecretRecord& r, storage::Transaction& txn, absl::Time now,
                                     absl::Time deletion) const {
  *r.mutable_deleted_date() = ToProto(now);
  *r.mutable_deletion_date() = ToProto(deletion);
  txn.Put(schema::kByDeletion, schema::DeletionKey(deletion, r.name()), "");
}

void SecretRecords::CancelDeletion(SecretRecord& r, storage::Transaction& txn) const {
  if (r.has_deletion_date()) {
    txn.Delete(schema::kByDeletion, schema::DeletionKey(FromProto(r.deletion_date()), r.name()));
  }
  r.clear_deleted_date();
  r.clear_deletion_date();
}

// bounded_writes: versions a purge deletes in its own transaction.
constexpr size_t kVersionsPurgedInTxn = 100;

absl::Status SecretRecords::Purge(const SecretRecord& resolved, bool only_if_due) {
  if (!MayBlock()) return WouldBlockError("a secret's write");
  absl::MutexLock turn(&WriterLock(resolved.name()));
  std::vector<std::string> version_keys;
  storage::ScanOptions scan;
  scan.prefix = schema::VersionPrefix(resolved.name());
  COFFER_RETURN_IF_ERROR(
      db_->Scan(schema::kVersions, scan, [&](absl::string_view k, absl::string_view) {
        version_keys.emplace_back(k);
        return true;
      }));
  bool purged = false;
  std::vector<std::string> after_commit;  // version keys left for after it
  COFFER_RETURN_IF_ERROR(
      Commit([&](storage::Transaction& txn, coffer::v1::ChangeEvent* event) -> absl::Status {
        purged = false;
        after_commit.clear();
        COFFER_ASSIGN_OR_RETURN(auto bytes, txn.GetForUpdate(schema::kSecrets, resolved.name()));
        SecretRecord record;
        if (!bytes || !record.ParseFromString(*bytes) || record.arn() != resolved.arn()) {
          return absl::OkStatus();  // already gone
        }
        // The sweeper decided from a read outside this transaction: a secret
        // restored (or re-scheduled) since then must not be purged.
        if (only_if_due &&
            (!record.has_deletion_date() || FromProto(record.deletion_date()) > clock_->Now())) {
          return absl::OkStatus();
        }
        COFFER_ASSIGN_OR_RETURN(auto deprecated_bytes,
                                txn.GetForUpdate(schema::kDeprecatedVersions, record.name()));
        COFFER_ASSIGN_OR_RETURN(DeprecatedVersions deprecated,
                                ParseDeprecated(deprecated_bytes, record.name()));
        MergeDeprecated(record, std::move(deprecated));
        txn.Delete(schema::kSecrets, record.name());
        txn.Delete(schema::kDeprecatedVersions, record.name());
        // Versions committed between the scan above and this transaction's
        // read are in the record read here.
        std::set<std::string> versions(version_keys.begin(), version_keys.end());
        for (const auto& v : record.versions()) {
          versions.insert(schema::VersionKey(record.name(), v.version_id()));
        }
        for (const std::string& k : versions) {
          if (options_.bounded_writes && versions.size() > kVersionsPurgedInTxn &&
              after_commit.size() < versions.size() - kVersionsPurgedInTxn) {
            after_commit.push_back(k);
          } else {
            txn.Delete(schema::kVersions, k);
          }
        }
        txn.Delete(schema::kByCreated, schema::CreatedKey(record.created_micros(), record.name()));
        txn.Delete(schema::kRotations, record.name());
        if (record.has_deletion_date()) {
          txn.Delete(schema::kByDeletion,
                     schema::DeletionKey(FromProto(record.deletion_date()), record.name()));
        }
        event->set_kind(coffer::v1::CHANGE_KIND_DELETED);
        event->set_name(record.name());
        purged = true;
        return absl::OkStatus();
      }));
  if (!purged) return absl::OkStatus();
  count_.fetch_sub(1);
  // The record is gone, so these are unreachable; a crash here leaves them
  // to the next purge of the name (it deletes every key under the name).
  for (size_t i = 0; i < after_commit.size(); i += kVersionsPurgedInTxn) {
    storage::WriteBatch batch;
    for (size_t j = i; j < std::min(after_commit.size(), i + kVersionsPurgedInTxn); ++j) {
      batch.Delete(schema::kVersions, after_commit[j]);
    }
    COFFER_RETURN_IF_ERROR(db_->Write(batch));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SecretRecords::PurgeExpired() {
  absl::Time now = clock_->Now();
  std::vector<std::string> keys;
  storage::ScanOptions scan;
  scan.end_before = schema::DeletionKey(now + absl::Microseconds(1), "");
  scan.limit = 1000;
  COFFER_RETURN_IF_ERROR(
      db_->Scan(schema::kByDeletion, scan, [&](absl::string_view k, absl::string_view) {
        keys.emplace_back(k);
        return true;
      }));
  int purged = 0;
  for (const std::string& key : keys) {
    std::string name = key.substr(schema::kTimeBytes);
    COFFER_ASSIGN_OR_RETURN(auto record, Read(name));
    if (!record || !record->has_deletion_date() ||
        schema::DeletionKey(FromProto(record->deletion_date()), name) != key) {
      // A leftover entry (restored or re-scheduled secret): drop it so it
      // never crowds out due ones.
      COFFER_RETURN_IF_ERROR(db_->Delete(schema::kByDeletion, key));
      continue;
    }
    COFFER_RETURN_IF_ERROR(Purge(*record, /*only_if_due=*/true));
    ++purged;
  }
  return purged;
}

}  // namespace coffer::store
