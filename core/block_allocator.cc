#include "core/block_allocator.h"

#include <errno.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/sync/mutex.h"
#include "core/touch.h"
#include "gperftools/malloc_extension.h"  // Declarations only: calls go through a weak reference.

namespace memload {

absl::StatusOr<Backing> ParseBacking(absl::string_view text) {
  if (text == "malloc") return Backing::kMalloc;
  if (text == "mmap") return Backing::kMmap;
  if (text == "shmem") return Backing::kShmem;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid backing \"", text, "\": want malloc, mmap or shmem"));
}

absl::string_view BackingName(Backing backing) {
  switch (backing) {
    case Backing::kMalloc:
      return "malloc";
    case Backing::kMmap:
      return "mmap";
    case Backing::kShmem:
      return "shmem";
  }
  return "unknown";
}

extern "C" {
// Defined only when the replacement allocator is linked or preloaded (weak: null otherwise).
// mimalloc 2.0's mi_option_t values (Debian 12: 2.0.9), from its mimalloc.h; the process-
// allocator test fails if they drift (RSS would not drop).
void mi_collect(bool force) __attribute__((weak));
long mi_option_get(int option) __attribute__((weak));
void mi_option_set(int option, long value) __attribute__((weak));
void MallocExtension_ReleaseFreeMemory(void) __attribute__((weak));
void MallocExtension_MarkThreadIdle(void) __attribute__((weak));
int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));
}

// gperftools' MallocExtension::instance(), the one way to its release rate (the C API has no
// setter), named by its symbol so that the reference can be weak like the C ones above.
MallocExtension* GperftoolsMallocExtension() __asm__("_ZN15MallocExtension8instanceEv")
    __attribute__((weak));

namespace {

constexpr int kMiOptionDecommitDelay = 15;         // mi_option_decommit_delay
constexpr int kMiOptionSegmentDecommitDelay = 23;  // mi_option_segment_decommit_delay

Mutex bulk_free_mutex;
int bulk_free_depth ABSL_GUARDED_BY(bulk_free_mutex) = 0;
long saved_decommit_delay ABSL_GUARDED_BY(bulk_free_mutex) = 0;
long saved_segment_decommit_delay ABSL_GUARDED_BY(bulk_free_mutex) = 0;

bool HaveMimalloc() {
  return mi_collect != nullptr && mi_option_get != nullptr && mi_option_set != nullptr;
}

}  // namespace

void BeginMallocBulkFree() {
  if (!HaveMimalloc()) return;
  MutexLock lock(&bulk_free_mutex);
  if (bulk_free_depth++ > 0) return;
  saved_decommit_delay = mi_option_get(kMiOptionDecommitDelay);
  saved_segment_decommit_delay = mi_option_get(kMiOptionSegmentDecommitDelay);
  mi_option_set(kMiOptionDecommitDelay, 0);
  mi_option_set(kMiOptionSegmentDecommitDelay, 0);
}

void EndMallocBulkFree() {
  if (HaveMimalloc()) {
    mi_collect(true);
    MutexLock lock(&bulk_free_mutex);
    if (bulk_free_depth > 0 && --bulk_free_depth == 0) {
      mi_option_set(kMiOptionDecommitDelay, saved_decommit_delay);
      mi_option_set(kMiOptionSegmentDecommitDelay, saved_segment_decommit_delay);
    }
  } else if (MallocExtension_ReleaseFreeMemory != nullptr) {
    // tcmalloc: this thread's cache first (the freed blocks sit there, up to a few MiB of
    // them, out of reach of the release), then every free span to the OS.
    if (MallocExtension_MarkThreadIdle != nullptr) MallocExtension_MarkThreadIdle();
    MallocExtension_ReleaseFreeMemory();
  } else if (mallctl != nullptr) {
    // 4096 is MALLCTL_ARENAS_ALL: every arena.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
  } else {
    malloc_trim(0);
  }
}

// UBSan's vptr check of a call through MallocExtension needs its type info, which only
// tcmalloc defines (and sanitizer builds never link it): not checked here.
#if defined(__clang__)
#define MEMLOAD_NO_VPTR_CHECK __attribute__((no_sanitize("vptr")))
#else
#define MEMLOAD_NO_VPTR_CHECK
#endif

MEMLOAD_NO_VPTR_CHECK bool KeepFreedMallocMemory() {
  if (GperftoolsMallocExtension == nullptr) return false;
  GperftoolsMallocExtension()->SetMemoryReleaseRate(0);
  return true;
}

MEMLOAD_NO_VPTR_CHECK double MallocReleaseRate() {
  if (GperftoolsMallocExtension == nullptr) return -1;
  return GperftoolsMallocExtension()->GetMemoryReleaseRate();
}

absl::Status MallocFailed(size_t size) {
  return absl::ResourceExhaustedError(absl::StrCat("malloc of ", size, " bytes failed"));
}

void* AllocateBlockSlow(BlockAllocator* allocator, size_t size, absl::Status* error) {
  if (allocator->is_plain_malloc()) {  // AllocateBlock's malloc already failed.
    *error = MallocFailed(size);
    return nullptr;
  }
  absl::StatusOr<void*> block = allocator->Allocate(size);
  if (!block.ok()) {
    *error = block.status();
    return nullptr;
  }
  return *block;
}

namespace {

size_t RoundUpToPages(size_t size) {
  const size_t page = PageSize();
  return (size + page - 1) & ~(page - 1);
}

std::string MemlockLimitText() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return "unknown";
  if (limit.rlim_cur == RLIM_INFINITY) return "unlimited";
  return absl::StrCat(limit.rlim_cur, " bytes");
}

// Applies huge-page advice and mlock to [data, data + size). On an mlock refusal returns
// the status; the caller frees the block.
absl::Status ApplyOptions(void* data, size_t size, const AllocatorOptions& options) {
  if (options.huge_pages) {
    // Only the page-aligned interior can be advised; malloc blocks may start mid-page.
    const uintptr_t page = PageSize();
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(page - 1);
    if (end > begin) {
      // Advice only: a kernel without THP says EINVAL, and the load is still correct.
      madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    }
  }
  if (options.mlock && ::mlock(data, size) != 0) {
    const int error = errno;
    return absl::ResourceExhaustedError(absl::StrCat(
        "mlock of ", size, " bytes refused (", std::strerror(error), "); RLIMIT_MEMLOCK is ",
        MemlockLimitText(), ": raise it (ulimit -l, LimitMEMLOCK=) or grant CAP_IPC_LOCK"));
  }
  return absl::OkStatus();
}

// The end of a mapping allocator's Allocate: `block` is what mmap just returned for a
// block of `size` bytes (`what` names them in the error: "bytes", "shmem bytes"). A failed
// mapping is ResourceExhausted with errno's text; otherwise `options` are applied to the
// block, which goes back through `allocator`->Free if they fail.
absl::StatusOr<void*> MappedBlock(void* block, size_t size, absl::string_view what,
                                  const AllocatorOptions& options, BlockAllocator* allocator) {
  if (block == MAP_FAILED) {
    const int error = errno;
    return absl::ResourceExhaustedError(
        absl::StrCat("mmap of ", size, " ", what, " failed: ", std::strerror(error)));
  }
  absl::Status status = ApplyOptions(block, size, options);
  if (!status.ok()) {
    allocator->Free(block, size);
    return status;
  }
  return block;
}

class MallocAllocator final : public BlockAllocator {
 public:
  constexpr explicit MallocAllocator(AllocatorOptions options) : options_(options) {
    plain_malloc_ = !options.huge_pages && !options.mlock;
  }

  absl::StatusOr<void*> Allocate(size_t size) override {
    void* block = std::malloc(size);
    if (block == nullptr) return MallocFailed(size);
    if (options_.huge_pages || options_.mlock) {
      absl::Status status = ApplyOptions(block, size, options_);
      if (!status.ok()) {
        std::free(block);
        return status;
      }
    }
    return block;
  }

  void Free(void* block, size_t size) override {
    if (options_.mlock) munlock(block, size);
    std::free(block);
  }

  size_t MappedSize(size_t size) const override { return size; }

  void BeginBulkFree() override { BeginMallocBulkFree(); }
  void EndBulkFree() override { EndMallocBulkFree(); }

 private:
  const AllocatorOptions options_;
};

class MmapAllocator final : public BlockAllocator {
 public:
  constexpr explicit MmapAllocator(AllocatorOptions options) : options_(options) {
    fresh_pages_ = true;
  }

  absl::StatusOr<void*> Allocate(size_t size) override {
    void* block = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return MappedBlock(block, size, "bytes", options_, this);
  }

  void Free(void* block, size_t size) override { munmap(block, size); }

  size_t MappedSize(size_t size) const override { return RoundUpToPages(size); }

 private:
  const AllocatorOptions options_;
};

class ShmemAllocator final : public BlockAllocator {
 public:
  ShmemAllocator(int fd, AllocatorOptions options) : fd_(fd), options_(options) {
    fresh_pages_ = true;
  }
  ~ShmemAllocator() override { close(fd_); }

  absl::StatusOr<void*> Allocate(size_t size) override {
    const size_t mapped = RoundUpToPages(size);
    off_t offset;
    {
      // Each block gets its own page-aligned range of the file; freed ranges are punched
      // out (MADV_REMOVE), so the file's size only grows while its memory follows the live
      // blocks. The lock keeps concurrent growth from shrinking the file under a block.
      MutexLock lock(&mutex_);
      offset = file_end_;
      if (ftruncate(fd_, offset + static_cast<off_t>(mapped)) != 0) {
        const int error = errno;
        return absl::ResourceExhaustedError(absl::StrCat("growing the shmem file to ",
                                                         offset + mapped,
                                                         " bytes failed: ", std::strerror(error)));
      }
      file_end_ += static_cast<off_t>(mapped);
    }
    void* block = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, offset);
    return MappedBlock(block, size, "shmem bytes", options_, this);
  }

  void Free(void* block, size_t size) override {
    const size_t mapped = RoundUpToPages(size);
    // MADV_REMOVE refuses (EINVAL) a locked range, which would leave the pages in the file.
    if (options_.mlock) munlock(block, mapped);
    // Drop the pages from the file too: unmapping alone would leave them in the page cache.
    madvise(block, mapped, MADV_REMOVE);
    munmap(block, mapped);
  }

  size_t MappedSize(size_t size) const override { return RoundUpToPages(size); }

 private:
  const int fd_;
  const AllocatorOptions options_;
  Mutex mutex_;
  off_t file_end_ ABSL_GUARDED_BY(mutex_) = 0;
};

// Holds an allocator that is never destroyed: threads may still use a shared allocator
// while the process runs its exit-time destructors.
template <typename Allocator>
union Immortal {
  constexpr explicit Immortal(AllocatorOptions options) : allocator(options) {}
  ~Immortal() {}
  Allocator allocator;
};

// One instance per (backing, options) combination, index huge_pages + 2 × mlock. Constant-
// initialized (constexpr constructors), so SharedBlockAllocator needs no static guard and
// works even from other files' static initializers.
Immortal<MallocAllocator> malloc_allocators[4] = {
    Immortal<MallocAllocator>({false, false}), Immortal<MallocAllocator>({true, false}),
    Immortal<MallocAllocator>({false, true}), Immortal<MallocAllocator>({true, true})};
Immortal<MmapAllocator> mmap_allocators[4] = {
    Immortal<MmapAllocator>({false, false}), Immortal<MmapAllocator>({true, false}),
    Immortal<MmapAllocator>({false, true}), Immortal<MmapAllocator>({true, true})};

}  // namespace

BlockAllocator* const kPlainMallocAllocator = &malloc_allocators[0].allocator;

BlockAllocator* SharedBlockAllocator(Backing backing, const AllocatorOptions& options) {
  const int index = (options.huge_pages ? 1 : 0) + (options.mlock ? 2 : 0);
  switch (backing) {
    case Backing::kMalloc:
      return &malloc_allocators[index].allocator;
    case Backing::kMmap:
      return &mmap_allocators[index].allocator;
    case Backing::kShmem:
      return nullptr;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<BlockAllocator>> MakeShmemAllocator(
    const AllocatorOptions& options) {
  const int fd = memfd_create("memload-shmem", MFD_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return absl::ResourceExhaustedError(
        absl::StrCat("memfd_create failed: ", std::strerror(error)));
  }
  return std::unique_ptr<BlockAllocator>(new ShmemAllocator(fd, options));
}

}  // namespace memload
