#include "core/retained_plan.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/size.h"

namespace memload {
namespace {

// While ramping, resident bytes are re-measured after every chunk unless measuring is
// expensive (a huge set): then at most every 50× the last measurement's cost, and at
// least this often.
constexpr absl::Duration kRampMeasureInterval = absl::Milliseconds(200);
constexpr int kMeasureCostFactor = 50;
// While holding, once a second (the only reason a held plan wakes up).
constexpr absl::Duration kHoldMeasureInterval = absl::Seconds(1);
// A step grows at most this much between two looks at the cancel flag, so a cancel is
// honoured within a few tens of milliseconds even mid-step (one block is the floor).
constexpr uint64_t kStepChunkBytes = 64ull << 20;

}  // namespace

absl::Status ValidateRetainedPlanSpec(const RetainedPlanSpec& spec) {
  if (spec.set.block_size == 0) {
    return absl::InvalidArgumentError("block_size must be at least 1 byte");
  }
  if (spec.phases.empty()) return absl::InvalidArgumentError("a plan needs at least one phase");
  for (size_t i = 0; i < spec.phases.size(); ++i) {
    const Phase& phase = spec.phases[i];
    const std::string where = absl::StrCat("phases[", i, "]");
    if (phase.ramp_bytes_per_sec > 0 && phase.ramp_duration != absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": give ramp_bytes_per_sec or ramp_duration, not both"));
    }
    if (phase.ramp_duration < absl::ZeroDuration() ||
        phase.ramp_duration == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".ramp_duration must be finite and not negative"));
    }
    if (phase.hold < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".hold must not be negative"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RetainedPlan>> RetainedPlan::Create(const RetainedPlanSpec& spec,
                                                                   PlanCounters* counters,
                                                                   Clock* clock) {
  MEMLOAD_RETURN_IF_ERROR(ValidateRetainedPlanSpec(spec));
  MEMLOAD_ASSIGN_OR_RETURN(RetainedSet set, RetainedSet::Create(spec.set, 0));
  return std::unique_ptr<RetainedPlan>(new RetainedPlan(spec, counters, std::move(set), clock));
}

RetainedPlan::RetainedPlan(const RetainedPlanSpec& spec, PlanCounters* counters, RetainedSet set,
                           Clock* clock)
    : Plan(counters, clock), spec_(spec), set_(std::move(set)) {
  counters->target_bytes.store(spec.phases.front().target_bytes);
}

RetainedPlan::~RetainedPlan() { CancelAndJoin(); }

absl::Status RetainedPlan::SetTarget(uint64_t target_bytes) {
  const PlanState state = counters().Snapshot().state;
  if (IsTerminal(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("plan is ", PlanStateName(state), "; its target can no longer change"));
  }
  target_override_.store(target_bytes, std::memory_order_relaxed);
  target_generation_.fetch_add(1, std::memory_order_release);
  cancel_signal().Notify();
  return absl::OkStatus();
}

void RetainedPlan::SetCeiling(uint64_t ceiling_bytes) {
  if (ceiling_bytes_.exchange(ceiling_bytes) != ceiling_bytes) cancel_signal().Notify();
}

absl::Status RetainedPlan::Run() {
  absl::Status status;
  for (uint64_t cycle = 0; status.ok() && (spec_.repeat == 0 || cycle < spec_.repeat); ++cycle) {
    mutable_counters()->cycle.store(cycle);
    for (size_t i = 0; i < spec_.phases.size() && status.ok(); ++i) {
      mutable_counters()->phase.store(i);
      status = RunPhase(spec_.phases[i]);
      if (cancel_signal().cancelled()) break;
    }
    if (cancel_signal().cancelled()) break;
  }
  // Whatever happened, the memory goes back before the plan reports itself finished.
  set_.Release();
  Publish(/*measure_resident=*/true);
  return status;
}

absl::Status RetainedPlan::RunPhase(const Phase& phase) {
  PlanCounters* counters = mutable_counters();
  const uint64_t block_size = spec_.set.block_size;
  const uint64_t chunk_blocks = std::max<uint64_t>(1, kStepChunkBytes / block_size);
  uint64_t target = phase.target_bytes;
  uint64_t seen_generation = target_generation_.load(std::memory_order_acquire);

  // The ramp: from `start_bytes` at `ramp_start`, moving at `pace` bytes/s (0 = a step).
  uint64_t start_bytes = set_.block_count() * block_size;
  absl::Time ramp_start = clock()->Now();
  double pace = static_cast<double>(phase.ramp_bytes_per_sec);
  if (phase.ramp_duration > absl::ZeroDuration()) {
    const double distance = std::fabs(static_cast<double>(target) - start_bytes);
    pace = distance / absl::ToDoubleSeconds(phase.ramp_duration);
  }
  bool hold_started = false;
  absl::Time hold_end = absl::InfiniteFuture();
  counters->target_bytes.store(target);

  while (!cancel_signal().cancelled()) {
    const uint64_t generation = target_generation_.load(std::memory_order_acquire);
    if (generation != seen_generation) {
      seen_generation = generation;
      target = target_override_.load(std::memory_order_relaxed);
      start_bytes = set_.block_count() * block_size;
      ramp_start = clock()->Now();
      counters->target_bytes.store(target);
    }
    absl::Time now = clock()->Now();
    uint64_t desired_bytes = target;
    if (pace > 0) {
      const double moved = pace * absl::ToDoubleSeconds(now - ramp_start);
      desired_bytes = target >= start_bytes
                          ? static_cast<uint64_t>(std::min<double>(target, start_bytes + moved))
                          : static_cast<uint64_t>(std::max<double>(target, start_bytes - moved));
    }
    const uint64_t target_blocks = target / block_size;
    const uint64_t current = set_.block_count();
    // The ceiling stops growth; it never forces a shrink.
    const uint64_t ceiling_blocks = ceiling_bytes_.load() / block_size;
    const uint64_t desired =
        std::min(desired_bytes / block_size, std::max(current, ceiling_blocks));

    if (desired != current) {
      counters->SetState(PlanState::kRamping);
      if (desired > current) {
        const absl::Status grown = set_.Grow(std::min(desired - current, chunk_blocks));
        if (!grown.ok()) {
          Publish(/*measure_resident=*/true);
          return absl::ResourceExhaustedError(
              absl::StrCat("plan reached ", FormatSize(set_.block_count() * block_size), " of its ",
                           FormatSize(target), " target: ", grown.message()));
        }
      } else {
        set_.ShrinkTo(std::max(desired, current - std::min(current, chunk_blocks)));
      }
      resident_stale_ = true;
      Publish(MeasureDue(now));
      continue;  // Look at the cancel flag and the clock again before the next chunk.
    }

    const bool at_target = current == target_blocks;
    const bool capped = current < target_blocks && current >= ceiling_blocks;
    // Measure before announcing the state, so a reader who sees HOLDING also sees the
    // resident bytes of what is held.
    Publish(resident_stale_ || MeasureDue(now));
    if (at_target || capped) {
      counters->SetState(at_target ? PlanState::kHolding : PlanState::kCapped);
      if (!hold_started) {
        hold_started = true;
        hold_end =
            phase.hold == absl::InfiniteDuration() ? absl::InfiniteFuture() : now + phase.hold;
      }
      if (now >= hold_end) return absl::OkStatus();
    } else {
      counters->SetState(PlanState::kRamping);
    }

    // Sleep until the ramp is due its next block, the hold ends, or the next resident
    // measurement — or until SetTarget/SetCeiling/Cancel wake us.
    absl::Time wake = now + (at_target || capped ? kHoldMeasureInterval : kRampMeasureInterval);
    if (hold_started) wake = std::min(wake, hold_end);
    if (!at_target && !capped && pace > 0) {
      const double boundary =
          target > current * block_size
              ? static_cast<double>((current + 1) * block_size) - start_bytes
              : static_cast<double>(start_bytes) - static_cast<double>(current * block_size) + 1;
      wake = std::min(wake, ramp_start + absl::Seconds(std::max(0.0, boundary) / pace));
    }
    cancel_signal().WaitUntil(wake);
  }
  return absl::OkStatus();
}

bool RetainedPlan::MeasureDue(absl::Time now) const {
  const absl::Duration since = now - last_resident_measure_;
  return since >= kRampMeasureInterval || since >= kMeasureCostFactor * last_measure_cost_;
}

void RetainedPlan::Publish(bool measure_resident) {
  const absl::Time start = clock()->Now();
  PublishRetainedSet(set_, measure_resident, mutable_counters());
  if (measure_resident) {
    last_resident_measure_ = clock()->Now();
    last_measure_cost_ = last_resident_measure_ - start;
    resident_stale_ = false;
  }
}

}  // namespace memload
