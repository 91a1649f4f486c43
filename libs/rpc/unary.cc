#include "libs/rpc/unary.h"

#include <cstring>

#include "libs/common/log.h"

namespace coffer::rpc {

void LogServerFailure(absl::string_view method, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
      log::Error("rpc", "request failed",
                 {{"method", std::string(method)}, {"error", status.ToString()}});
      break;
    default:
      break;
  }
}

void WipeString(const std::string& s) {
  // volatile stores so the compiler keeps them although the string dies next.
  volatile char* p = const_cast<volatile char*>(s.data());
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
}

}  // namespace coffer::rpc
