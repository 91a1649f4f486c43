// The PostgreSQL worker against a real PostgreSQL (tests/testing/postgres.h)
// and an in-memory store (FakeSecretsClient), steps driven directly on the
// handler.
#include "services/workers/postgres/postgres_rotation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/libs/worker/fake_secrets_client.h"
#include "tests/testing/postgres.h"

namespace coffer::workers {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using worker::FakeSecretsClient;
using worker::kAwsCurrent;
using worker::kAwsPending;
using worker::kAwsPrevious;
using worker::StepContext;

std::string Token(int n) {
  return absl::StrCat("rotation-token-", n, "-0123456789abcdef0123456789");
}

class PostgresRotationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pg = coffer::testing::PostgresServer::Start();
    if (!pg.ok()) {
      start_error_ = new std::string(pg.status().ToString());
      return;
    }
    server_ = pg->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    // scripts/test.sh installs PostgreSQL: a missing server is a failure.
    ASSERT_TRUE(coffer::testing::PostgresServer::Installed())
        << "PostgreSQL is not installed (./scripts/test.sh installs it)";
    ASSERT_NE(server_, nullptr) << (start_error_ ? *start_error_ : "");
  }

  coffer::testing::PostgresServer& pg() { return *server_; }

  // sslmode "disable": the test server has no TLS, and the worker refuses
  // plaintext unless the secret allows it. `sslmode` "" leaves it out.
  std::string Json(const std::string& user, const std::string& password,
                   const std::string& master = "", const std::string& sslmode = "disable") {
    google::protobuf::Struct s;
    auto& f = *s.mutable_fields();
    f["engine"].set_string_value("postgres");
    f["host"].set_string_value(pg().host());
    f["port"].set_number_value(pg().port());
    f["dbname"].set_string_value("postgres");
    f["username"].set_string_value(user);
    f["password"].set_string_value(password);
    if (!sslmode.empty()) f["sslmode"].set_string_value(sslmode);
    if (!master.empty()) f["master_secret"].set_string_value(master);
    std::string out;
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(s, &out).ok());
    return out;
  }

  static PostgresCredential Parse(const std::string& json) {
    auto c = ParseCredential(json, "test");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : PostgresCredential{};
  }

  // Runs the four steps, each `repeat` times.
  absl::Status Rotate(worker::RotationHandler& handler, const std::string& arn,
                      const std::string& token, int repeat = 1) {
    fake_.StartRotation(arn, token);
    StepContext ctx{arn, token, fake_};
    using Step = absl::Status (worker::RotationHandler::*)(const StepContext&);
    for (Step step :
         {&worker::RotationHandler::CreateSecret, &worker::RotationHandler::SetSecret,
          &worker::RotationHandler::TestSecret, &worker::RotationHandler::FinishSecret}) {
      for (int i = 0; i < repeat; ++i) {
        absl::Status s = (handler.*step)(ctx);
        if (!s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  // Rows of `sql` run as the superuser.
  std::vector<std::vector<std::string>> Rows(const std::string& sql,
                                             const std::vector<std::string>& params = {}) {
    PgLogin login;
    login.host = pg().host();
    login.port = pg().port();
    login.dbname = "postgres";
    login.user = pg().superuser();
    login.password = pg().superuser_password();
    login.sslmode = "disable";
    auto session = PgSession::Connect(login);
    EXPECT_TRUE(session.ok()) << session.status();
    if (!session.ok()) return {};
    auto rows = (*session)->Rows(sql, params);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
  }
  bool RoleExists(const std::string& role) {
    return !Rows("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", {role}).empty();
  }

  // Rotates `user` with alternating users (master: the superuser) and
  // expects setSecret to refuse it, mentioning `reason`, with nothing
  // created or changed.
  void ExpectAlternatingRefused(const std::string& user, const std::string& password,
                                const std::string& reason, int token) {
    SCOPED_TRACE(user);
    fake_.AddSecret("db/master", Json(pg().superuser(), pg().superuser_password()));
    const std::string initial = Json(user, password, "db/master");
    const std::string arn = fake_.AddSecret("db/refused/" + user, initial);
    const std::string twin = *AlternateUsername(user);
    const bool twin_existed = RoleExists(twin);
    PostgresRotation handler(Options(PostgresStrategy::kAlternatingUsers));
    fake_.StartRotation(arn, Token(token));
    StepContext ctx{arn, Token(token), fake_};
    ASSERT_TRUE(handler.CreateSecret(ctx).ok());
    const std::string pending = Parse(fake_.ValueAt(arn, kAwsPending)).password;

    absl::Status s = handler.SetSecret(ctx);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("setSecret: refusing to rotate role"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(reason));
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr(pending)));
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr(password)));
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr(pg().superuser_password())));
    EXPECT_EQ(RoleExists(twin), twin_existed);
    if (!twin_existed) {
      EXPECT_FALSE(pg().CanLogin(twin, pending));
    }
    // A repeated step refuses too; AWSCURRENT is what it was.
    EXPECT_EQ(handler.SetSecret(ctx).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(fake_.ValueAt(arn, kAwsCurrent), initial);
    EXPECT_EQ(RoleExists(twin), twin_existed);
  }

  static PostgresRotationOptions Options(PostgresStrategy strategy) {
    PostgresRotationOptions o;
    o.strategy = strategy;
    return o;
  }

  FakeSecretsClient fake_;
  static coffer::testing::PostgresServer* server_;
  static std::string* start_error_;
};

coffer::testing::PostgresServer* PostgresRotationTest::server_ = nullptr;
std::string* PostgresRotationTest::start_error_ = nullptr;

TEST_F(PostgresRotationTest, ServerChecksPasswords) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE pw_check LOGIN PASSWORD 'right-one'").ok());
  EXPECT_TRUE(pg().CanLogin("pw_check", "right-one"));
  EXPECT_FALSE(pg().CanLogin("pw_check", "wrong-one"));
}

TEST_F(PostgresRotationTest, SingleUserRotatesThePassword) {
  // A role name that needs quoting proves that identifiers are escaped.
  const std::string user = "su \"app\"";
  ASSERT_TRUE(pg().Exec("CREATE ROLE \"su \"\"app\"\"\" LOGIN PASSWORD 'old-password-1'").ok());
  const std::string arn = fake_.AddSecret("db/su", Json(user, "old-password-1"));
  PostgresRotation handler(Options(PostgresStrategy::kSingleUser));

  absl::Status s = Rotate(handler, arn, Token(1), /*repeat=*/2);
  ASSERT_TRUE(s.ok()) << s;

  PostgresCredential current = Parse(fake_.ValueAt(arn, kAwsCurrent));
  PostgresCredential previous = Parse(fake_.ValueAt(arn, kAwsPrevious));
  EXPECT_EQ(fake_.VersionAt(arn, kAwsCurrent), Token(1));
  EXPECT_EQ(fake_.VersionAt(arn, kAwsPending), "");
  EXPECT_EQ(current.username, user);
  EXPECT_EQ(previous.password, "old-password-1");
  EXPECT_NE(current.password, "old-password-1");
  EXPECT_EQ(current.password.size(), 32u);
  for (char c : std::string("/@\"'\\ ")) {
    EXPECT_EQ(current.password.find(c), std::string::npos) << c;
  }
  EXPECT_TRUE(pg().CanLogin(user, current.password));
  EXPECT_FALSE(pg().CanLogin(user, "old-password-1"));

  // A second rotation starts from the new AWSCURRENT.
  s = Rotate(handler, arn, Token(2));
  ASSERT_TRUE(s.ok()) << s;
  PostgresCredential third = Parse(fake_.ValueAt(arn, kAwsCurrent));
  EXPECT_TRUE(pg().CanLogin(user, third.password));
  EXPECT_FALSE(pg().CanLogin(user, current.password));
}

TEST_F(PostgresRotationTest, SingleUserFallsBackToThePreviousCredential) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE su_prev LOGIN PASSWORD 'prev-password'").ok());
  const std::string arn = fake_.AddSecret("db/su_prev", Json("su_prev", "prev-password"));
  // AWSCURRENT holds a password the database never had; AWSPREVIOUS works.
  ASSERT_TRUE(fake_.PutSecretValue(arn, Token(7), Json("su_prev", "never-set"), {}).ok());
  PostgresRotation handler(Options(PostgresStrategy::kSingleUser));
  absl::Status s = Rotate(handler, arn, Token(8));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(pg().CanLogin("su_prev", Parse(fake_.ValueAt(arn, kAwsCurrent)).password));
  EXPECT_FALSE(pg().CanLogin("su_prev", "prev-password"));
}

TEST_F(PostgresRotationTest, SingleUserRefusesAnotherUsername) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE su_refuse LOGIN PASSWORD 'refuse-password'").ok());
  ASSERT_TRUE(pg().Exec("CREATE ROLE su_other LOGIN PASSWORD 'other-password'").ok());
  const std::string arn = fake_.AddSecret("db/su_refuse", Json("su_refuse", "refuse-password"));
  fake_.StartRotation(arn, Token(3));
  const std::string pending_password = "pending-secret-value-123";
  fake_.SetValue(arn, Token(3), Json("su_other", pending_password));
  PostgresRotation handler(Options(PostgresStrategy::kSingleUser));
  StepContext ctx{arn, Token(3), fake_};

  absl::Status s = handler.SetSecret(ctx);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("setSecret"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("su_refuse"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr(pending_password)));
  EXPECT_TRUE(pg().CanLogin("su_refuse", "refuse-password"));
  EXPECT_TRUE(pg().CanLogin("su_other", "other-password"));
}

TEST_F(PostgresRotationTest, TestSecretFailsWithoutRevealingThePassword) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE su_test LOGIN PASSWORD 'test-password'").ok());
  const std::string arn = fake_.AddSecret("db/su_test", Json("su_test", "test-password"));
  fake_.StartRotation(arn, Token(4));
  PostgresRotation handler(Options(PostgresStrategy::kSingleUser));
  StepContext ctx{arn, Token(4), fake_};
  ASSERT_TRUE(handler.CreateSecret(ctx).ok());
  const std::string pending = Parse(fake_.ValueAt(arn, kAwsPending)).password;

  absl::Status s = handler.TestSecret(ctx);  // setSecret has not run
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("testSecret"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("su_test"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr(pending)));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("test-password")));
}

TEST_F(PostgresRotationTest, AlternatingUsersCloneAndSwitchBack) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_app LOGIN PASSWORD 'alt-password-1';"
                        "CREATE TABLE alt_items (id int);"
                        "INSERT INTO alt_items VALUES (1), (2);"
                        "GRANT SELECT ON alt_items TO alt_app;")
                  .ok());
  fake_.AddSecret("db/master", Json(pg().superuser(), pg().superuser_password()));
  const std::string arn = fake_.AddSecret("db/alt", Json("alt_app", "alt-password-1", "db/master"));
  PostgresRotation handler(Options(PostgresStrategy::kAlternatingUsers));

  // First rotation: the clone is created with the original's grants.
  absl::Status s = Rotate(handler, arn, Token(5), /*repeat=*/2);
  ASSERT_TRUE(s.ok()) << s;
  PostgresCredential first = Parse(fake_.ValueAt(arn, kAwsCurrent));
  EXPECT_EQ(first.username, "alt_app_clone");
  EXPECT_EQ(first.master_secret, "db/master");
  EXPECT_TRUE(pg().CanLogin("alt_app_clone", first.password));
  s = pg().ExecAs("alt_app_clone", first.password, "SELECT count(*) FROM alt_items");
  EXPECT_TRUE(s.ok()) << s;
  // The previous user keeps working: no failed logins.
  EXPECT_TRUE(pg().CanLogin("alt_app", "alt-password-1"));
  EXPECT_EQ(Parse(fake_.ValueAt(arn, kAwsPrevious)).username, "alt_app");

  // Second rotation: back to the original user with a new password.
  s = Rotate(handler, arn, Token(6), /*repeat=*/2);
  ASSERT_TRUE(s.ok()) << s;
  PostgresCredential second = Parse(fake_.ValueAt(arn, kAwsCurrent));
  EXPECT_EQ(second.username, "alt_app");
  EXPECT_NE(second.password, "alt-password-1");
  EXPECT_TRUE(pg().CanLogin("alt_app", second.password));
  EXPECT_FALSE(pg().CanLogin("alt_app", "alt-password-1"));
  EXPECT_TRUE(pg().CanLogin("alt_app_clone", first.password));  // still the previous user
  s = pg().ExecAs("alt_app", second.password, "SELECT count(*) FROM alt_items");
  EXPECT_TRUE(s.ok()) << s;

  // Third: the clone again, existing now, with a new password.
  s = Rotate(handler, arn, Token(9));
  ASSERT_TRUE(s.ok()) << s;
  PostgresCredential third = Parse(fake_.ValueAt(arn, kAwsCurrent));
  EXPECT_EQ(third.username, "alt_app_clone");
  EXPECT_TRUE(pg().CanLogin("alt_app_clone", third.password));
  EXPECT_FALSE(pg().CanLogin("alt_app_clone", first.password));
  EXPECT_TRUE(pg().CanLogin("alt_app", second.password));
}

TEST_F(PostgresRotationTest, AlternatingUsersNeedAMasterSecret) {
  const std::string arn = fake_.AddSecret("db/alt_nomaster", Json("alt_nomaster", "pw-123456"));
  PostgresRotation handler(Options(PostgresStrategy::kAlternatingUsers));
  fake_.StartRotation(arn, Token(10));
  StepContext ctx{arn, Token(10), fake_};
  absl::Status s = handler.CreateSecret(ctx);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("master_secret"));
  EXPECT_EQ(fake_.ValueAt(arn, kAwsPending), "");
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseAMasterForAnotherHost) {
  fake_.AddSecret("db/elsewhere", absl::StrCat(R"({"engine":"postgres","host":"10.9.9.9",)",
                                               R"("username":"root","password":"master-pw"})"));
  const std::string arn =
      fake_.AddSecret("db/alt_host", Json("alt_host", "pw-123456", "db/elsewhere"));
  PostgresRotation handler(Options(PostgresStrategy::kAlternatingUsers));
  fake_.StartRotation(arn, Token(11));
  StepContext ctx{arn, Token(11), fake_};
  ASSERT_TRUE(handler.CreateSecret(ctx).ok());
  absl::Status s = handler.SetSecret(ctx);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("another host"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("master-pw")));
}

TEST_F(PostgresRotationTest, AlternatingUsersCloneHasOnlyTheOriginalsMembership) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_only LOGIN PASSWORD 'only-password-1';"
                        "CREATE ROLE alt_only_group NOLOGIN;"
                        "GRANT alt_only_group TO alt_only;")
                  .ok());
  fake_.AddSecret("db/master", Json(pg().superuser(), pg().superuser_password()));
  const std::string arn =
      fake_.AddSecret("db/alt_only", Json("alt_only", "only-password-1", "db/master"));
  PostgresRotation handler(Options(PostgresStrategy::kAlternatingUsers));
  absl::Status s = Rotate(handler, arn, Token(20));
  ASSERT_TRUE(s.ok()) << s;

  auto attributes = Rows(
      "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit, "
      "rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = 'alt_only_clone'");
  ASSERT_EQ(attributes.size(), 1u);
  EXPECT_EQ(attributes[0], (std::vector<std::string>{"f", "f", "f", "f", "f", "t", "t"}));
  auto memberships = Rows(
      "SELECT r.rolname FROM pg_catalog.pg_auth_members m "
      "JOIN pg_catalog.pg_roles r ON r.oid = m.roleid "
      "JOIN pg_catalog.pg_roles c ON c.oid = m.member WHERE c.rolname = 'alt_only_clone'");
  EXPECT_EQ(memberships, (std::vector<std::vector<std::string>>{{"alt_only"}}));
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseTheMasterRole) {
  // The superuser the master secret logs in as (coffer_admin).
  ExpectAlternatingRefused(pg().superuser(), pg().superuser_password(), "master secret's own role",
                           21);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseTheMasterRoleFromItsTwin) {
  // "coffer_admin_clone" rotates to "coffer_admin": ALTER ROLE of the master.
  ExpectAlternatingRefused(pg().superuser() + "_clone", "twin-pw-1", "master secret's own role",
                           22);
  EXPECT_TRUE(pg().CanLogin(pg().superuser(), pg().superuser_password()));
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseASuperuser) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_super SUPERUSER LOGIN PASSWORD 'super-pw-1'").ok());
  ExpectAlternatingRefused("alt_super", "super-pw-1", "it has SUPERUSER", 23);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseACreateRoleRole) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_creator CREATEROLE LOGIN PASSWORD 'creator-pw-1'").ok());
  ExpectAlternatingRefused("alt_creator", "creator-pw-1", "it has CREATEROLE", 24);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseReplicationAndBypassRls) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_repl REPLICATION LOGIN PASSWORD 'repl-pw-1';"
                        "CREATE ROLE alt_bypass BYPASSRLS LOGIN PASSWORD 'bypass-pw-1';")
                  .ok());
  ExpectAlternatingRefused("alt_repl", "repl-pw-1", "it has REPLICATION", 25);
  ExpectAlternatingRefused("alt_bypass", "bypass-pw-1", "it has BYPASSRLS", 26);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseAMemberOfTheMasterRole) {
  const std::string master = pg().superuser();
  ASSERT_TRUE(
      pg().Exec(absl::StrCat("CREATE ROLE alt_member LOGIN PASSWORD 'member-pw-1';", "GRANT ",
                             master, " TO alt_member;", "CREATE ROLE alt_admins NOLOGIN;", "GRANT ",
                             master, " TO alt_admins;",
                             "CREATE ROLE alt_indirect LOGIN PASSWORD 'indirect-pw-1';"
                             "GRANT alt_admins TO alt_indirect;"))
          .ok());
  const std::string reason = absl::StrCat("member of the master secret's role \"", master, "\"");
  ExpectAlternatingRefused("alt_member", "member-pw-1", reason, 27);
  ExpectAlternatingRefused("alt_indirect", "indirect-pw-1", reason, 28);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseARoleTheMasterIsAMemberOf) {
  ASSERT_TRUE(pg().Exec(absl::StrCat("CREATE ROLE alt_power LOGIN PASSWORD 'power-pw-1';",
                                     "GRANT alt_power TO ", pg().superuser(), ";"))
                  .ok());
  ExpectAlternatingRefused("alt_power", "power-pw-1", "is a member of it", 29);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseAMemberOfAPowerfulRole) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_su_group SUPERUSER NOLOGIN;"
                        "CREATE ROLE alt_via_su LOGIN PASSWORD 'via-pw-1';"
                        "GRANT alt_su_group TO alt_via_su;")
                  .ok());
  ExpectAlternatingRefused("alt_via_su", "via-pw-1",
                           "member of role \"alt_su_group\", which has SUPERUSER", 30);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseReservedRoles) {
  ExpectAlternatingRefused("postgres", "reserved-pw-1", "PostgreSQL's own roles", 31);
  ExpectAlternatingRefused("pg_monitor", "reserved-pw-2", "PostgreSQL's own roles", 32);
}

TEST_F(PostgresRotationTest, AlternatingUsersRefuseAnExistingCloneWithMoreMemberships) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_squat LOGIN PASSWORD 'squat-pw-1';"
                        "CREATE ROLE alt_finance NOLOGIN;"
                        "CREATE ROLE alt_squat_clone LOGIN PASSWORD 'squat-clone-pw';"
                        "GRANT alt_squat TO alt_squat_clone;"
                        "GRANT alt_finance TO alt_squat_clone;")
                  .ok());
  ExpectAlternatingRefused("alt_squat", "squat-pw-1", "member of \"alt_finance\"", 33);
  EXPECT_TRUE(pg().CanLogin("alt_squat_clone", "squat-clone-pw"));
}

TEST_F(PostgresRotationTest, SecretWithoutSslmodeRefusesPlaintext) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE su_tls LOGIN PASSWORD 'tls-password-1'").ok());
  const std::string arn =
      fake_.AddSecret("db/su_tls", Json("su_tls", "tls-password-1", "", /*sslmode=*/""));
  PostgresRotation handler(Options(PostgresStrategy::kSingleUser));
  fake_.StartRotation(arn, Token(40));
  StepContext ctx{arn, Token(40), fake_};
  ASSERT_TRUE(handler.CreateSecret(ctx).ok());
  const std::string pending = Parse(fake_.ValueAt(arn, kAwsPending)).password;

  absl::Status s = handler.SetSecret(ctx);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("SSL was required"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("sslmode require"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("plaintext is refused"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr(pending)));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("tls-password-1")));
  EXPECT_TRUE(pg().CanLogin("su_tls", "tls-password-1"));
  EXPECT_FALSE(pg().CanLogin("su_tls", pending));
}

TEST_F(PostgresRotationTest, ConfiguredCaMeansVerifyFull) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE su_ca LOGIN PASSWORD 'ca-password-1'").ok());
  const std::string arn =
      fake_.AddSecret("db/su_ca", Json("su_ca", "ca-password-1", "", /*sslmode=*/""));
  PostgresRotationOptions options = Options(PostgresStrategy::kSingleUser);
  options.ssl_root_cert = "/nonexistent/db-ca.crt";  // never read: the server has no TLS
  PostgresRotation handler(options);
  fake_.StartRotation(arn, Token(41));
  StepContext ctx{arn, Token(41), fake_};
  ASSERT_TRUE(handler.CreateSecret(ctx).ok());
  absl::Status s = handler.SetSecret(ctx);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("sslmode verify-full"));
  EXPECT_TRUE(pg().CanLogin("su_ca", "ca-password-1"));

  // The secret may still say otherwise.
  const std::string plain = fake_.AddSecret("db/su_ca_plain", Json("su_ca", "ca-password-1"));
  s = Rotate(handler, plain, Token(42));
  EXPECT_TRUE(s.ok()) << s;
}

TEST_F(PostgresRotationTest, MasterLoginFollowsTheMasterSecretsSslmode) {
  ASSERT_TRUE(pg().Exec("CREATE ROLE alt_tls LOGIN PASSWORD 'alt-tls-pw'").ok());
  // The rotated secret allows plaintext; the master secret does not.
  fake_.AddSecret("db/master_tls",
                  Json(pg().superuser(), pg().superuser_password(), "", /*sslmode=*/""));
  const std::string arn =
      fake_.AddSecret("db/alt_tls", Json("alt_tls", "alt-tls-pw", "db/master_tls"));
  PostgresRotation handler(Options(PostgresStrategy::kAlternatingUsers));
  fake_.StartRotation(arn, Token(43));
  StepContext ctx{arn, Token(43), fake_};
  ASSERT_TRUE(handler.CreateSecret(ctx).ok());
  absl::Status s = handler.SetSecret(ctx);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("plaintext is refused"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr(pg().superuser_password())));
  EXPECT_FALSE(RoleExists("alt_tls_clone"));
}

TEST(PostgresLoginTest, SslmodeDefaults) {
  PostgresCredential c;
  c.host = "db";
  c.username = "app";
  c.password = "pw";
  PostgresRotationOptions options;

  PgLogin login = LoginFor(c, options);  // no CA, no sslmode: never plaintext
  EXPECT_EQ(login.sslmode, "require");
  EXPECT_EQ(login.sslrootcert, "");

  options.ssl_root_cert = "/etc/coffer/db-ca.crt";
  login = LoginFor(c, options);
  EXPECT_EQ(login.sslmode, "verify-full");
  EXPECT_EQ(login.sslrootcert, "/etc/coffer/db-ca.crt");

  for (const char* mode : {"disable", "prefer", "verify-ca"}) {
    c.sslmode = mode;
    EXPECT_EQ(LoginFor(c, options).sslmode, mode);
    EXPECT_EQ(LoginFor(c, PostgresRotationOptions{}).sslmode, mode);
  }
  EXPECT_EQ(login.host, "db");
  EXPECT_EQ(login.user, "app");
  EXPECT_EQ(login.password, "pw");
}

TEST(PostgresLoginTest, ReservedRoleNames) {
  EXPECT_TRUE(IsReservedRoleName("postgres"));
  EXPECT_TRUE(IsReservedRoleName("pg_monitor"));
  EXPECT_TRUE(IsReservedRoleName("pg_"));
  EXPECT_FALSE(IsReservedRoleName("app"));
  EXPECT_FALSE(IsReservedRoleName("postgres_app"));
  EXPECT_FALSE(IsReservedRoleName("pgx"));
}

TEST(PostgresCredentialTest, RejectsAnUnknownSslmode) {
  auto c = ParseCredential(
      R"({"host":"db","username":"u","password":"p","sslmode":"verify-nothing"})", "AWSCURRENT");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("sslmode"));
  c = ParseCredential(R"({"host":"db","username":"u","password":"p","sslmode":"verify-full"})",
                      "AWSCURRENT");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sslmode, "verify-full");
}

TEST(PostgresCredentialTest, ParsesAndKeepsUnknownFields) {
  auto c = ParseCredential(
      R"({"engine":"postgres","host":"db","port":"6432","username":"app","password":"p","x":1})",
      "AWSCURRENT");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->port, 6432);
  EXPECT_EQ(c->dbname, "postgres");
  c->password = "q";
  auto json = SerializeCredential(*c);
  ASSERT_TRUE(json.ok());
  auto back = ParseCredential(*json, "again");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->password, "q");
  EXPECT_EQ(back->port, 6432);
  EXPECT_THAT(*json, HasSubstr("\"x\":1"));
}

TEST(PostgresCredentialTest, ErrorsNeverQuoteTheValue) {
  const std::string secret = "s3cr3t-in-broken-json";
  for (const std::string& text :
       {std::string("{\"password\":\"") + secret + "\" oops}", std::string("[\"") + secret + "\"]",
        std::string(R"({"host":"db","username":"u","password":")") + secret + R"(","port":70000})",
        std::string(R"({"engine":"mysql","host":"db","username":"u","password":")") + secret +
            "\"}",
        std::string(R"({"host":"db","password":")") + secret + "\"}"}) {
    auto c = ParseCredential(text, "pending version");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr(secret)));
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("pending version"));
  }
}

TEST(PostgresCredentialTest, AlternateUsername) {
  EXPECT_EQ(*AlternateUsername("app"), "app_clone");
  EXPECT_EQ(*AlternateUsername("app_clone"), "app");
  EXPECT_EQ(*AlternateUsername("_clone"), "_clone_clone");
  EXPECT_FALSE(AlternateUsername(std::string(60, 'a')).ok());
  EXPECT_TRUE(ParseStrategy("single-user").ok());
  EXPECT_TRUE(ParseStrategy("alternating-users").ok());
  EXPECT_FALSE(ParseStrategy("both").ok());
}

}  // namespace
}  // namespace coffer::workers
