#include "controller/lease_view.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/size.h"
#include "proto/plan_rules.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

std::string ClockTime(absl::Time time) {
  return absl::FormatTime("%H:%M:%S", time, absl::UTCTimeZone());
}

bool IsEnded(v1::PlanState state) {
  return state != v1::PLAN_STATE_UNSPECIFIED && !PlanIsRunning(state);
}

}  // namespace

std::optional<absl::Duration> PlanRunTime(const v1::PlanSpec& spec) {
  switch (spec.kind_case()) {
    case v1::PlanSpec::kRetained: {
      const v1::RetainedPlan& plan = spec.retained();
      if (plan.repeat_forever()) return absl::InfiniteDuration();
      absl::Duration once;
      for (const v1::Phase& phase : plan.phases()) {
        if (phase.hold_forever()) return absl::InfiniteDuration();
        once += FromProtoDuration(phase.ramp_duration()) + FromProtoDuration(phase.hold());
      }
      return once * std::max<uint32_t>(plan.repeat(), 1);
    }
    case v1::PlanSpec::kUtilization:
      if (!spec.utilization().has_duration()) return absl::InfiniteDuration();
      return FromProtoDuration(spec.utilization().duration());
    case v1::PlanSpec::kStreaming:
      if (spec.streaming().has_duration()) return FromProtoDuration(spec.streaming().duration());
      if (spec.streaming().amount_bytes() > 0) return std::nullopt;
      return absl::InfiniteDuration();
    case v1::PlanSpec::KIND_NOT_SET:
      break;
  }
  return std::nullopt;
}

std::optional<absl::Duration> GrantedLease(const v1::PlanStatus& plan) {
  if (!plan.has_lease_expires() || !plan.has_started()) return std::nullopt;
  return std::max(absl::ZeroDuration(),
                  FromProtoTimestamp(plan.lease_expires()) - FromProtoTimestamp(plan.started()));
}

std::string LeaseWarning(const v1::PlanSpec& spec,
                         const std::vector<NodeResult<v1::PlanStatus>>& nodes) {
  std::optional<absl::Duration> lease;
  std::optional<absl::Time> expires;
  for (const NodeResult<v1::PlanStatus>& node : nodes) {
    if (!node.value.ok() || !PlanIsRunning(node.value->state())) continue;
    const std::optional<absl::Duration> granted = GrantedLease(*node.value);
    if (!granted) continue;
    lease = lease ? std::min(*lease, *granted) : *granted;
    const absl::Time at = FromProtoTimestamp(node.value->lease_expires());
    expires = expires ? std::min(*expires, at) : at;
  }
  const std::optional<absl::Duration> runs = PlanRunTime(spec);
  if (!lease || !runs || *runs <= *lease) return "";
  const std::string how_long = *runs == absl::InfiniteDuration()
                                   ? "until stopped"
                                   : absl::StrCat("for ", FormatShortDuration(*runs));
  std::string warning = absl::StrCat(
      "warning: plan ", spec.plan_id(), " runs ", how_long, " but its lease is ",
      FormatShortDuration(*lease), " and nothing renews it after start: the agents will stop it (",
      "lease_expired) at ", ClockTime(*expires),
      " UTC. Use `memloadctl run` (it renews the "
      "lease and stops the plan at the end)");
  if (*runs != absl::InfiniteDuration() && *runs + absl::Minutes(1) <= plan_rules::kMaxLease) {
    absl::StrAppend(&warning, ", or --lease=", FormatShortDuration(*runs + absl::Minutes(1)),
                    " or longer");
  } else {
    absl::StrAppend(&warning, ", or a --lease as long as you need it");
  }
  return warning + ".";
}

std::string FormatStartTable(const std::vector<NodeResult<v1::PlanStatus>>& nodes, int width) {
  Table table({{"AGENT", Table::kLeft, false, 12},
               {"STATUS"},
               {"PLAN", Table::kLeft, false, 8},
               {"STATE"},
               {"TARGET", Table::kRight},
               {"LEASE", Table::kRight},
               {"EXPIRES", Table::kRight},
               {"ERROR", Table::kLeft, true, 0, 0, true}});
  for (const NodeResult<v1::PlanStatus>& node : nodes) {
    if (!node.value.ok()) {
      table.AddRow(FailedNodeRow(node.target, node.value.status(), 8));
      continue;
    }
    const v1::PlanStatus& plan = *node.value;
    const std::optional<absl::Duration> lease = GrantedLease(plan);
    table.AddRow({node.target, StatusCell(true), plan.plan_id(), PlanStateName(plan.state()),
                  PlanTarget(plan), lease ? FormatShortDuration(*lease) : "-",
                  plan.has_lease_expires()
                      ? ClockTime(FromProtoTimestamp(plan.lease_expires())) + " UTC"
                      : "-",
                  plan.error()});
  }
  return table.Render(width, /*wrap_spilled=*/true);
}

std::string StartJson(const std::vector<NodeResult<v1::PlanStatus>>& nodes,
                      const std::vector<std::string>& warnings) {
  return PlanResultsJson("start", nodes, {{"warnings", JsonStringArray(warnings)}});
}

void AddRecentlyEnded(const v1::ListPlansResponse& listed, absl::Time since, v1::NodeUsage* usage) {
  std::set<std::string> present;
  for (const v1::PlanStatus& plan : usage->plans()) present.insert(plan.plan_id());
  for (const v1::PlanStatus& plan : listed.plans()) {
    if (!IsEnded(plan.state()) || present.count(plan.plan_id()) > 0) continue;
    if (!plan.has_ended() || FromProtoTimestamp(plan.ended()) < since) continue;
    *usage->add_plans() = plan;
  }
}

}  // namespace controller
}  // namespace memload
