// The guarded arena behind SecureBuffer: few mappings for many buffers,
// wiping, size classes, threads, and the failures it must survive for real —
// mlock refused (RLIMIT_MEMLOCK 0 without CAP_IPC_LOCK) and no mapping left
// (vm.max_map_count reached) — each in a child process.
#include "libs/crypto/secure_arena.h"

#include <linux/capability.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "libs/common/log.h"
#include "libs/crypto/secure_buffer.h"

namespace coffer::crypto {
namespace {

size_t Page() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

// Lines of /proc/self/maps: the process's memory mappings.
int MapsLines() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

bool AllZero(const volatile uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

// The size class (slot bytes) a request of `n` bytes gets.
uint64_t SlotOf(size_t n) {
  uint64_t slot = SecureArena::kMinSlotBytes;
  while (slot < n) slot *= 2;
  return slot;
}

// Child processes (EXPECT_EXIT) report a failed check this way.
[[noreturn]] void ChildFail(const std::string& why) {
  std::fprintf(stderr, "CHILD CHECK FAILED: %s\n", why.c_str());
  std::fflush(stderr);
  ::_exit(1);
}

[[noreturn]] void ChildOk() {
  std::fprintf(stderr, "child ok\n");
  std::fflush(stderr);
  ::_exit(0);
}

TEST(SecureArenaTest, ManyBuffersTakeAFewMappings) {
  // The issue: one sodium_malloc (about four mappings) per buffer went past
  // vm.max_map_count (65,530) with a cache of 10,000 data keys and a KMS
  // with thousands of key versions.
  const int before = MapsLines();
  std::vector<SecureBuffer> small;
  small.reserve(100000);
  for (int i = 0; i < 100000; ++i) {
    small.push_back(SecureBuffer::Allocate(32));
    small.back().data()[31] = static_cast<uint8_t>(i);
  }
  const int after_small = MapsLines();
  std::vector<SecureBuffer> large;
  large.reserve(2000);
  for (int i = 0; i < 2000; ++i) {
    large.push_back(SecureBuffer::Allocate(65536));
    large.back().data()[0] = 1;
    large.back().data()[65535] = 1;
  }
  const int after = MapsLines();
  std::cout << "maps lines: " << before << " before, " << after_small << " after 100,000 x 32 B, "
            << after << " after 2,000 x 64 KiB more\n";
  EXPECT_LT(after - before, 200);

  const SecureMemoryStats stats = GetSecureMemoryStats();
  EXPECT_GE(stats.in_use_bytes, 100000u * 32 + 2000u * 65536);
  EXPECT_GE(stats.mapped_bytes, stats.in_use_bytes);
  EXPECT_LT(stats.regions, 60u);
  EXPECT_EQ(stats.fallback_allocations, 0u);
  // Distinct slots: every buffer still holds what was written to it.
  for (int i = 0; i < 100000; ++i) {
    ASSERT_EQ(small[i].data()[31], static_cast<uint8_t>(i)) << i;
  }
}

TEST(SecureArenaTest, FreedSlotIsWipedAndReused) {
  for (size_t n : {size_t{32}, size_t{40}, size_t{4000}, size_t{65536}}) {
    SecureBuffer b = SecureBuffer::Copy(std::string(n, 'k'));
    // Arena memory stays mapped after the buffer is gone, so the slot can be
    // read through a pointer kept from before.
    const volatile uint8_t* slot = b.data();
    b = SecureBuffer();
    EXPECT_TRUE(AllZero(slot, SlotOf(n))) << n;
    // The next buffer of the class gets the same slot, zeroed.
    SecureBuffer again = SecureBuffer::Allocate(n);
    EXPECT_EQ(again.data(), slot) << n;
    EXPECT_TRUE(AllZero(again.data(), n)) << n;
  }
}

TEST(SecureArenaTest, BytesWrittenPastTheSizeWithinTheSlotAreWipedToo) {
  // Free wipes the whole slot, so a slot handed out again is zero even if
  // its previous owner wrote past size() (but inside the slot).
  SecureArena arena;
  SecureBlock block = arena.Allocate(33);  // a 64-byte slot
  uint8_t* slot = block.data;
  std::memset(slot, 0xAB, 64);
  arena.Free(block);
  EXPECT_TRUE(AllZero(slot, 64));
  SecureBlock next = arena.Allocate(64);
  EXPECT_EQ(next.data, slot);
  EXPECT_TRUE(AllZero(next.data, 64));
  arena.Free(next);
}

TEST(SecureArenaTest, MoveSemantics) {
  const uint64_t base = GetSecureMemoryStats().in_use_bytes;
  SecureBuffer a = SecureBuffer::Copy("first secret");
  const uint8_t* pa = a.data();
  SecureBuffer b(std::move(a));
  EXPECT_EQ(b.data(), pa);
  EXPECT_EQ(b.view(), "first secret");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(GetSecureMemoryStats().in_use_bytes, base + 32);

  // Assigning over a buffer frees (and wipes) what it held.
  SecureBuffer c = SecureBuffer::Copy("second secret");
  const volatile uint8_t* pc = c.data();
  c = std::move(b);
  EXPECT_EQ(c.view(), "first secret");
  EXPECT_TRUE(AllZero(pc, 32));
  EXPECT_EQ(GetSecureMemoryStats().in_use_bytes, base + 32);
  SecureBuffer& self = c;
  c = std::move(self);
  EXPECT_EQ(c.view(), "first secret");

  // Moved-from buffers free nothing; the last owner frees once.
  {
    SecureBuffer d = std::move(c);
    SecureBuffer e = SecureBuffer::ReadOnlyCopy("read-only secret");
    SecureBuffer f = std::move(e);
    EXPECT_EQ(f.view(), "read-only secret");
  }
  EXPECT_EQ(GetSecureMemoryStats().in_use_bytes, base);
  a = SecureBuffer::Allocate(8);  // a moved-from buffer is usable again
  EXPECT_EQ(a.size(), 8u);
}

TEST(SecureArenaTest, SizeClassBoundaries) {
  SecureArena arena;
  const size_t page = Page();
  struct Case {
    size_t n;
    SecureBlock::Kind kind;
    uint64_t in_use;  // bytes the block takes
  };
  const std::vector<Case> cases = {
      {0, SecureBlock::Kind::kNone, 0},
      {1, SecureBlock::Kind::kSlot, 32},
      {31, SecureBlock::Kind::kSlot, 32},
      {32, SecureBlock::Kind::kSlot, 32},
      {33, SecureBlock::Kind::kSlot, 64},
      {4096, SecureBlock::Kind::kSlot, 4096},
      {4097, SecureBlock::Kind::kSlot, 8192},
      {65535, SecureBlock::Kind::kSlot, 65536},
      {65536, SecureBlock::Kind::kSlot, 65536},
      {65537, SecureBlock::Kind::kRegion, (65537 + page - 1) / page * page},
      {size_t{1} << 20, SecureBlock::Kind::kRegion, size_t{1} << 20},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.n);
    const SecureMemoryStats before = arena.Stats();
    SecureBlock block = arena.Allocate(c.n);
    EXPECT_EQ(block.size, c.n);
    EXPECT_EQ(block.kind, c.kind);
    EXPECT_EQ(block.data == nullptr, c.n == 0);
    EXPECT_TRUE(AllZero(block.data, c.n));
    if (c.n > 0) std::memset(block.data, 0x5A, c.n);  // every byte writable
    const SecureMemoryStats during = arena.Stats();
    EXPECT_EQ(during.in_use_bytes - before.in_use_bytes, c.in_use);
    if (c.kind == SecureBlock::Kind::kRegion) {
      EXPECT_EQ(during.regions, before.regions + 1);  // a guarded region of its own
    }
    arena.Free(block);
    EXPECT_EQ(block.kind, SecureBlock::Kind::kNone);
    EXPECT_EQ(block.data, nullptr);
    const SecureMemoryStats after = arena.Stats();
    EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
    if (c.kind == SecureBlock::Kind::kRegion) {
      EXPECT_EQ(after.regions, before.regions);  // unmapped again
      EXPECT_EQ(after.mapped_bytes, before.mapped_bytes);
    }
  }
  EXPECT_EQ(arena.Stats().fallback_allocations, 0u);

  // The same through SecureBuffer.
  for (size_t n : {0, 31, 32, 33, 65536, 65537}) {
    SCOPED_TRACE(n);
    SecureBuffer b = SecureBuffer::Allocate(n);
    EXPECT_EQ(b.size(), n);
    EXPECT_EQ(b.view(), std::string(n, '\0'));
    const std::string bytes(n, 'x');
    SecureBuffer c = SecureBuffer::Copy(bytes);
    EXPECT_EQ(c.view(), bytes);
    SecureBuffer r = SecureBuffer::ReadOnlyCopy(bytes);
    EXPECT_EQ(r.view(), bytes);
  }
}

TEST(SecureArenaTest, RegionsAreKeptForReuse) {
  SecureArena arena;
  std::vector<SecureBlock> blocks;
  for (int i = 0; i < 5000; ++i) blocks.push_back(arena.Allocate(100));
  const SecureMemoryStats peak = arena.Stats();
  for (SecureBlock& b : blocks) arena.Free(b);
  EXPECT_EQ(arena.Stats().in_use_bytes, 0u);
  EXPECT_EQ(arena.Stats().mapped_bytes, peak.mapped_bytes);
  // The same load again maps nothing new.
  for (SecureBlock& b : blocks) b = arena.Allocate(100);
  EXPECT_EQ(arena.Stats().regions, peak.regions);
  EXPECT_EQ(arena.Stats().mapped_bytes, peak.mapped_bytes);
  for (SecureBlock& b : blocks) arena.Free(b);
}

TEST(SecureArenaTest, ConcurrentAllocateAndFree) {
  const uint64_t base = GetSecureMemoryStats().in_use_bytes;
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &errors] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<std::pair<SecureBuffer, uint8_t>> live;
      for (int i = 0; i < 20000 && errors[t].empty(); ++i) {
        const int pick = static_cast<int>(rng() % 1000);
        size_t n = 1 + rng() % 64;                    // mostly data keys
        if (pick >= 700) n = 1 + rng() % 65536;       // values
        if (pick >= 995) n = 65537 + rng() % 100000;  // now and then above the classes
        const auto fill = static_cast<uint8_t>(1 + (t * 31 + i) % 255);
        if (pick % 10 == 0) {
          live.emplace_back(SecureBuffer::ReadOnlyCopy(std::string(n, static_cast<char>(fill))),
                            fill);
        } else {
          SecureBuffer b = SecureBuffer::Allocate(n);
          if (!AllZero(b.data(), n)) errors[t] = "a new buffer was not zero";
          std::memset(b.data(), fill, n);
          live.emplace_back(std::move(b), fill);
        }
        if (live.size() > 16 || rng() % 2 == 0) {
          const size_t victim = rng() % live.size();
          const auto& [buffer, expected] = live[victim];
          for (size_t k = 0; k < buffer.size(); ++k) {
            if (buffer.data()[k] != expected) {
              errors[t] = "a buffer was overwritten by another";
              break;
            }
          }
          live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
  EXPECT_EQ(GetSecureMemoryStats().in_use_bytes, base);
}

TEST(SecureArenaTest, ReadOnlyCopyIsReadableAndWipedOnFree) {
  const std::string key(32, 'm');
  SecureBuffer material = SecureBuffer::ReadOnlyCopy(key);
  EXPECT_EQ(material.view(), key);
  EXPECT_FALSE(material.dedicated());
  const volatile uint8_t* slot = material.data();
  material = SecureBuffer();
  EXPECT_TRUE(AllZero(slot, 32));  // read-only memory stays readable
  SecureBuffer big = SecureBuffer::ReadOnlyCopy(std::string(100000, 'b'));
  EXPECT_EQ(big.view(), std::string(100000, 'b'));
}

using SecureArenaDeathTest = ::testing::Test;

TEST_F(SecureArenaDeathTest, WriteToReadOnlyCopyFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SecureBuffer b = SecureBuffer::ReadOnlyCopy("material");
        volatile uint8_t* p = b.data();
        p[0] = 1;
      },
      "");
  EXPECT_DEATH(
      {
        SecureBuffer b = SecureBuffer::ReadOnlyCopy(std::string(70000, 'x'));  // own region
        volatile uint8_t* p = b.data();
        p[0] = 1;
      },
      "");
}

TEST_F(SecureArenaDeathTest, RegionsEndInGuardPages) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SecureArena arena;
        SecureBlock block = arena.Allocate(32);  // the first slot of the first region
        volatile uint8_t* p = block.data;
        p[-1] = 1;
      },
      "");
  EXPECT_DEATH(
      {
        SecureArena arena;
        SecureBlock block = arena.Allocate(70000);
        volatile uint8_t* p = block.data;
        p[(70000 + Page() - 1) / Page() * Page()] = 1;  // first byte past the region
      },
      "");
}

// Drops CAP_IPC_LOCK (root's way around RLIMIT_MEMLOCK) from this process.
bool DropIpcLockCapability() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  const unsigned mask = 1u << (CAP_IPC_LOCK % 32);
  data[CAP_IPC_LOCK / 32].effective &= ~mask;
  data[CAP_IPC_LOCK / 32].permitted &= ~mask;
  data[CAP_IPC_LOCK / 32].inheritable &= ~mask;
  return ::syscall(SYS_capset, &header, data) == 0;
}

void LockFailureChild() {
  if (!DropIpcLockCapability()) ChildFail("capset failed");
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_MEMLOCK, &none) != 0) ChildFail("setrlimit failed");
  {  // The premise: mlock is refused now.
    void* probe =
        ::mmap(nullptr, Page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED) ChildFail("mmap failed");
    if (::mlock(probe, Page()) == 0) ChildFail("mlock still works without CAP_IPC_LOCK");
    ::munmap(probe, Page());
  }
  const SecureMemoryStats process_before = GetSecureMemoryStats();

  SecureArena arena;  // a fresh arena: its first block maps and locks a region
  SecureBlock block = arena.Allocate(32);
  if (block.data == nullptr || block.kind != SecureBlock::Kind::kSlot) ChildFail("no slot");
  if (!AllZero(block.data, 32)) ChildFail("slot not zero");
  std::memset(block.data, 7, 32);
  SecureMemoryStats s = arena.Stats();
  if (s.lock_failures != 1) ChildFail("lock_failures is " + std::to_string(s.lock_failures));
  if (s.unlocked_bytes != s.mapped_bytes || s.mapped_bytes == 0) ChildFail("unlocked_bytes");
  if (s.fallback_allocations != 0) ChildFail("a fallback allocation");
  arena.Free(block);

  // Through SecureBuffer: above 64 KiB a buffer maps (and tries to lock) a
  // region of its own, freed with it.
  {
    SecureBuffer big = SecureBuffer::Allocate(100000);
    if (big.view() != std::string(100000, '\0')) ChildFail("big buffer not zero");
    const SecureMemoryStats during = GetSecureMemoryStats();
    if (during.lock_failures != process_before.lock_failures + 1) {
      ChildFail("process lock_failures did not rise");
    }
    if (during.unlocked_bytes < process_before.unlocked_bytes + 100000) {
      ChildFail("process unlocked_bytes did not rise");
    }
  }
  if (GetSecureMemoryStats().unlocked_bytes != process_before.unlocked_bytes) {
    ChildFail("unlocked_bytes not given back with the region");
  }
  ChildOk();
}

TEST_F(SecureArenaDeathTest, MlockFailureIsCountedAndLoggedAndAllocationSucceeds) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The warning is logged once per process, then the child checks the rest.
  EXPECT_EXIT(LockFailureChild(), ::testing::ExitedWithCode(0),
              "mlock of secure memory failed.*child ok");
}

void MapExhaustionChild(long max_map_count) {
  // Heap room that needs no new mapping once none is left: no mmap'd malloc
  // chunks, and 64 MiB of free space at the top of the heap that stays.
  ::mallopt(M_MMAP_THRESHOLD, 16 << 20);
  ::mallopt(M_TOP_PAD, 64 << 20);
  std::vector<void*> maps;
  maps.reserve(static_cast<size_t>(max_map_count) + 1000);
  void* room = std::malloc(8 << 20);
  std::memset(room, 1, 8 << 20);
  std::free(room);
  // Abseil's mutexes (with deadlock detection, as Debian builds them) map
  // memory the first time each one is locked: the arenas' locks are taken
  // in their constructors, the log's by a first line.
  SecureArena arena;
  const uint64_t fallbacks = GetSecureMemoryStats().fallback_allocations;
  log::Info("test", "taking every memory mapping the kernel allows");

  // Take every mapping the kernel allows (alternate protections so that
  // neighbours never merge).
  for (;;) {
    const int prot = maps.size() % 2 == 0 ? PROT_READ : PROT_NONE;
    void* p = ::mmap(nullptr, Page(), prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    maps.push_back(p);
  }
  if (errno != ENOMEM) ChildFail("mmap failed otherwise than ENOMEM");

  SecureBlock block = arena.Allocate(32);
  if (block.data == nullptr) ChildFail("no memory");
  if (block.kind != SecureBlock::Kind::kHeap) ChildFail("not the heap fallback");
  if (!AllZero(block.data, 32)) ChildFail("fallback not zero");
  std::memset(block.data, 9, 32);
  SecureMemoryStats s = arena.Stats();
  if (s.fallback_allocations != 1) ChildFail("fallback_allocations");
  if (s.fallback_bytes != Page() || s.in_use_bytes != Page()) ChildFail("fallback bytes");
  if (s.regions != 0) ChildFail("a region was mapped");
  // mlock was tried: it needs a mapping of its own too, so it fails here.
  if (block.locked != (s.lock_failures == 0)) ChildFail("lock result not counted");
  arena.Free(block);
  s = arena.Stats();
  if (s.fallback_bytes != 0 || s.in_use_bytes != 0 || s.unlocked_bytes != 0) {
    ChildFail("fallback not given back");
  }

  // SecureBuffer::Allocate does not abort either.
  SecureBuffer big = SecureBuffer::Allocate(100000);
  if (big.view() != std::string(100000, '\0')) ChildFail("big buffer not zero");
  if (GetSecureMemoryStats().fallback_allocations != fallbacks + 1) {
    ChildFail("process fallback_allocations did not rise");
  }
  ChildOk();
}

TEST_F(SecureArenaDeathTest, NoMappingLeftFallsBackToTheHeap) {
  std::ifstream limit_file("/proc/sys/vm/max_map_count");
  long limit = 0;
  limit_file >> limit;
  // Any limit: taking a mapping costs about a microsecond (never skipped, so
  // a machine with a large limit runs it too, only longer).
  ASSERT_GT(limit, 0) << "/proc/sys/vm/max_map_count is unreadable";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(MapExhaustionChild(limit), ::testing::ExitedWithCode(0),
              "could not be mapped.*child ok");
}

}  // namespace
}  // namespace coffer::crypto
