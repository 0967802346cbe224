// UtilizationPlan: closed-loop "target utilization" — keeps a node's (or a cgroup's) memory
// use at X% by growing and shrinking a retained set as other workloads come and go, and
// reports how closely it holds. This is what autoscaler tests need ("hold every node at 85%
// for ten minutes").
//
//   PlanCounters counters;
//   UtilizationSpec spec;
//   spec.target_percent = 85;
//   spec.duration = absl::Minutes(10);
//   spec.set.block_size = 1 << 20;
//   spec.source = NodeMemoryUse();            // or CgroupMemoryUse("") for our own cgroup
//   MEMLOAD_ASSIGN_OR_RETURN(auto plan, UtilizationPlan::Create(spec, &counters));
//   MEMLOAD_RETURN_IF_ERROR(plan->Start());
//   ... plan->SetTargetPercent(40); ...
//   std::cout << plan->max_deviation_percent();  // worst miss, in percentage points
//
// Control loop, once per `interval`: measure use (U of capacity C), aim for
// D = target × C, and set the payload to payload + (D − U), clamped to [0, ceiling] and
// rounded down to whole blocks. Misses smaller than max(one block, 0.5% of C) are left
// alone, so the plan does not flap on measurement noise. Growth goes in chunks of at most
// 8 MiB with a look at the cancel flag between them. Between measurements the plan sleeps
// (no CPU); SetTarget/SetTargetPercent/SetCeiling wake it for an immediate correction.
//
// State in the counters: kHolding when the last measurement was within that dead band;
// kCapped when the ceiling holds the payload below what the loop wants; kRamping otherwise
// (correcting, or waiting at zero payload for other workloads to shrink below the target).
// target_bytes is D, the desired used bytes, not the payload.
//
// Deviation is measured, not predicted: each measurement is compared with the target
// before it is corrected, so a workload that appears at once shows as one measurement of
// its full size; one that grows over time (as real ones do) shows as what it added within
// one interval.
//
// Thread-safety: as Plan — every public method is thread-safe. The source is called only
// from the plan's thread.
#ifndef MEMLOAD_CORE_UTILIZATION_PLAN_H_
#define MEMLOAD_CORE_UTILIZATION_PLAN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/plan.h"
#include "core/plan_counters.h"
#include "core/retained_set.h"
#include "core/sync/mutex.h"

namespace memload {

// One measurement of memory use, in bytes.
struct MemoryUse {
  uint64_t used_bytes = 0;
  uint64_t capacity_bytes = 0;  // > 0, or the plan fails.
};

// Measures memory use; called on the plan's thread once per interval.
using MemoryUseSource = std::function<absl::StatusOr<MemoryUse>()>;

// The node: used = MemTotal − MemAvailable, capacity = MemTotal (/proc/meminfo).
MemoryUseSource NodeMemoryUse();

// A memory cgroup (v1 or v2; "" = this process's own, see ReadCgroupMemory): used = its
// usage (which includes page cache the kernel can reclaim), capacity = the smallest limit
// of it and its ancestors. Each call fails with FailedPrecondition ("cgroup ... has no
// memory limit") when none is limited.
MemoryUseSource CgroupMemoryUse(std::string cgroup_dir);

struct UtilizationSpec {
  double target_percent = 0;  // Of capacity, in (0, 100).
  // How long to hold; then the plan releases its memory and completes.
  absl::Duration duration = absl::InfiniteDuration();
  absl::Duration interval = absl::Milliseconds(200);  // Measure-and-correct period, >= 10 ms.
  // Block size, touch, backing. touch must make blocks resident (page or fill): untouched
  // memory does not show as use, so the loop would grow without bound. Prefer mmap or
  // shmem backing: malloc may keep freed blocks, so shrinking may not lower the use.
  RetainedSetOptions set;
  MemoryUseSource source;  // Required.
};

// InvalidArgument naming the offending field.
absl::Status ValidateUtilizationSpec(const UtilizationSpec& spec);

class UtilizationPlan final : public Plan {
 public:
  // Its measurement interval, duration and settling run on `clock` (not owned; outlives
  // the plan).
  static absl::StatusOr<std::unique_ptr<UtilizationPlan>> Create(const UtilizationSpec& spec,
                                                                 PlanCounters* counters,
                                                                 Clock* clock = Clock::Real());
  ~UtilizationPlan() override;

  // New target as used bytes (the agent converts quantities); above capacity it aims for
  // capacity. InvalidArgument for 0; FailedPrecondition once the plan has ended.
  absl::Status SetTarget(uint64_t used_bytes) override;
  // New target as a percent of capacity, in (0, 100); errors as SetTarget.
  absl::Status SetTargetPercent(double percent);

  // The payload never exceeds `ceiling_bytes` (rounded down to blocks): a lower ceiling
  // shrinks it at once, and while it keeps the payload below what the loop wants the
  // state is kCapped. UINT64_MAX lifts it.
  void SetCeiling(uint64_t ceiling_bytes) override;

  // Last measured use, percent of capacity (0 before the first measurement).
  double utilization_percent() const;
  // Worst |use − target| in percentage points over measurements taken while settled, and
  // their mean. The plan settles on a target (after Start or a target change) at the first
  // measurement within ±1 point of it, or 2 s after it was set, whichever comes first;
  // until then the figures ignore the transient. 0 before settling.
  double max_deviation_percent() const;
  double mean_abs_deviation_percent() const;
  // When the plan settled on its current target; nullopt while settling.
  std::optional<absl::Time> settled_at() const;

 protected:
  absl::Status Run() override;

 private:
  // The target as given: used bytes, or a percent of whatever the capacity is then.
  struct Target {
    bool in_bytes = false;
    uint64_t bytes = 0;
    double percent = 0;
  };

  UtilizationPlan(const UtilizationSpec& spec, PlanCounters* counters, RetainedSet set,
                  Clock* clock);

  absl::Status Retarget(const Target& target);
  absl::Status Loop();
  // Moves the payload toward `desired` used bytes after measuring `use`. Non-OK only when
  // allocation fails.
  absl::Status Correct(const MemoryUse& use, uint64_t desired);
  void Publish(bool measure_resident);

  const UtilizationSpec spec_;
  RetainedSet set_;  // Touched only by the plan's thread.
  std::atomic<uint64_t> ceiling_bytes_{UINT64_MAX};
  absl::Time last_resident_measure_ = absl::InfinitePast();  // Plan thread only.
  bool resident_stale_ = true;  // Plan thread only: blocks changed since the measurement.

  mutable Mutex mutex_;
  Target target_ ABSL_GUARDED_BY(mutex_);
  uint64_t target_generation_ ABSL_GUARDED_BY(mutex_) = 0;  // bumped by every change.
  double utilization_percent_ ABSL_GUARDED_BY(mutex_) = 0;
  double max_deviation_ ABSL_GUARDED_BY(mutex_) = 0;
  double deviation_sum_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t deviation_count_ ABSL_GUARDED_BY(mutex_) = 0;
  std::optional<absl::Time> settled_at_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace memload

#endif  // MEMLOAD_CORE_UTILIZATION_PLAN_H_
