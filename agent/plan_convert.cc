#include "agent/plan_convert.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/size.h"
#include "core/status_macros.h"

namespace memload {
namespace agent {
namespace {

// google.protobuf.Duration's documented range: ±10,000 years.
constexpr int64_t kMaxDurationSeconds = 315576000000;
constexpr uint32_t kMaxStreamWorkers = 64;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// A well-formed, non-negative proto Duration → absl. Malformed ones (out of range, nanos
// of the wrong sign) would otherwise turn into surprising absl values.
absl::StatusOr<absl::Duration> ToDuration(const google::protobuf::Duration& duration,
                                          absl::string_view field) {
  const int64_t seconds = duration.seconds();
  const int32_t nanos = duration.nanos();
  if (seconds < -kMaxDurationSeconds || seconds > kMaxDurationSeconds ||
      nanos <= -1000000000 || nanos >= 1000000000 || (seconds > 0 && nanos < 0) ||
      (seconds < 0 && nanos > 0)) {
    return Invalid(field, absl::StrCat("not a valid duration (seconds ", seconds, ", nanos ",
                                       nanos, ")"));
  }
  const absl::Duration result = absl::Seconds(seconds) + absl::Nanoseconds(nanos);
  if (result < absl::ZeroDuration()) {
    return Invalid(field, absl::StrCat("must not be negative, got ",
                                       absl::FormatDuration(result)));
  }
  return result;
}

absl::Status CheckTouch(v1::TouchMode mode, absl::string_view field) {
  if (!v1::TouchMode_IsValid(mode)) return Invalid(field, absl::StrCat("unknown value ", mode));
  return absl::OkStatus();
}

absl::Status CheckBacking(v1::Backing backing, absl::string_view field) {
  if (!v1::Backing_IsValid(backing)) {
    return Invalid(field, absl::StrCat("unknown value ", backing));
  }
  return absl::OkStatus();
}

// Core validators name their own fields without the proto prefix; anything they catch that
// the checks here missed still gets the plan kind in front.
absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, ": ", status.message()));
}

}  // namespace

absl::StatusOr<RetainedPlanSpec> ToRetainedPlanSpec(const v1::RetainedPlan& plan) {
  RetainedPlanSpec spec;
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "retained.touch"));
  MEMLOAD_RETURN_IF_ERROR(CheckBacking(plan.backing(), "retained.backing"));
  spec.set.block_size = plan.block_size() == 0 ? kDefaultBlockSize : plan.block_size();
  spec.set.touch = FromProto(plan.touch());
  spec.set.backing = FromProto(plan.backing());
  spec.set.huge_pages = plan.huge_pages();
  spec.set.mlock = plan.mlock();

  if (plan.phases_size() == 0) return Invalid("retained.phases", "at least one phase is required");
  for (int i = 0; i < plan.phases_size(); ++i) {
    const v1::Phase& in = plan.phases(i);
    const std::string where = absl::StrCat("retained.phases[", i, "]");
    if (in.target().value_case() != v1::Quantity::kBytes) {
      return Invalid(absl::StrCat(where, ".target"), "must be resolved to bytes");
    }
    Phase phase;
    phase.target_bytes = in.target().bytes();
    phase.ramp_bytes_per_sec = in.ramp_bytes_per_sec();
    if (in.has_ramp_duration()) {
      MEMLOAD_ASSIGN_OR_RETURN(phase.ramp_duration,
                               ToDuration(in.ramp_duration(), absl::StrCat(where, ".ramp_duration")));
    }
    if (phase.ramp_bytes_per_sec > 0 && phase.ramp_duration > absl::ZeroDuration()) {
      return Invalid(where, "give ramp_bytes_per_sec or ramp_duration, not both");
    }
    if (in.has_hold()) {
      MEMLOAD_ASSIGN_OR_RETURN(phase.hold, ToDuration(in.hold(), absl::StrCat(where, ".hold")));
    }
    if (in.hold_forever()) {
      if (phase.hold > absl::ZeroDuration()) {
        return Invalid(where, "give hold or hold_forever, not both");
      }
      phase.hold = absl::InfiniteDuration();
    }
    spec.phases.push_back(phase);
  }

  if (plan.repeat_forever()) {
    if (plan.repeat() > 0) return Invalid("retained", "give repeat or repeat_forever, not both");
    spec.repeat = 0;  // Core's "until cancelled".
  } else {
    spec.repeat = plan.repeat() == 0 ? 1 : plan.repeat();
  }
  MEMLOAD_RETURN_IF_ERROR(Prefixed("retained", ValidateRetainedPlanSpec(spec)));
  return spec;
}

absl::StatusOr<StreamOptions> ToStreamOptions(const v1::StreamingPlan& plan) {
  StreamOptions options;
  if (plan.block_size() == 0) return Invalid("streaming.block_size", "required (> 0)");
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "streaming.touch"));
  options.block_size = plan.block_size();
  options.touch = FromProto(plan.touch());
  options.return_to_os = plan.return_to_os();
  options.window = plan.window();
  options.rate_bytes_per_sec = plan.rate_bytes_per_sec();
  options.workers = plan.workers() == 0 ? 1 : plan.workers();
  if (options.workers > kMaxStreamWorkers) {
    return Invalid("streaming.workers",
                   absl::StrCat("must be 1..", kMaxStreamWorkers, ", got ", plan.workers()));
  }
  if (!MultiplySizes(options.window, options.block_size).ok() ||
      options.window > SIZE_MAX / sizeof(void*)) {
    return Invalid("streaming.window",
                   absl::StrCat(options.window, " blocks of ", options.block_size,
                                " bytes is more than this machine can address"));
  }
  options.amount_bytes = plan.amount_bytes();
  if (options.amount_bytes % options.block_size != 0) {
    return Invalid("streaming.amount_bytes",
                   absl::StrCat("must be a multiple of block_size (", options.block_size,
                                "), got ", options.amount_bytes));
  }
  if (plan.has_duration()) {
    MEMLOAD_ASSIGN_OR_RETURN(options.duration, ToDuration(plan.duration(), "streaming.duration"));
  }
  MEMLOAD_RETURN_IF_ERROR(Prefixed("streaming", ValidateStreamOptions(options)));
  return options;
}

absl::StatusOr<UtilizationSpec> ToUtilizationSpec(const v1::UtilizationPlan& plan,
                                                  MemoryUseSource source) {
  UtilizationSpec spec;
  const double percent = plan.target_percent();
  if (!(percent > 0 && percent < 100)) {  // Written so that NaN fails too.
    return Invalid("utilization.target_percent",
                   absl::StrCat("must be in (0, 100), got ", percent));
  }
  spec.target_percent = percent;
  if (!v1::UtilizationPlan::Reference_IsValid(plan.reference())) {
    return Invalid("utilization.reference", absl::StrCat("unknown value ", plan.reference()));
  }
  if (plan.has_duration()) {
    MEMLOAD_ASSIGN_OR_RETURN(spec.duration, ToDuration(plan.duration(), "utilization.duration"));
    if (spec.duration == absl::ZeroDuration()) {
      return Invalid("utilization.duration", "must be positive (unset = until stopped)");
    }
  }
  spec.interval = kDefaultUtilizationInterval;
  if (plan.has_interval()) {
    MEMLOAD_ASSIGN_OR_RETURN(spec.interval, ToDuration(plan.interval(), "utilization.interval"));
    if (spec.interval < absl::Milliseconds(10)) {
      return Invalid("utilization.interval",
                     absl::StrCat("must be at least 10ms, got ", absl::FormatDuration(spec.interval)));
    }
  }
  MEMLOAD_RETURN_IF_ERROR(CheckTouch(plan.touch(), "utilization.touch"));
  MEMLOAD_RETURN_IF_ERROR(CheckBacking(plan.backing(), "utilization.backing"));
  spec.set.block_size = plan.block_size() == 0 ? kDefaultBlockSize : plan.block_size();
  spec.set.touch = FromProto(plan.touch());
  spec.set.backing = FromProto(plan.backing());
  if (spec.set.touch == TouchMode::kNone) {
    return Invalid("utilization.touch",
                   "must be page or fill: untouched memory never shows as use, so the plan "
                   "would grow without bound");
  }

  // Core insists on a source; a caller that only validates passes none, so validate with a
  // stand-in and hand back the caller's.
  spec.source = source ? source : MemoryUseSource([]() -> absl::StatusOr<MemoryUse> {
    return absl::UnimplementedError("no source");
  });
  MEMLOAD_RETURN_IF_ERROR(Prefixed("utilization", ValidateUtilizationSpec(spec)));
  spec.source = std::move(source);
  return spec;
}

TouchMode FromProto(v1::TouchMode mode) {
  switch (mode) {
    case v1::TOUCH_MODE_NONE:
      return TouchMode::kNone;
    case v1::TOUCH_MODE_FILL:
      return TouchMode::kFill;
    default:
      return TouchMode::kPage;
  }
}

Backing FromProto(v1::Backing backing) {
  switch (backing) {
    case v1::BACKING_MALLOC:
      return Backing::kMalloc;
    case v1::BACKING_SHMEM:
      return Backing::kShmem;
    default:
      return Backing::kMmap;
  }
}

v1::TouchMode ToProto(TouchMode mode) {
  switch (mode) {
    case TouchMode::kNone:
      return v1::TOUCH_MODE_NONE;
    case TouchMode::kPage:
      return v1::TOUCH_MODE_PAGE;
    case TouchMode::kFill:
      return v1::TOUCH_MODE_FILL;
  }
  return v1::TOUCH_MODE_UNSPECIFIED;
}

v1::Backing ToProto(Backing backing) {
  switch (backing) {
    case Backing::kMalloc:
      return v1::BACKING_MALLOC;
    case Backing::kMmap:
      return v1::BACKING_MMAP;
    case Backing::kShmem:
      return v1::BACKING_SHMEM;
  }
  return v1::BACKING_UNSPECIFIED;
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
