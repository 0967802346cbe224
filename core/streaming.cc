#include "core/streaming.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "core/resident.h"
#include "core/size.h"
#include "core/sync/mutex.h"

namespace memload {

namespace {

constexpr uint32_t kMaxWorkers = 64;
// Publishing costs a dozen atomic adds on cache lines all workers share: do it on a
// timer, not per step.
constexpr absl::Duration kFlushInterval = absl::Milliseconds(5);
constexpr absl::Duration kResidentInterval = absl::Milliseconds(50);
// A shorter lead on the rate schedule is not worth a futex sleep; the schedule is
// cumulative, so skipping it does not drift the rate.
constexpr absl::Duration kMinSleep = absl::Microseconds(50);
// The clock and the counters are looked at about once per this many bytes of blocks
// (at least every step for big blocks, at most every kMaxCheckEvery steps for tiny ones),
// so duration ends are noticed within microseconds (a millisecond when every page is a
// fresh fault) without a clock read per step: a read costs about as much as touching a
// 64 KiB block whose pages are cached, so reading it every step halved that churn.
constexpr uint64_t kCheckBytes = 1 << 20;
constexpr uint64_t kMaxCheckEvery = 1024;
// Amount budgets are claimed ~4 MiB (at most 64 blocks) at a time: exact totals without
// a contended atomic per step, and a fair share between workers for big blocks.
constexpr uint64_t kClaimBytes = 4 << 20;
constexpr uint64_t kMaxClaimBlocks = 64;

void PublishDelta(std::atomic<uint64_t>& field, uint64_t now, uint64_t& published) {
  if (now != published) {
    // Unsigned wrap-around makes this a subtraction when `now` went down.
    field.fetch_add(now - published, std::memory_order_relaxed);
    published = now;
  }
}

void RaisePeak(std::atomic<uint64_t>& peak, uint64_t value) {
  uint64_t seen = peak.load(std::memory_order_relaxed);
  while (seen < value && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

absl::Status ValidateStreamOptions(const StreamOptions& options) {
  if (options.block_size == 0) {
    return absl::InvalidArgumentError("block_size must be at least 1 byte");
  }
  if (options.block_size > SIZE_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("block_size ", options.block_size,
                                                   " does not fit this machine's address space"));
  }
  if (options.workers == 0 || options.workers > kMaxWorkers) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers must be 1..", kMaxWorkers, ", got ", options.workers));
  }
  if (!MultiplySizes(options.window, options.block_size).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("window of ", options.window,
                                                   " blocks of block_size ", options.block_size,
                                                   " bytes overflows 64 bits"));
  }
  if (options.window > SIZE_MAX / sizeof(void*)) {
    return absl::InvalidArgumentError(
        absl::StrCat("window of ", options.window, " blocks is too large to keep track of"));
  }
  if (options.amount_bytes % options.block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("amount_bytes ", options.amount_bytes,
                                                   " is not a multiple of block_size ",
                                                   options.block_size));
  }
  if (options.duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("duration must not be negative, got ",
                                                   absl::FormatDuration(options.duration)));
  }
  return absl::OkStatus();
}

// ---- StreamWorker ----

StreamWorker::StreamWorker(const StreamOptions& options, BlockAllocator* allocator,
                           uint64_t window_share, uint64_t seed)
    : allocator_(allocator),
      size_(static_cast<size_t>(options.block_size)),
      touch_(options.touch),
      window_(window_share),
      malloc_no_window_(window_share == 0 && allocator->is_plain_malloc()),
      seed_(seed),
      mapped_size_(allocator->MappedSize(static_cast<size_t>(options.block_size))),
      fresh_pages_(allocator->maps_fresh_pages()) {
  // nothrow: a window too big for memory is reported by Step() as a status, not an abort.
  if (window_ != 0) ring_.reset(new (std::nothrow) void*[window_]);
}

StreamWorker::~StreamWorker() { ReleaseAll(); }

absl::Status StreamWorker::StepGeneral() {
  if (window_ != 0) {
    if (ring_ == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate the ring of ", window_, " block pointers for the window"));
    }
    // Free the oldest first, so this worker never holds more than its share.
    if (live_ == window_) {
      FreeBlock(allocator_, ring_[head_], size_);
      --live_;
    }
  }
  absl::Status error;
  void* block = AllocateBlock(allocator_, size_, &error);
  if (block == nullptr) return error;
  ++allocations_;
  if (touch_ != TouchMode::kNone) {
    bytes_touched_ += TouchBlock(block, size_, touch_, seed_ + allocations_, fresh_pages_);
  }
  if (window_ == 0) {
    FreeBlock(allocator_, block, size_);
    return absl::OkStatus();
  }
  ring_[head_] = block;
  head_ = head_ + 1 == window_ ? 0 : head_ + 1;
  ++live_;
  return absl::OkStatus();
}

void StreamWorker::ReleaseAll() {
  if (allocations_ == allocations_at_release_) return;  // Nothing allocated since the last.
  allocations_at_release_ = allocations_;
  // The allocator may keep what the frees make free for reuse that will not come (memload-
  // worker's tcmalloc keeps everything: KeepFreedMallocMemory): the bracket gives it back,
  // the blocks freed by earlier steps included.
  allocator_->BeginBulkFree();
  // The live blocks are the live_ slots before head_; walk them from the oldest.
  uint64_t slot = (head_ + window_ - live_) % (window_ == 0 ? 1 : window_);
  for (; live_ > 0; --live_) {
    allocator_->Free(ring_[slot], size_);
    slot = slot + 1 == window_ ? 0 : slot + 1;
  }
  head_ = 0;
  allocator_->EndBulkFree();
}

void StreamWorker::MeasureResident() {
  if (live_ == 0) {
    resident_bytes_ = 0;
    return;
  }
  std::vector<MemoryRange> ranges;
  ranges.reserve(live_);
  uint64_t slot = (head_ + window_ - live_) % window_;
  for (uint64_t i = 0; i < live_; ++i) {
    ranges.push_back({ring_[slot], size_});
    slot = slot + 1 == window_ ? 0 : slot + 1;
  }
  // mincore fails only for unmapped ranges, which live blocks never are; keep the last
  // value if it does.
  absl::StatusOr<uint64_t> resident = ResidentBytes(std::move(ranges));
  if (resident.ok()) resident_bytes_ = *resident;
}

void StreamWorker::Flush(PlanCounters* counters) {
  if (allocations_ != published_allocations_) {
    const uint64_t new_blocks = allocations_ - published_allocations_;
    counters->allocations.fetch_add(new_blocks, std::memory_order_relaxed);
    counters->bytes_allocated.fetch_add(new_blocks * size_, std::memory_order_relaxed);
    published_allocations_ = allocations_;
  }
  PublishDelta(counters->frees, frees(), published_frees_);
  PublishDelta(counters->bytes_touched, bytes_touched_, published_touched_);
  if (live_ != published_live_) {
    const uint64_t delta_blocks = live_ - published_live_;  // Wraps for a decrease.
    const uint64_t payload =
        counters->payload_bytes.fetch_add(delta_blocks * size_, std::memory_order_relaxed) +
        delta_blocks * size_;
    counters->mapped_bytes.fetch_add(delta_blocks * mapped_size_, std::memory_order_relaxed);
    if (live_ > published_live_) RaisePeak(counters->peak_payload_bytes, payload);
    published_live_ = live_;
  }
  PublishDelta(counters->resident_bytes, resident_bytes_, published_resident_);
}

// ---- StreamingPlan ----

namespace {

// What the workers of one Run() share.
struct RunContext {
  const StreamOptions& options;
  BlockAllocator* allocator;
  PlanCounters* counters;
  CancelSignal& cancel;
  Clock* clock;  // The plan's (the cancel signal's) clock.
  absl::Time start;
  absl::Time end;         // absl::InfiniteFuture() without a duration.
  uint64_t total_blocks;  // amount_bytes / block_size; 0 = no amount.
  uint64_t claim_blocks;  // Blocks per budget claim.
  std::atomic<uint64_t> claimed_blocks{0};
  std::atomic<uint64_t> allocations{0};  // Summed by workers as they exit.
  Mutex error_mutex;
  absl::Status error ABSL_GUARDED_BY(error_mutex);  // the first failure.

  // Returns how many more blocks the caller may allocate (0: the amount is used up).
  uint64_t ClaimBlocks() {
    uint64_t claimed = claimed_blocks.load(std::memory_order_relaxed);
    uint64_t grant;
    do {
      if (claimed >= total_blocks) return 0;
      grant = std::min(claim_blocks, total_blocks - claimed);
    } while (
        !claimed_blocks.compare_exchange_weak(claimed, claimed + grant, std::memory_order_relaxed));
    return grant;
  }

  void Fail(absl::Status status) {
    {
      MutexLock lock(&error_mutex);
      if (error.ok()) error = std::move(status);
    }
    // Cancel is the one signal every sleeping worker wakes up for; the plan still ends
    // kFailed because Run() returns the error.
    cancel.Cancel();
  }
};

void RunWorker(RunContext* context, uint32_t index) {
  const StreamOptions& options = context->options;
  const uint64_t share =
      options.window / options.workers + (index < options.window % options.workers ? 1 : 0);
  StreamWorker worker(options, context->allocator, share, (index + 1) * 0x9E3779B97F4A7C15ull);
  PlanCounters* const counters = context->counters;
  CancelSignal& cancel = context->cancel;

  const bool rate_limited = options.rate_bytes_per_sec > 0;
  // Each worker keeps to its own schedule of rate / workers.
  const double ns_per_byte =
      rate_limited ? 1e9 * options.workers / static_cast<double>(options.rate_bytes_per_sec) : 0;
  const uint64_t check_every =
      rate_limited ? 1 : std::clamp<uint64_t>(kCheckBytes / options.block_size, 1, kMaxCheckEvery);
  uint64_t until_check = check_every;
  uint64_t budget = context->total_blocks == 0 ? UINT64_MAX : 0;
  Clock* const clock = context->clock;
  absl::Time next_flush = context->start + kFlushInterval;
  absl::Time next_resident = context->start;

  absl::Status status;
  while (!cancel.cancelled()) {
    if (budget == 0 && (budget = context->ClaimBlocks()) == 0) break;
    status = worker.Step();
    if (!status.ok()) break;
    --budget;
    if (--until_check != 0) continue;
    until_check = check_every;

    absl::Time now = clock->Now();
    if (now >= context->end) break;
    if (share != 0 && now >= next_resident) {
      worker.MeasureResident();
      // A huge window makes measuring costly: never spend more than ~10% of the time on it.
      const absl::Time measured = clock->Now();
      next_resident = measured + std::max(kResidentInterval, 10 * (measured - now));
      now = measured;
    }
    if (rate_limited) {
      // Capped at ~30 years so that absurdly slow rates cannot overflow the clock.
      const double due_ns = std::min(worker.bytes_allocated() * ns_per_byte, 1e18);
      const absl::Time due = context->start + absl::Nanoseconds(static_cast<int64_t>(due_ns));
      if (due - now >= kMinSleep) {
        // Publish before sleeping: a slow rate may sleep for seconds.
        worker.Flush(counters);
        next_flush = now + kFlushInterval;
        if (cancel.WaitUntil(std::min(due, context->end))) break;
        if (clock->Now() >= context->end) break;
        continue;
      }
    }
    if (now >= next_flush) {
      worker.Flush(counters);
      next_flush = now + kFlushInterval;
    }
  }
  // Publish the full window before releasing it, so even a run shorter than one flush
  // interval leaves a true peak_payload_bytes.
  worker.Flush(counters);
  worker.ReleaseAll();
  worker.MeasureResident();
  worker.Flush(counters);
  context->allocations.fetch_add(worker.allocations(), std::memory_order_relaxed);
  if (!status.ok()) context->Fail(std::move(status));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StreamingPlan>> StreamingPlan::Create(const StreamOptions& options,
                                                                     PlanCounters* counters,
                                                                     Clock* clock) {
  absl::Status valid = ValidateStreamOptions(options);
  if (!valid.ok()) return valid;
  BlockAllocator* allocator = options.allocator;
  if (allocator == nullptr) {
    allocator = SharedBlockAllocator(options.return_to_os ? Backing::kMmap : Backing::kMalloc,
                                     AllocatorOptions{});
  }
  return std::unique_ptr<StreamingPlan>(new StreamingPlan(options, allocator, counters, clock));
}

StreamingPlan::StreamingPlan(const StreamOptions& options, BlockAllocator* allocator,
                             PlanCounters* counters, Clock* clock)
    : Plan(counters, clock), options_(options), allocator_(allocator) {}

StreamingPlan::~StreamingPlan() { CancelAndJoin(); }

absl::Status StreamingPlan::Run() {
  PlanCounters* const counters = mutable_counters();
  counters->target_bytes.store(options_.amount_bytes, std::memory_order_relaxed);
  counters->bookkeeping_bytes.store(sizeof(void*) * options_.window, std::memory_order_relaxed);
  // The start is read before the state says streaming, so whoever sees kStreaming knows
  // the plan's clock had started by then.
  const absl::Time start = clock()->Now();
  counters->SetState(PlanState::kStreaming);

  absl::Time end = absl::InfiniteFuture();
  // Durations beyond a century (or infinite) are "no limit".
  if (options_.duration > absl::ZeroDuration() && options_.duration < absl::Hours(24 * 365 * 100)) {
    end = start + options_.duration;
  }
  const uint64_t block_size = options_.block_size;
  RunContext context{options_,
                     allocator_,
                     counters,
                     cancel_signal(),
                     clock(),
                     start,
                     end,
                     options_.amount_bytes / block_size,
                     std::clamp<uint64_t>(kClaimBytes / block_size, 1, kMaxClaimBlocks),
                     /*claimed_blocks=*/{0},
                     /*allocations=*/{0},
                     /*error_mutex=*/{},
                     /*error=*/{}};

  std::vector<std::thread> threads;
  threads.reserve(options_.workers - 1);
  for (uint32_t i = 1; i < options_.workers; ++i) {
    try {
      threads.emplace_back(RunWorker, &context, i);
    } catch (const std::system_error& error) {
      // Out of threads (e.g. a pids cgroup limit): a status, not an abort.
      context.Fail(absl::ResourceExhaustedError(
          absl::StrCat("cannot start streaming worker ", i, ": ", error.what())));
      break;
    }
  }
  RunWorker(&context, 0);
  for (std::thread& thread : threads) thread.join();
  counters->bookkeeping_bytes.store(0, std::memory_order_relaxed);

  MutexLock lock(&context.error_mutex);
  if (context.error.ok()) return absl::OkStatus();
  const uint64_t blocks = context.allocations.load(std::memory_order_relaxed);
  return absl::ResourceExhaustedError(absl::StrCat(
      "streaming stopped after allocating ", blocks * block_size, " bytes (", blocks, " blocks of ",
      block_size, " bytes",
      options_.amount_bytes != 0 ? absl::StrCat(" of ", options_.amount_bytes, " bytes") : "",
      "); all blocks freed: ", context.error.message()));
}

}  // namespace memload
