// End-to-end tests of rotation (shared spec rotation.md, "What must hold"):
// the real coffer-rotator, coffer-store, coffer-kms, coffer-worker-postgres
// and coffer-worker-exec as processes over mTLS, and a real PostgreSQL
// (tests/testing/postgres.h) with password authentication. The shared
// cluster and fixture are in rotation_e2e_fixture.h; the crash tests in
// rotation_crash_e2e_test.cc.
//
//   RotationE2ETest.SingleUser...        single-user strategy
//   RotationE2ETest.AlternatingUsers...  a client loop never fails a login
//   RotationE2ETest.FailingSetSecret...  retries with backoff, then FAILED
//   RotationE2ETest.UnknownWorker..., WorkerWithAnotherIdentity...
//                                        registry errors fail the rotation
//   RotationE2ETest.TwoRotators...       each secret rotated exactly once
//   RotationE2ETest.Rotates100...        100 PostgreSQL credentials, timed
//
// ROTATION_E2E_VERBOSE=1 prints every rotator's log after each test.
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/http_get.h"
#include "tests/integration/rotation_e2e_fixture.h"
#include "tests/testing/test_env.h"

namespace coffer::rotation_e2e {
namespace {

using ::testing::HasSubstr;

// ---- Single user ----

TEST_F(RotationE2ETest, SingleUserRotationChangesThePasswordInPostgres) {
  EnsureDataTable();
  CreateRole("single_app", "initial-pw-1");
  const std::string arn = CreateSecret("rotation-e2e/single",
                                       CredentialJson(pg(), "single_app", "initial-pw-1", false));
  const std::string first_version = Get(arn, "AWSCURRENT").version_id();
  ASSERT_TRUE(pg().CanLogin("single_app", "initial-pw-1"));

  ServiceProcess* rotator = NewRotator(
      "single-1", {WorkerFlag("pg-single", c_->pg_single->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  // Logins before, during and after: the spec allows brief failures during
  // the switch for this strategy, so only before and after are asserted.
  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());

  std::string previous_version = first_version;
  std::string previous_password = "initial-pw-1";
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("rotation ", round + 1));
    const std::string token = Rotate(arn, "pg-single");
    sm::RotationState state = WaitRotationEnd(arn, token);
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << state.DebugString();
    EXPECT_EQ(state.next_step(), "");

    const sm::GetSecretValueResponse current = Get(arn, "AWSCURRENT");
    EXPECT_EQ(current.version_id(), token);
    const Credential now = *ParseCredential(current.secret_string());
    EXPECT_EQ(now.username, "single_app");
    EXPECT_NE(now.password, previous_password);
    EXPECT_TRUE(pg().CanLogin("single_app", now.password)) << "AWSCURRENT does not log in";

    const sm::GetSecretValueResponse prev = Get(arn, "AWSPREVIOUS");
    EXPECT_EQ(prev.version_id(), previous_version);
    EXPECT_EQ(ParseCredential(prev.secret_string())->password, previous_password);
    EXPECT_FALSE(pg().CanLogin("single_app", previous_password))
        << "AWSPREVIOUS still logs in after a single-user rotation";
    ExpectRotatedLabels(arn, previous_version, token);

    const sm::DescribeSecretResponse d = Describe(arn);
    EXPECT_TRUE(d.rotation_enabled());
    EXPECT_EQ(d.rotation_worker(), "pg-single");
    EXPECT_TRUE(d.has_last_rotated_date());
    EXPECT_GT(d.next_rotation_date().seconds(), absl::ToUnixSeconds(absl::Now()));

    previous_version = token;
    previous_password = now.password;
  }
  loop.Reset();
  ASSERT_TRUE(loop.WaitLogins(3));
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty()) << "logins fail after the rotation";

  const std::string metrics = testing::HttpGet(rotator->ports().metrics, "/metrics").value_or("");
  EXPECT_GE(RunsTotal(metrics, "pg-single", "success"), 2) << metrics;
}

// ---- Alternating users ----

TEST_F(RotationE2ETest, AlternatingUsersNeverFailALoginDuringRotations) {
  EnsureDataTable();
  CreateRole("alt_app", "initial-alt-pw");
  const std::string arn =
      CreateSecret("rotation-e2e/alt", CredentialJson(pg(), "alt_app", "initial-alt-pw", true));

  ServiceProcess* rotator =
      NewRotator("alt-1", {WorkerFlag("pg-alt", c_->pg_alt->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  LoginLoop loop(c_, arn);
  ASSERT_TRUE(loop.WaitLogins(3));

  std::string previous_version = Get(arn, "AWSCURRENT").version_id();
  std::string previous_user = "alt_app";
  constexpr int kRotations = 4;
  for (int round = 0; round < kRotations; ++round) {
    SCOPED_TRACE(absl::StrCat("rotation ", round + 1));
    const std::string token = Rotate(arn, "pg-alt");
    sm::RotationState state = WaitRotationEnd(arn, token);
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << state.DebugString();

    const Credential now = GetCredential(arn, "AWSCURRENT");
    const std::string want_user = round % 2 == 0 ? "alt_app_clone" : "alt_app";
    EXPECT_EQ(now.username, want_user);
    EXPECT_TRUE(pg().ExecAs(now.username, now.password, "SELECT n FROM rotation_e2e_data").ok())
        << "the new user cannot read what the original could (grants)";
    const Credential before = GetCredential(arn, "AWSPREVIOUS");
    EXPECT_EQ(before.username, previous_user);
    // "The previous user keeps working until the next rotation."
    EXPECT_TRUE(pg().CanLogin(before.username, before.password));
    ExpectRotatedLabels(arn, previous_version, token);
    previous_version = token;
    previous_user = now.username;
    // Clients that read AWSCURRENT just before the switch log in with the
    // previous user; give them a moment before it changes again.
    ASSERT_TRUE(loop.WaitLogins(5));
  }
  loop.Stop();
  EXPECT_THAT(loop.failures(), ::testing::IsEmpty());
  EXPECT_GT(loop.logins(), 20);
  EXPECT_THAT(loop.users(), ::testing::ElementsAre("alt_app", "alt_app_clone"));

  // Both roles exist; the clone (the pending user of the first rotation)
  // got the original's grants through membership.
  EXPECT_EQ(Query("SELECT count(*) FROM pg_roles WHERE rolname IN ('alt_app', 'alt_app_clone') "
                  "AND rolcanlogin")
                .value_or("?"),
            "2");
  EXPECT_EQ(Query("SELECT pg_has_role('alt_app_clone', 'alt_app', 'MEMBER')").value_or("?"), "t");
  EXPECT_EQ(Query("SELECT has_table_privilege('alt_app_clone', 'rotation_e2e_data', 'SELECT')")
                .value_or("?"),
            "t");
  const std::string metrics = testing::HttpGet(rotator->ports().metrics, "/metrics").value_or("");
  EXPECT_GE(RunsTotal(metrics, "pg-alt", "success"), kRotations) << metrics;
  EXPECT_EQ(RunsTotal(metrics, "pg-alt", "failure"), 0) << metrics;
}

// ---- Failure ----

TEST_F(RotationE2ETest, FailingSetSecretRetriesWithBackoffThenFailsAndKeepsCurrent) {
  // The store's credential has drifted from the database's: setSecret can
  // log in with neither the pending, current nor previous password.
  CreateRole("drift_app", "the-real-password");
  const std::string arn = CreateSecret(
      "rotation-e2e/drift", CredentialJson(pg(), "drift_app", "a-stale-password", false));
  const sm::GetSecretValueResponse before = Get(arn, "AWSCURRENT");

  GatedWorker recorder(c_->pg_single->Channel("rotator"));
  ASSERT_TRUE(recorder.Start().ok());
  // Five attempts with full-jitter backoff capped at 100, 200, 400, 400 ms.
  ServiceProcess* rotator =
      NewRotator("fail-1", {WorkerFlag("pg-drift", recorder.address(), kPostgresWorkerId)},
                 {"--max_attempts=5", "--backoff_max=400ms"});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  const std::string token = Rotate(arn, "pg-drift");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  EXPECT_EQ(state.attempts(), 5) << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr("setSecret")) << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr("drift_app"));
  EXPECT_THAT(state.last_error(), ::testing::Not(HasSubstr("a-stale-password")));
  EXPECT_TRUE(state.has_finished_date());

  // The worker saw createSecret once and setSecret max_attempts times,
  // spaced by the backoff (full jitter: each wait is uniform in [0, cap], so
  // only the sum is bounded below: P(sum of the 4 waits < 50 ms) < 1e-4).
  std::vector<absl::Time> set_attempts;
  for (const GatedWorker::Call& call : recorder.calls()) {
    EXPECT_EQ(call.token, token);
    if (call.step == rv1::ROTATION_STEP_SET_SECRET) {
      EXPECT_NE(call.code, grpc::StatusCode::OK);
      set_attempts.push_back(call.time);
    } else {
      EXPECT_EQ(call.step, rv1::ROTATION_STEP_CREATE_SECRET);
    }
  }
  ASSERT_EQ(set_attempts.size(), 5u);
  EXPECT_EQ(recorder.Done(rv1::ROTATION_STEP_CREATE_SECRET), 1);
  const absl::Duration span = set_attempts.back() - set_attempts.front();
  EXPECT_GE(span, absl::Milliseconds(50)) << "no backoff between attempts";
  // The caps sum to 1.1 s; the rest is the attempts themselves.
  EXPECT_LE(span, absl::Seconds(4));

  // AWSCURRENT did not move; the pending version (with its value) stays for
  // the next window; the database still has the real password.
  const sm::GetSecretValueResponse after = Get(arn, "AWSCURRENT");
  EXPECT_EQ(after.version_id(), before.version_id());
  EXPECT_EQ(after.secret_string(), before.secret_string());
  std::map<std::string, std::vector<std::string>> want = {{before.version_id(), {"AWSCURRENT"}},
                                                          {token, {"AWSPENDING"}}};
  EXPECT_EQ(Labels(arn), want);
  EXPECT_TRUE(pg().CanLogin("drift_app", "the-real-password"));
  const sm::DescribeSecretResponse d = Describe(arn);
  EXPECT_TRUE(d.rotation_enabled());
  EXPECT_FALSE(d.has_last_rotated_date());
  EXPECT_GT(d.next_rotation_date().seconds(), absl::ToUnixSeconds(absl::Now()));

  std::string metrics;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        metrics = testing::HttpGet(rotator->ports().metrics, "/metrics").value_or("");
        return RunsTotal(metrics, "pg-drift", "failure") >= 1;
      },
      absl::Seconds(5)))
      << metrics;
  EXPECT_EQ(RunsTotal(metrics, "pg-drift", "success"), 0);

  // Nothing more happens until the next window.
  const size_t calls = recorder.calls().size();
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(recorder.calls().size(), calls);
  EXPECT_EQ(StatusName(Describe(arn).rotation_state().status()), "STATUS_FAILED");
}

// A secret that names the administrator as "its" user: the alternating-users
// worker refuses before any DDL, the rotation fails with the reason, the
// administrator gains no clone, and AWSCURRENT stays.
TEST_F(RotationE2ETest, AlternatingUsersRefuseAnAdministratorUsername) {
  const std::string arn = CreateSecret(
      "rotation-e2e/evil", CredentialJson(pg(), pg().superuser(), pg().superuser_password(), true));
  const sm::GetSecretValueResponse before = Get(arn, "AWSCURRENT");
  ServiceProcess* rotator =
      NewRotator("evil-1", {WorkerFlag("pg-alt", c_->pg_alt->address(), kPostgresWorkerId)},
                 {"--max_attempts=2", "--backoff_max=200ms"});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  const std::string token = Rotate(arn, "pg-alt");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr("refusing to rotate role")) << state.DebugString();
  EXPECT_THAT(state.last_error(), ::testing::Not(HasSubstr(pg().superuser_password())));
  EXPECT_EQ(Query(absl::StrCat("SELECT count(*) FROM pg_roles WHERE rolname = '", pg().superuser(),
                               "_clone'"))
                .value_or("?"),
            "0");
  EXPECT_EQ(Get(arn, "AWSCURRENT").version_id(), before.version_id());
}

TEST_F(RotationE2ETest, UnknownWorkerFailsTheRotationWithAClearError) {
  const std::string arn = CreateSecret("rotation-e2e/unknown-worker", "v1");
  ServiceProcess* rotator = NewRotator(
      "unknown-1", {WorkerFlag("pg-single", c_->pg_single->address(), kPostgresWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  const std::string token = Rotate(arn, "no-such-worker");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr("no-such-worker"));
  EXPECT_EQ(Get(arn, "AWSCURRENT").secret_string(), "v1");
}

// A worker whose certificate shows another identity than the one
// registered: the rotation fails with a clear error and AWSCURRENT stays.
TEST_F(RotationE2ETest, WorkerWithAnotherIdentityFailsTheRotation) {
  CreateRole("impostor_app", "impostor-pw");
  const std::string arn = CreateSecret("rotation-e2e/impostor",
                                       CredentialJson(pg(), "impostor_app", "impostor-pw", false));
  const sm::GetSecretValueResponse before = Get(arn, "AWSCURRENT");
  // The postgres worker registered as if it were the exec worker.
  ServiceProcess* rotator = NewRotator(
      "impostor-1", {WorkerFlag("pg-impostor", c_->pg_single->address(), kExecWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  const std::string token = Rotate(arn, "pg-impostor");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  EXPECT_THAT(state.last_error(), HasSubstr(kPostgresWorkerId));
  EXPECT_THAT(state.last_error(), HasSubstr(kExecWorkerId));
  EXPECT_EQ(Get(arn, "AWSCURRENT").version_id(), before.version_id());
  EXPECT_TRUE(pg().CanLogin("impostor_app", "impostor-pw"));
}

// The same, stricter: a server that is not the registered worker must not
// get the Step call at all (rotator_config.proto: "Calls to a worker whose
// certificate shows another identity fail"): the worker channel pins the
// registered SPIFFE ID in the TLS handshake.
TEST_F(RotationE2ETest, WorkerWithAnotherIdentityIsNeverCalled) {
  const std::string arn = CreateSecret("rotation-e2e/impostor-strict",
                                       CredentialJson(pg(), "impostor_strict", "pw", false));
  ServiceProcess* rotator = NewRotator(
      "impostor-2", {WorkerFlag("pg-impostor", c_->pg_single->address(), kExecWorkerId)});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();
  const std::string token = Rotate(arn, "pg-impostor");
  const sm::RotationState state = WaitRotationEnd(arn, token);
  ASSERT_EQ(StatusName(state.status()), "STATUS_FAILED") << state.DebugString();
  // createSecret never ran: the pending version is still the placeholder.
  sm::GetSecretValueRequest req;
  req.set_secret_id(arn);
  req.set_version_id(token);
  sm::GetSecretValueResponse resp;
  grpc::Status s = Invoke(&sm::SecretsManager::Stub::GetSecretValue, req, &resp);
  EXPECT_FALSE(s.ok()) << "the impostor ran createSecret: the pending version has a value";
  EXPECT_THAT(c_->pg_single->Output(), ::testing::Not(HasSubstr(token)))
      << "the impostor was called";
}

// ---- Two rotators ----

struct ExecLine {
  std::string who, arn, token, step, what;
  int rc = -1;
  double time = 0;
};

std::vector<ExecLine> ReadExecLog(const std::string& path) {
  std::vector<ExecLine> out;
  for (absl::string_view line : absl::StrSplit(testing::ReadFile(path), '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ExecLine l;
    if (f.size() == 6 && f[4] == "start") {
      l = {f[0], f[1], f[2], f[3], f[4]};
      (void)absl::SimpleAtod(f[5], &l.time);
    } else if (f.size() == 7 && f[4] == "end") {
      l = {f[0], f[1], f[2], f[3], f[4]};
      (void)absl::SimpleAtoi(f[5], &l.rc);
      (void)absl::SimpleAtod(f[6], &l.time);
    } else {
      ADD_FAILURE() << "bad exec log line: " << line;
      continue;
    }
    out.push_back(l);
  }
  return out;
}

TEST_F(RotationE2ETest, TwoRotatorsRotateEachSecretExactlyOnce) {
  // Two rotators register the same worker name, each with its own exec
  // worker (scripts "A" and "B"), so the exec log shows who ran each step.
  // Leases long enough that a slow machine never loses one mid-way (this
  // test is about exclusion, the crash tests about expiry).
  ServiceProcess* r1 =
      NewRotator("twin-1", {WorkerFlag("exec-twin", c_->exec_a->address(), kExecWorkerId)},
                 {"--lease_duration=10s"});
  ServiceProcess* r2 =
      NewRotator("twin-2", {WorkerFlag("exec-twin", c_->exec_b->address(), kExecWorkerId)},
                 {"--lease_duration=10s"});
  ASSERT_TRUE(r1->Start().ok()) << r1->Output();
  ASSERT_TRUE(r2->Start().ok()) << r2->Output();

  constexpr int kSecrets = 12;
  std::vector<std::string> arns, first_versions, tokens;
  for (int i = 0; i < kSecrets; ++i) {
    arns.push_back(CreateSecret(absl::StrCat("rotation-e2e/twin-", i), absl::StrCat("v0-", i)));
    first_versions.push_back(Get(arns.back(), "AWSCURRENT").version_id());
  }
  for (int i = 0; i < kSecrets; ++i) tokens.push_back(Rotate(arns[i], "exec-twin"));
  for (int i = 0; i < kSecrets; ++i) {
    const sm::RotationState state = WaitRotationEnd(arns[i], tokens[i], absl::Seconds(60));
    ASSERT_EQ(StatusName(state.status()), "STATUS_SUCCEEDED") << i << ": " << state.DebugString();
  }
  // Past a resync of both rotators: nothing is rotated a second time.
  absl::SleepFor(absl::Milliseconds(2500));

  std::map<std::string, std::vector<ExecLine>> by_token;
  for (const ExecLine& l : ReadExecLog(c_->exec_log)) {
    if (!absl::StrContains(l.arn, "rotation-e2e/twin-")) continue;
    by_token[l.token].push_back(l);
  }
  std::map<std::string, int> per_rotator;
  EXPECT_EQ(by_token.size(), static_cast<size_t>(kSecrets)) << "a rotation with an unknown token";
  for (int i = 0; i < kSecrets; ++i) {
    SCOPED_TRACE(arns[i]);
    const std::vector<ExecLine>& lines = by_token[tokens[i]];
    std::vector<std::string> seen;
    std::set<std::string> who;
    for (const ExecLine& l : lines) {
      EXPECT_EQ(l.arn, arns[i]);
      seen.push_back(
          absl::StrCat(l.step, " ", l.what, l.what == "end" ? absl::StrCat(" ", l.rc) : ""));
      who.insert(l.who);
    }
    // Each step ran once, in order, never overlapping another run of it.
    EXPECT_THAT(
        seen, ::testing::ElementsAre("createSecret start", "createSecret end 0", "setSecret start",
                                     "setSecret end 0", "testSecret start", "testSecret end 0",
                                     "finishSecret start", "finishSecret end 0"));
    EXPECT_EQ(who.size(), 1u) << "both rotators worked on one rotation";
    if (!who.empty()) per_rotator[*who.begin()]++;

    EXPECT_EQ(Get(arns[i], "AWSCURRENT").secret_string(), "rotated-" + tokens[i]);
    ExpectRotatedLabels(arns[i], first_versions[i], tokens[i]);
    const sm::DescribeSecretResponse d = Describe(arns[i]);
    EXPECT_EQ(StatusName(d.rotation_state().status()), "STATUS_SUCCEEDED");
    EXPECT_GT(d.next_rotation_date().seconds(), absl::ToUnixSeconds(absl::Now()) + 3600);
  }
  std::cout << "[          ] rotations by rotator: A=" << per_rotator["A"]
            << " B=" << per_rotator["B"] << "\n";
  const std::string m1 = testing::HttpGet(r1->ports().metrics, "/metrics").value_or("");
  const std::string m2 = testing::HttpGet(r2->ports().metrics, "/metrics").value_or("");
  EXPECT_EQ(RunsTotal(m1, "exec-twin", "success") + RunsTotal(m2, "exec-twin", "success"), kSecrets)
      << m1 << m2;
  EXPECT_EQ(RunsTotal(m1, "exec-twin", "failure") + RunsTotal(m2, "exec-twin", "failure"), 0);
  EXPECT_TRUE(r1->running());
  EXPECT_TRUE(r2->running());
}

}  // namespace

// ---- How long 100 PostgreSQL credentials take ----

// Creates `n` roles and secrets, rotates them all at once through `worker`
// with one rotator (--concurrency=8) and waits until every DescribeSecret
// shows STATUS_SUCCEEDED. Prints the time; asserts only that all succeed.
void RotationE2ETest::BenchRotate(int n, const std::string& worker, const std::string& address,
                                  bool alternating) {
  const std::string prefix = absl::StrCat("bench_", alternating ? "alt" : "single", "_");
  std::string sql;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&sql, "CREATE ROLE ", prefix, i, " LOGIN PASSWORD 'bench-initial-", i, "'; ");
  }
  ASSERT_TRUE(pg().Exec(sql).ok());
  std::vector<std::string> arns;
  for (int i = 0; i < n; ++i) {
    arns.push_back(CreateSecret(absl::StrCat("rotation-e2e/", prefix, i),
                                CredentialJson(pg(), absl::StrCat(prefix, i),
                                               absl::StrCat("bench-initial-", i), alternating)));
  }
  ServiceProcess* rotator =
      NewRotator(prefix + "rotator", {WorkerFlag(worker, address, kPostgresWorkerId)},
                 {"--concurrency=8", "--lease_duration=30s"});
  ASSERT_TRUE(rotator->Start().ok()) << rotator->Output();

  const absl::Time start = absl::Now();
  std::vector<std::string> tokens;
  for (const std::string& arn : arns) tokens.push_back(Rotate(arn, worker));
  std::set<int> pending;
  for (int i = 0; i < n; ++i) pending.insert(i);
  std::map<int, std::string> failed;
  testing::WaitFor(
      [&] {
        for (auto it = pending.begin(); it != pending.end();) {
          const sm::RotationState s = Describe(arns[*it]).rotation_state();
          if (s.version_id() == tokens[*it] && s.status() == sm::RotationState::STATUS_SUCCEEDED) {
            it = pending.erase(it);
          } else if (s.status() == sm::RotationState::STATUS_FAILED) {
            failed[*it] = s.DebugString();
            it = pending.erase(it);
          } else {
            ++it;
          }
        }
        return pending.empty();
      },
      absl::Seconds(120));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_THAT(pending, ::testing::IsEmpty());
  EXPECT_THAT(failed, ::testing::IsEmpty());
  std::cout << "[          ] rotated " << n - pending.size() - failed.size() << "/" << n
            << " PostgreSQL credentials (" << (alternating ? "alternating users" : "single user")
            << "; one rotator --concurrency=8, worker --step_threads=8) in " << elapsed << " ("
            << absl::ToDoubleMilliseconds(elapsed) / n << " ms each)" << std::endl;
  for (int i : {0, n / 2, n - 1}) {
    const Credential now = GetCredential(arns[i], "AWSCURRENT");
    EXPECT_EQ(now.username, absl::StrCat(prefix, i, alternating ? "_clone" : ""));
    EXPECT_TRUE(pg().CanLogin(now.username, now.password));
  }
  ASSERT_EQ(rotator->Stop(), 0) << rotator->Output();
}

namespace {

TEST_F(RotationE2ETest, Rotates100PostgresCredentials) {
  BenchRotate(100, "pg-alt", c_->pg_alt->address(), /*alternating=*/true);
  BenchRotate(100, "pg-single", c_->pg_single->address(), /*alternating=*/false);
}

}  // namespace
}  // namespace coffer::rotation_e2e
