#include "core/resident.h"

#include <sys/mman.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/testing/mapping.h"
#include "core/testing/status_matchers.h"
#include "core/touch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace {

using ::testing::HasSubstr;

using ::memload::testing::Mapping;

TEST(ResidentBytesTest, NoRangesIsZero) {
  EXPECT_THAT(ResidentBytes({}), IsOk());
  EXPECT_EQ(ResidentBytes({}).value_or(1), 0u);
}

TEST(ResidentBytesTest, EmptyRangesAreIgnoredWhateverTheirAddress) {
  EXPECT_EQ(ResidentBytes({{nullptr, 0}, {reinterpret_cast<void*>(16), 0}}).value_or(1), 0u);
}

TEST(ResidentBytesTest, UntouchedMappingIsZero) {
  Mapping map(16);
  ASSERT_NE(map.data(), nullptr);
  EXPECT_EQ(ResidentBytes({{map.data(), map.size()}}).value_or(1), 0u);
}

TEST(ResidentBytesTest, TouchedHalfIsExactlyHalf) {
  Mapping map(16);
  ASSERT_NE(map.data(), nullptr);
  for (size_t i = 0; i < 16; i += 2) map.Touch(i);  // Every other page.
  EXPECT_EQ(ResidentBytes({{map.data(), map.size()}}).value_or(1), 8 * PageSize());
  for (size_t i = 0; i < 8; ++i) map.Touch(i);  // Now pages 0..7 and the even ones.
  EXPECT_EQ(ResidentBytes({{map.data(), map.size()}}).value_or(1), 12 * PageSize());
}

TEST(ResidentBytesTest, CountsWholePagesOfPartialRanges) {
  Mapping map(4);
  ASSERT_NE(map.data(), nullptr);
  map.Touch(1);
  map.Touch(2);
  // One byte in page 1, and a range from the last byte of page 1 to the first of page 2.
  EXPECT_EQ(ResidentBytes({{map.page(1) + 10, 1}}).value_or(1), PageSize());
  EXPECT_EQ(ResidentBytes({{map.page(2) - 1, 2}}).value_or(1), 2 * PageSize());
  // A range ending exactly on a page boundary does not reach the next page.
  EXPECT_EQ(ResidentBytes({{map.page(0), PageSize()}}).value_or(1), 0u);
}

TEST(ResidentBytesTest, DuplicateAndOverlappingRangesCountOnce) {
  Mapping map(8);
  ASSERT_NE(map.data(), nullptr);
  for (size_t i = 0; i < 8; ++i) map.Touch(i);
  const size_t page = PageSize();
  // Same range twice.
  EXPECT_EQ(ResidentBytes({{map.data(), 4 * page}, {map.data(), 4 * page}}).value_or(1), 4 * page);
  // Overlapping: pages 0..3 and 2..5.
  EXPECT_EQ(ResidentBytes({{map.page(0), 4 * page}, {map.page(2), 4 * page}}).value_or(1),
            6 * page);
  // One range inside another.
  EXPECT_EQ(ResidentBytes({{map.page(0), 8 * page}, {map.page(3), page}}).value_or(1), 8 * page);
  // Many tiny blocks sharing one page (small malloc blocks): that page once.
  std::vector<MemoryRange> tiny;
  for (size_t offset = 0; offset < page; offset += 64) tiny.push_back({map.page(5) + offset, 32});
  EXPECT_EQ(ResidentBytes(tiny).value_or(1), page);
  // Adjacent ranges that meet inside a page: that page once.
  EXPECT_EQ(ResidentBytes({{map.page(1), page + 100}, {map.page(2) + 100, page}}).value_or(1),
            3 * page);
}

TEST(ResidentBytesTest, UnsortedRanges) {
  Mapping map(8);
  ASSERT_NE(map.data(), nullptr);
  map.Touch(0);
  map.Touch(3);
  map.Touch(7);
  std::vector<MemoryRange> ranges;
  for (size_t i = 8; i-- > 0;) ranges.push_back({map.page(i), PageSize()});
  EXPECT_EQ(ResidentBytes(ranges).value_or(1), 3 * PageSize());
  // A scrambled order with a duplicate.
  ranges = {{map.page(7), PageSize()},
            {map.page(0), PageSize()},
            {map.page(3), PageSize()},
            {map.page(0), PageSize()},
            {map.page(5), PageSize()}};
  EXPECT_EQ(ResidentBytes(ranges).value_or(1), 3 * PageSize());
}

TEST(ResidentBytesTest, DisjointRangesAroundAnUnmappedHoleAreFine) {
  // Ranges are merged only where they overlap, so a hole between two blocks is never
  // passed to mincore.
  Mapping map(3);
  ASSERT_NE(map.data(), nullptr);
  map.Touch(0);
  map.Touch(2);
  ASSERT_EQ(munmap(map.page(1), PageSize()), 0);
  EXPECT_EQ(ResidentBytes({{map.page(2), PageSize()}, {map.page(0), PageSize()}}).value_or(1),
            2 * PageSize());
  ASSERT_EQ(mmap(map.page(1), PageSize(), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            map.page(1));  // Refill the hole so ~Mapping unmaps all three pages.
}

TEST(ResidentBytesTest, UnmappedRangeIsAnError) {
  Mapping map(4);
  ASSERT_NE(map.data(), nullptr);
  map.Touch(0);
  ASSERT_EQ(munmap(map.page(2), PageSize()), 0);
  EXPECT_THAT(ResidentBytes({{map.data(), map.size()}}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("mincore")));
  ASSERT_EQ(mmap(map.page(2), PageSize(), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            map.page(2));
}

TEST(ResidentBytesTest, RangesLongerThanOneMincoreChunk) {
  // ResidentBytes asks mincore for at most 65536 pages at a time: check the pages on both
  // sides of the chunk boundaries and the very last page of a mapping just over two chunks.
  constexpr size_t kChunk = 1 << 16;
  const size_t pages = 2 * kChunk + 3;
  Mapping map(pages);  // 512 MiB of address space with 4 KiB pages; untouched but a few.
  ASSERT_NE(map.data(), nullptr);
  EXPECT_EQ(ResidentBytes({{map.data(), map.size()}}).value_or(1), 0u);
  for (size_t i : {size_t{0}, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk, pages - 1}) {
    map.Touch(i);
  }
  EXPECT_EQ(ResidentBytes({{map.data(), map.size()}}).value_or(1), 6 * PageSize());
}

}  // namespace
}  // namespace memload
