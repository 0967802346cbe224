#include "agent/plan_convert.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/status_macros.h"
#include "proto/plan_rules.h"
#include "proto/proto_time.h"

namespace memload {
namespace agent {
namespace {

using plan_rules::FieldError;

// Core validators name their own fields without the proto prefix; anything they catch that
// the checks here missed still gets the plan kind in front.
absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, ": ", status.message()));
}

}  // namespace

absl::StatusOr<RetainedPlanSpec> ToRetainedPlanSpec(const v1::RetainedPlan& plan) {
  MEMLOAD_RETURN_IF_ERROR(plan_rules::CheckRetainedPlan(plan));
  RetainedPlanSpec spec;
  spec.set.block_size = plan.block_size() == 0 ? kDefaultBlockSize : plan.block_size();
  spec.set.touch = FromProto(plan.touch());
  spec.set.backing = FromProto(plan.backing());
  spec.set.huge_pages = plan.huge_pages();
  spec.set.mlock = plan.mlock();

  for (int i = 0; i < plan.phases_size(); ++i) {
    const v1::Phase& in = plan.phases(i);
    if (in.target().value_case() != v1::Quantity::kBytes) {
      return FieldError(absl::StrCat("retained.phases[", i, "].target"),
                        "must be resolved to bytes");
    }
    Phase phase;
    phase.target_bytes = in.target().bytes();
    phase.ramp_bytes_per_sec = in.ramp_bytes_per_sec();
    if (in.has_ramp_duration()) phase.ramp_duration = FromProtoDuration(in.ramp_duration());
    if (in.has_hold()) phase.hold = FromProtoDuration(in.hold());
    if (in.hold_forever()) phase.hold = absl::InfiniteDuration();
    spec.phases.push_back(phase);
  }

  if (plan.repeat_forever()) {
    spec.repeat = 0;  // Core's "until cancelled".
  } else {
    spec.repeat = plan.repeat() == 0 ? 1 : plan.repeat();
  }
  MEMLOAD_RETURN_IF_ERROR(Prefixed("retained", ValidateRetainedPlanSpec(spec)));
  return spec;
}

absl::StatusOr<StreamOptions> ToStreamOptions(const v1::StreamingPlan& plan) {
  MEMLOAD_RETURN_IF_ERROR(plan_rules::CheckStreamingPlan(plan));
  StreamOptions options;
  options.block_size = plan.block_size();
  options.touch = FromProto(plan.touch());
  options.return_to_os = plan.return_to_os();
  options.window = plan.window();
  options.rate_bytes_per_sec = plan.rate_bytes_per_sec();
  options.workers = plan.workers() == 0 ? 1 : plan.workers();
  options.amount_bytes = plan.amount_bytes();
  if (plan.has_duration()) options.duration = FromProtoDuration(plan.duration());
  MEMLOAD_RETURN_IF_ERROR(Prefixed("streaming", ValidateStreamOptions(options)));
  return options;
}

absl::StatusOr<UtilizationSpec> ToUtilizationSpec(const v1::UtilizationPlan& plan,
                                                  MemoryUseSource source) {
  MEMLOAD_RETURN_IF_ERROR(plan_rules::CheckUtilizationPlan(plan));
  UtilizationSpec spec;
  spec.target_percent = plan.target_percent();
  if (plan.has_duration()) spec.duration = FromProtoDuration(plan.duration());
  spec.interval =
      plan.has_interval() ? FromProtoDuration(plan.interval()) : kDefaultUtilizationInterval;
  spec.set.block_size = plan.block_size() == 0 ? kDefaultBlockSize : plan.block_size();
  spec.set.touch = FromProto(plan.touch());
  spec.set.backing = FromProto(plan.backing());

  // Core insists on a source; a caller that only validates passes none, so validate with a
  // stand-in and hand back the caller's.
  spec.source = source ? source : MemoryUseSource([]() -> absl::StatusOr<MemoryUse> {
    return absl::UnimplementedError("no source");
  });
  MEMLOAD_RETURN_IF_ERROR(Prefixed("utilization", ValidateUtilizationSpec(spec)));
  spec.source = std::move(source);
  return spec;
}

v1::PlanState ToProtoState(PlanState state) {
  switch (state) {
    case PlanState::kPending:
      return v1::PLAN_STATE_PENDING;
    case PlanState::kRamping:
      return v1::PLAN_STATE_RAMPING;
    case PlanState::kHolding:
      return v1::PLAN_STATE_HOLDING;
    case PlanState::kStreaming:
      return v1::PLAN_STATE_STREAMING;
    case PlanState::kCapped:
      return v1::PLAN_STATE_CAPPED;
    case PlanState::kCompleted:
      return v1::PLAN_STATE_COMPLETED;
    case PlanState::kCancelled:
      return v1::PLAN_STATE_STOPPED;
    case PlanState::kFailed:
      return v1::PLAN_STATE_FAILED;
  }
  return v1::PLAN_STATE_UNSPECIFIED;
}

}  // namespace agent
}  // namespace memload
