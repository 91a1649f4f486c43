#include "tools/cofferctl/audit_command.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/audit/audit_log.h"
#include "tests/testing/test_env.h"

namespace coffer::cofferctl {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A closed log of genesis + 3 records; returns its file.
std::string MakeAuditLog(const std::string& dir) {
  audit::AuditOptions opts;
  opts.dir = dir;
  opts.service = "store";
  auto log = audit::AuditLog::Open(opts);
  EXPECT_TRUE(log.ok()) << log.status();
  if (!log.ok()) return "";
  for (const char* id : {"r1", "r2", "r3"}) {
    audit::Record r;
    r.request_id = id;
    r.principal = "spiffe://coffer.local/app/catagram";
    r.action = "secretsmanager:GetSecretValue";
    r.resource = "arn:coffer:secretsmanager:local:000000000000:secret:app/db";
    r.code = "OK";
    r.peer = "ipv4:127.0.0.1:5000";
    EXPECT_TRUE((*log)->AppendAndWait(r).ok());
  }
  return (*log)->current_file();
}

// Changes "r2" to "x2" in the third line (record 3).
void Tamper(const std::string& file) {
  std::string content = testing::ReadFile(file);
  const size_t at = content.find("\"request_id\":\"r2\"");
  ASSERT_NE(at, std::string::npos);
  content[at + 14] = 'x';
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
}

struct Ran {
  int code;
  std::string out;
  std::string err;
};
Ran RunAuditArgs(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = RunAudit(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(AuditCommandTest, VerifiesGoodAndTamperedFiles) {
  testing::TempDir tmp;
  const std::string file = MakeAuditLog(tmp.path());
  Ran good = RunAuditArgs({"verify", file});
  EXPECT_EQ(good.code, 0);
  EXPECT_EQ(good.out, "ok: 4 records in 1 files\n");
  EXPECT_THAT(good.err, IsEmpty());

  Tamper(file);
  Ran bad = RunAuditArgs({"verify", file});
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err, "broken: record 3 (" + file + "): hash mismatch\n");
  EXPECT_THAT(bad.out, IsEmpty());

  Ran missing = RunAuditArgs({"verify", tmp.Join("nope.jsonl")});
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("broken: record 1"));
  EXPECT_THAT(missing.err, HasSubstr("cannot read"));
}

TEST(AuditCommandTest, UsageErrors) {
  EXPECT_EQ(RunAuditArgs({"verify"}).code, 252);
  EXPECT_THAT(RunAuditArgs({"verify"}).err, HasSubstr("needs at least one FILE"));
  EXPECT_EQ(RunAuditArgs({"check", "x"}).code, 252);
  EXPECT_EQ(RunAuditArgs({"verify", "--strict", "x"}).code, 252);
  EXPECT_THAT(RunAuditArgs({"check", "x"}).err, HasSubstr("UsageError: audit: unknown operation"));
  Ran help = RunAuditArgs({});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("Usage: cofferctl audit verify FILE..."));
  EXPECT_EQ(RunAuditArgs({"verify", "--help"}).code, 0);
  // After "--" a name starting with '-' is a file.
  Ran dash = RunAuditArgs({"verify", "--", "-missing"});
  EXPECT_EQ(dash.code, 1);
  EXPECT_THAT(dash.err, HasSubstr("(-missing)"));
}

TEST(AuditCommandTest, TheBinaryExitsZeroOneOr252) {
  testing::TempDir tmp;
  const std::string file = MakeAuditLog(tmp.path());
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), testing::BinaryPath("cofferctl"));
    testing::Subprocess cofferctl(args);
    EXPECT_TRUE(cofferctl.Start().ok());
    const int code = cofferctl.Wait();
    return std::make_pair(code, cofferctl.Output());
  };
  auto [ok_code, ok_out] = run({"audit", "verify", file});
  EXPECT_EQ(ok_code, 0) << ok_out;
  EXPECT_THAT(ok_out, HasSubstr("ok: 4 records in 1 files"));
  Tamper(file);
  auto [bad_code, bad_out] = run({"audit", "verify", file});
  EXPECT_EQ(bad_code, 1) << bad_out;
  EXPECT_THAT(bad_out, HasSubstr("broken: record 3"));
  EXPECT_EQ(run({"audit", "verify"}).first, 252);
}

}  // namespace
}  // namespace coffer::cofferctl
