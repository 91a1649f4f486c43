// Verify: recomputes the hash chain over a list of audit files.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/record_format.h"

namespace coffer::audit {
namespace {

absl::Status ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError(std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::UnavailableError("read error");
  *out = std::move(buf).str();
  return absl::OkStatus();
}

}  // namespace

VerifyResult Verify(const std::vector<std::string>& files) {
  VerifyResult result;
  auto broken = [&](const std::string& file, std::string reason) {
    result.ok = false;
    result.bad_record = result.records + 1;
    result.file = file;
    result.reason = std::move(reason);
    return result;
  };
  if (files.empty()) return broken("", "no files");

  uint64_t last_seq = 0;
  std::string last_hash;
  for (size_t f = 0; f < files.size(); ++f) {
    const std::string& file = files[f];
    std::string content;
    if (absl::Status s = ReadWholeFile(file, &content); !s.ok()) {
      return broken(file, absl::StrCat("cannot read: ", s.message()));
    }
    if (content.empty()) return broken(file, f == 0 ? "missing genesis" : "empty file");
    size_t pos = 0;
    for (size_t index = 0; pos < content.size(); ++index) {
      const size_t nl = content.find('\n', pos);
      if (nl == std::string::npos) return broken(file, "incomplete last line");
      const absl::string_view line(content.data() + pos, nl - pos);
      pos = nl + 1;

      absl::StatusOr<ChainLink> link = CheckLine(line);
      if (!link.ok()) return broken(file, std::string(link.status().message()));
      if (result.records == 0) {
        if (link->type != kGenesisType || link->seq != 0 || link->prev != kZeroHash) {
          return broken(file, "missing genesis");
        }
      } else {
        if (link->type == kGenesisType) return broken(file, "unexpected genesis");
        if (index == 0 && link->type != kContinueType) {
          return broken(file, "missing continue record");
        }
        if (index != 0 && link->type == kContinueType) {
          return broken(file, "unexpected continue record");
        }
        if (link->prev != last_hash) return broken(file, "prev does not link");
        if (link->seq != last_seq + 1) return broken(file, "sequence gap");
      }
      last_seq = link->seq;
      last_hash = std::move(link->hash);
      ++result.records;
    }
  }
  result.ok = true;
  return result;
}

}  // namespace coffer::audit
