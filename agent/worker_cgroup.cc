#include "agent/worker_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/node_readers.h"
#include "core/size.h"

namespace memload {
namespace agent {
namespace {

// Writes `text` to a cgroup control file in one write(2), as the kernel wants.
absl::Status WriteControlFile(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  const ssize_t n = write(fd, text.data(), text.size());
  const int error = n < 0 ? errno : EIO;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return absl::ErrnoToStatus(error, absl::StrCat("cannot write \"", text, "\" to ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<WorkerCgroup>> PrepareWorkerCgroup(const std::string& agent_cgroup_dir,
                                                                uint64_t margin_bytes) {
  MEMLOAD_ASSIGN_OR_RETURN(const CgroupMemory agent, ReadCgroupMemory(agent_cgroup_dir));
  if (!agent.hierarchical_limit_bytes.has_value()) return std::nullopt;
  const uint64_t limit = *agent.hierarchical_limit_bytes;
  if (limit / 2 <= margin_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the memory cgroup limit ", FormatSize(limit), " of ", agent.path,
        " leaves workers too little beside the agent's margin of ", FormatSize(margin_bytes)));
  }
  WorkerCgroup workers;
  workers.dir = absl::StrCat(agent.path, "/", kWorkerCgroupName);
  workers.procs_file = workers.dir + "/cgroup.procs";
  workers.limit_bytes = limit - margin_bytes;  // limit > 2 * margin: no wrap.
  workers.agent_limit_bytes = limit;
  if (mkdir(workers.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", workers.dir));
  }
  const std::string limit_text = absl::StrCat(workers.limit_bytes);
  if (agent.version == 1) {
    MEMLOAD_RETURN_IF_ERROR(WriteControlFile(workers.dir + "/memory.limit_in_bytes", limit_text));
    return workers;
  }
  // v2: the child has memory.max only once its parent hands it the memory controller,
  // which the kernel refuses while the parent has processes of its own.
  if (!PathExists(workers.dir + "/memory.max")) {
    const absl::Status handed = WriteControlFile(agent.path + "/cgroup.subtree_control", "+memory");
    if (!handed.ok() || !PathExists(workers.dir + "/memory.max")) {
      rmdir(workers.dir.c_str());
      return absl::FailedPreconditionError(
          absl::StrCat("cgroup v2: cannot give the memory controller to ", workers.dir,
                       " (the agent's cgroup has processes of its own): ", handed.message()));
    }
  }
  MEMLOAD_RETURN_IF_ERROR(WriteControlFile(workers.dir + "/memory.max", limit_text));
  return workers;
}

absl::Status RemoveWorkerCgroup(const std::string& dir) {
  if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
  return absl::ErrnoToStatus(errno, absl::StrCat("cannot remove ", dir));
}

}  // namespace agent
}  // namespace memload
