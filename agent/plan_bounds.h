// Bounds on everything a client can make the agent store with a plan, so that no client can
// grow the agent's memory, or its GetUsage/ListPlans/WatchUsage answers past gRPC's 4 MiB
// message limit (README "Safety and limits"):
//
//   labels             at most kMaxLabels; keys 1..kMaxLabelKeyBytes, values up to
//                      kMaxLabelValueBytes bytes
//   retained.phases    at most kMaxPhases
//   the whole spec     at most kMaxSpecBytes serialized
//   plans kept         at most kMaxPlansLimit running (--max-plans), ended ones bounded by
//                      PlanManagerOptions::ended_plans_kept{,_bytes}
//
// With these, a ListPlans answer holds at most kMaxPlansLimit × (kMaxSpecBytes + status) plus
// the ended plans' byte budget: under 4 MiB whatever clients send.
//
// Thread-safe (pure functions).
#ifndef MEMLOAD_AGENT_PLAN_BOUNDS_H_
#define MEMLOAD_AGENT_PLAN_BOUNDS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "proto/memload.pb.h"

namespace memload {
namespace agent {

inline constexpr size_t kMaxLabels = 32;
inline constexpr size_t kMaxLabelKeyBytes = 128;
inline constexpr size_t kMaxLabelValueBytes = 256;
inline constexpr int kMaxPhases = 64;
inline constexpr size_t kMaxSpecBytes = 16 * 1024;
inline constexpr size_t kMaxPlansLimit = 128;
// What one ended plan's status may take, at most (its spec plus the status fields).
inline constexpr size_t kMaxStatusBytes = kMaxSpecBytes + 1024;

// InvalidArgument naming the field and the limit when `spec` stores more than the bounds.
absl::Status CheckPlanBounds(const v1::PlanSpec& spec);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_PLAN_BOUNDS_H_
