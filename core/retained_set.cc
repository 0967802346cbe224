#include "core/retained_set.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/resident.h"
#include "core/size.h"
#include "core/status_macros.h"

namespace memload {

absl::StatusOr<RetainedSet> RetainedSet::Create(const RetainedSetOptions& options,
                                                uint64_t amount) {
  if (options.block_size == 0) {
    return absl::InvalidArgumentError("block size must be at least 1 byte");
  }
  if (options.block_size > SIZE_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("block size ", options.block_size,
                                                   " does not fit this machine's address space"));
  }
  MEMLOAD_RETURN_IF_ERROR(MultiplySizes(amount, options.block_size).status());
  BlockAllocator* allocator = options.allocator;
  std::unique_ptr<BlockAllocator> owned;
  if (allocator == nullptr) {
    const AllocatorOptions allocator_options{options.huge_pages, options.mlock};
    if (options.backing == Backing::kShmem) {
      MEMLOAD_ASSIGN_OR_RETURN(owned, MakeShmemAllocator(allocator_options));
      allocator = owned.get();
    } else {
      allocator = SharedBlockAllocator(options.backing, allocator_options);
    }
  }
  RetainedSet set(options, allocator, std::move(owned));
  if (amount > 1) set.blocks_.reserve(amount);
  absl::Status status = set.Grow(amount);
  if (!status.ok()) return status;  // `set` frees what it got on the way out.
  return set;
}

RetainedSet::RetainedSet(const RetainedSetOptions& options, BlockAllocator* allocator,
                         std::unique_ptr<BlockAllocator> owned_allocator)
    : options_(options), allocator_(allocator), owned_allocator_(std::move(owned_allocator)) {}

RetainedSet::RetainedSet(RetainedSet&& other) noexcept
    : options_(other.options_),
      allocator_(other.allocator_),
      owned_allocator_(std::move(other.owned_allocator_)),
      blocks_(std::move(other.blocks_)),
      allocations_(other.allocations_),
      frees_(other.frees_),
      bytes_touched_(other.bytes_touched_) {
  other.blocks_.clear();
}

RetainedSet& RetainedSet::operator=(RetainedSet&& other) noexcept {
  if (this != &other) {
    Release();
    options_ = other.options_;
    allocator_ = other.allocator_;
    owned_allocator_ = std::move(other.owned_allocator_);
    blocks_ = std::move(other.blocks_);
    other.blocks_.clear();
    allocations_ = other.allocations_;
    frees_ = other.frees_;
    bytes_touched_ = other.bytes_touched_;
  }
  return *this;
}

RetainedSet::~RetainedSet() { Release(); }

absl::Status RetainedSet::Grow(uint64_t blocks) {
  const uint64_t wanted = blocks_.size() + blocks;
  if (wanted < blocks_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot grow by ", blocks, " blocks"));
  }
  MEMLOAD_RETURN_IF_ERROR(MultiplySizes(wanted, options_.block_size).status());
  // InlinedVector at least doubles a full table, so ramps of many small steps do not copy it
  // every step.
  if (wanted > blocks_.capacity()) blocks_.reserve(wanted);
  const size_t size = static_cast<size_t>(options_.block_size);
  for (uint64_t i = 0; i < blocks; ++i) {
    absl::StatusOr<void*> block = allocator_->Allocate(size);
    if (!block.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "allocated ", i, " of ", blocks, " blocks of ", size, " bytes (", i * size, " of ",
          blocks * size, " bytes; the set holds ", blocks_.size(), " blocks) before: ",
          block.status().message()));
    }
    ++allocations_;
    bytes_touched_ += TouchBlock(*block, size, options_.touch, allocations_);
    blocks_.push_back(*block);
  }
  return absl::OkStatus();
}

void RetainedSet::ShrinkTo(uint64_t blocks) {
  const size_t size = static_cast<size_t>(options_.block_size);
  while (blocks_.size() > blocks) {
    allocator_->Free(blocks_.back(), size);
    blocks_.pop_back();
    ++frees_;
  }
}

void RetainedSet::Release() {
  ShrinkTo(0);
  blocks_.shrink_to_fit();
}

RetainedSetStats RetainedSet::stats() const {
  RetainedSetStats stats;
  stats.blocks = blocks_.size();
  stats.payload_bytes = stats.blocks * options_.block_size;
  stats.mapped_bytes = stats.blocks * allocator_->MappedSize(options_.block_size);
  const uint64_t table_bytes =
      blocks_.capacity() > 1 ? sizeof(void*) * blocks_.capacity() : 0;
  stats.bookkeeping_bytes = sizeof(RetainedSet) + table_bytes;
  stats.allocations = allocations_;
  stats.frees = frees_;
  stats.bytes_touched = bytes_touched_;
  return stats;
}

absl::StatusOr<uint64_t> RetainedSet::ResidentBytes() const {
  std::vector<MemoryRange> ranges;
  ranges.reserve(blocks_.size());
  for (void* block : blocks_) ranges.push_back({block, options_.block_size});
  return memload::ResidentBytes(std::move(ranges));
}

}  // namespace memload
