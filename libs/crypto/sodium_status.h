// sodium_status.h: the one place where libsodium return codes become
// absl::Status (internal to libs/crypto; not for other libraries).
//
//   int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(...);
//   COFFER_RETURN_IF_ERROR(
//       SodiumStatus(rc, absl::StatusCode::kDataLoss, "ciphertext could not be decrypted"));
//
//   CheckSodium(sodium_mprotect_readonly(p), "sodium_mprotect_readonly");  // crashes on failure
//
// libsodium functions return 0 on success and -1 on failure (sodium_init
// also returns 1 when already initialized, which callers handle themselves).
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coffer::crypto::internal {

// OK when `rc` is 0, otherwise a status with `code` and exactly `message`
// (callers choose a message that leaks nothing, e.g. for decryption).
absl::Status SodiumStatus(int rc, absl::StatusCode code, absl::string_view message);

// For calls that cannot fail with valid arguments: crashes when `rc` is not 0.
void CheckSodium(int rc, const char* what);

// A non-null pointer for `s`, even when it is empty (libsodium and memcpy
// want valid pointers even for zero lengths).
const unsigned char* BytesOf(absl::string_view s);

}  // namespace coffer::crypto::internal
