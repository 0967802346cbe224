#include "agent/cgroup_target.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/status_macros.h"
#include "core/node_readers.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace memload {
namespace agent {
namespace {

constexpr size_t kMaxPathLength = 4096;
constexpr size_t kMaxIdLength = 128;
// An OCI config.json is a few tens of KiB; anything larger is not read.
constexpr size_t kMaxConfigBytes = 4 << 20;

bool IsHex(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return "";
  return resolved;
}

// `dir` lies under (or is) `root`, both canonical.
bool IsUnder(const std::string& dir, const std::string& root) {
  if (root == "/") return true;
  return dir == root || (absl::StartsWith(dir, root) && dir[root.size()] == '/');
}

std::string Join(absl::string_view a, absl::string_view b) {
  std::string out(a);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  absl::string_view rest = b;
  while (absl::ConsumePrefix(&rest, "/")) {
  }
  if (rest.empty()) return out;
  return absl::StrCat(out, out == "/" ? "" : "/", rest);
}

std::vector<std::string> ListDirectories(const std::string& dir) {
  std::vector<std::string> names;
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return names;
  while (dirent* entry = readdir(handle)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (IsDirectory(Join(dir, name))) names.push_back(name);
  }
  closedir(handle);
  std::sort(names.begin(), names.end());
  return names;
}

// What the runtime's OCI bundle says of a container.
struct RuntimeInfo {
  bool found = false;
  bool sandbox = false;
  std::string name;
  std::string where;
};

RuntimeInfo ReadRuntimeInfo(const std::vector<std::string>& state_dirs, const std::string& id) {
  RuntimeInfo info;
  for (const std::string& dir : state_dirs) {
    for (const std::string& path : {Join(Join(dir, id), "config.json"),
                                    Join(Join(Join(dir, id), "userdata"), "config.json")}) {
      absl::StatusOr<std::string> contents = ReadFileToString(path);
      if (!contents.ok() || contents->size() > kMaxConfigBytes) continue;
      google::protobuf::Struct config;
      google::protobuf::util::JsonParseOptions options;
      options.ignore_unknown_fields = true;
      if (!google::protobuf::util::JsonStringToMessage(*contents, &config, options).ok()) continue;
      auto annotations = config.fields().find("annotations");
      if (annotations == config.fields().end() || !annotations->second.has_struct_value()) {
        continue;
      }
      const auto& fields = annotations->second.struct_value().fields();
      auto text = [&fields](const char* key) -> std::string {
        auto it = fields.find(key);
        return it != fields.end() && it->second.has_string_value() ? it->second.string_value() : "";
      };
      // containerd's CRI plugin, then CRI-O.
      std::string type = text("io.kubernetes.cri.container-type");
      if (type.empty()) type = text("io.kubernetes.cri-o.ContainerType");
      std::string name = text("io.kubernetes.cri.container-name");
      if (name.empty()) name = text("io.kubernetes.container.name");
      if (type.empty() && name.empty()) continue;
      info.found = true;
      info.sandbox = type == "sandbox";
      info.name = info.sandbox ? "" : name;
      info.where = path;
      return info;
    }
  }
  return info;
}

// Whether a process of the leaf is the pause binary (a sandbox, when no annotations say).
bool HasPauseProcess(const std::string& proc_root, const std::vector<int>& pids) {
  for (int pid : pids) {
    absl::StatusOr<std::string> comm =
        ReadFileToString(Join(proc_root, absl::StrCat(pid, "/comm")));
    if (comm.ok() && absl::StripAsciiWhitespace(*comm) == "pause") return true;
  }
  return false;
}

absl::StatusOr<int> CgroupVersionOf(const std::string& dir) {
  absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(dir);
  if (!memory.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "cgroup \"", dir, "\" is not a readable memory cgroup: ", memory.status().message()));
  }
  return memory->version;
}

}  // namespace

std::string StripContainerIdScheme(absl::string_view id) {
  const size_t scheme = id.find("://");
  return std::string(scheme == absl::string_view::npos ? id : id.substr(scheme + 3));
}

absl::Status ValidatePlacement(const v1::Placement& placement) {
  switch (placement.target_case()) {
    case v1::Placement::kCgroupPath: {
      const std::string& path = placement.cgroup_path();
      if (path.empty() || path.size() > kMaxPathLength) {
        return absl::InvalidArgumentError(absl::StrCat(
            "placement.cgroup_path must be 1-", kMaxPathLength, " characters, got ", path.size()));
      }
      for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
        if (part == "." || part == "..") {
          return absl::InvalidArgumentError(absl::StrCat(
              "placement.cgroup_path \"", path, "\" may not hold \".\" or \"..\" components"));
        }
      }
      if (path.find('\0') != std::string::npos || path.find('\n') != std::string::npos) {
        return absl::InvalidArgumentError("placement.cgroup_path holds a NUL or newline");
      }
      return absl::OkStatus();
    }
    case v1::Placement::kPid:
      if (placement.pid() <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("placement.pid must be positive, got ", placement.pid()));
      }
      return absl::OkStatus();
    case v1::Placement::kPod: {
      const v1::PodTarget& pod = placement.pod();
      if (pod.pod_uid().empty() || pod.pod_uid().size() > kMaxIdLength) {
        return absl::InvalidArgumentError(absl::StrCat("placement.pod.pod_uid must be 1-",
                                                       kMaxIdLength, " characters, got ",
                                                       pod.pod_uid().size()));
      }
      for (char c : pod.pod_uid()) {
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
          return absl::InvalidArgumentError(absl::StrCat("placement.pod.pod_uid \"", pod.pod_uid(),
                                                         "\" may only hold letters, digits, '-'"));
        }
      }
      const std::string id = StripContainerIdScheme(pod.container_id());
      if (!pod.container_id().empty() && (!IsHex(id) || id.size() > kMaxIdLength)) {
        return absl::InvalidArgumentError(absl::StrCat("placement.pod.container_id \"",
                                                       pod.container_id(),
                                                       "\" must be [scheme://]<1-128 hex digits>"));
      }
      if (pod.container_name().size() > 253) {
        return absl::InvalidArgumentError("placement.pod.container_name is longer than 253");
      }
      for (const std::string* text : {&pod.pod_namespace(), &pod.pod_name()}) {
        if (text->size() > 253) {
          return absl::InvalidArgumentError(
              "placement.pod.pod_namespace/pod_name is longer than 253");
        }
      }
      return absl::OkStatus();
    }
    case v1::Placement::TARGET_NOT_SET:
      return absl::InvalidArgumentError(
          "placement is set but names no target: one of cgroup_path, pid, pod");
  }
  return absl::OkStatus();
}

std::optional<ContainerLeafName> ParseContainerLeafName(absl::string_view name) {
  absl::string_view rest = name;
  std::string runtime;
  const bool scope = absl::ConsumeSuffix(&rest, ".scope");
  if (absl::StartsWith(rest, "crio-conmon-")) return std::nullopt;
  if (absl::ConsumePrefix(&rest, "cri-containerd-")) {
    runtime = "containerd";
  } else if (absl::ConsumePrefix(&rest, "crio-")) {
    runtime = "crio";
  } else if (absl::ConsumePrefix(&rest, "docker-")) {
    runtime = "docker";
  } else if (scope) {
    return std::nullopt;  // Some other systemd scope.
  }
  // Container ids are 64 hex digits for every runtime; 12+ keeps short ids of fixtures.
  if (rest.size() < 12 || rest.size() > kMaxIdLength || !IsHex(rest)) return std::nullopt;
  return ContainerLeafName{std::string(rest), runtime};
}

std::vector<std::pair<std::string, std::string>> PodCgroupCandidates(absl::string_view pod_uid) {
  const std::string uid(pod_uid);
  // systemd unit names cannot hold '-' inside a slice's own name part: the kubelet writes
  // the UID with '_'.
  const std::string escaped = absl::StrReplaceAll(uid, {{"-", "_"}});
  return {
      {absl::StrCat("kubepods/pod", uid), "cgroupfs/guaranteed"},
      {absl::StrCat("kubepods/burstable/pod", uid), "cgroupfs/burstable"},
      {absl::StrCat("kubepods/besteffort/pod", uid), "cgroupfs/besteffort"},
      {absl::StrCat("kubepods.slice/kubepods-pod", escaped, ".slice"), "systemd/guaranteed"},
      {absl::StrCat("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod", escaped,
                    ".slice"),
       "systemd/burstable"},
      {absl::StrCat("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod", escaped,
                    ".slice"),
       "systemd/besteffort"},
  };
}

absl::StatusOr<std::vector<int>> CgroupProcs(const std::string& dir) {
  MEMLOAD_ASSIGN_OR_RETURN(const std::string contents, ReadFileToString(Join(dir, "cgroup.procs")));
  std::vector<int> pids;
  for (absl::string_view line : absl::StrSplit(contents, '\n', absl::SkipWhitespace())) {
    int pid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &pid) && pid > 0) pids.push_back(pid);
  }
  return pids;
}

absl::StatusOr<std::string> MemoryCgroupOfProcess(const std::string& proc_root, int pid) {
  const std::string cgroup_file = Join(proc_root, absl::StrCat(pid, "/cgroup"));
  absl::StatusOr<std::string> cgroup = ReadFileToString(cgroup_file);
  if (!cgroup.ok()) {
    return absl::NotFoundError(absl::StrCat("process ", pid, ": cannot read ", cgroup_file, ": ",
                                            cgroup.status().message(),
                                            " (does the agent share the host's pid namespace?)"));
  }
  for (absl::string_view line : absl::StrSplit(*cgroup, '\n')) {
    const std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    const bool memory_line =
        (parts[0] == "0" && parts[1].empty()) ||
        absl::c_linear_search(std::vector<absl::string_view>(absl::StrSplit(parts[1], ',')),
                              absl::string_view("memory"));
    if (!memory_line) continue;
    for (absl::string_view part : absl::StrSplit(parts[2], '/')) {
      if (part == "..") {
        return absl::NotFoundError(absl::StrCat(
            "process ", pid, " is in cgroup \"", parts[2],
            "\", outside this agent's cgroup namespace; run the agent in the host's cgroup "
            "namespace"));
      }
    }
  }
  MEMLOAD_ASSIGN_OR_RETURN(const std::string mountinfo,
                           ReadFileToString(Join(proc_root, "self/mountinfo")));
  absl::StatusOr<std::string> dir = FindMemoryCgroupPath(*cgroup, mountinfo);
  if (!dir.ok()) {
    return absl::NotFoundError(
        absl::StrCat("process ", pid, " (", cgroup_file, "): ", dir.status().message()));
  }
  return *dir;
}

CgroupTargetResolver::CgroupTargetResolver(CgroupTargetOptions options)
    : options_(std::move(options)) {
  if (!options_.memory_root.empty()) {
    memory_root_ = options_.memory_root;
    // A v1 cgroup mount's parent (/sys/fs/cgroup) names the memory hierarchy beneath it.
    if (!PathExists(Join(memory_root_, "cgroup.controllers")) &&
        !PathExists(Join(memory_root_, "memory.limit_in_bytes")) &&
        PathExists(Join(memory_root_, "memory/memory.limit_in_bytes"))) {
      memory_root_ = Join(memory_root_, "memory");
    }
    return;
  }
  // The root of the memory hierarchy is where the cgroup "/" lies in our mount table.
  const std::string mountinfo_path = Join(options_.proc_root, "self/mountinfo");
  absl::StatusOr<std::string> mountinfo = ReadFileToString(mountinfo_path);
  if (!mountinfo.ok()) {
    root_error_ =
        absl::NotFoundError(absl::StrCat("no memory cgroup root: cannot read ", mountinfo_path));
    return;
  }
  absl::StatusOr<std::string> root = FindMemoryCgroupPath("1:memory:/\n0::/\n", *mountinfo);
  if (!root.ok()) {
    root_error_ = absl::NotFoundError(
        absl::StrCat("no memory cgroup root is mounted here (", root.status().message(),
                     "); mount the host's /sys/fs/cgroup into the agent"));
    return;
  }
  memory_root_ = *root;
}

namespace {

// The target of a cgroup_path or pid placement: the cgroup `dir`, its version, the processes
// in it now, and `layout`, how it was found.
absl::StatusOr<ResolvedTarget> TargetInCgroup(const std::string& dir, std::string layout) {
  ResolvedTarget target;
  target.dir = dir;
  MEMLOAD_ASSIGN_OR_RETURN(target.version, CgroupVersionOf(dir));
  target.layout = std::move(layout);
  target.pids = CgroupProcs(dir).value_or(std::vector<int>());
  return target;
}

}  // namespace

absl::StatusOr<ResolvedTarget> CgroupTargetResolver::Resolve(const v1::Placement& placement) const {
  MEMLOAD_RETURN_IF_ERROR(ValidatePlacement(placement));
  switch (placement.target_case()) {
    case v1::Placement::kCgroupPath:
      return ResolvePath(placement.cgroup_path());
    case v1::Placement::kPid:
      return ResolvePid(placement.pid());
    case v1::Placement::kPod:
      return ResolvePod(placement.pod());
    case v1::Placement::TARGET_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("placement names no target");
}

absl::StatusOr<ResolvedTarget> CgroupTargetResolver::ResolvePath(const std::string& path) const {
  if (memory_root_.empty()) return root_error_;
  const std::string dir = Join(memory_root_, path);
  const std::string real = RealPath(dir);
  const std::string real_root = RealPath(memory_root_);
  if (real.empty() || !IsDirectory(real)) {
    return absl::NotFoundError(
        absl::StrCat("placement.cgroup_path \"", path, "\": no cgroup directory \"", dir, "\""));
  }
  if (real_root.empty() || !IsUnder(real, real_root)) {
    return absl::NotFoundError(absl::StrCat("placement.cgroup_path \"", path, "\" resolves to \"",
                                            real, "\", outside the memory cgroup root \"",
                                            memory_root_, "\""));
  }
  return TargetInCgroup(dir, "path");
}

absl::StatusOr<ResolvedTarget> CgroupTargetResolver::ResolvePid(int pid) const {
  MEMLOAD_ASSIGN_OR_RETURN(const std::string dir, MemoryCgroupOfProcess(options_.proc_root, pid));
  if (!IsDirectory(dir)) {
    return absl::NotFoundError(
        absl::StrCat("process ", pid, " is in memory cgroup \"", dir,
                     "\", which is not visible "
                     "here (mount the host's /sys/fs/cgroup into the agent)"));
  }
  return TargetInCgroup(dir, "pid");
}

absl::StatusOr<ResolvedTarget> CgroupTargetResolver::ResolvePod(const v1::PodTarget& pod) const {
  if (memory_root_.empty()) return root_error_;
  const std::string& uid = pod.pod_uid();
  const std::string escaped_uid = absl::StrReplaceAll(uid, {{"-", "_"}});
  // Every pod directory that exists (there should be one).
  std::vector<std::string> searched;
  std::vector<std::pair<std::string, std::string>> found;  // dir, layout
  for (const std::string& kubelet_root : options_.kubelet_roots) {
    for (const auto& [relative, layout] : PodCgroupCandidates(uid)) {
      const std::string dir = Join(Join(memory_root_, kubelet_root), relative);
      searched.push_back(dir);
      if (IsDirectory(dir)) found.emplace_back(dir, layout);
    }
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, ": no pod cgroup on this node; searched ",
                                            absl::StrJoin(searched, ", ")));
  }
  if (found.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod ", uid, ": more than one pod cgroup: ",
                     absl::StrJoin(found, ", ", [](std::string* out, const auto& entry) {
                       absl::StrAppend(out, entry.first);
                     })));
  }
  const std::string& pod_dir = found[0].first;

  struct Container {
    std::string dir;
    ContainerLeafName leaf;
    RuntimeInfo runtime;
    std::vector<int> pids;
    bool sandbox = false;
  };
  std::vector<Container> containers;
  for (const std::string& name : ListDirectories(pod_dir)) {
    std::optional<ContainerLeafName> leaf = ParseContainerLeafName(name);
    if (!leaf) continue;
    Container container;
    container.dir = Join(pod_dir, name);
    container.leaf = *leaf;
    container.runtime = ReadRuntimeInfo(options_.runtime_state_dirs, leaf->id);
    container.pids = CgroupProcs(container.dir).value_or(std::vector<int>());
    container.sandbox = container.runtime.found
                            ? container.runtime.sandbox
                            : HasPauseProcess(options_.proc_root, container.pids);
    containers.push_back(std::move(container));
  }
  auto describe = [](const Container& c) {
    return absl::StrCat(c.leaf.id.substr(0, 12),
                        c.runtime.name.empty() ? "" : absl::StrCat(" (", c.runtime.name, ")"),
                        c.sandbox ? " [sandbox]" : "", c.pids.empty() ? " [no processes]" : "");
  };
  auto list = [&] {
    if (containers.empty()) return std::string("none");
    return absl::StrJoin(containers, ", ", [&](std::string* out, const Container& c) {
      absl::StrAppend(out, describe(c));
    });
  };

  const Container* chosen = nullptr;
  const std::string wanted_id = StripContainerIdScheme(pod.container_id());
  if (!wanted_id.empty()) {
    for (const Container& c : containers) {
      if (c.leaf.id == wanted_id) chosen = &c;
    }
    if (chosen == nullptr) {
      return absl::NotFoundError(absl::StrCat("pod ", uid, ": no container ", wanted_id, " in ",
                                              pod_dir, "; containers there: ", list()));
    }
  } else if (!pod.container_name().empty()) {
    bool any_named = false;
    for (const Container& c : containers) {
      any_named |= c.runtime.found;
      if (!c.sandbox && c.runtime.name == pod.container_name()) chosen = &c;
    }
    if (chosen == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "pod ", uid, ": no container named \"", pod.container_name(), "\" in ", pod_dir,
          any_named ? absl::StrCat("; containers there: ", list())
                    : absl::StrCat("; no container's name could be read from the runtime's "
                                   "state (searched ",
                                   absl::StrJoin(options_.runtime_state_dirs, ", "),
                                   "): give placement.pod.container_id")));
    }
  } else {
    std::vector<const Container*> apps;
    for (const Container& c : containers) {
      if (!c.sandbox && !c.pids.empty()) apps.push_back(&c);
    }
    if (apps.empty()) {
      return absl::NotFoundError(absl::StrCat("pod ", uid, ": no running app container in ",
                                              pod_dir, "; containers there: ", list()));
    }
    if (apps.size() > 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("pod ", uid, " has ", apps.size(),
                       " app containers; name one (container_name or container_id): ", list()));
    }
    chosen = apps[0];
  }
  if (chosen->sandbox) {
    return absl::FailedPreconditionError(absl::StrCat("pod ", uid, ": container ", chosen->leaf.id,
                                                      " is the pod's sandbox (pause), never a "
                                                      "target"));
  }
  // Never a fallback: the leaf must lie under kubepods and name the pod.
  const std::string real = RealPath(chosen->dir);
  const std::string real_root = RealPath(memory_root_);
  if (real.empty() || real_root.empty() || !IsUnder(real, real_root) ||
      (real.find("/kubepods") == std::string::npos) ||
      (real.find(uid) == std::string::npos && real.find(escaped_uid) == std::string::npos)) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, ": container cgroup \"", chosen->dir,
                                            "\" resolves to \"", real,
                                            "\", not a kubepods cgroup of this pod"));
  }
  ResolvedTarget target;
  target.dir = chosen->dir;
  MEMLOAD_ASSIGN_OR_RETURN(target.version, CgroupVersionOf(chosen->dir));
  target.container_id = chosen->leaf.id;
  target.container_name = chosen->runtime.name;
  target.pod_uid = uid;
  target.layout = absl::StrCat(found[0].second, "/",
                               chosen->leaf.runtime.empty() ? "cgroupfs-id" : chosen->leaf.runtime);
  target.pids = chosen->pids;
  return target;
}

}  // namespace agent
}  // namespace memload
