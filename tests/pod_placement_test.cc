// Placement over real processes: a memload-agent (in a memory cgroup of its own) places
// workers in a fake kubepods tree built under the real memory hierarchy, in both of the
// kubelet's naming schemes, where a `sleep` plays the container's init in a limited leaf.
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/testing/sanitizers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"
#include "tests/fake_kubepods.h"

namespace memload {
namespace testing {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::Le;

v1::PlanSpec PodPlan(const std::string& id, const FakeKubepods& pods, uint64_t bytes) {
  v1::PlanSpec spec;
  spec.set_plan_id(id);
  spec.mutable_lease()->set_seconds(120);
  spec.mutable_placement()->mutable_pod()->set_pod_uid(pods.pod_uid());
  v1::Phase* phase = spec.mutable_retained()->add_phases();
  phase->mutable_target()->set_bytes(bytes);
  phase->set_hold_forever(true);
  return spec;
}

grpc::Status StartPlan(ClusterNode& node, const v1::PlanSpec& spec, v1::PlanStatus* plan) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::StartPlanRequest request;
  *request.mutable_spec() = spec;
  v1::StartPlanResponse response;
  grpc::Status status = node.NewStub()->StartPlan(&context, request, &response);
  if (plan != nullptr) *plan = response.plan();
  return status;
}

std::optional<v1::PlanStatus> PlanOf(ClusterNode& node, const std::string& id) {
  absl::StatusOr<std::vector<v1::PlanStatus>> plans = node.Plans();
  if (!plans.ok()) return std::nullopt;
  for (const v1::PlanStatus& plan : *plans) {
    if (plan.plan_id() == id) return plan;
  }
  return std::nullopt;
}

bool InState(ClusterNode& node, const std::string& id, v1::PlanState state) {
  std::optional<v1::PlanStatus> plan = PlanOf(node, id);
  return plan.has_value() && plan->state() == state;
}

struct Scheme {
  const char* name;
  FakeKubepods::Scheme scheme;
};

class PodPlacementTest : public ::testing::TestWithParam<Scheme> {
 protected:
  // A fake kubepods tree with a `limit` leaf, and one agent that places into it.
  void SetUpTree(uint64_t limit) {
    absl::StatusOr<std::unique_ptr<FakeKubepods>> pods =
        FakeKubepods::Create(GetParam().name, GetParam().scheme, limit);
    if (!pods.ok()) GTEST_SKIP() << "no memory cgroups here: " << pods.status();
    pods_ = std::move(*pods);
    ClusterOptions options;
    NodeOptions node{"node-1", "", 1024 * kMiB};
    node.agent_flags.push_back("--cgroup_root=" + pods_->root());
    options.nodes = {node};
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    if (IsNoCgroups(cluster.status())) GTEST_SKIP() << cluster.status();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }
  void TearDown() override {
    cluster_.reset();  // Agents and workers first: the tree can only go once they are out.
    pods_.reset();
  }

  std::unique_ptr<FakeKubepods> pods_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_P(PodPlacementTest, LoadIsChargedToTheContainerNotTheAgent) {
  SetUpTree(512 * kMiB);
  if (IsSkipped() || HasFatalFailure()) return;
  ClusterNode& node = cluster_->node(0);
  constexpr uint64_t kLoad = 128 * kMiB;
  const uint64_t leaf_before = pods_->LeafUsage();
  const uint64_t working_set_before = pods_->LeafWorkingSet();
  const uint64_t agent_before = node.CgroupUsage();

  v1::PlanStatus plan;
  const grpc::Status started = StartPlan(node, PodPlan("hog", *pods_, kLoad), &plan);
  ASSERT_TRUE(started.ok()) << started.error_message();
  ASSERT_TRUE(Eventually([&] { return InState(node, "hog", v1::PLAN_STATE_HOLDING); }));
  std::optional<v1::PlanStatus> holding = PlanOf(node, "hog");
  ASSERT_TRUE(holding.has_value());

  // The worker sits in the container's leaf, beside its init.
  EXPECT_THAT(pods_->LeafProcs(), Contains(holding->worker_pid()));
  EXPECT_THAT(pods_->LeafProcs(), Contains(pods_->init_pid()));
  // The leaf's usage and working set rose by the plan (±5%; under ASan, plus the sanitized
  // worker's runtime); the agent's cgroup did not.
  const double leaf_rise = static_cast<double>(pods_->LeafUsage() - leaf_before);
  const double working_set_rise = static_cast<double>(pods_->LeafWorkingSet()) - working_set_before;
  const auto the_plan = AllOf(Ge(kLoad * 0.95), Le(kLoad * 1.05 + kAsanProcessOverheadBytes));
  EXPECT_THAT(leaf_rise, the_plan);
  EXPECT_THAT(working_set_rise, the_plan);
  const double agent_rise = static_cast<double>(node.CgroupUsage()) - agent_before;
  EXPECT_LT(agent_rise, kLoad * 0.05) << "the agent's cgroup grew by " << agent_rise;
  std::cerr << "leaf +" << leaf_rise / kMiB << " MiB, working set +" << working_set_rise / kMiB
            << " MiB, agent cgroup +" << agent_rise / kMiB << " MiB for a " << kLoad / kMiB
            << " MiB plan\n";

  // The plan reports its target (as read at the agent's last tick).
  ASSERT_TRUE(Eventually([&] {
    holding = PlanOf(node, "hog");
    return holding.has_value() && holding->target().usage_bytes() >= kLoad;
  }));
  EXPECT_EQ(holding->target().path(), pods_->leaf());
  EXPECT_EQ(holding->target().container_id(), pods_->container_id());
  EXPECT_EQ(holding->target().limit_bytes(), 512 * kMiB);
  EXPECT_GE(holding->target().usage_bytes(), kLoad);
  EXPECT_GE(holding->target().working_set_bytes(), kLoad * 95 / 100);
}

TEST_P(PodPlacementTest, PercentIsOfTheContainersLimit) {
  SetUpTree(256 * kMiB);
  if (IsSkipped() || HasFatalFailure()) return;
  ClusterNode& node = cluster_->node(0);
  v1::PlanSpec spec = PodPlan("half", *pods_, 0);
  spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(50);
  v1::PlanStatus plan;
  const grpc::Status started = StartPlan(node, spec, &plan);
  ASSERT_TRUE(started.ok()) << started.error_message();
  EXPECT_EQ(plan.target_bytes(), 128 * kMiB);
  // Past the limit minus the target reserve: refused, naming the target.
  spec.set_plan_id("too-big");
  spec.mutable_retained()->mutable_phases(0)->mutable_target()->set_percent_of_total(99);
  const grpc::Status refused = StartPlan(node, spec, nullptr);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr(pods_->leaf()));
}

TEST_P(PodPlacementTest, ExpectedOomKillTakesTheWorkerNotTheContainer) {
  SetUpTree(64 * kMiB);
  if (IsSkipped() || HasFatalFailure()) return;
  ClusterNode& node = cluster_->node(0);
  v1::PlanSpec spec = PodPlan("oom", *pods_, 256 * kMiB);
  spec.set_expect_oom(true);
  const grpc::Status started = StartPlan(node, spec, nullptr);
  ASSERT_TRUE(started.ok()) << started.error_message();
  ASSERT_TRUE(Eventually([&] { return InState(node, "oom", v1::PLAN_STATE_OOM_KILLED); },
                         absl::Seconds(30)));
  EXPECT_TRUE(PlanOf(node, "oom")->outcome_ok());
  EXPECT_TRUE(Eventually([&] { return PlanOf(node, "oom")->target().oom_kill_count() >= 1; }));
  EXPECT_TRUE(Alive(pods_->init_pid())) << "the container's init was killed too";
  EXPECT_TRUE(Alive(node.agent_pid()));
}

TEST_P(PodPlacementTest, ContainerThatGoesAwayEndsThePlanTargetGone) {
  SetUpTree(256 * kMiB);
  if (IsSkipped() || HasFatalFailure()) return;
  ClusterNode& node = cluster_->node(0);
  const grpc::Status started = StartPlan(node, PodPlan("gone", *pods_, 32 * kMiB), nullptr);
  ASSERT_TRUE(started.ok()) << started.error_message();
  ASSERT_TRUE(Eventually([&] { return InState(node, "gone", v1::PLAN_STATE_HOLDING); }));
  // The runtime kills the container and removes its cgroup: that only succeeds once the
  // agent has taken its worker out.
  ASSERT_TRUE(pods_->KillContainerAndRemoveLeaf(absl::Seconds(20)));
  ASSERT_TRUE(Eventually([&] { return InState(node, "gone", v1::PLAN_STATE_TARGET_GONE); }));
  const v1::PlanStatus plan = *PlanOf(node, "gone");
  EXPECT_FALSE(plan.outcome_ok());
  EXPECT_THAT(plan.error(), HasSubstr("container stopped or restarted"));
  EXPECT_TRUE(node.Workers().empty());
}

TEST_P(PodPlacementTest, UnresolvablePodIsNotFoundAndNothingIsCharged) {
  SetUpTree(256 * kMiB);
  if (IsSkipped() || HasFatalFailure()) return;
  ClusterNode& node = cluster_->node(0);
  const uint64_t leaf_before = pods_->LeafUsage();
  const uint64_t agent_before = node.CgroupUsage();
  v1::PlanSpec spec = PodPlan("nowhere", *pods_, 64 * kMiB);
  spec.mutable_placement()->mutable_pod()->set_pod_uid("99999999-0000-0000-0000-000000000000");
  const grpc::Status refused = StartPlan(node, spec, nullptr);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(refused.error_message(), HasSubstr("searched"));
  EXPECT_THAT(refused.error_message(), HasSubstr(pods_->root()));
  EXPECT_TRUE(node.Workers().empty());
  EXPECT_FALSE(PlanOf(node, "nowhere").has_value());
  EXPECT_LT(static_cast<double>(pods_->LeafUsage()) - leaf_before, 1.0 * kMiB);
  EXPECT_LT(static_cast<double>(node.CgroupUsage()) - agent_before, 4.0 * kMiB);
}

INSTANTIATE_TEST_SUITE_P(BothSchemes, PodPlacementTest,
                         ::testing::Values(Scheme{"cgroupfs", FakeKubepods::Scheme::kCgroupfs},
                                           Scheme{"systemd", FakeKubepods::Scheme::kSystemd}),
                         [](const ::testing::TestParamInfo<Scheme>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace testing
}  // namespace memload
