#include "core/touch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace memload {

absl::StatusOr<TouchMode> ParseTouchMode(absl::string_view text) {
  if (text == "none") return TouchMode::kNone;
  if (text == "page") return TouchMode::kPage;
  if (text == "fill") return TouchMode::kFill;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid touch mode \"", text, "\": want none, page or fill"));
}

absl::string_view TouchModeName(TouchMode mode) {
  switch (mode) {
    case TouchMode::kNone:
      return "none";
    case TouchMode::kPage:
      return "page";
    case TouchMode::kFill:
      return "fill";
  }
  return "unknown";
}

size_t PageSize() {
  static const size_t page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page_size;
}

namespace {

// One volatile write at `p`: the compiler may not drop it, so the page is faulted in.
inline void WriteByte(char* p, char value) { *static_cast<volatile char*>(p) = value; }

// Blocks at least this large that start on a page are populated by the kernel in one call.
constexpr size_t kPopulateMinBytes = 64 * 1024;

// MADV_POPULATE_WRITE (Linux 5.14+) faults every page of a large page-aligned block in
// writable, exactly as one write per page would, but in one system call instead of one
// page fault per page. False when not applicable (small, unaligned, or an older kernel
// saying EINVAL): the caller's writes then fault the pages in themselves.
bool Populate(char* data, size_t size) {
  const uintptr_t page = PageSize();
  if (size < kPopulateMinBytes || (reinterpret_cast<uintptr_t>(data) & (page - 1)) != 0) {
    return false;
  }
  return madvise(data, (size + page - 1) & ~(page - 1), MADV_POPULATE_WRITE) == 0;
}

// The byte of the page at `page_start` that kPage writes: the first byte of one of the
// page's cache lines, a different line for each of 64 consecutive pages ((page number mod
// 64) × 64 B for 4 KiB pages). Writing byte 0 of every page would put every touched line
// in the 1/64 of the cache sets whose index bits within a page are 0 — caches are
// indexed by the low address bits — so a window of blocks touched page by page would miss
// to DRAM on every page even when its touched lines would fit in the cache many times.
// The same page always gets the same line, so a page touched again finds its line cached.
inline uintptr_t LineInPage(uintptr_t page_start, uintptr_t page) {
  return (page_start >> 6) & (page - 1);
}

void TouchPages(char* data, size_t size, bool fresh) {
  if (fresh && Populate(data, size)) return;
  const uintptr_t page = PageSize();
  const uintptr_t start = reinterpret_cast<uintptr_t>(data);
  const uintptr_t last = start + (size - 1);
  // One byte in every page the block overlaps: the page's line (LineInPage), or the
  // block's first or last byte when that line lies outside the block.
  const uintptr_t last_page = last & ~(page - 1);
  for (uintptr_t page_start = start & ~(page - 1);; page_start += page) {
    const uintptr_t at = std::clamp(page_start + LineInPage(page_start, page), start, last);
    WriteByte(reinterpret_cast<char*>(at), 1);
    if (page_start == last_page) break;
  }
}

void FillPattern(char* data, size_t size, uint64_t seed) {
  // xorshift64*: fast, and its output does not compress.
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  if (state == 0) state = 1;
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= size; i += sizeof(uint64_t)) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    const uint64_t word = state * 0x2545F4914F6CDD1Dull;
    std::memcpy(data + i, &word, sizeof(word));
  }
  for (; i < size; ++i) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    data[i] = static_cast<char>(state * 0x2545F4914F6CDD1Dull >> 56);
  }
}

}  // namespace

uint64_t TouchBlock(void* data, size_t size, TouchMode mode, uint64_t seed, bool fresh) {
  if (size == 0 || data == nullptr) return 0;
  char* bytes = static_cast<char*>(data);
  switch (mode) {
    case TouchMode::kNone:
      return 0;
    case TouchMode::kPage:
      TouchPages(bytes, size, fresh);
      return size;
    case TouchMode::kFill:
      // Faulting the pages in first lets the pattern run at memory speed.
      if (fresh) Populate(bytes, size);
      FillPattern(bytes, size, seed);
      return size;
  }
  return 0;
}

}  // namespace memload
