// Plan: a load that runs over time on a thread of its own — RetainedPlan (phases of
// retained memory) or StreamingPlan (allocation churn). This base owns the thread, the
// cancel signal and the final status; subclasses implement Run().
//
//   PlanCounters counters;
//   MEMLOAD_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, RetainedPlan::Create(spec, &counters));
//   MEMLOAD_RETURN_IF_ERROR(plan->Start());
//   ... counters.Snapshot() from any thread ...
//   plan->Cancel();                  // memory is released by the plan's thread
//   absl::Status final = plan->Wait();
//
// Thread-safety: every public method is thread-safe. The destructor cancels and joins.
#ifndef MEMLOAD_CORE_PLAN_H_
#define MEMLOAD_CORE_PLAN_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/cancel_signal.h"
#include "core/clock.h"
#include "core/plan_counters.h"
#include "core/sync/mutex.h"

namespace memload {

class Plan {
 public:
  // `counters` is not owned and must outlive the plan (it may live in shared memory).
  // Every wait, pace and deadline of the plan runs on `clock` (not owned, outlives the
  // plan; a SimulatedClock in tests).
  explicit Plan(PlanCounters* counters, Clock* clock = Clock::Real());
  virtual ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // Starts the plan's thread. FailedPrecondition if already started.
  absl::Status Start();

  // Asks the plan to stop and give its memory back; returns at once. The plan's thread
  // notices within microseconds (sleeps wake up; loops check a flag every block).
  void Cancel();

  // Blocks until the plan's thread has finished and released its memory. Returns the
  // plan's final status: OK when it completed or was cancelled, the error otherwise
  // (e.g. ResourceExhausted). FailedPrecondition if never started.
  absl::Status Wait();

  // As Wait(), but gives up after `timeout`: DeadlineExceeded if still running.
  absl::Status WaitFor(absl::Duration timeout);

  // Changes what the plan is heading for, while it runs (grow or shrink in place).
  // Default: FailedPrecondition (a streaming plan has no target to change).
  virtual absl::Status SetTarget(uint64_t target_bytes);

  // Sets a ceiling the plan may not grow past, or lifts it (UINT64_MAX). A ramp that hits
  // it stops growing and reports PlanState::kCapped; the agent uses this for its reserve.
  // Default: ignored.
  virtual void SetCeiling(uint64_t ceiling_bytes);

  const PlanCounters& counters() const { return *counters_; }

  // The clock the plan runs on (its waits, durations and pacing): whoever paces around the
  // plan (the worker's wait loop) reads the same one.
  Clock* clock() const { return cancel_.clock(); }

 protected:
  // The plan itself, run on the plan's thread. Must return (having released its memory)
  // soon after cancel_signal().cancelled() becomes true, and must publish its progress in
  // counters(). The state it leaves in the counters is replaced by kCompleted, kCancelled
  // or kFailed according to the status and the cancel flag.
  virtual absl::Status Run() = 0;

  // Every subclass destructor must call this first, so Run() stops before the subclass's
  // members are destroyed. Idempotent.
  void CancelAndJoin();

  PlanCounters* mutable_counters() { return counters_; }
  CancelSignal& cancel_signal() { return cancel_; }

 private:
  void ThreadMain();

  PlanCounters* const counters_;
  CancelSignal cancel_;
  Mutex mutex_;
  std::condition_variable finished_cv_;
  bool started_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mutex_);
  Mutex join_mutex_;                            // Serialises joins of thread_.
  std::thread thread_ ABSL_GUARDED_BY(mutex_);  // Started once; joined by CancelAndJoin().
};

}  // namespace memload

#endif  // MEMLOAD_CORE_PLAN_H_
