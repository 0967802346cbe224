// BlockCost / RetainedCost / StreamingCost: what a plan's blocks really cost in memory —
// not just their payload — so that admission, --max-memory and ceilings count what the OS
// will hold. The agent admits plans by these figures and memloadctl checks them early with
// the same functions.
//
//   MEMLOAD_ASSIGN_OR_RETURN(uint64_t cost,
//                            RetainedCost(Backing::kMmap, /*block_size=*/1, /*payload=*/60000));
//   // 60000 one-byte blocks, each on a page of its own: ~236 MiB, not 60,000 bytes.
//
// The rule (README "Safety and limits"), per block of `block_size` bytes:
//   mmap, shmem   block_size rounded up to whole pages (each block is its own mapping)
//   malloc        the allocator's chunk, taken conservatively for both allocators a worker
//                 may run with (glibc's, and tcmalloc's that memload-worker links):
//                 up to 256 KiB: block_size + 16 + block_size/8 rounded up to 16, at least
//                 32 B (glibc's header and 32 B minimum chunk — a 1-byte malloc costs 32 B,
//                 measured — and tcmalloc's size classes, which waste at most 1/8);
//                 above 256 KiB: block_size + 16 rounded up to 8 KiB (or the page, if
//                 larger): tcmalloc's spans of 8 KiB pages, glibc's own mappings
//   + 24 B        memload's block table: 8 B a block, up to twice the blocks after a
//                 doubling, three times while the table is copied
// and once per set kSetFixedBytes (the set itself and allocator state). Kernel page tables
// (8 B per 4 KiB page) are not counted.
//
// Every count is bounded: a set holds at most kMaxBlocks blocks (InvalidArgument beyond, with
// the block size to use instead), and every sum and product is checked (InvalidArgument on
// overflow).
//
// All functions are pure and thread-safe.
#ifndef MEMLOAD_CORE_BLOCK_COST_H_
#define MEMLOAD_CORE_BLOCK_COST_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/block_allocator.h"

namespace memload {

// The most blocks one retained set or stream window may hold (64 Mi: 512 MiB of table).
inline constexpr uint64_t kMaxBlocks = uint64_t{1} << 26;
// memload's own bytes per block (the block table, counted three times over; see above).
inline constexpr uint64_t kTableBytesPerBlock = 24;
// Bytes a set costs whatever it holds (the set, the allocator's state).
inline constexpr uint64_t kSetFixedBytes = 4096;
// Above this block size malloc'd blocks are whole-page allocations (tcmalloc's large
// objects; glibc maps them from 128 KiB on).
inline constexpr uint64_t kMallocLargeThreshold = 256 * 1024;
// The page unit large malloc'd blocks are rounded to (tcmalloc's page).
inline constexpr uint64_t kMallocLargePage = 8 * 1024;
// The page size the cost rules assume when none is given (x86-64, arm64 default).
inline constexpr uint64_t kDefaultPageSize = 4096;

// This machine's page size (sysconf), for callers that measure on the node itself.
uint64_t SystemPageSize();

// Bytes one block of `block_size` (> 0) costs with `backing`, its table entry included.
// InvalidArgument for block_size 0, a page size that is not a power of two, or overflow.
absl::StatusOr<uint64_t> BlockCost(Backing backing, uint64_t block_size,
                                   uint64_t page_size = kDefaultPageSize);

// Bytes a retained set of `blocks` blocks costs: kSetFixedBytes + blocks × BlockCost.
// InvalidArgument beyond kMaxBlocks (naming a block size that would do) or on overflow.
absl::StatusOr<uint64_t> BlocksCost(Backing backing, uint64_t block_size, uint64_t blocks,
                                    uint64_t page_size = kDefaultPageSize);

// BlocksCost of a set holding `payload_bytes`, rounded down to whole blocks as plans do.
absl::StatusOr<uint64_t> RetainedCost(Backing backing, uint64_t block_size, uint64_t payload_bytes,
                                      uint64_t page_size = kDefaultPageSize);

// The most payload (whole blocks, at most kMaxBlocks) that `budget` more bytes pay for, on
// top of what a set already holds (no fixed part). 0 for an invalid block size.
uint64_t PayloadWithin(Backing backing, uint64_t block_size, uint64_t budget,
                       uint64_t page_size = kDefaultPageSize);

// A stream's live memory at most: max(window, workers) blocks, malloc'd, or mapped each when
// `return_to_os`. InvalidArgument beyond kMaxBlocks or on overflow.
absl::StatusOr<uint64_t> StreamingCost(uint64_t block_size, bool return_to_os, uint64_t window,
                                       uint64_t workers, uint64_t page_size = kDefaultPageSize);

}  // namespace memload

#endif  // MEMLOAD_CORE_BLOCK_COST_H_
