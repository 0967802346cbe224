// WorkerShared: the block of shared memory between the agent and one memload-worker.
//
// The agent creates a memfd, sizes it to kWorkerSharedMappingSize, maps it MAP_SHARED and
// constructs a WorkerShared in it with placement-new; the worker receives the memfd as
// fd 4, maps it and checks Valid(). From then on the worker writes and the agent reads,
// both without locks: every live field is a lock-free std::atomic (address-free on Linux,
// so atomics work across processes), and PlanCounters is built for this (plan_counters.h).
// The mapping outlives the worker in the agent, so final counters stay readable after
// the worker has exited.
//
//   // agent
//   void* memory = mmap(nullptr, kWorkerSharedMappingSize, PROT_READ | PROT_WRITE,
//                       MAP_SHARED, memfd, 0);
//   WorkerShared* shared = new (memory) WorkerShared();
//   // worker
//   auto* shared = static_cast<WorkerShared*>(mmap(... fd 4 ...));
//   if (!shared->Valid()) return 2;
//   shared->counters.payload_bytes.store(...);
//   shared->SetError("plan reached 0 B of its 1 PiB target: ...");   // then exit non-zero
//
// Thread-safety: many readers, and one writer per field (the worker). The header fields
// are written once by the agent before the worker starts. SetError is for one thread, once,
// just before a failing exit; Error() may race with it and then sees "" or the whole text.
#ifndef MEMLOAD_AGENT_WORKER_SHARED_H_
#define MEMLOAD_AGENT_WORKER_SHARED_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/plan_counters.h"

namespace memload {
namespace agent {

// The descriptors a worker finds its inputs on: the serialized WorkerSpec (a memfd), the
// WorkerShared block (a memfd), and the control pipe ("target N", "ceiling N", "stop").
inline constexpr int kSpecFd = 3;
inline constexpr int kSharedFd = 4;
inline constexpr int kControlFd = 5;

struct WorkerShared {
  static constexpr uint64_t kMagic = 0x314b524f574c4d4dull;  // "MMLWORK1", little-endian.
  // Bumped whenever the layout changes: an agent and a worker binary of different builds
  // refuse each other instead of misreading fields.
  static constexpr uint32_t kVersion = 1;
  static constexpr size_t kErrorCapacity = 2048;
  // Fixed-point scale of the percentages below (so they fit lock-free integer atomics).
  static constexpr int64_t kPercentScale = 1000000;

  // Header, written by the agent before the worker starts.
  uint64_t magic = kMagic;
  uint32_t version = kVersion;
  uint32_t size = sizeof(WorkerShared);

  // The plan's live numbers.
  PlanCounters counters;

  // WorkerExtras. 0 = not reached yet.
  std::atomic<int64_t> target_reached_unix_nanos{0};
  // Utilization plans, percent × kPercentScale.
  std::atomic<int64_t> utilization_micro_percent{0};
  std::atomic<int64_t> max_deviation_micro_percent{0};

  // Why the worker failed: error_length bytes of error_text, published by the length's
  // release store after the text is written.
  std::atomic<uint32_t> error_length{0};
  char error_text[kErrorCapacity] = {};

  bool Valid() const { return magic == kMagic && version == kVersion && size == sizeof(*this); }

  void SetTargetReached(absl::Time when) {
    target_reached_unix_nanos.store(absl::ToUnixNanos(when), std::memory_order_release);
  }
  std::optional<absl::Time> TargetReached() const {
    const int64_t nanos = target_reached_unix_nanos.load(std::memory_order_acquire);
    if (nanos == 0) return std::nullopt;
    return absl::FromUnixNanos(nanos);
  }

  static int64_t ToMicroPercent(double percent) {
    return static_cast<int64_t>(percent * kPercentScale);
  }
  static double FromMicroPercent(int64_t value) {
    return static_cast<double>(value) / kPercentScale;
  }

  // Truncated to kErrorCapacity bytes.
  void SetError(absl::string_view text) {
    const size_t length = std::min(text.size(), kErrorCapacity);
    std::memcpy(error_text, text.data(), length);
    error_length.store(static_cast<uint32_t>(length), std::memory_order_release);
  }
  std::string Error() const {
    // Clamped: the reader trusts nothing a (possibly buggy) other process wrote.
    const size_t length =
        std::min<size_t>(error_length.load(std::memory_order_acquire), kErrorCapacity);
    return std::string(error_text, length);
  }
};

static_assert(std::atomic<int64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "WorkerShared's atomics must be lock-free to work across processes");

// Bytes the agent gives the memfd and both sides map: WorkerShared rounded up to 4 KiB.
inline constexpr size_t kWorkerSharedMappingSize = (sizeof(WorkerShared) + 4095) / 4096 * 4096;

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_WORKER_SHARED_H_
