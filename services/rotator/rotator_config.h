// rotator_config.h: coffer-rotator's worker registry (rotation.md: "Workers
// are registered in the rotator's configuration: name -> gRPC address and
// expected TLS identity").
//
// The configuration is a proto (coffer.rotation.v1.RotatorConfig) read from
// JSON with --config, and/or built from repeatable
// --worker=name=address=spiffe_id flags; both end up here:
//
//   COFFER_ASSIGN_OR_RETURN(auto config, coffer::rotator::LoadRotatorConfig("rotator.json"));
//   COFFER_ASSIGN_OR_RETURN(auto extra, coffer::rotator::ParseWorkerFlag(
//       "postgres-single-user=localhost:7711=spiffe://coffer.local/worker/postgres"));
//   *config.add_workers() = extra;
//   COFFER_ASSIGN_OR_RETURN(auto registry, coffer::rotator::WorkerRegistry::FromConfig(config));
//   const auto* worker = registry.Find("postgres-single-user");   // nullptr: unknown
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coffer/rotation/v1/rotator_config.pb.h"

namespace coffer::rotator {

using rotation::v1::RotatorConfig;
using rotation::v1::WorkerEndpoint;

// Parses the proto3 JSON form of RotatorConfig (unknown fields are errors).
// INVALID_ARGUMENT naming the problem.
absl::StatusOr<RotatorConfig> ParseRotatorConfigJson(absl::string_view json);
// Reads and parses a JSON file; INVALID_ARGUMENT naming the path on failure.
absl::StatusOr<RotatorConfig> LoadRotatorConfig(const std::string& path);
// "name=address=spiffe_id" (the spiffe ID itself contains no '=').
absl::StatusOr<WorkerEndpoint> ParseWorkerFlag(absl::string_view flag);

// The validated, immutable name -> endpoint map.
class WorkerRegistry {
 public:
  WorkerRegistry() = default;
  // INVALID_ARGUMENT for an invalid name (1-256 of [A-Za-z0-9._-], as the
  // store accepts for rotation_worker), a missing address, a spiffe_id that
  // is not spiffe://..., or a name registered twice.
  static absl::StatusOr<WorkerRegistry> FromConfig(const RotatorConfig& config);

  // The endpoint registered under `name`, or nullptr.
  const WorkerEndpoint* Find(const std::string& name) const;
  size_t size() const { return workers_.size(); }
  std::vector<std::string> names() const;

 private:
  std::map<std::string, WorkerEndpoint> workers_;
};

}  // namespace coffer::rotator
