// param_store.h: the parameters API's logic (AWS SSM Parameter Store's
// operations), without gRPC: writes in param_store.cc, reads in
// param_store_read.cc.
//
// ParamStore keeps parameters in the store's RocksDB: one ParameterRecord
// per name (metadata of up to 100 versions, labels, tags, policies), one
// ParameterValue per version (plain for String/StringList; for SecureString
// encrypted by Envelope with context {PARAMETER_ARN}), a children index
// for one-level path queries, and a policy index the scanner walks. Every
// change is one synced atomic transaction that also appends its change
// event to the ChangeLog (when one is configured).
//
//   ParamStore params(db.get(), &envelope, options);
//   params::v1::PutParameterRequest put;
//   put.set_name("/prod/db/url");
//   put.set_value("postgres://db:5432/app");
//   put.set_type(params::v1::PARAMETER_TYPE_STRING);
//   COFFER_ASSIGN_OR_RETURN(auto out, params.PutParameter(put));
//   params.RunPolicies();   // the policy scanner, periodically
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coffer/internal/store/v1/store.pb.h"
#include "coffer/params/v1/params.pb.h"
#include "libs/authz/authorizer.h"
#include "libs/common/clock.h"
#include "libs/storage/database.h"
#include "services/store/changes/change_log.h"
#include "services/store/envelope/envelope.h"
#include "services/store/params/param_rules.h"
#include "services/store/secrets/secret_names.h"

namespace coffer::store {

struct ParamStoreOptions {
  ArnConfig arns;
  // The KMS key of SecureString parameters without key_id.
  std::string default_kms_key_id = "alias/coffer/ssm";
  // Index entries one GetParametersByPath/DescribeParameters page may examine.
  size_t scan_budget = 2000;
  Clock* clock = nullptr;        // default RealClock()
  ChangeLog* changes = nullptr;  // optional
};

struct PolicyRunResult {
  int expired = 0;
  int notifications = 0;
};

class ParamStore {
 public:
  ParamStore(storage::Database* db, Envelope* envelope, ParamStoreOptions options);

  absl::StatusOr<params::v1::PutParameterResponse> PutParameter(
      const params::v1::PutParameterRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::GetParameterResponse> GetParameter(
      const params::v1::GetParameterRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::GetParametersResponse> GetParameters(
      const params::v1::GetParametersRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::GetParametersByPathResponse> GetParametersByPath(
      const params::v1::GetParametersByPathRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::DescribeParametersResponse> DescribeParameters(
      const params::v1::DescribeParametersRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::GetParameterHistoryResponse> GetParameterHistory(
      const params::v1::GetParameterHistoryRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::DeleteParameterResponse> DeleteParameter(
      const params::v1::DeleteParameterRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::DeleteParametersResponse> DeleteParameters(
      const params::v1::DeleteParametersRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::LabelParameterVersionResponse> LabelParameterVersion(
      const params::v1::LabelParameterVersionRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::UnlabelParameterVersionResponse> UnlabelParameterVersion(
      const params::v1::UnlabelParameterVersionRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::AddTagsToResourceResponse> AddTagsToResource(
      const params::v1::AddTagsToResourceRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::RemoveTagsFromResourceResponse> RemoveTagsFromResource(
      const params::v1::RemoveTagsFromResourceRequest& request,
      const authz::Access& access = authz::Access::Trusted());
  absl::StatusOr<params::v1::ListTagsForResourceResponse> ListTagsForResource(
      const params::v1::ListTagsForResourceRequest& request,
      const authz::Access& access = authz::Access::Trusted());

  // Enforces due policies: Expiration deletes the parameter;
  // ExpirationNotification and NoChangeNotification emit an event (and a
  // log line) once per due time.
  absl::StatusOr<PolicyRunResult> RunPolicies();

  // Validates a WatchParameters request and returns the event filter.
  static absl::StatusOr<std::function<bool(const coffer::v1::ChangeEvent&)>> WatchFilter(
      const params::v1::WatchParametersRequest& request,
      const authz::Access& access = authz::Access::Trusted());

  std::string ParameterArn(absl::string_view name) const;
  // OK when the caller may do `action` on parameter `name` (by name or
  // ARN); PERMISSION_DENIED otherwise.
  absl::Status Authorize(const authz::Access& access, absl::string_view action,
                         const std::string& name) const;
  bool Allows(const authz::Access& access, absl::string_view action, const std::string& name) const;

 private:
  // What PutParameter decided from the record it read (and the value it
  // sealed), before its commit.
  struct PutPlan {
    std::optional<ParameterRecord> existing;
    params::v1::ParameterType type;
    params::v1::ParameterTier tier;
    std::string pattern;
    std::string key_id;
    std::string arn;
    internal::store::v1::ParameterValue value;
  };
  absl::StatusOr<PutPlan> PlanPut(const params::v1::PutParameterRequest& request,
                                  const std::vector<ParameterPolicy>& policies);
  // PutParameter's transaction: the new version's number; `raced` when the
  // record changed since PlanPut read it.
  absl::StatusOr<int64_t> CommitPut(const params::v1::PutParameterRequest& request,
                                    const PutPlan& plan, absl::Time now, bool* raced);
  // In one Commit: reads the record of `name` for update (`missing` when
  // there is none), runs `change` on it and writes it back.
  absl::Status Update(
      const std::string& name, const absl::Status& missing,
      const std::function<absl::Status(ParameterRecord&, coffer::v1::ChangeEvent*)>& change);
  // A SecureString's encryption context.
  static EncryptionContext ParameterContext(const std::string& arn) {
    return {{"PARAMETER_ARN", arn}};
  }
  absl::StatusOr<std::optional<ParameterRecord>> Read(const std::string& name) const;
  absl::StatusOr<ParameterRecord> ReadExisting(const std::string& name) const;
  absl::StatusOr<params::v1::Parameter> Materialize(const ParameterRecord& record,
                                                    const ParameterVersionInfo& version,
                                                    bool with_decryption,
                                                    const std::string& selector) const;
  // Runs `fn` in a transaction; when it sets event->kind, the event is
  // appended to the change log in the same write.
  absl::Status Commit(const EventfulChange& fn);
  void DeleteIn(storage::Transaction& txn, const ParameterRecord& record);
  void IndexPolicies(storage::Transaction& txn, const ParameterRecord& record, bool add);
  absl::StatusOr<params::v1::DeleteParameterResponse> DeleteByName(const std::string& name,
                                                                   coffer::v1::ChangeKind kind);

  storage::Database* db_;
  Envelope* envelope_;
  ParamStoreOptions options_;
  Clock* clock_;
};

}  // namespace coffer::store
