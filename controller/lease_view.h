// Leases made visible: what `start` prints about each plan's lease, and the warning when a
// plan outlasts a lease that nothing will renew (`start` renews nothing; `run` does).
//
//   std::vector<NodeResult<v1::PlanStatus>> started = ...;
//   std::cout << FormatStartTable(started, /*width=*/0);
//   if (std::string warning = LeaseWarning(spec, started); !warning.empty()) ...
//
// Thread-safety: pure functions, thread-safe.
#ifndef MEMLOAD_CONTROLLER_LEASE_VIEW_H_
#define MEMLOAD_CONTROLLER_LEASE_VIEW_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "controller/output.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

// How long `spec` runs by itself when nothing stops it: the sum of its ramps (by duration;
// a ramp by rate counts as 0, its length unknown here) and holds, times its repeats;
// InfiniteDuration for a hold, repeat or duration "forever" (or none given); nullopt when
// it cannot be told (a streaming plan bounded by an amount only).
std::optional<absl::Duration> PlanRunTime(const v1::PlanSpec& spec);

// The lease an agent gave a plan it answered about: lease_expires - started (both the
// agent's clock); nullopt when either is missing (ended plans carry no expiry).
std::optional<absl::Duration> GrantedLease(const v1::PlanStatus& plan);

// "" or one warning when the plan runs longer than the shortest lease the agents gave it:
// nothing renews a lease after `start`, so each agent will stop the plan
// (LEASE_EXPIRED) when it expires. Names the expiry and suggests `run` or a longer --lease.
std::string LeaseWarning(const v1::PlanSpec& spec,
                         const std::vector<NodeResult<v1::PlanStatus>>& nodes);

// `start`: AGENT PLAN STATE TARGET LEASE EXPIRES [ERROR], fitted to `width` (0: none).
// LEASE is the granted lease ("1m00s"), EXPIRES its UTC time ("15:03:12").
std::string FormatStartTable(const std::vector<NodeResult<v1::PlanStatus>>& nodes, int width);

// `start --output=json`: PlanResultsJson("start", ...) plus "warnings": [...] (always there,
// maybe empty) and, per ok node, "lease" ("60s") beside "plan".
std::string StartJson(const std::vector<NodeResult<v1::PlanStatus>>& nodes,
                      const std::vector<std::string>& warnings);

// `usage`: ended plans worth showing beside the running ones — those in `listed` (a
// ListPlans with include_ended) that have ended no earlier than `since` and are not in
// `usage` already. They are appended to `usage`'s plans, so the plan table shows their
// state (the outcome: lease_expired, oom_killed...) and error.
void AddRecentlyEnded(const v1::ListPlansResponse& listed, absl::Time since, v1::NodeUsage* usage);

// How long `usage` keeps showing an ended plan.
constexpr absl::Duration kRecentlyEnded = absl::Minutes(15);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_LEASE_VIEW_H_
