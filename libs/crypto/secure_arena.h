// secure_arena.h: guarded memory for many secrets in a few memory mappings.
//
// sodium_malloc gives every buffer a mapping of its own (guard pages around
// it; about four lines of /proc/self/maps) and costs an mmap, mprotects and a
// munmap each time: too slow per request, and past the kernel's
// vm.max_map_count (65,530 by default) it fails. A SecureArena instead maps a
// few large regions, each between two PROT_NONE guard pages, mlock'ed (never
// swapped out) and MADV_DONTDUMP (never in a core file), and carves them into
// power-of-two slots of 32 bytes to 64 KiB, one size class per power. A freed
// slot is wiped (sodium_memzero) and handed out again by its size class; each
// class has its own mutex. Regions are kept while the arena lives, so what is
// mapped follows the peak in use; each new region of a class is twice the
// size of the last (up to 16 MiB). A block above 64 KiB gets a guarded region
// of its own, unmapped when it is freed.
//
//   coffer::crypto::SecureArena& arena = coffer::crypto::SecureArena::Default();
//   coffer::crypto::SecureBlock block = arena.Allocate(32);   // 32 zero bytes
//   std::memcpy(block.data, key, 32);
//   arena.Free(block);                                          // wiped, slot reused
//   coffer::crypto::SecureMemoryStats stats = coffer::crypto::GetSecureMemoryStats();
//
// Code outside libs/crypto uses SecureBuffer, which allocates here; this
// interface is for SecureBuffer, the metrics and tests.
//
// Nothing here aborts the process:
//  - an mlock that fails (RLIMIT_MEMLOCK reached without CAP_IPC_LOCK) is
//    counted (lock_failures, unlocked_bytes) and logged once per process; the
//    memory is used unlocked (it may reach swap).
//  - when no region can be mapped (vm.max_map_count reached, out of memory)
//    the block comes from ordinary heap memory instead, page-aligned, still
//    zeroed, mlock'ed if possible and wiped on free; counted as a fallback and
//    logged once per process. (Heap memory without memory is std::bad_alloc,
//    as for any C++ allocation.)
//
// What slots do not have: guard pages or canaries of their own. A buffer
// overrun reaches the next slot of the same region; only the regions' ends
// fault. Page protection per buffer is impossible for slots sharing a page:
// SecureBuffer::AllocateDedicated keeps sodium_malloc for the few buffers
// that need it. A read-only arena (SecureArena::ReadOnly(), for long-lived
// keys) keeps every region read-only, making one region writable only while a
// slot of it is filled (AllocateCopy) or wiped (Free), under the size class's
// lock.
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace coffer::crypto {

// Secure memory of the process (both arenas of SecureBuffer) or of one arena.
// Bytes of the dedicated sodium_malloc buffers (the KMS root key) are not
// included.
struct SecureMemoryStats {
  // Guarded regions mapped now (size-class regions and blocks above 64 KiB),
  // and their bytes without the guard pages.
  uint64_t regions = 0;
  uint64_t mapped_bytes = 0;
  // Bytes handed out and not yet freed: whole slots, page-rounded blocks.
  uint64_t in_use_bytes = 0;
  // Bytes mapped or allocated now whose mlock failed (they may be swapped).
  uint64_t unlocked_bytes = 0;
  // mlock calls that failed, since start.
  uint64_t lock_failures = 0;
  // Blocks that came from the heap because no region could be mapped, since
  // start, and the heap bytes in use now.
  uint64_t fallback_allocations = 0;
  uint64_t fallback_bytes = 0;
};

// A piece of secure memory from a SecureArena; give it back with Free.
struct SecureBlock {
  enum class Kind : uint8_t {
    kNone,    // empty (size 0)
    kSlot,    // a slot of a size-class region
    kRegion,  // a guarded region of its own (above kMaxSlotBytes)
    kHeap,    // the fallback: page-aligned heap memory
  };
  uint8_t* data = nullptr;
  size_t size = 0;  // the bytes asked for
  Kind kind = Kind::kNone;
  bool locked = false;  // kRegion and kHeap: the mlock succeeded
};

class SecureArena {
 public:
  static constexpr size_t kMinSlotBytes = 32;
  static constexpr size_t kMaxSlotBytes = 65536;

  struct Options {
    // Regions are read-only except while AllocateCopy fills a slot or Free
    // wipes one. Writes through a block's pointer fault. Fallback heap blocks
    // stay writable.
    bool read_only = false;
  };

  SecureArena() : SecureArena(Options{}) {}
  explicit SecureArena(Options options);
  // Unmaps every region: every block must have been freed before.
  ~SecureArena();
  SecureArena(const SecureArena&) = delete;
  SecureArena& operator=(const SecureArena&) = delete;

  // The process's arenas (never destroyed): SecureBuffer's, and the
  // read-only one for long-lived keys (SecureBuffer::ReadOnlyCopy).
  static SecureArena& Default();
  static SecureArena& ReadOnly();

  // `n` zero bytes; an empty block for 0. Never fails (see above).
  SecureBlock Allocate(size_t n);
  // A block holding `bytes` (the only way to fill a read-only arena's block).
  SecureBlock AllocateCopy(absl::string_view bytes);
  // Wipes the block and takes it back; `block` becomes empty. An empty block
  // is ignored.
  void Free(SecureBlock& block);

  SecureMemoryStats Stats() const;

 private:
  static constexpr size_t kClasses = 12;  // 32 B ... 64 KiB

  struct Region {
    uint8_t* body = nullptr;
    size_t bytes = 0;
    bool locked = false;
  };
  struct SizeClass {
    absl::Mutex mu;
    size_t slot_bytes = 0;
    size_t next_region_bytes ABSL_GUARDED_BY(mu) = 0;
    std::vector<Region> regions ABSL_GUARDED_BY(mu);
    std::vector<uint8_t*> free_slots ABSL_GUARDED_BY(mu);  // wiped, all zero
    uint8_t* bump ABSL_GUARDED_BY(mu) = nullptr;           // [bump, bump_end): never handed out
    uint8_t* bump_end ABSL_GUARDED_BY(mu) = nullptr;
  };

  // A slot of `cls` for `n` bytes, null if no region could be mapped. In a
  // read-only arena, copies `bytes` (if given) in, making the region
  // writable meanwhile.
  uint8_t* TakeSlot(SizeClass& cls, size_t n, const absl::string_view* bytes);
  bool GrowLocked(SizeClass& cls) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cls.mu);
  const Region* RegionOfLocked(SizeClass& cls, const uint8_t* p)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cls.mu);
  SecureBlock AllocateRegion(size_t n, const absl::string_view* bytes);
  SecureBlock AllocateHeap(size_t n, const absl::string_view* bytes);
  // Maps a guarded, read-write region of `bytes` (a page multiple), mlock'ed
  // if possible; null if it cannot be mapped.
  uint8_t* MapRegion(size_t bytes, bool* locked);
  void UnmapRegion(uint8_t* body, size_t bytes, bool locked);
  // mlock with the failure counted and logged once.
  bool Lock(void* p, size_t n);

  const Options options_;
  std::array<SizeClass, kClasses> classes_;
  std::atomic<uint64_t> regions_{0};
  std::atomic<uint64_t> mapped_bytes_{0};
  std::atomic<uint64_t> in_use_bytes_{0};
  std::atomic<uint64_t> unlocked_bytes_{0};
  std::atomic<uint64_t> lock_failures_{0};
  std::atomic<uint64_t> fallback_allocations_{0};
  std::atomic<uint64_t> fallback_bytes_{0};
};

// The sum over SecureArena::Default() and SecureArena::ReadOnly().
SecureMemoryStats GetSecureMemoryStats();

}  // namespace coffer::crypto
