// Resident memory measured from the OS with mincore(2): which pages of a set of address
// ranges are backed by RAM right now. Never an estimate: a page that was allocated but not
// written, or that was swapped out or reclaimed, does not count.
//
//   std::vector<MemoryRange> ranges = {{block, size}};
//   MEMLOAD_ASSIGN_OR_RETURN(uint64_t resident, ResidentBytes(ranges));
#ifndef MEMLOAD_CORE_RESIDENT_H_
#define MEMLOAD_CORE_RESIDENT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace memload {

struct MemoryRange {
  const void* data;
  size_t size;
};

// Bytes of resident pages covering `ranges`, counted in whole pages; a page shared by two
// ranges (small malloc blocks) is counted once. Ranges may come in any order and overlap.
// Internal error if mincore fails (e.g. a range is not mapped). Thread-safe; the ranges
// must stay mapped during the call.
absl::StatusOr<uint64_t> ResidentBytes(std::vector<MemoryRange> ranges);

}  // namespace memload

#endif  // MEMLOAD_CORE_RESIDENT_H_
