#include "core/retained_set.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/resident.h"
#include "core/size.h"

namespace memload {

namespace {

// Makes room for `wanted` pointers in `table` (at least doubling it when it grows). The
// table is memload's own allocation: when it cannot be had (2^61 one-byte blocks fit in 64
// bits, their table does not fit in memory), that is a status, never an exception escaping.
template <typename Table>
ABSL_ATTRIBUTE_NOINLINE absl::Status GrowTable(Table& table, uint64_t wanted) {
  try {
    table.reserve(wanted);
  } catch (const std::exception&) {  // std::bad_alloc, or std::length_error past max_size().
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate the block table for ", wanted, " blocks"));
  }
  return absl::OkStatus();
}

// Error paths, kept out of line so the hot path stays small.
ABSL_ATTRIBUTE_NOINLINE absl::Status CannotGrowBy(uint64_t blocks) {
  return absl::InvalidArgumentError(absl::StrCat("cannot grow by ", blocks, " blocks"));
}

ABSL_ATTRIBUTE_NOINLINE absl::Status GrowFailed(uint64_t got, uint64_t blocks, size_t size,
                                                uint64_t held, const absl::Status& why) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "allocated ", got, " of ", blocks, " blocks of ", size, " bytes (", got * size, " of ",
      blocks * size, " bytes; the set holds ", held, " blocks) before: ", why.message()));
}

template <typename Table>
inline absl::Status ReserveTable(Table& table, uint64_t wanted) {
  if (ABSL_PREDICT_TRUE(wanted <= table.capacity())) return absl::OkStatus();
  return GrowTable(table, wanted);
}

}  // namespace

ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status RetainedSet::AppendBlocks(uint64_t blocks) {
  const size_t size = static_cast<size_t>(block_size_);
  uint64_t i = 0;
  if (ABSL_PREDICT_TRUE(plain_malloc_ && touch_ == TouchMode::kNone)) {
    // The seed's case (plain malloc, no touch): nothing but the allocator call and the
    // table write in the loop. A refusal leaves the rest to the general loop below.
    for (; i < blocks; ++i) {
      void* block = std::malloc(size);
      if (ABSL_PREDICT_FALSE(block == nullptr)) break;
      blocks_.push_back(block);
    }
    allocations_ += i;
    if (ABSL_PREDICT_TRUE(i == blocks)) return absl::OkStatus();
  }
  BlockAllocator* const allocator = allocator_;
  const bool plain_malloc = plain_malloc_;
  const TouchMode touch = touch_;
  for (; i < blocks; ++i) {
    // The plain malloc is decided once per call, and no Status lives in the loop: only a
    // refusal builds one (out of line).
    void* block = plain_malloc ? std::malloc(size) : nullptr;
    if (ABSL_PREDICT_FALSE(block == nullptr)) {
      absl::Status error;
      block = AllocateBlockSlow(allocator, size, &error);
      if (block == nullptr) return GrowFailed(i, blocks, size, blocks_.size(), error);
    }
    ++allocations_;
    if (touch != TouchMode::kNone) {
      bytes_touched_ += TouchBlock(block, size, touch, allocations_);
    }
    blocks_.push_back(block);
  }
  return absl::OkStatus();
}

absl::Status RetainedSet::OneBlockRefused(uint64_t block_size) {
  return GrowFailed(0, 1, static_cast<size_t>(block_size), 0, MallocFailed(block_size));
}

absl::StatusOr<RetainedSet> RetainedSet::CreateGeneral(const RetainedSetOptions& options,
                                                       uint64_t amount) {
  if (options.block_size == 0) {
    return absl::InvalidArgumentError("block size must be at least 1 byte");
  }
  if (options.block_size > SIZE_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("block size ", options.block_size,
                                                   " does not fit this machine's address space"));
  }
  // The hot path (a 1-byte set is the seed's benchmark) checks with a builtin and leaves
  // building the error to MultiplySizes.
  uint64_t total;
  if (ABSL_PREDICT_FALSE(__builtin_mul_overflow(amount, options.block_size, &total))) {
    return MultiplySizes(amount, options.block_size).status();
  }
  BlockAllocator* allocator = options.allocator;
  std::unique_ptr<BlockAllocator> owned;
  if (allocator == nullptr) {
    const AllocatorOptions allocator_options{options.huge_pages, options.mlock};
    if (options.backing == Backing::kMalloc && !options.huge_pages && !options.mlock) {
      allocator = kPlainMallocAllocator;
    } else if (options.backing == Backing::kShmem) {
      MEMLOAD_ASSIGN_OR_RETURN(owned, MakeShmemAllocator(allocator_options));
      allocator = owned.get();
    } else {
      allocator = SharedBlockAllocator(options.backing, allocator_options);
    }
  }
  // Built in place and returned as is, so the set is never moved on the way out: the lambda
  // has a single return, which lets GCC apply NRVO (it does not with the returns above).
  return [&]() -> absl::StatusOr<RetainedSet> {
    absl::StatusOr<RetainedSet> set(absl::in_place, PrivateTag(), options, allocator,
                                    std::move(owned));
    // Validated above, so straight to the loop (Grow would check it all again).
    absl::Status status = ReserveTable(set->blocks_, amount);
    if (ABSL_PREDICT_TRUE(status.ok())) status = set->AppendBlocks(amount);
    if (ABSL_PREDICT_FALSE(!status.ok())) set = std::move(status);  // Frees what it got.
    return set;
  }();
}

RetainedSet::RetainedSet(RetainedSet&& other) noexcept
    : block_size_(other.block_size_),
      touch_(other.touch_),
      plain_malloc_(other.plain_malloc_),
      allocator_(other.allocator_),
      owned_allocator_(std::move(other.owned_allocator_)),
      blocks_(std::move(other.blocks_)),
      allocations_(other.allocations_),
      frees_(other.frees_),
      bytes_touched_(other.bytes_touched_) {
  // The moved-from set is empty and counts nothing. It must not keep the allocator: a shmem
  // allocator now belongs to this set and dies with it.
  other.blocks_.clear();
  other.allocator_ = nullptr;
  other.allocations_ = other.frees_ = other.bytes_touched_ = 0;
}

RetainedSet& RetainedSet::operator=(RetainedSet&& other) noexcept {
  if (this != &other) {
    Release();
    block_size_ = other.block_size_;
    touch_ = other.touch_;
    plain_malloc_ = other.plain_malloc_;
    allocator_ = other.allocator_;
    owned_allocator_ = std::move(other.owned_allocator_);
    blocks_ = std::move(other.blocks_);
    allocations_ = other.allocations_;
    frees_ = other.frees_;
    bytes_touched_ = other.bytes_touched_;
    other.blocks_.clear();  // As in the move constructor.
    other.allocator_ = nullptr;
    other.allocations_ = other.frees_ = other.bytes_touched_ = 0;
  }
  return *this;
}

void RetainedSet::FreeAllThroughAllocator() {
  const size_t size = static_cast<size_t>(block_size_);
  void* const* table = blocks_.data();
  for (size_t i = blocks_.size(); i > 0; --i) allocator_->Free(table[i - 1], size);
}

absl::Status RetainedSet::Grow(uint64_t blocks) {
  if (ABSL_PREDICT_FALSE(allocator_ == nullptr)) {
    return absl::FailedPreconditionError("cannot grow a moved-from retained set");
  }
  uint64_t wanted;
  if (ABSL_PREDICT_FALSE(__builtin_add_overflow(blocks_.size(), blocks, &wanted))) {
    return CannotGrowBy(blocks);
  }
  uint64_t total;
  if (ABSL_PREDICT_FALSE(__builtin_mul_overflow(wanted, block_size_, &total))) {
    return MultiplySizes(wanted, block_size_).status();
  }
  // InlinedVector at least doubles a full table, so ramps of many small steps do not copy it
  // every step.
  MEMLOAD_RETURN_IF_ERROR(ReserveTable(blocks_, wanted));
  return AppendBlocks(blocks);
}

void RetainedSet::FreeFromEnd(uint64_t blocks) {
  const size_t size = static_cast<size_t>(block_size_);
  while (blocks_.size() > blocks) {
    FreeBlock(allocator_, blocks_.back(), size);
    blocks_.pop_back();
    ++frees_;
  }
}

void RetainedSet::ShrinkTo(uint64_t blocks) {
  if (blocks_.size() <= blocks) return;
  // A process allocator may keep what was freed (tcmalloc and mimalloc do): a set that
  // shrank must shrink the process too.
  allocator_->BeginBulkFree();
  FreeFromEnd(blocks);
  allocator_->EndBulkFree();
}

void RetainedSet::Release() {
  if (allocator_ == nullptr) return;  // Moved from: nothing held.
  const bool held = !blocks_.empty();
  if (held) allocator_->BeginBulkFree();
  FreeFromEnd(0);
  // Only a heap table has anything to give back (a one-block set keeps its pointer inline).
  if (blocks_.capacity() > 1) blocks_.shrink_to_fit();
  if (held) allocator_->EndBulkFree();
}

RetainedSetStats RetainedSet::stats() const {
  RetainedSetStats stats;
  stats.blocks = blocks_.size();
  stats.payload_bytes = stats.blocks * block_size_;
  stats.mapped_bytes = stats.blocks == 0 ? 0 : stats.blocks * allocator_->MappedSize(block_size_);
  const uint64_t table_bytes = blocks_.capacity() > 1 ? sizeof(void*) * blocks_.capacity() : 0;
  stats.bookkeeping_bytes = sizeof(RetainedSet) + table_bytes;
  stats.allocations = allocations_;
  stats.frees = frees_;
  stats.bytes_touched = bytes_touched_;
  return stats;
}

absl::StatusOr<uint64_t> RetainedSet::ResidentBytes() const {
  std::vector<MemoryRange> ranges;
  ranges.reserve(blocks_.size());
  for (void* block : blocks_) ranges.push_back({block, block_size_});
  return memload::ResidentBytes(std::move(ranges));
}

void PublishRetainedSet(const RetainedSet& set, bool measure_resident, PlanCounters* counters) {
  const RetainedSetStats stats = set.stats();
  counters->payload_bytes.store(stats.payload_bytes);
  counters->mapped_bytes.store(stats.mapped_bytes);
  counters->bookkeeping_bytes.store(stats.bookkeeping_bytes);
  counters->allocations.store(stats.allocations);
  counters->frees.store(stats.frees);
  counters->bytes_allocated.store(stats.allocations * set.block_size());
  counters->bytes_touched.store(stats.bytes_touched);
  if (stats.payload_bytes > counters->peak_payload_bytes.load()) {
    counters->peak_payload_bytes.store(stats.payload_bytes);
  }
  if (measure_resident) {
    absl::StatusOr<uint64_t> resident = set.ResidentBytes();
    if (resident.ok()) counters->resident_bytes.store(*resident);
  }
}

}  // namespace memload
