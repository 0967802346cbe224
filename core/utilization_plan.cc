#include "core/utilization_plan.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/node_readers.h"
#include "core/size.h"
#include "core/touch.h"

namespace memload {
namespace {

// Growth between two looks at the cancel flag: touching 8 MiB takes a few ms (tens under
// TSan), so a cancel mid-growth is honoured well within 100 ms (one block is the floor).
constexpr uint64_t kGrowChunkBytes = 8ull << 20;
// The dead band is max(one block, capacity / 200): 0.5% of capacity.
constexpr uint64_t kDeadBandDivisor = 200;
// Settling: within this many points of the target, or this long after it was set.
constexpr double kSettleBandPercent = 1.0;
constexpr absl::Duration kSettleTime = absl::Seconds(2);
// Resident bytes (mincore) are re-measured at most this often while growing, and this
// often while nothing changes.
constexpr absl::Duration kGrowMeasureInterval = absl::Milliseconds(200);
constexpr absl::Duration kIdleMeasureInterval = absl::Seconds(1);

absl::Status ValidatePercent(double percent, absl::string_view field) {
  // Written so that NaN fails too.
  if (!(percent > 0 && percent < 100)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be in (0, 100), got ", percent));
  }
  return absl::OkStatus();
}

}  // namespace

MemoryUseSource NodeMemoryUse() {
  return []() -> absl::StatusOr<MemoryUse> {
    MEMLOAD_ASSIGN_OR_RETURN(const Meminfo info, ReadMeminfo());
    MemoryUse use;
    use.capacity_bytes = info.total_bytes;
    use.used_bytes = info.total_bytes - std::min(info.total_bytes, info.available_bytes);
    return use;
  };
}

MemoryUseSource CgroupMemoryUse(std::string cgroup_dir) {
  return [dir = std::move(cgroup_dir)]() -> absl::StatusOr<MemoryUse> {
    MEMLOAD_ASSIGN_OR_RETURN(const CgroupMemory cgroup, ReadCgroupMemory(dir));
    if (!cgroup.hierarchical_limit_bytes.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cgroup ", cgroup.path, " has no memory limit: there is no capacity to hold a share of"));
    }
    MemoryUse use;
    use.used_bytes = cgroup.usage_bytes;
    use.capacity_bytes = *cgroup.hierarchical_limit_bytes;
    return use;
  };
}

absl::Status ValidateUtilizationSpec(const UtilizationSpec& spec) {
  MEMLOAD_RETURN_IF_ERROR(ValidatePercent(spec.target_percent, "target_percent"));
  if (spec.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must be positive (or infinite)");
  }
  if (spec.interval < absl::Milliseconds(10) || spec.interval == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("interval must be finite and at least 10ms");
  }
  if (spec.set.block_size == 0) {
    return absl::InvalidArgumentError("set.block_size must be at least 1 byte");
  }
  if (spec.set.touch == TouchMode::kNone) {
    return absl::InvalidArgumentError(
        "set.touch must be page or fill: untouched memory does not show as use, so the "
        "loop would grow without bound");
  }
  if (!spec.source) return absl::InvalidArgumentError("source is required");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<UtilizationPlan>> UtilizationPlan::Create(
    const UtilizationSpec& spec, PlanCounters* counters, Clock* clock) {
  MEMLOAD_RETURN_IF_ERROR(ValidateUtilizationSpec(spec));
  MEMLOAD_ASSIGN_OR_RETURN(RetainedSet set, RetainedSet::Create(spec.set, 0));
  return std::unique_ptr<UtilizationPlan>(
      new UtilizationPlan(spec, counters, std::move(set), clock));
}

UtilizationPlan::UtilizationPlan(const UtilizationSpec& spec, PlanCounters* counters,
                                 RetainedSet set, Clock* clock)
    : Plan(counters, clock), spec_(spec), set_(std::move(set)) {
  target_.percent = spec.target_percent;
}

UtilizationPlan::~UtilizationPlan() { CancelAndJoin(); }

absl::Status UtilizationPlan::SetTarget(uint64_t used_bytes) {
  if (used_bytes == 0) return absl::InvalidArgumentError("target must be above 0 bytes");
  Target target;
  target.in_bytes = true;
  target.bytes = used_bytes;
  return Retarget(target);
}

absl::Status UtilizationPlan::SetTargetPercent(double percent) {
  MEMLOAD_RETURN_IF_ERROR(ValidatePercent(percent, "target percent"));
  Target target;
  target.percent = percent;
  return Retarget(target);
}

absl::Status UtilizationPlan::Retarget(const Target& target) {
  const PlanState state = counters().Snapshot().state;
  if (IsTerminal(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("plan is ", PlanStateName(state), "; its target can no longer change"));
  }
  {
    MutexLock lock(&mutex_);
    target_ = target;
    ++target_generation_;
  }
  cancel_signal().Notify();  // Correct now rather than at the next interval.
  return absl::OkStatus();
}

void UtilizationPlan::SetCeiling(uint64_t ceiling_bytes) {
  if (ceiling_bytes_.exchange(ceiling_bytes) != ceiling_bytes) cancel_signal().Notify();
}

double UtilizationPlan::utilization_percent() const {
  MutexLock lock(&mutex_);
  return utilization_percent_;
}

double UtilizationPlan::max_deviation_percent() const {
  MutexLock lock(&mutex_);
  return max_deviation_;
}

double UtilizationPlan::mean_abs_deviation_percent() const {
  MutexLock lock(&mutex_);
  return deviation_count_ == 0 ? 0 : deviation_sum_ / deviation_count_;
}

std::optional<absl::Time> UtilizationPlan::settled_at() const {
  MutexLock lock(&mutex_);
  return settled_at_;
}

absl::Status UtilizationPlan::Run() {
  const absl::Status status = Loop();
  // Whatever happened, the memory goes back before the plan reports itself finished.
  set_.Release();
  Publish(/*measure_resident=*/true);
  return status;
}

absl::Status UtilizationPlan::Loop() {
  const absl::Time start = clock()->Now();
  const absl::Time end =
      spec_.duration == absl::InfiniteDuration() ? absl::InfiniteFuture() : start + spec_.duration;
  uint64_t seen_generation = 0;
  absl::Time settle_deadline = start + kSettleTime;

  while (!cancel_signal().cancelled()) {
    const absl::Time now = clock()->Now();
    if (now >= end) return absl::OkStatus();
    absl::StatusOr<MemoryUse> use = spec_.source();
    if (!use.ok()) {
      return absl::Status(use.status().code(),
                          absl::StrCat("measuring memory use: ", use.status().message()));
    }
    if (use->capacity_bytes == 0) {
      return absl::FailedPreconditionError("memory use source reports a capacity of 0 bytes");
    }
    const double capacity = static_cast<double>(use->capacity_bytes);

    uint64_t desired;
    {
      MutexLock lock(&mutex_);
      if (target_generation_ != seen_generation) {
        seen_generation = target_generation_;
        settle_deadline = now + kSettleTime;
        settled_at_.reset();
      }
      desired = target_.in_bytes ? target_.bytes
                                 : static_cast<uint64_t>(target_.percent / 100 * capacity);
      desired = std::min(desired, use->capacity_bytes);

      utilization_percent_ = 100 * static_cast<double>(use->used_bytes) / capacity;
      const double deviation = std::fabs(utilization_percent_ - 100 * desired / capacity);
      if (!settled_at_.has_value() && (deviation <= kSettleBandPercent || now >= settle_deadline)) {
        settled_at_ = now;
      }
      if (settled_at_.has_value()) {
        max_deviation_ = std::max(max_deviation_, deviation);
        deviation_sum_ += deviation;
        ++deviation_count_;
      }
    }

    MEMLOAD_RETURN_IF_ERROR(Correct(*use, desired));
    // Sleeps until the next measurement; SetTarget/SetCeiling/Cancel wake it early.
    cancel_signal().WaitUntil(std::min(now + spec_.interval, end));
  }
  return absl::OkStatus();
}

absl::Status UtilizationPlan::Correct(const MemoryUse& use, uint64_t desired) {
  PlanCounters* counters = mutable_counters();
  const uint64_t block_size = spec_.set.block_size;
  const uint64_t current = set_.block_count();
  const uint64_t payload = current * block_size;
  const uint64_t used = use.used_bytes;
  const uint64_t miss = desired > used ? desired - used : used - desired;
  const bool within = miss < std::max(block_size, use.capacity_bytes / kDeadBandDivisor);

  uint64_t wanted = current;  // Blocks.
  if (!within) {
    const uint64_t wanted_bytes = desired > used ? payload + std::min(miss, UINT64_MAX - payload)
                                                 : payload - std::min(payload, miss);
    wanted = wanted_bytes / block_size;
  }
  const uint64_t ceiling = ceiling_bytes_.load() / block_size;
  const uint64_t next = std::min(wanted, ceiling);
  counters->target_bytes.store(desired);

  // Announced before the payload moves, so no reader sees the new payload under the old
  // HOLDING.
  if (next != current) counters->SetState(PlanState::kRamping);
  if (next > current) {
    const uint64_t chunk = std::max<uint64_t>(1, kGrowChunkBytes / block_size);
    while (set_.block_count() < next) {
      if (cancel_signal().cancelled()) return absl::OkStatus();
      const absl::Status grown = set_.Grow(std::min(next - set_.block_count(), chunk));
      resident_stale_ = true;
      if (!grown.ok()) {
        Publish(/*measure_resident=*/true);
        return absl::ResourceExhaustedError(absl::StrCat(
            "utilization plan reached ", FormatSize(set_.block_count() * block_size), " of the ",
            FormatSize(next * block_size), " payload it wanted (to bring use to ",
            FormatSize(desired), " of ", FormatSize(use.capacity_bytes), "): ", grown.message()));
      }
      Publish(clock()->Now() - last_resident_measure_ >= kGrowMeasureInterval);
    }
  } else if (next < current) {
    set_.ShrinkTo(next);
    resident_stale_ = true;
  }
  // Measure before announcing the state, so a reader who sees HOLDING also sees the
  // resident bytes of what is held.
  Publish(resident_stale_ || clock()->Now() - last_resident_measure_ >= kIdleMeasureInterval);
  counters->SetState(wanted > ceiling ? PlanState::kCapped
                     : within         ? PlanState::kHolding
                                      : PlanState::kRamping);
  return absl::OkStatus();
}

void UtilizationPlan::Publish(bool measure_resident) {
  PublishRetainedSet(set_, measure_resident, mutable_counters());
  if (measure_resident) {
    last_resident_measure_ = clock()->Now();
    resident_stale_ = false;
  }
}

}  // namespace memload
