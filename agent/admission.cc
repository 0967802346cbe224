#include "agent/admission.h"

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/block_cost.h"
#include "core/size.h"

namespace memload {
namespace agent {

absl::Status Admit(const AdmissionLimits& limits, const AdmissionRequest& request) {
  if (limits.max_memory_bytes > 0) {
    absl::StatusOr<uint64_t> total = AddSizes(request.committed, request.cost);
    if (!total.ok() || *total > limits.max_memory_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          request.what, " needs ", FormatSize(request.cost), "; with the ",
          FormatSize(request.committed), " other plans may hold, that crosses --max-memory ",
          FormatSize(limits.max_memory_bytes)));
    }
  }
  const uint64_t growth = request.cost > request.held ? request.cost - request.held : 0;
  if (request.check_reserve && growth > 0) {
    absl::StatusOr<uint64_t> needed = AddSizes(limits.reserve_bytes, growth);
    if (!needed.ok() || request.available < *needed) {
      const uint64_t usable =
          request.available > limits.reserve_bytes ? request.available - limits.reserve_bytes : 0;
      return absl::ResourceExhaustedError(absl::StrCat(
          request.what, " needs ", FormatSize(growth), request.held > 0 ? " more" : "",
          " but only ", FormatSize(usable), " may be used: available memory is ",
          FormatSize(request.available), " and --reserve is ", FormatSize(limits.reserve_bytes)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RetainedPlanCost(Backing backing, uint64_t block_size,
                                          uint64_t payload_bytes) {
  MEMLOAD_ASSIGN_OR_RETURN(uint64_t set,
                           RetainedCost(backing, block_size, payload_bytes, SystemPageSize()));
  return AddSizes(set, kWorkerOverheadBytes);
}

absl::StatusOr<uint64_t> StreamingPlanCost(uint64_t block_size, bool return_to_os, uint64_t window,
                                           uint64_t workers) {
  MEMLOAD_ASSIGN_OR_RETURN(
      uint64_t live, StreamingCost(block_size, return_to_os, window, workers, SystemPageSize()));
  return AddSizes(live, kWorkerOverheadBytes);
}

}  // namespace agent
}  // namespace memload
