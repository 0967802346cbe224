// Builds the NodeUsage message from the node probe, the plan manager and the agent's own
// RSS. Pure conversion; thread-safe.
#ifndef MEMLOAD_AGENT_USAGE_H_
#define MEMLOAD_AGENT_USAGE_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "agent/node_probe.h"
#include "proto/memload.pb.h"

namespace memload {
namespace agent {

v1::NodeUsage BuildNodeUsage(const v1::NodeInfo& identity, const NodeMemory& node,
                             std::vector<v1::PlanStatus> plans, uint64_t agent_rss_bytes,
                             absl::Time now);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_USAGE_H_
