#include "agent/node_probe.h"

#include <algorithm>

namespace memload {
namespace agent {

std::optional<uint64_t> NodeMemory::CgroupLimit() const {
  if (!cgroup.has_value()) return std::nullopt;
  return cgroup->hierarchical_limit_bytes.has_value() ? cgroup->hierarchical_limit_bytes
                                                      : cgroup->limit_bytes;
}

uint64_t NodeMemory::EffectiveTotal() const {
  const std::optional<uint64_t> limit = CgroupLimit();
  return limit.has_value() ? std::min(meminfo.total_bytes, *limit) : meminfo.total_bytes;
}

uint64_t NodeMemory::EffectiveAvailable() const {
  const std::optional<uint64_t> limit = CgroupLimit();
  if (!limit.has_value()) return meminfo.available_bytes;
  const uint64_t headroom = *limit > cgroup->usage_bytes ? *limit - cgroup->usage_bytes : 0;
  return std::min(meminfo.available_bytes, headroom);
}

absl::StatusOr<NodeMemory> SystemNodeProbe::Read() {
  NodeMemory node;
  absl::StatusOr<Meminfo> meminfo = ReadMeminfo();
  if (!meminfo.ok()) return meminfo.status();
  node.meminfo = *meminfo;
  absl::StatusOr<CgroupMemory> cgroup = ReadCgroupMemory(cgroup_dir_);
  if (cgroup.ok()) node.cgroup = *std::move(cgroup);
  absl::StatusOr<std::optional<Pressure>> pressure = ReadMemoryPressure();
  if (pressure.ok()) node.pressure = *pressure;
  return node;
}

}  // namespace agent
}  // namespace memload
