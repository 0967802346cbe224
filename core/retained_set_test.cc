#include "core/retained_set.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/block_allocator.h"
#include "core/testing/counting_allocator.h"
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
using ::testing::_;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// glibc adapts its mmap threshold and keeps freed heap memory (untrimmed, still resident),
// so what a malloc-backed set finds depends on what earlier tests freed. Pinning the
// threshold before main() makes every 1 MiB block its own fresh mapping, returned on free,
// so resident/RSS figures measure RetainedSet and not the allocator's history. (A no-op
// under ASan, whose allocator maps large blocks anyway.)
const int kPinnedMmapThreshold = mallopt(M_MMAP_THRESHOLD, 128 << 10);

uint64_t Resident(const RetainedSet& set) { return set.ResidentBytes().value_or(kMax); }

RetainedSetOptions Options(uint64_t block_size, TouchMode touch, Backing backing) {
  RetainedSetOptions options;
  options.block_size = block_size;
  options.touch = touch;
  options.backing = backing;
  return options;
}

// Malloc-backed options whose allocator is `counting`.
RetainedSetOptions Counted(CountingAllocator* counting, uint64_t block_size = 64,
                           TouchMode touch = TouchMode::kPage) {
  RetainedSetOptions options = Options(block_size, touch, Backing::kMalloc);
  options.allocator = counting;
  return options;
}

class RetainedSetBackingTest : public ::testing::TestWithParam<Backing> {};

TEST_P(RetainedSetBackingTest, PageTouchIsResidentByTheOsAndReleaseGivesItBack) {
  const uint64_t size = 64 * kMiB;
  const uint64_t anon_before = OwnMemory().rss_anon_bytes;
  absl::StatusOr<RetainedSet> set =
      RetainedSet::Create(Options(kMiB, TouchMode::kPage, GetParam()), 64);
  ASSERT_THAT(set, IsOk());
  EXPECT_EQ(set->block_count(), 64u);
  EXPECT_GE(Resident(*set), size);
  EXPECT_LT(Resident(*set), size + 64 * 2 * PageSize());
  EXPECT_GE(OwnMemory().rss_anon_bytes, anon_before + 60 * kMiB);
  EXPECT_EQ(set->stats().bytes_touched, size);

  set->Release();
  EXPECT_EQ(set->block_count(), 0u);
  EXPECT_EQ(Resident(*set), 0u);
  if (GetParam() != Backing::kMalloc || !kAddressSanitizer) {
    EXPECT_LE(OwnMemory().rss_anon_bytes, anon_before + 4 * kMiB);
  }
}

TEST_P(RetainedSetBackingTest, NoTouchStaysVirtual) {
  const uint64_t anon_before = OwnMemory().rss_anon_bytes;
  absl::StatusOr<RetainedSet> set =
      RetainedSet::Create(Options(kMiB, TouchMode::kNone, GetParam()), 64);
  ASSERT_THAT(set, IsOk());
  EXPECT_EQ(set->stats().bytes_touched, 0u);
  if (GetParam() == Backing::kMmap) {
    EXPECT_EQ(Resident(*set), 0u);
  } else {
    // glibc writes its chunk header in the page where the block starts: at most one page
    // a block. ASan instead fills the first 4 KiB of every block, from mid-page: two.
    EXPECT_LE(Resident(*set), (kAddressSanitizer ? 2 : 1) * 64 * PageSize());
  }
  EXPECT_LT(OwnMemory().rss_anon_bytes, anon_before + 8 * kMiB);
}

TEST_P(RetainedSetBackingTest, FillIsResidentAndDiffersBetweenBlocks) {
  absl::StatusOr<RetainedSet> set =
      RetainedSet::Create(Options(kMiB, TouchMode::kFill, GetParam()), 16);
  ASSERT_THAT(set, IsOk());
  EXPECT_GE(Resident(*set), 16 * kMiB);
  EXPECT_EQ(set->stats().bytes_touched, 16 * kMiB);
}

INSTANTIATE_TEST_SUITE_P(MallocAndMmap, RetainedSetBackingTest,
                         ::testing::Values(Backing::kMalloc, Backing::kMmap),
                         [](const ::testing::TestParamInfo<Backing>& info) {
                           return std::string(BackingName(info.param));
                         });

TEST(RetainedSetTest, FillWritesADifferentPatternInEveryBlock) {
  RetainedSetOptions options = Options(PageSize(), TouchMode::kFill, Backing::kMmap);
  // The set does not expose its blocks: an allocator wrapper records them.
  struct Recorder final : BlockAllocator {
    explicit Recorder(BlockAllocator* inner) : inner(inner) {}
    absl::StatusOr<void*> Allocate(size_t size) override {
      absl::StatusOr<void*> block = inner->Allocate(size);
      if (block.ok()) blocks.push_back(static_cast<const char*>(*block));
      return block;
    }
    void Free(void* block, size_t size) override { inner->Free(block, size); }
    size_t MappedSize(size_t size) const override { return inner->MappedSize(size); }
    BlockAllocator* inner;
    std::vector<const char*> blocks;
  } recorder(SharedBlockAllocator(Backing::kMmap, {}));
  options.allocator = &recorder;
  absl::StatusOr<RetainedSet> set = RetainedSet::Create(options, 8);
  ASSERT_THAT(set, IsOk());
  ASSERT_EQ(recorder.blocks.size(), 8u);
  const std::string zeros(PageSize(), '\0');
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_NE(std::string(recorder.blocks[i], PageSize()), zeros);
    for (size_t j = i + 1; j < 8; ++j) {
      EXPECT_NE(std::memcmp(recorder.blocks[i], recorder.blocks[j], PageSize()), 0)
          << "blocks " << i << " and " << j << " are identical: KSM could merge them";
    }
  }
}

TEST(RetainedSetTest, ShmemIsAccountedAsShmemAndReleased) {
  const uint64_t size = 32 * kMiB;
  const uint64_t shmem_before = OwnMemory().rss_shmem_bytes;
  const uint64_t anon_before = OwnMemory().rss_anon_bytes;
  absl::StatusOr<RetainedSet> set =
      RetainedSet::Create(Options(kMiB, TouchMode::kPage, Backing::kShmem), 32);
  ASSERT_THAT(set, IsOk());
  EXPECT_GE(Resident(*set), size);
  EXPECT_GE(OwnMemory().rss_shmem_bytes, shmem_before + size);
  if (!kThreadSanitizer) {
    EXPECT_LT(OwnMemory().rss_anon_bytes, anon_before + 4 * kMiB);
  }
  EXPECT_EQ(set->stats().mapped_bytes, size);

  set->Release();
  EXPECT_LE(OwnMemory().rss_shmem_bytes, shmem_before + kMiB);
  // Still usable after Release: it keeps its memfd.
  ASSERT_THAT(set->Grow(2), IsOk());
  EXPECT_EQ(Resident(*set), 2 * kMiB);
}

TEST(RetainedSetTest, AllocatesExactlyAmountBlocksAndNothingElse) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  {
    absl::StatusOr<RetainedSet> set = RetainedSet::Create(Counted(&counting), 1000);
    ASSERT_THAT(set, IsOk());
    EXPECT_EQ(counting.allocations(), 1000u);
    EXPECT_EQ(counting.frees(), 0u);
    EXPECT_EQ(counting.live_bytes(), 64000u);
    const RetainedSetStats stats = set->stats();
    EXPECT_EQ(stats.allocations, 1000u);
    EXPECT_EQ(stats.frees, 0u);
    EXPECT_EQ(stats.blocks, 1000u);
    EXPECT_EQ(stats.payload_bytes, 64000u);
    // Reading stats and resident memory allocates no block.
    EXPECT_THAT(set->ResidentBytes(), IsOk());
    EXPECT_EQ(counting.allocations(), 1000u);
  }
  EXPECT_EQ(counting.frees(), 1000u);
  EXPECT_EQ(counting.live_bytes(), 0u);
  EXPECT_EQ(counting.refusals(), 0u);
}

TEST(RetainedSetTest, AmountZeroIsAnEmptySetAndAmountOneNeedsNoTable) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  absl::StatusOr<RetainedSet> empty = RetainedSet::Create(Counted(&counting), 0);
  ASSERT_THAT(empty, IsOk());
  EXPECT_EQ(empty->block_count(), 0u);
  EXPECT_EQ(empty->stats().bookkeeping_bytes, sizeof(RetainedSet));
  EXPECT_EQ(Resident(*empty), 0u);
  absl::StatusOr<RetainedSet> one = RetainedSet::Create(Counted(&counting), 1);
  ASSERT_THAT(one, IsOk());
  EXPECT_EQ(one->block_count(), 1u);
  EXPECT_EQ(one->stats().bookkeeping_bytes, sizeof(RetainedSet));
  EXPECT_EQ(counting.allocations(), 1u);
}

// The one-block fast path of Create (plain malloc, no touch: the seed's New(1, Byte)) keeps
// the documented accounting, and the set it builds grows, moves and releases like any other.
TEST(RetainedSetTest, OnePlainMallocBlockIsExactAndGrowsMovesAndReleases) {
  const RetainedSetOptions options = Options(64, TouchMode::kNone, Backing::kMalloc);
  absl::StatusOr<RetainedSet> one = RetainedSet::Create(options, 1);
  ASSERT_THAT(one, IsOk());
  RetainedSetStats stats = one->stats();
  EXPECT_EQ(stats.blocks, 1u);
  EXPECT_EQ(stats.payload_bytes, 64u);
  EXPECT_EQ(stats.mapped_bytes, 64u);
  EXPECT_EQ(stats.bookkeeping_bytes, sizeof(RetainedSet));
  EXPECT_EQ(stats.allocations, 1u);
  EXPECT_EQ(stats.bytes_touched, 0u);
  ASSERT_THAT(one->Grow(2), IsOk());  // From the inline pointer to a heap table.
  EXPECT_EQ(one->stats().allocations, 3u);
  RetainedSet moved = std::move(*one);
  EXPECT_EQ(moved.block_count(), 3u);
  EXPECT_EQ(one->block_count(), 0u);
  moved.ShrinkTo(1);
  EXPECT_EQ(moved.stats().frees, 2u);
  moved.Release();
  EXPECT_EQ(moved.stats().frees, 3u);
  EXPECT_EQ(moved.block_count(), 0u);

  absl::StatusOr<RetainedSet> empty = RetainedSet::Create(options, 0);
  ASSERT_THAT(empty, IsOk());
  EXPECT_EQ(empty->stats().allocations, 0u);
  ASSERT_THAT(empty->Grow(1), IsOk());
  EXPECT_EQ(empty->stats().payload_bytes, 64u);
}

TEST(RetainedSetTest, OnePlainMallocBlockTheAllocatorRefusesIsResourceExhausted) {
  // ASan reports an allocation this large instead of returning null.
  if (kAddressSanitizer || kThreadSanitizer) {
    GTEST_SKIP()
        << "the sanitizers' allocators abort on an oversized malloc instead of returning null";
  }
  const RetainedSetOptions options = Options(uint64_t{1} << 62, TouchMode::kNone, Backing::kMalloc);
  EXPECT_THAT(RetainedSet::Create(options, 1), StatusIs(absl::StatusCode::kResourceExhausted,
                                                        AllOf(HasSubstr("allocated 0 of 1 blocks"),
                                                              HasSubstr("4611686018427387904"))));
}

TEST(RetainedSetTest, GrowsInStepsAndShrinks) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMmap, {}));
  RetainedSetOptions options = Options(3 * PageSize(), TouchMode::kPage, Backing::kMmap);
  options.allocator = &counting;
  absl::StatusOr<RetainedSet> set = RetainedSet::Create(options, 0);
  ASSERT_THAT(set, IsOk());
  for (int step = 1; step <= 5; ++step) {
    ASSERT_THAT(set->Grow(10), IsOk());
    EXPECT_EQ(set->block_count(), 10u * step);
    EXPECT_EQ(counting.allocations(), 10u * step);
    EXPECT_EQ(Resident(*set), 10u * step * 3 * PageSize());
  }
  ASSERT_THAT(set->Grow(0), IsOk());
  EXPECT_EQ(set->block_count(), 50u);

  set->ShrinkTo(20);
  EXPECT_EQ(set->block_count(), 20u);
  EXPECT_EQ(counting.frees(), 30u);
  EXPECT_EQ(set->stats().frees, 30u);
  EXPECT_EQ(set->stats().payload_bytes, 20 * 3 * PageSize());
  EXPECT_EQ(Resident(*set), 20 * 3 * PageSize());
  set->ShrinkTo(100);  // Never grows.
  EXPECT_EQ(set->block_count(), 20u);
  EXPECT_EQ(counting.frees(), 30u);

  ASSERT_THAT(set->Grow(5), IsOk());  // Grow again after shrinking.
  EXPECT_EQ(set->block_count(), 25u);
  set->ShrinkTo(0);
  EXPECT_EQ(set->block_count(), 0u);
  EXPECT_EQ(counting.frees(), 55u);
  EXPECT_EQ(counting.allocations(), 55u);
  EXPECT_EQ(set->stats().allocations, 55u);
  EXPECT_EQ(counting.live_bytes(), 0u);
}

TEST(RetainedSetTest, StatsFollowTheDocumentedFormulasForMmap) {
  const uint64_t size = 5000;  // Not a page multiple: 2 pages with 4 KiB pages.
  const uint64_t mapped = (size + PageSize() - 1) / PageSize() * PageSize();
  absl::StatusOr<RetainedSet> set =
      RetainedSet::Create(Options(size, TouchMode::kPage, Backing::kMmap), 3);
  ASSERT_THAT(set, IsOk());
  const RetainedSetStats stats = set->stats();
  EXPECT_EQ(stats.blocks, 3u);
  EXPECT_EQ(stats.payload_bytes, 3 * size);
  EXPECT_EQ(stats.mapped_bytes, 3 * mapped);
  EXPECT_EQ(stats.bookkeeping_bytes, sizeof(RetainedSet) + 3 * sizeof(void*));
  EXPECT_EQ(stats.allocations, 3u);
  EXPECT_EQ(stats.frees, 0u);
  EXPECT_EQ(stats.bytes_touched, 3 * size);
  EXPECT_EQ(Resident(*set), 3 * mapped);  // kPage touches every page a block overlaps.
  EXPECT_EQ(set->block_size(), size);
}

TEST(RetainedSetTest, StatsFollowTheDocumentedFormulasForMalloc) {
  absl::StatusOr<RetainedSet> set =
      RetainedSet::Create(Options(100, TouchMode::kNone, Backing::kMalloc), 7);
  ASSERT_THAT(set, IsOk());
  const RetainedSetStats stats = set->stats();
  EXPECT_EQ(stats.payload_bytes, 700u);
  EXPECT_EQ(stats.mapped_bytes, 700u);  // malloc: its own headers are not counted.
  EXPECT_EQ(stats.bookkeeping_bytes, sizeof(RetainedSet) + 7 * sizeof(void*));
  EXPECT_EQ(stats.bytes_touched, 0u);
}

TEST(RetainedSetTest, BookkeepingTableIsExactAfterCreateAndAtLeastDoublesOnGrow) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  absl::StatusOr<RetainedSet> exact = RetainedSet::Create(Counted(&counting, 1), 1000);
  ASSERT_THAT(exact, IsOk());
  EXPECT_EQ(exact->stats().bookkeeping_bytes, sizeof(RetainedSet) + 1000 * sizeof(void*));
  exact->Release();
  EXPECT_EQ(exact->stats().bookkeeping_bytes, sizeof(RetainedSet)) << "table freed";

  // A ramp of 1000 one-block steps: the table grows geometrically, not every step.
  absl::StatusOr<RetainedSet> ramp = RetainedSet::Create(Counted(&counting, 1), 0);
  ASSERT_THAT(ramp, IsOk());
  uint64_t capacity = 1;
  int reallocations = 0;
  for (uint64_t blocks = 1; blocks <= 1000; ++blocks) {
    ASSERT_THAT(ramp->Grow(1), IsOk());
    const uint64_t table = ramp->stats().bookkeeping_bytes - sizeof(RetainedSet);
    ASSERT_EQ(table % sizeof(void*), 0u);
    const uint64_t new_capacity = table == 0 ? 1 : table / sizeof(void*);
    ASSERT_GE(new_capacity, blocks);
    if (new_capacity != capacity) {
      ++reallocations;
      EXPECT_GE(new_capacity, 2 * capacity) << "at " << blocks << " blocks";
      capacity = new_capacity;
    }
  }
  EXPECT_LE(reallocations, 11);
}

TEST(RetainedSetTest, ZeroBlockSizeIsInvalidArgument) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  EXPECT_THAT(RetainedSet::Create(Counted(&counting, 0), 10),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block size")));
  EXPECT_THAT(RetainedSet::Create(Options(0, TouchMode::kPage, Backing::kMmap), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block size")));
  EXPECT_EQ(counting.allocations(), 0u);
  EXPECT_EQ(counting.refusals(), 0u);
}

TEST(RetainedSetTest, OverflowingTotalIsInvalidArgumentWithNoAllocationAttempted) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  // 2^30 blocks of 2^40 bytes: 2^70 bytes.
  EXPECT_THAT(RetainedSet::Create(Counted(&counting, uint64_t{1} << 40), uint64_t{1} << 30),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1073741824")));
  EXPECT_THAT(RetainedSet::Create(Counted(&counting, 2), kMax),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("18446744073709551615")));

  // Through Grow: the total over the blocks already held and the new ones.
  absl::StatusOr<RetainedSet> set = RetainedSet::Create(Counted(&counting, 1 << 20), 2);
  ASSERT_THAT(set, IsOk());
  EXPECT_THAT(set->Grow(kMax / (1 << 20)), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(set->Grow(kMax), StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_EQ(set->block_count(), 2u);
  EXPECT_EQ(counting.allocations(), 2u);
  EXPECT_EQ(counting.refusals(), 0u) << "no allocation may be attempted";
}

TEST(RetainedSetTest, BlockTableTooLargeForMemoryIsResourceExhaustedNotAnAbort) {
  // 2^61 one-byte blocks fit in 64 bits, but their table (16 EiB of pointers) cannot be
  // allocated: a status, never std::bad_alloc escaping.
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  EXPECT_THAT(RetainedSet::Create(Counted(&counting, 1, TouchMode::kNone), uint64_t{1} << 61),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("2305843009213693952")));
  absl::StatusOr<RetainedSet> set = RetainedSet::Create(Counted(&counting, 1), 3);
  ASSERT_THAT(set, IsOk());
  EXPECT_THAT(set->Grow(uint64_t{1} << 61),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("block table")));
  EXPECT_EQ(set->block_count(), 3u);
  EXPECT_EQ(counting.allocations(), 3u);
  EXPECT_EQ(counting.refusals(), 0u);
}

TEST(RetainedSetTest, AllocationFailureDuringGrowKeepsWhatItGot) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  {
    absl::StatusOr<RetainedSet> set = RetainedSet::Create(Counted(&counting), 0);
    ASSERT_THAT(set, IsOk());
    counting.FailAfter(5);
    EXPECT_THAT(set->Grow(10), StatusIs(absl::StatusCode::kResourceExhausted,
                                        AllOf(HasSubstr("5 of 10"), HasSubstr("injected"))));
    EXPECT_EQ(set->block_count(), 5u);
    EXPECT_EQ(set->stats().allocations, 5u);
    EXPECT_EQ(set->stats().payload_bytes, 5 * 64u);
    EXPECT_EQ(counting.allocations(), 5u);
    EXPECT_EQ(counting.refusals(), 1u);
    EXPECT_EQ(counting.frees(), 0u);
    // Once memory is back, the ramp can go on.
    counting.FailAfter(kMax);
    ASSERT_THAT(set->Grow(5), IsOk());
    EXPECT_EQ(set->block_count(), 10u);
  }
  EXPECT_EQ(counting.frees(), counting.allocations());
  EXPECT_EQ(counting.live_bytes(), 0u);
}

TEST(RetainedSetTest, AllocationFailureDuringCreateFreesEverything) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  counting.FailAfter(3);
  EXPECT_THAT(RetainedSet::Create(Counted(&counting), 10),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("3 of 10")));
  EXPECT_EQ(counting.allocations(), 3u);
  EXPECT_EQ(counting.frees(), 3u);
  EXPECT_EQ(counting.live_bytes(), 0u);
}

TEST(RetainedSetTest, MoveConstructionTransfersOwnership) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  {
    absl::StatusOr<RetainedSet> source = RetainedSet::Create(Counted(&counting), 10);
    ASSERT_THAT(source, IsOk());
    RetainedSet moved(std::move(*source));
    EXPECT_EQ(moved.block_count(), 10u);
    EXPECT_EQ(moved.stats().allocations, 10u);
    EXPECT_EQ(source->block_count(), 0u);
    EXPECT_EQ(source->stats().payload_bytes, 0u);
    EXPECT_EQ(source->stats().allocations, 0u) << "counted once, by the new owner";
    EXPECT_EQ(Resident(*source), 0u);
    EXPECT_EQ(counting.frees(), 0u);
  }  // Both destroyed: each block freed exactly once (ASan would flag a double free).
  EXPECT_EQ(counting.frees(), 10u);
  EXPECT_EQ(counting.live_bytes(), 0u);
}

TEST(RetainedSetTest, MoveAssignmentFreesTheOldBlocksAndTakesTheNewOnes) {
  CountingAllocator counting(SharedBlockAllocator(Backing::kMalloc, {}));
  CountingAllocator other(SharedBlockAllocator(Backing::kMmap, {}));
  {
    absl::StatusOr<RetainedSet> a = RetainedSet::Create(Counted(&counting), 3);
    RetainedSetOptions mmap_options = Options(PageSize(), TouchMode::kPage, Backing::kMmap);
    mmap_options.allocator = &other;
    absl::StatusOr<RetainedSet> b = RetainedSet::Create(mmap_options, 7);
    ASSERT_THAT(a, IsOk());
    ASSERT_THAT(b, IsOk());
    *a = std::move(*b);
    EXPECT_EQ(counting.frees(), 3u) << "a's own blocks are freed";
    EXPECT_EQ(a->block_count(), 7u);
    EXPECT_EQ(a->block_size(), PageSize());
    EXPECT_EQ(Resident(*a), 7 * PageSize());
    EXPECT_EQ(b->block_count(), 0u);
    EXPECT_EQ(other.frees(), 0u);

    RetainedSet& alias = *a;
    *a = std::move(alias);  // Self-move is a no-op.
    EXPECT_EQ(a->block_count(), 7u);
  }
  EXPECT_EQ(counting.frees(), 3u);
  EXPECT_EQ(other.frees(), 7u);
  EXPECT_EQ(other.live_bytes(), 0u);
}

TEST(RetainedSetTest, MovedFromShmemSetOutlivingTheNewOwnerIsSafe) {
  // The shmem allocator moves with the blocks; the moved-from set must not keep using it.
  absl::StatusOr<RetainedSet> source =
      RetainedSet::Create(Options(kMiB, TouchMode::kPage, Backing::kShmem), 2);
  ASSERT_THAT(source, IsOk());
  {
    RetainedSet owner(std::move(*source));
    EXPECT_EQ(Resident(owner), 2 * kMiB);
  }  // The owner and its memfd are gone.
  EXPECT_EQ(source->stats().mapped_bytes, 0u);
  EXPECT_EQ(Resident(*source), 0u);
  EXPECT_THAT(source->Grow(1), StatusIs(absl::StatusCode::kFailedPrecondition, _));
  source->ShrinkTo(0);
  source->Release();
  // Assigning a live set into it makes it usable again.
  absl::StatusOr<RetainedSet> fresh =
      RetainedSet::Create(Options(kMiB, TouchMode::kPage, Backing::kMmap), 1);
  ASSERT_THAT(fresh, IsOk());
  *source = std::move(*fresh);
  ASSERT_THAT(source->Grow(1), IsOk());
  EXPECT_EQ(Resident(*source), 2 * kMiB);
}

TEST(RetainedSetTest, MlockedSetIsResidentWithoutTouching) {
  // Needs RLIMIT_MEMLOCK >= 1 MiB or CAP_IPC_LOCK (root in the test sandbox).
  if (kMlockIsNoop) GTEST_SKIP() << "mlock is a no-op under sanitizers";
  RetainedSetOptions options = Options(256 << 10, TouchMode::kNone, Backing::kMmap);
  options.mlock = true;
  const uint64_t locked_before = OwnMemory().vm_lck_bytes;
  absl::StatusOr<RetainedSet> set = RetainedSet::Create(options, 4);
  ASSERT_THAT(set, IsOk());
  EXPECT_EQ(Resident(*set), kMiB);
  EXPECT_EQ(OwnMemory().vm_lck_bytes, locked_before + kMiB);
  set->Release();
  EXPECT_EQ(OwnMemory().vm_lck_bytes, locked_before);
}

TEST(RetainedSetTest, HugePagesAreAdviceOnly) {
  RetainedSetOptions options = Options(2 * kMiB, TouchMode::kPage, Backing::kMmap);
  options.huge_pages = true;
  absl::StatusOr<RetainedSet> set = RetainedSet::Create(options, 2);
  ASSERT_THAT(set, IsOk());
  EXPECT_EQ(Resident(*set), 4 * kMiB);
}

}  // namespace
}  // namespace memload
