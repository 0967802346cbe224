// NodeProbe: the agent's view of the node's memory — /proc/meminfo and the agent's own
// memory cgroup — behind an interface so the plan manager's tests can script it.
//
// Inside a container the cgroup limit is the node the user means: the *effective* total
// is min(MemTotal, cgroup limit) and the effective available memory is
// min(MemAvailable, limit − usage). Percentages and safety limits use these, never the
// host's meminfo alone.
//
// Thread-safety: implementations are thread-safe.
#ifndef MEMLOAD_AGENT_NODE_PROBE_H_
#define MEMLOAD_AGENT_NODE_PROBE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/node_readers.h"

namespace memload {
namespace agent {

struct NodeMemory {
  Meminfo meminfo;
  // The agent's memory cgroup, when it has one that could be read.
  std::optional<CgroupMemory> cgroup;
  std::optional<Pressure> pressure;  // nullopt: no PSI on this kernel.

  // The cgroup's effective (hierarchical) limit, when there is one.
  std::optional<uint64_t> CgroupLimit() const;
  // min(MemTotal, cgroup limit).
  uint64_t EffectiveTotal() const;
  // min(MemAvailable, cgroup limit − cgroup usage).
  uint64_t EffectiveAvailable() const;
};

class NodeProbe {
 public:
  virtual ~NodeProbe() = default;
  // Reads the node now. An unreadable /proc/meminfo is an error; a missing or unreadable
  // cgroup or PSI is not (they are left empty).
  virtual absl::StatusOr<NodeMemory> Read() = 0;
};

// Reads /proc/meminfo, /proc/pressure/memory and this process's memory cgroup (or the
// cgroup directory given).
class SystemNodeProbe final : public NodeProbe {
 public:
  explicit SystemNodeProbe(std::string cgroup_dir = "") : cgroup_dir_(std::move(cgroup_dir)) {}
  absl::StatusOr<NodeMemory> Read() override;

 private:
  const std::string cgroup_dir_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_NODE_PROBE_H_
