#include "tests/testing/process_memory.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
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

}  // namespace testing
}  // namespace memload
