// End-to-end faults over a cluster on one machine (tests/cluster.h): the controller killed
// mid-run, an agent killed mid-plan and restarted, an agent frozen. What is left behind is
// measured from the OS: live workers from /proc, the cgroups' usage.
#include <signal.h>

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/node_readers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kPlan = 64 * kMiB;
// What a cgroup may still hold once its plan's memory is back: page cache and the
// kernel's per-CPU charge batches, not a plan's 64 MiB.
constexpr uint64_t kSlack = 4 * kMiB;

ClusterOptions ThreeNodes() {
  ClusterOptions options;
  options.nodes = {{"node-1", "zone=a", 256 * kMiB},
                   {"node-2", "zone=b", 256 * kMiB},
                   {"node-3", "zone=b", 256 * kMiB}};
  return options;
}

std::vector<uint64_t> Usages(Cluster& cluster) {
  std::vector<uint64_t> usage;
  for (size_t i = 0; i < cluster.size(); ++i) usage.push_back(cluster.node(i).CgroupUsage());
  return usage;
}

// Waits until every node runs one worker holding the plan; their pids.
std::vector<pid_t> WaitForHeldPlans(Cluster& cluster) {
  std::vector<pid_t> workers(cluster.size());
  EXPECT_TRUE(Eventually([&] {
    for (size_t i = 0; i < cluster.size(); ++i) {
      std::vector<pid_t> found = cluster.node(i).Workers();
      if (found.size() != 1 || ResidentOf(found[0]) < kPlan) return false;
      workers[i] = found[0];
    }
    return true;
  })) << "the plan was never held everywhere";
  return workers;
}

std::string ProcessState(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFileToString(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return "";
  const size_t close = stat->rfind(')');
  return close == std::string::npos ? "" : stat->substr(close + 2, 1);
}

// Scenario 3: memloadctl dies with SIGKILL mid-run, nobody renews the leases (2 s): every
// agent releases by itself within lease + 1 s, and nothing is left in the cgroups.
TEST(E2eFaultTest, ControllerKilledMidRunEveryAgentReleasesWithinTheLease) {
  START_CLUSTER_OR_SKIP(cluster, ThreeNodes());
  constexpr absl::Duration kLease = absl::Seconds(2);
  const std::vector<uint64_t> baseline = Usages(cluster);
  absl::StatusOr<Subprocess> run = Subprocess::Start(
      {CtlBinary(), "run", "--targets=" + cluster.DnsTarget(), "--kind=retained", "--target=64MiB",
       "--hold=forever", "--lease=2s", "--interval=200ms", "--plan-id=orphaned"});
  ASSERT_TRUE(run.ok());
  const std::vector<pid_t> workers = WaitForHeldPlans(cluster);
  ASSERT_FALSE(HasFailure());

  run->Signal(SIGKILL);
  const absl::Time killed = absl::Now();
  ASSERT_EQ(run->Wait(absl::Seconds(5)).value_or(-1), 128 + SIGKILL);
  // Per node: when the worker is gone and the cgroup is back at its baseline.
  std::vector<std::optional<absl::Duration>> released(cluster.size());
  Eventually(
      [&] {
        bool all = true;
        for (size_t i = 0; i < cluster.size(); ++i) {
          if (!released[i] && !Alive(workers[i]) &&
              cluster.node(i).CgroupUsage() <= baseline[i] + kSlack) {
            released[i] = absl::Now() - killed;
          }
          all &= released[i].has_value();
        }
        return all;
      },
      kLease + absl::Seconds(5));
  for (size_t i = 0; i < cluster.size(); ++i) {
    ClusterNode& node = cluster.node(i);
    ASSERT_TRUE(released[i].has_value()) << node.options().name << " kept the plan's memory";
    std::printf(
        "[figure] controller killed: %s released %s after (lease 2s), cgroup %.1f MiB "
        "(baseline %.1f MiB)\n",
        node.options().name.c_str(), absl::FormatDuration(*released[i]).c_str(),
        node.CgroupUsage() / double(kMiB), baseline[i] / double(kMiB));
    EXPECT_LE(*released[i], kLease + absl::Seconds(1)) << node.options().name;
    EXPECT_GE(*released[i], kLease / 2) << "released long before the lease ran out";
    EXPECT_TRUE(node.Workers().empty());
    // The agent says why.
    absl::StatusOr<std::vector<v1::PlanStatus>> plans = node.Plans();
    ASSERT_TRUE(plans.ok()) << plans.status();
    ASSERT_EQ(plans->size(), 1u);
    EXPECT_EQ((*plans)[0].state(), v1::PLAN_STATE_LEASE_EXPIRED);
  }
}

// Scenario 4: an agent dies with SIGKILL mid-plan. Its worker dies with it (nothing left
// resident in its cgroup); restarted on the same address and port it has a new
// incarnation, which `memloadctl agents` shows and which the running `memloadctl run`
// notices: that node fails with "agent restarted", the others finish.
TEST(E2eFaultTest, AgentKilledMidPlanTakesItsWorkerAndComesBackAsANewIncarnation) {
  START_CLUSTER_OR_SKIP(cluster, ThreeNodes());
  ClusterNode& victim = cluster.node(1);
  const std::string old_incarnation = victim.incarnation();
  ASSERT_FALSE(old_incarnation.empty());
  CommandResult agents =
      cluster.Ctl({"agents", "--targets=" + cluster.DnsTarget(), "--output=json"});
  ASSERT_EQ(agents.exit_code, 0) << agents.err;
  EXPECT_EQ(Get(NodesOf(ParseJson(agents.out))[1].raw, {"node", "incarnation"}).string_value(),
            old_incarnation);

  const std::vector<uint64_t> baseline = Usages(cluster);
  absl::StatusOr<Subprocess> run =
      Subprocess::Start({CtlBinary(), "run", "--targets=" + cluster.DnsTarget(), "--kind=retained",
                         "--target=64MiB", "--hold=forever", "--for=6s", "--interval=200ms",
                         "--timeout=2s", "--plan-id=survivor", "--output=json"});
  ASSERT_TRUE(run.ok());
  const std::vector<pid_t> workers = WaitForHeldPlans(cluster);
  ASSERT_FALSE(HasFailure());

  victim.Kill();
  const absl::Time killed = absl::Now();
  // PR_SET_PDEATHSIG: the worker goes with the agent, and its memory with it.
  ASSERT_TRUE(Eventually([&] { return !Alive(workers[1]); }, absl::Seconds(2)))
      << "the worker outlived its agent";
  ASSERT_TRUE(
      Eventually([&] { return victim.CgroupUsage() <= baseline[1] + kSlack; }, absl::Seconds(2)))
      << "still charged to the dead agent's cgroup: " << victim.CgroupUsage();
  std::printf(
      "[figure] agent killed: worker gone and cgroup at %.1f MiB (baseline %.1f MiB) "
      "%s after SIGKILL\n",
      victim.CgroupUsage() / double(kMiB), baseline[1] / double(kMiB),
      absl::FormatDuration(absl::Now() - killed).c_str());
  EXPECT_TRUE(Alive(workers[0]) && Alive(workers[2])) << "the other nodes lost their plans";

  ASSERT_TRUE(victim.Restart().ok());
  const std::string new_incarnation = victim.incarnation();
  EXPECT_NE(new_incarnation, old_incarnation);
  EXPECT_TRUE(victim.Workers().empty());
  absl::StatusOr<std::vector<v1::PlanStatus>> plans = victim.Plans();
  ASSERT_TRUE(plans.ok());
  EXPECT_TRUE(plans->empty()) << "the new agent knows of a plan";
  agents = cluster.Ctl({"agents", "--targets=" + cluster.DnsTarget(), "--output=json"});
  ASSERT_EQ(agents.exit_code, 0) << agents.err;
  std::vector<NodeJson> listed = NodesOf(ParseJson(agents.out));
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(Get(listed[1].raw, {"node", "incarnation"}).string_value(), new_incarnation);
  CommandResult table = cluster.Ctl({"agents", "--targets=" + victim.address()});
  EXPECT_THAT(table.out, HasSubstr(new_incarnation.substr(0, 8)));

  std::optional<int> code = run->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << run->Stdout() << run->Stderr();
  std::vector<NodeJson> nodes = NodesOf(ParseJson(run->Stdout()));
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_TRUE(nodes[0].ok && nodes[2].ok);
  EXPECT_FALSE(nodes[1].ok);
  EXPECT_EQ(nodes[1].error_code, "ABORTED");
  EXPECT_EQ(nodes[1].error_message, absl::StrCat("agent restarted (incarnation ", old_incarnation,
                                                 " → ", new_incarnation, "): the plan is gone"));
}

// Scenario 6: an agent frozen with SIGSTOP. Calls to it time out per --timeout, the other
// nodes' results arrive, the exit code is 1 and the frozen node is named. After SIGCONT it
// answers again and holds nothing.
TEST(E2eFaultTest, FrozenAgentTimesOutAndIsNamedWhileTheOthersAnswer) {
  START_CLUSTER_OR_SKIP(cluster, ThreeNodes());
  ClusterNode& frozen = cluster.node(1);
  frozen.agent().Signal(SIGSTOP);
  ASSERT_TRUE(Eventually([&] { return ProcessState(frozen.agent_pid()) == "T"; }));

  absl::Time begin = absl::Now();
  CommandResult usage = cluster.Ctl({"usage", "--targets=" + cluster.DnsTarget(), "--timeout=1s",
                                     "--retries=0", "--output=json"});
  const absl::Duration usage_took = absl::Now() - begin;
  EXPECT_EQ(usage.exit_code, 1) << usage.out << usage.err;
  std::vector<NodeJson> nodes = NodesOf(ParseJson(usage.out));
  ASSERT_EQ(nodes.size(), 3u) << usage.out;
  for (size_t i = 0; i < nodes.size(); ++i) {
    SCOPED_TRACE(nodes[i].target);
    EXPECT_EQ(nodes[i].target, cluster.node(i).address());
    if (i == 1) {
      EXPECT_FALSE(nodes[i].ok);
      EXPECT_EQ(nodes[i].error_code, "DEADLINE_EXCEEDED");
    } else {
      EXPECT_TRUE(nodes[i].ok);
      EXPECT_EQ(Get(nodes[i].raw, {"usage", "node", "nodeName"}).string_value(),
                cluster.node(i).options().name);
    }
  }
  EXPECT_GE(usage_took, absl::Seconds(1));
  EXPECT_LT(usage_took, absl::Seconds(4));

  // A run: the frozen node fails (it cannot even say who it is), the others run the plan.
  begin = absl::Now();
  CommandResult run = cluster.Ctl({"run", "--targets=" + cluster.DnsTarget(), "--kind=retained",
                                   "--target=16MiB", "--hold=500ms", "--lease=3s",
                                   "--interval=200ms", "--timeout=1s", "--retries=0"});
  const absl::Duration run_took = absl::Now() - begin;
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr(frozen.address()));
  EXPECT_THAT(run.out, HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_LT(run_took, absl::Seconds(10));
  std::printf("[figure] frozen agent: usage answered in %s, run in %s (--timeout=1s)\n",
              absl::FormatDuration(usage_took).c_str(), absl::FormatDuration(run_took).c_str());
  for (size_t i : {size_t{0}, size_t{2}}) {
    absl::StatusOr<std::vector<v1::PlanStatus>> plans = cluster.node(i).Plans();
    ASSERT_TRUE(plans.ok());
    ASSERT_EQ(plans->size(), 1u);
    EXPECT_EQ((*plans)[0].state(), v1::PLAN_STATE_COMPLETED);
  }

  frozen.agent().Signal(SIGCONT);
  CommandResult after =
      cluster.Ctl({"usage", "--targets=" + cluster.DnsTarget(), "--timeout=5s", "--output=json"});
  EXPECT_EQ(after.exit_code, 0) << after.out;
  // Whatever reached it while frozen either never started or ends within its lease.
  EXPECT_TRUE(Eventually([&] { return frozen.Workers().empty(); }, absl::Seconds(5)));
}

}  // namespace
}  // namespace testing
}  // namespace memload
