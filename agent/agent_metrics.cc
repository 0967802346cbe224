#include "agent/agent_metrics.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "core/node_readers.h"
#include "proto/plan_kind.h"

namespace memload {
namespace agent {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

MetricFamily Gauge(std::string name, std::string help) {
  return MetricFamily{std::move(name), std::move(help), MetricType::kGauge, {}};
}
MetricFamily Counter(std::string name, std::string help) {
  return MetricFamily{std::move(name), std::move(help), MetricType::kCounter, {}};
}

}  // namespace

std::string PlanStateLabel(v1::PlanState state) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::PlanState_Name(state), "PLAN_STATE_"));
}

AgentMetricsSnapshot TakeAgentMetricsSnapshot(const std::string& node_name, NodeProbe& probe,
                                              PlanManager& manager, const RpcCounters& rpcs) {
  AgentMetricsSnapshot snapshot;
  snapshot.node_name = node_name;
  if (absl::StatusOr<NodeMemory> node = probe.Read(); node.ok()) snapshot.node = *node;
  snapshot.plans = manager.List(/*include_ended=*/true);
  if (absl::StatusOr<ProcessMemory> self = ReadProcessMemory(0); self.ok()) {
    snapshot.agent_rss_bytes = self->rss_bytes;
  }
  snapshot.plans_started = manager.plans_started();
  snapshot.plans_failed = manager.plans_failed();
  snapshot.plans_oom_killed = manager.plans_oom_killed();
  snapshot.rpcs = rpcs.Snapshot();
  return snapshot;
}

std::vector<MetricFamily> AgentMetricFamilies(const AgentMetricsSnapshot& snapshot) {
  const Labels node = {{"node", snapshot.node_name}};
  std::vector<MetricFamily> families;
  auto add = [&](MetricFamily family, const Labels& labels, double value) {
    family.samples.push_back({labels, value});
    families.push_back(std::move(family));
  };

  if (snapshot.node.has_value()) {
    const NodeMemory& memory = *snapshot.node;
    add(Gauge("memload_node_memory_total_bytes", "MemTotal of /proc/meminfo."), node,
        memory.meminfo.total_bytes);
    add(Gauge("memload_node_memory_available_bytes", "MemAvailable of /proc/meminfo."), node,
        memory.meminfo.available_bytes);
    add(Gauge("memload_node_memory_cached_bytes", "Cached of /proc/meminfo."), node,
        memory.meminfo.cached_bytes);
    add(Gauge("memload_node_memory_shmem_bytes", "Shmem of /proc/meminfo."), node,
        memory.meminfo.shmem_bytes);
    if (const std::optional<uint64_t> limit = memory.CgroupLimit()) {
      add(Gauge("memload_cgroup_memory_limit_bytes",
                "Effective (hierarchical) limit of the agent's memory cgroup."),
          node, *limit);
    }
    if (memory.cgroup.has_value()) {
      add(Gauge("memload_cgroup_memory_usage_bytes", "Usage of the agent's memory cgroup."), node,
          memory.cgroup->usage_bytes);
    }
    if (memory.pressure.has_value()) {
      add(Gauge("memload_node_memory_pressure_some_avg10",
                "Share of the last 10 s some task stalled on memory (PSI), ratio 0..1."),
          node, memory.pressure->some_avg10 / 100);
      add(Gauge("memload_node_memory_pressure_full_avg10",
                "Share of the last 10 s all tasks stalled on memory (PSI), ratio 0..1."),
          node, memory.pressure->full_avg10 / 100);
    }
  }

  MetricFamily target = Gauge("memload_plan_target_bytes", "What the plan is heading for now.");
  MetricFamily payload = Gauge("memload_plan_payload_bytes", "Live payload the plan holds.");
  MetricFamily resident = Gauge("memload_plan_resident_bytes",
                                "Resident memory of the plan's worker (RssAnon + RssShmem).");
  MetricFamily bookkeeping =
      Gauge("memload_plan_bookkeeping_bytes", "memload's own records for the live blocks.");
  MetricFamily allocations = Counter("memload_plan_allocations_total", "Blocks allocated.");
  MetricFamily frees = Counter("memload_plan_frees_total", "Blocks freed.");
  MetricFamily state =
      Gauge("memload_plan_state", "1 for the plan's current state, 0 for the others.");
  for (const v1::PlanStatus& plan : snapshot.plans) {
    const Labels labels = {{"node", snapshot.node_name},
                           {"plan_id", plan.plan_id()},
                           {"kind", std::string(PlanKindName(plan.spec(), "unknown"))}};
    target.samples.push_back({labels, static_cast<double>(plan.target_bytes())});
    payload.samples.push_back({labels, static_cast<double>(plan.payload_bytes())});
    resident.samples.push_back({labels, static_cast<double>(plan.resident_bytes())});
    bookkeeping.samples.push_back({labels, static_cast<double>(plan.bookkeeping_bytes())});
    allocations.samples.push_back({labels, static_cast<double>(plan.allocations())});
    frees.samples.push_back({labels, static_cast<double>(plan.frees())});
    // Every state, so that a query on one state never sees a series vanish (kube-state-
    // metrics does the same).
    for (int value = v1::PLAN_STATE_PENDING; value <= v1::PLAN_STATE_TARGET_GONE; ++value) {
      Labels with_state = labels;
      with_state.emplace_back("state", PlanStateLabel(static_cast<v1::PlanState>(value)));
      state.samples.push_back({std::move(with_state), plan.state() == value ? 1.0 : 0.0});
    }
  }
  for (MetricFamily* family :
       {&target, &payload, &resident, &bookkeeping, &allocations, &frees, &state}) {
    families.push_back(std::move(*family));
  }

  add(Gauge("memload_agent_resident_bytes", "Resident memory (VmRSS) of the agent itself."), node,
      snapshot.agent_rss_bytes);
  add(Counter("memload_plans_started_total", "Plans started since the agent started."), node,
      snapshot.plans_started);
  add(Counter("memload_plans_failed_total", "Plans that ended FAILED."), node,
      snapshot.plans_failed);
  add(Counter("memload_plans_oom_killed_total", "Plans whose worker the OOM killer killed."), node,
      snapshot.plans_oom_killed);
  MetricFamily rpcs = Counter("memload_rpcs_total", "RPCs answered, by method and status code.");
  for (const auto& [key, count] : snapshot.rpcs) {
    rpcs.samples.push_back(
        {{{"node", snapshot.node_name}, {"method", key.first}, {"code", key.second}},
         static_cast<double>(count)});
  }
  families.push_back(std::move(rpcs));
  return families;
}

}  // namespace agent
}  // namespace memload
