// Pods as memloadctl's input: `kubectl get pods -o json` (a PodList, or a single Pod)
// turned into one placed plan per pod, on the agent of the pod's node.
//
//   MEMLOAD_ASSIGN_OR_RETURN(std::vector<Pod> pods, ParsePods(json_text, "pods.json"));
//   MEMLOAD_ASSIGN_OR_RETURN(std::optional<PodRelativeTarget> relative,
//                            ParsePodRelativeTarget("120%request"));
//   std::vector<PodPlan> plans =
//       PlanPods(pods, {{"node-1", "10.0.0.5:7070"}}, base_spec, /*container=*/"", relative);
//   // plans[i].status not OK: a failed row (no agent on its node, no such container, ...)
//
// Requests and limits are not visible in cgroups, so N%request and N%limit are computed
// here, from the pod's spec: a retained plan's phase targets become N% of the container's
// memory request (or limit) in bytes — the load the worker adds inside the container, on
// top of what the application itself uses.
//
// Pure functions: thread-safe, no I/O (ReadPodsInput reads the file or stdin).
#ifndef MEMLOAD_CONTROLLER_PODS_H_
#define MEMLOAD_CONTROLLER_PODS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

// Limits on what --pods accepts.
inline constexpr size_t kMaxPodsInputBytes = 64 << 20;
inline constexpr size_t kMaxPods = 10000;

struct PodContainer {
  std::string name;
  std::optional<uint64_t> memory_request_bytes;  // resources.requests.memory
  std::optional<uint64_t> memory_limit_bytes;    // resources.limits.memory
  std::string container_id;  // status.containerStatuses[].containerID ("" = not started)
  bool running = false;      // status.containerStatuses[].state.running
};

struct Pod {
  std::string ns;  // metadata.namespace
  std::string name;
  std::string uid;
  std::string node_name;                 // spec.nodeName ("" = not scheduled)
  std::string phase;                     // status.phase
  std::vector<PodContainer> containers;  // spec.containers (never init containers)

  std::string DisplayName() const { return ns.empty() ? name : ns + "/" + name; }
};

// A Kubernetes quantity ("128Mi", "1Gi", "500M", "1.5Gi", "1e9", "4096") in bytes, rounded
// up to a whole byte as the kubelet does. InvalidArgument otherwise (negative, overflow).
absl::StatusOr<uint64_t> ParseKubernetesQuantity(absl::string_view text);

// `kubectl get pods -o json` output: a PodList ("kind": "List" or "PodList", "items") or one
// Pod. InvalidArgument naming `source` and the item when it is not JSON or a pod lacks
// metadata.uid / metadata.name; more than kMaxPods pods is an error too.
absl::StatusOr<std::vector<Pod>> ParsePods(absl::string_view json, absl::string_view source);

// Reads --pods: a file, or stdin for "-"; at most kMaxPodsInputBytes.
absl::StatusOr<std::string> ReadPodsInput(const std::string& path);

// --target=N%request / N%limit (N > 0, at most 1000): nullopt for any other target text,
// which plan_builder handles.
struct PodRelativeTarget {
  double percent = 0;
  enum class Of { kRequest, kLimit } of = Of::kRequest;
};
absl::StatusOr<std::optional<PodRelativeTarget>> ParsePodRelativeTarget(absl::string_view text);

// One pod's row: where its plan goes, or why it cannot.
struct PodPlan {
  Pod pod;
  std::string container;  // The container chosen.
  std::string agent;      // The agent's target ("host:port"); "" when none.
  absl::Status status;    // Not OK: a failed row, nothing is sent for it.
  v1::PlanSpec spec;      // With placement.pod and (for relative targets) bytes.
};

// One PodPlan per pod, in the input's order. `agents` maps a node name to its agent's
// target. Every pod gets a plan id of its own: "<base id>-<pod name>-<first 8 of uid>",
// cut to 128 characters. A pod is a failed row (never skipped) when: it is not scheduled,
// no agent reported its node name, `container` is not one of its containers (or, with
// `container` empty, it has several), the container has not started (no containerID), or
// a relative target needs a request/limit the container does not set.
std::vector<PodPlan> PlanPods(const std::vector<Pod>& pods,
                              const std::map<std::string, std::string>& agents,
                              const v1::PlanSpec& base, const std::string& container,
                              const std::optional<PodRelativeTarget>& relative);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_PODS_H_
