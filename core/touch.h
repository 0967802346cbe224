// How memload makes allocated memory real.
//
// A fresh allocation is only virtual: the kernel backs a page with RAM the first time it is
// written. TouchBlock writes a block according to a TouchMode so that the load is resident
// (kPage), or resident and incompressible (kFill), or deliberately left virtual (kNone).
//
//   uint64_t touched = TouchBlock(data, size, TouchMode::kPage, /*seed=*/1);
//
// All functions here are thread-safe (they touch only the memory they are given).
#ifndef MEMLOAD_CORE_TOUCH_H_
#define MEMLOAD_CORE_TOUCH_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {

enum class TouchMode {
  kNone,  // Never written: virtual memory only.
  kPage,  // One write per page the block overlaps: every page becomes resident. The byte
          // written is the start of a cache line that differs between neighbouring pages
          // (the block's first or last byte where that line lies outside the block), so the
          // touched lines of many pages spread over the whole cache.
  kFill,  // Every byte written with a pseudo-random pattern (xorshift64*): resident and
          // incompressible, so zram/zswap/KSM cannot shrink or merge it.
};

// "none", "page", "fill" <-> TouchMode. Unknown text is InvalidArgument naming it.
absl::StatusOr<TouchMode> ParseTouchMode(absl::string_view text);
absl::string_view TouchModeName(TouchMode mode);

// The kernel's page size (sysconf(_SC_PAGESIZE)), read once.
size_t PageSize();

// Writes `size` bytes at `data` according to `mode`. `seed` varies the fill pattern so
// blocks differ from each other (KSM merges identical pages). Returns the bytes of the
// block that are now backed by written pages: `size` for kPage and kFill, 0 for kNone.
//
// `fresh` says the pages are likely not resident yet (a new mapping, a first allocation):
// large page-aligned blocks are then populated with one madvise(MADV_POPULATE_WRITE)
// instead of a fault per page. Pass false for memory an allocator probably reuses (a
// streaming step's malloc block): the system call would cost more than writing to pages
// that are already there.
//
// kFill of a fresh block of at least 64 KiB is written by the kernel (process_vm_writev to
// this process, 64 KiB of pattern per call) instead of by this process's own stores: the
// same bytes, but the process never takes the first store to each new page, which under
// shadow paging (VMs without nested page tables, such as this project's CI machines)
// costs a hypervisor exit per page — 7-10× the whole fill. Where the kernel refuses
// (seccomp, EPERM), the process writes the pattern itself, as before.
uint64_t TouchBlock(void* data, size_t size, TouchMode mode, uint64_t seed, bool fresh = true);

// Bytes TouchBlock has filled through the kernel so far in this process (for tests and
// benchmarks).
uint64_t KernelFilledBytes();

}  // namespace memload

#endif  // MEMLOAD_CORE_TOUCH_H_
