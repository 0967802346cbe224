// LeakSanitizer for binaries that leave with _exit.
//
// memload-agent and memloadctl end with _exit (gRPC's background threads must not race
// static destructors), which skips LeakSanitizer's check at exit. They call this first:
//
//   const int code = Main(argc, argv);
//   std::fflush(nullptr);
//   _exit(memload::LeakCheckedExitCode(code));
//
// Under --config=asan it runs LeakSanitizer now, printing any leak to stderr; elsewhere it
// does nothing. Thread-safety: call once, from the exiting thread.
#ifndef MEMLOAD_BAZEL_LEAK_CHECK_H_
#define MEMLOAD_BAZEL_LEAK_CHECK_H_

namespace memload {

// `code`, or LeakSanitizer's exit code 23 when it found leaks (and `code` was 0).
int LeakCheckedExitCode(int code);

}  // namespace memload

#endif  // MEMLOAD_BAZEL_LEAK_CHECK_H_
