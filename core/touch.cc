#include "core/touch.h"

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

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

// xorshift64*: fast, and its output does not compress.
uint64_t PatternStart(uint64_t seed) {
  const uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  return state == 0 ? 1 : state;
}

// Writes the next `size` bytes of the pattern whose generator is at `state`. Calls on
// consecutive pieces whose sizes (but the last) are multiples of 8 write exactly what one
// call on the whole would.
void FillPatternFrom(char* data, size_t size, uint64_t& state) {
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

void FillPattern(char* data, size_t size, uint64_t seed) {
  uint64_t state = PatternStart(seed);
  FillPatternFrom(data, size, state);
}

// Pieces a kernel fill writes per system call (a multiple of 8: see FillPatternFrom).
constexpr size_t kKernelFillChunk = 64 * 1024;
// Cleared once process_vm_writev is refused (seccomp, an old kernel): never tried again.
std::atomic<bool> kernel_fill_works{true};
std::atomic<uint64_t> kernel_filled_bytes{0};

// Fills a block whose pages are not resident yet with the pattern, written by the kernel
// (process_vm_writev to this process) from a small buffer the pattern is generated in:
// the kernel faults each page in and copies into it through its own mapping, so this
// process's first store to each fresh page never happens. Under shadow paging (PVM and
// other VMs without nested page tables) that first store is a hypervisor exit: ~30 µs of
// CPU per 4 KiB page measured here, 7-10× the whole kernel fill. False (nothing to rely
// on written) when the kernel refuses; the caller then writes the pattern itself.
bool KernelFill(char* data, size_t size, uint64_t seed) {
  if (!kernel_fill_works.load(std::memory_order_relaxed)) return false;
  const size_t buffer_size = std::min(size, kKernelFillChunk);
  std::unique_ptr<char[]> buffer(new (std::nothrow) char[buffer_size]);
  if (buffer == nullptr) return false;
  const pid_t self = getpid();  // Not cached: a forked child must write into itself.
  uint64_t state = PatternStart(seed);
  for (size_t done = 0; done < size;) {
    const size_t piece = std::min(buffer_size, size - done);
    FillPatternFrom(buffer.get(), piece, state);
    struct iovec local = {buffer.get(), piece};
    struct iovec remote = {data + done, piece};
    const ssize_t written = process_vm_writev(self, &local, 1, &remote, 1, 0);
    if (written != static_cast<ssize_t>(piece)) {
      if (written < 0 && (errno == EPERM || errno == ENOSYS)) {
        kernel_fill_works.store(false, std::memory_order_relaxed);
      }
      return false;
    }
    done += piece;
  }
  kernel_filled_bytes.fetch_add(size, std::memory_order_relaxed);
  return true;
}

}  // namespace

uint64_t KernelFilledBytes() { return kernel_filled_bytes.load(std::memory_order_relaxed); }

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
      if (fresh && size >= kPopulateMinBytes && KernelFill(bytes, size, seed)) return size;
      // Faulting the pages in first lets the pattern run at memory speed.
      if (fresh) Populate(bytes, size);
      FillPattern(bytes, size, seed);
      return size;
  }
  return 0;
}

}  // namespace memload
