#include "services/kms/root_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/crypto/random.h"

namespace coffer::kms {
namespace {

absl::Status Unusable(const std::string& path, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat("root key file ", path, ": ", why));
}

// Whether this process belongs to group `gid` (its own or a supplementary
// one, such as a Kubernetes pod's fsGroup).
bool InOwnGroups(gid_t gid) {
  if (gid == ::getegid()) return true;
  const int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  const int got = ::getgroups(n, groups.data());
  for (int i = 0; i < got; ++i) {
    if (groups[static_cast<size_t>(i)] == gid) return true;
  }
  return false;
}

class FileSource : public RootKeySource {
 public:
  explicit FileSource(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<crypto::SecureBuffer> Load() override {
    // Kubernetes mounts a Secret's file as a symlink into a hidden
    // directory beside it: the file opened is the one the links end at.
    char resolved_path[PATH_MAX];
    if (::realpath(path_.c_str(), resolved_path) == nullptr) {
      return Unusable(path_, std::strerror(errno));
    }
    int fd = ::open(resolved_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return Unusable(path_, std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Unusable(path_, std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return Unusable(path_, "not a regular file");
    }
    // Others may do nothing with it, the group at most read it, and only a
    // group this process is in (Kubernetes gives a Secret's files the
    // pod's fsGroup and mode 0440 whatever defaultMode says).
    if ((st.st_mode & 027) != 0 || ((st.st_mode & 040) != 0 && !InOwnGroups(st.st_gid))) {
      ::close(fd);
      return Unusable(path_, "readable or writable by group or others; chmod 600 it");
    }
    if (st.st_size != static_cast<off_t>(kRootKeyBytes)) {
      ::close(fd);
      return Unusable(path_, absl::StrCat("must hold exactly ", kRootKeyBytes, " bytes"));
    }
    // A dedicated allocation (guard pages and a canary of its own), read-only
    // once filled.
    absl::StatusOr<crypto::SecureBuffer> allocated =
        crypto::SecureBuffer::AllocateDedicated(kRootKeyBytes);
    if (!allocated.ok()) {
      ::close(fd);
      return allocated.status();
    }
    crypto::SecureBuffer key = std::move(allocated).value();
    size_t done = 0;
    while (done < kRootKeyBytes) {
      ssize_t n = ::read(fd, key.data() + done, kRootKeyBytes - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        return Unusable(path_, "short read");
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    key.MakeReadOnly();
    return key;
  }

  std::string Describe() const override { return path_; }

 private:
  std::string path_;
};

class DevelopmentSource : public RootKeySource {
 public:
  explicit DevelopmentSource(std::string data_dir) : path_(data_dir + "/root.key"), file_(path_) {}

  absl::StatusOr<crypto::SecureBuffer> Load() override {
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      crypto::SecureBuffer key = crypto::SecureBuffer::Random(kRootKeyBytes);
      bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
                ::fsync(fd) == 0;
      ::close(fd);
      if (!ok) {
        ::unlink(path_.c_str());
        return Unusable(path_, "could not write a new development root key");
      }
    } else if (errno != EEXIST) {
      return Unusable(path_, std::strerror(errno));
    }
    return file_.Load();
  }

  std::string Describe() const override { return absl::StrCat(path_, " (development)"); }

 private:
  std::string path_;
  FileSource file_;
};

}  // namespace

std::unique_ptr<RootKeySource> FileRootKeySource(std::string path) {
  return std::make_unique<FileSource>(std::move(path));
}

std::unique_ptr<RootKeySource> DevelopmentRootKeySource(std::string data_dir) {
  return std::make_unique<DevelopmentSource>(std::move(data_dir));
}

}  // namespace coffer::kms
