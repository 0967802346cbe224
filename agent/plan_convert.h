// Conversions between the public plan protos (proto/memload.proto) and core's plan specs.
//
// The agent validates a client's plan once, here (the rules are proto/plan_rules.h's, which
// memloadctl shares), with the defaults the .proto documents
// (block_size 0 = 1 MiB, TOUCH_MODE_UNSPECIFIED = page, BACKING_UNSPECIFIED = mmap, repeat
// 0 = once, ...), and the worker converts the same proto again to run it. Every error is
// InvalidArgument naming the proto field path, e.g.
//   retained.phases[1].target: must be resolved to bytes
//
//   MEMLOAD_ASSIGN_OR_RETURN(RetainedPlanSpec spec, ToRetainedPlanSpec(plan.retained()));
//   MEMLOAD_ASSIGN_OR_RETURN(auto retained, RetainedPlan::Create(spec, &counters));
//
// Quantities must already be resolved to bytes (Quantity.bytes): resolving percentages
// needs node knowledge, which is the plan manager's job, not a conversion's.
//
// All functions are pure and thread-safe.
#ifndef MEMLOAD_AGENT_PLAN_CONVERT_H_
#define MEMLOAD_AGENT_PLAN_CONVERT_H_

#include "absl/status/statusor.h"
#include "core/block_allocator.h"
#include "core/plan_counters.h"
#include "core/retained_plan.h"
#include "core/streaming.h"
#include "core/touch.h"
#include "core/utilization_plan.h"
#include "proto/core_enums.h"
#include "proto/memload.pb.h"
#include "proto/plan_rules.h"

namespace memload {
namespace agent {

// Block size used when a plan gives 0 (retained and utilization plans).
inline constexpr uint64_t kDefaultBlockSize = plan_rules::kDefaultBlockSize;
// Utilization plans' measure-and-correct period when `interval` is unset.
inline constexpr absl::Duration kDefaultUtilizationInterval =
    plan_rules::kDefaultUtilizationInterval;

// A retained plan with resolved targets → core spec. hold_forever → InfiniteDuration;
// repeat_forever → repeat 0 (core's "until cancelled"); repeat 0 → 1. Errors: no phases,
// an unresolved target, both ramp kinds, negative or out-of-range durations, hold and
// hold_forever both set, repeat and repeat_forever both set, unknown enum values.
absl::StatusOr<RetainedPlanSpec> ToRetainedPlanSpec(const v1::RetainedPlan& plan);

// A streaming plan → core options. workers 0 → 1. Errors: block_size 0, workers > 64,
// amount_bytes not a multiple of block_size, window × block_size overflowing, a negative
// or out-of-range duration, unknown enum values.
absl::StatusOr<StreamOptions> ToStreamOptions(const v1::StreamingPlan& plan);

// A utilization plan → core spec measuring with `source` (which may be empty when the
// caller only validates). Unset duration → InfiniteDuration; unset interval → 200 ms.
// Errors: target_percent outside (0, 100), a duration that is zero, negative or out of
// range, an interval under 10 ms, touch NONE (untouched memory never shows as use),
// unknown enum values. The reference is not read here: the caller picks `source` from it.
absl::StatusOr<UtilizationSpec> ToUtilizationSpec(const v1::UtilizationPlan& plan,
                                                  MemoryUseSource source);

// The enum mappings (FromProto/ToProto of TouchMode and Backing) are proto/core_enums.h's.
using ::memload::FromProto;
using ::memload::ToProto;

// The state a plan reports while its worker runs. kCancelled → STOPPED: the agent turns
// that into LEASE_EXPIRED itself when it was the lease that stopped the plan.
v1::PlanState ToProtoState(PlanState state);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_PLAN_CONVERT_H_
