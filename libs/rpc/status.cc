#include "libs/rpc/status.h"

#include <string>

#include "coffer/v1/error.pb.h"
#include "google/rpc/status.pb.h"
#include "libs/common/errors.h"
#include "libs/common/utf8.h"

namespace coffer::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  const auto code = static_cast<grpc::StatusCode>(static_cast<int>(status.code()));
  // The rich status is a proto: its strings must be UTF-8 (the reason
  // would be lost otherwise). The message header itself could carry any byte.
  std::string message = ValidUtf8(status.message());

  google::rpc::Status rich;
  rich.set_code(static_cast<int>(status.code()));
  rich.set_message(message);
  if (std::optional<ErrorDetail> detail = GetErrorDetail(status)) {
    coffer::v1::ErrorInfo info;
    info.set_reason(detail->reason);
    info.set_resource(detail->resource);
    info.set_field(detail->field);
    google::protobuf::Any* any = rich.add_details();
    any->set_type_url(kErrorInfoTypeUrl);
    any->set_value(info.SerializeAsString());
  }
  return grpc::Status(code, std::move(message), rich.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int raw = static_cast<int>(status.error_code());
  absl::StatusCode code = (raw > 0 && raw <= static_cast<int>(absl::StatusCode::kUnauthenticated))
                              ? static_cast<absl::StatusCode>(raw)
                              : absl::StatusCode::kUnknown;
  absl::Status result(code, status.error_message());
  if (status.error_details().empty()) return result;
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return result;
  for (const google::protobuf::Any& any : rich.details()) {
    if (any.type_url() != kErrorInfoTypeUrl) continue;
    coffer::v1::ErrorInfo info;
    if (!info.ParseFromString(any.value())) continue;
    SetErrorDetail(result, ErrorDetail{info.reason(), info.resource(), info.field()});
    break;
  }
  return result;
}

}  // namespace coffer::rpc
