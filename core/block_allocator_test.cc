#include "core/block_allocator.h"

#include <dirent.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/resident.h"
#include "core/testing/own_memory.h"
#include "core/testing/sanitizers.h"
#include "core/testing/status_matchers.h"
#include "core/touch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/sizes.h"

namespace memload {
namespace {

using ::memload::testing::kMiB;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The memload memfds this process has open: how many, and the bytes their files hold
// (st_blocks, i.e. pages in the page cache, not the file size).
struct MemfdUsage {
  int files = 0;
  uint64_t bytes = 0;
};
MemfdUsage MemloadMemfds() {
  MemfdUsage usage;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return usage;
  while (struct dirent* entry = readdir(dir)) {
    const std::string path = std::string("/proc/self/fd/") + entry->d_name;
    char target[256];
    const ssize_t length = readlink(path.c_str(), target, sizeof(target) - 1);
    if (length <= 0) continue;
    target[length] = '\0';
    if (std::strstr(target, "memfd:memload-shmem") == nullptr) continue;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    ++usage.files;
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  closedir(dir);
  return usage;
}

// The VmFlags line of the /proc/self/smaps entry that contains `address` ("" if none).
std::string VmFlagsAt(const void* address) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(address);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    uintptr_t begin, end;
    char dash;
    std::istringstream header(line);
    if (line.find(':') > line.find(' ') && (header >> std::hex >> begin >> dash >> end) &&
        dash == '-') {
      inside = begin <= at && at < end;
    } else if (inside && line.compare(0, 8, "VmFlags:") == 0) {
      return line;
    }
  }
  return "";
}

uint64_t Resident(const void* data, size_t size) {
  return ResidentBytes({{data, size}}).value_or(~uint64_t{0});
}

TEST(BackingTest, NamesRoundTrip) {
  for (Backing backing : {Backing::kMalloc, Backing::kMmap, Backing::kShmem}) {
    absl::StatusOr<Backing> parsed = ParseBacking(BackingName(backing));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(*parsed, backing);
  }
  EXPECT_EQ(BackingName(Backing::kMalloc), "malloc");
  EXPECT_EQ(BackingName(Backing::kMmap), "mmap");
  EXPECT_EQ(BackingName(Backing::kShmem), "shmem");
}

TEST(BackingTest, UnknownTextIsInvalidArgumentNamingIt) {
  for (const char* text : {"", "MMAP", "heap", "shm"}) {
    EXPECT_THAT(ParseBacking(text), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("\"" + std::string(text) + "\"")));
  }
}

TEST(SharedBlockAllocatorTest, OneInstancePerBackingAndOptions) {
  std::set<BlockAllocator*> seen;
  for (Backing backing : {Backing::kMalloc, Backing::kMmap}) {
    for (bool huge : {false, true}) {
      for (bool lock : {false, true}) {
        BlockAllocator* allocator = SharedBlockAllocator(backing, {huge, lock});
        ASSERT_NE(allocator, nullptr);
        EXPECT_EQ(allocator, SharedBlockAllocator(backing, {huge, lock}));
        seen.insert(allocator);
      }
    }
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_EQ(SharedBlockAllocator(Backing::kShmem, {}), nullptr);
}

TEST(MallocAllocatorTest, AllocatesWritableBlocksAndFreesThem) {
  BlockAllocator* allocator = SharedBlockAllocator(Backing::kMalloc, {});
  for (size_t size : {size_t{1}, size_t{24}, PageSize() + 1, kMiB}) {
    absl::StatusOr<void*> block = allocator->Allocate(size);
    ASSERT_THAT(block, IsOk());
    ASSERT_NE(*block, nullptr);
    std::memset(*block, 0x5A, size);
    EXPECT_EQ(allocator->MappedSize(size), size);
    allocator->Free(*block, size);
  }
}

TEST(MmapAllocatorTest, BlocksArePageAlignedUntouchedAndUnmappedOnFree) {
  BlockAllocator* allocator = SharedBlockAllocator(Backing::kMmap, {});
  const size_t page = PageSize();
  EXPECT_EQ(allocator->MappedSize(1), page);
  EXPECT_EQ(allocator->MappedSize(page), page);
  EXPECT_EQ(allocator->MappedSize(page + 1), 2 * page);
  EXPECT_EQ(allocator->MappedSize(kMiB), kMiB);
  for (size_t size : {size_t{1}, page + 1, kMiB}) {
    absl::StatusOr<void*> block = allocator->Allocate(size);
    ASSERT_THAT(block, IsOk());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(*block) % page, 0u);
    const size_t mapped = allocator->MappedSize(size);
    EXPECT_EQ(Resident(*block, mapped), 0u) << "a fresh mapping is virtual only";
    std::memset(*block, 1, size);
    EXPECT_EQ(Resident(*block, mapped), mapped);
    allocator->Free(*block, size);
    EXPECT_THAT(ResidentBytes({{*block, mapped}}), Not(IsOk())) << "still mapped after Free";
  }
}

// A mapping the address space cannot hold (128 TiB, all of x86-64's user space): the
// mapping allocators' one error, naming the size and errno's text.
TEST(MappingAllocatorsTest, AFailedMappingIsResourceExhaustedNamingTheSize) {
  constexpr size_t kTooLarge = size_t{1} << 47;
  EXPECT_THAT(SharedBlockAllocator(Backing::kMmap, {})->Allocate(kTooLarge),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("mmap of 140737488355328 bytes failed: ")));
  absl::StatusOr<std::unique_ptr<BlockAllocator>> shmem = MakeShmemAllocator({});
  ASSERT_THAT(shmem, IsOk());
  EXPECT_THAT((*shmem)->Allocate(kTooLarge),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("mmap of 140737488355328 shmem bytes failed: ")));
}

TEST(ShmemAllocatorTest, MemoryIsShmemWhileHeldAndGoneAfterFree) {
  absl::StatusOr<std::unique_ptr<BlockAllocator>> allocator = MakeShmemAllocator({});
  ASSERT_THAT(allocator, IsOk());
  const size_t size = 16 * kMiB;
  const uint64_t shmem_before = OwnMemory().rss_shmem_bytes;
  const uint64_t anon_before = OwnMemory().rss_anon_bytes;
  absl::StatusOr<void*> block = (*allocator)->Allocate(size);
  ASSERT_THAT(block, IsOk());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*block) % PageSize(), 0u);
  EXPECT_EQ((*allocator)->MappedSize(size), size);
  EXPECT_LT(OwnMemory().rss_shmem_bytes, shmem_before + kMiB) << "untouched, still virtual";

  EXPECT_EQ(TouchBlock(*block, size, TouchMode::kPage, 1), size);
  EXPECT_GE(OwnMemory().rss_shmem_bytes, shmem_before + size);
  if (!kThreadSanitizer) {
    EXPECT_LT(OwnMemory().rss_anon_bytes, anon_before + 4 * kMiB) << "shmem is not anonymous";
  }
  EXPECT_EQ(MemloadMemfds().bytes, size);
  EXPECT_EQ(Resident(*block, size), size);

  (*allocator)->Free(*block, size);
  EXPECT_LE(OwnMemory().rss_shmem_bytes, shmem_before);
  EXPECT_EQ(MemloadMemfds().bytes, 0u) << "freed pages must leave the file too";
}

TEST(ShmemAllocatorTest, BlocksGetDistinctRangesOfTheFile) {
  absl::StatusOr<std::unique_ptr<BlockAllocator>> allocator = MakeShmemAllocator({});
  ASSERT_THAT(allocator, IsOk());
  const size_t size = 3 * PageSize() + 1;  // Not a whole number of pages.
  EXPECT_EQ((*allocator)->MappedSize(size), 4 * PageSize());
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<void*> block = (*allocator)->Allocate(size);
    ASSERT_THAT(block, IsOk());
    std::memset(*block, 'a' + i, size);
    blocks.push_back(*block);
  }
  for (int i = 0; i < 4; ++i) {
    const char* bytes = static_cast<const char*>(blocks[i]);
    EXPECT_EQ(std::string(bytes, size), std::string(size, 'a' + i)) << "block " << i;
  }
  EXPECT_EQ(MemloadMemfds().bytes, 4 * (*allocator)->MappedSize(size));
  for (void* block : blocks) (*allocator)->Free(block, size);
  EXPECT_EQ(MemloadMemfds().bytes, 0u);
}

TEST(ShmemAllocatorTest, ConcurrentAllocationsDoNotOverlap) {
  absl::StatusOr<std::unique_ptr<BlockAllocator>> allocator = MakeShmemAllocator({});
  ASSERT_THAT(allocator, IsOk());
  constexpr int kThreads = 4;
  constexpr int kBlocksPerThread = 16;
  const size_t size = PageSize();
  std::vector<std::vector<void*>> blocks(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlocksPerThread; ++i) {
        absl::StatusOr<void*> block = (*allocator)->Allocate(size);
        if (!block.ok()) return;
        std::memset(*block, t * kBlocksPerThread + i, size);
        blocks[t].push_back(*block);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(blocks[t].size(), size_t{kBlocksPerThread});
    for (int i = 0; i < kBlocksPerThread; ++i) {
      const unsigned char* bytes = static_cast<const unsigned char*>(blocks[t][i]);
      EXPECT_EQ(bytes[0], t * kBlocksPerThread + i);
      EXPECT_EQ(bytes[size - 1], t * kBlocksPerThread + i);
      (*allocator)->Free(blocks[t][i], size);
    }
  }
  EXPECT_EQ(MemloadMemfds().bytes, 0u);
}

TEST(ShmemAllocatorTest, DestroyingTheAllocatorClosesItsFile) {
  const int files_before = MemloadMemfds().files;
  {
    absl::StatusOr<std::unique_ptr<BlockAllocator>> allocator = MakeShmemAllocator({});
    ASSERT_THAT(allocator, IsOk());
    EXPECT_EQ(MemloadMemfds().files, files_before + 1);
  }
  EXPECT_EQ(MemloadMemfds().files, files_before);
}

// Allocators with `mlock` for each backing; the shmem one is kept alive by `owned`.
BlockAllocator* LockingAllocator(Backing backing, std::unique_ptr<BlockAllocator>* owned) {
  const AllocatorOptions options{/*huge_pages=*/false, /*mlock=*/true};
  if (backing != Backing::kShmem) return SharedBlockAllocator(backing, options);
  absl::StatusOr<std::unique_ptr<BlockAllocator>> shmem = MakeShmemAllocator(options);
  if (!shmem.ok()) return nullptr;
  *owned = std::move(*shmem);
  return owned->get();
}

class MlockTest : public ::testing::TestWithParam<Backing> {};

TEST_P(MlockTest, LocksEachBlockAndUnlocksItOnFree) {
  // Needs RLIMIT_MEMLOCK >= 64 KiB or CAP_IPC_LOCK (root in the test sandbox).
  if (kMlockIsNoop) GTEST_SKIP() << "mlock is a no-op under sanitizers";
  std::unique_ptr<BlockAllocator> owned;
  BlockAllocator* allocator = LockingAllocator(GetParam(), &owned);
  ASSERT_NE(allocator, nullptr);
  const size_t size = 64 << 10;
  const uint64_t locked_before = OwnMemory().vm_lck_bytes;
  absl::StatusOr<void*> block = allocator->Allocate(size);
  ASSERT_THAT(block, IsOk());
  EXPECT_GE(OwnMemory().vm_lck_bytes, locked_before + size);
  EXPECT_GE(Resident(*block, size), size) << "mlock faults every page in";
  allocator->Free(*block, size);
  EXPECT_EQ(OwnMemory().vm_lck_bytes, locked_before);
  if (GetParam() == Backing::kShmem) {
    EXPECT_EQ(MemloadMemfds().bytes, 0u) << "a locked shmem block's pages must leave the file";
  }
}

// Drops CAP_IPC_LOCK from this process (root keeps every other capability), so that
// RLIMIT_MEMLOCK applies to it.
bool DropIpcLock() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  if (syscall(SYS_capget, &header, data) != 0) return false;
  const uint32_t bit = 1u << (CAP_IPC_LOCK % 32);
  data[CAP_IPC_LOCK / 32].effective &= ~bit;
  data[CAP_IPC_LOCK / 32].permitted &= ~bit;
  data[CAP_IPC_LOCK / 32].inheritable &= ~bit;
  return syscall(SYS_capset, &header, data) == 0;
}

// Runs `body` in a fork()ed child and returns its exit code (or 100 + signal).
int RunInChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -2;
  if (WIFSIGNALED(status)) return 100 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

TEST_P(MlockTest, RefusalByRlimitMemlockIsResourceExhaustedNamingIt) {
  if (kMlockIsNoop) GTEST_SKIP() << "mlock is a no-op under sanitizers";
  const Backing backing = GetParam();
  const int code = RunInChild([backing]() -> int {
    const struct rlimit limit = {64 << 10, 64 << 10};
    if (setrlimit(RLIMIT_MEMLOCK, &limit) != 0) return 10;
    if (!DropIpcLock()) return 11;
    std::unique_ptr<BlockAllocator> owned;
    BlockAllocator* allocator = LockingAllocator(backing, &owned);
    if (allocator == nullptr) return 12;
    // Within the limit, locking works.
    absl::StatusOr<void*> small = allocator->Allocate(16 << 10);
    if (!small.ok()) return 13;
    allocator->Free(*small, 16 << 10);
    const uint64_t vm_before = OwnMemory().vm_size_bytes;
    absl::StatusOr<void*> big = allocator->Allocate(kMiB);
    if (big.ok()) return 14;
    if (big.status().code() != absl::StatusCode::kResourceExhausted) return 15;
    const std::string message(big.status().message());
    if (message.find("RLIMIT_MEMLOCK is 65536 bytes") == std::string::npos) return 16;
    if (message.find("1048576 bytes") == std::string::npos) return 17;
    if (OwnMemory().vm_lck_bytes != 0) return 18;
    // The refused block was given back (malloc may keep it in its own free lists).
    if (backing != Backing::kMalloc && OwnMemory().vm_size_bytes >= vm_before + kMiB) return 19;
    if (backing == Backing::kShmem && MemloadMemfds().bytes != 0) return 20;
    return 0;
  });
  EXPECT_EQ(code, 0) << "see the return codes in the child's body";
}

INSTANTIATE_TEST_SUITE_P(AllBackings, MlockTest,
                         ::testing::Values(Backing::kMalloc, Backing::kMmap, Backing::kShmem),
                         [](const ::testing::TestParamInfo<Backing>& info) {
                           return std::string(BackingName(info.param));
                         });

TEST(HugePagesTest, MmapBlockIsAdvisedForTransparentHugePages) {
  BlockAllocator* allocator = SharedBlockAllocator(Backing::kMmap, {/*huge_pages=*/true, false});
  const size_t size = 4 * kMiB;
  absl::StatusOr<void*> block = allocator->Allocate(size);
  ASSERT_THAT(block, IsOk());
  EXPECT_EQ(TouchBlock(*block, size, TouchMode::kPage, 1), size);
  EXPECT_EQ(Resident(*block, size), size);
  // Advice only: whether THP backs it is the kernel's choice, but the flag must be set
  // ("hg" = VM_HUGEPAGE in smaps).
  EXPECT_THAT(VmFlagsAt(*block), HasSubstr(" hg"));
  allocator->Free(*block, size);

  // Without the option there is no advice.
  BlockAllocator* plain = SharedBlockAllocator(Backing::kMmap, {});
  block = plain->Allocate(size);
  ASSERT_THAT(block, IsOk());
  EXPECT_THAT(VmFlagsAt(*block), AllOf(HasSubstr("VmFlags:"), Not(HasSubstr(" hg"))));
  plain->Free(*block, size);
}

TEST(HugePagesTest, MallocBlockInteriorIsAdvised) {
  BlockAllocator* allocator = SharedBlockAllocator(Backing::kMalloc, {/*huge_pages=*/true, false});
  const size_t size = 4 * kMiB;
  absl::StatusOr<void*> block = allocator->Allocate(size);
  ASSERT_THAT(block, IsOk());
  std::memset(*block, 1, size);
  const uintptr_t page = PageSize();
  const uintptr_t interior = (reinterpret_cast<uintptr_t>(*block) + page) & ~(page - 1);
  EXPECT_THAT(VmFlagsAt(reinterpret_cast<void*>(interior)), HasSubstr(" hg"));
  allocator->Free(*block, size);
}

TEST(HugePagesTest, ShmemBlockWithHugePagesWorks) {
  absl::StatusOr<std::unique_ptr<BlockAllocator>> allocator =
      MakeShmemAllocator({/*huge_pages=*/true, false});
  ASSERT_THAT(allocator, IsOk());
  const size_t size = 4 * kMiB;
  absl::StatusOr<void*> block = (*allocator)->Allocate(size);
  ASSERT_THAT(block, IsOk());
  EXPECT_EQ(TouchBlock(*block, size, TouchMode::kPage, 1), size);
  EXPECT_EQ(Resident(*block, size), size);
  (*allocator)->Free(*block, size);
  EXPECT_EQ(MemloadMemfds().bytes, 0u);
}

}  // namespace
}  // namespace memload
