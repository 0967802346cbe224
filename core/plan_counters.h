// PlanCounters: the live numbers of one running plan, readable at any moment from another
// thread — or another process, when the block lives in shared memory — without locks.
//
// Every field is a lock-free std::atomic<uint64_t> (address-free on Linux/x86-64 and
// aarch64, so it works in a MAP_SHARED mapping). Each field has exactly one writer
// (the plan's controlling thread, or for per-worker streaming totals, writers that use
// fetch_add); readers use Snapshot(). Fields are independent: a snapshot is not atomic as
// a whole, so derived values (e.g. live = allocated − freed) may be momentarily skewed.
//
//   PlanCounters counters;           // or placement-new into a shared mapping
//   RetainedPlan plan(spec, &counters);
//   ...
//   PlanCountersSnapshot now = counters.Snapshot();   // from any thread
#ifndef MEMLOAD_CORE_PLAN_COUNTERS_H_
#define MEMLOAD_CORE_PLAN_COUNTERS_H_

#include <atomic>
#include <cstdint>
#include <iterator>

#include "absl/strings/string_view.h"

namespace memload {

// Where a plan is in its life. Numeric values are stable (they cross process boundaries).
enum class PlanState : uint64_t {
  kPending = 0,    // Created, not started.
  kRamping = 1,    // Growing or shrinking toward the current phase's target.
  kHolding = 2,    // At target, sleeping (no CPU) until the hold ends or a change.
  kStreaming = 3,  // A streaming plan's loop is running.
  kCapped = 4,     // Stopped growing short of its target at a safety limit (reserve/cap).
  kCompleted = 5,  // Ran every phase (or its amount/duration) and released its memory.
  kCancelled = 6,  // Stopped on request; memory released.
  kFailed = 7,     // Stopped by an error (see the plan's status); memory released.
};
absl::string_view PlanStateName(PlanState state);
bool IsTerminal(PlanState state);

struct PlanCountersSnapshot {
  PlanState state = PlanState::kPending;
  uint64_t phase = 0;               // Index of the current phase (retained plans).
  uint64_t cycle = 0;               // Completed repeats of the phase list.
  uint64_t target_bytes = 0;        // What the plan is heading for now.
  uint64_t payload_bytes = 0;       // Live payload held now.
  uint64_t mapped_bytes = 0;        // Address space reserved for the live blocks.
  uint64_t bookkeeping_bytes = 0;   // memload's own records for the live blocks.
  uint64_t resident_bytes = 0;      // Last OS measurement (mincore) of the live blocks.
  uint64_t allocations = 0;         // Blocks allocated, ever.
  uint64_t frees = 0;               // Blocks freed, ever.
  uint64_t bytes_allocated = 0;     // Payload bytes allocated, ever (allocation rate).
  uint64_t bytes_touched = 0;       // Bytes written by touching, ever.
  uint64_t peak_payload_bytes = 0;  // Highest payload_bytes seen.
};

struct PlanCounters {
  std::atomic<uint64_t> state{static_cast<uint64_t>(PlanState::kPending)};
  std::atomic<uint64_t> phase{0};
  std::atomic<uint64_t> cycle{0};
  std::atomic<uint64_t> target_bytes{0};
  std::atomic<uint64_t> payload_bytes{0};
  std::atomic<uint64_t> mapped_bytes{0};
  std::atomic<uint64_t> bookkeeping_bytes{0};
  std::atomic<uint64_t> resident_bytes{0};
  std::atomic<uint64_t> allocations{0};
  std::atomic<uint64_t> frees{0};
  std::atomic<uint64_t> bytes_allocated{0};
  std::atomic<uint64_t> bytes_touched{0};
  std::atomic<uint64_t> peak_payload_bytes{0};

  void SetState(PlanState new_state) {
    state.store(static_cast<uint64_t>(new_state), std::memory_order_release);
  }
  PlanCountersSnapshot Snapshot() const;
};

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "PlanCounters must be lock-free to live in shared memory");

// Every field but the state, by name: its counter and its copy in a snapshot. Snapshot()
// copies the fields by this table, and tests walk it; a field added to the structs but not
// here fails the static_asserts below.
struct PlanCounterField {
  absl::string_view name;
  std::atomic<uint64_t> PlanCounters::*counter;
  uint64_t PlanCountersSnapshot::*copy;
};
inline constexpr PlanCounterField kPlanCounterFields[] = {
    {"phase", &PlanCounters::phase, &PlanCountersSnapshot::phase},
    {"cycle", &PlanCounters::cycle, &PlanCountersSnapshot::cycle},
    {"target_bytes", &PlanCounters::target_bytes, &PlanCountersSnapshot::target_bytes},
    {"payload_bytes", &PlanCounters::payload_bytes, &PlanCountersSnapshot::payload_bytes},
    {"mapped_bytes", &PlanCounters::mapped_bytes, &PlanCountersSnapshot::mapped_bytes},
    {"bookkeeping_bytes", &PlanCounters::bookkeeping_bytes,
     &PlanCountersSnapshot::bookkeeping_bytes},
    {"resident_bytes", &PlanCounters::resident_bytes, &PlanCountersSnapshot::resident_bytes},
    {"allocations", &PlanCounters::allocations, &PlanCountersSnapshot::allocations},
    {"frees", &PlanCounters::frees, &PlanCountersSnapshot::frees},
    {"bytes_allocated", &PlanCounters::bytes_allocated, &PlanCountersSnapshot::bytes_allocated},
    {"bytes_touched", &PlanCounters::bytes_touched, &PlanCountersSnapshot::bytes_touched},
    {"peak_payload_bytes", &PlanCounters::peak_payload_bytes,
     &PlanCountersSnapshot::peak_payload_bytes},
};
// The state and one entry a field: nothing left out (tests check that no field is listed twice).
static_assert(sizeof(PlanCountersSnapshot) ==
                  sizeof(uint64_t) * (1 + std::size(kPlanCounterFields)),
              "kPlanCounterFields must list every PlanCountersSnapshot field but state");
static_assert(sizeof(PlanCounters) == sizeof(PlanCountersSnapshot),
              "PlanCounters and PlanCountersSnapshot must have the same fields");

}  // namespace memload

#endif  // MEMLOAD_CORE_PLAN_COUNTERS_H_
