#include "libs/rpc/client_call.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/errors.h"
#include "libs/rpc/status.h"

namespace coffer::rpc {

void ApplyCallOptions(const CallOptions& options, grpc::ClientContext& context) {
  if (options.timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  }
  if (options.prepare) options.prepare(context);
}

absl::Status ClientStatus(const grpc::Status& status, absl::string_view peer) {
  if (status.ok()) return absl::OkStatus();
  absl::Status converted = FromGrpcStatus(status);
  const bool transport = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  if (!transport || !ErrorReason(converted).empty()) return converted;
  return ErrorWithCode(absl::StatusCode::kUnavailable, reason::kUnavailable,
                       absl::StrCat(peer, " unavailable: ", status.error_message()));
}

}  // namespace coffer::rpc
