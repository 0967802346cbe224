// Mapping: an anonymous private mapping of whole pages for tests that measure residency
// (mincore) page by page. Unmapped on destruction; data() is null when mmap failed.
//
//   Mapping map(16);
//   ASSERT_NE(map.data(), nullptr);
//   map.Touch(3);  // Page 3 is now resident.
//
// Thread-safety: none needed (holds a mapping; Touch writes one byte).
#ifndef MEMLOAD_CORE_TESTING_MAPPING_H_
#define MEMLOAD_CORE_TESTING_MAPPING_H_

#include <sys/mman.h>

#include <cstddef>

#include "core/touch.h"

namespace memload {
namespace testing {

class Mapping {
 public:
  explicit Mapping(size_t pages) : size_(pages * PageSize()) {
    void* data = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    data_ = data == MAP_FAILED ? nullptr : static_cast<char*>(data);
  }
  ~Mapping() {
    if (data_ != nullptr) munmap(data_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  char* data() const { return data_; }
  size_t size() const { return size_; }
  char* page(size_t i) const { return data_ + i * PageSize(); }
  // Writes one byte of page i, which makes it resident.
  void Touch(size_t i) const { *static_cast<volatile char*>(page(i)) = 1; }

 private:
  char* data_;
  size_t size_;
};

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_MAPPING_H_
