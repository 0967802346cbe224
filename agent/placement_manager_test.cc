// PlanManager with placed plans, over fake workers and a fixture cgroup tree: percentages,
// admission and reporting against the target cgroup, TARGET_GONE, and nothing launched
// when a placement cannot be resolved.
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cgroup_target.h"
#include "agent/plan_manager.h"
#include "agent/testing/fake_worker.h"
#include "agent/testing/plan_manager_calls.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/files.h"

namespace memload {
namespace agent {
namespace {

using ::memload::testing::Eventually;
using ::testing::_;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = 1 << 30;
constexpr char kUid[] = "0a1b2c3d-1111-2222-3333-444455556666";
constexpr char kId[] = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

void WriteFile(const std::string& path, const std::string& contents) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(memload::testing::WriteFile(path, contents)) << path;
}

v1::PlanSpec Placed(const std::string& id) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_placement()->mutable_pod()->set_pod_uid(kUid);
  v1::Phase* phase = spec.mutable_retained()->add_phases();
  phase->mutable_target()->set_percent_of_total(50);
  phase->set_hold_forever(true);
  return spec;
}

class PlacementManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = memload::testing::FreshTestDir();
    // A v2 burstable pod (cgroupfs names) with a 1 GiB limit on the pod, none on the leaf.
    const std::string pod = absl::StrCat(root_, "/cg/kubepods/burstable/pod", kUid);
    WriteFile(root_ + "/cg/cgroup.controllers", "memory\n");
    WriteFile(pod + "/memory.max", absl::StrCat(kGiB, "\n"));
    WriteFile(pod + "/memory.current", absl::StrCat(300 * kMiB, "\n"));
    leaf_ = absl::StrCat(pod, "/", kId);
    WriteFile(leaf_ + "/memory.max", "max\n");
    WriteFile(leaf_ + "/memory.current", absl::StrCat(200 * kMiB, "\n"));
    WriteFile(leaf_ + "/memory.stat", absl::StrCat("anon 1\ninactive_file ", 50 * kMiB, "\n"));
    WriteFile(leaf_ + "/memory.events", "oom 0\noom_kill 0\n");
    WriteFile(leaf_ + "/memory.oom.group", "1\n");
    WriteFile(leaf_ + "/cgroup.procs", "4242\n");
    WriteFile(root_ + "/proc/4242/comm", "app\n");
  }

  PlanManagerOptions Options() {
    PlanManagerOptions options;
    options.reserve_bytes = 1 * kGiB;
    options.tick = absl::Milliseconds(5);
    CgroupTargetOptions resolver;
    resolver.memory_root = root_ + "/cg";
    resolver.proc_root = root_ + "/proc";
    options.target_resolver = std::make_shared<const CgroupTargetResolver>(resolver);
    options.target_reserve_bytes = 16 * kMiB;
    return options;
  }

  std::string root_, leaf_;
  FakeNodeProbe probe_{16 * kGiB, 12 * kGiB};
  FakeWorkerLauncher launcher_;
};

TEST_F(PlacementManagerTest, PercentsAdmissionAndJoinRefertoTheTarget) {
  PlanManager manager(Options(), &probe_, &launcher_);
  absl::StatusOr<PlanManager::StartResult> started = StartSync(manager, Placed("half"));
  ASSERT_THAT(started, IsOk());
  const WorkerSpec& spec = launcher_.worker(0)->spec();
  // 50% of the effective limit (the pod's 1 GiB), not of the node's 16 GiB.
  EXPECT_EQ(spec.plan().retained().phases(0).target().bytes(), 512 * kMiB);
  EXPECT_EQ(spec.join_cgroup_dir(), leaf_);
  EXPECT_EQ(started->plan.target().path(), leaf_);
  EXPECT_EQ(started->plan.target().limit_bytes(), kGiB);
  EXPECT_EQ(started->plan.target().working_set_bytes(), 150 * kMiB);
  EXPECT_TRUE(started->plan.target().oom_group());
  EXPECT_EQ(started->plan.target().container_id(), kId);

  // 1 GiB − 200 MiB used − 16 MiB reserve = 808 MiB of room: 90% (922 MiB) is refused,
  // naming the target and its oom.group, unless the plan expects the OOM kill.
  v1::PlanSpec big = Placed("big");
  big.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(90);
  EXPECT_THAT(StartSync(manager, big),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       ::testing::AllOf(HasSubstr(leaf_), HasSubstr("808 MiB"),
                                        HasSubstr("memory.oom.group=1"))));
  big.set_expect_oom(true);
  EXPECT_THAT(StartSync(manager, big), IsOk());
}

TEST_F(PlacementManagerTest, UtilizationPlanKeepsTheTargetAtAPercentOfItsLimit) {
  // The node's --reserve (1 GiB here) is about the node: a pod's 80% of 1 GiB must not be
  // refused for leaving less than 1 GiB free inside the pod.
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec spec;
  spec.set_plan_id("hpa");
  spec.mutable_placement()->mutable_pod()->set_pod_uid(kUid);
  spec.mutable_utilization()->set_target_percent(80);
  ASSERT_THAT(StartSync(manager, spec), IsOk());
  const WorkerSpec& worker = launcher_.worker(0)->spec();
  EXPECT_EQ(worker.reference(), v1::UtilizationPlan::REFERENCE_CGROUP);
  EXPECT_EQ(worker.cgroup_dir(), leaf_);  // It measures the target, not the agent.
  // Past the target's own reserve it is refused, naming it.
  spec.set_plan_id("too-high");
  spec.mutable_utilization()->set_target_percent(99.5);
  EXPECT_THAT(StartSync(manager, spec),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--target-reserve")));
}

TEST_F(PlacementManagerTest, ContainerWhoseProcessesAreGoneEndsTargetGone) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Placed("gone")), IsOk());
  launcher_.worker(0)->SetCounters(PlanState::kHolding, 512 * kMiB);
  // Only the worker is left in the leaf: the container's init has exited.
  WriteFile(leaf_ + "/cgroup.procs", absl::StrCat(launcher_.worker(0)->pid(), "\n"));
  ASSERT_TRUE(Eventually([&] {
    std::optional<v1::PlanStatus> plan = Find(manager, "gone");
    return plan.has_value() && plan->state() == v1::PLAN_STATE_TARGET_GONE;
  }));
  const v1::PlanStatus plan = *Find(manager, "gone");
  EXPECT_FALSE(plan.outcome_ok());
  EXPECT_THAT(plan.error(), HasSubstr("container stopped or restarted"));
  EXPECT_EQ(launcher_.worker(0)->stop_requests(), 1);
}

TEST_F(PlacementManagerTest, RemovedCgroupEndsTargetGone) {
  PlanManager manager(Options(), &probe_, &launcher_);
  ASSERT_THAT(StartSync(manager, Placed("removed")), IsOk());
  std::filesystem::remove_all(leaf_);
  ASSERT_TRUE(Eventually([&] {
    std::optional<v1::PlanStatus> plan = Find(manager, "removed");
    return plan.has_value() && plan->state() == v1::PLAN_STATE_TARGET_GONE;
  }));
  EXPECT_THAT(Find(manager, "removed")->error(), HasSubstr("was removed"));
}

TEST_F(PlacementManagerTest, UnresolvablePlacementLaunchesNothing) {
  PlanManager manager(Options(), &probe_, &launcher_);
  v1::PlanSpec spec = Placed("nowhere");
  spec.mutable_placement()->mutable_pod()->set_pod_uid("99999999-0000");
  EXPECT_THAT(StartSync(manager, spec),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("searched")));
  spec.mutable_placement()->set_cgroup_path("../etc");
  EXPECT_THAT(StartSync(manager, spec), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_EQ(launcher_.launched(), 0u);
  EXPECT_FALSE(Find(manager, "nowhere").has_value());
}

TEST_F(PlacementManagerTest, WithoutAResolverPlacedPlansAreRefused) {
  PlanManagerOptions options = Options();
  options.target_resolver = nullptr;
  PlanManager manager(options, &probe_, &launcher_);
  EXPECT_THAT(StartSync(manager, Placed("x")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot place")));
  EXPECT_EQ(launcher_.launched(), 0u);
}

}  // namespace
}  // namespace agent
}  // namespace memload
