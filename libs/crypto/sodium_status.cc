#include "libs/crypto/sodium_status.h"

#include <string>

#include "libs/common/status_macros.h"

namespace coffer::crypto::internal {

absl::Status SodiumStatus(int rc, absl::StatusCode code, absl::string_view message) {
  if (rc == 0) return absl::OkStatus();
  return absl::Status(code, message);
}

void CheckSodium(int rc, const char* what) {
  absl::Status status = SodiumStatus(rc, absl::StatusCode::kInternal, what);
  COFFER_CHECK(status.ok(), what);
}

const unsigned char* BytesOf(absl::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace coffer::crypto::internal
