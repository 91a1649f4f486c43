// End-to-end tests of the parameter store of the real coffer-store binary,
// backed by the real coffer-kms, over mutual TLS (the watch streams are in
// watch_e2e_test.cc; the shared fixture in params_e2e_fixture.h).
//
// Suites:
//   ParamsE2ETest             one KMS+store pair for the suite: CRUD rules,
//                             paging, cofferctl.
//   ParamsSecureStringE2ETest its own pair (the test stops it to inspect the
//                             data directories).
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "tests/integration/kms_store.h"
#include "tests/integration/params_e2e_fixture.h"
#include "tests/testing/test_env.h"

namespace coffer::params_e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

// ---------------------------------------------------------------------------
// CRUD, paging and cofferctl on one shared pair.

class ParamsE2ETest : public SharedServicesTest<ParamsE2ETest> {};

TEST_F(ParamsE2ETest, StringAndStringListVersionsSelectorsAndErrors) {
  // String, create.
  pm::PutParameterResponse put;
  ASSERT_TRUE(
      TryPut("/app/db/url", "postgres://db:5432/a", pm::PARAMETER_TYPE_STRING, false, &put).ok());
  EXPECT_EQ(put.version(), 1);
  EXPECT_EQ(put.tier(), pm::PARAMETER_TIER_STANDARD);
  pm::Parameter p;
  ASSERT_TRUE(Get("/app/db/url", &p).ok());
  EXPECT_EQ(p.name(), "/app/db/url");
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(p.value(), "postgres://db:5432/a");
  EXPECT_EQ(p.version(), 1);
  EXPECT_EQ(p.selector(), "");
  EXPECT_EQ(p.data_type(), "text");
  EXPECT_EQ(p.arn(), "arn:coffer:ssm:local:000000000000:parameter/app/db/url");
  EXPECT_GT(p.last_modified_date().seconds(), 0);
  // with_decryption is ignored for String.
  EXPECT_EQ(Value("/app/db/url", /*with_decryption=*/true), "postgres://db:5432/a");

  // Without overwrite: ParameterAlreadyExists, value untouched.
  grpc::Status s = TryPut("/app/db/url", "other", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterAlreadyExists);
  EXPECT_EQ(Value("/app/db/url"), "postgres://db:5432/a");

  // Overwrite without a type keeps the type; each put is version + 1.
  ASSERT_TRUE(TryPut("/app/db/url", "postgres://db:5432/b", pm::PARAMETER_TYPE_UNSPECIFIED,
                     /*overwrite=*/true, &put)
                  .ok());
  EXPECT_EQ(put.version(), 2);
  EXPECT_EQ(Put("/app/db/url", "postgres://db:5432/c", pm::PARAMETER_TYPE_STRING, true), 3);
  ASSERT_TRUE(Get("/app/db/url", &p).ok());
  EXPECT_EQ(p.version(), 3);
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(p.value(), "postgres://db:5432/c");

  // Overwrite with tags: ValidationException (AWS: use AddTagsToResource).
  s = TryPut("/app/db/url", "x", pm::PARAMETER_TYPE_STRING, true, nullptr,
             [](pm::PutParameterRequest& r) {
               auto* t = r.add_tags();
               t->set_key("k");
               t->set_value("v");
             });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  // Creating without a type: ValidationException.
  s = TryPut("/app/untyped", "x", pm::PARAMETER_TYPE_UNSPECIFIED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  EXPECT_EQ(Value("/app/untyped"), absl::StrCat("<error: ", grpc::StatusCode::NOT_FOUND, " ",
                                                reason::kParameterNotFound, ">"));

  // Selectors: version and label.
  ASSERT_TRUE(Get("/app/db/url:1", &p).ok());
  EXPECT_EQ(p.value(), "postgres://db:5432/a");
  EXPECT_EQ(p.version(), 1);
  EXPECT_EQ(p.selector(), ":1");
  EXPECT_EQ(Value("/app/db/url:2"), "postgres://db:5432/b");
  pm::LabelParameterVersionResponse labelled =
      Label("/app/db/url", 1, {"stable", "1bad", "awsx", "release-1.0"});
  EXPECT_EQ(labelled.parameter_version(), 1);
  EXPECT_THAT(labelled.invalid_labels(), UnorderedElementsAre("1bad", "awsx"));
  ASSERT_TRUE(Get("/app/db/url:stable", &p).ok());
  EXPECT_EQ(p.value(), "postgres://db:5432/a");
  EXPECT_EQ(p.version(), 1);
  EXPECT_EQ(p.selector(), ":stable");
  EXPECT_EQ(Value("/app/db/url:release-1.0"), "postgres://db:5432/a");
  // Re-labelling moves the label; version 0 means the latest.
  labelled = Label("/app/db/url", 0, {"stable"});
  EXPECT_EQ(labelled.parameter_version(), 3);
  EXPECT_TRUE(labelled.invalid_labels().empty());
  EXPECT_EQ(Value("/app/db/url:stable"), "postgres://db:5432/c");
  EXPECT_EQ(Value("/app/db/url:release-1.0"), "postgres://db:5432/a");

  // History: every version, oldest first, with its labels.
  pm::GetParameterHistoryRequest hist;
  hist.set_name("/app/db/url");
  pm::GetParameterHistoryResponse history;
  ASSERT_TRUE(
      Invoke(params(), &pm::ParameterStore::Stub::GetParameterHistory, hist, &history).ok());
  ASSERT_EQ(history.parameters_size(), 3);
  EXPECT_EQ(history.parameters(0).version(), 1);
  EXPECT_EQ(history.parameters(0).value(), "postgres://db:5432/a");
  EXPECT_THAT(history.parameters(0).labels(), ElementsAre("release-1.0"));
  EXPECT_THAT(history.parameters(2).labels(), ElementsAre("stable"));

  // Unknown versions, labels and names.
  s = Get("/app/db/url:9", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterVersionNotFound);
  s = Get("/app/db/url:nolabel", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterVersionNotFound);
  s = Get("/app/db/none", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);
  pm::DeleteParameterRequest del;
  del.set_name("/app/db/none");
  pm::DeleteParameterResponse deleted;
  s = Invoke(params(), &pm::ParameterStore::Stub::DeleteParameter, del, &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);

  // StringList: comma-separated, returned as given.
  EXPECT_EQ(Put("/app/hosts", "a.example,b.example,c.example", pm::PARAMETER_TYPE_STRING_LIST), 1);
  ASSERT_TRUE(Get("/app/hosts", &p, true).ok());
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_STRING_LIST);
  EXPECT_EQ(p.value(), "a.example,b.example,c.example");

  // GetParameters: found ones plus invalid_parameters.
  pm::GetParametersRequest several;
  several.add_names("/app/hosts");
  several.add_names("/app/db/url:1");
  several.add_names("/app/missing");
  pm::GetParametersResponse got;
  ASSERT_TRUE(Invoke(params(), &pm::ParameterStore::Stub::GetParameters, several, &got).ok());
  std::map<std::string, std::string> values;
  for (const auto& q : got.parameters()) values[q.name() + q.selector()] = q.value();
  EXPECT_THAT(values,
              UnorderedElementsAre(std::make_pair("/app/hosts", "a.example,b.example,c.example"),
                                   std::make_pair("/app/db/url:1", "postgres://db:5432/a")));
  EXPECT_THAT(got.invalid_parameters(), ElementsAre("/app/missing"));

  // Names: 15 levels are fine, 16 are not.
  std::string fifteen, sixteen;
  for (int i = 1; i <= 15; ++i) absl::StrAppend(&fifteen, "/l", i);
  sixteen = fifteen + "/l16";
  EXPECT_EQ(Put(fifteen, "deep"), 1);
  EXPECT_EQ(Value(fifteen), "deep");
  s = TryPut(sixteen, "too deep", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), "HierarchyLevelLimitExceededException");
  // Reserved prefixes and a relative hierarchical name.
  s = TryPut("/aws/thing", "x", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  s = TryPut("SSMthing", "x", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  s = TryPut("app/relative", "x", pm::PARAMETER_TYPE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);

  // Delete: gone, and the name can be created again from version 1.
  Delete("/app/hosts");
  s = Get("/app/hosts", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);
  EXPECT_EQ(Put("/app/hosts", "d.example", pm::PARAMETER_TYPE_STRING_LIST), 1);
}

TEST_F(ParamsE2ETest, GetParametersByPathRecursiveAndOneLevelPagesWithoutGapsOrRepeats) {
  std::set<std::string> direct, nested;
  for (int i = 0; i < 25; ++i) direct.insert(absl::StrCat("/pg/a/p", i < 10 ? "0" : "", i));
  for (int i = 0; i < 8; ++i) nested.insert(absl::StrCat("/pg/a/sub/q", i));
  for (int i = 0; i < 7; ++i) nested.insert(absl::StrCat("/pg/a/sub/deeper/r", i));
  for (const auto& n : direct) Put(n, "v" + n);
  for (const auto& n : nested) Put(n, "v" + n);
  // Neighbours that must not show up: a sibling sharing the prefix, the parent.
  Put("/pg/ab/x", "sibling");
  Put("/pg/a-b", "sibling too");
  Put("/pg/top", "parent level");

  auto names = [](const std::vector<pm::Parameter>& ps) {
    std::vector<std::string> out;
    for (const auto& p : ps) out.push_back(p.name());
    return out;
  };
  auto no_repeats = [](const std::vector<std::string>& v) {
    return std::set<std::string>(v.begin(), v.end()).size() == v.size();
  };

  int pages = 0;
  std::vector<pm::Parameter> all = ByPath("/pg/a", /*recursive=*/true, false, 10, &pages);
  std::vector<std::string> all_names = names(all);
  EXPECT_TRUE(no_repeats(all_names)) << absl::StrJoin(all_names, " ");
  std::set<std::string> expected = direct;
  expected.insert(nested.begin(), nested.end());
  EXPECT_EQ(expected.size(), 40u);
  EXPECT_THAT(all_names, UnorderedElementsAreArray(expected));
  EXPECT_GE(pages, 4);
  for (const auto& p : all) EXPECT_EQ(p.value(), "v" + p.name());

  std::vector<std::string> one_level =
      names(ByPath("/pg/a", /*recursive=*/false, false, 10, &pages));
  EXPECT_TRUE(no_repeats(one_level)) << absl::StrJoin(one_level, " ");
  EXPECT_THAT(one_level, UnorderedElementsAreArray(direct));
  EXPECT_GE(pages, 3);
  // A trailing '/' is the same path; a smaller page size gives the same set.
  EXPECT_THAT(names(ByPath("/pg/a/", false, false, 7)), UnorderedElementsAreArray(direct));
  EXPECT_THAT(names(ByPath("/pg/a/sub", false, false, 3)),
              UnorderedElementsAre("/pg/a/sub/q0", "/pg/a/sub/q1", "/pg/a/sub/q2", "/pg/a/sub/q3",
                                   "/pg/a/sub/q4", "/pg/a/sub/q5", "/pg/a/sub/q6", "/pg/a/sub/q7"));

  // A path without a leading '/' and an out-of-range page size.
  pm::GetParametersByPathRequest bad;
  bad.set_path("pg/a");
  pm::GetParametersByPathResponse resp;
  grpc::Status s = Invoke(params(), &pm::ParameterStore::Stub::GetParametersByPath, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(Reason(s), reason::kValidation);
  bad.set_path("/pg/a");
  bad.set_max_results(11);
  s = Invoke(params(), &pm::ParameterStore::Stub::GetParametersByPath, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

// cofferctl through the real binary: put/get, and `watch params`.
TEST_F(ParamsE2ETest, CofferctlPutGetAndWatch) {
  const std::map<std::string, std::string> env = {
      {"COFFER_PARAMS_ADDRESS", services().store->address()}};
  auto run = [&](const std::vector<std::string>& args) { return testing::RunCofferctl(args, env); };
  const std::string secret = "cli-secret-" + Hex(8);

  auto [put_code, put] = run({"params", "put-parameter", "--name=/cli/db/password",
                              "--value=" + secret, "--type=SECURE_STRING"});
  ASSERT_EQ(put_code, 0) << put;
  EXPECT_THAT(put, HasSubstr("\"version\""));
  EXPECT_THAT(put, Not(HasSubstr(secret)));

  auto [get_code, got] =
      run({"params", "get-parameter", "--name=/cli/db/password", "--with-decryption"});
  ASSERT_EQ(get_code, 0) << got;
  EXPECT_THAT(got, HasSubstr(absl::StrCat("\"value\": \"", secret, "\"")));
  EXPECT_THAT(got, HasSubstr("\"type\": \"PARAMETER_TYPE_SECURE_STRING\""));
  auto [enc_code, encrypted] = run({"params", "get-parameter", "--name=/cli/db/password"});
  ASSERT_EQ(enc_code, 0) << encrypted;
  EXPECT_THAT(encrypted, HasSubstr("\"value\": \""));
  EXPECT_THAT(encrypted, Not(HasSubstr(secret)));
  // And what the CLI stored, the API reads.
  EXPECT_EQ(Value("/cli/db/password", true), secret);

  auto [missing_code, missing] = run({"params", "get-parameter", "--name=/cli/none"});
  EXPECT_EQ(missing_code, 254) << missing;
  EXPECT_THAT(missing, HasSubstr(absl::StrCat(reason::kParameterNotFound, ": ")));

  // A value from a file, read back alone with --output=text; a table of a path.
  const std::string value_file = services().dir.Join("host.txt");
  { std::ofstream(value_file) << "db1.internal"; }
  auto [file_code, from_file] = run({"params", "put-parameter", "--name=/cli/db/host",
                                     "--value=file://" + value_file, "--type=STRING"});
  ASSERT_EQ(file_code, 0) << from_file;
  testing::CofferctlResult text = testing::RunCofferctlIo(
      {"params", "get-parameter", "--name=/cli/db/password", "--with-decryption", "--output=text"},
      env);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out, secret + "\n");
  EXPECT_EQ(text.err, "");
  testing::CofferctlResult table = testing::RunCofferctlIo(
      {"params", "get-parameters-by-path", "--path=/cli", "--recursive", "--output=table"}, env);
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("name"));
  // Columns as wide as their widest cell, two spaces apart (the password's
  // ciphertext makes the value column wide).
  EXPECT_THAT(table.out, HasSubstr("\n/cli/db/host      STRING         db1.internal  "));
  EXPECT_THAT(table.out, Not(HasSubstr(secret)));  // without --with-decryption

  // `cofferctl watch params`: from now, so keep changing /x/a (and, before
  // each, /y/z outside the path) until two events made it out.
  std::vector<std::string> argv = {testing::BinaryPath("cofferctl"),
                                   "watch",
                                   "params",
                                   "--path",
                                   "/x",
                                   "--recursive",
                                   "--max-events",
                                   "2"};
  testing::Subprocess watch(argv, testing::CofferctlEnv(env));
  ASSERT_TRUE(watch.Start().ok());
  int64_t puts = 0;
  const bool ended = testing::WaitFor(
      [&] {
        if (!watch.running()) return true;
        TryPut("/y/z", "outside", pm::PARAMETER_TYPE_STRING, true);
        TryPut("/x/a", "inside " + secret, pm::PARAMETER_TYPE_STRING, true);
        ++puts;
        absl::SleepFor(absl::Milliseconds(50));
        return !watch.running();
      },
      absl::Seconds(15));
  ASSERT_TRUE(ended) << watch.Output();
  ASSERT_EQ(watch.Wait(absl::Seconds(5)), 0) << watch.Output();
  const std::string output = watch.Output();
  std::vector<std::string> lines = absl::StrSplit(output, '\n', absl::SkipWhitespace());
  ASSERT_EQ(lines.size(), 2u) << output;
  std::vector<ChangeEvent> events;
  for (const std::string& line : lines) {
    EXPECT_TRUE(absl::StartsWith(line, "{") && absl::EndsWith(line, "}")) << line;
    ChangeEvent e;
    auto parsed = google::protobuf::util::JsonStringToMessage(line, &e);
    ASSERT_TRUE(parsed.ok()) << line << ": " << parsed.ToString();
    events.push_back(e);
  }
  for (const ChangeEvent& e : events) {
    EXPECT_EQ(e.name(), "/x/a") << Describe(e);
    EXPECT_EQ(e.resource_kind(), coffer::v1::RESOURCE_KIND_PARAMETER);
    EXPECT_TRUE(e.kind() == coffer::v1::CHANGE_KIND_CREATED ||
                e.kind() == coffer::v1::CHANGE_KIND_UPDATED)
        << Describe(e);
    EXPECT_GT(e.time().seconds(), 0);
  }
  EXPECT_LT(Position(events[0]), Position(events[1]));
  int64_t v0 = 0, v1 = 0;
  ASSERT_TRUE(absl::SimpleAtoi(events[0].version(), &v0) &&
              absl::SimpleAtoi(events[1].version(), &v1));
  EXPECT_EQ(v1, v0 + 1);  // consecutive: no change in between was skipped
  EXPECT_THAT(output, Not(HasSubstr(secret)));
  EXPECT_THAT(output, Not(HasSubstr("/y/z")));
  EXPECT_GE(puts, 2);

  // The same stream as text, resumed after the first event: the second
  // event, as one tab-separated line.
  testing::CofferctlResult resumed =
      testing::RunCofferctlIo({"watch", "params", "--path", "/x", "--recursive", "--start-after",
                               events[0].position(), "--max-events", "1", "--output", "text"},
                              env);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(absl::StartsWith(
      resumed.out,
      absl::StrCat(events[1].position(), "\tPARAMETER\t/x/a\t", events[1].version(), "\t")))
      << resumed.out;
  EXPECT_EQ(std::count(resumed.out.begin(), resumed.out.end(), '\n'), 1) << resumed.out;
}

// ---------------------------------------------------------------------------
// SecureString: encrypted at rest, never in logs. Own pair (stopped by the test).

class ParamsSecureStringE2ETest : public ParamsTestBase {
 protected:
  void SetUp() override { ASSERT_TRUE(services_.Start()) << services_.failure; }
  void TearDown() override {
    auto [store_code, kms_code] = services_.Stop();
    EXPECT_EQ(store_code, 0);
    EXPECT_EQ(kms_code, 0);
  }
  Services& services() override { return services_; }
  Services services_;
};

TEST_F(ParamsSecureStringE2ETest, SecureStringIsStoredEncryptedAndNeverLogged) {
  const std::string marker = "DISTINCTIVE-PARAM-" + Hex(12);
  const std::string marker2 = "DISTINCTIVE-PARAM-" + Hex(12);
  const std::vector<std::string> encodings = {marker,
                                              absl::Base64Escape(marker),
                                              absl::WebSafeBase64Escape(marker),
                                              absl::BytesToHexString(marker),
                                              marker2,
                                              absl::Base64Escape(marker2),
                                              absl::WebSafeBase64Escape(marker2),
                                              absl::BytesToHexString(marker2)};
  auto holds_marker = [&](const std::string& text) {
    for (const std::string& e : encodings) {
      if (text.find(e) != std::string::npos) return e;
    }
    return std::string();
  };

  EXPECT_EQ(Put("/sec/db/password", marker, pm::PARAMETER_TYPE_SECURE_STRING), 1);
  Put("/sec/db/user", "app", pm::PARAMETER_TYPE_STRING);

  pm::Parameter p;
  ASSERT_TRUE(Get("/sec/db/password", &p).ok());
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_SECURE_STRING);
  EXPECT_FALSE(p.value().empty());
  EXPECT_NE(p.value(), marker);
  EXPECT_EQ(holds_marker(p.value()), "") << p.value();
  ASSERT_TRUE(Get("/sec/db/password", &p, /*with_decryption=*/true).ok());
  EXPECT_EQ(p.value(), marker);
  EXPECT_EQ(p.type(), pm::PARAMETER_TYPE_SECURE_STRING);

  for (bool recursive : {true, false}) {
    const std::string path = recursive ? "/sec" : "/sec/db";
    std::map<std::string, std::string> plain, decrypted;
    for (const auto& q : ByPath(path, recursive, /*with_decryption=*/false))
      plain[q.name()] = q.value();
    for (const auto& q : ByPath(path, recursive, /*with_decryption=*/true))
      decrypted[q.name()] = q.value();
    ASSERT_EQ(plain.size(), 2u) << path;
    EXPECT_EQ(plain["/sec/db/user"], "app");
    EXPECT_EQ(holds_marker(plain["/sec/db/password"]), "") << plain["/sec/db/password"];
    EXPECT_FALSE(plain["/sec/db/password"].empty());
    EXPECT_EQ(decrypted["/sec/db/user"], "app");
    EXPECT_EQ(decrypted["/sec/db/password"], marker);
  }

  // A second version, a labelled read of the first, and the history.
  EXPECT_EQ(Put("/sec/db/password", marker2, pm::PARAMETER_TYPE_SECURE_STRING, true), 2);
  EXPECT_EQ(Value("/sec/db/password", true), marker2);
  EXPECT_EQ(Value("/sec/db/password:1", true), marker);
  EXPECT_EQ(holds_marker(Value("/sec/db/password:1")), "");
  pm::GetParameterHistoryRequest hist;
  hist.set_name("/sec/db/password");
  pm::GetParameterHistoryResponse history;
  ASSERT_TRUE(
      Invoke(params(), &pm::ParameterStore::Stub::GetParameterHistory, hist, &history).ok());
  ASSERT_EQ(history.parameters_size(), 2);
  for (const auto& h : history.parameters()) EXPECT_EQ(holds_marker(h.value()), "");
  // DescribeParameters: metadata only.
  pm::DescribeParametersRequest describe;
  pm::DescribeParametersResponse described;
  ASSERT_TRUE(
      Invoke(params(), &pm::ParameterStore::Stub::DescribeParameters, describe, &described).ok());
  EXPECT_EQ(holds_marker(described.SerializeAsString()), "");
  // A failing put carrying the value does not echo it.
  grpc::Status s = TryPut("/sec/db/password", marker, pm::PARAMETER_TYPE_SECURE_STRING);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(holds_marker(s.error_message()), "");

  auto [store_code, kms_code] = services_.Stop();  // the store flushes its memtables
  ASSERT_EQ(store_code, 0) << services_.store->Output();
  ASSERT_EQ(kms_code, 0) << services_.kms->Output();

  int files = 0;
  for (const std::string& dir : {services_.dir.Join("kms"), services_.dir.Join("store")}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      ++files;
      const std::string contents = testing::ReadFile(entry.path().string());
      EXPECT_EQ(holds_marker(contents), "") << entry.path();
    }
  }
  EXPECT_GT(files, 6);
  const std::string logs = services_.store->Output() + services_.kms->Output();
  EXPECT_THAT(logs, HasSubstr("serving"));  // the logs are there at all
  EXPECT_EQ(holds_marker(logs), "");
}

}  // namespace
}  // namespace coffer::params_e2e
