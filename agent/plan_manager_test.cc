// PlanManager over fake workers and a scripted node: resolution, idempotency, limits,
// leases, stops, worker deaths, ceilings, resizes.
#include "agent/plan_manager.h"

#include <chrono>
#include <future>

#include "absl/time/clock.h"
#include "agent/admission.h"
#include "agent/testing/fake_worker.h"
#include "agent/testing/plan_manager_calls.h"
#include "core/block_cost.h"
#include "core/sync/mutex.h"
#include "core/testing/simulated_clock.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/proto_time.h"
#include "tests/testing/eventually.h"
#include "tests/testing/sizes.h"

namespace memload {
namespace agent {
namespace {

using ::memload::testing::Eventually;
using ::memload::testing::kGiB;
using ::memload::testing::kMiB;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::PlanSpec Retained(const std::string& id, uint64_t bytes) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  v1::Phase* phase = spec.mutable_retained()->add_phases();
  phase->mutable_target()->set_bytes(bytes);
  phase->set_hold_forever(true);
  return spec;
}

// `spec` with a lease of `lease`.
v1::PlanSpec WithLease(v1::PlanSpec spec, absl::Duration lease) {
  ToProtoDuration(lease, spec.mutable_lease());
  return spec;
}

class PlanManagerTest : public ::testing::Test {
 protected:
  PlanManagerOptions Options() {
    PlanManagerOptions options;
    options.reserve_bytes = 1 * kGiB;
    options.max_memory_bytes = 8 * kGiB;
    options.tick = absl::Milliseconds(5);
    return options;
  }
  FakeNodeProbe probe_{16 * kGiB, 12 * kGiB};
  FakeWorkerLauncher launcher_;
};

TEST_F(PlanManagerTest, StartsAWorkerWithTheResolvedSpec) {
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec spec = Retained("drill-1", 0);
  spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(25);
  auto started = StartSync(manager, spec);
  ASSERT_THAT(started, IsOk());
  EXPECT_TRUE(started->created);
  EXPECT_EQ(started->plan.plan_id(), "drill-1");
  EXPECT_EQ(started->plan.state(), v1::PLAN_STATE_PENDING);
  ASSERT_EQ(launcher_.launched(), 1u);
  // 25% of MemTotal, resolved to bytes for the worker; the client's spec is kept as sent.
  EXPECT_EQ(launcher_.worker(0)->spec().plan().retained().phases(0).target().bytes(), 4 * kGiB);
  EXPECT_TRUE(started->plan.spec().retained().phases(0).target().has_percent_of_total());
}

TEST_F(PlanManagerTest, PercentagesUseTheCgroupLimitInsideAContainer) {
  probe_.SetCgroup(/*limit=*/2 * kGiB, /*usage=*/512 * kMiB);
  PlanManagerOptions options = Options();
  options.reserve_bytes = 0;
  PlanManager manager(options, &probe_, &launcher_);
  v1::PlanSpec spec = Retained("in-container", 0);
  spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(50);
  ASSERT_THAT(StartSync(manager, spec), IsOk());
  // 50% of min(MemTotal 16 GiB, limit 2 GiB), not of the host.
  EXPECT_EQ(launcher_.worker(0)->spec().plan().retained().phases(0).target().bytes(), 1 * kGiB);

  v1::PlanSpec cgroup = Retained("of-cgroup", 0);
  cgroup.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_cgroup_limit(25);
  ASSERT_THAT(StartSync(manager, cgroup), IsOk());
  EXPECT_EQ(launcher_.worker(1)->spec().plan().retained().phases(0).target().bytes(), 512 * kMiB);
}

TEST_F(PlanManagerTest, PercentOfCgroupWithoutALimitIsAFailedPrecondition) {
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec spec = Retained("no-cgroup", 0);
  spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_cgroup_limit(50);
  EXPECT_THAT(StartSync(manager, spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no limit")));
  EXPECT_EQ(launcher_.launched(), 0u);
}

TEST_F(PlanManagerTest, SameIdSameSpecIsOnePlanDifferentSpecIsAlreadyExists) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("idem", kGiB)), IsOk());
  auto again = StartSync(manager, Retained("idem", kGiB));
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(launcher_.launched(), 1u);
  EXPECT_THAT(StartSync(manager, Retained("idem", 2 * kGiB)),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("different spec")));
  EXPECT_EQ(launcher_.launched(), 1u);
}

TEST_F(PlanManagerTest, MalformedPlansAreInvalidArguments) {
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec no_kind;
  no_kind.set_plan_id("x");
  v1::PlanSpec bad_id = Retained("bad id!", kMiB);
  v1::PlanSpec empty_id = Retained("", kMiB);
  v1::PlanSpec negative_lease = Retained("lease", kMiB);
  negative_lease.mutable_lease()->set_seconds(-5);
  v1::PlanSpec short_lease = Retained("short-lease", kMiB);  // Expired at once (N11).
  short_lease.mutable_lease()->set_nanos(1);
  v1::PlanSpec no_target = Retained("target", kMiB);
  no_target.mutable_retained()->mutable_phases(0)->clear_target();
  v1::PlanSpec bad_percent = Retained("percent", kMiB);
  bad_percent.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(150);
  v1::PlanSpec bad_oom = Retained("oom", kMiB);
  bad_oom.set_oom_score_adj(5000);
  struct Case {
    v1::PlanSpec spec;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{{no_kind, "kind"},
                                         {bad_id, "plan_id"},
                                         {empty_id, "plan_id"},
                                         {negative_lease, "lease"},
                                         {short_lease, "lease: must be at least 1s, got 1ns"},
                                         {no_target, "phases[0].target"},
                                         {bad_percent, "phases[0].target"},
                                         {bad_oom, "oom_score_adj"}}) {
    EXPECT_THAT(StartSync(manager, c.spec),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.spec.DebugString();
  }
  EXPECT_EQ(launcher_.launched(), 0u);
}

TEST_F(PlanManagerTest, MaxMemoryCapRefusesWithTheNumbers) {
  PlanManager manager(Options(), &probe_, &launcher_);  // cap 8 GiB
  ASSERT_THAT(StartSync(manager, Retained("a", 5 * kGiB)), IsOk());
  EXPECT_THAT(StartSync(manager, Retained("b", 4 * kGiB)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("needs 4 GiB; with the 5 GiB other plans may hold, that "
                                 "crosses --max-memory 8 GiB")));
  EXPECT_EQ(launcher_.launched(), 1u);
  // Other plans are untouched.
  EXPECT_EQ(manager.List(false).size(), 1u);
}

TEST_F(PlanManagerTest, ReserveRefusesWithTheNumbers) {
  PlanManagerOptions options = Options();
  options.max_memory_bytes = 0;
  PlanManager manager(options, &probe_, &launcher_);  // 12 GiB available, 1 GiB reserve
  EXPECT_THAT(StartSync(manager, Retained("big", 12 * kGiB)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("needs 12 GiB but only 11 GiB may be used: available memory "
                                 "is 12 GiB and --reserve is 1 GiB")));
  // What a plan costs is more than its payload (its block table, its worker): 11 GiB of
  // payload no longer fits in 11 GiB.
  EXPECT_THAT(StartSync(manager, Retained("payload-fits", 11 * kGiB)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("needs 11 GiB")));
  EXPECT_THAT(StartSync(manager, Retained("fits", 10 * kGiB)), IsOk());
}

TEST_F(PlanManagerTest, LaunchFailureIsReportedAndNothingIsKept) {
  PlanManager manager(Options(), &probe_, &launcher_);
  launcher_.FailNextLaunch(absl::ResourceExhaustedError("fork failed: EAGAIN"));
  EXPECT_THAT(StartSync(manager, Retained("x", kGiB)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("fork")));
  EXPECT_TRUE(manager.List(true).empty());
  EXPECT_THAT(StartSync(manager, Retained("x", kGiB)), IsOk());
}

TEST_F(PlanManagerTest, StopAnswersWhenTheWorkerHasExited) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("s", kGiB)), IsOk());
  launcher_.worker(0)->SetCounters(PlanState::kHolding, kGiB);
  auto stopped = StopSync(manager, "s");
  ASSERT_THAT(stopped, IsOk());
  EXPECT_EQ(stopped->state(), v1::PLAN_STATE_STOPPED);
  EXPECT_TRUE(stopped->outcome_ok());
  EXPECT_EQ(stopped->payload_bytes(), 0u);
  EXPECT_TRUE(stopped->has_ended());
  // Stopping again answers with the final state; an unknown id is NotFound.
  EXPECT_THAT(StopSync(manager, "s"), IsOk());
  EXPECT_THAT(StopSync(manager, "nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_F(PlanManagerTest, StopOfAStuckWorkerKillsItAfterTheTimeout) {
  PlanManagerOptions options = Options();
  options.stop_timeout = absl::Milliseconds(50);
  PlanManager manager(options, &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("stuck", kGiB)), IsOk());
  launcher_.worker(0)->set_exit_on_stop(false);
  auto stopped = StopSync(manager, "stuck");
  ASSERT_THAT(stopped, IsOk());
  EXPECT_EQ(stopped->state(), v1::PLAN_STATE_STOPPED);
  EXPECT_THAT(stopped->error(), HasSubstr("killed"));
}

TEST_F(PlanManagerTest, LeaseExpiryStopsThePlan) {
  SimulatedClock clock;
  PlanManager manager(Options(), &probe_, &launcher_, &clock);
  // The shortest lease a plan may have (plan_rules::kMinLease, 1 s), on simulated time.
  ASSERT_THAT(StartSync(manager, WithLease(Retained("leased", kGiB), plan_rules::kMinLease)),
              IsOk());
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  clock.Advance(plan_rules::kMinLease - absl::Milliseconds(1));
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_EQ(Find(manager, "leased")->state(), v1::PLAN_STATE_PENDING);
  // Leases are looked at every tick (5 ms here): expired by the first tick past 1 s.
  clock.Advance(absl::Milliseconds(10));
  ASSERT_TRUE(Eventually([&] {
    auto status = Find(manager, "leased");
    return status && status->state() == v1::PLAN_STATE_LEASE_EXPIRED;
  }));
  auto status = Find(manager, "leased");
  EXPECT_FALSE(status->outcome_ok());
  EXPECT_THAT(status->error(), HasSubstr("lease"));
  EXPECT_EQ(launcher_.worker(0)->stop_requests(), 1);
}

// An agent whose maximum lease is below plan_rules' (PlanManagerOptions::max_lease) says its
// bounds, the shortest lease a plan may have first.
TEST_F(PlanManagerTest, ALeaseAboveTheAgentsMaximumIsRefusedWithItsBounds) {
  PlanManagerOptions options = Options();
  options.max_lease = absl::Minutes(1);
  PlanManager manager(options, &probe_, &launcher_);
  EXPECT_THAT(
      StartSync(manager, WithLease(Retained("long", kMiB), absl::Minutes(2))),
      StatusIs(absl::StatusCode::kInvalidArgument, "lease must be in [1s, 1m], got 120s 0ns"));
  EXPECT_THAT(StartSync(manager, WithLease(Retained("fits", kMiB), absl::Minutes(1))), IsOk());
  EXPECT_EQ(launcher_.launched(), 1u);
}

TEST_F(PlanManagerTest, RenewKeepsThePlanAlive) {
  SimulatedClock clock;
  PlanManager manager(Options(), &probe_, &launcher_, &clock);
  ASSERT_THAT(StartSync(manager, WithLease(Retained("renewed", kGiB), absl::Seconds(2))), IsOk());
  for (int i = 0; i < 12; ++i) {  // 6 s of simulated time, renewed every 500 ms.
    v1::RenewLeasesRequest request;
    request.add_plan_ids("renewed");
    request.add_plan_ids("unknown");
    v1::RenewLeasesResponse response = manager.Renew(request);
    ASSERT_THAT(response.renewed(), ElementsAre("renewed"));
    ASSERT_THAT(response.not_found(), ElementsAre("unknown"));
    ASSERT_TRUE(clock.BlockUntilWaiters(1));
    clock.Advance(absl::Milliseconds(500));
  }
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_EQ(Find(manager, "renewed")->state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(launcher_.worker(0)->stop_requests(), 0);
}

// The peak a plan reports is the most resident memory anyone read of its worker: what an
// answer read from /proc between two ticks is kept, and a stop reads the worker once more
// before it is told to give its memory back. The clock never moves here, so no tick
// samples the worker on its own (as when a loaded agent's tick lags).
TEST_F(PlanManagerTest, ThePeakKeepsEveryReadAndALastOneBeforeTheStop) {
  SimulatedClock clock;
  PlanManager manager(Options(), &probe_, &launcher_, &clock);
  ASSERT_THAT(StartSync(manager, Retained("listed", 3 * kGiB)), IsOk());
  ASSERT_THAT(StartSync(manager, Retained("stopped", 3 * kGiB)), IsOk());
  ASSERT_TRUE(clock.BlockUntilWaiters(1));

  // Read by List at 2 GiB, then the worker holds less: the peak stays 2 GiB.
  launcher_.worker(0)->SetCounters(PlanState::kHolding, 2 * kGiB);
  EXPECT_EQ(Find(manager, "listed")->peak_resident_bytes(), 2 * kGiB);
  launcher_.worker(0)->SetCounters(PlanState::kHolding, 512 * kMiB);
  absl::StatusOr<v1::PlanStatus> listed = StopSync(manager, "listed");
  ASSERT_THAT(listed, IsOk());
  EXPECT_EQ(listed->state(), v1::PLAN_STATE_STOPPED);
  EXPECT_EQ(listed->peak_resident_bytes(), 2 * kGiB);

  // Never read before its stop: the stop's own last read is the peak (the fake worker
  // drops its memory as soon as it is told to stop).
  launcher_.worker(1)->SetCounters(PlanState::kHolding, 3 * kGiB);
  absl::StatusOr<v1::PlanStatus> stopped = StopSync(manager, "stopped");
  ASSERT_THAT(stopped, IsOk());
  EXPECT_EQ(stopped->state(), v1::PLAN_STATE_STOPPED);
  EXPECT_EQ(stopped->peak_resident_bytes(), 3 * kGiB);
  EXPECT_EQ(Find(manager, "stopped")->peak_resident_bytes(), 3 * kGiB);
  EXPECT_EQ(launcher_.worker(1)->stop_requests(), 1);
}

TEST_F(PlanManagerTest, WorkerDeathsBecomeTypedStates) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("oom", kGiB)), IsOk());
  v1::PlanSpec expected = Retained("oom-expected", kGiB);
  expected.set_expect_oom(true);
  ASSERT_THAT(StartSync(manager, expected), IsOk());
  ASSERT_THAT(StartSync(manager, Retained("crash", kGiB)), IsOk());
  WorkerExit oom;
  oom.kind = WorkerExit::Kind::kOomKilled;
  launcher_.worker(0)->Exit(oom);
  launcher_.worker(1)->Exit(oom);
  WorkerExit crash;
  crash.kind = WorkerExit::Kind::kSignaled;
  crash.signal = 11;
  crash.error = "killed by SIGSEGV";
  launcher_.worker(2)->Exit(crash);
  ASSERT_TRUE(Eventually([&] { return manager.List(false).empty(); }));
  auto unexpected = Find(manager, "oom");
  EXPECT_EQ(unexpected->state(), v1::PLAN_STATE_OOM_KILLED);
  EXPECT_FALSE(unexpected->outcome_ok());
  auto wanted = Find(manager, "oom-expected");
  EXPECT_EQ(wanted->state(), v1::PLAN_STATE_OOM_KILLED);
  EXPECT_TRUE(wanted->outcome_ok());
  auto crashed = Find(manager, "crash");
  EXPECT_EQ(crashed->state(), v1::PLAN_STATE_FAILED);
  EXPECT_THAT(crashed->error(), HasSubstr("SIGSEGV"));
  // What memload_plans_*_total export.
  EXPECT_EQ(manager.plans_started(), 3);
  EXPECT_EQ(manager.plans_oom_killed(), 2);
  EXPECT_EQ(manager.plans_failed(), 1);
  // Ended plans no longer count against the cap.
  EXPECT_THAT(StartSync(manager, Retained("after", 7 * kGiB)), IsOk());
}

TEST_F(PlanManagerTest, ReserveBecomesACeilingWhileRamping) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("ramp", 6 * kGiB)), IsOk());
  launcher_.worker(0)->SetCounters(PlanState::kRamping, 2 * kGiB);
  // Another workload eats memory: 2 GiB left available, 1 GiB of it above the reserve.
  probe_.SetAvailable(2 * kGiB);
  ASSERT_TRUE(Eventually([&] {
    std::vector<uint64_t> ceilings = launcher_.worker(0)->ceilings();
    // Its share of 1 GiB buys 1023 more 1 MiB blocks at their real cost (1 MiB + 24 B).
    return !ceilings.empty() && ceilings.back() == 2 * kGiB + 1023 * kMiB;
  }));
  // Room again: the ceiling is lifted.
  probe_.SetAvailable(12 * kGiB);
  ASSERT_TRUE(Eventually([&] {
    std::vector<uint64_t> ceilings = launcher_.worker(0)->ceilings();
    return !ceilings.empty() && ceilings.back() == UINT64_MAX;
  }));
  launcher_.worker(0)->SetCounters(PlanState::kCapped, 3 * kGiB);
  ASSERT_TRUE(Eventually([&] { return Find(manager, "ramp")->state() == v1::PLAN_STATE_CAPPED; }));
  EXPECT_THAT(Find(manager, "ramp")->error(), HasSubstr("--reserve"));
}

TEST_F(PlanManagerTest, ResizeChecksLimitsAndState) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("r", kGiB)), IsOk());
  launcher_.worker(0)->SetCounters(PlanState::kHolding, kGiB);
  v1::Quantity target;
  target.set_bytes(3 * kGiB);
  ASSERT_THAT(manager.Resize("r", target), IsOk());
  EXPECT_THAT(launcher_.worker(0)->targets(), ElementsAre(3 * kGiB));
  target.set_bytes(9 * kGiB);
  EXPECT_THAT(manager.Resize("r", target),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-memory")));
  target.set_percent_of_total(200);
  EXPECT_THAT(manager.Resize("r", target),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target")));
  EXPECT_THAT(manager.Resize("missing", target),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("")));

  v1::PlanSpec stream;
  stream.set_plan_id("stream");
  stream.mutable_streaming()->set_block_size(kMiB);
  ASSERT_THAT(StartSync(manager, stream), IsOk());
  target.set_bytes(kGiB);
  EXPECT_THAT(manager.Resize("stream", target),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("streaming")));
  ASSERT_THAT(StopSync(manager, "r"), IsOk());
  EXPECT_THAT(manager.Resize("r", target),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ended")));
}

// Attack note N1: a resize to 0 answered, and listed, the plan's first target; N2: a target
// below one block started a plan that held nothing.
TEST_F(PlanManagerTest, ATargetOfZeroIsReportedAndTargetsBelowOneBlockAreRefused) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("r", kGiB)), IsOk());
  launcher_.worker(0)->SetCounters(PlanState::kHolding, kGiB);
  EXPECT_EQ(Find(manager, "r")->target_bytes(), kGiB);
  v1::Quantity target;
  target.set_bytes(0);
  absl::StatusOr<v1::PlanStatus> resized = manager.Resize("r", target);
  ASSERT_THAT(resized, IsOk());
  EXPECT_EQ(resized->target_bytes(), 0u);
  launcher_.worker(0)->SetCounters(PlanState::kHolding, 0);
  EXPECT_EQ(Find(manager, "r")->target_bytes(), 0u);

  target.set_bytes(kMiB / 2);  // The default block is 1 MiB.
  EXPECT_THAT(manager.Resize("r", target),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("target: 512 KiB is less than one block (1 MiB)")));
  v1::PlanSpec tiny = Retained("tiny", kGiB);
  tiny.mutable_retained()->set_block_size(2 * kGiB);
  EXPECT_THAT(StartSync(manager, tiny),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("retained.phases[0].target: 1 GiB is less than one block")));
  // A percentage resolves on the node (16 GiB here): 0.001% is 168 KiB, below one block.
  v1::PlanSpec percent = Retained("percent", 0);
  percent.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(0.001);
  EXPECT_THAT(StartSync(manager, percent),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("less than one block")));
}

TEST_F(PlanManagerTest, ShutdownStopsEveryPlanAndRefusesNewOnes) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("one", kGiB)), IsOk());
  ASSERT_THAT(StartSync(manager, Retained("two", kGiB)), IsOk());
  manager.Shutdown();
  EXPECT_TRUE(manager.List(false).empty());
  EXPECT_EQ(Find(manager, "one")->state(), v1::PLAN_STATE_STOPPED);
  EXPECT_EQ(Find(manager, "two")->state(), v1::PLAN_STATE_STOPPED);
  EXPECT_THAT(StartSync(manager, Retained("three", kGiB)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
}

// Issue 12 (1): 60,000 one-byte mmap blocks were admitted as 60,000 bytes under a 64 MiB cap
// and held 236 MiB. Admission counts page-rounded blocks, malloc chunks, the block table and
// the worker.
TEST_F(PlanManagerTest, TinyBlocksAreAdmittedAtTheirRealCost) {
  PlanManagerOptions options = Options();
  options.max_memory_bytes = 64 * kMiB;
  options.reserve_bytes = 0;
  PlanManager manager(options, &probe_, &launcher_);
  auto tiny = [](const std::string& id, uint64_t bytes, v1::Backing backing) {
    v1::PlanSpec spec = Retained(id, bytes);
    spec.mutable_retained()->set_block_size(1);
    spec.mutable_retained()->set_backing(backing);
    return spec;
  };
  EXPECT_THAT(
      StartSync(manager, tiny("mmap", 60000, v1::BACKING_MMAP)),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("plan \"mmap\" needs 243.75 MiB")));
  EXPECT_THAT(StartSync(manager, tiny("shmem", 60000, v1::BACKING_SHMEM)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-memory 64 MiB")));
  EXPECT_THAT(
      StartSync(manager, tiny("malloc", 2 * kMiB, v1::BACKING_MALLOC)),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("plan \"malloc\" needs 120")));
  EXPECT_EQ(launcher_.launched(), 0u);
  // At their real cost they fit: 5,000 pages and 100,000 chunks.
  ASSERT_THAT(StartSync(manager, tiny("mmap-small", 5000, v1::BACKING_MMAP)), IsOk());
  ASSERT_THAT(StartSync(manager, tiny("malloc-small", 100000, v1::BACKING_MALLOC)), IsOk());
  // The two cost 5,000 × 4120 + 100,000 × 56 + 2 × (4 KiB + 8 MiB): a third finds the rest.
  const uint64_t committed =
      *RetainedPlanCost(Backing::kMmap, 1, 5000) + *RetainedPlanCost(Backing::kMalloc, 1, 100000);
  const uint64_t rest = 64 * kMiB - committed;
  EXPECT_THAT(StartSync(manager, Retained("rest", rest)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("crosses --max-memory")));
  // A plan whose cost is exactly the rest fits.
  const uint64_t blocks = (rest - kSetFixedBytes - kWorkerOverheadBytes) / (4096 + 24);
  v1::PlanSpec exact = tiny("exact", blocks, v1::BACKING_MMAP);
  ASSERT_THAT(StartSync(manager, exact), IsOk());
  // Absurd block counts are refused whatever the limits.
  PlanManagerOptions unlimited = Options();
  unlimited.max_memory_bytes = 0;
  unlimited.reserve_bytes = 0;
  FakeNodeProbe huge{UINT64_MAX, UINT64_MAX};
  PlanManager lax(unlimited, &huge, &launcher_);
  EXPECT_THAT(StartSync(lax, tiny("count", kMaxBlocks + 1, v1::BACKING_MALLOC)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block size of at least")));
}

// Issue 12 (2): target.bytes = 2^64-1 wrapped the limit sums and started a plan toward
// 16 EiB. Every size field of every plan kind, at its extremes.
TEST_F(PlanManagerTest, ExtremeSizesAreRefusedNeverWrapped) {
  PlanManagerOptions options = Options();  // cap 8 GiB, reserve 1 GiB
  const std::vector<uint64_t> extremes = {UINT64_MAX,       UINT64_MAX - 1, 1ull << 63,
                                          (1ull << 63) + 1, 1ull << 50,     40 * kGiB};
  for (bool capped : {true, false}) {
    options.max_memory_bytes = capped ? 8 * kGiB : 0;
    PlanManager manager(options, &probe_, &launcher_);
    auto refused = [&](const v1::PlanSpec& spec) {
      auto started = StartSync(manager, spec);
      EXPECT_TRUE(started.status().code() == absl::StatusCode::kResourceExhausted ||
                  started.status().code() == absl::StatusCode::kInvalidArgument)
          << started.status() << "\n"
          << spec.DebugString();
    };
    for (uint64_t bytes : extremes) {
      refused(Retained("target", bytes));
      v1::PlanSpec second_phase = Retained("phase2", kMiB);
      *second_phase.mutable_retained()->add_phases() = second_phase.retained().phases(0);
      second_phase.mutable_retained()->mutable_phases(1)->mutable_target()->set_bytes(bytes);
      refused(second_phase);
      for (uint64_t block : {bytes, bytes / 2 + 1}) {
        v1::PlanSpec blocks = Retained("block", 4 * kGiB);
        blocks.mutable_retained()->set_block_size(block);
        // A block bigger than the target holds nothing: fine; a big target is refused.
        auto started = StartSync(manager, blocks);
        if (started.ok()) {
          EXPECT_EQ(started->plan.payload_bytes(), 0u);
          ASSERT_THAT(StopSync(manager, "block"), IsOk());
        }
        blocks.mutable_retained()->mutable_phases(0)->mutable_target()->set_bytes(bytes);
        refused(blocks);
      }
      v1::PlanSpec stream;
      stream.set_plan_id("stream");
      stream.mutable_streaming()->set_block_size(bytes);
      stream.mutable_streaming()->set_window(2);
      refused(stream);
      stream.mutable_streaming()->set_block_size(kMiB);
      stream.mutable_streaming()->set_window(bytes);
      refused(stream);
      stream.mutable_streaming()->set_window(bytes / kMiB);
      refused(stream);
      v1::PlanSpec utilization;
      utilization.set_plan_id("util");
      utilization.mutable_utilization()->set_target_percent(99.9);
      utilization.mutable_utilization()->set_block_size(1);
      refused(utilization);  // 99.9% leaves less than the reserve
      // Resize of a running plan to the extreme.
      ASSERT_THAT(StartSync(manager, Retained("resized", kMiB)), IsOk());
      v1::Quantity target;
      target.set_bytes(bytes);
      auto resized = manager.Resize("resized", target);
      EXPECT_TRUE(resized.status().code() == absl::StatusCode::kResourceExhausted ||
                  resized.status().code() == absl::StatusCode::kInvalidArgument)
          << resized.status();
      ASSERT_THAT(StopSync(manager, "resized"), IsOk());
    }
    // Rates, amounts, workers, counts and durations at their extremes: each either refused
    // or bounded by the plan's cost (a rate or an amount changes no commitment).
    v1::PlanSpec ramp = Retained("ramp", kMiB);
    ramp.mutable_retained()->mutable_phases(0)->set_ramp_bytes_per_sec(UINT64_MAX);
    ramp.mutable_retained()->set_repeat(UINT32_MAX);
    auto ramped = StartSync(manager, ramp);
    ASSERT_THAT(ramped, IsOk());
    ASSERT_THAT(StopSync(manager, "ramp"), IsOk());
    v1::PlanSpec stream;
    stream.set_plan_id("rates");
    stream.mutable_streaming()->set_block_size(1);
    stream.mutable_streaming()->set_rate_bytes_per_sec(UINT64_MAX);
    stream.mutable_streaming()->set_amount_bytes(UINT64_MAX);
    ASSERT_THAT(StartSync(manager, stream), IsOk());
    ASSERT_THAT(StopSync(manager, "rates"), IsOk());
    stream.mutable_streaming()->set_workers(UINT32_MAX);
    refused(stream);
    for (int64_t seconds : {INT64_MAX, INT64_MIN, int64_t{315576000001}, int64_t{-1}}) {
      v1::PlanSpec lease = Retained("lease", kMiB);
      lease.mutable_lease()->set_seconds(seconds);
      EXPECT_THAT(StartSync(manager, lease),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lease")));
      v1::PlanSpec hold = Retained("hold", kMiB);
      hold.mutable_retained()->mutable_phases(0)->set_hold_forever(false);
      hold.mutable_retained()->mutable_phases(0)->mutable_hold()->set_seconds(seconds);
      refused(hold);
      v1::PlanSpec interval;
      interval.set_plan_id("interval");
      interval.mutable_utilization()->set_target_percent(10);
      interval.mutable_utilization()->mutable_interval()->set_seconds(seconds);
      interval.mutable_utilization()->mutable_duration()->set_seconds(seconds);
      refused(interval);
    }
    v1::PlanSpec percent = Retained("percent", 0);
    for (double value : {1e308, -1e308, 1e-300, std::nan(""), 100.0000001}) {
      percent.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(value);
      auto started = StartSync(manager, percent);
      if (started.ok()) {
        ASSERT_THAT(StopSync(manager, "percent"), IsOk());
      }
    }
    // Nothing above ran past the cap: what is running fits.
    EXPECT_TRUE(manager.List(false).empty());
  }
}

// Issue 12 (3): a 3.5 MB label was stored, and ListPlans then broke gRPC's message limit.
TEST_F(PlanManagerTest, WhatAClientCanMakeTheAgentStoreIsBounded) {
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec big_label = Retained("labels", kMiB);
  (*big_label.mutable_labels())["drill"] = std::string(3'500'000, 'x');
  EXPECT_THAT(StartSync(manager, big_label),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 256 bytes")));
  v1::PlanSpec many = Retained("labels", kMiB);
  for (size_t i = 0; i <= plan_rules::kMaxLabels; ++i)
    (*many.mutable_labels())[absl::StrCat("k", i)] = "v";
  EXPECT_THAT(StartSync(manager, many),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 32 labels")));
  v1::PlanSpec long_key = Retained("labels", kMiB);
  (*long_key.mutable_labels())[std::string(plan_rules::kMaxLabelKeyBytes + 1, 'k')] = "v";
  EXPECT_THAT(StartSync(manager, long_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key must be 1-128")));
  v1::PlanSpec phases = Retained("phases", kMiB);
  for (int i = 0; i < plan_rules::kMaxPhases; ++i) {
    *phases.mutable_retained()->add_phases() = phases.retained().phases(0);
  }
  EXPECT_THAT(StartSync(manager, phases),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 64 phases")));
  v1::PlanSpec unknown = Retained("unknown", kMiB);
  // Unknown fields count too: 20,000 bytes of field 99 (length-delimited).
  std::string field = "\x9a\x06";  // Tag of field 99, wire type 2.
  field += "\xa0\x9c\x01";         // Length 20,000 as a varint.
  field += std::string(20000, 'u');
  unknown.GetReflection()->MutableUnknownFields(&unknown)->AddLengthDelimited(
      99, std::string(20000, 'u'));
  EXPECT_THAT(StartSync(manager, unknown),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 16384")));
  EXPECT_THAT(StartSync(manager, Retained(std::string(129, 'p'), kMiB)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("plan_id")));
  EXPECT_EQ(launcher_.launched(), 0u);

  // The largest specs the bounds allow, run and ended many times over: what is kept stays
  // within the ended budget, so ListPlans (everything) stays far below 4 MiB.
  v1::PlanSpec largest = Retained("x", kMiB);
  for (size_t i = 0; i < plan_rules::kMaxLabels; ++i) {
    (*largest
          .mutable_labels())[absl::StrCat(std::string(plan_rules::kMaxLabelKeyBytes - 3, 'k'), i)] =
        std::string(plan_rules::kMaxLabelValueBytes, 'v');
  }
  ASSERT_LE(largest.ByteSizeLong(), plan_rules::kMaxSpecBytes);
  for (int i = 0; i < 300; ++i) {
    largest.set_plan_id(absl::StrCat("big-", i));
    ASSERT_THAT(StartSync(manager, largest), IsOk());
    ASSERT_THAT(StopSync(manager, largest.plan_id()), IsOk());
  }
  size_t bytes = 0;
  const std::vector<v1::PlanStatus> all = manager.List(/*include_ended=*/true);
  for (const v1::PlanStatus& status : all) bytes += status.ByteSizeLong();
  EXPECT_LE(bytes, (1u << 20) + kMaxStatusBytes);
  EXPECT_LT(all.size(), 300u);
  EXPECT_EQ(all.back().plan_id(), "big-299");  // The newest are kept.
}

// Issue 12 (8): starting a stopped plan again with the same id and spec answered "stopped"
// and ran nothing. The id of an ended plan is free: the same Start starts it anew.
TEST_F(PlanManagerTest, StartingAnEndedPlanAgainStartsItAnew) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("again", kGiB)), IsOk());
  ASSERT_THAT(StopSync(manager, "again"), IsOk());
  auto again = StartSync(manager, Retained("again", kGiB));
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->created);
  EXPECT_EQ(again->plan.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(launcher_.launched(), 2u);
  EXPECT_EQ(manager.List(false).size(), 1u);
  // While it runs, the same Start is still that one plan.
  auto same = StartSync(manager, Retained("again", kGiB));
  ASSERT_THAT(same, IsOk());
  EXPECT_FALSE(same->created);
  EXPECT_EQ(launcher_.launched(), 2u);
}

// Issue 12 (8): a worker SIGTERMed by someone else exits 0 as if stopped; it is FAILED.
TEST_F(PlanManagerTest, AWorkerStoppedBySomeoneElseIsFailed) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("terminated", kGiB)), IsOk());
  WorkerExit stopped;
  stopped.kind = WorkerExit::Kind::kStopped;
  launcher_.worker(0)->Exit(stopped);
  ASSERT_TRUE(Eventually([&] { return manager.List(false).empty(); }));
  auto status = Find(manager, "terminated");
  EXPECT_EQ(status->state(), v1::PLAN_STATE_FAILED);
  EXPECT_FALSE(status->outcome_ok());
  EXPECT_THAT(status->error(), HasSubstr("did not come from the agent"));
  EXPECT_EQ(manager.plans_failed(), 1u);
}

TEST(PlanManagerOptionsTest, DefaultLeaseAboveTheMaximumIsRefused) {
  PlanManagerOptions options;
  EXPECT_THAT(CheckPlanManagerOptions(options), IsOk());
  options.default_lease = absl::Hours(25);
  EXPECT_THAT(CheckPlanManagerOptions(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--default-lease=25h")));
  // Below the shortest lease a plan may have (N11): every plan that gives none would end
  // at the next tick.
  options.default_lease = absl::Milliseconds(500);
  EXPECT_THAT(CheckPlanManagerOptions(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--default-lease=500ms must be in [1s, 24h] (the shortest and the longest "
                       "lease a plan may have)"));
  options.default_lease = plan_rules::kMinLease;
  EXPECT_THAT(CheckPlanManagerOptions(options), IsOk());
  options.max_lease = absl::Milliseconds(1);
  EXPECT_THAT(CheckPlanManagerOptions(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the maximum lease must be at least 1s")));
  options.max_lease = plan_rules::kMaxLease;
  options.default_lease = absl::Minutes(1);
  options.max_running_plans = kMaxPlansLimit + 1;
  EXPECT_THAT(CheckPlanManagerOptions(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--max-plans")));
}

// Issue 13 (3): the manager's lock was held across fork+exec, a blocking reap and /proc
// reads. A launch, a reap and a /proc read that hang must not stop List, Resize or Renew.
class BlockingLauncher final : public WorkerLauncher {
 public:
  explicit BlockingLauncher(WorkerLauncher* inner) : inner_(inner) {}
  absl::StatusOr<std::unique_ptr<Worker>> Launch(const WorkerSpec& spec) override {
    {
      MutexLock lock(&mutex_);
      entered_ = true;
      changed_.notify_all();
      changed_.wait(lock.native(),
                    [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return released_; });
    }
    return inner_->Launch(spec);
  }
  bool AwaitEntered() {
    MutexLock lock(&mutex_);
    return changed_.wait_for(lock.native(), std::chrono::seconds(10),
                             [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return entered_; });
  }
  void Release() {
    MutexLock lock(&mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  WorkerLauncher* const inner_;
  Mutex mutex_;
  std::condition_variable changed_;
  bool entered_ ABSL_GUARDED_BY(mutex_) = false;
  bool released_ ABSL_GUARDED_BY(mutex_) = false;
};

TEST_F(PlanManagerTest, ASlowLaunchDoesNotHoldTheLock) {
  BlockingLauncher blocking(&launcher_);
  PlanManager manager(Options(), &probe_, &blocking);
  blocking.Release();
  ASSERT_THAT(StartSync(manager, Retained("first", kGiB)), IsOk());
  BlockingLauncher slow(&launcher_);
  PlanManager slow_manager(Options(), &probe_, &slow);
  auto promise = std::make_shared<std::promise<absl::StatusOr<PlanManager::StartResult>>>();
  auto future = promise->get_future();
  slow_manager.Start(Retained("slow", 5 * kGiB),
                     [promise](auto result) { promise->set_value(std::move(result)); });
  ASSERT_TRUE(slow.AwaitEntered());
  // Launch hangs (a fork under memory pressure); the manager answers meanwhile, and counts
  // the launching plan's cost: a second plan cannot take the same room.
  EXPECT_TRUE(slow_manager.List(true).empty());
  v1::RenewLeasesRequest renew;
  renew.add_plan_ids("slow");
  EXPECT_EQ(slow_manager.Renew(renew).not_found_size(), 1);
  slow.Release();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_THAT(future.get(), IsOk());
  EXPECT_THAT(StartSync(slow_manager, Retained("more", 4 * kGiB)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-memory")));
}

}  // namespace
}  // namespace agent
}  // namespace memload
