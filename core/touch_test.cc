#include "core/touch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/resident.h"
#include "core/testing/mapping.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace {

using ::testing::HasSubstr;

using ::memload::testing::Mapping;

// Resident bytes of [data, data + size) measured by mincore, or ~0 on error.
uint64_t Resident(const void* data, size_t size) {
  return ResidentBytes({{data, size}}).value_or(~uint64_t{0});
}

bool PageResident(const void* page) { return Resident(page, 1) == PageSize(); }

TEST(TouchModeTest, NamesRoundTrip) {
  for (TouchMode mode : {TouchMode::kNone, TouchMode::kPage, TouchMode::kFill}) {
    absl::StatusOr<TouchMode> parsed = ParseTouchMode(TouchModeName(mode));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(*parsed, mode);
  }
  EXPECT_EQ(TouchModeName(TouchMode::kNone), "none");
  EXPECT_EQ(TouchModeName(TouchMode::kPage), "page");
  EXPECT_EQ(TouchModeName(TouchMode::kFill), "fill");
}

TEST(TouchModeTest, UnknownTextIsInvalidArgumentNamingIt) {
  for (const char* text : {"", "Page", "pages", " fill", "physical"}) {
    EXPECT_THAT(ParseTouchMode(text), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("\"" + std::string(text) + "\"")));
  }
}

TEST(PageSizeTest, IsTheKernelsPowerOfTwo) {
  EXPECT_EQ(PageSize(), static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(PageSize() & (PageSize() - 1), 0u);
}

TEST(TouchBlockTest, NoneLeavesMemoryVirtual) {
  Mapping map(16);
  ASSERT_NE(map.data(), nullptr);
  EXPECT_EQ(TouchBlock(map.data(), map.size(), TouchMode::kNone, 1), 0u);
  EXPECT_EQ(Resident(map.data(), map.size()), 0u);
}

TEST(TouchBlockTest, EmptyOrNullBlockTouchesNothing) {
  Mapping map(1);
  ASSERT_NE(map.data(), nullptr);
  for (TouchMode mode : {TouchMode::kPage, TouchMode::kFill}) {
    EXPECT_EQ(TouchBlock(map.data(), 0, mode, 1), 0u);
    EXPECT_EQ(TouchBlock(nullptr, 4096, mode, 1), 0u);
  }
  EXPECT_EQ(Resident(map.data(), map.size()), 0u);
}

TEST(TouchBlockTest, PageMakesEveryPageResident) {
  Mapping map(64);
  ASSERT_NE(map.data(), nullptr);
  ASSERT_EQ(Resident(map.data(), map.size()), 0u);
  EXPECT_EQ(TouchBlock(map.data(), map.size(), TouchMode::kPage, 1), map.size());
  EXPECT_EQ(Resident(map.data(), map.size()), map.size());
}

TEST(TouchBlockTest, PageTouchesExactlyThePagesAnUnalignedBlockOverlaps) {
  const size_t page = PageSize();
  Mapping map(8);
  ASSERT_NE(map.data(), nullptr);
  // Starts 100 bytes into page 2 and ends 100 bytes into page 5: pages 2..5 only.
  char* start = map.page(2) + 100;
  const size_t size = 3 * page;
  EXPECT_EQ(TouchBlock(start, size, TouchMode::kPage, 1), size);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(PageResident(map.page(i)), i >= 2 && i <= 5) << "page " << i;
  }
  EXPECT_EQ(Resident(map.data(), map.size()), 4 * page);
}

TEST(TouchBlockTest, PageTouchesBothPagesOfATwoByteBlockAcrossABoundary) {
  Mapping map(4);
  ASSERT_NE(map.data(), nullptr);
  EXPECT_EQ(TouchBlock(map.page(2) - 1, 2, TouchMode::kPage, 1), 2u);
  EXPECT_FALSE(PageResident(map.page(0)));
  EXPECT_TRUE(PageResident(map.page(1)));
  EXPECT_TRUE(PageResident(map.page(2)));
  EXPECT_FALSE(PageResident(map.page(3)));
}

TEST(TouchBlockTest, PageBlockEndingOnABoundaryDoesNotTouchTheNextPage) {
  Mapping map(4);
  ASSERT_NE(map.data(), nullptr);
  EXPECT_EQ(TouchBlock(map.page(1) + 1, PageSize() - 1, TouchMode::kPage, 1), PageSize() - 1);
  EXPECT_FALSE(PageResident(map.page(0)));
  EXPECT_TRUE(PageResident(map.page(1)));
  EXPECT_FALSE(PageResident(map.page(2)));
}

// Offsets of the bytes that are not zero in each of `pages` pages from `data`.
std::vector<std::vector<size_t>> WrittenOffsets(const char* data, size_t pages) {
  std::vector<std::vector<size_t>> written(pages);
  for (size_t i = 0; i < pages * PageSize(); ++i) {
    if (data[i] != 0) written[i / PageSize()].push_back(i % PageSize());
  }
  return written;
}

// kPage writes one byte per page, at the start of a cache line that changes from page to
// page: byte 0 of every page would crowd every touched line into the 1/64 of the cache
// sets indexed by in-page offset 0, and a window of blocks would then miss to memory.
TEST(TouchBlockTest, PageWritesOneLinePerPageADifferentLineForConsecutivePages) {
  constexpr size_t kPages = 128;
  Mapping map(kPages);
  ASSERT_NE(map.data(), nullptr);
  // Not fresh: written page by page, as a reused malloc block is.
  EXPECT_EQ(TouchBlock(map.data(), map.size(), TouchMode::kPage, 1, /*fresh=*/false), map.size());
  const std::vector<std::vector<size_t>> written = WrittenOffsets(map.data(), kPages);
  const size_t lines = std::min<size_t>(64, PageSize() / 64);
  for (size_t first = 0; first + lines <= kPages; first += lines) {
    std::set<size_t> offsets;
    for (size_t i = first; i < first + lines; ++i) {
      ASSERT_EQ(written[i].size(), 1u) << "page " << i;
      EXPECT_EQ(written[i][0] % 64, 0u) << "page " << i;
      offsets.insert(written[i][0]);
    }
    EXPECT_EQ(offsets.size(), lines) << "pages " << first << ".." << first + lines - 1;
  }
  // The same page gets the same line every time: written again, nothing new is written.
  std::memset(map.data(), 0, map.size());
  TouchBlock(map.data(), map.size(), TouchMode::kPage, 2, /*fresh=*/false);
  EXPECT_EQ(WrittenOffsets(map.data(), kPages), written);
}

TEST(TouchBlockTest, PageWritesOnlyInsideAnUnalignedBlock) {
  const size_t page = PageSize();
  constexpr size_t kPages = 70;
  Mapping map(kPages);
  ASSERT_NE(map.data(), nullptr);
  // From 3 bytes into page 1 to 5 bytes into page 68: its first and last pages' lines may
  // lie outside it, and then its first or last byte is written instead.
  for (size_t page_index = 0; page_index < kPages; ++page_index) map.Touch(page_index);
  std::memset(map.data(), 0, map.size());
  char* start = map.page(1) + 3;
  const size_t size = 67 * page + 2;
  EXPECT_EQ(TouchBlock(start, size, TouchMode::kPage, 1, /*fresh=*/false), size);
  const std::vector<std::vector<size_t>> written = WrittenOffsets(map.data(), kPages);
  for (size_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(written[i].size(), i >= 1 && i <= 68 ? 1u : 0u) << "page " << i;
    if (written[i].empty()) continue;
    const char* at = map.page(i) + written[i][0];
    EXPECT_GE(at, start) << "page " << i;
    EXPECT_LT(at, start + size) << "page " << i;
  }
}

TEST(TouchBlockTest, PageWritesTheOneByteOfAOneByteBlock) {
  Mapping map(2);
  ASSERT_NE(map.data(), nullptr);
  map.Touch(0);
  map.Touch(1);
  std::memset(map.data(), 0, map.size());
  char* byte = map.page(1) + 1234;
  EXPECT_EQ(TouchBlock(byte, 1, TouchMode::kPage, 1, /*fresh=*/false), 1u);
  EXPECT_EQ(WrittenOffsets(map.data(), 2), (std::vector<std::vector<size_t>>{{}, {1234}}));
}

TEST(TouchBlockTest, FillMakesEveryPageResident) {
  Mapping map(64);
  ASSERT_NE(map.data(), nullptr);
  EXPECT_EQ(TouchBlock(map.data(), map.size(), TouchMode::kFill, 7), map.size());
  EXPECT_EQ(Resident(map.data(), map.size()), map.size());
}

// A fresh block of 64 KiB or more is filled by the kernel (process_vm_writev): exactly the
// bytes this process would have written itself, every page resident. 2 × 64 KiB + 13
// bytes from 5 bytes into a page: two whole pieces and an odd tail, across pages.
TEST(TouchBlockTest, FreshFillIsWrittenByTheKernelWithTheSamePattern) {
  Mapping map(40);
  ASSERT_NE(map.data(), nullptr);
  char* start = map.page(0) + 5;
  const size_t size = 2 * (64 << 10) + 13;
  const uint64_t kernel_before = KernelFilledBytes();
  ASSERT_EQ(TouchBlock(start, size, TouchMode::kFill, 11, /*fresh=*/true), size);
  EXPECT_EQ(KernelFilledBytes() - kernel_before, size);
  EXPECT_EQ(Resident(map.data(), map.size()),
            (size + 5 + PageSize() - 1) / PageSize() * PageSize());

  std::vector<char> own(size, 0);
  ASSERT_EQ(TouchBlock(own.data(), size, TouchMode::kFill, 11, /*fresh=*/false), size);
  EXPECT_EQ(KernelFilledBytes() - kernel_before, size);  // Not fresh: written here.
  EXPECT_EQ(std::memcmp(start, own.data(), size), 0);
  // Nothing outside the block.
  EXPECT_EQ(std::string(map.data(), 5), std::string(5, '\0'));
  EXPECT_EQ(start[size], 0);
}

TEST(TouchBlockTest, FillPatternDoesNotCompress) {
  constexpr size_t kSize = 256 << 10;
  constexpr size_t kChunk = 4096;  // Compare 4 KiB pages whatever the kernel's page size.
  std::vector<unsigned char> data(kSize, 0);
  ASSERT_EQ(TouchBlock(data.data(), kSize, TouchMode::kFill, 42), kSize);

  // No two 4 KiB pages are equal (KSM could not merge them) and none is all zeros.
  std::set<std::string> pages;
  const std::string zeros(kChunk, '\0');
  for (size_t offset = 0; offset < kSize; offset += kChunk) {
    std::string page(reinterpret_cast<const char*>(&data[offset]), kChunk);
    EXPECT_NE(page, zeros) << "offset " << offset;
    pages.insert(std::move(page));
  }
  EXPECT_EQ(pages.size(), kSize / kChunk);

  // No 8-byte word repeats (no short period a compressor could exploit).
  std::set<uint64_t> words;
  for (size_t offset = 0; offset < kSize; offset += 8) {
    uint64_t word;
    std::memcpy(&word, &data[offset], sizeof(word));
    words.insert(word);
  }
  EXPECT_EQ(words.size(), kSize / 8);

  // Byte histogram roughly uniform: 1024 expected per value; binomial sd is ~32.
  std::array<size_t, 256> histogram{};
  for (unsigned char byte : data) ++histogram[byte];
  for (int value = 0; value < 256; ++value) {
    EXPECT_GT(histogram[value], 800u) << "byte " << value;
    EXPECT_LT(histogram[value], 1250u) << "byte " << value;
  }
}

TEST(TouchBlockTest, FillWritesEveryByteIncludingAnUnalignedTail) {
  // The result must not depend on what the memory held before: then every byte was
  // written. 1003 bytes = 125 whole words + a 3-byte tail; start 1 byte off alignment.
  constexpr size_t kSize = 1003;
  std::vector<unsigned char> zeros(kSize + 2, 0x00);
  std::vector<unsigned char> ones(kSize + 2, 0xFF);
  EXPECT_EQ(TouchBlock(&zeros[1], kSize, TouchMode::kFill, 3), kSize);
  EXPECT_EQ(TouchBlock(&ones[1], kSize, TouchMode::kFill, 3), kSize);
  EXPECT_EQ(std::memcmp(&zeros[1], &ones[1], kSize), 0);
  // And nothing outside the block.
  EXPECT_EQ(zeros[0], 0x00);
  EXPECT_EQ(zeros[kSize + 1], 0x00);
  EXPECT_EQ(ones[0], 0xFF);
  EXPECT_EQ(ones[kSize + 1], 0xFF);
  // The bytes are not all equal.
  EXPECT_GT(std::set<unsigned char>(zeros.begin() + 1, zeros.end() - 1).size(), 200u);
}

TEST(TouchBlockTest, FillIsDeterministicPerSeedAndDiffersAcrossSeeds) {
  constexpr size_t kSize = 64 << 10;
  std::vector<char> a(kSize), b(kSize), c(kSize);
  TouchBlock(a.data(), kSize, TouchMode::kFill, 1);
  TouchBlock(b.data(), kSize, TouchMode::kFill, 1);
  TouchBlock(c.data(), kSize, TouchMode::kFill, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Different seeds share no 4 KiB page either (KSM could not merge two blocks).
  for (size_t i = 0; i < kSize; i += 4096) {
    for (size_t j = 0; j < kSize; j += 4096) {
      EXPECT_NE(std::memcmp(&a[i], &c[j], 4096), 0) << i << " vs " << j;
    }
  }
  // Seed 0 is a valid seed, not a degenerate all-zero stream.
  std::vector<char> zero_seed(kSize, 0);
  TouchBlock(zero_seed.data(), kSize, TouchMode::kFill, 0);
  EXPECT_NE(zero_seed, std::vector<char>(kSize, 0));
}

}  // namespace
}  // namespace memload
