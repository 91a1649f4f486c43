// secret_records.h: how the secrets API reads and changes what it stores —
// the record access and the one commit path under SecretStore (the secrets
// API) and SecretRotation (rotation configuration and leases).
//
// One SecretRecord per name (metadata, tags, the summaries of the versions
// with staging labels, rotation state), the summaries of its deprecated
// versions (no labels) beside it, and one VersionRecord per version (the
// value, sealed by Envelope under its own data key), plus the by_created,
// by_deletion and rotations indexes (services/store/schema.h).
//
// Reads (Read, Resolve) see the labelled versions only, so reading a secret
// costs the same however many deprecated versions it keeps; WithDeprecated
// adds the rest where a caller needs every version. Mutate's and Insert's
// records always hold every version, oldest first, and are split again when
// written. Every change goes through Commit: one optimistic transaction,
// committed as one synced atomic write together with its change event, so a
// crash leaves the old or the new state, never a mix. Mutate re-reads the
// record inside the transaction, runs the caller's change on it, writes it
// back and keeps every index in step. Writers of one secret do not conflict
// and retry: they queue, and whoever holds the secret's turn applies every
// change queued meanwhile, one after the other, in one transaction and one
// synced write (a group commit; when one change fails, the group is run
// again without it). KMS calls (sealing) happen before the
// transaction, never inside.
//
//   SecretRecords records(db.get(), &envelope, options);
//   COFFER_RETURN_IF_ERROR(records.Load());
//   COFFER_ASSIGN_OR_RETURN(SecretRecord r, records.Resolve("secret_id", "prod/db"));
//   COFFER_RETURN_IF_ERROR(records.Mutate(r, coffer::v1::CHANGE_KIND_METADATA_UPDATED,
//       [&](SecretRecord& fresh, storage::Transaction&) {
//         fresh.set_description("rotated by hand");
//         return absl::OkStatus();
//       }));
//   records.PurgeExpired();   // the deletion sweeper, periodically
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coffer/internal/store/v1/store.pb.h"
#include "coffer/v1/change_event.pb.h"
#include "libs/common/clock.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/storage/database.h"
#include "services/store/changes/change_log.h"
#include "services/store/envelope/envelope.h"
#include "services/store/secrets/secret_names.h"

namespace coffer::store {

struct SecretStoreOptions {
  ArnConfig arns;
  // The KMS key of secrets created without kms_key_id (created by the KMS on
  // first use).
  std::string default_kms_key_id = "alias/coffer/secretsmanager";
  // Index entries one ListSecrets/BatchGetSecretValue page may examine.
  size_t list_scan_budget = 5000;
  // Versions one secret may hold at once (LimitExceededException beyond):
  // those without a label are dropped only after 24 hours.
  int max_versions_per_secret = 200;
  // SPIFFE ID globs of rotation workers: they act only on the secret they
  // rotate (secret_access.h).
  std::vector<std::string> worker_principals = {"spiffe://coffer.local/worker/*"};
  Clock* clock = nullptr;  // default RealClock()
  // Where every change is also recorded, in the same write (optional).
  ChangeLog* changes = nullptr;
  // Most changes of one secret committed in one write (0: all that queued).
  // etcd takes at most 128 operations per Txn: a change writes about 6.
  size_t max_group_commit = 0;
  // Keep each write inside etcd's 128 operations: a change removes at most
  // 4 deprecated versions (later changes remove the rest), and a purge
  // deletes at most 100 versions in its transaction and the rest right
  // after it (they are unreachable once the record is gone).
  bool bounded_writes = false;
};

using SecretRecord = ::coffer::internal::store::v1::SecretRecord;
using VersionRecord = ::coffer::internal::store::v1::VersionRecord;
using VersionSummary = ::coffer::internal::store::v1::VersionSummary;

// A change to the freshly read record inside a transaction.
using RecordMutation = std::function<absl::Status(SecretRecord&, storage::Transaction&)>;

// A read of a secret's value: its record and, in the same round trip, the
// version the caller will most likely open (SecretRecords::Resolve). On a
// shared engine (etcd) a read of a record and then of its version is two
// round trips; read together, one. The version is the one asked for by id,
// or AWSCURRENT's as this process last saw it (a hint: when it moved on,
// Open reads the right version after all).
struct ValueRead {
  // In: what the caller asks for: a version id, or a staging label ("" is
  // AWSCURRENT). Only a version id or AWSCURRENT is read ahead.
  std::string version_id;
  std::string version_stage;
  // Out: the version read with the record (`read` false when none was).
  bool read = false;
  std::string name;
  std::string read_version_id;
  std::optional<std::string> bytes;  // nullopt: no such version then
};

// A version sealed for storage, before its commit.
struct SealedVersion {
  VersionRecord record;    // stored under schema::VersionKey
  VersionSummary summary;  // id, key ARN, has_value; the caller dates it and adds labels
};

// Scheduled for deletion (inside its recovery window).
inline bool IsDeleted(const SecretRecord& r) { return r.has_deletion_date(); }

// ResourceNotFoundException for `secret_id`.
absl::Status SecretNotFound(absl::string_view secret_id);
// InvalidRequestException: the secret is scheduled for deletion.
absl::Status MarkedForDeletion(absl::string_view name);
// ResourceExistsException: a version id may be written once.
absl::Status VersionExists(absl::string_view name);

// The request's client_request_token, validated, or a new UUID when the
// caller gave none (`field` names it in errors).
absl::StatusOr<std::string> RequestToken(absl::string_view field, const std::string& token);

// The "rotations" index entry of a record ("" = not indexed): what a rotator
// needs to schedule it.
std::string RotationIndexEntry(const SecretRecord& record);

class SecretRecords {
 public:
  // Neither pointer is owned; both must outlive this object.
  SecretRecords(storage::Database* db, Envelope* envelope, SecretStoreOptions options);
  ~SecretRecords();

  // Counts the stored secrets (for the gauge).
  absl::Status Load();
  // Secrets stored, including those scheduled for deletion: as counted by
  // Load and kept since by this process's own changes.
  int64_t secret_count() const { return count_.load(); }
  // On a shared engine, counts again what every replica stored (a count of
  // keys in etcd, not a read of them); nothing to do on RocksDB.
  absl::Status Recount();

  const SecretStoreOptions& options() const { return options_; }
  Clock* clock() const { return clock_; }
  storage::Database* db() const { return db_; }

  // The record stored under exactly `name`, if any (labelled versions only).
  absl::StatusOr<std::optional<SecretRecord>> Read(const std::string& name) const;
  // The record a secret id (name, full ARN or partial ARN) refers to;
  // ResourceNotFoundException otherwise. `field` names the id in errors.
  // Labelled versions only.
  // With `value`, reads the version `value` asks for with the record
  // (on a shared engine; see ValueRead) for Open to use. The guess is the
  // AWSCURRENT of the last record given to RememberCurrent: callers give it
  // records the caller was allowed to read, so that others cannot churn it.
  absl::StatusOr<SecretRecord> Resolve(absl::string_view field, const std::string& secret_id,
                                       ValueRead* value = nullptr) const;
  // Remembers which version of `record` is AWSCURRENT, for ValueRead's
  // guess (shared engines; at most kMaxCurrentHints secrets).
  void RememberCurrent(const SecretRecord& record) const;
  // Adds the deprecated versions of a record read by Read or Resolve, so
  // that it holds every version, oldest first.
  absl::Status WithDeprecated(SecretRecord& record) const;

  // The KMS key of a secret (its own or the default).
  std::string KmsKeyOf(const SecretRecord& record) const;

  // Seals `value` under `kms_key` as version `version_id` of `record`
  // (calls the KMS; no transaction is open).
  absl::StatusOr<SealedVersion> Seal(const SecretRecord& record, const std::string& kms_key,
                                     const std::string& version_id, bool is_binary,
                                     absl::string_view value) const;
  // The stored VersionRecord of a version (nullopt when absent), with the
  // bytes it was read from; the one `value` read with the record when it is
  // this one.
  absl::StatusOr<std::optional<std::pair<std::string, VersionRecord>>> ReadVersion(
      const SecretRecord& record, const std::string& version_id,
      const ValueRead* value = nullptr) const;
  // The data key of a stored version, re-wrapped under `new_key` by the KMS
  // (ReEncrypt): (wrapped key, key ARN). The value itself does not change.
  absl::StatusOr<std::pair<std::string, std::string>> Rewrap(const SecretRecord& record,
                                                             const std::string& version_id,
                                                             const std::string& wrapped_data_key,
                                                             const std::string& new_key) const;
  // Inside a transaction: replaces a stored version that still holds
  // `expected_bytes` with `replacement` (ABORTED when it changed meanwhile)
  // and updates its summary's key ARN.
  absl::Status ReplaceVersion(SecretRecord& r, storage::Transaction& txn,
                              const std::string& expected_bytes,
                              const VersionRecord& replacement) const;
  // The plaintext of a stored version; `type` receives its value type.
  // Uses the version `value` read with the record when it is this one.
  absl::StatusOr<crypto::SecureBuffer> Open(const SecretRecord& record,
                                            const std::string& version_id,
                                            internal::store::v1::ValueType* type,
                                            const ValueRead* value = nullptr) const;
  // True when the stored version holds exactly this value.
  absl::StatusOr<bool> SameValue(const SecretRecord& record, const std::string& version_id,
                                 bool is_binary, absl::string_view value) const;

  // A transaction whose change event (filled by `fn`; none when its kind
  // stays CHANGE_KIND_UNSPECIFIED) goes to the change log in the same write.
  absl::Status Commit(const EventfulChange& fn);
  // Runs `mutate` on the freshly read record of `resolved` in a transaction
  // and writes the record and its index entries back, with a change event of
  // `kind` (none for CHANGE_KIND_UNSPECIFIED) naming `version` if not empty.
  // NOT_FOUND when the secret was purged (or re-created) meanwhile.
  absl::Status Mutate(const SecretRecord& resolved, coffer::v1::ChangeKind kind,
                      const RecordMutation& mutate, const std::string& version = "");
  // Stores a new secret (and its first version, if any): ResourceExists
  // when the name was taken meanwhile.
  absl::Status Insert(const SecretRecord& record, const VersionRecord* version);

  // Inside a transaction: adds `summary` to `r` with `stages`, drops the
  // deprecated versions beyond the limit and writes `value`.
  absl::Status AddVersion(SecretRecord& r, storage::Transaction& txn, const VersionRecord& value,
                          const VersionSummary& summary, const std::vector<std::string>& stages,
                          absl::Time now) const;

  // Records a read of `version_id` (day granularity, as AWS: at most one
  // write per secret and day). Failures are only logged.
  void TouchAccessed(const SecretRecord& record, const std::string& version_id);
  // True when a read of `record` now would write its last-accessed date.
  bool NeedsTouch(const SecretRecord& record) const;

  // Schedules `r` for deletion at `deletion` (in a Mutate), or cancels it.
  void ScheduleDeletion(SecretRecord& r, storage::Transaction& txn, absl::Time now,
                        absl::Time deletion) const;
  void CancelDeletion(SecretRecord& r, storage::Transaction& txn) const;

  // Deletes the secret, its versions and index entries in one write. With
  // `only_if_due`, only if its deletion date (re-read in the transaction)
  // has passed.
  absl::Status Purge(const SecretRecord& record, bool only_if_due = false);
  // Purges secrets whose deletion date has passed, with all their versions.
  // Returns how many were purged.
  absl::StatusOr<int> PurgeExpired();

 private:
  struct QueuedChange;
  struct WriterStripe;
  // The lock a secret's group commits and purges hold (striped by name).
  absl::Mutex& WriterLock(absl::string_view name) const;
  WriterStripe& StripeOf(absl::string_view name) const;
  // Applies `group` (changes of one secret, in queue order) in one commit
  // and sets each one's result.
  void CommitGroup(const std::string& name, const std::vector<QueuedChange*>& group);
  // Read with the version `value` asks for, or AWSCURRENT's last seen.
  absl::StatusOr<std::optional<SecretRecord>> ReadWithValue(const std::string& name,
                                                            ValueRead& value) const;
  // AWSCURRENT's version id of `name` as last read here ("" : unknown).
  std::string CurrentHint(const std::string& name) const;

  storage::Database* db_;
  Envelope* envelope_;
  SecretStoreOptions options_;
  Clock* clock_;
  std::atomic<int64_t> count_{0};
  static constexpr size_t kWriterStripes = 256;
  mutable std::array<absl::Mutex, kWriterStripes> writer_locks_;
  std::unique_ptr<WriterStripe[]> stripes_;
  // Name -> AWSCURRENT's version id, for ValueRead on shared engines. At
  // most kMaxCurrentHints names (one out for each new one when full).
  static constexpr size_t kMaxCurrentHints = 16384;
  mutable absl::Mutex hints_mu_;
  mutable absl::flat_hash_map<std::string, std::string> current_hints_ ABSL_GUARDED_BY(hints_mu_);
};

}  // namespace coffer::store
