#include "tests/testing/test_cgroup.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/node_readers.h"
#include "tests/testing/files.h"

namespace memload {
namespace testing {
namespace {

// The child cgroups of `dir` (e.g. the agent's memload-workers).
std::vector<std::string> ChildDirectories(const std::string& dir) {
  std::vector<std::string> children;
  DIR* stream = opendir(dir.c_str());
  if (stream == nullptr) return children;
  while (const dirent* entry = readdir(stream)) {
    const std::string name = entry->d_name;
    if (entry->d_type == DT_DIR && name != "." && name != "..")
      children.push_back(dir + "/" + name);
  }
  closedir(stream);
  return children;
}

}  // namespace

absl::StatusOr<TestCgroup> TestCgroup::Create(const std::string& name, uint64_t limit_bytes) {
  absl::StatusOr<std::string> cgroup_file = ReadFileToString("/proc/self/cgroup");
  absl::StatusOr<std::string> mountinfo = ReadFileToString("/proc/self/mountinfo");
  if (!cgroup_file.ok() || !mountinfo.ok()) return absl::UnavailableError("no /proc cgroup info");
  absl::StatusOr<std::string> own = FindMemoryCgroupPath(*cgroup_file, *mountinfo);
  if (!own.ok()) return absl::UnavailableError(own.status().ToString());
  static std::atomic<int> counter{0};
  TestCgroup cgroup;
  cgroup.dir_ = absl::StrCat(*own, "/", name, "-", getpid(), "-", ++counter);
  if (mkdir(cgroup.dir_.c_str(), 0755) != 0) {
    const std::string error = std::strerror(errno);
    cgroup.dir_.clear();
    return absl::UnavailableError(absl::StrCat("cannot create a cgroup under ", *own, ": ", error));
  }
  const std::string limit = absl::StrCat(limit_bytes);
  if (PathExists(cgroup.dir_ + "/memory.limit_in_bytes")) {
    cgroup.version_ = 1;
    if (!WriteFile(cgroup.dir_ + "/memory.limit_in_bytes", limit)) {
      return absl::UnavailableError("cannot set memory.limit_in_bytes");
    }
  } else if (PathExists(cgroup.dir_ + "/memory.max")) {
    cgroup.version_ = 2;
    if (!WriteFile(cgroup.dir_ + "/memory.max", limit)) {
      return absl::UnavailableError("cannot set memory.max");
    }
    // Without swap accounting there is no memory.swap.max, and nothing to turn off.
    if (PathExists(cgroup.dir_ + "/memory.swap.max") &&
        !WriteFile(cgroup.dir_ + "/memory.swap.max", "0")) {
      return absl::UnavailableError("cannot set memory.swap.max");
    }
  } else {
    return absl::UnavailableError(absl::StrCat(cgroup.dir_, " has no memory controller files"));
  }
  return cgroup;
}

TestCgroup::TestCgroup(TestCgroup&& other) noexcept
    : dir_(std::move(other.dir_)), version_(other.version_) {
  other.dir_.clear();
}

TestCgroup::~TestCgroup() {
  if (dir_.empty()) return;
  // A child left by a killed agent first (a cgroup with children cannot be removed).
  for (const std::string& child : ChildDirectories(dir_)) rmdir(child.c_str());
  // The kernel refuses while exiting processes are still charged to it: retry briefly.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (rmdir(dir_.c_str()) != 0 && errno == EBUSY && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
}

uint64_t TestCgroup::Usage() const {
  absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(dir_);
  return memory.ok() ? memory->usage_bytes : 0;
}

uint64_t TestCgroup::OomKills() const {
  absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(dir_);
  return memory.ok() ? memory->oom_kill_count : 0;
}

}  // namespace testing
}  // namespace memload
