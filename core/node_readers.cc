#include "core/node_readers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "core/base/status_macros.h"
#include "core/bounded_read.h"

namespace memload {
namespace {

constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();

// "path" with C escapes, for messages.
std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

// Strict decimal: digits only, no sign or whitespace; nullopt if malformed or > 2^64 - 1.
std::optional<uint64_t> ParseDecimal(absl::string_view digits) {
  if (digits.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    if (__builtin_mul_overflow(value, 10, &value) ||
        __builtin_add_overflow(value, static_cast<uint64_t>(c - '0'), &value)) {
      return std::nullopt;
    }
  }
  return value;
}

// A file holding one non-negative integer (surrounding whitespace allowed).
absl::StatusOr<uint64_t> ParseNumberFile(absl::string_view contents, absl::string_view name) {
  const absl::string_view text = absl::StripAsciiWhitespace(contents);
  std::optional<uint64_t> value = ParseDecimal(text);
  if (!value) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected a non-negative integer, got ", Quote(text)));
  }
  return *value;
}

// A "Key:   <number> kB" field of /proc/meminfo or /proc/PID/status.
struct KbField {
  absl::string_view key;
  uint64_t* bytes;
  bool required;
};

// Fills the fields found in `contents`; lines of other keys are ignored. `file` names the
// file in error messages.
absl::Status ParseKbFields(absl::string_view contents, absl::string_view file,
                           absl::Span<const KbField> fields) {
  std::vector<bool> seen(fields.size(), false);
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view key = line.substr(0, colon);
    const auto field = std::find_if(fields.begin(), fields.end(),
                                    [key](const KbField& f) { return f.key == key; });
    if (field == fields.end()) continue;

    const std::vector<absl::string_view> words =
        absl::StrSplit(line.substr(colon + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::optional<uint64_t> kib =
        words.size() == 2 && words[1] == "kB" ? ParseDecimal(words[0]) : std::nullopt;
    if (!kib) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": line ", Quote(line), ": expected \"", key, ": <number> kB\""));
    }
    if (*kib > kMaxU64 / 1024) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": line ", Quote(line), ": value does not fit in 64 bits"));
    }
    *field->bytes = *kib * 1024;
    seen[field - fields.begin()] = true;
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].required && !seen[i]) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": required field \"", fields[i].key,
                                                     "\" is missing (truncated file?)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ProcessMemory> ParseProcStatusNamed(absl::string_view contents,
                                                   absl::string_view file) {
  ProcessMemory m;
  MEMLOAD_RETURN_IF_ERROR(ParseKbFields(contents, file,
                                        {
                                            {"VmRSS", &m.rss_bytes, true},
                                            {"RssAnon", &m.rss_anon_bytes, false},
                                            {"RssFile", &m.rss_file_bytes, false},
                                            {"RssShmem", &m.rss_shmem_bytes, false},
                                            {"VmSize", &m.vm_size_bytes, false},
                                            {"VmHWM", &m.vm_hwm_bytes, false},
                                            {"VmLck", &m.vm_lck_bytes, false},
                                        }));
  return m;
}

// ---- cgroups --------------------------------------------------------------------------

constexpr uint64_t kV1UnlimitedThreshold = uint64_t{1} << 62;

absl::StatusOr<std::optional<uint64_t>> ParseV2MaxNamed(absl::string_view contents,
                                                        absl::string_view name) {
  const absl::string_view text = absl::StripAsciiWhitespace(contents);
  if (text == "max") return std::optional<uint64_t>();
  std::optional<uint64_t> value = ParseDecimal(text);
  if (!value) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected \"max\" or a byte count, got ", Quote(text)));
  }
  return value;
}

absl::StatusOr<std::optional<uint64_t>> ParseV1LimitNamed(absl::string_view contents,
                                                          absl::string_view name) {
  MEMLOAD_ASSIGN_OR_RETURN(const uint64_t value, ParseNumberFile(contents, name));
  if (value >= kV1UnlimitedThreshold) return std::optional<uint64_t>();
  return std::optional<uint64_t>(value);
}

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

// Undoes the kernel's octal escaping of mountinfo paths ("\040" for a space).
std::string UnescapeMountPath(absl::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && IsOctal(field[i + 1]) &&
        IsOctal(field[i + 2]) && IsOctal(field[i + 3])) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

struct CgroupMount {
  std::string root;         // the directory of the hierarchy mounted here
  std::string mount_point;  // where it is mounted
  std::string fstype;       // "cgroup" or "cgroup2"
  std::vector<std::string> super_options;
};

// The cgroup mounts of /proc/PID/mountinfo:
//   35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
//   id parent dev root mount-point options [optional...] - fstype source super-options
std::vector<CgroupMount> ParseCgroupMounts(absl::string_view mountinfo) {
  std::vector<CgroupMount> mounts;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    const std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    const auto separator = std::find(f.begin() + std::min<size_t>(f.size(), 6), f.end(), "-");
    if (f.end() - separator < 4) continue;  // malformed: need fstype, source, options
    const absl::string_view fstype = separator[1];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    mounts.push_back(CgroupMount{UnescapeMountPath(f[3]), UnescapeMountPath(f[4]),
                                 std::string(fstype), absl::StrSplit(separator[3], ',')});
  }
  return mounts;
}

// The directory of cgroup `path` in the first of `mounts` whose root contains it.
std::optional<std::string> ResolveCgroupPath(absl::string_view path,
                                             const std::vector<const CgroupMount*>& mounts) {
  for (const CgroupMount* mount : mounts) {
    absl::string_view relative;  // "" or "/a/b"
    if (mount->root == "/") {
      relative = path == "/" ? "" : path;
    } else if (path == mount->root) {
      relative = "";
    } else if (absl::StartsWith(path, mount->root) && path[mount->root.size()] == '/') {
      relative = path.substr(mount->root.size());
    } else {
      continue;
    }
    if (mount->mount_point == "/") {
      return relative.empty() ? std::string("/") : std::string(relative);
    }
    return absl::StrCat(mount->mount_point, relative);
  }
  return std::nullopt;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  return absl::StrCat(dir, absl::EndsWith(dir, "/") ? "" : "/", name);
}

// "/a/b" -> "/a", "/a" -> "/", "/" and "a" -> "".
std::string ParentDir(absl::string_view dir) {
  const size_t slash = dir.rfind('/');
  if (slash == absl::string_view::npos || dir == "/") return "";
  return std::string(slash == 0 ? "/" : dir.substr(0, slash));
}

// Prefixes the message with the cgroup directory, keeping the code.
absl::Status InCgroup(const absl::Status& status, absl::string_view dir) {
  return absl::Status(status.code(), absl::StrCat("cgroup ", Quote(dir), ": ", status.message()));
}

// ---- PSI ------------------------------------------------------------------------------

// Fills one "some ..." or "full ..." line's values.
absl::Status ParsePressureLine(const std::vector<absl::string_view>& words, absl::string_view line,
                               double* avg10, double* avg60, double* avg300, uint64_t* total_us) {
  bool seen[4] = {false, false, false, false};
  for (size_t i = 1; i < words.size(); ++i) {
    const std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(words[i], absl::MaxSplits('=', 1));
    double* avg = kv.first == "avg10"    ? avg10
                  : kv.first == "avg60"  ? avg60
                  : kv.first == "avg300" ? avg300
                                         : nullptr;
    if (avg != nullptr) {
      if (!absl::SimpleAtod(kv.second, avg) || !std::isfinite(*avg) || *avg < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("pressure line ", Quote(line), ": bad value for \"", kv.first, "\""));
      }
      seen[avg == avg10 ? 0 : avg == avg60 ? 1 : 2] = true;
    } else if (kv.first == "total") {
      std::optional<uint64_t> total = ParseDecimal(kv.second);
      if (!total) {
        return absl::InvalidArgumentError(
            absl::StrCat("pressure line ", Quote(line), ": bad value for \"total\""));
      }
      *total_us = *total;
      seen[3] = true;
    }
  }
  static constexpr const char* kKeys[] = {"avg10", "avg60", "avg300", "total"};
  for (int i = 0; i < 4; ++i) {
    if (!seen[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("pressure line ", Quote(line), ": missing \"", kKeys[i], "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool PathExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  return ReadFileUpTo(path, kMaxKernelFileBytes, "");
}

absl::StatusOr<Meminfo> ParseMeminfo(absl::string_view contents) {
  Meminfo m;
  MEMLOAD_RETURN_IF_ERROR(ParseKbFields(contents, "/proc/meminfo",
                                        {
                                            {"MemTotal", &m.total_bytes, true},
                                            {"MemAvailable", &m.available_bytes, true},
                                            {"MemFree", &m.free_bytes, false},
                                            {"Cached", &m.cached_bytes, false},
                                            {"Shmem", &m.shmem_bytes, false},
                                            {"SwapTotal", &m.swap_total_bytes, false},
                                            {"SwapFree", &m.swap_free_bytes, false},
                                        }));
  return m;
}

absl::StatusOr<Meminfo> ReadMeminfo() {
  MEMLOAD_ASSIGN_OR_RETURN(const std::string contents, ReadFileToString("/proc/meminfo"));
  return ParseMeminfo(contents);
}

absl::StatusOr<std::optional<uint64_t>> ParseCgroupV2Max(absl::string_view contents) {
  return ParseV2MaxNamed(contents, "memory.max");
}

absl::StatusOr<std::optional<uint64_t>> ParseCgroupV1Limit(absl::string_view contents) {
  return ParseV1LimitNamed(contents, "memory.limit_in_bytes");
}

absl::StatusOr<uint64_t> ParseCgroupCounter(absl::string_view contents) {
  return ParseNumberFile(contents, "cgroup counter");
}

absl::StatusOr<uint64_t> ParseOomKillCount(absl::string_view contents) {
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    const std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.empty() || words[0] != "oom_kill") continue;
    std::optional<uint64_t> count = words.size() == 2 ? ParseDecimal(words[1]) : std::nullopt;
    if (!count) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", Quote(line), ": expected \"oom_kill <number>\""));
    }
    return *count;
  }
  return 0;
}

absl::StatusOr<std::optional<uint64_t>> ParseMemoryStatValue(absl::string_view contents,
                                                             absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    const std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.empty() || words[0] != key) continue;
    std::optional<uint64_t> value = words.size() == 2 ? ParseDecimal(words[1]) : std::nullopt;
    if (!value) {
      return absl::InvalidArgumentError(
          absl::StrCat("memory.stat line ", Quote(line), ": expected \"", key, " <number>\""));
    }
    return value;
  }
  return std::optional<uint64_t>();
}

absl::StatusOr<std::string> FindMemoryCgroupPath(absl::string_view proc_self_cgroup,
                                                 absl::string_view proc_self_mountinfo) {
  // /proc/self/cgroup: "hierarchy-id:controller,...:/path"; v2 is "0::/path".
  std::optional<std::string> v1_path;
  std::optional<std::string> v2_path;
  for (absl::string_view line : absl::StrSplit(proc_self_cgroup, '\n')) {
    const std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3 || !absl::StartsWith(parts[2], "/")) continue;
    if (parts[0] == "0" && parts[1].empty()) {
      v2_path = std::string(parts[2]);
    } else {
      for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
        if (controller == "memory") v1_path = std::string(parts[2]);
      }
    }
  }

  const std::vector<CgroupMount> mounts = ParseCgroupMounts(proc_self_mountinfo);
  std::vector<const CgroupMount*> v1_mounts;
  std::vector<const CgroupMount*> v2_mounts;
  for (const CgroupMount& mount : mounts) {
    if (mount.fstype == "cgroup2") {
      v2_mounts.push_back(&mount);
    } else if (std::find(mount.super_options.begin(), mount.super_options.end(), "memory") !=
               mount.super_options.end()) {
      v1_mounts.push_back(&mount);
    }
  }

  if (v1_path) {
    if (std::optional<std::string> dir = ResolveCgroupPath(*v1_path, v1_mounts)) return *dir;
  }
  if (v2_path) {
    if (std::optional<std::string> dir = ResolveCgroupPath(*v2_path, v2_mounts)) return *dir;
  }
  return absl::NotFoundError(absl::StrCat(
      "no memory cgroup: v1 memory path ", v1_path ? Quote(*v1_path) : "none", " with ",
      v1_mounts.size(), " memory mount(s), v2 path ", v2_path ? Quote(*v2_path) : "none", " with ",
      v2_mounts.size(), " cgroup2 mount(s), and no mount root containing the path"));
}

namespace {

// The v1 OOM kills of the cgroups below `dir` (at most kMaxDescendants of them; unreadable
// ones count 0).
uint64_t V1DescendantOomKills(const std::string& dir) {
  constexpr int kMaxDescendants = 64;
  uint64_t kills = 0;
  int visited = 0;
  std::vector<std::string> pending = {dir};
  while (!pending.empty() && visited < kMaxDescendants) {
    const std::string parent = std::move(pending.back());
    pending.pop_back();
    DIR* stream = opendir(parent.c_str());
    if (stream == nullptr) continue;
    while (const dirent* entry = readdir(stream)) {
      const absl::string_view name = entry->d_name;
      if (entry->d_type != DT_DIR || name == "." || name == "..") continue;
      if (++visited > kMaxDescendants) break;
      const std::string child = JoinPath(parent, name);
      if (absl::StatusOr<std::string> events =
              ReadFileToString(JoinPath(child, "memory.oom_control"));
          events.ok()) {
        kills += ParseOomKillCount(*events).value_or(0);
      }
      pending.push_back(child);
    }
    closedir(stream);
  }
  return kills;
}

}  // namespace

absl::StatusOr<CgroupMemory> ReadCgroupMemory(const std::string& cgroup_dir) {
  CgroupMemory result;
  if (cgroup_dir.empty()) {
    MEMLOAD_ASSIGN_OR_RETURN(const std::string cgroup, ReadFileToString("/proc/self/cgroup"));
    MEMLOAD_ASSIGN_OR_RETURN(const std::string mountinfo, ReadFileToString("/proc/self/mountinfo"));
    MEMLOAD_ASSIGN_OR_RETURN(result.path, FindMemoryCgroupPath(cgroup, mountinfo));
  } else {
    result.path = cgroup_dir;
    while (result.path.size() > 1 && result.path.back() == '/') result.path.pop_back();
  }
  const std::string& dir = result.path;

  // The version is told by which limit file exists.
  const char* limit_file = "memory.max";
  const char* usage_file = "memory.current";
  const char* events_file = "memory.events";
  auto parse_limit = ParseV2MaxNamed;
  absl::StatusOr<std::string> limit_contents = ReadFileToString(JoinPath(dir, limit_file));
  result.version = 2;
  if (absl::IsNotFound(limit_contents.status())) {
    limit_file = "memory.limit_in_bytes";
    usage_file = "memory.usage_in_bytes";
    events_file = "memory.oom_control";
    parse_limit = ParseV1LimitNamed;
    limit_contents = ReadFileToString(JoinPath(dir, limit_file));
    result.version = 1;
    if (absl::IsNotFound(limit_contents.status())) {
      return absl::NotFoundError(absl::StrCat(
          "cgroup ", Quote(dir),
          ": neither memory.max nor memory.limit_in_bytes exists: not a memory cgroup"));
    }
  }
  if (!limit_contents.ok()) return limit_contents.status();
  absl::StatusOr<std::optional<uint64_t>> limit = parse_limit(*limit_contents, limit_file);
  if (!limit.ok()) return InCgroup(limit.status(), dir);
  result.limit_bytes = *limit;

  MEMLOAD_ASSIGN_OR_RETURN(const std::string usage, ReadFileToString(JoinPath(dir, usage_file)));
  absl::StatusOr<uint64_t> usage_bytes = ParseNumberFile(usage, usage_file);
  if (!usage_bytes.ok()) return InCgroup(usage_bytes.status(), dir);
  result.usage_bytes = *usage_bytes;

  if (absl::StatusOr<std::string> events = ReadFileToString(JoinPath(dir, events_file));
      events.ok()) {
    absl::StatusOr<uint64_t> oom_kills = ParseOomKillCount(*events);
    if (!oom_kills.ok()) {
      return InCgroup(absl::Status(oom_kills.status().code(),
                                   absl::StrCat(events_file, ": ", oom_kills.status().message())),
                      dir);
    }
    result.oom_kill_count = *oom_kills;
    // v2's memory.events counts the descendants' kills too; v1's memory.oom_control only the
    // cgroup's own: add theirs, as v1's usage_in_bytes does (e.g. an agent's workers in its
    // memload-workers child).
    if (result.version == 1) result.oom_kill_count += V1DescendantOomKills(dir);
  }

  if (absl::StatusOr<std::string> stat = ReadFileToString(JoinPath(dir, "memory.stat"));
      stat.ok()) {
    // v1's total_ counters include child cgroups, like its usage_in_bytes; v2's are
    // hierarchical already.
    absl::StatusOr<std::optional<uint64_t>> inactive =
        result.version == 1 ? ParseMemoryStatValue(*stat, "total_inactive_file")
                            : ParseMemoryStatValue(*stat, "inactive_file");
    if (inactive.ok() && !inactive->has_value() && result.version == 1) {
      inactive = ParseMemoryStatValue(*stat, "inactive_file");
    }
    if (!inactive.ok()) return InCgroup(inactive.status(), dir);
    result.inactive_file_bytes = inactive->value_or(0);
  }
  if (result.version == 2) {
    if (absl::StatusOr<std::string> group = ReadFileToString(JoinPath(dir, "memory.oom.group"));
        group.ok()) {
      result.oom_group = absl::StripAsciiWhitespace(*group) == "1";
    }
  }

  // Walk up while the parent is a cgroup of the same hierarchy (has the same limit file).
  result.hierarchical_limit_bytes = result.limit_bytes;
  for (std::string parent = ParentDir(dir); !parent.empty(); parent = ParentDir(parent)) {
    absl::StatusOr<std::string> contents = ReadFileToString(JoinPath(parent, limit_file));
    if (absl::IsNotFound(contents.status())) break;
    if (!contents.ok()) return contents.status();
    absl::StatusOr<std::optional<uint64_t>> parent_limit = parse_limit(*contents, limit_file);
    if (!parent_limit.ok()) return InCgroup(parent_limit.status(), parent);
    if (*parent_limit &&
        (!result.hierarchical_limit_bytes || **parent_limit < *result.hierarchical_limit_bytes)) {
      result.hierarchical_limit_bytes = *parent_limit;
    }
  }
  return result;
}

absl::StatusOr<Pressure> ParsePressure(absl::string_view contents) {
  Pressure p;
  bool some_seen = false;
  bool full_seen = false;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    const std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.empty()) continue;
    if (words[0] == "some") {
      MEMLOAD_RETURN_IF_ERROR(ParsePressureLine(words, line, &p.some_avg10, &p.some_avg60,
                                                &p.some_avg300, &p.some_total_us));
      some_seen = true;
    } else if (words[0] == "full") {
      MEMLOAD_RETURN_IF_ERROR(ParsePressureLine(words, line, &p.full_avg10, &p.full_avg60,
                                                &p.full_avg300, &p.full_total_us));
      full_seen = true;
    }
  }
  if (!some_seen || !full_seen) {
    return absl::InvalidArgumentError(
        absl::StrCat("pressure: missing the \"", some_seen ? "full" : "some", "\" line"));
  }
  return p;
}

absl::StatusOr<std::optional<Pressure>> ReadMemoryPressure() {
  absl::StatusOr<std::string> contents = ReadFileToString("/proc/pressure/memory");
  if (absl::IsNotFound(contents.status()) || absl::IsUnimplemented(contents.status())) {
    return std::optional<Pressure>();
  }
  if (!contents.ok()) return contents.status();
  MEMLOAD_ASSIGN_OR_RETURN(Pressure pressure, ParsePressure(*contents));
  return std::optional<Pressure>(pressure);
}

absl::StatusOr<ProcessMemory> ParseProcStatus(absl::string_view contents) {
  return ParseProcStatusNamed(contents, "/proc/PID/status");
}

absl::StatusOr<ProcessMemory> ReadProcessMemory(int pid) {
  if (pid < 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid pid ", pid));
  }
  const std::string path = pid == 0 ? "/proc/self/status" : absl::StrCat("/proc/", pid, "/status");
  MEMLOAD_ASSIGN_OR_RETURN(const std::string contents, ReadFileToString(path));
  return ParseProcStatusNamed(contents, path);
}

}  // namespace memload
