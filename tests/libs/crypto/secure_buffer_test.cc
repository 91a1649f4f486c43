#include "libs/crypto/secure_buffer.h"

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

TEST(SecureBufferTest, ReadOnlyIsStillReadable) {
  SecureBuffer b = SecureBuffer::Copy("read me");
  b.MakeReadOnly();
  EXPECT_EQ(b.view(), "read me");
  b.MakeReadWrite();
  b.data()[0] = 'R';
  EXPECT_EQ(b.view(), "Read me");
}

TEST(SecureBufferTest, NoAccessThenReadWriteRestoresContents) {
  SecureBuffer b = SecureBuffer::Copy("hidden");
  b.MakeNoAccess();
  b.MakeReadWrite();
  EXPECT_EQ(b.view(), "hidden");
}

TEST(SecureBufferTest, ReadOnlyBufferDestroysCleanly) {
  SecureBuffer b = SecureBuffer::Random(64);
  b.MakeReadOnly();
  SecureBuffer c = SecureBuffer::Random(64);
  c.MakeNoAccess();
  // Destructors must cope with protected memory (sodium_free unprotects).
}

using SecureBufferDeathTest = ::testing::Test;

TEST_F(SecureBufferDeathTest, WriteToReadOnlyFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SecureBuffer b = SecureBuffer::Allocate(16);
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
        SecureBuffer b = SecureBuffer::Allocate(16);
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
