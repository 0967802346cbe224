#include "tests/testing/process_memory.h"

#include <optional>
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

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFileToString(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return std::nullopt;
  const size_t open = stat->find('(');
  const size_t close = stat->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      close + 2 >= stat->size()) {
    return std::nullopt;
  }
  ProcStat parsed;
  parsed.command = stat->substr(open + 1, close - open - 1);
  parsed.fields = absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ');
  return parsed;
}

bool Alive(pid_t pid) {
  if (pid <= 0) return false;
  const std::optional<ProcStat> stat = ReadProcStat(pid);
  return stat.has_value() && stat->fields[0] != "Z" && stat->fields[0] != "X";
}

uint64_t MinorFaultsOf(pid_t pid) {
  const std::optional<ProcStat> stat = ReadProcStat(pid);
  uint64_t minflt = 0;
  if (!stat.has_value() || stat->fields.size() < 8 || !absl::SimpleAtoi(stat->fields[7], &minflt)) {
    return 0;
  }
  return minflt;
}

}  // namespace testing
}  // namespace memload
