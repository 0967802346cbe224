// RetainedPlan: phases, ramps, holds, target changes, ceilings, cancel, failures — with
// resident memory measured from the OS (mincore in the counters, RssAnon from /proc).
#include "core/retained_plan.h"

#include <sys/resource.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "core/node_readers.h"
#include "core/testing/counting_allocator.h"
#include "core/testing/own_memory.h"
#include "core/testing/plan_runs.h"
#include "core/testing/status_matchers.h"
#include "core/testing/wait_recording_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/sizes.h"

namespace memload {
namespace {

using ::memload::testing::Eventually;
using ::memload::testing::kMiB;
using ::testing::HasSubstr;

RetainedPlanSpec OnePhase(uint64_t target, absl::Duration hold = absl::InfiniteDuration()) {
  RetainedPlanSpec spec;
  spec.set.block_size = kMiB;
  spec.set.touch = TouchMode::kPage;
  spec.set.backing = Backing::kMmap;
  Phase phase;
  phase.target_bytes = target;
  phase.hold = hold;
  spec.phases.push_back(phase);
  return spec;
}

PlanState StateOf(const PlanCounters& counters) { return counters.Snapshot().state; }

// How long a plan may take to notice a cancel, in real time, before a test calls it hung.
// The plans below run on a simulated clock that never moves after the cancel: a plan that
// waited for its next deadline instead of the cancel would never end.
constexpr absl::Duration kHung = absl::Seconds(30);

// Waits (at most kHung) for `plan` to end with OK in `state`, its memory given back.
// Returns its final counters.
PlanCountersSnapshot ExpectEndedReleased(RetainedPlan& plan, PlanState state) {
  const PlanCountersSnapshot s = ExpectEnded(plan, state, kHung);
  EXPECT_EQ(s.payload_bytes, 0u);
  EXPECT_EQ(s.resident_bytes, 0u);
  EXPECT_EQ(s.frees, s.allocations);
  return s;
}

// Whether the plan's thread is asleep on `clock` with `counters` showing `state` and
// `payload` (the plan publishes before it sleeps).
bool AsleepAt(WaitRecordingClock& clock, const PlanCounters& counters, PlanState state,
              uint64_t payload) {
  const PlanCountersSnapshot s = counters.Snapshot();
  return clock.waiters() == 1 && s.state == state && s.payload_bytes == payload;
}

TEST(RetainedPlanTest, StepHoldsTargetResidentAndCancelReturnsIt) {
  PlanCounters counters;
  WaitRecordingClock clock;
  const uint64_t rss_before = OwnMemory().rss_anon_bytes;
  std::unique_ptr<RetainedPlan> plan =
      MustStart<RetainedPlan>(OnePhase(64 * kMiB), &counters, &clock);
  ASSERT_NE(plan, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(counters) == PlanState::kHolding; }));
  // The hold's first measurement happens on reaching the target.
  PlanCountersSnapshot held = counters.Snapshot();
  EXPECT_EQ(held.payload_bytes, 64 * kMiB);
  EXPECT_GE(held.resident_bytes, 64 * kMiB);
  EXPECT_GE(OwnMemory().rss_anon_bytes, rss_before + 60 * kMiB);

  // Asleep in its hold (until its next once-a-second measurement, which never comes: the
  // clock stands still), the cancel alone wakes it.
  ASSERT_TRUE(
      Eventually([&] { return AsleepAt(clock, counters, PlanState::kHolding, 64 * kMiB); }));
  plan->Cancel();
  const PlanCountersSnapshot done = ExpectEndedReleased(*plan, PlanState::kCancelled);
  EXPECT_EQ(done.peak_payload_bytes, 64 * kMiB);
  EXPECT_LT(OwnMemory().rss_anon_bytes, rss_before + 8 * kMiB);
}

TEST(RetainedPlanTest, FiniteHoldCompletesAndReleases) {
  PlanCounters counters;
  WaitRecordingClock clock;
  const absl::Time start = clock.Now();
  std::unique_ptr<RetainedPlan> plan =
      MustStart<RetainedPlan>(OnePhase(8 * kMiB, absl::Milliseconds(50)), &counters, &clock);
  ASSERT_NE(plan, nullptr);
  // It holds, asleep until the hold's end: 50 ms of the plan's clock after the target.
  ASSERT_TRUE(Eventually([&] { return AsleepAt(clock, counters, PlanState::kHolding, 8 * kMiB); }));
  EXPECT_EQ(clock.last_deadline(), start + absl::Milliseconds(50));
  clock.Advance(absl::Milliseconds(49));
  ASSERT_TRUE(Eventually([&] { return AsleepAt(clock, counters, PlanState::kHolding, 8 * kMiB); }));
  EXPECT_THAT(plan->WaitFor(absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("running")));
  clock.Advance(absl::Milliseconds(1));
  EXPECT_EQ(ExpectEndedReleased(*plan, PlanState::kCompleted).allocations, 8u);
}

// A ramp over 800 ms of the plan's clock: at every moment it holds exactly the whole
// blocks the straight line has reached, and sleeps until the next one is due.
TEST(RetainedPlanTest, LinearRampOverDurationIsGradual) {
  PlanCounters counters;
  WaitRecordingClock clock;
  RetainedPlanSpec spec = OnePhase(64 * kMiB);
  spec.phases[0].ramp_duration = absl::Milliseconds(800);
  const absl::Time start = clock.Now();
  std::unique_ptr<RetainedPlan> plan = MustStart<RetainedPlan>(spec, &counters, &clock);
  ASSERT_NE(plan, nullptr);
  // 64 MiB in 800 ms: one 1 MiB block every 12.5 ms.
  for (int ms : {0, 100, 300, 400, 650, 799}) {
    SCOPED_TRACE(ms);
    clock.AdvanceTo(start + absl::Milliseconds(ms));
    const uint64_t line = static_cast<uint64_t>(ms / 12.5) * kMiB;
    ASSERT_TRUE(Eventually([&] { return AsleepAt(clock, counters, PlanState::kRamping, line); }))
        << counters.Snapshot().payload_bytes;
    // Asleep until the next block is due, or the next resident measurement.
    EXPECT_GT(clock.last_deadline(), clock.Now());
    EXPECT_LE(clock.last_deadline(),
              start + absl::Milliseconds(12.5 * (ms / 12.5 + 1)) + absl::Nanoseconds(1));
  }
  clock.AdvanceTo(start + absl::Milliseconds(800));
  ASSERT_TRUE(
      Eventually([&] { return AsleepAt(clock, counters, PlanState::kHolding, 64 * kMiB); }));
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

// A rate ramp (32 MiB/s, 1 MiB blocks: one every 31.25 ms) sleeps between its blocks: each
// 31.25 ms of the plan's clock brings exactly one more block and a wait or two (the block's
// and, now and then, a resident measurement's), never a spin.
TEST(RetainedPlanTest, RateRampSleepsBetweenBlocks) {
  PlanCounters counters;
  WaitRecordingClock clock;
  RetainedPlanSpec spec = OnePhase(16 * kMiB);
  spec.phases[0].ramp_bytes_per_sec = 32 * kMiB;  // 0.5 s to target
  const absl::Time start = clock.Now();
  std::unique_ptr<RetainedPlan> plan = MustStart<RetainedPlan>(spec, &counters, &clock);
  ASSERT_NE(plan, nullptr);
  ASSERT_TRUE(Eventually([&] { return AsleepAt(clock, counters, PlanState::kRamping, 0); }));
  const uint64_t waits_before = clock.waits_begun();
  for (int block = 1; block < 16; ++block) {
    SCOPED_TRACE(block);
    clock.AdvanceTo(start + absl::Microseconds(31250 * block));
    ASSERT_TRUE(
        Eventually([&] { return AsleepAt(clock, counters, PlanState::kRamping, block * kMiB); }));
  }
  clock.AdvanceTo(start + absl::Milliseconds(500));
  ASSERT_TRUE(
      Eventually([&] { return AsleepAt(clock, counters, PlanState::kHolding, 16 * kMiB); }));
  // 16 blocks, a measurement every 200 ms: about 16 + 3 waits. A plan that polled the clock
  // instead of sleeping until its next block would begin thousands.
  EXPECT_LE(clock.waits_begun() - waits_before, 2 * 16u);
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

// A held plan wakes once a second of its clock (to re-measure what is resident) and does
// nothing else: one wait per second, the memory untouched.
TEST(RetainedPlanTest, HoldingCostsNoCpu) {
  PlanCounters counters;
  WaitRecordingClock clock;
  std::unique_ptr<RetainedPlan> plan =
      MustStart<RetainedPlan>(OnePhase(32 * kMiB), &counters, &clock);
  ASSERT_NE(plan, nullptr);
  ASSERT_TRUE(
      Eventually([&] { return AsleepAt(clock, counters, PlanState::kHolding, 32 * kMiB); }));
  const PlanCountersSnapshot held = counters.Snapshot();
  for (int second = 0; second < 10; ++second) {
    SCOPED_TRACE(second);
    ASSERT_EQ(clock.last_deadline() - clock.Now(), absl::Seconds(1));
    const uint64_t waits = clock.waits_begun();
    clock.AdvanceTo(clock.last_deadline());
    ASSERT_TRUE(Eventually([&] { return clock.waits_begun() > waits && clock.waiters() == 1; }));
    EXPECT_EQ(clock.waits_begun(), waits + 1);
  }
  const PlanCountersSnapshot after = counters.Snapshot();
  EXPECT_EQ(after.state, PlanState::kHolding);
  EXPECT_EQ(after.allocations, held.allocations);
  EXPECT_EQ(after.frees, held.frees);
  EXPECT_EQ(after.payload_bytes, 32 * kMiB);
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

TEST(RetainedPlanTest, SawtoothRepeatsRampAndDrop) {
  PlanCounters counters;
  RetainedPlanSpec spec = OnePhase(16 * kMiB, absl::ZeroDuration());
  spec.phases[0].ramp_duration = absl::Milliseconds(100);
  Phase drop;
  drop.target_bytes = 0;
  spec.phases.push_back(drop);
  spec.repeat = 3;
  std::unique_ptr<RetainedPlan> plan = MustStart<RetainedPlan>(spec, &counters);
  ASSERT_NE(plan, nullptr);
  const PlanCountersSnapshot done = ExpectEndedReleased(*plan, PlanState::kCompleted);
  EXPECT_EQ(done.allocations, 3 * 16u);
  EXPECT_EQ(done.frees, 3 * 16u);
  EXPECT_EQ(done.peak_payload_bytes, 16 * kMiB);
  EXPECT_EQ(done.cycle, 2u);
}

TEST(RetainedPlanTest, SetTargetGrowsAndShrinksInPlace) {
  PlanCounters counters;
  std::unique_ptr<RetainedPlan> plan = MustStart<RetainedPlan>(OnePhase(32 * kMiB), &counters);
  ASSERT_NE(plan, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(counters) == PlanState::kHolding; }));
  ASSERT_THAT(plan->SetTarget(64 * kMiB), IsOk());
  ASSERT_TRUE(Eventually([&] {
    PlanCountersSnapshot s = counters.Snapshot();
    return s.state == PlanState::kHolding && s.payload_bytes == 64 * kMiB;
  }));
  EXPECT_EQ(counters.Snapshot().target_bytes, 64 * kMiB);
  ASSERT_THAT(plan->SetTarget(16 * kMiB), IsOk());
  ASSERT_TRUE(Eventually([&] {
    PlanCountersSnapshot s = counters.Snapshot();
    return s.state == PlanState::kHolding && s.payload_bytes == 16 * kMiB;
  }));
  // Resident follows the shrink (measured on reaching the target).
  EXPECT_LT(counters.Snapshot().resident_bytes, 17 * kMiB);
  EXPECT_EQ(counters.Snapshot().frees, 48u);
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
  EXPECT_THAT(plan->SetTarget(kMiB),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CANCELLED")));
}

TEST(RetainedPlanTest, TargetIsRoundedDownToWholeBlocks) {
  PlanCounters counters;
  std::unique_ptr<RetainedPlan> plan =
      MustStart<RetainedPlan>(OnePhase(10 * kMiB + 12345), &counters);
  ASSERT_NE(plan, nullptr);
  ASSERT_TRUE(Eventually([&] { return StateOf(counters) == PlanState::kHolding; }));
  EXPECT_EQ(counters.Snapshot().payload_bytes, 10 * kMiB);
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

TEST(RetainedPlanTest, CeilingCapsGrowthAndLiftingItResumes) {
  PlanCounters counters;
  std::unique_ptr<RetainedPlan> plan = MustCreate<RetainedPlan>(OnePhase(32 * kMiB), &counters);
  ASSERT_NE(plan, nullptr);
  plan->SetCeiling(8 * kMiB);
  ASSERT_THAT(plan->Start(), IsOk());
  ASSERT_TRUE(Eventually([&] { return StateOf(counters) == PlanState::kCapped; }));
  EXPECT_EQ(counters.Snapshot().payload_bytes, 8 * kMiB);
  plan->SetCeiling(UINT64_MAX);
  ASSERT_TRUE(Eventually([&] { return StateOf(counters) == PlanState::kHolding; }));
  EXPECT_EQ(counters.Snapshot().payload_bytes, 32 * kMiB);
  // A lower ceiling stops growth but never takes memory away.
  plan->SetCeiling(4 * kMiB);
  ASSERT_THAT(plan->SetTarget(48 * kMiB), IsOk());
  ASSERT_TRUE(Eventually([&] { return StateOf(counters) == PlanState::kCapped; }));
  EXPECT_EQ(counters.Snapshot().payload_bytes, 32 * kMiB);
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

// Asleep until its next block of a slow leak (a second away on a clock that never moves),
// the plan wakes for the cancel alone.
TEST(RetainedPlanTest, CancelDuringSlowRampIsPrompt) {
  PlanCounters counters;
  WaitRecordingClock clock;
  RetainedPlanSpec spec = OnePhase(1024 * kMiB);
  spec.phases[0].ramp_bytes_per_sec = kMiB;  // a slow leak: one block a second
  std::unique_ptr<RetainedPlan> plan = MustStart<RetainedPlan>(spec, &counters, &clock);
  ASSERT_NE(plan, nullptr);
  ASSERT_TRUE(Eventually([&] { return AsleepAt(clock, counters, PlanState::kRamping, 0); }));
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(Eventually([&] { return AsleepAt(clock, counters, PlanState::kRamping, kMiB); }));
  plan->Cancel();
  ExpectEndedReleased(*plan, PlanState::kCancelled);
}

TEST(RetainedPlanTest, AllocationFailureFailsThePlanAndFreesEverything) {
  CountingAllocator allocator(SharedBlockAllocator(Backing::kMmap, {}));
  allocator.FailAfter(3);
  PlanCounters counters;
  RetainedPlanSpec spec = OnePhase(16 * kMiB);
  spec.set.allocator = &allocator;
  std::unique_ptr<RetainedPlan> plan = MustStart<RetainedPlan>(spec, &counters);
  ASSERT_NE(plan, nullptr);
  EXPECT_THAT(plan->WaitFor(absl::Seconds(10)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("plan reached 3 MiB of its 16 MiB target")));
  EXPECT_EQ(StateOf(counters), PlanState::kFailed);
  EXPECT_EQ(allocator.allocations(), 3u);
  EXPECT_EQ(allocator.frees(), 3u);
  EXPECT_EQ(allocator.live_bytes(), 0u);
}

TEST(RetainedPlanTest, InvalidSpecsAreRejected) {
  PlanCounters counters;
  RetainedPlanSpec no_block = OnePhase(kMiB);
  no_block.set.block_size = 0;
  EXPECT_THAT(RetainedPlan::Create(no_block, &counters),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block_size")));
  RetainedPlanSpec no_phases = OnePhase(kMiB);
  no_phases.phases.clear();
  EXPECT_THAT(RetainedPlan::Create(no_phases, &counters),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("phase")));
  RetainedPlanSpec both = OnePhase(kMiB);
  both.phases[0].ramp_bytes_per_sec = 1;
  both.phases[0].ramp_duration = absl::Seconds(1);
  EXPECT_THAT(RetainedPlan::Create(both, &counters),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("phases[0]")));
  RetainedPlanSpec negative = OnePhase(kMiB, absl::Seconds(-1));
  EXPECT_THAT(RetainedPlan::Create(negative, &counters),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hold")));
}

TEST(RetainedPlanTest, WaitBeforeStartAndDoubleStartAreStateConflicts) {
  PlanCounters counters;
  std::unique_ptr<RetainedPlan> plan =
      MustCreate<RetainedPlan>(OnePhase(kMiB, absl::ZeroDuration()), &counters);
  ASSERT_NE(plan, nullptr);
  EXPECT_THAT(plan->Wait(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("")));
  ASSERT_THAT(plan->Start(), IsOk());
  EXPECT_THAT(plan->Start(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("")));
  EXPECT_THAT(plan->Wait(), IsOk());
}

}  // namespace
}  // namespace memload
