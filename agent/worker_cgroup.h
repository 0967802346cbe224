// The agent's protection from the OOM killer when it runs in a memory cgroup with its
// workers.
//
// A worker is OOM-killed at oom_score_adj 1000, as meant. But the kernel marks the victim
// ineligible for the next selection (MMF_OOM_SKIP) as soon as its exit has unmapped its
// memory, while the freed pages are still charged to the cgroup until its exit finishes
// (tens of ms on a loaded machine; seen in dmesg: usage = limit, the victim gone from the
// task list). Any charge in that window (the agent reading /proc, a gRPC buffer) starts a
// second OOM kill with the agent as the only candidate, whatever its score: only
// oom_score_adj -1000 makes a task ineligible, and lowering it needs CAP_SYS_RESOURCE.
//
// Without it, the agent puts its workers in a child memory cgroup whose limit leaves the
// agent a margin: a worker's OOM is then the child's, and the agent's own charges go to
// its cgroup, which the child cannot fill. `PrepareWorkerCgroup` makes that child.
//
// Thread-safety: functions of files; call them from one thread at start-up and exit.
#ifndef MEMLOAD_AGENT_WORKER_CGROUP_H_
#define MEMLOAD_AGENT_WORKER_CGROUP_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace memload {
namespace agent {

// What the agent leaves itself below its cgroup's limit by default: its resident size is
// ~20 MiB with a few plans, plus kernel memory charged to the cgroup (v1 counts it).
inline constexpr uint64_t kDefaultAgentCgroupMargin = 32ull << 20;

// The child cgroup workers run in.
struct WorkerCgroup {
  std::string dir;                 // ".../memload-workers"
  std::string procs_file;          // dir + "/cgroup.procs": WorkerProcessOptions::cgroup_procs_path
  uint64_t limit_bytes = 0;        // the limit the workers share
  uint64_t agent_limit_bytes = 0;  // the limit the agent's cgroup is under (hierarchical)
};

// The child's name, under the agent's memory cgroup.
inline constexpr char kWorkerCgroupName[] = "memload-workers";

// Creates (or reuses) `agent_cgroup_dir` ("" = this process's own memory cgroup)
// /memload-workers with a memory limit of the
// agent's enforced limit (its own or an ancestor's, the smallest) minus `margin_bytes`.
// nullopt when there is no limit (nothing to protect: the node's OOM killer has other
// candidates). FailedPrecondition when the limit is not more than twice the margin (the
// workers would get too little); the errno's status naming the file when the cgroup
// cannot be read, created or limited (e.g. a read-only /sys/fs/cgroup); on cgroup v2
// FailedPrecondition when the memory controller cannot be given to the child (the agent's
// cgroup then has processes, the agent among them: v2 allows no process beside a child
// that has controllers).
absl::StatusOr<std::optional<WorkerCgroup>> PrepareWorkerCgroup(const std::string& agent_cgroup_dir,
                                                                uint64_t margin_bytes);

// Removes the child (rmdir) once its workers are gone. OK when it is gone or never existed;
// the errno's status otherwise (e.g. FailedPrecondition/EBUSY while a worker is in it).
absl::Status RemoveWorkerCgroup(const std::string& dir);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_WORKER_CGROUP_H_
