// secure_buffer.h: guarded memory for keys and other secrets.
//
// A SecureBuffer lives in libsodium guarded memory (sodium_malloc: guard
// pages, canary, mlock'ed so it never reaches swap), is wiped on destruction
// and can be protected read-only or no-access while idle.
//
//   coffer::crypto::SecureBuffer key = coffer::crypto::SecureBuffer::Random(32);
//   key.MakeReadOnly();                // writes now fault
//   std::string ct = AeadSeal(key, plaintext, ad);
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace coffer::crypto {

// Initializes libsodium once (thread-safe, idempotent). Every function in
// this library calls it; mains call it early to fail fast. Crashes if
// libsodium cannot initialize.
void EnsureSodiumInitialized();

class SecureBuffer {
 public:
  SecureBuffer() = default;  // empty, size 0
  // `n` zero bytes. Crashes if guarded memory cannot be allocated.
  static SecureBuffer Allocate(size_t n);
  // `n` bytes from the CSPRNG.
  static SecureBuffer Random(size_t n);
  // A copy of `bytes`.
  static SecureBuffer Copy(absl::string_view bytes);

  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  // Wipes and frees (sodium_free zeroes the memory).
  ~SecureBuffer();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  absl::string_view view() const {
    return absl::string_view(reinterpret_cast<const char*>(data_), size_);
  }

  // Page protection (sodium_mprotect_*). Reading a no-access buffer faults.
  void MakeReadOnly();
  void MakeNoAccess();
  void MakeReadWrite();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Overwrites `n` bytes at `p` with zeros in a way the compiler keeps.
void Wipe(void* p, size_t n);

// Constant-time comparison of equal-length inputs; false if lengths differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace coffer::crypto
