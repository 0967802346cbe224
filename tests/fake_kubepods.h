// A fake kubelet cgroup layout under the real memory hierarchy, for placement tests on a
// machine without Kubernetes: a root of its own (<this process's memory cgroup>/
// memload-kubepods-<name>-<pid>, passed to the agent as --cgroup_root), a burstable pod
// cgroup in the cgroupfs or systemd naming scheme, and one container leaf with a memory
// limit whose "init" is a real `sleep`. Everything is killed and removed on destruction.
//
//   absl::StatusOr<std::unique_ptr<FakeKubepods>> pods =
//       FakeKubepods::Create("a", FakeKubepods::Scheme::kSystemd, 256 * kMiB);
//   // agent flags: "--cgroup_root=" + (*pods)->root()
//   // placement: pod_uid (*pods)->pod_uid()
//
// Thread-safety: thread-compatible.
#ifndef MEMLOAD_TESTS_FAKE_KUBEPODS_H_
#define MEMLOAD_TESTS_FAKE_KUBEPODS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {

class FakeKubepods {
 public:
  enum class Scheme { kCgroupfs, kSystemd };

  // Unavailable where memory cgroups cannot be made (the test then skips).
  static absl::StatusOr<std::unique_ptr<FakeKubepods>> Create(const std::string& name,
                                                              Scheme scheme,
                                                              uint64_t leaf_limit_bytes);
  ~FakeKubepods();

  const std::string& root() const { return root_; }
  const std::string& pod_uid() const { return pod_uid_; }
  const std::string& container_id() const { return container_id_; }
  const std::string& leaf() const { return dirs_.back(); }  // The container's cgroup.
  pid_t init_pid() const { return init_->pid(); }
  Subprocess& init() { return *init_; }

  uint64_t LeafUsage() const;       // memory.usage_in_bytes / memory.current
  uint64_t LeafWorkingSet() const;  // usage − inactive_file
  std::vector<pid_t> LeafProcs() const;
  // Kills the `sleep` and removes the leaf (retrying while the kernel still holds it);
  // false when it could not be removed in `timeout`.
  bool KillContainerAndRemoveLeaf(absl::Duration timeout);

 private:
  FakeKubepods() = default;
  std::string root_;
  std::string pod_uid_;
  std::string container_id_;
  std::vector<std::string> dirs_;  // Made, outermost first (root ... leaf).
  std::optional<Subprocess> init_;
};

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_FAKE_KUBEPODS_H_
