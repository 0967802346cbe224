// The plan rules on their own: limits at their edges, one message per problem.
#include "proto/plan_rules.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace plan_rules {
namespace {

using ::testing::HasSubstr;

v1::PlanSpec Streaming(const std::string& id) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_streaming()->set_block_size(4096);
  return spec;
}

TEST(PlanRulesTest, PlanId) {
  EXPECT_EQ(PlanIdProblem("drill-1.a_b"), std::nullopt);
  EXPECT_EQ(PlanIdProblem(std::string(kMaxPlanIdLength, 'x')), std::nullopt);
  EXPECT_NE(PlanIdProblem(std::string(kMaxPlanIdLength + 1, 'x')), std::nullopt);
  EXPECT_NE(PlanIdProblem(""), std::nullopt);
  EXPECT_NE(PlanIdProblem("a b"), std::nullopt);
  EXPECT_THAT(ValidatePlanSpec(Streaming("a b")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "plan_id: must be 1-128 characters of [A-Za-z0-9._-], got \"a b\""));
  // A plan file may leave the id to memloadctl.
  EXPECT_THAT(ValidatePlanSpec(Streaming(""), PlanIdRule::kOptional), IsOk());
  EXPECT_THAT(ValidatePlanSpec(Streaming("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("plan_id")));
}

TEST(PlanRulesTest, OomScoreAdjRange) {
  EXPECT_EQ(OomScoreAdjProblem(kMinOomScoreAdj), std::nullopt);
  EXPECT_EQ(OomScoreAdjProblem(kMaxOomScoreAdj), std::nullopt);
  EXPECT_EQ(OomScoreAdjProblem(kMaxOomScoreAdj + 1), "must be in [-1000, 1000], got 1001");
  EXPECT_NE(OomScoreAdjProblem(kMinOomScoreAdj - 1), std::nullopt);
  v1::PlanSpec spec = Streaming("x");
  spec.set_oom_score_adj(-1001);
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "oom_score_adj: must be in [-1000, 1000], got -1001"));
}

TEST(PlanRulesTest, Percent) {
  EXPECT_EQ(PercentProblem(100, /*allow_100=*/true), std::nullopt);
  EXPECT_EQ(PercentProblem(100, /*allow_100=*/false), "percent must be in [0.001, 100), got 100");
  EXPECT_NE(PercentProblem(0, true), std::nullopt);
  EXPECT_NE(PercentProblem(std::nan(""), true), std::nullopt);
}

TEST(PlanRulesTest, Durations) {
  google::protobuf::Duration duration;
  duration.set_seconds(-1);
  EXPECT_THAT(CheckDuration(duration, "lease", false).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "lease: must not be negative, got -1s"));
  duration.set_seconds(0);
  EXPECT_THAT(CheckDuration(duration, "lease", true).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "lease: must be positive, got 0s"));
  duration.set_seconds(kMaxDurationSeconds + 1);
  EXPECT_THAT(CheckDuration(duration, "d", false).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a valid duration")));
  duration.set_seconds(1);
  duration.set_nanos(-1);  // Mixed signs.
  EXPECT_THAT(CheckDuration(duration, "d", false).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a valid duration")));
  duration.set_nanos(500000000);
  absl::StatusOr<absl::Duration> checked = CheckDuration(duration, "d", false);
  ASSERT_THAT(checked, IsOk());
  EXPECT_EQ(*checked, absl::Milliseconds(1500));
}

TEST(PlanRulesTest, StreamingLimits) {
  v1::PlanSpec spec = Streaming("s");
  spec.mutable_streaming()->set_workers(kMaxStreamWorkers);
  EXPECT_THAT(ValidatePlanSpec(spec), IsOk());
  spec.mutable_streaming()->set_workers(kMaxStreamWorkers + 1);
  EXPECT_THAT(ValidatePlanSpec(spec), StatusIs(absl::StatusCode::kInvalidArgument,
                                               "streaming.workers: must be 1..64, got 65"));
  spec = Streaming("s");
  spec.mutable_streaming()->set_window(std::numeric_limits<uint64_t>::max() / 4096 + 1);
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("streaming.window: ")));
  spec = Streaming("s");
  spec.mutable_streaming()->set_amount_bytes(5000);
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "streaming.amount_bytes: must be a multiple of the block size (4096 "
                       "bytes), got 5000"));
}

TEST(PlanRulesTest, RetainedPhases) {
  v1::PlanSpec spec;
  spec.set_plan_id("r");
  spec.mutable_retained();
  EXPECT_THAT(ValidatePlanSpec(spec), StatusIs(absl::StatusCode::kInvalidArgument,
                                               "retained.phases: at least one phase is required"));
  v1::Phase* phase = spec.mutable_retained()->add_phases();
  phase->mutable_target()->set_percent_of_total(80);
  EXPECT_THAT(ValidatePlanSpec(spec), IsOk());
  phase->set_ramp_bytes_per_sec(1);
  phase->mutable_ramp_duration()->set_seconds(1);
  EXPECT_THAT(ValidatePlanSpec(spec), StatusIs(absl::StatusCode::kInvalidArgument,
                                               absl::StrCat("retained.phases[0]: ", kBothRamps)));
}

TEST(PlanRulesTest, NoKind) {
  v1::PlanSpec spec;
  spec.set_plan_id("k");
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the plan has no kind")));
}

}  // namespace
}  // namespace plan_rules
}  // namespace memload
