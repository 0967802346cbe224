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

TEST(PlanRulesTest, IdsOfResizeStopAndRenewFollowTheIdRuleAndAreCutInMessages) {
  EXPECT_THAT(CheckPlanId("drill-1"), IsOk());
  EXPECT_THAT(CheckPlanId("a b"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "plan_id: must be 1-128 characters of [A-Za-z0-9._-], got \"a b\""));
  // 1 MB echoed whole would not fit a gRPC status (8 KiB of metadata).
  const absl::Status long_id = CheckPlanId(std::string(1000000, 'x'));
  EXPECT_THAT(long_id, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(1000000 bytes)")));
  EXPECT_LT(long_id.message().size(), 200u);
  EXPECT_LT(ValidatePlanSpec(Streaming(std::string(1000000, 'x'))).message().size(), 200u);

  v1::RenewLeasesRequest renew;
  for (size_t i = 0; i < kMaxRenewPlanIds; ++i) renew.add_plan_ids(absl::StrCat("p", i));
  EXPECT_THAT(CheckRenewLeases(renew), IsOk());
  renew.add_plan_ids("one-more");
  EXPECT_THAT(CheckRenewLeases(renew),
              StatusIs(absl::StatusCode::kInvalidArgument, "plan_ids: at most 1024 ids, got 1025"));
  renew.clear_plan_ids();
  renew.add_plan_ids("p");
  renew.mutable_lease()->set_seconds(-1);  // Answered OK, it ended the plan (attack N17).
  EXPECT_THAT(CheckRenewLeases(renew), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("lease: must not be negative")));
  renew.mutable_lease()->set_seconds(0);
  EXPECT_THAT(CheckRenewLeases(renew),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lease: must be positive")));
  renew.mutable_lease()->set_seconds(0);
  renew.mutable_lease()->set_nanos(1);  // Renewed a plan into expiring at once (attack N11).
  EXPECT_THAT(CheckRenewLeases(renew),
              StatusIs(absl::StatusCode::kInvalidArgument, "lease: must be at least 1s, got 1ns"));
  renew.mutable_lease()->set_nanos(999999999);
  EXPECT_THAT(CheckRenewLeases(renew), StatusIs(absl::StatusCode::kInvalidArgument,
                                                "lease: must be at least 1s, got 999.999999ms"));
  renew.mutable_lease()->set_seconds(1);
  renew.mutable_lease()->set_nanos(0);
  EXPECT_THAT(CheckRenewLeases(renew), IsOk());
  renew.mutable_lease()->set_seconds(60);
  EXPECT_THAT(CheckRenewLeases(renew), IsOk());
  v1::RenewLeasesRequest bad;
  bad.add_plan_ids("ok");
  bad.add_plan_ids("a\nb");
  EXPECT_THAT(CheckRenewLeases(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("plan_ids[1]: must be")));
}

TEST(PlanRulesTest, RetainedTargetsBelowOneBlockAreRefused) {
  EXPECT_EQ(BelowOneBlockProblem(0, uint64_t{1} << 30), std::nullopt);  // A phase of 0: fine.
  EXPECT_EQ(BelowOneBlockProblem(uint64_t{1} << 30, uint64_t{1} << 30), std::nullopt);
  EXPECT_EQ(BelowOneBlockProblem(100 << 20, uint64_t{1} << 30),
            "100 MiB is less than one block (1 GiB): the plan would hold nothing; use a block "
            "size of at most 100 MiB");
  v1::PlanSpec spec;
  spec.set_plan_id("small");
  spec.mutable_retained()->set_block_size(uint64_t{1} << 30);
  spec.mutable_retained()->add_phases()->mutable_target()->set_bytes(uint64_t{1} << 30);
  spec.mutable_retained()->add_phases()->mutable_target()->set_bytes(100 << 20);
  EXPECT_THAT(CheckRetainedCost(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("retained.phases[1].target: 100 MiB is less than one block")));
  // Block 2^63 and target 2^63-1: no longer a plan of 0 blocks admitted as 0 bytes.
  spec.mutable_retained()->set_block_size(uint64_t{1} << 63);
  spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_bytes((uint64_t{1} << 63) - 1);
  EXPECT_THAT(CheckRetainedCost(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is less than one block")));
}

TEST(PlanRulesTest, ARetainedPlanOfNothingButZeroIsRefused) {
  v1::PlanSpec spec;
  spec.set_plan_id("zero");
  spec.mutable_retained()->add_phases()->mutable_target()->set_bytes(0);  // --target=0 (N10).
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       std::string("retained.phases: ") + std::string(kNothingToHold)));
  spec.mutable_retained()->add_phases()->mutable_target()->set_bytes(0);
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(std::string(kNothingToHold))));
  // A sawtooth: up, then down to 0.
  spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_bytes(1 << 20);
  EXPECT_THAT(ValidatePlanSpec(spec), IsOk());
}

// A lease under kMinLease was accepted and the plan ended at the agent's next tick, after
// `start` had said it started (attack N11).
TEST(PlanRulesTest, ALeaseIsAtLeastASecond) {
  EXPECT_EQ(kMinLease, absl::Seconds(1));
  EXPECT_EQ(LeaseProblem(kMinLease), std::nullopt);
  EXPECT_EQ(LeaseProblem(kMaxLease), std::nullopt);
  EXPECT_EQ(LeaseProblem(absl::Nanoseconds(1)), "must be at least 1s, got 1ns");
  EXPECT_EQ(LeaseProblem(kMinLease - absl::Nanoseconds(1)),
            "must be at least 1s, got 999.999999ms");
  EXPECT_EQ(LeaseProblem(absl::ZeroDuration()), "must be positive, got 0s");
  EXPECT_EQ(LeaseProblem(absl::Seconds(-1)), "must not be negative, got -1s");
  EXPECT_EQ(LeaseProblem(absl::Hours(25)),
            "must be at most 24h, got 25h (memloadctl run renews a shorter one)");

  v1::PlanSpec spec = Streaming("leased");
  spec.mutable_lease()->set_nanos(1);
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, "lease: must be at least 1s, got 1ns"));
  spec.mutable_lease()->set_nanos(300000000);
  EXPECT_THAT(ValidatePlanSpec(spec), StatusIs(absl::StatusCode::kInvalidArgument,
                                               "lease: must be at least 1s, got 300ms"));
  spec.mutable_lease()->set_nanos(0);
  spec.mutable_lease()->set_seconds(1);
  EXPECT_THAT(ValidatePlanSpec(spec), IsOk());
}

TEST(PlanRulesTest, ALeaseIsAtMostADay) {
  v1::PlanSpec spec = Streaming("leased");
  spec.mutable_lease()->set_seconds(24 * 3600);
  EXPECT_THAT(ValidatePlanSpec(spec), IsOk());
  spec.mutable_lease()->set_seconds(24 * 3600 + 1);
  EXPECT_THAT(ValidatePlanSpec(spec), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("lease: must be at most 24h, got 24h1s")));
}

// A plan label is any bytes within the bounds; one label and the count are checked alone
// for memloadctl's --labels, with the words CheckPlanBounds (the agent) uses on a spec.
TEST(PlanRulesTest, PlanLabelBounds) {
  EXPECT_THAT(CheckPlanLabel("team: a/b@c", "any text, = and , too"), IsOk());
  EXPECT_THAT(
      CheckPlanLabel(std::string(kMaxLabelKeyBytes, 'k'), std::string(kMaxLabelValueBytes, 'v')),
      IsOk());
  EXPECT_THAT(CheckPlanLabel("k", ""), IsOk());
  EXPECT_THAT(CheckPlanLabel("", "v"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                "labels: a key must be 1-128 bytes, got 0 (\"\")"));
  EXPECT_THAT(CheckPlanLabel(std::string(kMaxLabelKeyBytes + 1, 'k'), "v"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("labels: a key must be 1-128 bytes, got 129 (\"kkk")));
  EXPECT_THAT(CheckPlanLabel("k", std::string(kMaxLabelValueBytes + 1, 'v')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "labels[\"k\"]: a value may be at most 256 bytes, got 257"));
  EXPECT_THAT(CheckPlanLabelCount(kMaxLabels), IsOk());
  EXPECT_THAT(CheckPlanLabelCount(kMaxLabels + 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "labels: at most 32 labels, got 33"));

  v1::PlanSpec spec = Streaming("labelled");
  (*spec.mutable_labels())["k"] = std::string(kMaxLabelValueBytes + 1, 'v');
  EXPECT_EQ(CheckPlanBounds(spec), CheckPlanLabel("k", spec.labels().at("k")));
  spec.clear_labels();
  for (size_t i = 0; i <= kMaxLabels; ++i) (*spec.mutable_labels())[absl::StrCat("k", i)] = "";
  EXPECT_EQ(CheckPlanBounds(spec), CheckPlanLabelCount(kMaxLabels + 1));
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

// Attack pass F4: a streaming block_size of 2^64-1 was refused as "streaming.window: size
// overflow: 18446744073709551615 + 16 does not fit in 64 bits", a retained one as
// RESOURCE_EXHAUSTED at the agent; now every kind names block_size.
TEST(PlanRulesTest, ABlockIsAtMostTheAddressSpace) {
  v1::PlanSpec spec = Streaming("s");
  spec.mutable_streaming()->set_block_size(kMaxBlockSize);
  EXPECT_THAT(ValidatePlanSpec(spec), IsOk());
  spec.mutable_streaming()->set_block_size(std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(ValidatePlanSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "streaming.block_size: must be at most 128 TiB (more than any machine "
                       "can map), got 18446744073709551615 bytes (15.99 EiB)"));
  v1::PlanSpec retained;
  retained.set_plan_id("r");
  retained.mutable_retained()->set_block_size(kMaxBlockSize + 1);
  retained.mutable_retained()->add_phases()->mutable_target()->set_bytes(kMaxBlockSize + 1);
  EXPECT_THAT(ValidatePlanSpec(retained),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("retained.block_size: must be at most")));
  v1::PlanSpec utilization;
  utilization.set_plan_id("u");
  utilization.mutable_utilization()->set_target_percent(50);
  utilization.mutable_utilization()->set_block_size(kMaxBlockSize + 1);
  EXPECT_THAT(ValidatePlanSpec(utilization),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("utilization.block_size: must be at most")));
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
