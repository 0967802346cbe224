// Where a block's memory comes from: the process allocator, anonymous mappings, or a
// memfd (shared memory). RetainedSet and the streaming loop allocate every payload block
// through a BlockAllocator, one Allocate per block, so the allocation count is exact and
// tests can count it by injecting their own allocator.
//
//   BlockAllocator* mmap_allocator = SharedBlockAllocator(Backing::kMmap, {});
//   MEMLOAD_ASSIGN_OR_RETURN(void* block, mmap_allocator->Allocate(1 << 20));
//   ...
//   mmap_allocator->Free(block, 1 << 20);
#ifndef MEMLOAD_CORE_BLOCK_ALLOCATOR_H_
#define MEMLOAD_CORE_BLOCK_ALLOCATOR_H_

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {

enum class Backing {
  kMalloc,  // glibc malloc/free: exercises the process allocator (may keep freed memory).
  kMmap,    // One private anonymous mapping per block, page aligned, munmap on free.
  kShmem,   // One shared mapping per block of a memfd_create file: page-cache (Shmem)
            // memory; a free punches the range out of the file (MADV_REMOVE).
};

// "malloc", "mmap", "shmem" <-> Backing. Unknown text is InvalidArgument naming it.
absl::StatusOr<Backing> ParseBacking(absl::string_view text);
absl::string_view BackingName(Backing backing);

struct AllocatorOptions {
  // madvise(MADV_HUGEPAGE) on each block (the page-aligned part of it for malloc), so the
  // kernel may back it with transparent huge pages.
  bool huge_pages = false;
  // mlock(2) each block after allocating it (which also makes it resident). A refusal by
  // RLIMIT_MEMLOCK is ResourceExhausted naming the limit; the block is then freed.
  bool mlock = false;
};

// Allocates and frees payload blocks.
//
// Thread-safety: implementations from this file are thread-safe; injected test allocators
// state their own.
class BlockAllocator {
 public:
  // constexpr so that the shared allocators are constant-initialized: no function-local
  // static guard on the path of every RetainedSet::Create.
  constexpr BlockAllocator() = default;
  virtual ~BlockAllocator() = default;

  // Returns a new block of `size` (> 0) bytes, or ResourceExhausted when the system refuses
  // (the message names the size and the reason). Never returns nullptr with OK.
  virtual absl::StatusOr<void*> Allocate(size_t size) = 0;

  // Returns a block obtained from Allocate(size) with the same size.
  virtual void Free(void* block, size_t size) = 0;

  // Bytes of address space the OS reserves for a block of `size`: `size` for malloc (its
  // own headers are the allocator's business), `size` rounded up to whole pages otherwise.
  virtual size_t MappedSize(size_t size) const = 0;

  // Bracket a bulk free — a set shrinking or being released — so that the memory those
  // frees make free goes back to the OS at once and RSS follows the set down: call
  // BeginBulkFree() before the frees and EndBulkFree() after them. Malloc: the process
  // allocator's calls (BeginMallocBulkFree/EndMallocBulkFree below); mappings are returned
  // by Free already. Not for hot paths: EndBulkFree may walk the allocator's heap.
  virtual void BeginBulkFree() {}
  virtual void EndBulkFree() {}

  // True only for the shared malloc allocator without options, whose Allocate/Free are
  // exactly std::malloc/std::free: AllocateBlock/FreeBlock below then skip the virtual
  // call and the StatusOr (the hot path of one-byte sets and streams).
  bool is_plain_malloc() const { return plain_malloc_; }

  // True when every block is a new mapping whose pages are not resident yet (mmap, shmem),
  // false when the allocator may hand back memory it reused (malloc). Touching uses it to
  // choose between populating a block in one system call and writing to its pages.
  bool maps_fresh_pages() const { return fresh_pages_; }

 protected:
  bool plain_malloc_ = false;
  bool fresh_pages_ = false;
};

// Returns the free memory of whichever malloc the process runs on to the OS, for frees made
// between the two calls. gperftools' tcmalloc (memload-worker's allocator, README
// "Performance"): MallocExtension_ReleaseFreeMemory() at End. mimalloc gives freed pages back
// only after a delay (25-500 ms), so Begin sets its delays to 0 until the matching End, which
// calls mi_collect(true). jemalloc: "arena.<all>.purge"; glibc: malloc_trim(0).
// The replacements are found through weak symbols, so this works for the allocator a binary
// links and for one preloaded with LD_PRELOAD alike. Thread-safe; pairs may nest or overlap
// between threads (the delays come back when the last End runs; meanwhile other threads'
// frees are returned at once too, which costs them speed, not correctness).
void BeginMallocBulkFree();
void EndMallocBulkFree();

// Makes the process allocator keep the memory that frees make free, for reuse, until
// EndMallocBulkFree gives it back, instead of giving it back a little at a time on later
// frees. gperftools' tcmalloc (memload-worker's allocator) releases one free span to the OS
// per ~1,000 pages freed by default (its release rate, 1), so a streaming plan of big blocks
// faults every page of a released block in again: 1 MiB churn ran 13-20x slower than on
// glibc (README "Performance"). This sets that release rate to 0; what a plan frees then
// goes back to the OS when the plan ends or shrinks (BlockAllocator::EndBulkFree). Other
// allocators have no such background release to stop: nothing is done. Returns true when
// the setting was made (tcmalloc linked or preloaded). Thread-safe; process-wide.
// memload-worker calls it before it builds its plan; the benchmarks call it too.
bool KeepFreedMallocMemory();

// tcmalloc's release rate now (0 after KeepFreedMallocMemory), or -1 when the process
// allocator is not gperftools' tcmalloc. Thread-safe.
double MallocReleaseRate();

// Status for a failed std::malloc of `size` bytes (what Allocate would have said).
absl::Status MallocFailed(size_t size);

// The virtual path of AllocateBlock, and its failures: out of line, so that callers' hot
// loops hold no StatusOr and no Status on their stack.
void* AllocateBlockSlow(BlockAllocator* allocator, size_t size, absl::Status* error);

// One block from `allocator`; nullptr with `*error` set when it refuses.
inline void* AllocateBlock(BlockAllocator* allocator, size_t size, absl::Status* error) {
  if (ABSL_PREDICT_TRUE(allocator->is_plain_malloc())) {
    void* block = std::malloc(size);
    if (ABSL_PREDICT_TRUE(block != nullptr)) return block;
  }
  return AllocateBlockSlow(allocator, size, error);
}

inline void FreeBlock(BlockAllocator* allocator, void* block, size_t size) {
  if (allocator->is_plain_malloc()) {
    std::free(block);
  } else {
    allocator->Free(block, size);
  }
}

// The process-wide malloc or mmap allocator with `options` (stateless, never freed).
// Returns nullptr for Backing::kShmem, which needs MakeShmemAllocator.
BlockAllocator* SharedBlockAllocator(Backing backing, const AllocatorOptions& options);

// SharedBlockAllocator(Backing::kMalloc, {}) without the call (constant-initialized).
extern BlockAllocator* const kPlainMallocAllocator;

// A new allocator over its own memfd; the file is closed when the allocator is destroyed
// (after every block is freed). ResourceExhausted or Internal when memfd_create fails.
absl::StatusOr<std::unique_ptr<BlockAllocator>> MakeShmemAllocator(const AllocatorOptions& options);

}  // namespace memload

#endif  // MEMLOAD_CORE_BLOCK_ALLOCATOR_H_
