#include "libs/crypto/secure_buffer.h"

#include <sodium.h>

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
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
  buffer.arena_ = &SecureArena::Default();
  buffer.block_ = buffer.arena_->Allocate(n);
  return buffer;
}

SecureBuffer SecureBuffer::Random(size_t n) {
  SecureBuffer buffer = Allocate(n);
  if (n > 0) randombytes_buf(buffer.data(), n);
  return buffer;
}

SecureBuffer SecureBuffer::Copy(absl::string_view bytes) {
  EnsureSodiumInitialized();
  SecureBuffer buffer;
  if (bytes.empty()) return buffer;
  buffer.arena_ = &SecureArena::Default();
  buffer.block_ = buffer.arena_->AllocateCopy(bytes);
  return buffer;
}

SecureBuffer SecureBuffer::ReadOnlyCopy(absl::string_view bytes) {
  EnsureSodiumInitialized();
  SecureBuffer buffer;
  if (bytes.empty()) return buffer;
  buffer.arena_ = &SecureArena::ReadOnly();
  buffer.block_ = buffer.arena_->AllocateCopy(bytes);
  return buffer;
}

absl::StatusOr<SecureBuffer> SecureBuffer::AllocateDedicated(size_t n) {
  EnsureSodiumInitialized();
  SecureBuffer buffer;
  if (n == 0) return buffer;
  void* p = sodium_malloc(n);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("sodium_malloc of ", n, " bytes failed (out of memory mappings?)"));
  }
  sodium_memzero(p, n);  // sodium_malloc fills with a garbage pattern
  buffer.block_.data = static_cast<uint8_t*>(p);
  buffer.block_.size = n;
  return buffer;
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : arena_(std::exchange(other.arena_, nullptr)),
      block_(std::exchange(other.block_, SecureBlock{})) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    arena_ = std::exchange(other.arena_, nullptr);
    block_ = std::exchange(other.block_, SecureBlock{});
  }
  return *this;
}

SecureBuffer::~SecureBuffer() { Release(); }

void SecureBuffer::Release() {
  if (arena_ != nullptr) {
    arena_->Free(block_);  // wipes
  } else if (block_.data != nullptr) {
    // sodium_free makes the region writable again, zeroes it and unmaps it.
    sodium_free(block_.data);
  }
  arena_ = nullptr;
  block_ = SecureBlock{};
}

void SecureBuffer::MakeReadOnly() {
  if (dedicated()) {
    internal::CheckSodium(sodium_mprotect_readonly(block_.data), "sodium_mprotect_readonly");
  }
}

void SecureBuffer::MakeNoAccess() {
  if (dedicated()) {
    internal::CheckSodium(sodium_mprotect_noaccess(block_.data), "sodium_mprotect_noaccess");
  }
}

void SecureBuffer::MakeReadWrite() {
  if (dedicated()) {
    internal::CheckSodium(sodium_mprotect_readwrite(block_.data), "sodium_mprotect_readwrite");
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
