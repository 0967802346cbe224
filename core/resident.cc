#include "core/resident.h"

#include <errno.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/touch.h"

namespace memload {

absl::StatusOr<uint64_t> ResidentBytes(std::vector<MemoryRange> ranges) {
  const uintptr_t page = PageSize();
  // Widen every range to whole pages, then merge, so shared pages are counted once.
  std::vector<std::pair<uintptr_t, uintptr_t>> pages;
  pages.reserve(ranges.size());
  for (const MemoryRange& range : ranges) {
    if (range.size == 0) continue;
    const uintptr_t begin = reinterpret_cast<uintptr_t>(range.data) & ~(page - 1);
    const uintptr_t end =
        (reinterpret_cast<uintptr_t>(range.data) + range.size + page - 1) & ~(page - 1);
    pages.emplace_back(begin, end);
  }
  std::sort(pages.begin(), pages.end());
  std::vector<unsigned char> vec;
  uint64_t resident_pages = 0;
  // mincore in bounded chunks so a 1 TiB range does not need a 256 MiB vector.
  constexpr uintptr_t kMaxPagesPerCall = 1 << 16;
  size_t i = 0;
  while (i < pages.size()) {
    uintptr_t begin = pages[i].first;
    uintptr_t end = pages[i].second;
    for (++i; i < pages.size() && pages[i].first <= end; ++i) {
      end = std::max(end, pages[i].second);
    }
    for (uintptr_t chunk = begin; chunk < end;) {
      const uintptr_t count = std::min<uintptr_t>((end - chunk) / page, kMaxPagesPerCall);
      vec.resize(count);
      if (mincore(reinterpret_cast<void*>(chunk), count * page, vec.data()) != 0) {
        const int error = errno;
        return absl::InternalError(
            absl::StrCat("mincore over ", count * page, " bytes failed: ", std::strerror(error)));
      }
      for (unsigned char flags : vec) resident_pages += flags & 1;
      chunk += count * page;
    }
  }
  return resident_pages * page;
}

}  // namespace memload
