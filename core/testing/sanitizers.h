// Which sanitizer this build runs under, for tests whose OS-level measurements the
// sanitizers' runtimes change. ASan is told by Abseil's config (gcc's __SANITIZE_ADDRESS__ or
// clang's __has_feature; --config=asan builds with clang). --config=tsan defines
// MEMLOAD_THREAD_SANITIZER (it must undefine __SANITIZE_THREAD__ to keep Debian's protobuf
// headers consistent, see .bazelrc).
#ifndef MEMLOAD_CORE_TESTING_SANITIZERS_H_
#define MEMLOAD_CORE_TESTING_SANITIZERS_H_

#include "absl/base/config.h"

namespace memload {

#if defined(ABSL_HAVE_ADDRESS_SANITIZER)
// ASan's malloc quarantines freed blocks (RSS stays up) and its shadow is anonymous memory.
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

#if defined(MEMLOAD_THREAD_SANITIZER)
// TSan's shadow of every written page is anonymous memory (2-4× what the program wrote).
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// What ASan's runtime adds to a sanitized memload process's own memory (the shadow of its
// heap, the allocator's metadata, the runtime's tables): a fixed few MiB, measured 7-8 MiB for
// a worker holding a 64 or 128 MiB plan. Tests that check what a worker charges to a cgroup
// allow for it above their plan; 0 in other builds.
inline constexpr unsigned long long kAsanProcessOverheadBytes = kAddressSanitizer ? 12ull << 20 : 0;

// The sanitizers intercept mlock(2)/munlock(2) as no-ops (shadow memory cannot be locked).
inline constexpr bool kMlockIsNoop = kAddressSanitizer || kThreadSanitizer;

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_SANITIZERS_H_
