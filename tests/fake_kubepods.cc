#include "tests/fake_kubepods.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/node_readers.h"

namespace memload {
namespace testing {
namespace {

bool Write(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeKubepods>> FakeKubepods::Create(const std::string& name,
                                                                   Scheme scheme,
                                                                   uint64_t leaf_limit_bytes) {
  absl::StatusOr<std::string> cgroup = ReadFileToString("/proc/self/cgroup");
  absl::StatusOr<std::string> mountinfo = ReadFileToString("/proc/self/mountinfo");
  if (!cgroup.ok() || !mountinfo.ok()) return absl::UnavailableError("no /proc cgroup info");
  absl::StatusOr<std::string> own = FindMemoryCgroupPath(*cgroup, *mountinfo);
  if (!own.ok()) return absl::UnavailableError(own.status().ToString());

  auto pods = std::unique_ptr<FakeKubepods>(new FakeKubepods());
  pods->root_ = absl::StrCat(*own, "/memload-kubepods-", name, "-", getpid());
  // A UID and container id of the shapes the kubelet and containerd use.
  pods->pod_uid_ = absl::StrFormat("0f1e2d3c-4b5a-6978-8796-%08x%04x", getpid(),
                                   std::hash<std::string>()(name) & 0xffff);
  pods->container_id_ =
      absl::StrCat("c0ffee", absl::Hex(getpid(), absl::kZeroPad8), std::string(50, 'a'));
  std::vector<std::string> relative;
  if (scheme == Scheme::kCgroupfs) {
    relative = {"kubepods", "kubepods/burstable",
                absl::StrCat("kubepods/burstable/pod", pods->pod_uid_),
                absl::StrCat("kubepods/burstable/pod", pods->pod_uid_, "/", pods->container_id_)};
  } else {
    const std::string pod = absl::StrCat(
        "kubepods.slice/kubepods-burstable.slice/"
        "kubepods-burstable-pod",
        absl::StrReplaceAll(pods->pod_uid_, {{"-", "_"}}), ".slice");
    relative = {"kubepods.slice", "kubepods.slice/kubepods-burstable.slice", pod,
                absl::StrCat(pod, "/cri-containerd-", pods->container_id_, ".scope")};
  }
  pods->dirs_.push_back(pods->root_);
  for (const std::string& r : relative) pods->dirs_.push_back(absl::StrCat(pods->root_, "/", r));
  for (const std::string& dir : pods->dirs_) {
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      const std::string error = std::strerror(errno);
      pods->dirs_.resize(&dir - pods->dirs_.data());  // Remove only what was made.
      return absl::UnavailableError(absl::StrCat("cannot create cgroup ", dir, ": ", error));
    }
  }
  const std::string& leaf = pods->leaf();
  const bool v1 = PathExists(leaf + "/memory.limit_in_bytes");
  if (!Write(leaf + (v1 ? "/memory.limit_in_bytes" : "/memory.max"),
             absl::StrCat(leaf_limit_bytes))) {
    return absl::UnavailableError(absl::StrCat("cannot limit ", leaf));
  }
  if (!v1) Write(leaf + "/memory.swap.max", "0");
  absl::StatusOr<Subprocess> init =
      Subprocess::Start({"/bin/sleep", "100000"}, leaf + "/cgroup.procs");
  if (!init.ok()) return init.status();
  pods->init_.emplace(std::move(*init));
  return pods;
}

FakeKubepods::~FakeKubepods() {
  if (init_.has_value()) {
    init_->Signal(SIGKILL);
    init_->Wait(absl::Seconds(5));
  }
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (rmdir(it->c_str()) != 0 && errno == EBUSY && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));  // Bounded: the kernel releases a dead task.
    }
  }
}

uint64_t FakeKubepods::LeafUsage() const {
  absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(leaf());
  return memory.ok() ? memory->usage_bytes : 0;
}

uint64_t FakeKubepods::LeafWorkingSet() const {
  absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(leaf());
  return memory.ok() ? memory->WorkingSetBytes() : 0;
}

std::vector<pid_t> FakeKubepods::LeafProcs() const {
  std::vector<pid_t> pids;
  absl::StatusOr<std::string> procs = ReadFileToString(leaf() + "/cgroup.procs");
  if (!procs.ok()) return pids;
  for (absl::string_view line : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
  }
  return pids;
}

bool FakeKubepods::KillContainerAndRemoveLeaf(absl::Duration timeout) {
  init_->Signal(SIGKILL);
  init_->Wait(timeout);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (rmdir(leaf().c_str()) == 0) {
      dirs_.pop_back();
      return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

}  // namespace testing
}  // namespace memload
