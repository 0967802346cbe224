// RetainedSet: `amount` blocks of `block_size` bytes, held until released — the seed
// library's New(amount, size, physical, duration), with exact accounting.
//
//   RetainedSetOptions options;
//   options.block_size = 1 << 20;            // 1 MiB blocks
//   options.touch = TouchMode::kPage;        // make every page resident
//   options.backing = Backing::kMmap;
//   MEMLOAD_ASSIGN_OR_RETURN(RetainedSet set, RetainedSet::Create(options, 64));
//   MEMLOAD_RETURN_IF_ERROR(set.Grow(64));    // ramps grow in steps
//   MEMLOAD_ASSIGN_OR_RETURN(uint64_t resident, set.ResidentBytes());
//   // ~RetainedSet (or Release()) gives every block back.
//
// Accounting (exact; see README "Accounting"):
//   payload_bytes     = block_count × block_size
//   allocations       = blocks ever allocated: exactly one allocator call per block, nothing
//                       else goes through the allocator
//   bookkeeping_bytes = sizeof(RetainedSet) + sizeof(void*) × table capacity, where the
//                       table (one pointer per block) lives on the heap only when the set
//                       has held more than one block; Create(amount) sizes it exactly,
//                       Grow() afterwards at least doubles it when it is full
//   mapped_bytes      = block_count × block_size rounded up to whole pages (mmap/shmem)
//   resident          = ResidentBytes(): mincore(2) over the blocks, from the OS
//
// Thread-safety: thread-compatible. One thread at a time may call non-const methods; const
// methods may run concurrently with each other but not with a mutation.
#ifndef MEMLOAD_CORE_RETAINED_SET_H_
#define MEMLOAD_CORE_RETAINED_SET_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/block_allocator.h"
#include "core/plan_counters.h"
#include "core/touch.h"

namespace memload {

struct RetainedSetOptions {
  uint64_t block_size = 0;  // Bytes per block, > 0.
  TouchMode touch = TouchMode::kPage;
  Backing backing = Backing::kMmap;
  bool huge_pages = false;  // madvise(MADV_HUGEPAGE) every block.
  bool mlock = false;       // mlock every block (needs RLIMIT_MEMLOCK or CAP_IPC_LOCK).
  // Overrides `backing` (and huge_pages/mlock) when set; not owned, must outlive the set.
  // Tests inject a counting allocator here.
  BlockAllocator* allocator = nullptr;
};

// Counters of one set; all cumulative except payload/mapped/bookkeeping/blocks.
struct RetainedSetStats {
  uint64_t blocks = 0;             // Blocks held now.
  uint64_t payload_bytes = 0;      // blocks × block_size.
  uint64_t mapped_bytes = 0;       // Address space the OS reserved for the blocks.
  uint64_t bookkeeping_bytes = 0;  // memload's own records (formula above).
  uint64_t allocations = 0;        // Allocator calls that succeeded, ever.
  uint64_t frees = 0;              // Blocks given back, ever.
  uint64_t bytes_touched = 0;      // Bytes written by touching, ever.
};

class RetainedSet {
 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Validates `options`, then allocates and touches `amount` blocks (0 is allowed: an empty
  // set to Grow later). InvalidArgument for a zero block size or when amount × block_size
  // overflows 64 bits; ResourceExhausted when memory (or room for the block table) runs out
  // (everything allocated so far is freed again before returning).
  // A set of at most one block on the plain malloc without touch (the seed's New(1, Byte))
  // is built inline here; everything else goes through CreateGeneral.
  static absl::StatusOr<RetainedSet> Create(const RetainedSetOptions& options, uint64_t amount);

  // Moving transfers the blocks, counters and allocator. The moved-from set is empty, counts
  // nothing and refuses Grow (FailedPrecondition) until a set is move-assigned to it.
  RetainedSet(RetainedSet&& other) noexcept;
  RetainedSet& operator=(RetainedSet&& other) noexcept;
  RetainedSet(const RetainedSet&) = delete;
  RetainedSet& operator=(const RetainedSet&) = delete;
  ~RetainedSet();

  // Adds `blocks` blocks. On failure returns ResourceExhausted saying how many of them were
  // allocated; those stay in the set (owned, counted, freeable), so a ramp keeps what it got.
  // InvalidArgument (nothing allocated) when the new total overflows 64 bits;
  // ResourceExhausted (nothing allocated) when the block table cannot grow.
  absl::Status Grow(uint64_t blocks);

  // Frees blocks from the end until at most `blocks` remain, and has the allocator give the
  // freed memory back to the OS (BlockAllocator::BeginBulkFree/EndBulkFree: for malloc, the
  // process allocator may otherwise keep it, and RSS would not follow the set down).
  void ShrinkTo(uint64_t blocks);

  // Frees every block and the block table, returning the memory to the OS as ShrinkTo
  // does. The set stays usable (empty).
  void Release();

  uint64_t block_count() const { return blocks_.size(); }
  uint64_t block_size() const { return block_size_; }
  RetainedSetStats stats() const;

  // Resident bytes of the blocks, measured by mincore(2). Counted in whole pages, so tiny
  // malloc blocks sharing a page count that page once.
  absl::StatusOr<uint64_t> ResidentBytes() const;

  // For Create() only (the tag is private); public so absl::StatusOr can build in place.
  RetainedSet(PrivateTag, const RetainedSetOptions& options, BlockAllocator* allocator,
              std::unique_ptr<BlockAllocator> owned_allocator)
      : block_size_(options.block_size),
        touch_(options.touch),
        plain_malloc_(allocator->is_plain_malloc()),
        allocator_(allocator),
        owned_allocator_(std::move(owned_allocator)) {}

 private:
  // Create for every case: validates, picks the allocator, sizes the table, fills it.
  static absl::StatusOr<RetainedSet> CreateGeneral(const RetainedSetOptions& options,
                                                   uint64_t amount);
  // The ResourceExhausted status of a one-block set whose malloc failed (out of line).
  static absl::Status OneBlockRefused(uint64_t block_size);
  // Create's and Grow's loop: `blocks` more blocks into a table already big enough.
  absl::Status AppendBlocks(uint64_t blocks);
  // Frees blocks from the end until at most `blocks` remain (no bulk-free bracket).
  void FreeFromEnd(uint64_t blocks);
  // The destructor's loop for an allocator that is not the plain malloc.
  void FreeAllThroughAllocator();

  // Only what the set needs after Create (the 1-byte path builds and destroys it per op).
  uint64_t block_size_;
  TouchMode touch_;
  bool plain_malloc_;          // allocator_->is_plain_malloc(), without the load through it.
  BlockAllocator* allocator_;  // Null only once moved from.
  std::unique_ptr<BlockAllocator> owned_allocator_;  // The shmem allocator, if any.
  absl::InlinedVector<void*, 1> blocks_;
  uint64_t allocations_ = 0;
  uint64_t frees_ = 0;
  uint64_t bytes_touched_ = 0;
};

// Publishes `set`'s numbers to `counters` — payload, mapped, bookkeeping, allocations,
// frees, bytes allocated and touched, peak payload — and, when `measure_resident`, its
// resident bytes (mincore; a failed measurement keeps the last one, which cannot happen
// while the blocks are mapped). For the plans that own a set; call from the set's thread.
void PublishRetainedSet(const RetainedSet& set, bool measure_resident, PlanCounters* counters);

// Inline, so that the release of a small set costs no call: it is Release() for a set that
// is going away — the blocks freed from the end, with no counting and no table updates
// (the table's own destructor frees a heap table).
inline absl::StatusOr<RetainedSet> RetainedSet::Create(const RetainedSetOptions& options,
                                                       uint64_t amount) {
  // The one-block fast path: nothing to validate beyond a non-zero size (one block cannot
  // overflow the total), the block pointer lives inline (no table), no touch.
  const bool one_plain_block = amount <= 1 && options.block_size != 0 &&
                               options.block_size <= SIZE_MAX && options.allocator == nullptr &&
                               options.backing == Backing::kMalloc && !options.huge_pages &&
                               !options.mlock && options.touch == TouchMode::kNone;
  if (ABSL_PREDICT_FALSE(!one_plain_block)) return CreateGeneral(options, amount);
  // One return of one object, so the set is built in place in the caller's StatusOr.
  return [&]() -> absl::StatusOr<RetainedSet> {
    absl::StatusOr<RetainedSet> set(absl::in_place, PrivateTag(), options, kPlainMallocAllocator,
                                    nullptr);
    if (amount == 1) {
      void* block = std::malloc(static_cast<size_t>(options.block_size));
      if (ABSL_PREDICT_TRUE(block != nullptr)) {
        set->blocks_.push_back(block);
        set->allocations_ = 1;
      } else {
        set = OneBlockRefused(options.block_size);
      }
    }
    return set;
  }();
}

inline RetainedSet::~RetainedSet() {
  const size_t count = blocks_.size();
  if (count == 0) return;  // Also every moved-from set (whose allocator_ is null).
  if (ABSL_PREDICT_TRUE(plain_malloc_)) {
    void* const* table = blocks_.data();
    for (size_t i = count; i > 0; --i) std::free(table[i - 1]);
  } else {
    FreeAllThroughAllocator();
  }
}

}  // namespace memload

#endif  // MEMLOAD_CORE_RETAINED_SET_H_
