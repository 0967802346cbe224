// CountingAllocator (tests only): wraps a BlockAllocator and counts what goes through it,
// and can be told to fail after N allocations to exercise out-of-memory paths.
//
// Thread-safety: thread-safe (atomic counters) when the wrapped allocator is.
#ifndef MEMLOAD_CORE_TESTING_COUNTING_ALLOCATOR_H_
#define MEMLOAD_CORE_TESTING_COUNTING_ALLOCATOR_H_

#include <atomic>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/block_allocator.h"

namespace memload {

class CountingAllocator final : public BlockAllocator {
 public:
  explicit CountingAllocator(BlockAllocator* inner) : inner_(inner) {}

  // Allocations after the first `n` successful ones fail with ResourceExhausted.
  void FailAfter(uint64_t n) { fail_after_.store(n); }

  absl::StatusOr<void*> Allocate(size_t size) override {
    if (allocations_.load() >= fail_after_.load()) {
      ++refusals_;
      return absl::ResourceExhaustedError(absl::StrCat("injected failure for ", size, " bytes"));
    }
    absl::StatusOr<void*> block = inner_->Allocate(size);
    if (block.ok()) {
      ++allocations_;
      live_bytes_ += size;
    }
    return block;
  }

  void Free(void* block, size_t size) override {
    ++frees_;
    live_bytes_ -= size;
    inner_->Free(block, size);
  }

  size_t MappedSize(size_t size) const override { return inner_->MappedSize(size); }

  uint64_t allocations() const { return allocations_.load(); }
  uint64_t frees() const { return frees_.load(); }
  uint64_t refusals() const { return refusals_.load(); }
  uint64_t live_bytes() const { return live_bytes_.load(); }

 private:
  BlockAllocator* const inner_;
  std::atomic<uint64_t> fail_after_{std::numeric_limits<uint64_t>::max()};
  std::atomic<uint64_t> allocations_{0};
  std::atomic<uint64_t> frees_{0};
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> live_bytes_{0};
};

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_COUNTING_ALLOCATOR_H_
