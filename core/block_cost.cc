#include "core/block_cost.h"

#include <unistd.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/size.h"

namespace memload {
namespace {

// x rounded up to a multiple of `unit` (a power of two); InvalidArgument on overflow.
absl::StatusOr<uint64_t> RoundUp(uint64_t x, uint64_t unit) {
  MEMLOAD_ASSIGN_OR_RETURN(uint64_t sum, AddSizes(x, unit - 1));
  return sum & ~(unit - 1);
}

// Bytes the OS or the allocator hands out for one block, without memload's table entry.
absl::StatusOr<uint64_t> Chunk(Backing backing, uint64_t block_size, uint64_t page_size) {
  switch (backing) {
    case Backing::kMmap:
    case Backing::kShmem:
      return RoundUp(block_size, page_size);
    case Backing::kMalloc: {
      MEMLOAD_ASSIGN_OR_RETURN(uint64_t with_header, AddSizes(block_size, 16));
      if (block_size > kMallocLargeThreshold) {
        return RoundUp(with_header, std::max(page_size, kMallocLargePage));
      }
      MEMLOAD_ASSIGN_OR_RETURN(uint64_t chunk, RoundUp(with_header + block_size / 8, 16));
      return std::max<uint64_t>(chunk, 32);
    }
  }
  return absl::InvalidArgumentError("unknown backing");
}

}  // namespace

uint64_t SystemPageSize() {
  const long size = sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<uint64_t>(size) : kDefaultPageSize;
}

absl::StatusOr<uint64_t> BlockCost(Backing backing, uint64_t block_size, uint64_t page_size) {
  if (block_size == 0) return absl::InvalidArgumentError("block size must be positive");
  if (page_size == 0 || (page_size & (page_size - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page size ", page_size, " is not a power of two"));
  }
  MEMLOAD_ASSIGN_OR_RETURN(uint64_t chunk, Chunk(backing, block_size, page_size));
  return AddSizes(chunk, kTableBytesPerBlock);
}

absl::StatusOr<uint64_t> BlocksCost(Backing backing, uint64_t block_size, uint64_t blocks,
                                    uint64_t page_size) {
  MEMLOAD_ASSIGN_OR_RETURN(uint64_t per_block, BlockCost(backing, block_size, page_size));
  if (blocks > kMaxBlocks) {
    // The block size that brings the count within the limit, in whole KiB at least.
    return absl::InvalidArgumentError(
        absl::StrCat(blocks, " blocks of ", FormatSize(block_size), " is more than the ",
                     kMaxBlocks, " blocks a plan may hold; use a block size of at least ",
                     FormatSize(std::max<uint64_t>(
                         1024, ((blocks / kMaxBlocks + 1) * block_size + 1023) / 1024 * 1024))));
  }
  MEMLOAD_ASSIGN_OR_RETURN(uint64_t all, MultiplySizes(blocks, per_block));
  return AddSizes(all, kSetFixedBytes);
}

absl::StatusOr<uint64_t> RetainedCost(Backing backing, uint64_t block_size, uint64_t payload_bytes,
                                      uint64_t page_size) {
  if (block_size == 0) return absl::InvalidArgumentError("block size must be positive");
  return BlocksCost(backing, block_size, payload_bytes / block_size, page_size);
}

uint64_t PayloadWithin(Backing backing, uint64_t block_size, uint64_t budget, uint64_t page_size) {
  absl::StatusOr<uint64_t> per_block = BlockCost(backing, block_size, page_size);
  if (!per_block.ok()) return 0;
  // blocks ≤ kMaxBlocks and block_size ≤ per_block ≤ budget / blocks: no overflow.
  return std::min(budget / *per_block, kMaxBlocks) * block_size;
}

absl::StatusOr<uint64_t> StreamingCost(uint64_t block_size, bool return_to_os, uint64_t window,
                                       uint64_t workers, uint64_t page_size) {
  return BlocksCost(return_to_os ? Backing::kMmap : Backing::kMalloc, block_size,
                    std::max(window, workers), page_size);
}

}  // namespace memload
