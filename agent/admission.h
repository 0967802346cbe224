// Admission: the one check of what a plan really costs against the agent's limits
// (--max-memory and --reserve), shared by StartPlan and ResizePlan.
//
// Costs are real costs (core/block_cost.h: page-rounded blocks, malloc chunks, memload's
// block table) plus kWorkerOverheadBytes for the plan's worker process, never payload alone;
// every sum is checked, so a huge target is refused instead of wrapping around.
//
// What a plan is measured against is an input (`available`), not read here: the node's
// effective available memory today, a target cgroup's when plans are placed in one.
//
//   AdmissionRequest request;
//   request.what = "plan \"drill-1\"";
//   request.cost = cost;                        // everything the plan may hold
//   request.committed = CommittedByOthers();    // what running plans may hold
//   request.available = node.EffectiveAvailable();
//   MEMLOAD_RETURN_IF_ERROR(Admit(limits, request));   // ResourceExhausted with the numbers
//
// All functions are pure and thread-safe.
#ifndef MEMLOAD_AGENT_ADMISSION_H_
#define MEMLOAD_AGENT_ADMISSION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/block_allocator.h"

namespace memload {
namespace agent {

// A worker process's own resident memory besides its blocks (measured, RssAnon + RssShmem:
// 1.6 MiB with glibc's malloc, 5.8 MiB with the tcmalloc memload-worker links; counted with
// room to spare), charged once per plan.
inline constexpr uint64_t kWorkerOverheadBytes = 8ull << 20;

struct AdmissionLimits {
  uint64_t max_memory_bytes = 0;  // What all plans together may cost; 0 = no cap.
  uint64_t reserve_bytes = 0;     // Available memory plans never eat into.
};

struct AdmissionRequest {
  std::string what;           // Names the request in messages: "plan \"x\"", "resizing \"x\"".
  uint64_t cost = 0;          // Everything the plan may hold, at its real cost.
  uint64_t held = 0;          // What of `cost` it holds already (a resize): not taken again
                              // from the available memory.
  uint64_t committed = 0;     // What the other running plans may hold.
  uint64_t available = 0;     // Available memory of what the plan is measured against.
  bool check_reserve = true;  // False for OOM drills (they still obey --max-memory).
};

// OK, or ResourceExhausted naming the numbers when committed + cost crosses --max-memory or
// the growth (cost − held) does not fit in available − reserve. Never wraps.
absl::Status Admit(const AdmissionLimits& limits, const AdmissionRequest& request);

// What a plan's retained set holding up to `payload_bytes` costs, worker included.
// InvalidArgument for an absurd block count (core/block_cost.h) or on overflow.
absl::StatusOr<uint64_t> RetainedPlanCost(Backing backing, uint64_t block_size,
                                          uint64_t payload_bytes);

// The same for a stream: its live window (or one block per worker), worker included.
absl::StatusOr<uint64_t> StreamingPlanCost(uint64_t block_size, bool return_to_os, uint64_t window,
                                           uint64_t workers);

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_ADMISSION_H_
