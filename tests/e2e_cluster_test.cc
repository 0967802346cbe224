// End-to-end scenarios over a cluster on one machine (tests/cluster.h): agents on
// 127.0.0.2..., each in a memory cgroup of its own, found through dnsmasq. Every figure is
// measured from the OS (/proc/PID/status, the cgroup's usage), then compared with what
// memloadctl reports. Figures go to the test log as "[figure] ..." lines.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/proto_time.h"
#include "tests/cluster.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;

// The three nodes of most scenarios: small, medium and large.
ClusterOptions ThreeNodes() {
  ClusterOptions options;
  options.nodes = {{"node-1", "zone=a,size=small", 256 * kMiB},
                   {"node-2", "zone=b,size=medium", 512 * kMiB},
                   {"node-3", "zone=b,size=large", 1024 * kMiB}};
  return options;
}

double Percent(double part, double whole) { return 100.0 * part / whole; }

// Every node's workers, their resident bytes, its cgroup and its plans: what a failed
// wait for a state shows.
std::string Describe(Cluster& cluster) {
  std::string text;
  for (size_t i = 0; i < cluster.size(); ++i) {
    ClusterNode& node = cluster.node(i);
    absl::StrAppend(&text, node.options().name, ": cgroup ", ToMiB(node.CgroupUsage()),
                    " MiB; workers");
    for (pid_t worker : node.Workers()) {
      absl::StrAppend(&text, " ", worker, " (", ToMiB(ResidentOf(worker)), " MiB resident)");
    }
    absl::StatusOr<std::vector<v1::PlanStatus>> plans = node.Plans();
    if (!plans.ok()) absl::StrAppend(&text, "; plans: ", plans.status().ToString());
    for (const v1::PlanStatus& plan : plans.ok() ? *plans : std::vector<v1::PlanStatus>()) {
      absl::StrAppend(&text, "; plan ", plan.plan_id(), " ", v1::PlanState_Name(plan.state()),
                      " target ", ToMiB(plan.target_bytes()), " MiB resident ",
                      ToMiB(plan.resident_bytes()), " MiB ", plan.error());
    }
    text += "\n";
  }
  return text;
}

// Whether node `i`'s agent holds `plan_id` at its target (HOLDING) and has itself seen at
// least `resident` bytes of it resident (the agent samples its workers on its tick: its
// peak can lag what /proc already shows).
bool Holding(Cluster& cluster, size_t i, const std::string& plan_id, uint64_t resident = 0) {
  absl::StatusOr<std::vector<v1::PlanStatus>> plans = cluster.node(i).Plans();
  if (!plans.ok()) return false;
  for (const v1::PlanStatus& plan : *plans) {
    if (plan.plan_id() == plan_id) {
      return plan.state() == v1::PLAN_STATE_HOLDING && plan.resident_bytes() >= resident;
    }
  }
  return false;
}

// Ends a `memloadctl run` as a user's Ctrl-C does: it stops the plans, prints its summary
// and exits 130. Returns the exit code (nullopt if it did not end).
std::optional<int> Interrupt(Subprocess& run) {
  run.Signal(SIGINT);
  return run.Wait(kEventuallyTimeout);
}

// Scenario 1: one command, targets from DNS, and every node holds 80% of its own cgroup.
TEST(E2eClusterTest, EveryNodeHoldsItsShareOfItsOwnCgroup) {
  START_CLUSTER_OR_SKIP(cluster, ThreeNodes());
  std::vector<uint64_t> baseline;
  for (size_t i = 0; i < cluster.size(); ++i) baseline.push_back(cluster.node(i).CgroupUsage());

  absl::StatusOr<Subprocess> run =
      Subprocess::Start({CtlBinary(), "run", "--targets=" + cluster.DnsTarget(), "--kind=retained",
                         "--target=80%cgroup", "--hold=forever", "--interval=200ms",
                         "--plan-id=share", "--output=json"});
  ASSERT_TRUE(run.ok()) << run.status();

  // The run holds until Ctrl-C: the figures are taken once every node is in its state,
  // however long a loaded machine takes to get there (a `--for` window would race it).
  // Each worker ramps to 80% of its node's limit, rounded down to 1 MiB blocks: HOLDING,
  // and every block resident. Then the OS figures are compared with the share: within 5%.
  std::vector<pid_t> workers(cluster.size());
  ASSERT_TRUE(Eventually([&] {
    for (size_t i = 0; i < cluster.size(); ++i) {
      std::vector<pid_t> found = cluster.node(i).Workers();
      if (found.size() != 1) return false;
      workers[i] = found[0];
      const uint64_t blocks = static_cast<uint64_t>(0.8 * cluster.node(i).options().cgroup_limit);
      if (ResidentOf(found[0]) < blocks / kMiB * kMiB) return false;
      if (!Holding(cluster, i, "share", blocks / kMiB * kMiB)) return false;
    }
    return true;
  })) << Describe(cluster)
      << run->Stderr();
  std::vector<uint64_t> resident(cluster.size());
  for (size_t i = 0; i < cluster.size(); ++i) {
    ClusterNode& node = cluster.node(i);
    const double share = 0.8 * node.options().cgroup_limit;
    resident[i] = ResidentOf(workers[i]);
    const uint64_t usage = node.CgroupUsage();
    std::printf(
        "[figure] %s: limit %llu MiB, worker resident %.1f MiB = %.2f%% of the limit "
        "(target 80%%, off by %.2f%% of the share), cgroup usage %.1f MiB (baseline "
        "%.1f MiB)\n",
        node.options().name.c_str(),
        static_cast<unsigned long long>(node.options().cgroup_limit / kMiB),
        resident[i] / double(kMiB), Percent(resident[i], node.options().cgroup_limit),
        Percent(std::fabs(resident[i] - share), share), usage / double(kMiB),
        baseline[i] / double(kMiB));
    EXPECT_NEAR(resident[i], share, 0.05 * share) << node.options().name;
    // The cgroup (agent + worker) carries it, under the limit.
    EXPECT_GE(usage, resident[i]) << node.options().name;
    EXPECT_LE(usage, node.options().cgroup_limit) << node.options().name;
    EXPECT_NEAR(static_cast<double>(usage) - baseline[i], share, 0.05 * share)
        << node.options().name;
  }

  const std::optional<int> code = Interrupt(*run);
  ASSERT_TRUE(code.has_value()) << "run did not end on SIGINT";
  EXPECT_EQ(*code, 130) << run->Stdout() << run->Stderr();
  const google::protobuf::Struct document = ParseJson(run->Stdout());
  std::vector<NodeJson> nodes = NodesOf(document);
  ASSERT_EQ(nodes.size(), cluster.size()) << run->Stdout();
  uint64_t target_sum = 0, peak_sum = 0;
  for (const NodeJson& node : nodes) {
    SCOPED_TRACE(node.target);
    // DNS gave every agent, and each one reports the plan it ran.
    size_t index = cluster.size();
    for (size_t i = 0; i < cluster.size(); ++i) {
      if (cluster.node(i).address() == node.target) index = i;
    }
    ASSERT_LT(index, cluster.size());
    const double share = 0.8 * cluster.node(index).options().cgroup_limit;
    EXPECT_TRUE(node.ok);
    EXPECT_EQ(node.node, cluster.node(index).options().name);
    ASSERT_TRUE(node.plan.has_value());
    EXPECT_EQ(node.plan->state(), v1::PLAN_STATE_STOPPED);
    // The summary matches the OS: the target is the share (to a block), the peak what
    // /proc showed.
    EXPECT_NEAR(node.plan->target_bytes(), share, kMiB);
    EXPECT_NEAR(node.plan->peak_resident_bytes(), resident[index], 0.02 * share);
    target_sum += node.plan->target_bytes();
    peak_sum += node.plan->peak_resident_bytes();
  }
  EXPECT_TRUE(Get(document, {"ok"}).bool_value()) << run->Stdout();
  EXPECT_EQ(Get(document, {"summary", "reachedTarget"}).number_value(), 3);
  EXPECT_EQ(Get(document, {"summary", "targetBytes"}).string_value(), absl::StrCat(target_sum));
  EXPECT_EQ(Get(document, {"summary", "peakResidentBytes"}).string_value(), absl::StrCat(peak_sum));
  // And then nothing is left: the workers are gone.
  for (pid_t worker : workers) EXPECT_TRUE(Eventually([&] { return !Alive(worker); }));
}

// Scenario 2: --selector keeps the matching nodes only; --rollout=batch:1 --stagger=300ms
// starts them one by one, in target order, at least 300 ms apart (the agents' own
// `started` stamps, one clock on one machine).
TEST(E2eClusterTest, SelectorKeepsMatchingNodesAndRolloutStartsThemInOrder) {
  ClusterOptions options;
  options.nodes = {{"node-1", "zone=a", 256 * kMiB},
                   {"node-2", "zone=b", 256 * kMiB},
                   {"node-3", "zone=b", 256 * kMiB},
                   {"node-4", "zone=b", 256 * kMiB}};
  START_CLUSTER_OR_SKIP(cluster, options);
  constexpr absl::Duration kStagger = absl::Milliseconds(300);
  CommandResult run = cluster.Ctl({"run", "--targets=" + cluster.DnsTarget(), "--selector=zone=b",
                                   "--rollout=batch:1", "--stagger=300ms", "--kind=retained",
                                   "--target=16MiB", "--hold=forever", "--for=1s",
                                   "--interval=200ms", "--plan-id=rollout", "--output=json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  std::vector<NodeJson> nodes = NodesOf(ParseJson(run.out));
  ASSERT_EQ(nodes.size(), 3u) << run.out;
  std::vector<absl::Time> started;
  for (size_t i = 0; i < nodes.size(); ++i) {
    // Nodes 2-4 (zone=b), in the order DNS and sorting gave: 127.0.0.3, .4, .5.
    EXPECT_EQ(nodes[i].target, cluster.node(i + 1).address());
    EXPECT_EQ(nodes[i].node, cluster.node(i + 1).options().name);
    EXPECT_TRUE(nodes[i].ok) << nodes[i].error_message;
    ASSERT_TRUE(nodes[i].plan.has_value());
    started.push_back(FromProtoTimestamp(nodes[i].plan->started()));
  }
  for (size_t i = 1; i < started.size(); ++i) {
    const absl::Duration gap = started[i] - started[i - 1];
    std::printf("[figure] rollout: %s started %s after %s\n", nodes[i].node.c_str(),
                absl::FormatDuration(gap).c_str(), nodes[i - 1].node.c_str());
    EXPECT_GE(gap, kStagger);
    EXPECT_LT(gap, kStagger + absl::Seconds(3));
  }
  // The agent that the selector left out never heard of the plan.
  absl::StatusOr<std::vector<v1::PlanStatus>> left_out = cluster.node(0).Plans();
  ASSERT_TRUE(left_out.ok()) << left_out.status();
  EXPECT_TRUE(left_out->empty());
  for (size_t i = 1; i < cluster.size(); ++i) {
    absl::StatusOr<std::vector<v1::PlanStatus>> plans = cluster.node(i).Plans();
    ASSERT_TRUE(plans.ok()) << plans.status();
    ASSERT_EQ(plans->size(), 1u);
    EXPECT_EQ((*plans)[0].state(), v1::PLAN_STATE_STOPPED);
  }
}

// Scenario 5: a plan larger than the small node's cgroup. It is an OOM drill
// (--expect-oom), because the agent's reserve check refuses a plan its cgroup cannot hold
// (that refusal is tested in agent_process_test); expect_oom lifts only that check. The
// small node's worker is OOM-killed and reported OOM_KILLED; its agent lives on, and the
// larger nodes hold the plan.
TEST(E2eClusterTest, PlanLargerThanOneNodesCgroupOomKillsOnlyThatNodesWorker) {
  START_CLUSTER_OR_SKIP(cluster, ThreeNodes());
  constexpr uint64_t kPlan = 320 * kMiB;
  const uint64_t oom_kills_before = cluster.node(0).OomKills();
  absl::StatusOr<Subprocess> run = Subprocess::Start(
      {CtlBinary(), "run", "--targets=" + cluster.DnsTarget(), "--kind=retained", "--target=320MiB",
       "--expect-oom", "--hold=forever", "--interval=200ms", "--plan-id=too-big", "--output=json"});
  ASSERT_TRUE(run.ok());
  // The OS: node-1's cgroup counts an OOM kill and its worker is gone; the others hold.
  ASSERT_TRUE(Eventually([&] { return cluster.node(0).OomKills() > oom_kills_before; }))
      << "no OOM kill in node-1's cgroup";
  EXPECT_TRUE(Eventually([&] { return cluster.node(0).Workers().empty(); }));
  for (size_t i = 1; i < cluster.size(); ++i) {
    EXPECT_TRUE(Eventually([&] {
      std::vector<pid_t> workers = cluster.node(i).Workers();
      return workers.size() == 1 && ResidentOf(workers[0]) >= kPlan &&
             Holding(cluster, i, "too-big");
    })) << cluster.node(i).options().name
        << " does not hold the plan\n"
        << Describe(cluster);
  }
  EXPECT_TRUE(Alive(cluster.node(0).agent_pid())) << "the OOM killer took the agent";
  std::printf(
      "[figure] OOM: node-1 (256 MiB) oom_kill %llu -> %llu; node-2, node-3 hold "
      "320 MiB each\n",
      static_cast<unsigned long long>(oom_kills_before),
      static_cast<unsigned long long>(cluster.node(0).OomKills()));

  // Ended by Ctrl-C once every node is in its state (130); every outcome was expected.
  const std::optional<int> code = Interrupt(*run);
  ASSERT_TRUE(code.has_value()) << "run did not end on SIGINT";
  EXPECT_EQ(*code, 130) << run->Stdout() << run->Stderr();
  std::vector<NodeJson> nodes = NodesOf(ParseJson(run->Stdout()));
  ASSERT_EQ(nodes.size(), 3u);
  for (size_t i = 0; i < nodes.size(); ++i) {
    SCOPED_TRACE(nodes[i].target);
    ASSERT_EQ(nodes[i].target, cluster.node(i).address());
    ASSERT_TRUE(nodes[i].plan.has_value());
    EXPECT_TRUE(nodes[i].ok);
    EXPECT_EQ(nodes[i].plan->state(), i == 0 ? v1::PLAN_STATE_OOM_KILLED : v1::PLAN_STATE_STOPPED);
    EXPECT_TRUE(nodes[i].plan->outcome_ok());
  }
  // The agent keeps serving and reports the kill in its cgroup.
  EXPECT_TRUE(cluster.node(0).agent().running());
  CommandResult usage =
      cluster.Ctl({"usage", "--targets=" + cluster.node(0).address(), "--output=json"});
  ASSERT_EQ(usage.exit_code, 0) << usage.err;
  const google::protobuf::Struct document = ParseJson(usage.out);
  EXPECT_GE(std::stoull(
                Get(NodesOf(document)[0].raw, {"usage", "cgroup", "oomKillCount"}).string_value()),
            1u);
}

// Scenario 7: target utilization of a cgroup while another process in the same cgroup
// grows by 20% of the limit, holds, and shrinks again. The loop makes room and takes it
// back: the cgroup's usage, sampled every 50 ms from the test, stays within 5% of the
// target.
TEST(E2eClusterTest, UtilizationHoldsTheCgroupAtTargetAroundACompetingProcess) {
  ClusterOptions options;
  options.nodes = {{"node-1", "zone=a", 512 * kMiB}};
  START_CLUSTER_OR_SKIP(cluster, options);
  ClusterNode& node = cluster.node(0);
  const double limit = node.options().cgroup_limit;
  const double target = 0.6 * limit;
  constexpr int kHogMiB = 100;  // ~20% of the limit.

  CommandResult start =
      cluster.Ctl({"start", "--targets=" + cluster.DnsTarget(), "--kind=utilization",
                   "--target=60%cgroup", "--lease=60s", "--plan-id=utilization"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  auto deviation = [&] { return std::fabs(node.CgroupUsage() - target) / target; };
  // Settled: ten samples in a row within 2% of the target.
  int in_a_row = 0;
  ASSERT_TRUE(Eventually([&] {
    in_a_row = deviation() <= 0.02 ? in_a_row + 1 : 0;
    return in_a_row >= 10;
  })) << "usage "
      << node.CgroupUsage() << " never settled at " << target;
  std::vector<pid_t> workers = node.Workers();
  ASSERT_EQ(workers.size(), 1u);
  const uint64_t payload_alone = ResidentOf(workers[0]);

  absl::StatusOr<Subprocess> hog = Subprocess::Start(
      {"tests/memory_hog", absl::StrCat(kHogMiB), "40", "1000"}, node.cgroup_procs());
  ASSERT_TRUE(hog.ok());
  double max_deviation = 0;
  uint64_t min_payload = payload_alone;
  int samples = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::optional<absl::Time> hog_done;
  // Sampling pace, not synchronisation: 50 ms between samples until a second after the
  // competing process is gone.
  while (absl::Now() < deadline && (!hog_done || absl::Now() < *hog_done + absl::Seconds(1))) {
    max_deviation = std::max(max_deviation, deviation());
    min_payload = std::min(min_payload, ResidentOf(workers[0]));
    ++samples;
    if (!hog_done && !hog->running()) hog_done = absl::Now();
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(hog_done.has_value()) << "the competing process never finished";
  EXPECT_EQ(hog->Wait(absl::ZeroDuration()).value_or(-1), 0) << hog->Stderr();
  EXPECT_THAT(hog->Stdout(), HasSubstr("released"));

  CommandResult stop = cluster.Ctl(
      {"stop", "--targets=" + cluster.DnsTarget(), "--plan-id=utilization", "--output=json"});
  ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  std::vector<NodeJson> nodes = NodesOf(ParseJson(stop.out));
  ASSERT_EQ(nodes.size(), 1u);
  ASSERT_TRUE(nodes[0].plan.has_value());
  EXPECT_EQ(nodes[0].plan->state(), v1::PLAN_STATE_STOPPED);
  std::printf(
      "[figure] utilization: target 60%% of 512 MiB = %.1f MiB; %d samples at 50 ms "
      "around a %d MiB competing process: max deviation %.2f%% of the target "
      "(%.2f points of the limit); agent's own figure %.2f points; plan payload "
      "%.1f -> %.1f MiB while the competitor held\n",
      target / kMiB, samples, kHogMiB, 100 * max_deviation, 100 * max_deviation * target / limit,
      nodes[0].plan->max_deviation_percent(), payload_alone / double(kMiB),
      min_payload / double(kMiB));
  EXPECT_LE(max_deviation, 0.05);
  // The loop really made room: the plan gave back most of what the competitor took.
  EXPECT_LE(min_payload + 0.7 * kHogMiB * kMiB, payload_alone);
  EXPECT_TRUE(Eventually([&] { return node.Workers().empty(); }));
}

}  // namespace
}  // namespace testing
}  // namespace memload
