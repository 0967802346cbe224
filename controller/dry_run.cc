#include "controller/dry_run.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/size.h"

namespace memload {
namespace controller {
namespace {

std::optional<uint64_t> Resolve(const v1::Quantity& quantity, const DryRunNode& node,
                                const v1::NodeUsage& usage, std::string* note) {
  absl::StatusOr<uint64_t> bytes = absl::InvalidArgumentError("no target");
  switch (quantity.value_case()) {
    case v1::Quantity::kBytes:
      return quantity.bytes();
    case v1::Quantity::kPercentOfTotal:
      bytes = PercentOf(quantity.percent_of_total(), node.total_bytes);
      break;
    case v1::Quantity::kPercentOfAvailable:
      bytes = PercentOf(quantity.percent_of_available(), node.available_bytes);
      break;
    case v1::Quantity::kPercentOfCgroupLimit:
      if (!usage.cgroup().limited()) {
        *note = "no cgroup limit";
        return std::nullopt;
      }
      bytes = PercentOf(quantity.percent_of_cgroup_limit(), usage.cgroup().limit_bytes());
      break;
    default:
      break;
  }
  if (!bytes.ok()) {
    *note = std::string(bytes.status().message());
    return std::nullopt;
  }
  return *bytes;
}

}  // namespace

DryRunNode ResolveOnNode(const v1::PlanSpec& spec, const v1::NodeUsage& usage) {
  DryRunNode node;
  node.node_name = usage.node().node_name();
  node.total_bytes = usage.meminfo().total_bytes();
  node.available_bytes = usage.meminfo().available_bytes();
  if (usage.cgroup().limited()) {
    const uint64_t limit = usage.cgroup().limit_bytes();
    const uint64_t used = usage.cgroup().usage_bytes();
    node.total_bytes = std::min(node.total_bytes, limit);
    node.available_bytes = std::min(node.available_bytes, limit > used ? limit - used : 0);
  }
  switch (spec.kind_case()) {
    case v1::PlanSpec::kRetained: {
      std::vector<std::string> targets;
      for (const v1::Phase& phase : spec.retained().phases()) {
        targets.push_back(FormatQuantity(phase.target()));
        std::optional<uint64_t> bytes = Resolve(phase.target(), node, usage, &node.note);
        if (!bytes.has_value()) {
          node.target_bytes.reset();
          break;
        }
        node.target_bytes = std::max(node.target_bytes.value_or(0), *bytes);
      }
      node.target = absl::StrJoin(targets, " → ");
      if (node.target_bytes.has_value() && *node.target_bytes > node.available_bytes) {
        node.note = "more than available: the agent refuses it or caps the ramp";
      }
      break;
    }
    case v1::PlanSpec::kUtilization: {
      const v1::UtilizationPlan& plan = spec.utilization();
      const bool cgroup = plan.reference() == v1::UtilizationPlan::REFERENCE_CGROUP ||
                          (plan.reference() == v1::UtilizationPlan::REFERENCE_UNSPECIFIED &&
                           usage.cgroup().limited());
      node.target =
          absl::StrCat(plan.target_percent(), "% in use of ", cgroup ? "cgroup limit" : "node");
      const uint64_t whole = cgroup ? usage.cgroup().limit_bytes() : usage.meminfo().total_bytes();
      if (cgroup && !usage.cgroup().limited()) {
        node.note = "no cgroup limit";
        break;
      }
      absl::StatusOr<uint64_t> bytes = PercentOf(plan.target_percent(), whole);
      if (bytes.ok()) {
        node.target_bytes = *bytes;
      } else {
        node.note = std::string(bytes.status().message());
      }
      break;
    }
    case v1::PlanSpec::kStreaming:
      node.target = "streaming (no target)";
      break;
    default:
      node.note = "no plan kind";
      break;
  }
  return node;
}

std::string FormatDryRunTable(const std::vector<NodeResult<DryRunNode>>& nodes) {
  Table table({{"AGENT"},
               {"NODE"},
               {"STATUS"},
               {"TOTAL", Table::kRight},
               {"AVAILABLE", Table::kRight},
               {"TARGET"},
               {"WOULD-HOLD", Table::kRight},
               {"NOTE", Table::kLeft, true},
               {"ERROR", Table::kLeft, true}});
  for (const NodeResult<DryRunNode>& node : nodes) {
    if (!node.value.ok()) {
      table.AddRow({node.target, "-", StatusCell(false), "-", "-", "-", "-", "",
                    FormatStatus(node.value.status())});
      continue;
    }
    const DryRunNode& n = *node.value;
    table.AddRow({node.target, n.node_name.empty() ? "-" : n.node_name, StatusCell(true),
                  FormatSize(n.total_bytes), FormatSize(n.available_bytes), n.target,
                  n.target_bytes.has_value() ? FormatSize(*n.target_bytes) : "-", n.note});
  }
  return table.Render();
}

std::string DryRunJson(absl::string_view command, const v1::PlanSpec& spec,
                       const std::vector<NodeResult<DryRunNode>>& nodes) {
  std::vector<std::string> lines;
  int ok = 0;
  for (const NodeResult<DryRunNode>& node : nodes) {
    if (!node.value.ok()) {
      lines.push_back(
          absl::StrCat("{\"target\":", JsonQuote(node.target), ",\"ok\":false,\"error\":{\"code\":",
                       JsonQuote(absl::StatusCodeToString(node.value.status().code())),
                       ",\"message\":", JsonQuote(node.value.status().message()), "}}"));
      continue;
    }
    ++ok;
    const DryRunNode& n = *node.value;
    std::string line = absl::StrCat("{\"target\":", JsonQuote(node.target),
                                    ",\"ok\":true,\"node\":", JsonQuote(n.node_name),
                                    ",\"totalBytes\":\"", n.total_bytes, "\",\"availableBytes\":\"",
                                    n.available_bytes, "\",\"planTarget\":", JsonQuote(n.target));
    if (n.target_bytes.has_value())
      absl::StrAppend(&line, ",\"targetBytes\":\"", *n.target_bytes, "\"");
    absl::StrAppend(&line, ",\"note\":", JsonQuote(n.note), "}");
    lines.push_back(std::move(line));
  }
  const int failed = static_cast<int>(nodes.size()) - ok;
  return absl::StrCat("{\n  \"command\": ", JsonQuote(command),
                      ",\n  \"ok\": ", failed == 0 ? "true" : "false",
                      ",\n  \"dryRun\": true,\n  \"planId\": ", JsonQuote(spec.plan_id()),
                      ",\n  \"spec\": ", ProtoToJson(spec), ",\n  \"nodes\": [",
                      lines.empty() ? "" : "\n    ", absl::StrJoin(lines, ",\n    "),
                      lines.empty() ? "]" : "\n  ]", ",\n  \"summary\": {\"nodes\":", nodes.size(),
                      ",\"ok\":", ok, ",\"failed\":", failed, "}\n}\n");
}

}  // namespace controller
}  // namespace memload
