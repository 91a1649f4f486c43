#include "libs/crypto/secure_arena.h"

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"

// Under AddressSanitizer (the fuzz targets) free slots and the unused end of
// each slot are poisoned: an access past a buffer's end is reported although
// no guard page follows it (unless it lands in a neighbouring buffer in use).
#if defined(__SANITIZE_ADDRESS__)
#define COFFER_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COFFER_ARENA_ASAN 1
#endif
#endif
#ifdef COFFER_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace coffer::crypto {
namespace {

#ifdef COFFER_ARENA_ASAN
void Poison(const uint8_t* p, size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
void Unpoison(const uint8_t* p, size_t n) { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#else
void Poison(const uint8_t*, size_t) {}
void Unpoison(const uint8_t*, size_t) {}
#endif

// The first region of a class holds at least four slots and 64 KiB; each
// next one doubles, up to 16 MiB (256 slots of 64 KiB).
constexpr size_t kFirstRegionBytes = size_t{64} << 10;
constexpr size_t kMaxRegionBytes = size_t{16} << 20;

// A warning is logged once per process. The failure is noted where it
// happens (often under a size class's lock) and logged by the public call
// on its way out, with no lock held.
class OnceWarning {
 public:
  // Notes the first failure.
  void Note(int error, size_t bytes) {
    int expected = kNone;
    if (state_.compare_exchange_strong(expected, kNoting)) {
      error_ = error;
      bytes_ = bytes;
      state_.store(kPending, std::memory_order_release);
    }
  }
  // Logs a noted failure, once.
  void Flush(absl::string_view message) {
    int expected = kPending;
    if (state_.load(std::memory_order_acquire) != kPending ||
        !state_.compare_exchange_strong(expected, kLogged)) {
      return;
    }
    log::Warn("crypto", message,
              {{"error", std::strerror(error_)}, {"bytes", absl::StrCat(bytes_)}});
  }

 private:
  enum { kNone, kNoting, kPending, kLogged };
  std::atomic<int> state_{kNone};
  int error_ = 0;
  size_t bytes_ = 0;
};

OnceWarning g_lock_warning;
OnceWarning g_fallback_warning;

void FlushWarnings() {
  g_lock_warning.Flush(
      "mlock of secure memory failed: keys and values may be swapped to disk; raise "
      "RLIMIT_MEMLOCK (systemd LimitMEMLOCK=) or grant CAP_IPC_LOCK. Counted in "
      "coffer_secure_memory_lock_failures_total; logged once");
  g_fallback_warning.Flush(
      "a secure memory region could not be mapped: secrets are kept in ordinary heap memory "
      "(locked if possible, wiped on free) until regions can be mapped again; check "
      "vm.max_map_count and memory. Counted in coffer_secure_memory_fallback_allocations_total; "
      "logged once");
}

size_t PageSize() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

size_t RoundUpToPage(size_t n) {
  const size_t page = PageSize();
  return (n + page - 1) / page * page;
}

// 32 -> 0, 33..64 -> 1, ..., 32769..65536 -> 11.
size_t ClassIndex(size_t n) {
  if (n <= SecureArena::kMinSlotBytes) return 0;
  const int bits = 64 - __builtin_clzll(static_cast<unsigned long long>(n - 1));
  return static_cast<size_t>(bits) - 5;
}

// Changes the protection of a whole region body. The body is one mapping of
// its own between two guard pages, so this never splits a mapping and cannot
// run into vm.max_map_count: a failure is an impossible state.
void Protect(uint8_t* body, size_t bytes, int prot) {
  COFFER_CHECK(::mprotect(body, bytes, prot) == 0, "mprotect of a secure memory region failed");
}

}  // namespace

SecureArena::SecureArena(Options options) : options_(options) {
  size_t slot = kMinSlotBytes;
  for (SizeClass& cls : classes_) {
    absl::MutexLock lock(&cls.mu);
    cls.slot_bytes = slot;
    cls.next_region_bytes = RoundUpToPage(std::max(kFirstRegionBytes, 4 * slot));
    slot *= 2;
  }
}

SecureArena::~SecureArena() {
  for (SizeClass& cls : classes_) {
    absl::MutexLock lock(&cls.mu);
    for (const Region& region : cls.regions) UnmapRegion(region.body, region.bytes, region.locked);
    cls.regions.clear();
  }
}

SecureArena& SecureArena::Default() {
  static SecureArena* const arena = new SecureArena();
  return *arena;
}

SecureArena& SecureArena::ReadOnly() {
  static SecureArena* const arena = new SecureArena(Options{/*read_only=*/true});
  return *arena;
}

bool SecureArena::Lock(void* p, size_t n) {
  if (::mlock(p, n) == 0) return true;
  const int error = errno;
  lock_failures_.fetch_add(1, std::memory_order_relaxed);
  unlocked_bytes_.fetch_add(n, std::memory_order_relaxed);
  g_lock_warning.Note(error, n);
  return false;
}

uint8_t* SecureArena::MapRegion(size_t bytes, bool* locked) {
  const size_t page = PageSize();
  const size_t total = bytes + 2 * page;
  void* base = ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int error = errno;
  uint8_t* body = nullptr;
  if (base != MAP_FAILED) {
    body = static_cast<uint8_t*>(base) + page;
    if (::mprotect(body, bytes, PROT_READ | PROT_WRITE) != 0) {
      error = errno;
      ::munmap(base, total);
      body = nullptr;
    }
  }
  if (body == nullptr) {
    g_fallback_warning.Note(error, bytes);
    return nullptr;
  }
  (void)::madvise(body, bytes, MADV_DONTDUMP);  // best effort; core dumps are off anyway
  *locked = Lock(body, bytes);
  regions_.fetch_add(1, std::memory_order_relaxed);
  mapped_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return body;
}

void SecureArena::UnmapRegion(uint8_t* body, size_t bytes, bool locked) {
  const size_t page = PageSize();
  Unpoison(body, bytes);                    // the next mapping at this address starts clean
  ::munmap(body - page, bytes + 2 * page);  // also unlocks
  regions_.fetch_sub(1, std::memory_order_relaxed);
  mapped_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  if (!locked) unlocked_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
}

bool SecureArena::GrowLocked(SizeClass& cls) {
  const size_t bytes = cls.next_region_bytes;
  bool locked = false;
  uint8_t* body = MapRegion(bytes, &locked);
  if (body == nullptr) return false;
  if (options_.read_only) Protect(body, bytes, PROT_READ);
  Poison(body, bytes);
  cls.regions.push_back(Region{body, bytes, locked});
  cls.bump = body;
  cls.bump_end = body + bytes / cls.slot_bytes * cls.slot_bytes;
  cls.next_region_bytes = std::min(2 * bytes, std::max(kMaxRegionBytes, bytes));
  return true;
}

const SecureArena::Region* SecureArena::RegionOfLocked(SizeClass& cls, const uint8_t* p) {
  for (const Region& region : cls.regions) {
    if (p >= region.body && p < region.body + region.bytes) return &region;
  }
  COFFER_CHECK(false, "a secure memory slot outside its arena's regions");
  return nullptr;
}

uint8_t* SecureArena::TakeSlot(SizeClass& cls, size_t n, const absl::string_view* bytes) {
  absl::MutexLock lock(&cls.mu);
  uint8_t* p = nullptr;
  if (!cls.free_slots.empty()) {
    p = cls.free_slots.back();
    cls.free_slots.pop_back();
  } else {
    if (cls.bump == cls.bump_end && !GrowLocked(cls)) return nullptr;
    p = cls.bump;
    cls.bump += cls.slot_bytes;
  }
  Unpoison(p, n);
  if (bytes != nullptr && options_.read_only) {
    const Region* region = RegionOfLocked(cls, p);
    Protect(region->body, region->bytes, PROT_READ | PROT_WRITE);
    std::memcpy(p, bytes->data(), bytes->size());
    Protect(region->body, region->bytes, PROT_READ);
  }
  in_use_bytes_.fetch_add(cls.slot_bytes, std::memory_order_relaxed);
  return p;
}

SecureBlock SecureArena::AllocateRegion(size_t n, const absl::string_view* bytes) {
  const size_t region_bytes = RoundUpToPage(n);
  bool locked = false;
  uint8_t* body = MapRegion(region_bytes, &locked);
  if (body == nullptr) return AllocateHeap(n, bytes);
  Poison(body + n, region_bytes - n);
  if (bytes != nullptr) std::memcpy(body, bytes->data(), bytes->size());
  if (options_.read_only) Protect(body, region_bytes, PROT_READ);
  in_use_bytes_.fetch_add(region_bytes, std::memory_order_relaxed);
  return SecureBlock{body, n, SecureBlock::Kind::kRegion, locked};
}

SecureBlock SecureArena::AllocateHeap(size_t n, const absl::string_view* bytes) {
  const size_t heap_bytes = RoundUpToPage(n);
  // Page-aligned and page-rounded, so mlock and munlock touch no one else's
  // page. Throws std::bad_alloc like any allocation when there is no memory.
  auto* p = static_cast<uint8_t*>(::operator new(heap_bytes, std::align_val_t(PageSize())));
  std::memset(p, 0, heap_bytes);
  if (bytes != nullptr) std::memcpy(p, bytes->data(), bytes->size());
  const bool locked = Lock(p, heap_bytes);
  fallback_allocations_.fetch_add(1, std::memory_order_relaxed);
  fallback_bytes_.fetch_add(heap_bytes, std::memory_order_relaxed);
  in_use_bytes_.fetch_add(heap_bytes, std::memory_order_relaxed);
  return SecureBlock{p, n, SecureBlock::Kind::kHeap, locked};
}

SecureBlock SecureArena::Allocate(size_t n) {
  if (n == 0) return SecureBlock{};
  SecureBlock block;
  if (n > kMaxSlotBytes) {
    block = AllocateRegion(n, nullptr);
  } else if (uint8_t* p = TakeSlot(classes_[ClassIndex(n)], n, nullptr); p != nullptr) {
    // Free slots are all zero, and so is a new region: nothing to write,
    // even in a read-only arena.
    block = SecureBlock{p, n, SecureBlock::Kind::kSlot, false};
  } else {
    block = AllocateHeap(n, nullptr);
  }
  FlushWarnings();
  return block;
}

SecureBlock SecureArena::AllocateCopy(absl::string_view bytes) {
  const size_t n = bytes.size();
  if (n == 0) return SecureBlock{};
  SecureBlock block;
  if (n > kMaxSlotBytes) {
    block = AllocateRegion(n, &bytes);
  } else if (uint8_t* p = TakeSlot(classes_[ClassIndex(n)], n, &bytes); p != nullptr) {
    // A writable arena's slot is filled outside the class's lock.
    if (!options_.read_only) std::memcpy(p, bytes.data(), n);
    block = SecureBlock{p, n, SecureBlock::Kind::kSlot, false};
  } else {
    block = AllocateHeap(n, &bytes);
  }
  FlushWarnings();
  return block;
}

void SecureArena::Free(SecureBlock& block) {
  const SecureBlock b = block;
  block = SecureBlock{};
  switch (b.kind) {
    case SecureBlock::Kind::kNone:
      return;
    case SecureBlock::Kind::kSlot: {
      SizeClass& cls = classes_[ClassIndex(b.size)];
      const size_t slot = cls.slot_bytes;
      Unpoison(b.data, slot);
      if (options_.read_only) {
        absl::MutexLock lock(&cls.mu);
        const Region* region = RegionOfLocked(cls, b.data);
        Protect(region->body, region->bytes, PROT_READ | PROT_WRITE);
        sodium_memzero(b.data, slot);
        Protect(region->body, region->bytes, PROT_READ);
        Poison(b.data, slot);
        cls.free_slots.push_back(b.data);
      } else {
        // The whole slot, so free slots stay all zero whatever was written.
        sodium_memzero(b.data, slot);
        Poison(b.data, slot);
        absl::MutexLock lock(&cls.mu);
        cls.free_slots.push_back(b.data);
      }
      in_use_bytes_.fetch_sub(slot, std::memory_order_relaxed);
      return;
    }
    case SecureBlock::Kind::kRegion: {
      const size_t region_bytes = RoundUpToPage(b.size);
      Unpoison(b.data, region_bytes);
      if (options_.read_only) Protect(b.data, region_bytes, PROT_READ | PROT_WRITE);
      sodium_memzero(b.data, region_bytes);
      UnmapRegion(b.data, region_bytes, b.locked);
      in_use_bytes_.fetch_sub(region_bytes, std::memory_order_relaxed);
      return;
    }
    case SecureBlock::Kind::kHeap: {
      const size_t heap_bytes = RoundUpToPage(b.size);
      sodium_memzero(b.data, heap_bytes);
      if (b.locked) {
        ::munlock(b.data, heap_bytes);
      } else {
        unlocked_bytes_.fetch_sub(heap_bytes, std::memory_order_relaxed);
      }
      ::operator delete(b.data, std::align_val_t(PageSize()));
      fallback_bytes_.fetch_sub(heap_bytes, std::memory_order_relaxed);
      in_use_bytes_.fetch_sub(heap_bytes, std::memory_order_relaxed);
      return;
    }
  }
}

SecureMemoryStats SecureArena::Stats() const {
  SecureMemoryStats s;
  s.regions = regions_.load(std::memory_order_relaxed);
  s.mapped_bytes = mapped_bytes_.load(std::memory_order_relaxed);
  s.in_use_bytes = in_use_bytes_.load(std::memory_order_relaxed);
  s.unlocked_bytes = unlocked_bytes_.load(std::memory_order_relaxed);
  s.lock_failures = lock_failures_.load(std::memory_order_relaxed);
  s.fallback_allocations = fallback_allocations_.load(std::memory_order_relaxed);
  s.fallback_bytes = fallback_bytes_.load(std::memory_order_relaxed);
  return s;
}

SecureMemoryStats GetSecureMemoryStats() {
  SecureMemoryStats a = SecureArena::Default().Stats();
  const SecureMemoryStats b = SecureArena::ReadOnly().Stats();
  a.regions += b.regions;
  a.mapped_bytes += b.mapped_bytes;
  a.in_use_bytes += b.in_use_bytes;
  a.unlocked_bytes += b.unlocked_bytes;
  a.lock_failures += b.lock_failures;
  a.fallback_allocations += b.fallback_allocations;
  a.fallback_bytes += b.fallback_bytes;
  return a;
}

}  // namespace coffer::crypto
