#include "agent/agent_metrics.h"

#include "gtest/gtest.h"

namespace memload {
namespace agent {
namespace {

AgentMetricsSnapshot Snapshot() {
  AgentMetricsSnapshot snapshot;
  snapshot.node_name = "node-\"a\"";
  NodeMemory memory;
  memory.meminfo.total_bytes = 25769803776;
  memory.meminfo.available_bytes = 17179869184;
  memory.meminfo.cached_bytes = 1073741824;
  memory.meminfo.shmem_bytes = 4096;
  CgroupMemory cgroup;
  cgroup.version = 2;
  cgroup.hierarchical_limit_bytes = 8589934592;
  cgroup.usage_bytes = 536870912;
  memory.cgroup = cgroup;
  Pressure pressure;
  pressure.some_avg10 = 12.5;
  pressure.full_avg10 = 1.25;
  memory.pressure = pressure;
  snapshot.node = memory;
  v1::PlanStatus plan;
  plan.set_plan_id("drill");
  plan.mutable_spec()->mutable_retained();
  plan.set_state(v1::PLAN_STATE_HOLDING);
  plan.set_target_bytes(67108864);
  plan.set_payload_bytes(67108864);
  plan.set_resident_bytes(67530752);
  plan.set_bookkeeping_bytes(608);
  plan.set_allocations(64);
  plan.set_frees(0);
  snapshot.plans.push_back(plan);
  snapshot.agent_rss_bytes = 12582912;
  snapshot.plans_started = 2;
  snapshot.plans_failed = 1;
  snapshot.plans_oom_killed = 0;
  snapshot.rpcs[{"memload.v1.Agent/StartPlan", "OK"}] = 2;
  snapshot.rpcs[{"memload.v1.Agent/StopPlan", "NOT_FOUND"}] = 1;
  return snapshot;
}

TEST(AgentMetricsTest, Golden) {
  std::string states;
  for (const char* state : {"pending", "ramping", "holding", "streaming", "capped", "completed",
                            "stopped", "lease_expired", "oom_killed", "failed", "target_gone"}) {
    states += std::string(
                  "memload_plan_state{node=\"node-\\\"a\\\"\",plan_id=\"drill\","
                  "kind=\"retained\",state=\"") +
              state + "\"} " + (std::string(state) == "holding" ? "1" : "0") + "\n";
  }
  const std::string node = "{node=\"node-\\\"a\\\"\"}";
  const std::string plan = "{node=\"node-\\\"a\\\"\",plan_id=\"drill\",kind=\"retained\"}";
  EXPECT_EQ(
      FormatPrometheusText(AgentMetricFamilies(Snapshot())),
      "# HELP memload_node_memory_total_bytes MemTotal of /proc/meminfo.\n"
      "# TYPE memload_node_memory_total_bytes gauge\n"
      "memload_node_memory_total_bytes" +
          node +
          " 25769803776\n"
          "# HELP memload_node_memory_available_bytes MemAvailable of /proc/meminfo.\n"
          "# TYPE memload_node_memory_available_bytes gauge\n"
          "memload_node_memory_available_bytes" +
          node +
          " 17179869184\n"
          "# HELP memload_node_memory_cached_bytes Cached of /proc/meminfo.\n"
          "# TYPE memload_node_memory_cached_bytes gauge\n"
          "memload_node_memory_cached_bytes" +
          node +
          " 1073741824\n"
          "# HELP memload_node_memory_shmem_bytes Shmem of /proc/meminfo.\n"
          "# TYPE memload_node_memory_shmem_bytes gauge\n"
          "memload_node_memory_shmem_bytes" +
          node +
          " 4096\n"
          "# HELP memload_cgroup_memory_limit_bytes Effective (hierarchical) limit of the agent's "
          "memory cgroup.\n"
          "# TYPE memload_cgroup_memory_limit_bytes gauge\n"
          "memload_cgroup_memory_limit_bytes" +
          node +
          " 8589934592\n"
          "# HELP memload_cgroup_memory_usage_bytes Usage of the agent's memory cgroup.\n"
          "# TYPE memload_cgroup_memory_usage_bytes gauge\n"
          "memload_cgroup_memory_usage_bytes" +
          node +
          " 536870912\n"
          "# HELP memload_node_memory_pressure_some_avg10 Share of the last 10 s some task stalled "
          "on memory (PSI), ratio 0..1.\n"
          "# TYPE memload_node_memory_pressure_some_avg10 gauge\n"
          "memload_node_memory_pressure_some_avg10" +
          node +
          " 0.125\n"
          "# HELP memload_node_memory_pressure_full_avg10 Share of the last 10 s all tasks stalled "
          "on memory (PSI), ratio 0..1.\n"
          "# TYPE memload_node_memory_pressure_full_avg10 gauge\n"
          "memload_node_memory_pressure_full_avg10" +
          node +
          " 0.0125\n"
          "# HELP memload_plan_target_bytes What the plan is heading for now.\n"
          "# TYPE memload_plan_target_bytes gauge\n"
          "memload_plan_target_bytes" +
          plan +
          " 67108864\n"
          "# HELP memload_plan_payload_bytes Live payload the plan holds.\n"
          "# TYPE memload_plan_payload_bytes gauge\n"
          "memload_plan_payload_bytes" +
          plan +
          " 67108864\n"
          "# HELP memload_plan_resident_bytes Resident memory of the plan's worker (RssAnon + "
          "RssShmem).\n"
          "# TYPE memload_plan_resident_bytes gauge\n"
          "memload_plan_resident_bytes" +
          plan +
          " 67530752\n"
          "# HELP memload_plan_bookkeeping_bytes memload's own records for the live blocks.\n"
          "# TYPE memload_plan_bookkeeping_bytes gauge\n"
          "memload_plan_bookkeeping_bytes" +
          plan +
          " 608\n"
          "# HELP memload_plan_allocations_total Blocks allocated.\n"
          "# TYPE memload_plan_allocations_total counter\n"
          "memload_plan_allocations_total" +
          plan +
          " 64\n"
          "# HELP memload_plan_frees_total Blocks freed.\n"
          "# TYPE memload_plan_frees_total counter\n"
          "memload_plan_frees_total" +
          plan +
          " 0\n"
          "# HELP memload_plan_state 1 for the plan's current state, 0 for the others.\n"
          "# TYPE memload_plan_state gauge\n" +
          states +
          "# HELP memload_agent_resident_bytes Resident memory (VmRSS) of the agent itself.\n"
          "# TYPE memload_agent_resident_bytes gauge\n"
          "memload_agent_resident_bytes" +
          node +
          " 12582912\n"
          "# HELP memload_plans_started_total Plans started since the agent started.\n"
          "# TYPE memload_plans_started_total counter\n"
          "memload_plans_started_total" +
          node +
          " 2\n"
          "# HELP memload_plans_failed_total Plans that ended FAILED.\n"
          "# TYPE memload_plans_failed_total counter\n"
          "memload_plans_failed_total" +
          node +
          " 1\n"
          "# HELP memload_plans_oom_killed_total Plans whose worker the OOM killer killed.\n"
          "# TYPE memload_plans_oom_killed_total counter\n"
          "memload_plans_oom_killed_total" +
          node +
          " 0\n"
          "# HELP memload_rpcs_total RPCs answered, by method and status code.\n"
          "# TYPE memload_rpcs_total counter\n"
          "memload_rpcs_total{node=\"node-\\\"a\\\"\",method=\"memload.v1.Agent/StartPlan\","
          "code=\"OK\"} 2\n"
          "memload_rpcs_total{node=\"node-\\\"a\\\"\",method=\"memload.v1.Agent/StopPlan\","
          "code=\"NOT_FOUND\"} 1\n");
}

TEST(AgentMetricsTest, LeavesOutWhatIsUnknown) {
  AgentMetricsSnapshot snapshot = Snapshot();
  snapshot.node->cgroup.reset();
  snapshot.node->pressure.reset();
  snapshot.plans.clear();
  snapshot.rpcs.clear();
  const std::string text = FormatPrometheusText(AgentMetricFamilies(snapshot));
  EXPECT_NE(text.find("memload_node_memory_total_bytes"), std::string::npos);
  for (const char* absent :
       {"memload_cgroup_", "pressure", "memload_plan_", "memload_rpcs_total"}) {
    EXPECT_EQ(text.find(absent), std::string::npos) << absent;
  }
  snapshot.node.reset();
  EXPECT_EQ(FormatPrometheusText(AgentMetricFamilies(snapshot)).find("memload_node_"),
            std::string::npos);
}

TEST(AgentMetricsTest, StateLabels) {
  EXPECT_EQ(PlanStateLabel(v1::PLAN_STATE_LEASE_EXPIRED), "lease_expired");
  EXPECT_EQ(PlanStateLabel(v1::PLAN_STATE_OOM_KILLED), "oom_killed");
}

}  // namespace
}  // namespace agent
}  // namespace memload
