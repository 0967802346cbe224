#include "controller/lease_view.h"

#include "controller/testing/text_proto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::ParseTextProto;
using ::testing::HasSubstr;

TEST(LeaseViewTest, PlanRunTime) {
  EXPECT_EQ(PlanRunTime(ParseTextProto<v1::PlanSpec>(R"pb(retained {
                                                            phases {
                                                              ramp_duration { seconds: 60 }
                                                              hold { seconds: 600 }
                                                            }
                                                            phases { hold { seconds: 30 } }
                                                          })pb")),
            absl::Seconds(690));
  EXPECT_EQ(PlanRunTime(ParseTextProto<v1::PlanSpec>(R"pb(retained {
                                                            phases { ramp_duration { seconds: 30 } }
                                                            repeat: 10
                                                          })pb")),
            absl::Seconds(300));
  EXPECT_EQ(PlanRunTime(
                ParseTextProto<v1::PlanSpec>(R"pb(retained { phases { hold_forever: true } })pb")),
            absl::InfiniteDuration());
  EXPECT_EQ(PlanRunTime(ParseTextProto<v1::PlanSpec>(R"pb(retained {
                                                            phases {}
                                                            repeat_forever: true
                                                          })pb")),
            absl::InfiniteDuration());
  EXPECT_EQ(PlanRunTime(ParseTextProto<v1::PlanSpec>(R"pb(utilization { target_percent: 50 })pb")),
            absl::InfiniteDuration());
  EXPECT_EQ(
      PlanRunTime(ParseTextProto<v1::PlanSpec>(R"pb(streaming { duration { seconds: 5 } })pb")),
      absl::Seconds(5));
  EXPECT_EQ(PlanRunTime(ParseTextProto<v1::PlanSpec>(R"pb(streaming { amount_bytes: 1024 })pb")),
            std::nullopt);
}

NodeResult<v1::PlanStatus> Started(const std::string& target, int64_t lease_seconds) {
  v1::PlanStatus plan = ParseTextProto<v1::PlanStatus>(R"pb(
    plan_id: "p"
    spec { retained {} }
    state: PLAN_STATE_RAMPING
    target_bytes: 1073741824
  )pb");
  const absl::Time started = absl::FromUnixSeconds(1793715901);  // 2026-11-03 14:25:01 UTC.
  ToProtoTimestamp(started, plan.mutable_started());
  ToProtoTimestamp(started + absl::Seconds(lease_seconds), plan.mutable_lease_expires());
  return {target, plan};
}

TEST(LeaseViewTest, WarnsWhenThePlanOutlastsItsLease) {
  const v1::PlanSpec ten_minutes =
      ParseTextProto<v1::PlanSpec>(R"pb(plan_id: "p"
                                        retained { phases { hold { seconds: 600 } } })pb");
  std::vector<NodeResult<v1::PlanStatus>> nodes = {
      Started("10.0.0.1:7070", 60),
      Started("10.0.0.2:7070", 120),
      {"10.0.0.3:7070", absl::UnavailableError("down")}};
  const std::string warning = LeaseWarning(ten_minutes, nodes);
  EXPECT_THAT(warning, HasSubstr("plan p runs for 10m00s but its lease is 1m00s"));
  EXPECT_THAT(warning, HasSubstr("at 14:26:01 UTC"));  // The earliest expiry.
  EXPECT_THAT(warning, HasSubstr("memloadctl run"));
  EXPECT_THAT(warning, HasSubstr("--lease=11m00s"));
  EXPECT_THAT(
      LeaseWarning(
          ParseTextProto<v1::PlanSpec>(R"pb(retained { phases { hold_forever: true } })pb"), nodes),
      HasSubstr("runs until stopped"));
  // A plan that ends within its lease, or no lease known: nothing to say.
  EXPECT_EQ(LeaseWarning(
                ParseTextProto<v1::PlanSpec>(R"pb(retained { phases { hold { seconds: 30 } } })pb"),
                nodes),
            "");
  EXPECT_EQ(LeaseWarning(ten_minutes, {{"10.0.0.3:7070", absl::UnavailableError("down")}}), "");
}

TEST(LeaseViewTest, StartTableShowsLeaseAndExpiry) {
  const std::string table = FormatStartTable(
      {Started("10.0.0.1:7070", 60), {"10.0.0.3:7070", absl::UnavailableError("down")}}, 0);
  EXPECT_EQ(
      table,
      "AGENT          STATUS  PLAN  STATE    TARGET  LEASE       EXPIRES  ERROR\n"
      "10.0.0.1:7070  ok      p     ramping   1 GiB  1m00s  14:26:01 UTC\n"
      "10.0.0.3:7070  FAILED  -     -             -      -             -  UNAVAILABLE: down\n");
  const std::string json = StartJson({Started("10.0.0.1:7070", 60)}, {"warning: \"x\""});
  EXPECT_THAT(json, HasSubstr(R"("warnings": ["warning: \"x\""])"));
  EXPECT_THAT(json, HasSubstr(R"("leaseExpires":"2026-11-03T14:26:01Z")"));
}

TEST(LeaseViewTest, UsageAddsRecentlyEndedPlans) {
  v1::NodeUsage usage = ParseTextProto<v1::NodeUsage>(
      R"pb(plans { plan_id: "running" state: PLAN_STATE_HOLDING })pb");
  v1::ListPlansResponse listed = ParseTextProto<v1::ListPlansResponse>(R"pb(
    plans { plan_id: "running" state: PLAN_STATE_HOLDING }
    plans {
      plan_id: "expired"
      state: PLAN_STATE_LEASE_EXPIRED
      ended { seconds: 1000 }
    }
    plans {
      plan_id: "killed"
      state: PLAN_STATE_OOM_KILLED
      ended { seconds: 2000 }
    }
  )pb");
  AddRecentlyEnded(listed, absl::FromUnixSeconds(1500), &usage);
  ASSERT_EQ(usage.plans_size(), 2);
  EXPECT_EQ(usage.plans(0).plan_id(), "running");
  EXPECT_EQ(usage.plans(1).plan_id(), "killed");  // "expired" ended too long ago.
}

}  // namespace
}  // namespace controller
}  // namespace memload
