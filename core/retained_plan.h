// RetainedPlan: retained memory shaped over time — the load shapes users ask for.
//
// A plan is a list of phases, each {target, ramp, hold}, optionally repeated:
//   step        {target 1 GiB, ramp none, hold 60s}
//   linear ramp {target 4 GiB, ramp over 5 min, hold 10 min}
//   slow leak   {target 8 GiB, ramp at 1 MiB/s, hold forever}
//   sawtooth    [{target 2 GiB, ramp over 30s}, {target 0}] × 10
// Ramps work both ways (a lower target frees blocks at the ramp's pace). After the last
// phase of the last repeat the plan frees everything and completes; a hold of
// absl::InfiniteDuration() holds until cancelled or changed.
//
//   PlanCounters counters;
//   RetainedPlanSpec spec;
//   spec.set.block_size = 1 << 20;
//   Phase phase;
//   phase.target_bytes = 512 << 20;
//   phase.ramp_duration = absl::Seconds(10);
//   phase.hold = absl::InfiniteDuration();
//   spec.phases.push_back(phase);
//   MEMLOAD_ASSIGN_OR_RETURN(auto plan, RetainedPlan::Create(spec, &counters));
//   MEMLOAD_RETURN_IF_ERROR(plan->Start());
//   plan->SetTarget(256 << 20);   // shrink in place, at the phase's ramp pace
//
// Targets are rounded down to whole blocks: a plan never holds more than its target.
// A ramp moves in whole blocks on a schedule, sleeping (no CPU) between them; a held plan
// sleeps until its hold ends, a change, or a cancel, waking once a second to re-measure
// its resident bytes (mincore).
//
// Thread-safety: as Plan — every public method is thread-safe.
#ifndef MEMLOAD_CORE_RETAINED_PLAN_H_
#define MEMLOAD_CORE_RETAINED_PLAN_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/plan.h"
#include "core/plan_counters.h"
#include "core/retained_set.h"

namespace memload {

struct Phase {
  uint64_t target_bytes = 0;
  // How to get there: at most one of the two; neither means a step (as fast as possible).
  uint64_t ramp_bytes_per_sec = 0;
  absl::Duration ramp_duration = absl::ZeroDuration();
  // How long to stay once the target is reached (or the plan is capped short of it).
  absl::Duration hold = absl::ZeroDuration();
};

struct RetainedPlanSpec {
  RetainedSetOptions set;     // Block size, touch, backing, huge pages, mlock.
  std::vector<Phase> phases;  // At least one.
  uint64_t repeat = 1;        // Runs of the phase list; 0 = repeat until cancelled.
};

// InvalidArgument naming the offending field (block size 0, no phases, both ramp kinds,
// negative durations, ...).
absl::Status ValidateRetainedPlanSpec(const RetainedPlanSpec& spec);

class RetainedPlan final : public Plan {
 public:
  // Ramps, holds and measurements run on `clock` (not owned; outlives the plan).
  static absl::StatusOr<std::unique_ptr<RetainedPlan>> Create(const RetainedPlanSpec& spec,
                                                              PlanCounters* counters,
                                                              Clock* clock = Clock::Real());
  ~RetainedPlan() override;

  // Replaces the running phase's target (later phases keep theirs). The plan moves there
  // at the phase's ramp pace — a duration ramp keeps the pace it started with — and the
  // phase's hold keeps running.
  absl::Status SetTarget(uint64_t target_bytes) override;

  // Growth stops at `ceiling_bytes` (state kCapped) until the ceiling rises or the target
  // falls below it. UINT64_MAX lifts it. The agent sets this from its reserve.
  void SetCeiling(uint64_t ceiling_bytes) override;

 protected:
  absl::Status Run() override;

 private:
  RetainedPlan(const RetainedPlanSpec& spec, PlanCounters* counters, RetainedSet set, Clock* clock);

  absl::Status RunPhase(const Phase& phase);
  void Publish(bool measure_resident);
  // Whether a ramping plan should re-measure its resident bytes now (plan thread only).
  bool MeasureDue(absl::Time now) const;

  const RetainedPlanSpec spec_;
  RetainedSet set_;  // Touched only by the plan's thread.
  // Set by SetTarget: the new target, and a generation so the plan thread can tell that a
  // change arrived (and rebase its ramp) even when the same value is set twice.
  std::atomic<uint64_t> target_override_{0};
  std::atomic<uint64_t> target_generation_{0};
  std::atomic<uint64_t> ceiling_bytes_{UINT64_MAX};
  absl::Time last_resident_measure_ = absl::InfinitePast();  // Plan thread only.
  absl::Duration last_measure_cost_;                         // Plan thread only.
  bool resident_stale_ = false;  // Plan thread only: blocks changed since the measurement.
};

}  // namespace memload

#endif  // MEMLOAD_CORE_RETAINED_PLAN_H_
