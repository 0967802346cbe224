// Readers for the kernel's memory accounting: /proc/meminfo, the memory cgroup (v1 or v2),
// pressure stall information (PSI) and /proc/PID/status.
//
// Each file has a Parse* function that takes the file's contents, so it can be tested with
// fixtures, and a thin Read* wrapper that reads the real file. All sizes are in bytes
// (the kernel's "kB" is KiB and is multiplied by 1024).
//
//   MEMLOAD_ASSIGN_OR_RETURN(Meminfo info, ReadMeminfo());
//   MEMLOAD_ASSIGN_OR_RETURN(CgroupMemory cgroup, ReadCgroupMemory());
//   if (cgroup.hierarchical_limit_bytes) { ... *cgroup.hierarchical_limit_bytes ... }
//
// Errors: a file that cannot be read gives NotFound (absent) or the status for its errno,
// naming the path; contents that cannot be parsed give InvalidArgument naming the file and
// the offending line or field.
//
// All functions are thread-safe: they keep no state between calls.
#ifndef MEMLOAD_CORE_NODE_READERS_H_
#define MEMLOAD_CORE_NODE_READERS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {

// Reads a whole file, to EOF (files in /proc report size 0), through ReadFileUpTo
// (core/bounded_read.h) with kMaxKernelFileBytes: NotFound when the file does not exist;
// otherwise the status matching errno (e.g. PermissionDenied), with the path and strerror
// in the message.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Whether `path` exists (stat succeeds; a dangling link does not): how cgroup code tells
// which control files a hierarchy has, e.g. "memory.max" (v2) or "memory.limit_in_bytes"
// (v1).
bool PathExists(const std::string& path);

// ---- /proc/meminfo -------------------------------------------------------------------

// Machine-wide memory, from /proc/meminfo.
struct Meminfo {
  uint64_t total_bytes = 0;       // MemTotal
  uint64_t available_bytes = 0;   // MemAvailable
  uint64_t free_bytes = 0;        // MemFree
  uint64_t cached_bytes = 0;      // Cached
  uint64_t shmem_bytes = 0;       // Shmem
  uint64_t swap_total_bytes = 0;  // SwapTotal
  uint64_t swap_free_bytes = 0;   // SwapFree
};

// Parses /proc/meminfo contents ("MemTotal:       24684092 kB" lines). MemTotal and
// MemAvailable are required; the other fields are 0 when absent. Lines of other keys are
// ignored. InvalidArgument naming the line when a field used here is not "<number> kB" or
// overflows 64 bits once converted to bytes, and naming the field when a required one is
// missing (e.g. a truncated file).
absl::StatusOr<Meminfo> ParseMeminfo(absl::string_view contents);

// ParseMeminfo of /proc/meminfo.
absl::StatusOr<Meminfo> ReadMeminfo();

// ---- Memory cgroup --------------------------------------------------------------------

// The memory cgroup of a process, or of a given cgroup directory.
struct CgroupMemory {
  int version = 0;  // 1 or 2
  // The cgroup's own limit (memory.max or memory.limit_in_bytes); nullopt = unlimited.
  std::optional<uint64_t> limit_bytes;
  // The smallest limit of this cgroup and its ancestors that are visible under the
  // cgroup mount; nullopt = none of them is limited. This is what the kernel enforces.
  std::optional<uint64_t> hierarchical_limit_bytes;
  uint64_t usage_bytes = 0;  // memory.current or memory.usage_in_bytes
  // "oom_kill" of memory.events (v2) / memory.oom_control (v1, plus those of up to 64
  // descendant cgroups: v2 counts them itself); 0 if unreadable.
  uint64_t oom_kill_count = 0;
  std::string path;  // the cgroup directory read
  // memory.stat's inactive file cache: v1 "total_inactive_file" (this cgroup and its
  // children), else "inactive_file"; 0 when memory.stat cannot be read.
  uint64_t inactive_file_bytes = 0;
  // v2 memory.oom.group: 1 means an OOM kill takes every process of the cgroup at once.
  // False on v1 (no such file) and when unreadable.
  bool oom_group = false;

  // usage − inactive_file (0 when it would go negative): the "working set" the kubelet,
  // cAdvisor, metrics-server (kubectl top) and the HPA report for a container.
  uint64_t WorkingSetBytes() const {
    return usage_bytes > inactive_file_bytes ? usage_bytes - inactive_file_bytes : 0;
  }
};

// The value of `key` in memory.stat contents ("key value" lines, values in bytes);
// nullopt when the key is absent. InvalidArgument naming the line when its value is not a
// number.
absl::StatusOr<std::optional<uint64_t>> ParseMemoryStatValue(absl::string_view contents,
                                                             absl::string_view key);

// Parses cgroup v2 memory.max: "max" (unlimited) -> nullopt, or a byte count. Surrounding
// whitespace is ignored. InvalidArgument otherwise.
absl::StatusOr<std::optional<uint64_t>> ParseCgroupV2Max(absl::string_view contents);

// Parses cgroup v1 memory.limit_in_bytes. The kernel reports "unlimited" as a huge number
// (PAGE_COUNTER_MAX pages, e.g. 9223372036854771712), so any value >= 2^62 is nullopt.
// InvalidArgument if not a non-negative integer.
absl::StatusOr<std::optional<uint64_t>> ParseCgroupV1Limit(absl::string_view contents);

// Parses a single-number counter file such as memory.current or memory.usage_in_bytes.
// InvalidArgument if not a non-negative integer.
absl::StatusOr<uint64_t> ParseCgroupCounter(absl::string_view contents);

// Parses the "oom_kill N" line of memory.events (v2) or memory.oom_control (v1); 0 when the
// line is absent (older kernels). InvalidArgument if its value is not a number.
absl::StatusOr<uint64_t> ParseOomKillCount(absl::string_view contents);

// Finds the directory of the memory cgroup described by /proc/self/cgroup and
// /proc/self/mountinfo contents.
//
// Prefers cgroup v1: a "N:...memory...:/path" line plus a mount of fstype "cgroup" whose
// super options include "memory". Otherwise uses v2: the "0::/path" line plus a mount of
// fstype "cgroup2" (whether that hierarchy has the memory controller cannot be told from
// these files; ReadCgroupMemory fails clearly if it does not). The cgroup path is taken
// relative to the mount's root, so a container that sees its own cgroup mounted at
// /sys/fs/cgroup/memory (mount root "/docker/abc", cgroup path "/docker/abc") gets
// "/sys/fs/cgroup/memory". Malformed lines are skipped.
//
// NotFound when there is no memory cgroup: no matching line, no matching mount, or a cgroup
// path outside every matching mount's root.
absl::StatusOr<std::string> FindMemoryCgroupPath(absl::string_view proc_self_cgroup,
                                                 absl::string_view proc_self_mountinfo);

// Reads the memory cgroup at `cgroup_dir`, or this process's own (see FindMemoryCgroupPath)
// when empty. memory.stat (inactive_file) and memory.oom.group are read when present; their
// absence is not an error, a malformed memory.stat is. The version is detected from the files:
// memory.max + memory.current (v2), else memory.limit_in_bytes + memory.usage_in_bytes (v1);
// NotFound when neither exists.
//
// hierarchical_limit_bytes walks up parent directories while they hold the same limit file
// (so it stops at the cgroup mount point, or the v2 root, which has no memory.max). In v1 it
// assumes memory.use_hierarchy=1, which is the default and the only mode of new kernels.
absl::StatusOr<CgroupMemory> ReadCgroupMemory(const std::string& cgroup_dir = "");

// ---- Pressure stall information -------------------------------------------------------

// /proc/pressure/memory: the share of time (percent) some / all non-idle tasks were stalled
// on memory over the last 10, 60 and 300 s, and the total stall time in microseconds.
struct Pressure {
  double some_avg10 = 0, some_avg60 = 0, some_avg300 = 0;
  uint64_t some_total_us = 0;
  double full_avg10 = 0, full_avg60 = 0, full_avg300 = 0;
  uint64_t full_total_us = 0;
};

// Parses PSI contents:
//   some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
// Both lines and all four keys are required (the kernel always writes them for memory);
// unknown keys are ignored. InvalidArgument naming the line otherwise.
absl::StatusOr<Pressure> ParsePressure(absl::string_view contents);

// ParsePressure of /proc/pressure/memory; nullopt when the kernel has no PSI (the file is
// absent or reading it is not supported).
absl::StatusOr<std::optional<Pressure>> ReadMemoryPressure();

// ---- /proc/PID/status -----------------------------------------------------------------

// A process's memory, from /proc/PID/status.
struct ProcessMemory {
  uint64_t rss_bytes = 0;        // VmRSS
  uint64_t rss_anon_bytes = 0;   // RssAnon
  uint64_t rss_file_bytes = 0;   // RssFile
  uint64_t rss_shmem_bytes = 0;  // RssShmem
  uint64_t vm_size_bytes = 0;    // VmSize
  uint64_t vm_hwm_bytes = 0;     // VmHWM (peak RSS)
  uint64_t vm_lck_bytes = 0;     // VmLck (locked: mlock)
};

// Parses /proc/PID/status contents. VmRSS is required (kernel threads have none); the other
// fields are 0 when absent. Same line rules and errors as ParseMeminfo.
absl::StatusOr<ProcessMemory> ParseProcStatus(absl::string_view contents);

// ParseProcStatus of /proc/PID/status, /proc/self/status for pid 0. NotFound when there is
// no such process; InvalidArgument for a negative pid.
absl::StatusOr<ProcessMemory> ReadProcessMemory(int pid = 0);

}  // namespace memload

#endif  // MEMLOAD_CORE_NODE_READERS_H_
