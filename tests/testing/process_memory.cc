#include "tests/testing/process_memory.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/node_readers.h"

namespace memload {
namespace testing {

uint64_t ResidentOf(pid_t pid) {
  absl::StatusOr<ProcessMemory> memory = ReadProcessMemory(pid);
  return memory.ok() ? memory->rss_anon_bytes + memory->rss_shmem_bytes : 0;
}

uint64_t RssOf(pid_t pid) {
  absl::StatusOr<ProcessMemory> memory = ReadProcessMemory(pid);
  return memory.ok() ? memory->rss_bytes : 0;
}

bool Alive(pid_t pid) {
  if (pid <= 0) return false;
  absl::StatusOr<std::string> stat = ReadFileToString(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  // "pid (comm) S ...": the state follows the last ')'.
  const size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] != 'Z' &&
         (*stat)[close + 2] != 'X';
}

uint64_t MinorFaultsOf(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFileToString(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return 0;
  // After "pid (comm) ": state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return 0;
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ');
  uint64_t minflt = 0;
  if (fields.size() < 8 || !absl::SimpleAtoi(fields[7], &minflt)) return 0;
  return minflt;
}

}  // namespace testing
}  // namespace memload
