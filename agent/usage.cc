#include "agent/usage.h"

#include "proto/proto_time.h"

namespace memload {
namespace agent {

v1::NodeUsage BuildNodeUsage(const v1::NodeInfo& identity, const NodeMemory& node,
                             std::vector<v1::PlanStatus> plans, uint64_t agent_rss_bytes,
                             absl::Time now) {
  v1::NodeUsage usage;
  *usage.mutable_node() = identity;
  ToProtoTimestamp(now, usage.mutable_time());
  v1::MemInfo* meminfo = usage.mutable_meminfo();
  meminfo->set_total_bytes(node.meminfo.total_bytes);
  meminfo->set_available_bytes(node.meminfo.available_bytes);
  meminfo->set_free_bytes(node.meminfo.free_bytes);
  meminfo->set_cached_bytes(node.meminfo.cached_bytes);
  meminfo->set_shmem_bytes(node.meminfo.shmem_bytes);
  meminfo->set_swap_total_bytes(node.meminfo.swap_total_bytes);
  meminfo->set_swap_free_bytes(node.meminfo.swap_free_bytes);
  if (node.cgroup.has_value()) {
    v1::CgroupUsage* cgroup = usage.mutable_cgroup();
    cgroup->set_version(node.cgroup->version);
    cgroup->set_path(node.cgroup->path);
    const std::optional<uint64_t> limit = node.CgroupLimit();
    cgroup->set_limited(limit.has_value());
    cgroup->set_limit_bytes(limit.value_or(0));
    cgroup->set_usage_bytes(node.cgroup->usage_bytes);
    cgroup->set_oom_kill_count(node.cgroup->oom_kill_count);
  }
  if (node.pressure.has_value()) {
    v1::Pressure* pressure = usage.mutable_pressure();
    pressure->set_available(true);
    pressure->set_some_avg10(node.pressure->some_avg10);
    pressure->set_some_avg60(node.pressure->some_avg60);
    pressure->set_full_avg10(node.pressure->full_avg10);
    pressure->set_full_avg60(node.pressure->full_avg60);
  }
  usage.set_agent_rss_bytes(agent_rss_bytes);
  uint64_t payload = 0;
  uint64_t resident = 0;
  for (v1::PlanStatus& plan : plans) {
    payload += plan.payload_bytes();
    resident += plan.resident_bytes();
    *usage.add_plans() = std::move(plan);
  }
  usage.set_plans_payload_bytes(payload);
  usage.set_plans_resident_bytes(resident);
  return usage;
}

}  // namespace agent
}  // namespace memload
