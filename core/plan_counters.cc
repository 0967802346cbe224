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
  s.phase = phase.load(kOrder);
  s.cycle = cycle.load(kOrder);
  s.target_bytes = target_bytes.load(kOrder);
  s.payload_bytes = payload_bytes.load(kOrder);
  s.mapped_bytes = mapped_bytes.load(kOrder);
  s.bookkeeping_bytes = bookkeeping_bytes.load(kOrder);
  s.resident_bytes = resident_bytes.load(kOrder);
  s.allocations = allocations.load(kOrder);
  s.frees = frees.load(kOrder);
  s.bytes_allocated = bytes_allocated.load(kOrder);
  s.bytes_touched = bytes_touched.load(kOrder);
  s.peak_payload_bytes = peak_payload_bytes.load(kOrder);
  return s;
}

}  // namespace memload
