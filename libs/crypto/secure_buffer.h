// secure_buffer.h: guarded memory for keys and other secrets.
//
// A SecureBuffer owns bytes in guarded memory that is locked (never swapped
// out, when RLIMIT_MEMLOCK allows), left out of core dumps, and wiped when the
// buffer is destroyed. Buffers come from the process's SecureArena
// (secure_arena.h): slots of a few large guarded regions, so allocating one is
// a mutex and a free list, never a system call, and a million of them are a
// handful of memory mappings.
//
//   coffer::crypto::SecureBuffer dek = coffer::crypto::SecureBuffer::Random(32);
//   std::string ct = AeadSeal(dek, plaintext, ad);
//
//   // Long-lived keys: read-only memory (writes fault).
//   coffer::crypto::SecureBuffer material = coffer::crypto::SecureBuffer::ReadOnlyCopy(bytes);
//
//   // A few buffers whose protection changes while idle (the KMS root key).
//   COFFER_ASSIGN_OR_RETURN(coffer::crypto::SecureBuffer root,
//                           coffer::crypto::SecureBuffer::AllocateDedicated(32));
//   ... fill root.data() ...
//   root.MakeReadOnly();
//
// Arena slots have no guard pages of their own and share pages, so they
// cannot be protected one by one: MakeReadOnly / MakeNoAccess /
// MakeReadWrite act only on dedicated buffers (sodium_malloc: guard pages, a
// canary, a mapping of its own) and do nothing on the others.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/secure_arena.h"

namespace coffer::crypto {

// Initializes libsodium once (thread-safe, idempotent). Every function in
// this library calls it; mains call it early to fail fast. Crashes if
// libsodium cannot initialize.
void EnsureSodiumInitialized();

class SecureBuffer {
 public:
  SecureBuffer() = default;  // empty, size 0
  // `n` zero bytes from SecureArena::Default(). Never aborts: memory that
  // cannot be locked or mapped is counted and replaced (secure_arena.h).
  static SecureBuffer Allocate(size_t n);
  // `n` bytes from the CSPRNG.
  static SecureBuffer Random(size_t n);
  // A copy of `bytes`.
  static SecureBuffer Copy(absl::string_view bytes);
  // A copy of `bytes` in SecureArena::ReadOnly(): writes through data()
  // fault. For long-lived keys (the KMS's material versions); filling and
  // wiping one costs two mprotect calls.
  static SecureBuffer ReadOnlyCopy(absl::string_view bytes);
  // `n` zero bytes in a sodium_malloc allocation of its own, whose
  // protection the Make* methods change. About four memory mappings and
  // several system calls each: for a few long-lived buffers, never per
  // request. RESOURCE_EXHAUSTED when it cannot be mapped.
  static absl::StatusOr<SecureBuffer> AllocateDedicated(size_t n);

  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  // Wipes and frees (the arena's slot is wiped and reused; sodium_free
  // zeroes a dedicated buffer).
  ~SecureBuffer();

  uint8_t* data() { return block_.data; }
  const uint8_t* data() const { return block_.data; }
  size_t size() const { return block_.size; }
  bool empty() const { return block_.size == 0; }
  absl::string_view view() const {
    return absl::string_view(reinterpret_cast<const char*>(block_.data), block_.size);
  }
  // Made by AllocateDedicated (and not empty).
  bool dedicated() const { return arena_ == nullptr && block_.data != nullptr; }

  // Page protection of a dedicated buffer (sodium_mprotect_*); reading a
  // no-access buffer faults. No-ops on every other buffer (see above).
  void MakeReadOnly();
  void MakeNoAccess();
  void MakeReadWrite();

 private:
  void Release();

  SecureArena* arena_ = nullptr;  // null: empty or dedicated
  SecureBlock block_;
};

// Overwrites `n` bytes at `p` with zeros in a way the compiler keeps.
void Wipe(void* p, size_t n);

// Constant-time comparison of equal-length inputs; false if lengths differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace coffer::crypto
