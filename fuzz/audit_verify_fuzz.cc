// audit_verify_fuzz: audit::Verify and the flat-record parser on fuzzed
// bytes, three ways:
//  1. the input as one audit file, and each of its lines through
//     ParseFlatObject and CheckLine;
//  2. the input "resealed": each line's hash (and its "prev") recomputed so
//     that the chain holds, a new file starting at each "continue" line —
//     this gets past the hash check to the linking rules (genesis, continue
//     records, sequence numbers);
//  3. the writer against the reader: a log written with GenesisBody /
//     RecordBody / ContinueBody / SealLine from fields cut out of the input
//     (at NUL bytes) must verify, every line must pass CheckLine.
// Properties: Verify's result is consistent (ok, or the first bad record
// after `records` good ones, with a reason); CheckLine fails only with the
// three documented reasons; a parsed flat object written back parses to
// the same fields.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_check.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/record_format.h"

namespace {

namespace audit = coffer::audit;

// A private directory for the files Verify reads, removed at exit.
const std::string& Dir() {
  static const std::string* const kDir = [] {
    // $TMPDIR, else /dev/shm (memory: several files per input), else /tmp.
    const char* tmp = getenv("TMPDIR");
    if (tmp == nullptr || *tmp == '\0') tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string tmpl = absl::StrCat(tmp, "/coffer-audit-fuzz-XXXXXX");
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
    auto* dir = new std::string(tmpl);
    atexit([] {
      for (int i = 1; i <= 64; ++i) unlink(audit::AuditFileName(Dir() + "/store", i).c_str());
      rmdir(Dir().c_str());
    });
    return dir;
  }();
  return *kDir;
}

void WriteFile(const std::string& path, absl::string_view content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0, "open");
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    FUZZ_CHECK(n > 0, "write");
    done += static_cast<size_t>(n);
  }
  close(fd);
}

size_t CountLines(const std::vector<std::string>& files) {
  size_t n = 0;
  for (const std::string& f : files) n += std::count(f.begin(), f.end(), '\n');
  return n;
}

audit::VerifyResult VerifyContents(const std::vector<std::string>& contents) {
  std::vector<std::string> paths;
  for (size_t i = 0; i < contents.size() && i < 64; ++i) {
    paths.push_back(audit::AuditFileName(Dir() + "/store", i + 1));
    WriteFile(paths.back(), contents[i]);
  }
  audit::VerifyResult r = audit::Verify(paths);
  if (r.ok) {
    FUZZ_CHECK(r.bad_record == 0 && r.reason.empty(), "an ok result names nothing");
    FUZZ_CHECK(r.records == CountLines(contents), "ok counts every line");
  } else {
    FUZZ_CHECK(r.bad_record == r.records + 1, "the bad record follows the good ones");
    FUZZ_CHECK(!r.reason.empty() && !r.file.empty(), "a failure names file and reason");
    FUZZ_CHECK(r.records <= CountLines(contents), "records <= lines");
  }
  return r;
}

std::vector<absl::string_view> Lines(absl::string_view text) {
  std::vector<absl::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == absl::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

void AppendQuoted(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
      out->append(buf);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// 1. One line on its own.
void CheckOneLine(absl::string_view line) {
  absl::StatusOr<std::vector<audit::FlatField>> fields = audit::ParseFlatObject(line);
  absl::StatusOr<audit::ChainLink> link = audit::CheckLine(line);
  if (link.ok()) {
    FUZZ_CHECK(fields.ok(), "CheckLine accepts only flat objects");
    FUZZ_CHECK(link->type.empty() || link->type == audit::kGenesisType ||
                   link->type == audit::kContinueType,
               "link type");
    FUZZ_CHECK(link->hash == audit::ChainHash(link->prev, line.substr(0, line.rfind(",\"hash\":"))),
               "the hash is the hash of the body");
  } else {
    const absl::string_view m = link.status().message();
    FUZZ_CHECK(m == "not JSON" || m == "unexpected fields" || m == "hash mismatch",
               "CheckLine reasons");
  }
  if (!fields.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(fields.status()), "ParseFlatObject error code");
    return;
  }
  std::string again = "{";
  for (size_t i = 0; i < fields->size(); ++i) {
    const audit::FlatField& f = (*fields)[i];
    if (i > 0) again.push_back(',');
    AppendQuoted(f.key, &again);
    again.push_back(':');
    if (f.is_number) {
      again += f.value;
    } else {
      AppendQuoted(f.value, &again);
    }
  }
  again.push_back('}');
  absl::StatusOr<std::vector<audit::FlatField>> reparsed = audit::ParseFlatObject(again);
  FUZZ_CHECK(reparsed.ok() && reparsed->size() == fields->size(), "written back, it parses");
  for (size_t i = 0; i < fields->size(); ++i) {
    const audit::FlatField& a = (*fields)[i];
    const audit::FlatField& b = (*reparsed)[i];
    FUZZ_CHECK(a.key == b.key && a.value == b.value && a.is_number == b.is_number,
               "the same fields");
  }
}

// 2. The input's lines with their chain repaired.
void VerifyResealed(const std::vector<absl::string_view>& lines) {
  std::vector<std::string> files;
  std::string prev = audit::kZeroHash;
  for (absl::string_view line : lines) {
    std::string body(line.substr(0, std::min(line.size(), line.rfind(",\"hash\":\""))));
    const std::string kPrevKey = "\"prev\":\"";
    size_t at = body.rfind(kPrevKey);
    if (at != std::string::npos && at + kPrevKey.size() + 64 <= body.size()) {
      body.replace(at + kPrevKey.size(), 64, prev);
    }
    std::string hash;
    std::string sealed = audit::SealLine(body, prev, &hash);
    prev = hash;
    if (files.empty() || body.find("\"type\":\"continue\"") != std::string::npos) {
      files.emplace_back();
    }
    files.back() += sealed;
    files.back() += '\n';
  }
  if (!files.empty()) VerifyContents(files);
}

// 3. A log written by the library from fuzzed fields.
void WriteAndVerify(absl::string_view text) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < 9; ++i) {
    size_t nul = text.find('\0');
    parts.emplace_back(text.substr(0, nul));
    text = nul == absl::string_view::npos ? absl::string_view() : text.substr(nul + 1);
  }
  const std::string service = parts[8].empty() ? std::string("store") : parts[8];
  const absl::Time t0 = absl::FromUnixMicros(1796024417123456 + static_cast<int64_t>(text.size()));
  audit::Record r;
  r.time = t0;
  r.request_id = parts[0];
  r.principal = parts[1];
  r.action = parts[2];
  r.resource = parts[3];
  r.code = parts[4];
  r.peer = parts[5];
  r.detail = parts[6];

  std::string hash = audit::kZeroHash;
  std::vector<std::string> files(2);
  std::vector<audit::ChainLink> expected;
  auto add = [&](int file, const std::string& body, uint64_t seq, const char* type) {
    std::string prev = hash;
    std::string line = audit::SealLine(body, prev, &hash);
    absl::StatusOr<audit::ChainLink> link = audit::CheckLine(line);
    FUZZ_CHECK(link.ok(), "a written line passes CheckLine");
    FUZZ_CHECK(link->seq == seq && link->type == type && link->prev == prev && link->hash == hash,
               "CheckLine reads what was written");
    files[file] += line + "\n";
  };
  add(0, audit::GenesisBody(t0, service), 0, audit::kGenesisType);
  add(0, audit::RecordBody(1, service, r, hash), 1, "");
  r.detail.clear();
  add(0, audit::RecordBody(2, service, r, hash), 2, "");
  add(1, audit::ContinueBody(3, t0, service, parts[7], hash), 3, audit::kContinueType);
  add(1, audit::RecordBody(4, service, r, hash), 4, "");
  audit::VerifyResult v = VerifyContents(files);
  FUZZ_CHECK(v.ok && v.records == 5, v.reason.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text = coffer::fuzz::AsText(data, size);
  VerifyContents({std::string(text)});
  std::vector<absl::string_view> lines = Lines(text);
  if (lines.size() > 64) lines.resize(64);
  for (absl::string_view line : lines) CheckOneLine(line);
  VerifyResealed(lines);
  WriteAndVerify(text);
  return 0;
}
