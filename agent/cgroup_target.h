// CgroupTargetResolver: turns a plan's Placement (a cgroup path, a pid, or a pod's
// container) into the one memory cgroup directory its worker must join — from the files
// alone: the cgroup tree, /proc, and (for container names) the container runtime's state.
// No Kubernetes API is needed.
//
//   CgroupTargetResolver resolver(CgroupTargetOptions{});   // the real /sys/fs/cgroup, /proc
//   v1::Placement placement;
//   placement.mutable_pod()->set_pod_uid("5b7a...");
//   MEMLOAD_ASSIGN_OR_RETURN(ResolvedTarget target, resolver.Resolve(placement));
//   // target.dir: ".../kubepods.slice/kubepods-burstable.slice/
//   //              kubepods-burstable-pod5b7a....slice/cri-containerd-<id>.scope"
//
// Pods are looked for in the kubelet's layout, for both of its cgroup drivers and every
// QoS class (Guaranteed pods sit directly under kubepods):
//   cgroupfs  kubepods[/burstable|/besteffort]/pod<UID>/<container>
//   systemd   kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<UID, '-'→'_'>.slice/
//             <container>
// and a container's leaf is named by its runtime: "<id>" (containerd or Docker with
// cgroupfs), "crio-<id>" (CRI-O with cgroupfs), "cri-containerd-<id>.scope",
// "crio-<id>.scope", "docker-<id>.scope" (systemd). CRI-O's "crio-conmon-<id>" cgroups are
// its monitor, never a container. The sandbox ("pause") container is never a target: it is
// told by the runtime's annotations (config.json of the OCI bundle) when they can be read,
// else by its processes' name ("pause").
//
// A target is never a fallback: the resolved directory lies under kubepods and contains the
// pod UID (pod placements), exists, and is a memory cgroup; otherwise the answer is
// NotFound naming every place searched. InvalidArgument for a malformed placement;
// FailedPrecondition when the choice is ambiguous (several app containers, none named).
//
// Thread-safety: Resolve is const and thread-safe (it keeps no state between calls).
#ifndef MEMLOAD_AGENT_CGROUP_TARGET_H_
#define MEMLOAD_AGENT_CGROUP_TARGET_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/memload.pb.h"

namespace memload {
namespace agent {

struct CgroupTargetOptions {
  // The root directory of the memory hierarchy as the agent sees it: the v1 memory
  // controller's mount (/sys/fs/cgroup/memory) or the v2 unified mount (/sys/fs/cgroup).
  // "" = found from /proc/self/mountinfo (v1 memory first, else cgroup2). A directory that
  // is neither but holds a v1 "memory" hierarchy (the host's /sys/fs/cgroup mounted
  // somewhere) stands for that "memory" directory.
  std::string memory_root;
  // Where /proc is; tests point it at a fixture tree (needs <pid>/cgroup, <pid>/comm and
  // self/mountinfo).
  std::string proc_root = "/proc";
  // Where the kubelet keeps kubepods, relative to memory_root: its --cgroup-root.
  std::vector<std::string> kubelet_roots = {"/"};
  // Directories of OCI bundles by container id: containerd's "<dir>/<id>/config.json"
  // and CRI-O's "<dir>/<id>/userdata/config.json". Their annotations name containers and
  // tell sandboxes apart. Missing directories are fine.
  std::vector<std::string> runtime_state_dirs = {
      "/run/containerd/io.containerd.runtime.v2.task/k8s.io",
      "/run/containers/storage/overlay-containers",
  };
};

// Where a placement resolved to.
struct ResolvedTarget {
  std::string dir;  // The leaf cgroup directory (absolute, as the agent sees it).
  int version = 0;  // 1 or 2.
  // Pod placements: the container found and how.
  std::string container_id;
  std::string container_name;  // When the runtime's annotations gave it.
  std::string pod_uid;
  std::string layout;  // e.g. "systemd/burstable/containerd", for messages.
  // Pids in the leaf when it was resolved (the container's processes).
  std::vector<int> pids;
};

// Checks a placement's syntax (no files read): InvalidArgument naming the field.
absl::Status ValidatePlacement(const v1::Placement& placement);

// "containerd://abc" -> "abc"; "abc" -> "abc".
std::string StripContainerIdScheme(absl::string_view id);

// A container leaf's cgroup name -> {container id, runtime}; nullopt for names that are no
// container ("crio-conmon-<id>.scope", "pod<UID>", anything not hex).
struct ContainerLeafName {
  std::string id;
  std::string runtime;  // "containerd", "crio", "docker", or "" (a bare id: cgroupfs).
};
std::optional<ContainerLeafName> ParseContainerLeafName(absl::string_view name);

// The pod directories the kubelet may have made for `pod_uid`, relative to a kubelet root,
// with their layout name ("cgroupfs/guaranteed", "systemd/burstable", ...).
std::vector<std::pair<std::string, std::string>> PodCgroupCandidates(absl::string_view pod_uid);

class CgroupTargetResolver {
 public:
  explicit CgroupTargetResolver(CgroupTargetOptions options);

  absl::StatusOr<ResolvedTarget> Resolve(const v1::Placement& placement) const;

  // The memory root in use (detected once, at construction, when not given); "" when none
  // could be found (every Resolve then fails with NotFound saying so).
  const std::string& memory_root() const { return memory_root_; }

 private:
  absl::StatusOr<ResolvedTarget> ResolvePath(const std::string& path) const;
  absl::StatusOr<ResolvedTarget> ResolvePid(int pid) const;
  absl::StatusOr<ResolvedTarget> ResolvePod(const v1::PodTarget& pod) const;

  CgroupTargetOptions options_;
  std::string memory_root_;
  absl::Status root_error_;
};

// The memory cgroup directory process `pid` is in, from `proc_root`/<pid>/cgroup and
// `proc_root`/self/mountinfo; paths that leave this agent's cgroup namespace ("/../x",
// what a process outside it looks like from inside) are NotFound saying so.
absl::StatusOr<std::string> MemoryCgroupOfProcess(const std::string& proc_root, int pid);

// Pids listed in `dir`/cgroup.procs.
absl::StatusOr<std::vector<int>> CgroupProcs(const std::string& dir);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_CGROUP_TARGET_H_
