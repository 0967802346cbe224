// Streaming load — the seed library's NewBackground(amount, size, physical, duration):
// worker threads allocate a block, touch it and drop it again, in a loop. That is high
// allocation churn with a flat live heap: at most `window` blocks are alive at any moment.
//
//   StreamOptions options;
//   options.block_size = 1 << 20;              // 1 MiB blocks
//   options.return_to_os = true;               // the kernel faults and zeroes every block
//   options.rate_bytes_per_sec = 512ull << 20; // 512 MiB/s over all workers
//   options.workers = 2;
//   options.duration = absl::Seconds(30);
//   PlanCounters counters;
//   MEMLOAD_ASSIGN_OR_RETURN(std::unique_ptr<StreamingPlan> plan,
//                            StreamingPlan::Create(options, &counters));
//   MEMLOAD_RETURN_IF_ERROR(plan->Start());
//   ... counters.Snapshot() from any thread; plan->Cancel() to stop early ...
//   absl::Status done = plan->Wait();          // every block has been freed
//
// Accounting (PlanCounters; all totals are over every worker):
//   allocations, frees   blocks, ever: exactly one allocator call per block, nothing else
//                        goes through the allocator
//   bytes_allocated      allocations × block_size, ever
//   bytes_touched        bytes written by touching, ever (0 for TouchMode::kNone)
//   payload_bytes        live blocks × block_size; never above window × block_size
//   mapped_bytes         live blocks × the allocator's MappedSize(block_size)
//   bookkeeping_bytes    sizeof(void*) × window while the plan runs — the workers' rings
//                        of live-block pointers — and 0 once it has finished. With
//                        window 0 streaming keeps no records at all (the seed's one extra
//                        allocation per call is gone too).
//   resident_bytes       mincore(2) of the live blocks, measured by each worker at most
//                        every 50 ms (whole pages; two workers' tiny malloc blocks on one
//                        page count it twice)
//   peak_payload_bytes   highest payload_bytes published
//   target_bytes         amount_bytes (0: no amount)
// Workers publish in batches — every ~5 ms, before every rate-limit sleep and on exit —
// so a reader sees numbers up to a few ms old, and exact ones once the plan has finished.
#ifndef MEMLOAD_CORE_STREAMING_H_
#define MEMLOAD_CORE_STREAMING_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/block_allocator.h"
#include "core/plan.h"
#include "core/plan_counters.h"
#include "core/touch.h"

namespace memload {

struct StreamOptions {
  uint64_t block_size = 0;  // Bytes per block, > 0.
  TouchMode touch = TouchMode::kPage;
  // false: malloc/free, so the process allocator reuses memory (as Go's heap does for the
  // seed). true: one mmap/munmap per block, so the kernel must fault in and zero every page
  // each time (real page churn).
  bool return_to_os = false;
  // Blocks kept alive over all workers; each new block pushes out the oldest. 0 drops each
  // block in the step that allocated it (the seed's behaviour).
  uint64_t window = 0;
  uint64_t rate_bytes_per_sec = 0;  // Over all workers; 0 = as fast as possible.
  uint32_t workers = 1;             // Threads, 1..64.
  // Stop once exactly this many bytes were allocated in total (a multiple of block_size);
  // 0 = no amount. With neither amount nor duration the plan runs until cancelled.
  uint64_t amount_bytes = 0;
  absl::Duration duration = absl::ZeroDuration();  // 0 (or infinite) = no time limit.
  // Overrides return_to_os when set; not owned, must outlive the plan and be thread-safe.
  // Tests inject a counting allocator here.
  BlockAllocator* allocator = nullptr;
};

// OK, or InvalidArgument naming the offending field: block_size 0, workers not in 1..64,
// window × block_size (or the ring of window pointers) overflowing, amount_bytes not a
// multiple of block_size, a negative duration.
absl::Status ValidateStreamOptions(const StreamOptions& options);

// One worker's loop state: its window ring and local (unpublished) counters. Exposed so
// a benchmark can time a single Step(); StreamingPlan runs one per thread.
//
// Thread-safety: thread-compatible — one thread at a time. Flush() publishes to
// PlanCounters with atomic adds, so workers on different threads may share counters.
class StreamWorker {
 public:
  // `allocator` is not owned and must outlive the worker. `window_share` is how many blocks
  // this worker keeps alive (0: free each block at once); `seed` varies the fill pattern.
  // options.block_size must be valid (see ValidateStreamOptions).
  StreamWorker(const StreamOptions& options, BlockAllocator* allocator, uint64_t window_share,
               uint64_t seed);
  ~StreamWorker();  // ReleaseAll().
  StreamWorker(const StreamWorker&) = delete;
  StreamWorker& operator=(const StreamWorker&) = delete;

  // Allocates one block and touches it. With a window, it joins the ring and the oldest
  // block is freed first when the ring is full (so live blocks never exceed the share);
  // without one it is freed at once. On failure returns the allocator's status (nothing
  // leaks; blocks already in the ring stay there).
  absl::Status Step();

  // Frees every block in the ring, oldest first, and has the allocator give the memory
  // that these frees and the earlier steps' made free back to the OS (BeginBulkFree/
  // EndBulkFree: for malloc a walk of the heap, so not per step). Does nothing when no
  // block was allocated since the last call. The worker stays usable.
  void ReleaseAll();

  // Measures the ring's resident bytes with mincore(2) into resident_bytes(). Costs a
  // sort over the live blocks: call it now and then, not per step.
  void MeasureResident();

  // Publishes what changed since the last Flush to `counters` (relaxed fetch_add of
  // deltas; peak_payload_bytes by compare-exchange). Because each worker publishes its own
  // live bytes, counters->payload_bytes is always a sum of values each at most one
  // worker's share, so it never exceeds the total window.
  void Flush(PlanCounters* counters);

  uint64_t allocations() const { return allocations_; }
  uint64_t frees() const { return allocations_ - live_; }  // Every block not live was freed.
  uint64_t live_blocks() const { return live_; }
  uint64_t bytes_allocated() const { return allocations_ * size_; }
  uint64_t bytes_touched() const { return bytes_touched_; }
  uint64_t resident_bytes() const { return resident_bytes_; }  // Last MeasureResident().
  uint64_t window_share() const { return window_; }

 private:
  // Step() with a window or through a virtual allocator (Step() inlines only the plain
  // malloc, no-window case: the seed's NewBackground).
  absl::Status StepGeneral();

  BlockAllocator* const allocator_;
  const size_t size_;
  const TouchMode touch_;
  const uint64_t window_;
  // window_ == 0 and a plain malloc allocator: Step()'s inline path, decided once.
  const bool malloc_no_window_;
  const uint64_t seed_;
  const uint64_t mapped_size_;
  // The allocator maps new pages per block (mmap, shmem): populate them when touching.
  const bool fresh_pages_;
  // window_ pointers; live ones are the live_ entries before head_ (cyclically). Null when
  // the ring itself could not be allocated: Step() then reports ResourceExhausted.
  std::unique_ptr<void*[]> ring_;
  uint64_t head_ = 0;  // Next slot to fill; when the ring is full, the oldest block.
  uint64_t live_ = 0;
  uint64_t allocations_ = 0;
  uint64_t allocations_at_release_ = 0;  // allocations_ at the last ReleaseAll().
  uint64_t bytes_touched_ = 0;
  uint64_t resident_bytes_ = 0;
  // Values as of the last Flush().
  uint64_t published_allocations_ = 0;
  uint64_t published_frees_ = 0;
  uint64_t published_touched_ = 0;
  uint64_t published_live_ = 0;
  uint64_t published_resident_ = 0;
};

// A Plan (core/plan.h) running StreamOptions on `workers` threads (the plan's own thread
// is worker 0). Worker i keeps window / workers blocks alive, plus one if
// i < window % workers. Stops when amount_bytes were allocated, when the duration is over,
// on Cancel() (within one block's allocate-and-touch time: microseconds for small blocks,
// also while sleeping in the rate limiter) or when an allocation fails; in every case all
// blocks are freed before Wait() returns.
//
// Final status: OK for amount, duration or cancel; ResourceExhausted when an allocation
// failed, saying how many bytes were allocated until then.
//
// Thread-safety: as Plan — every public method is thread-safe.
class StreamingPlan final : public Plan {
 public:
  // InvalidArgument for invalid options (see ValidateStreamOptions). `counters` is not
  // owned and must outlive the plan. The duration and the rate's schedule run on `clock`
  // (not owned; outlives the plan).
  static absl::StatusOr<std::unique_ptr<StreamingPlan>> Create(const StreamOptions& options,
                                                               PlanCounters* counters,
                                                               Clock* clock = Clock::Real());
  ~StreamingPlan() override;

  const StreamOptions& options() const { return options_; }

 protected:
  // Sets kStreaming, runs the workers and returns once they have all stopped and freed
  // their blocks.
  absl::Status Run() override;

 private:
  StreamingPlan(const StreamOptions& options, BlockAllocator* allocator, PlanCounters* counters,
                Clock* clock);

  const StreamOptions options_;
  BlockAllocator* const allocator_;  // Not owned (a process-wide or injected allocator).
};

// Inline, so that a caller's loop (StreamingPlan's, a benchmark's) pays no call for the
// seed's NewBackground step: malloc, touch, free, and one counter.
inline absl::Status StreamWorker::Step() {
  if (ABSL_PREDICT_TRUE(malloc_no_window_)) {
    void* block = std::malloc(size_);
    if (ABSL_PREDICT_FALSE(block == nullptr)) return MallocFailed(size_);
    ++allocations_;
    if (touch_ != TouchMode::kNone) {
      // Malloc reuses what the last step freed: write, do not populate.
      bytes_touched_ += TouchBlock(block, size_, touch_, seed_ + allocations_, /*fresh=*/false);
    }
    std::free(block);
    return absl::OkStatus();
  }
  return StepGeneral();
}

}  // namespace memload

#endif  // MEMLOAD_CORE_STREAMING_H_
