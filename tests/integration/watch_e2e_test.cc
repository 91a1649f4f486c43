// End-to-end tests of the change-event streams (WatchParameters,
// WatchSecrets) and parameter policies of the real coffer-store binary,
// backed by the real coffer-kms, over mutual TLS (fixture:
// params_e2e_fixture.h, which also says how a watch is made live).
//
//   WatchE2ETest  one pair for the suite: watch streams, resume across a
//                 store restart, policies.
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/errors.h"
#include "tests/integration/params_e2e_fixture.h"
#include "tests/testing/test_env.h"

namespace coffer::params_e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Watch streams and policies on one shared pair.

class WatchE2ETest : public SharedServicesTest<WatchE2ETest> {
 protected:
  void SetUp() override {
    SharedServicesTest::SetUp();
    if (HasFatalFailure()) return;
    // A test that restarted the store leaves it serving; make sure.
    ASSERT_TRUE(shared_->store->running()) << shared_->store->Output();
  }
};

TEST_F(WatchE2ETest, WatchParametersInOrderAndResumesAfterAStoreRestart) {
  std::string probe;
  auto stream = OpenLiveWatch("/w", /*recursive=*/true, &probe);
  ASSERT_FALSE(HasFatalFailure());
  auto mine = [&](const ChangeEvent& e) { return e.name() != probe; };

  // Distinct values, none of which may show up in an event.
  std::vector<std::string> values;
  auto value = [&] {
    values.push_back("wv-" + Hex(8));
    return values.back();
  };
  EXPECT_EQ(Put("/w/a", value()), 1);                                   // CREATED /w/a v1
  EXPECT_EQ(Put("/w/deep/er/b", value()), 1);                           // CREATED /w/deep/er/b v1
  EXPECT_EQ(Put("/wx/y", value()), 1);                                  // outside (shares "/w")
  EXPECT_EQ(Put("/outside/x", value()), 1);                             // outside
  EXPECT_EQ(Put("/w/a", value(), pm::PARAMETER_TYPE_STRING, true), 2);  // UPDATED /w/a v2
  Label("/w/a", 1, {"stable"});                                         // METADATA_UPDATED /w/a v1
  Delete("/w/deep/er/b");                                               // DELETED /w/deep/er/b

  ASSERT_TRUE(stream->WaitForCount(5, absl::Seconds(10), mine))
      << ::testing::PrintToString(Describe(stream->events()));
  // Anything more would be a wrong event; give it a moment to show up.
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> events = stream->events(mine);
  EXPECT_THAT(Describe(events),
              ElementsAre("CHANGE_KIND_CREATED /w/a v1", "CHANGE_KIND_CREATED /w/deep/er/b v1",
                          "CHANGE_KIND_UPDATED /w/a v2", "CHANGE_KIND_METADATA_UPDATED /w/a v1",
                          "CHANGE_KIND_DELETED /w/deep/er/b"));
  // The probe's events all came before (it stopped before the changes).
  std::vector<ChangeEvent> everything = stream->events();
  ASSERT_GE(everything.size(), events.size());
  for (size_t i = everything.size() - events.size(); i < everything.size(); ++i) {
    EXPECT_NE(everything[i].name(), probe) << i;
  }
  uint64_t previous = 0;
  for (const ChangeEvent& e : everything) {
    EXPECT_EQ(e.resource_kind(), coffer::v1::RESOURCE_KIND_PARAMETER) << Describe(e);
    EXPECT_GT(Position(e), previous) << Describe(e);
    previous = Position(e);
    EXPECT_GT(e.time().seconds(), 0);
    const std::string bytes = e.SerializeAsString();
    for (const std::string& v : values) EXPECT_EQ(bytes.find(v), std::string::npos) << Describe(e);
  }
  ASSERT_FALSE(events.empty());
  const std::string last = events.back().position();

  grpc::Status cancelled = stream->Cancel();
  EXPECT_EQ(cancelled.error_code(), grpc::StatusCode::CANCELLED) << cancelled.error_message();
  stream.reset();

  // Restart the store on the same port; two changes while nobody watches
  // (and one outside the path).
  ASSERT_TRUE(services().store->Restart().ok()) << services().store->Output();
  ASSERT_TRUE(services().WaitForServing()) << services().store->Output();
  EXPECT_EQ(Put("/w/c", value()), 1);  // CREATED /w/c v1
  EXPECT_EQ(Put("/outside/x", value(), pm::PARAMETER_TYPE_STRING, true), 2);
  Delete("/w/a");  // DELETED /w/a

  auto resumed = WatchParams("/w", /*recursive=*/true, last);
  ASSERT_TRUE(resumed->WaitForCount(2, absl::Seconds(10)))
      << ::testing::PrintToString(Describe(resumed->events()));
  // Live again: one more change arrives after the catch-up.
  EXPECT_EQ(Put("/w/c", value(), pm::PARAMETER_TYPE_STRING, true), 2);  // UPDATED /w/c v2
  ASSERT_TRUE(resumed->WaitForCount(3, absl::Seconds(10)))
      << ::testing::PrintToString(Describe(resumed->events()));
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> after = resumed->events();
  EXPECT_THAT(Describe(after),
              ElementsAre("CHANGE_KIND_CREATED /w/c v1", "CHANGE_KIND_DELETED /w/a",
                          "CHANGE_KIND_UPDATED /w/c v2"));
  uint64_t last_position = 0;
  ASSERT_TRUE(absl::SimpleAtoi(last, &last_position));
  previous = last_position;
  for (const ChangeEvent& e : after) {
    EXPECT_GT(Position(e), previous) << Describe(e);
    previous = Position(e);
    const std::string bytes = e.SerializeAsString();
    for (const std::string& v : values) EXPECT_EQ(bytes.find(v), std::string::npos) << Describe(e);
  }

  // One level: only direct children of /w.
  std::string probe2;
  auto one_level = OpenLiveWatch("/w", /*recursive=*/false, &probe2);
  ASSERT_FALSE(HasFatalFailure());
  Put("/w/deep/er/z", value());
  Put("/w/e", value());
  ASSERT_TRUE(one_level->WaitForCount(1, absl::Seconds(10),
                                      [&](const ChangeEvent& e) { return e.name() != probe2; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_THAT(Describe(one_level->events([&](const ChangeEvent& e) { return e.name() != probe2; })),
              ElementsAre("CHANGE_KIND_CREATED /w/e v1"));
}

TEST_F(WatchE2ETest, MalformedWatchRequestsAreInvalidArgument) {
  for (const std::string& start_after :
       std::vector<std::string>{"not-a-position", "-1", "12abc", " 5"}) {
    auto stream = WatchParams("/w", true, start_after);
    grpc::Status s = stream->WaitDone(absl::Seconds(10));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << start_after << ": " << s.error_code() << " " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("start_after")) << start_after;
    EXPECT_TRUE(stream->events().empty());
  }
  for (const std::string& path : std::vector<std::string>{"w", "w/x", ""}) {
    auto stream = WatchParams(path, true);
    grpc::Status s = stream->WaitDone(absl::Seconds(10));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "'" << path << "': " << s.error_code() << " " << s.error_message();
    EXPECT_EQ(Reason(s), reason::kValidation) << path;
  }
  // Secrets too.
  auto secrets_stream = WatchSecrets("", "nope");
  grpc::Status s = secrets_stream->WaitDone(absl::Seconds(10));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // A position this log never handed out: OUT_OF_RANGE.
  auto ahead = WatchParams("/w", true, "99999999999");
  s = ahead->WaitDone(absl::Seconds(10));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
}

TEST_F(WatchE2ETest, WatchSecretsSeesOnlyMatchingSecrets) {
  // The probe: a secret under the prefix, changed until the stream shows it.
  const std::string prefix = "ws-" + Hex(3) + "/match/";
  const std::string probe = prefix + "probe";
  sm::CreateSecretRequest create;
  create.set_name(probe);
  create.set_secret_string("probe");
  sm::CreateSecretResponse created;
  ASSERT_TRUE(Invoke(secrets(), &sm::SecretsManager::Stub::CreateSecret, create, &created).ok());
  auto stream = WatchSecrets(prefix);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool live = false;
  while (!live && absl::Now() < deadline) {
    sm::PutSecretValueRequest put;
    put.set_secret_id(probe);
    put.set_secret_string("probe " + Hex(4));
    sm::PutSecretValueResponse resp;
    ASSERT_TRUE(Invoke(secrets(), &sm::SecretsManager::Stub::PutSecretValue, put, &resp).ok());
    live = stream->WaitForCount(1, absl::Milliseconds(100));
  }
  ASSERT_TRUE(live);
  auto mine = [&](const ChangeEvent& e) { return e.name() != probe; };

  const std::string value = "secret-value-" + Hex(8);
  auto create_and_put = [&](const std::string& name) {
    sm::CreateSecretRequest c;
    c.set_name(name);
    c.set_secret_string(value);
    sm::CreateSecretResponse cr;
    grpc::Status s = Invoke(secrets(), &sm::SecretsManager::Stub::CreateSecret, c, &cr);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    sm::PutSecretValueRequest p;
    p.set_secret_id(name);
    p.set_secret_string(value + "-2");
    sm::PutSecretValueResponse pr;
    s = Invoke(secrets(), &sm::SecretsManager::Stub::PutSecretValue, p, &pr);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    return std::make_pair(cr.version_id(), pr.version_id());
  };
  const std::string other = "ws-other/" + Hex(3);
  const std::string match = prefix + "app";
  create_and_put(other);  // not under the prefix
  auto [v1, v2] = create_and_put(match);
  Put("/" + prefix + "param", "a parameter, not a secret");  // /ws-.../match/param: a parameter
  create_and_put(other + "/" + prefix);  // contains the prefix, does not start with it

  ASSERT_TRUE(stream->WaitForCount(2, absl::Seconds(10), mine))
      << ::testing::PrintToString(Describe(stream->events()));
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> events = stream->events(mine);
  EXPECT_THAT(Describe(events), ElementsAre("CHANGE_KIND_CREATED " + match + " v" + v1,
                                            "CHANGE_KIND_UPDATED " + match + " v" + v2));
  for (const ChangeEvent& e : events) {
    EXPECT_EQ(e.resource_kind(), coffer::v1::RESOURCE_KIND_SECRET);
    EXPECT_EQ(e.SerializeAsString().find(value), std::string::npos);
  }
  if (events.size() == 2) {
    EXPECT_LT(Position(events[0]), Position(events[1]));
  }
}

TEST_F(WatchE2ETest, ExpirationPolicyNotifiesThenDeletes) {
  std::string probe;
  auto stream = OpenLiveWatch("/exp", /*recursive=*/true, &probe);
  ASSERT_FALSE(HasFatalFailure());
  auto mine = [&](const ChangeEvent& e) { return e.name() != probe; };

  const absl::Time expires = absl::Now() + absl::Seconds(4);
  const std::string timestamp =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", expires, absl::UTCTimeZone());
  const std::string policies = absl::StrCat(
      R"([{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":")", timestamp,
      R"("}},{"Type":"ExpirationNotification","Version":"1.0",)"
      R"("Attributes":{"Before":"1","Unit":"Hours"}}])");
  const std::string value = "expiring-" + Hex(6);
  pm::PutParameterResponse put;
  grpc::Status s = TryPut("/exp/token", value, pm::PARAMETER_TYPE_STRING, false, &put,
                          [&](pm::PutParameterRequest& r) {
                            r.set_tier(pm::PARAMETER_TIER_ADVANCED);
                            r.set_policies(policies);
                          });
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << policies;
  EXPECT_EQ(put.tier(), pm::PARAMETER_TIER_ADVANCED);
  EXPECT_EQ(Value("/exp/token"), value);
  // Policies on a Standard parameter are refused.
  s = TryPut("/exp/standard", value, pm::PARAMETER_TYPE_STRING, false, nullptr,
             [&](pm::PutParameterRequest& r) {
               r.set_tier(pm::PARAMETER_TIER_STANDARD);
               r.set_policies(policies);
             });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // The notification is due at once (1 hour before expiry is in the past),
  // the expiry in ~4 s.
  pm::Parameter p;
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Get("/exp/token", &p).error_code() == grpc::StatusCode::NOT_FOUND; },
      absl::Seconds(10)))
      << "still there: " << p.value();
  EXPECT_GE(absl::Now(), expires - absl::Seconds(1));  // not before its time
  s = Get("/exp/token", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(s), reason::kParameterNotFound);

  ASSERT_TRUE(stream->WaitForCount(3, absl::Seconds(5), mine))
      << ::testing::PrintToString(Describe(stream->events()));
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<ChangeEvent> events = stream->events(mine);
  EXPECT_THAT(Describe(events), ElementsAre("CHANGE_KIND_CREATED /exp/token v1",
                                            "CHANGE_KIND_EXPIRATION_NOTIFICATION /exp/token v1",
                                            "CHANGE_KIND_EXPIRED /exp/token v1"));
  if (events.size() == 3) {
    EXPECT_FALSE(events[1].detail().empty());
    EXPECT_FALSE(events[2].detail().empty());
    EXPECT_LT(Position(events[0]), Position(events[1]));
    EXPECT_LT(Position(events[1]), Position(events[2]));
  }
  for (const ChangeEvent& e : events) {
    EXPECT_EQ(e.SerializeAsString().find(value), std::string::npos) << Describe(e);
  }
  // Gone from listings too, and the name is free again.
  for (const auto& q : ByPath("/exp", true)) EXPECT_NE(q.name(), "/exp/token");
  EXPECT_EQ(Put("/exp/token", "again"), 1);
}

}  // namespace
}  // namespace coffer::params_e2e
