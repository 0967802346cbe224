// PlanManager over fake workers and a scripted node: resolution, idempotency, limits,
// leases, stops, worker deaths, ceilings, resizes.
#include "agent/plan_manager.h"

#include <future>

#include "absl/time/clock.h"
#include "agent/fake_worker.h"
#include "core/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/sizes.h"

namespace memload {
namespace agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::memload::testing::Eventually;
using ::memload::testing::kMiB;
using ::memload::testing::kGiB;

template <typename T>
T Await(std::future<T>& future) {
  EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  return future.get();
}

absl::StatusOr<PlanManager::StartResult> StartSync(PlanManager& manager, v1::PlanSpec spec) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<PlanManager::StartResult>>>();
  std::future<absl::StatusOr<PlanManager::StartResult>> future = promise->get_future();
  manager.Start(std::move(spec), [promise](absl::StatusOr<PlanManager::StartResult> result) {
    promise->set_value(std::move(result));
  });
  return Await(future);
}

absl::StatusOr<v1::PlanStatus> StopSync(PlanManager& manager, const std::string& id) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<v1::PlanStatus>>>();
  std::future<absl::StatusOr<v1::PlanStatus>> future = promise->get_future();
  manager.Stop(id, [promise](absl::StatusOr<v1::PlanStatus> status) {
    promise->set_value(std::move(status));
  });
  return Await(future);
}

v1::PlanSpec Retained(const std::string& id, uint64_t bytes) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  v1::Phase* phase = spec.mutable_retained()->add_phases();
  phase->mutable_target()->set_bytes(bytes);
  phase->set_hold_forever(true);
  return spec;
}

std::optional<v1::PlanStatus> Find(PlanManager& manager, const std::string& id) {
  for (v1::PlanStatus& status : manager.List(/*include_ended=*/true)) {
    if (status.plan_id() == id) return status;
  }
  return std::nullopt;
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
  EXPECT_EQ(launcher_.worker(1)->spec().plan().retained().phases(0).target().bytes(),
            512 * kMiB);
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
  EXPECT_THAT(StartSync(manager, Retained("fits", 11 * kGiB)), IsOk());
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
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec spec = Retained("leased", kGiB);
  spec.mutable_lease()->set_nanos(50'000'000);
  ASSERT_THAT(StartSync(manager, spec), IsOk());
  ASSERT_TRUE(Eventually([&] {
    auto status = Find(manager, "leased");
    return status && status->state() == v1::PLAN_STATE_LEASE_EXPIRED;
  }));
  auto status = Find(manager, "leased");
  EXPECT_FALSE(status->outcome_ok());
  EXPECT_THAT(status->error(), HasSubstr("lease"));
  EXPECT_EQ(launcher_.worker(0)->stop_requests(), 1);
}

TEST_F(PlanManagerTest, RenewKeepsThePlanAlive) {
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec spec = Retained("renewed", kGiB);
  spec.mutable_lease()->set_nanos(200'000'000);
  ASSERT_THAT(StartSync(manager, spec), IsOk());
  const absl::Time until = absl::Now() + absl::Milliseconds(600);
  while (absl::Now() < until) {
    v1::RenewLeasesRequest request;
    request.add_plan_ids("renewed");
    request.add_plan_ids("unknown");
    v1::RenewLeasesResponse response = manager.Renew(request);
    ASSERT_THAT(response.renewed(), ElementsAre("renewed"));
    ASSERT_THAT(response.not_found(), ElementsAre("unknown"));
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(Find(manager, "renewed")->state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(launcher_.worker(0)->stop_requests(), 0);
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
  EXPECT_THAT(StartSync(manager, Retained("after", 8 * kGiB)), IsOk());
}

TEST_F(PlanManagerTest, ReserveBecomesACeilingWhileRamping) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Retained("ramp", 6 * kGiB)), IsOk());
  launcher_.worker(0)->SetCounters(PlanState::kRamping, 2 * kGiB);
  // Another workload eats memory: 2 GiB left available, 1 GiB of it above the reserve.
  probe_.SetAvailable(2 * kGiB);
  ASSERT_TRUE(Eventually([&] {
    std::vector<uint64_t> ceilings = launcher_.worker(0)->ceilings();
    return !ceilings.empty() && ceilings.back() == 3 * kGiB;
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
  EXPECT_THAT(manager.Resize("missing", target), StatusIs(absl::StatusCode::kNotFound, HasSubstr("")));

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

}  // namespace
}  // namespace agent
}  // namespace memload
