// Test helpers for the plan kinds (RetainedPlan, StreamingPlan, UtilizationPlan): each has
// a static Create(spec, counters, clock), and core/plan.h's Plan gives them Start(),
// Cancel(), WaitFor() and counters(), so one set of helpers creates, starts and ends any.
//
//   PlanCounters counters;
//   WaitRecordingClock clock;
//   std::unique_ptr<StreamingPlan> plan = MustStart<StreamingPlan>(options, &counters, &clock);
//   ASSERT_NE(plan, nullptr);
//   ...
//   plan->Cancel();
//   const PlanCountersSnapshot s = ExpectEnded(*plan, PlanState::kCancelled, absl::Seconds(30));
//
// Thread-safety: the helpers call the plan's own thread-safe methods, nothing else.
#ifndef MEMLOAD_CORE_TESTING_PLAN_RUNS_H_
#define MEMLOAD_CORE_TESTING_PLAN_RUNS_H_

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/plan.h"
#include "core/plan_counters.h"
#include "core/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace memload {

// Kind::Create(spec, counters, clock): the plan, or null after a failed expectation.
template <typename Kind, typename Spec>
std::unique_ptr<Kind> MustCreate(const Spec& spec, PlanCounters* counters,
                                 Clock* clock = Clock::Real()) {
  absl::StatusOr<std::unique_ptr<Kind>> plan = Kind::Create(spec, counters, clock);
  EXPECT_THAT(plan, IsOk());
  return plan.ok() ? *std::move(plan) : nullptr;
}

// MustCreate, then Start(): the running plan, or null after a failed expectation.
template <typename Kind, typename Spec>
std::unique_ptr<Kind> MustStart(const Spec& spec, PlanCounters* counters,
                                Clock* clock = Clock::Real()) {
  std::unique_ptr<Kind> plan = MustCreate<Kind>(spec, counters, clock);
  if (plan == nullptr) return nullptr;
  const absl::Status started = plan->Start();
  EXPECT_THAT(started, IsOk());
  return started.ok() ? std::move(plan) : nullptr;
}

// Waits at most `timeout` (real time) for `plan` to end with OK and expects it to have ended
// in `state`. Returns its final counters (for the caller's checks of what it gave back).
inline PlanCountersSnapshot ExpectEnded(Plan& plan, PlanState state, absl::Duration timeout) {
  EXPECT_THAT(plan.WaitFor(timeout), IsOk());
  const PlanCountersSnapshot s = plan.counters().Snapshot();
  EXPECT_EQ(s.state, state) << PlanStateName(s.state);
  return s;
}

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_PLAN_RUNS_H_
