// TestCgroup: a memory cgroup of the test's own (v1 or v2), a child of the cgroup the test
// runs in, with a memory limit (and no swap, where the kernel lets us say so). Removed on
// destruction with its child cgroups; its processes must be gone by then (the destructor waits up
// to 5 s for exiting ones to leave).
//
//   absl::StatusOr<TestCgroup> cgroup = TestCgroup::Create("oom", 96 * kMiB);
//   if (!cgroup.ok()) GTEST_SKIP() << cgroup.status();   // no cgroups here (or sandboxed)
//   Subprocess::Start({...}, cgroup->procs_file());
//   EXPECT_GE(cgroup->Usage(), 64 * kMiB);
//
// Tests that use it are tagged "no-sandbox": Bazel's sandbox mounts /sys/fs/cgroup
// read-only.
//
// Thread-safety: thread-compatible.
#ifndef MEMLOAD_TESTS_TESTING_TEST_CGROUP_H_
#define MEMLOAD_TESTS_TESTING_TEST_CGROUP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace memload {
namespace testing {

class TestCgroup {
 public:
  // "NAME-PID-N" under the test's own memory cgroup. Unavailable (the caller skips) where
  // memory cgroups cannot be created.
  static absl::StatusOr<TestCgroup> Create(const std::string& name, uint64_t limit_bytes);
  TestCgroup(TestCgroup&& other) noexcept;
  TestCgroup& operator=(TestCgroup&& other) = delete;
  ~TestCgroup();

  const std::string& dir() const { return dir_; }
  std::string procs_file() const { return dir_ + "/cgroup.procs"; }
  int version() const { return version_; }  // 1 or 2.

  // memory.usage_in_bytes (v1) or memory.current (v2); 0 when unreadable.
  uint64_t Usage() const;
  // "oom_kill" of memory.oom_control (v1) or memory.events (v2), with those of its child
  // cgroups (an agent's memload-workers); 0 when unreadable.
  uint64_t OomKills() const;

 private:
  TestCgroup() = default;
  std::string dir_;
  int version_ = 0;
};

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_TEST_CGROUP_H_
