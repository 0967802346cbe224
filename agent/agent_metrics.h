// The agent's Prometheus metrics: what GET /metrics shows, built from one snapshot of the
// node (NodeProbe), the plans (PlanManager), the agent's own RSS and its RPC counters.
// README.md ("Metrics and reports") lists every metric; this is where they are defined.
//
//   AgentMetricsSnapshot snapshot = TakeAgentMetricsSnapshot("node-a", probe, manager, rpcs);
//   std::string text = FormatPrometheusText(AgentMetricFamilies(snapshot));
//
// Every series has a `node` label (the agent's --node-name); plan series add `plan_id` and
// `kind`. Pressure (PSI) is exported as a ratio 0..1 (the kernel's percent / 100), as
// Prometheus prefers base units.
//
// Thread-safety: AgentMetricFamilies is pure; TakeAgentMetricsSnapshot is as thread-safe
// as the probe and manager it reads (both are).
#ifndef MEMLOAD_AGENT_AGENT_METRICS_H_
#define MEMLOAD_AGENT_AGENT_METRICS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/node_probe.h"
#include "agent/plan_manager.h"
#include "agent/prometheus_text.h"
#include "agent/rpc_counters.h"
#include "proto/memload.pb.h"

namespace memload {
namespace agent {

struct AgentMetricsSnapshot {
  std::string node_name;
  std::optional<NodeMemory> node;     // nullopt: /proc/meminfo could not be read.
  std::vector<v1::PlanStatus> plans;  // Running plans and the ended ones still remembered.
  uint64_t agent_rss_bytes = 0;
  uint64_t plans_started = 0;
  uint64_t plans_failed = 0;
  uint64_t plans_oom_killed = 0;
  RpcCounters::Counts rpcs;
};

AgentMetricsSnapshot TakeAgentMetricsSnapshot(const std::string& node_name, NodeProbe& probe,
                                              PlanManager& manager, const RpcCounters& rpcs);

// Families in a fixed order; node and cgroup families are left out when unknown.
std::vector<MetricFamily> AgentMetricFamilies(const AgentMetricsSnapshot& snapshot);

// "holding", "lease_expired", ... (the state label's values).
std::string PlanStateLabel(v1::PlanState state);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_AGENT_METRICS_H_
