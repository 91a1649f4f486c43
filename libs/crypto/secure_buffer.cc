#include "libs/crypto/secure_buffer.h"

#include <sodium.h>

#include <cstring>
#include <utility>

#include "libs/common/status_macros.h"
#include "libs/crypto/sodium_status.h"

namespace coffer::crypto {

void EnsureSodiumInitialized() {
  // sodium_init is itself thread-safe and idempotent; the static makes the
  // common path a single load. 0 = initialized now, 1 = already, -1 = failure.
  static const bool initialized = sodium_init() >= 0;
  COFFER_CHECK(initialized, "libsodium could not be initialized");
}

SecureBuffer SecureBuffer::Allocate(size_t n) {
  EnsureSodiumInitialized();
  SecureBuffer buffer;
  if (n == 0) return buffer;  // no allocation for empty buffers
  void* p = sodium_malloc(n);
  COFFER_CHECK(p != nullptr, "sodium_malloc failed (out of guarded memory?)");
  sodium_memzero(p, n);  // sodium_malloc fills with a garbage pattern
  buffer.data_ = static_cast<uint8_t*>(p);
  buffer.size_ = n;
  return buffer;
}

SecureBuffer SecureBuffer::Random(size_t n) {
  SecureBuffer buffer = Allocate(n);
  if (n > 0) randombytes_buf(buffer.data_, n);
  return buffer;
}

SecureBuffer SecureBuffer::Copy(absl::string_view bytes) {
  SecureBuffer buffer = Allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer.data_, bytes.data(), bytes.size());
  return buffer;
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecureBuffer::~SecureBuffer() {
  // sodium_free makes the region writable again, zeroes it and unmaps it.
  if (data_ != nullptr) sodium_free(data_);
}

void SecureBuffer::MakeReadOnly() {
  if (data_ != nullptr) {
    internal::CheckSodium(sodium_mprotect_readonly(data_), "sodium_mprotect_readonly");
  }
}

void SecureBuffer::MakeNoAccess() {
  if (data_ != nullptr) {
    internal::CheckSodium(sodium_mprotect_noaccess(data_), "sodium_mprotect_noaccess");
  }
}

void SecureBuffer::MakeReadWrite() {
  if (data_ != nullptr) {
    internal::CheckSodium(sodium_mprotect_readwrite(data_), "sodium_mprotect_readwrite");
  }
}

void Wipe(void* p, size_t n) {
  if (p != nullptr && n > 0) sodium_memzero(p, n);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  EnsureSodiumInitialized();
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace coffer::crypto
