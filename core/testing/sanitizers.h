// Which sanitizer this build runs under, for tests whose OS-level measurements the
// sanitizers' runtimes change. --config=tsan defines MEMLOAD_THREAD_SANITIZER (it must
// undefine __SANITIZE_THREAD__ to keep Debian's protobuf headers consistent, see .bazelrc).
#ifndef MEMLOAD_CORE_TESTING_SANITIZERS_H_
#define MEMLOAD_CORE_TESTING_SANITIZERS_H_

namespace memload {

#if defined(__SANITIZE_ADDRESS__)
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

// The sanitizers intercept mlock(2)/munlock(2) as no-ops (shadow memory cannot be locked).
inline constexpr bool kMlockIsNoop = kAddressSanitizer || kThreadSanitizer;

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_SANITIZERS_H_
