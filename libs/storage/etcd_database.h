// etcd_database.h: storage::Database on etcd (libs/etcd), so that several
// replicas of a service share one store: every acknowledged change is
// committed in etcd.
//
// Layout: a family's keys live under "<key_prefix><family>/", so a read is
// one Range and a write one Txn. RunTransaction is optimistic: each key read
// through GetForUpdate is remembered with its mod_revision (0: absent) and
// the commit is one Txn whose compares require those revisions unchanged; a
// failed compare is a conflict, and the function runs again.
//
//   EtcdDatabaseOptions options;
//   options.key_prefix = "coffer/kms/";
//   options.column_families = {"keys", "material", "aliases"};
//   COFFER_ASSIGN_OR_RETURN(auto db, EtcdDatabase::Open(options, client));
//
// etcd's limits apply: 128 operations per Txn (more: RESOURCE_EXHAUSTED,
// nothing written) and 1.5 MiB per request (the client refuses larger
// ones). A write etcd may or may not have applied (its connection broke)
// is UNAVAILABLE saying so; callers re-read before retrying.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "libs/etcd/etcd_client.h"
#include "libs/storage/database.h"

namespace coffer::storage {

struct EtcdDatabaseOptions {
  // Prepended to every key ("coffer/store/").
  std::string key_prefix;
  std::vector<std::string> column_families;
  // Operations per Txn (etcd's --max-txn-ops, 128 by default).
  size_t max_txn_ops = 128;
  // Keys read per Range while scanning.
  int64_t scan_page = 1000;
};

class EtcdDatabase final : public Database {
 public:
  // `client` is shared (several databases may use one client).
  static absl::StatusOr<std::unique_ptr<EtcdDatabase>> Open(
      const EtcdDatabaseOptions& options, std::shared_ptr<etcd::EtcdClient> client);

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view column_family,
                                                 absl::string_view key) const override;
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::Span<const KeyRef> keys) const override;
  absl::Status Write(const WriteBatch& batch) override;
  absl::Status RunTransaction(const std::function<absl::Status(Transaction&)>& fn,
                              int max_attempts = 10) override;
  absl::Status Scan(
      absl::string_view column_family, const ScanOptions& options,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn) const override;
  uint64_t EstimateKeys(absl::string_view column_family) const override;
  absl::StatusOr<uint64_t> CountKeys(absl::string_view column_family) const override;
  absl::Status Flush() override { return absl::OkStatus(); }
  bool shared() const override { return true; }
  absl::StatusOr<std::unique_ptr<FamilyWatch>> WatchFamily(
      absl::string_view column_family,
      std::function<void(absl::string_view key)> on_change) override;

  etcd::EtcdClient& client() const { return *client_; }

  // The etcd key of `key` in `column_family`; INVALID_ARGUMENT naming an
  // unknown family.
  absl::StatusOr<std::string> EtcdKey(absl::string_view column_family, absl::string_view key) const;
  // The etcd revision of the last RunTransaction this thread committed.
  static int64_t LastCommitRevision();
  // "<key_prefix><family>/", the start of every etcd key of the family.
  absl::StatusOr<std::string> FamilyPrefix(absl::string_view column_family) const;

 private:
  EtcdDatabase(EtcdDatabaseOptions options, std::shared_ptr<etcd::EtcdClient> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  EtcdDatabaseOptions options_;
  std::shared_ptr<etcd::EtcdClient> client_;
};

}  // namespace coffer::storage
