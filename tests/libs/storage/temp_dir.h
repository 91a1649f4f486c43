// temp_dir.h: a fresh directory under /tmp for one test's real RocksDB.
//
//   class MyTest : public ::testing::Test {
//     coffer::storage::testing::TempDir dir_;   // removed on destruction
//   };
//   opts.path = dir_.path() + "/db";
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "gtest/gtest.h"

namespace coffer::storage::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/coffer-storage-test-XXXXXX";
    char* made = mkdtemp(tmpl);
    EXPECT_NE(made, nullptr) << "mkdtemp failed";
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace coffer::storage::testing
