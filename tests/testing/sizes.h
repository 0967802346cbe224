// Sizes in tests: the binary units as uint64_t constants and a MiB figure for messages.
//
//   EXPECT_GE(ResidentOf(pid), 64 * kMiB) << ToMiB(ResidentOf(pid)) << " MiB";
//
// Thread-safety: constants and a pure function.
#ifndef MEMLOAD_TESTS_TESTING_SIZES_H_
#define MEMLOAD_TESTS_TESTING_SIZES_H_

#include <cstdint>

namespace memload {
namespace testing {

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// Bytes as (fractional) MiB, for figures and failure messages.
constexpr double ToMiB(uint64_t bytes) { return static_cast<double>(bytes) / kMiB; }

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_SIZES_H_
