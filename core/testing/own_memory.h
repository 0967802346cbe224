// OwnMemory(): this process's memory as the OS counts it (/proc/self/status, read by
// core/node_readers' ReadProcessMemory), for tests that measure what they allocate.
//
//   const uint64_t anon_before = OwnMemory().rss_anon_bytes;
//   ... allocate and touch 64 MiB ...
//   EXPECT_GE(OwnMemory().rss_anon_bytes, anon_before + 60 * kMiB);
//
// Thread-safety: thread-safe (each call reads the file anew).
#ifndef MEMLOAD_CORE_TESTING_OWN_MEMORY_H_
#define MEMLOAD_CORE_TESTING_OWN_MEMORY_H_

#include "absl/status/statusor.h"
#include "core/node_readers.h"
#include "core/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace memload {

// A failed read is a test failure (and reads as all zeros).
inline ProcessMemory OwnMemory() {
  absl::StatusOr<ProcessMemory> self = ReadProcessMemory(0);
  EXPECT_THAT(self, IsOk());
  return self.ok() ? *self : ProcessMemory{};
}

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_OWN_MEMORY_H_
