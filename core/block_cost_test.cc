// The cost rules against their formula, and against the OS: a set of tiny blocks made
// resident never holds more (RssAnon + RssShmem, from /proc) than its cost says.
#include "core/block_cost.h"

#include "core/node_readers.h"
#include "core/retained_set.h"
#include "core/testing/sanitizers.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace {

using ::testing::HasSubstr;

MATCHER_P(IsOkAndHolds, value, "") {
  if (!arg.ok()) {
    *result_listener << arg.status();
    return false;
  }
  *result_listener << "holds " << *arg;
  return *arg == static_cast<uint64_t>(value);
}

TEST(BlockCostTest, MappedBlocksCostWholePages) {
  EXPECT_THAT(BlockCost(Backing::kMmap, 1), IsOkAndHolds(4096 + kTableBytesPerBlock));
  EXPECT_THAT(BlockCost(Backing::kShmem, 4097), IsOkAndHolds(8192 + kTableBytesPerBlock));
  EXPECT_THAT(BlockCost(Backing::kMmap, 1 << 20), IsOkAndHolds((1 << 20) + kTableBytesPerBlock));
  EXPECT_THAT(BlockCost(Backing::kMmap, 1, 65536), IsOkAndHolds(65536 + kTableBytesPerBlock));
}

TEST(BlockCostTest, MallocBlocksCostAllocatorChunks) {
  EXPECT_THAT(BlockCost(Backing::kMalloc, 1), IsOkAndHolds(32 + kTableBytesPerBlock));
  EXPECT_THAT(BlockCost(Backing::kMalloc, 16), IsOkAndHolds(48 + kTableBytesPerBlock));
  EXPECT_THAT(BlockCost(Backing::kMalloc, 15), IsOkAndHolds(32 + kTableBytesPerBlock));
  // Header 16 B and up to 1/8 of size-class waste: 1000 + 16 + 125, rounded to 16.
  EXPECT_THAT(BlockCost(Backing::kMalloc, 1000), IsOkAndHolds(1152 + kTableBytesPerBlock));
  // Big blocks are whole 8 KiB pages.
  EXPECT_THAT(BlockCost(Backing::kMalloc, 1 << 20),
              IsOkAndHolds((1 << 20) + 8192 + kTableBytesPerBlock));
  EXPECT_THAT(BlockCost(Backing::kMalloc, 300000), IsOkAndHolds(303104 + kTableBytesPerBlock));
}

TEST(BlockCostTest, CountsAndSumsAreBounded) {
  EXPECT_THAT(BlockCost(Backing::kMmap, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(BlockCost(Backing::kMmap, 1, 3000),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  for (Backing backing : {Backing::kMmap, Backing::kShmem, Backing::kMalloc}) {
    EXPECT_THAT(BlockCost(backing, UINT64_MAX),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
    EXPECT_THAT(BlockCost(backing, UINT64_MAX - 4094),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
    EXPECT_THAT(RetainedCost(backing, 1 << 20, UINT64_MAX),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("blocks a plan may hold")));
    EXPECT_THAT(RetainedCost(backing, (uint64_t{1} << 38) + 1, UINT64_MAX),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
    EXPECT_THAT(RetainedCost(backing, 1, kMaxBlocks + 1),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block size of at least")));
  }
  EXPECT_THAT(RetainedCost(Backing::kMmap, 1, 60000),
              IsOkAndHolds(kSetFixedBytes + 60000 * (4096 + kTableBytesPerBlock)));
  // Targets round down to whole blocks.
  EXPECT_THAT(RetainedCost(Backing::kMmap, 1 << 20, (1 << 20) + 5),
              IsOkAndHolds(kSetFixedBytes + (1 << 20) + kTableBytesPerBlock));
  EXPECT_THAT(StreamingCost(1, false, 0, 4), IsOkAndHolds(kSetFixedBytes + 4 * 56));
  EXPECT_THAT(StreamingCost(1, true, 10, 4), IsOkAndHolds(kSetFixedBytes + 10 * 4120));
  EXPECT_THAT(StreamingCost(1, true, UINT64_MAX, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST(BlockCostTest, PayloadWithinInvertsTheCost) {
  EXPECT_EQ(PayloadWithin(Backing::kMmap, 1, 10 * 4120), 10u);
  EXPECT_EQ(PayloadWithin(Backing::kMmap, 1 << 20, 3 << 20), 2u << 20);
  EXPECT_EQ(PayloadWithin(Backing::kMalloc, 1, UINT64_MAX), kMaxBlocks);
  EXPECT_EQ(PayloadWithin(Backing::kMmap, 0, 1 << 30), 0u);
  for (uint64_t budget : {0ull, 1ull, 4119ull, 4120ull, 1ull << 30}) {
    const uint64_t payload = PayloadWithin(Backing::kMmap, 1, budget);
    EXPECT_LE(*BlocksCost(Backing::kMmap, 1, payload) - kSetFixedBytes, budget);
  }
}

uint64_t Resident() {
  absl::StatusOr<ProcessMemory> self = ReadProcessMemory(0);
  EXPECT_THAT(self, IsOk());
  return self.ok() ? self->rss_anon_bytes + self->rss_shmem_bytes : 0;
}

// The defect of issue 12 (1): 60,000 one-byte mmap blocks held 236 MiB while 60,000 bytes
// were admitted. Measured here: what the OS holds for tiny blocks stays within the cost.
TEST(BlockCostTest, ResidentOfTinyBlocksStaysWithinTheCost) {
  if (kAddressSanitizer || kThreadSanitizer) {
    // Their allocators add redzones, keep freed blocks (the table's old copies) in
    // quarantine and write shadow memory: what the OS holds is theirs, not the rule's. The
    // plain build checks this figure.
    GTEST_SKIP() << "resident figures do not hold under a sanitizer's allocator";
  }
  // malloc first: its freed chunks are reused by later sets, which then look cheaper.
  for (Backing backing : {Backing::kMalloc, Backing::kMmap, Backing::kShmem}) {
    for (uint64_t block_size : {1ull, 24ull, 25ull, 100ull, 5000ull}) {
      const uint64_t blocks = backing == Backing::kMalloc && block_size < 1000 ? 100000 : 5000;
      RetainedSetOptions options;
      options.block_size = block_size;
      options.backing = backing;
      options.touch = TouchMode::kPage;
      const uint64_t before = Resident();
      absl::StatusOr<RetainedSet> set = RetainedSet::Create(options, 0);
      ASSERT_THAT(set, IsOk());
      // Grown in steps, as plans do, so the table doubles on the way.
      for (int i = 0; i < 10; ++i) ASSERT_THAT(set->Grow(blocks / 10), IsOk());
      const uint64_t held = Resident() - std::min(before, Resident());
      absl::StatusOr<uint64_t> cost =
          RetainedCost(backing, block_size, blocks * block_size, SystemPageSize());
      ASSERT_THAT(cost, IsOk());
      EXPECT_LE(held, *cost) << BackingName(backing) << " " << block_size << " B blocks";
      // And the cost is not wildly above it (the rule is meant to be close, not lax).
      if (backing != Backing::kMalloc) {
        EXPECT_GE(held, *cost / 2) << BackingName(backing);
      }
      printf("%s %llu B x %llu: resident %llu, cost %llu (payload %llu)\n",
             std::string(BackingName(backing)).c_str(), (unsigned long long)block_size,
             (unsigned long long)blocks, (unsigned long long)held, (unsigned long long)*cost,
             (unsigned long long)(blocks * block_size));
    }
  }
}

}  // namespace
}  // namespace memload
