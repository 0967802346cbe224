#include "agent/cgroup_join.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/cgroup_target.h"
#include "core/base/status_macros.h"

namespace memload {
namespace agent {
namespace {

std::string Canonical(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return path;
  return resolved;
}

// The same directory, even when seen through two mounts of the same hierarchy (the host's
// /sys/fs/cgroup bind-mounted at /host/sys/fs/cgroup beside the container's own mount):
// same device and inode, else the same canonical path.
bool SameDirectory(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0) {
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  }
  return Canonical(a) == Canonical(b);
}

}  // namespace

absl::Status JoinCgroup(int pid, const std::string& cgroup_dir, const std::string& proc_root) {
  const std::string procs = absl::StrCat(cgroup_dir, "/cgroup.procs");
  const int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", procs, " to join the cgroup"));
  }
  const std::string text = absl::StrCat(pid);
  const ssize_t n = write(fd, text.data(), text.size());
  const int error = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return absl::ErrnoToStatus(n < 0 ? error : EIO,
                               absl::StrCat("cannot write pid ", pid, " to ", procs));
  }
  MEMLOAD_ASSIGN_OR_RETURN(const std::string now, MemoryCgroupOfProcess(proc_root, pid));
  if (!SameDirectory(now, cgroup_dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat("process ", pid, " was written to ", procs, " but is in memory cgroup ", now));
  }
  return absl::OkStatus();
}

}  // namespace agent
}  // namespace memload
