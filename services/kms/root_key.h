// root_key.h: where coffer-kms gets the root key that seals key material.
//
// The root key never touches the keystore: it comes from a RootKeySource.
// Today there are two: a file of 32 random bytes that must not be readable
// by group or others, and a development source that creates such a file in
// the data directory on first start. Shamir unseal shares or a PKCS#11 HSM
// would be further implementations of the same interface.
//
//   auto source = coffer::kms::FileRootKeySource("/etc/coffer/root.key");
//   COFFER_ASSIGN_OR_RETURN(coffer::crypto::SecureBuffer root, source->Load());
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::kms {

inline constexpr size_t kRootKeyBytes = 32;

class RootKeySource {
 public:
  virtual ~RootKeySource() = default;
  // The root key in guarded memory. FAILED_PRECONDITION when the source is
  // unusable (missing file, wrong size, permissive mode).
  virtual absl::StatusOr<crypto::SecureBuffer> Load() = 0;
  // For logs: where the key comes from (a path, never key bytes).
  virtual std::string Describe() const = 0;
};

// Reads `path`; refuses a file readable or writable by group or others, or
// one that is not exactly 32 bytes.
std::unique_ptr<RootKeySource> FileRootKeySource(std::string path);

// Development mode: `<data_dir>/root.key`, created with mode 0600 from the
// CSPRNG when missing, then read like FileRootKeySource.
std::unique_ptr<RootKeySource> DevelopmentRootKeySource(std::string data_dir);

}  // namespace coffer::kms
