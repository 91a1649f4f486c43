#include "services/rotator/rotator_config.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace coffer::rotator {
namespace {

absl::Status ValidateName(absl::string_view name) {
  if (name.empty() || name.size() > 256) {
    return absl::InvalidArgumentError("worker name must be 1-256 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker name \"", name, "\" may contain only letters, digits and _.-"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RotatorConfig> ParseRotatorConfigJson(absl::string_view json) {
  RotatorConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &config, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rotator config is not valid JSON for RotatorConfig: ",
                     std::string(status.message().data(), status.message().size())));
  }
  return config;
}

absl::StatusOr<RotatorConfig> LoadRotatorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--config: cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto config = ParseRotatorConfigJson(buffer.str());
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

absl::StatusOr<WorkerEndpoint> ParseWorkerFlag(absl::string_view flag) {
  std::vector<std::string> parts = absl::StrSplit(flag, absl::MaxSplits('=', 2));
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--worker \"", flag, "\" must be name=address=spiffe_id"));
  }
  WorkerEndpoint endpoint;
  endpoint.set_name(parts[0]);
  endpoint.set_address(parts[1]);
  endpoint.set_spiffe_id(parts[2]);
  return endpoint;
}

absl::StatusOr<WorkerRegistry> WorkerRegistry::FromConfig(const RotatorConfig& config) {
  WorkerRegistry registry;
  for (const auto& worker : config.workers()) {
    if (auto s = ValidateName(worker.name()); !s.ok()) return s;
    if (worker.address().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker ", worker.name(), ": address is required"));
    }
    if (!absl::StartsWith(worker.spiffe_id(), "spiffe://") ||
        worker.spiffe_id().size() <= std::string("spiffe://").size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "worker ", worker.name(), ": spiffe_id must be spiffe://<trust-domain>/<path>"));
    }
    if (!registry.workers_.emplace(worker.name(), worker).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker ", worker.name(), " is registered more than once"));
    }
  }
  return registry;
}

const WorkerEndpoint* WorkerRegistry::Find(const std::string& name) const {
  auto it = workers_.find(name);
  return it == workers_.end() ? nullptr : &it->second;
}

std::vector<std::string> WorkerRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : workers_) out.push_back(name);
  return out;
}

}  // namespace coffer::rotator
