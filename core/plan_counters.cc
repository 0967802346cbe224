#include "core/plan_counters.h"

namespace memload {

absl::string_view PlanStateName(PlanState state) {
  switch (state) {
    case PlanState::kPending:
      return "PENDING";
    case PlanState::kRamping:
      return "RAMPING";
    case PlanState::kHolding:
      return "HOLDING";
    case PlanState::kStreaming:
      return "STREAMING";
    case PlanState::kCapped:
      return "CAPPED";
    case PlanState::kCompleted:
      return "COMPLETED";
    case PlanState::kCancelled:
      return "CANCELLED";
    case PlanState::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

bool IsTerminal(PlanState state) {
  return state == PlanState::kCompleted || state == PlanState::kCancelled ||
         state == PlanState::kFailed;
}

PlanCountersSnapshot PlanCounters::Snapshot() const {
  constexpr auto kOrder = std::memory_order_acquire;
  PlanCountersSnapshot s;
  s.state = static_cast<PlanState>(state.load(kOrder));
  for (const PlanCounterField& field : kPlanCounterFields) {
    s.*field.copy = (this->*field.counter).load(kOrder);
  }
  return s;
}

}  // namespace memload
