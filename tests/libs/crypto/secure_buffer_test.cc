#include "libs/crypto/secure_buffer.h"

#include <cstring>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace coffer::crypto {
namespace {

TEST(SecureBufferTest, DefaultIsEmpty) {
  SecureBuffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.view(), "");
}

TEST(SecureBufferTest, ZeroSizeAllocatesNothing) {
  SecureBuffer a = SecureBuffer::Allocate(0);
  SecureBuffer r = SecureBuffer::Random(0);
  SecureBuffer c = SecureBuffer::Copy("");
  for (SecureBuffer* b : {&a, &r, &c}) {
    EXPECT_TRUE(b->empty());
    EXPECT_EQ(b->data(), nullptr);
    // Protection changes on an empty buffer are no-ops.
    b->MakeReadOnly();
    b->MakeNoAccess();
    b->MakeReadWrite();
  }
}

TEST(SecureBufferTest, AllocateIsZeroed) {
  SecureBuffer b = SecureBuffer::Allocate(100);
  ASSERT_EQ(b.size(), 100u);
  EXPECT_EQ(b.view(), std::string(100, '\0'));
}

TEST(SecureBufferTest, CopyHoldsTheBytes) {
  const std::string bytes("k\0e\xffy", 5);
  SecureBuffer b = SecureBuffer::Copy(bytes);
  EXPECT_EQ(b.view(), bytes);
}

TEST(SecureBufferTest, RandomBuffersDiffer) {
  SecureBuffer a = SecureBuffer::Random(32);
  SecureBuffer b = SecureBuffer::Random(32);
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), 32u);
  EXPECT_NE(a.view(), b.view());
  EXPECT_NE(a.view(), std::string(32, '\0'));
}

TEST(SecureBufferTest, MoveConstructTransfersOwnership) {
  SecureBuffer a = SecureBuffer::Copy("secret");
  const uint8_t* p = a.data();
  SecureBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.view(), "secret");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.data(), nullptr);
}

TEST(SecureBufferTest, MoveAssignReleasesOldAndTakesNew) {
  SecureBuffer a = SecureBuffer::Copy("first");
  SecureBuffer b = SecureBuffer::Copy("second");
  b = std::move(a);
  EXPECT_EQ(b.view(), "first");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  SecureBuffer& self = b;
  b = std::move(self);  // self-move leaves it intact
  EXPECT_EQ(b.view(), "first");
  b = SecureBuffer();
  EXPECT_TRUE(b.empty());
}

// A dedicated buffer (its own sodium_malloc allocation) filled with `bytes`.
SecureBuffer Dedicated(absl::string_view bytes) {
  absl::StatusOr<SecureBuffer> b = SecureBuffer::AllocateDedicated(bytes.size());
  EXPECT_TRUE(b.ok()) << b.status();
  std::memcpy(b->data(), bytes.data(), bytes.size());
  return std::move(b).value();
}

TEST(SecureBufferTest, DedicatedBuffers) {
  absl::StatusOr<SecureBuffer> b = SecureBuffer::AllocateDedicated(100);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->dedicated());
  EXPECT_EQ(b->view(), std::string(100, '\0'));
  SecureBuffer moved = std::move(b).value();
  EXPECT_TRUE(moved.dedicated());
  absl::StatusOr<SecureBuffer> empty = SecureBuffer::AllocateDedicated(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(empty->dedicated());
  EXPECT_FALSE(SecureBuffer::Allocate(32).dedicated());
}

TEST(SecureBufferTest, ReadOnlyIsStillReadable) {
  SecureBuffer b = Dedicated("read me");
  b.MakeReadOnly();
  EXPECT_EQ(b.view(), "read me");
  b.MakeReadWrite();
  b.data()[0] = 'R';
  EXPECT_EQ(b.view(), "Read me");
}

TEST(SecureBufferTest, NoAccessThenReadWriteRestoresContents) {
  SecureBuffer b = Dedicated("hidden");
  b.MakeNoAccess();
  b.MakeReadWrite();
  EXPECT_EQ(b.view(), "hidden");
}

TEST(SecureBufferTest, ProtectedBufferDestroysCleanly) {
  SecureBuffer b = Dedicated(std::string(64, 'b'));
  b.MakeReadOnly();
  SecureBuffer c = Dedicated(std::string(64, 'c'));
  c.MakeNoAccess();
  // Destructors must cope with protected memory (sodium_free unprotects).
}

TEST(SecureBufferTest, ProtectionIsANoOpOnArenaBuffers) {
  // Arena slots share pages: protecting one would protect its neighbours,
  // so the calls do nothing (documented); the buffer stays writable.
  SecureBuffer b = SecureBuffer::Copy("shared page");
  b.MakeNoAccess();
  b.MakeReadOnly();
  b.data()[0] = 'S';
  EXPECT_EQ(b.view(), "Shared page");
}

using SecureBufferDeathTest = ::testing::Test;

TEST_F(SecureBufferDeathTest, WriteToReadOnlyFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SecureBuffer b = Dedicated(std::string(16, 'x'));
        b.MakeReadOnly();
        volatile uint8_t* p = b.data();
        p[0] = 1;
      },
      "");
}

TEST_F(SecureBufferDeathTest, ReadOfNoAccessFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SecureBuffer b = Dedicated(std::string(16, 'x'));
        b.MakeNoAccess();
        volatile const uint8_t* p = b.data();
        uint8_t v = p[0];
        (void)v;
      },
      "");
}

TEST(WipeTest, ZeroesMemory) {
  char buf[8] = {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'};
  Wipe(buf, sizeof buf);
  EXPECT_EQ(std::string(buf, sizeof buf), std::string(8, '\0'));
  Wipe(nullptr, 0);  // harmless
}

TEST(ConstantTimeEqualsTest, Compares) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "xbc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace coffer::crypto
