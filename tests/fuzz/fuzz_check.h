// FuzzCheck: the fuzz targets' property check. A property that fails aborts with its name,
// which libFuzzer (under --config=asan) reports as a crash and saves the input for; the
// seed-corpus replay elsewhere fails the test.
//
//   FuzzCheck(again.ok() && *again == *bytes, "ParseSize(decimal bytes) round-trips");
#ifndef MEMLOAD_TESTS_FUZZ_FUZZ_CHECK_H_
#define MEMLOAD_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

namespace memload {
namespace testing {

inline void FuzzCheck(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: property failed: %s\n", what);
    std::abort();
  }
}

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_FUZZ_FUZZ_CHECK_H_
