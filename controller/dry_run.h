// `start --dry-run` / `run --dry-run`: what each node would get, from its usage now,
// without starting anything. Percentages are resolved the way the agent resolves them:
// of the node's effective memory (MemTotal, or the memory cgroup's limit when lower) and
// of its effective available memory (MemAvailable, or what is left under the cgroup limit
// when less). Pure functions.
//
//   DryRunNode node = ResolveOnNode(spec, usage);   // node.target_bytes = 80% of total
//   std::cout << FormatDryRunTable(nodes);
//
// Thread-safety: thread-safe free functions.
#ifndef MEMLOAD_CONTROLLER_DRY_RUN_H_
#define MEMLOAD_CONTROLLER_DRY_RUN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "controller/output.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

struct DryRunNode {
  std::string node_name;
  uint64_t total_bytes = 0;      // Effective: min(MemTotal, cgroup limit).
  uint64_t available_bytes = 0;  // Effective: min(MemAvailable, limit - usage).
  std::string target;            // As the plan says it: "80% of total", "512 MiB".
  // Bytes the plan would hold at its peak (retained: its largest phase; utilization: the
  // memory in use it aims at); none for streaming or when it cannot be resolved.
  std::optional<uint64_t> target_bytes;
  std::string note;  // "more than available", "no cgroup limit", ... ; "" = fits.
};

DryRunNode ResolveOnNode(const v1::PlanSpec& spec, const v1::NodeUsage& usage);

// AGENT NODE TOTAL AVAILABLE TARGET WOULD-HOLD [NOTE] [ERROR], rows as given.
std::string FormatDryRunTable(const std::vector<NodeResult<DryRunNode>>& nodes);
// {"command", "ok", "dryRun": true, "planId", "spec", "nodes": [{"target", "ok", "node",
//  "totalBytes", "availableBytes", "planTarget", "targetBytes"?, "note"} |
//  {"target","ok","error"}], "summary": {"nodes", "ok", "failed"}}
std::string DryRunJson(absl::string_view command, const v1::PlanSpec& spec,
                       const std::vector<NodeResult<DryRunNode>>& nodes);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_DRY_RUN_H_
