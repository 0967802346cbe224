#include "agent/plan_convert.h"

#include <cmath>
#include <initializer_list>
#include <limits>
#include <utility>

#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

using ::testing::HasSubstr;

v1::Phase BytesPhase(uint64_t bytes) {
  v1::Phase phase;
  phase.mutable_target()->set_bytes(bytes);
  return phase;
}

v1::RetainedPlan OnePhase(uint64_t bytes) {
  v1::RetainedPlan plan;
  *plan.add_phases() = BytesPhase(bytes);
  return plan;
}

void ExpectInvalid(const absl::Status& status, const std::string& text) {
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(text)));
}

// ---- retained ----

TEST(ToRetainedPlanSpecTest, DefaultsAreTheDocumentedOnes) {
  absl::StatusOr<RetainedPlanSpec> spec = ToRetainedPlanSpec(OnePhase(64 << 20));
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->set.block_size, 1u << 20);
  EXPECT_EQ(spec->set.touch, TouchMode::kPage);
  EXPECT_EQ(spec->set.backing, Backing::kMmap);
  EXPECT_FALSE(spec->set.huge_pages);
  EXPECT_FALSE(spec->set.mlock);
  EXPECT_EQ(spec->repeat, 1u);
  ASSERT_EQ(spec->phases.size(), 1u);
  EXPECT_EQ(spec->phases[0].target_bytes, 64u << 20);
  EXPECT_EQ(spec->phases[0].ramp_bytes_per_sec, 0u);
  EXPECT_EQ(spec->phases[0].ramp_duration, absl::ZeroDuration());
  EXPECT_EQ(spec->phases[0].hold, absl::ZeroDuration());
}

TEST(ToRetainedPlanSpecTest, CopiesEveryField) {
  v1::RetainedPlan plan;
  plan.set_block_size(4096);
  plan.set_touch(v1::TOUCH_MODE_FILL);
  plan.set_backing(v1::BACKING_SHMEM);
  plan.set_huge_pages(true);
  plan.set_mlock(true);
  plan.set_repeat(3);
  v1::Phase* ramp = plan.add_phases();
  ramp->mutable_target()->set_bytes(1 << 30);
  ramp->mutable_ramp_duration()->set_seconds(5);
  ramp->mutable_ramp_duration()->set_nanos(500000000);
  ramp->mutable_hold()->set_seconds(60);
  v1::Phase* leak = plan.add_phases();
  leak->mutable_target()->set_bytes(0);
  leak->set_ramp_bytes_per_sec(1 << 20);
  leak->set_hold_forever(true);

  absl::StatusOr<RetainedPlanSpec> spec = ToRetainedPlanSpec(plan);
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->set.block_size, 4096u);
  EXPECT_EQ(spec->set.touch, TouchMode::kFill);
  EXPECT_EQ(spec->set.backing, Backing::kShmem);
  EXPECT_TRUE(spec->set.huge_pages);
  EXPECT_TRUE(spec->set.mlock);
  EXPECT_EQ(spec->repeat, 3u);
  ASSERT_EQ(spec->phases.size(), 2u);
  EXPECT_EQ(spec->phases[0].target_bytes, 1u << 30);
  EXPECT_EQ(spec->phases[0].ramp_duration, absl::Milliseconds(5500));
  EXPECT_EQ(spec->phases[0].hold, absl::Seconds(60));
  EXPECT_EQ(spec->phases[1].target_bytes, 0u);
  EXPECT_EQ(spec->phases[1].ramp_bytes_per_sec, 1u << 20);
  EXPECT_EQ(spec->phases[1].hold, absl::InfiniteDuration());
}

TEST(ToRetainedPlanSpecTest, RepeatForeverIsCoreRepeatZero) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.set_repeat_forever(true);
  absl::StatusOr<RetainedPlanSpec> spec = ToRetainedPlanSpec(plan);
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->repeat, 0u);
}

TEST(ToRetainedPlanSpecTest, HoldForeverWithZeroHoldIsFine) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->mutable_hold();  // Present, zero.
  plan.mutable_phases(0)->set_hold_forever(true);
  absl::StatusOr<RetainedPlanSpec> spec = ToRetainedPlanSpec(plan);
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->phases[0].hold, absl::InfiniteDuration());
}

TEST(ToRetainedPlanSpecTest, NoPhases) {
  ExpectInvalid(ToRetainedPlanSpec(v1::RetainedPlan()).status(),
                "retained.phases: at least one phase is required");
}

TEST(ToRetainedPlanSpecTest, UnresolvedTargetsNameThePhase) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.add_phases()->mutable_target()->set_percent_of_total(50);
  ExpectInvalid(ToRetainedPlanSpec(plan).status(),
                "retained.phases[1].target: must be resolved to bytes");

  v1::RetainedPlan unset;
  unset.add_phases();  // No target at all.
  ExpectInvalid(ToRetainedPlanSpec(unset).status(), "retained.phases[0].target: required");
}

TEST(ToRetainedPlanSpecTest, BothRampKinds) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->set_ramp_bytes_per_sec(1024);
  plan.mutable_phases(0)->mutable_ramp_duration()->set_seconds(1);
  ExpectInvalid(ToRetainedPlanSpec(plan).status(),
                "retained.phases[0]: give ramp_bytes_per_sec or ramp_duration, not both");
}

TEST(ToRetainedPlanSpecTest, NegativeDurations) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->mutable_ramp_duration()->set_seconds(-1);
  ExpectInvalid(ToRetainedPlanSpec(plan).status(),
                "retained.phases[0].ramp_duration: must not be negative");

  plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->mutable_hold()->set_nanos(-5);
  ExpectInvalid(ToRetainedPlanSpec(plan).status(), "retained.phases[0].hold: must not be negative");
}

TEST(ToRetainedPlanSpecTest, MalformedDurations) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->mutable_hold()->set_seconds(std::numeric_limits<int64_t>::max());
  ExpectInvalid(ToRetainedPlanSpec(plan).status(), "retained.phases[0].hold: not a valid duration");

  plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->mutable_ramp_duration()->set_seconds(1);
  plan.mutable_phases(0)->mutable_ramp_duration()->set_nanos(-1);  // Mixed signs.
  ExpectInvalid(ToRetainedPlanSpec(plan).status(),
                "retained.phases[0].ramp_duration: not a valid duration");

  plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->mutable_hold()->set_nanos(1000000000);
  ExpectInvalid(ToRetainedPlanSpec(plan).status(), "retained.phases[0].hold: not a valid duration");
}

TEST(ToRetainedPlanSpecTest, HoldAndHoldForever) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.mutable_phases(0)->mutable_hold()->set_seconds(3);
  plan.mutable_phases(0)->set_hold_forever(true);
  ExpectInvalid(ToRetainedPlanSpec(plan).status(),
                "retained.phases[0]: give hold or hold_forever, not both");
}

TEST(ToRetainedPlanSpecTest, RepeatAndRepeatForever) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.set_repeat(2);
  plan.set_repeat_forever(true);
  ExpectInvalid(ToRetainedPlanSpec(plan).status(),
                "retained: give repeat or repeat_forever, not both");
}

TEST(ToRetainedPlanSpecTest, UnknownEnumValues) {
  v1::RetainedPlan plan = OnePhase(1 << 20);
  plan.set_touch(static_cast<v1::TouchMode>(42));
  ExpectInvalid(ToRetainedPlanSpec(plan).status(), "retained.touch: unknown value 42");

  plan = OnePhase(1 << 20);
  plan.set_backing(static_cast<v1::Backing>(-3));
  ExpectInvalid(ToRetainedPlanSpec(plan).status(), "retained.backing: unknown value -3");
}

// ---- streaming ----

TEST(ToStreamOptionsTest, DefaultsAndFields) {
  v1::StreamingPlan plan;
  plan.set_block_size(64 << 10);
  absl::StatusOr<StreamOptions> options = ToStreamOptions(plan);
  ASSERT_THAT(options, IsOk());
  EXPECT_EQ(options->block_size, 64u << 10);
  EXPECT_EQ(options->touch, TouchMode::kPage);
  EXPECT_FALSE(options->return_to_os);
  EXPECT_EQ(options->window, 0u);
  EXPECT_EQ(options->rate_bytes_per_sec, 0u);
  EXPECT_EQ(options->workers, 1u);
  EXPECT_EQ(options->amount_bytes, 0u);
  EXPECT_EQ(options->duration, absl::ZeroDuration());

  plan.set_touch(v1::TOUCH_MODE_NONE);
  plan.set_return_to_os(true);
  plan.set_window(16);
  plan.set_rate_bytes_per_sec(100 << 20);
  plan.set_workers(64);
  plan.set_amount_bytes(640 << 10);
  plan.mutable_duration()->set_seconds(30);
  options = ToStreamOptions(plan);
  ASSERT_THAT(options, IsOk());
  EXPECT_EQ(options->touch, TouchMode::kNone);
  EXPECT_TRUE(options->return_to_os);
  EXPECT_EQ(options->window, 16u);
  EXPECT_EQ(options->rate_bytes_per_sec, 100u << 20);
  EXPECT_EQ(options->workers, 64u);
  EXPECT_EQ(options->amount_bytes, 640u << 10);
  EXPECT_EQ(options->duration, absl::Seconds(30));
}

TEST(ToStreamOptionsTest, BlockSizeIsRequired) {
  ExpectInvalid(ToStreamOptions(v1::StreamingPlan()).status(),
                "streaming.block_size: required (> 0)");
}

TEST(ToStreamOptionsTest, TooManyWorkers) {
  v1::StreamingPlan plan;
  plan.set_block_size(4096);
  plan.set_workers(65);
  ExpectInvalid(ToStreamOptions(plan).status(), "streaming.workers: must be 1..64, got 65");
}

TEST(ToStreamOptionsTest, AmountNotAMultipleOfBlocks) {
  v1::StreamingPlan plan;
  plan.set_block_size(4096);
  plan.set_amount_bytes(5000);
  ExpectInvalid(ToStreamOptions(plan).status(),
                "streaming.amount_bytes: must be a multiple of the block size (4096 bytes)");
}

TEST(ToStreamOptionsTest, WindowOverflows) {
  v1::StreamingPlan plan;
  plan.set_block_size(1 << 20);
  plan.set_window(uint64_t{1} << 50);
  ExpectInvalid(ToStreamOptions(plan).status(), "streaming.window");
}

TEST(ToStreamOptionsTest, BadDurations) {
  v1::StreamingPlan plan;
  plan.set_block_size(4096);
  plan.mutable_duration()->set_seconds(-2);
  ExpectInvalid(ToStreamOptions(plan).status(), "streaming.duration: must not be negative");
  plan.mutable_duration()->set_seconds(std::numeric_limits<int64_t>::max());
  ExpectInvalid(ToStreamOptions(plan).status(), "streaming.duration: not a valid duration");
}

TEST(ToStreamOptionsTest, UnknownTouch) {
  v1::StreamingPlan plan;
  plan.set_block_size(4096);
  plan.set_touch(static_cast<v1::TouchMode>(9));
  ExpectInvalid(ToStreamOptions(plan).status(), "streaming.touch: unknown value 9");
}

// ---- utilization ----

MemoryUseSource FixedUse() {
  return []() -> absl::StatusOr<MemoryUse> { return MemoryUse{50, 100}; };
}

TEST(ToUtilizationSpecTest, DefaultsAndFields) {
  v1::UtilizationPlan plan;
  plan.set_target_percent(85);
  absl::StatusOr<UtilizationSpec> spec = ToUtilizationSpec(plan, FixedUse());
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->target_percent, 85);
  EXPECT_EQ(spec->duration, absl::InfiniteDuration());
  EXPECT_EQ(spec->interval, absl::Milliseconds(200));
  EXPECT_EQ(spec->set.block_size, 1u << 20);
  EXPECT_EQ(spec->set.touch, TouchMode::kPage);
  EXPECT_EQ(spec->set.backing, Backing::kMmap);
  ASSERT_TRUE(spec->source);
  EXPECT_EQ(spec->source()->used_bytes, 50u);

  plan.mutable_duration()->set_seconds(600);
  plan.mutable_interval()->set_nanos(50000000);
  plan.set_block_size(2 << 20);
  plan.set_touch(v1::TOUCH_MODE_FILL);
  plan.set_backing(v1::BACKING_SHMEM);
  spec = ToUtilizationSpec(plan, FixedUse());
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->duration, absl::Minutes(10));
  EXPECT_EQ(spec->interval, absl::Milliseconds(50));
  EXPECT_EQ(spec->set.block_size, 2u << 20);
  EXPECT_EQ(spec->set.touch, TouchMode::kFill);
  EXPECT_EQ(spec->set.backing, Backing::kShmem);
}

TEST(ToUtilizationSpecTest, ValidatesWithoutASource) {
  v1::UtilizationPlan plan;
  plan.set_target_percent(40);
  absl::StatusOr<UtilizationSpec> spec = ToUtilizationSpec(plan, nullptr);
  ASSERT_THAT(spec, IsOk());
  EXPECT_FALSE(spec->source);  // The caller's (empty) source, not the stand-in.
}

TEST(ToUtilizationSpecTest, TargetPercentOutOfRange) {
  for (double percent : {0.0, -1.0, 100.0, 250.0, std::nan("")}) {
    v1::UtilizationPlan plan;
    plan.set_target_percent(percent);
    ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                  "utilization.target_percent: percent must be in [0.001, 100)");
  }
}

TEST(ToUtilizationSpecTest, BadDurations) {
  v1::UtilizationPlan plan;
  plan.set_target_percent(50);
  plan.mutable_duration();  // Present and zero.
  ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                "utilization.duration: must be positive");
  plan.mutable_duration()->set_seconds(-1);
  ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                "utilization.duration: must not be negative");

  plan.clear_duration();
  plan.mutable_interval()->set_nanos(5000000);
  ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                "utilization.interval: must be at least 10ms");
  plan.mutable_interval()->set_seconds(std::numeric_limits<int64_t>::min());
  plan.mutable_interval()->set_nanos(0);
  ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                "utilization.interval: not a valid duration");
}

TEST(ToUtilizationSpecTest, TouchNoneIsRefused) {
  v1::UtilizationPlan plan;
  plan.set_target_percent(50);
  plan.set_touch(v1::TOUCH_MODE_NONE);
  ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                "utilization.touch: utilization plans need page or fill");
}

TEST(ToUtilizationSpecTest, UnknownEnumValues) {
  v1::UtilizationPlan plan;
  plan.set_target_percent(50);
  plan.set_backing(static_cast<v1::Backing>(7));
  ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                "utilization.backing: unknown value 7");
  plan.set_backing(v1::BACKING_MMAP);
  plan.set_reference(static_cast<v1::UtilizationPlan::Reference>(5));
  ExpectInvalid(ToUtilizationSpec(plan, FixedUse()).status(),
                "utilization.reference: unknown value 5");
}

// ---- enums ----

// `unspecified` reads as `default_value`, and each (core value, proto value) pair converts
// both ways.
template <typename Core, typename Proto>
void ExpectRoundTrips(Proto unspecified, Core default_value,
                      std::initializer_list<std::pair<Core, Proto>> pairs) {
  EXPECT_EQ(FromProto(unspecified), default_value);
  for (const auto& [core, proto] : pairs) {
    EXPECT_EQ(ToProto(core), proto);
    EXPECT_EQ(FromProto(proto), core);
  }
}

TEST(EnumTest, TouchModeRoundTrips) {
  ExpectRoundTrips(v1::TOUCH_MODE_UNSPECIFIED, TouchMode::kPage,
                   {{TouchMode::kNone, v1::TOUCH_MODE_NONE},
                    {TouchMode::kPage, v1::TOUCH_MODE_PAGE},
                    {TouchMode::kFill, v1::TOUCH_MODE_FILL}});
}

TEST(EnumTest, BackingRoundTrips) {
  ExpectRoundTrips(v1::BACKING_UNSPECIFIED, Backing::kMmap,
                   {{Backing::kMalloc, v1::BACKING_MALLOC},
                    {Backing::kMmap, v1::BACKING_MMAP},
                    {Backing::kShmem, v1::BACKING_SHMEM}});
}

TEST(EnumTest, PlanStates) {
  EXPECT_EQ(ToProtoState(PlanState::kPending), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(ToProtoState(PlanState::kRamping), v1::PLAN_STATE_RAMPING);
  EXPECT_EQ(ToProtoState(PlanState::kHolding), v1::PLAN_STATE_HOLDING);
  EXPECT_EQ(ToProtoState(PlanState::kStreaming), v1::PLAN_STATE_STREAMING);
  EXPECT_EQ(ToProtoState(PlanState::kCapped), v1::PLAN_STATE_CAPPED);
  EXPECT_EQ(ToProtoState(PlanState::kCompleted), v1::PLAN_STATE_COMPLETED);
  EXPECT_EQ(ToProtoState(PlanState::kCancelled), v1::PLAN_STATE_STOPPED);
  EXPECT_EQ(ToProtoState(PlanState::kFailed), v1::PLAN_STATE_FAILED);
}

}  // namespace
}  // namespace agent
}  // namespace memload
