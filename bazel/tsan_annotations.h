// Happens-before edges ThreadSanitizer cannot see by itself.
//
// Debian's gRPC is not built with -fsanitize=thread: what it does to hand a call from the
// thread that starts it to the gRPC thread that runs its callback is invisible to TSan, so
// state written before the call and read (or freed) after it looks like a data race. Mark the
// hand-off instead of suppressing reports in our own code:
//
//   TsanHandOff(call);                 // before the call starts
//   stub->async()->Method(..., [call](grpc::Status status) {
//     TsanTakeOver(call);              // first thing in the callback
//     ...
//   });
//
// Both are no-ops outside --config=tsan (MEMLOAD_THREAD_SANITIZER, set by .bazelrc).
// Thread-safety: thread-safe.
#ifndef MEMLOAD_BAZEL_TSAN_ANNOTATIONS_H_
#define MEMLOAD_BAZEL_TSAN_ANNOTATIONS_H_

#ifdef MEMLOAD_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace memload {

// Everything this thread did before is visible to the thread that next calls
// TsanTakeOver(`object`).
inline void TsanHandOff(const void* object) {
#ifdef MEMLOAD_THREAD_SANITIZER
  __tsan_release(const_cast<void*>(object));
#else
  (void)object;
#endif
}

// Takes over what the thread that called TsanHandOff(`object`) did before that.
inline void TsanTakeOver(const void* object) {
#ifdef MEMLOAD_THREAD_SANITIZER
  __tsan_acquire(const_cast<void*>(object));
#else
  (void)object;
#endif
}

}  // namespace memload

#endif  // MEMLOAD_BAZEL_TSAN_ANNOTATIONS_H_
