// Moving a process into a memory cgroup from outside, and checking that it got there.
//
// memload's workers join a placement's cgroup this way: the worker is forked and waits,
// before exec and before it allocates anything, while the agent writes its pid to the
// target's cgroup.procs and reads /proc/<pid>/cgroup back; only then is it released. Memory
// stays charged to the cgroup it was allocated in (it does not move with the process), so
// a worker that allocated first would leave its load charged to the agent.
//
//   MEMLOAD_RETURN_IF_ERROR(JoinCgroup(pid, "/sys/fs/cgroup/memory/kubepods/.../abc"));
//
// Thread-safety: thread-safe (no state).
#ifndef MEMLOAD_AGENT_CGROUP_JOIN_H_
#define MEMLOAD_AGENT_CGROUP_JOIN_H_

#include <string>

#include "absl/status/status.h"

namespace memload {
namespace agent {

// Writes `pid` to `cgroup_dir`/cgroup.procs (v1: a directory of the memory hierarchy; v2:
// of the unified one), then checks `proc_root`/<pid>/cgroup and this process's mountinfo
// say the process is in `cgroup_dir` now. NotFound when the cgroup is gone, the errno's
// status (e.g. PermissionDenied) when the write fails, FailedPrecondition when the process
// is elsewhere afterwards (e.g. a v2 cgroup with child cgroups: "no internal processes").
absl::Status JoinCgroup(int pid, const std::string& cgroup_dir,
                        const std::string& proc_root = "/proc");

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_CGROUP_JOIN_H_
