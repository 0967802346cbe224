// What the OS says about a process, for tests that measure memory from outside it.
//
//   ASSERT_TRUE(Eventually([&] { return ResidentOf(worker) >= 64 * kMiB; }));
//   ASSERT_TRUE(Eventually([&] { return !Alive(worker); }));
//
// Thread-safety: thread-safe (reads /proc).
#ifndef MEMLOAD_TESTS_TESTING_PROCESS_MEMORY_H_
#define MEMLOAD_TESTS_TESTING_PROCESS_MEMORY_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memload {
namespace testing {

// RssAnon + RssShmem from /proc/PID/status (0: this process); 0 when it is gone.
uint64_t ResidentOf(pid_t pid);
// VmRSS; 0 when the process is gone.
uint64_t RssOf(pid_t pid);
// The process exists and is neither a zombie nor dead (/proc/PID/stat).
bool Alive(pid_t pid);
// /proc/PID/stat, split where its command name (which may hold spaces and parentheses)
// ends: `command` is what stands between "pid (" and the last ')', `fields` what follows,
// from the state on (fields[0] "S", [1] ppid, ..., [7] minflt). nullopt when it is gone.
struct ProcStat {
  std::string command;
  std::vector<std::string> fields;
};
std::optional<ProcStat> ReadProcStat(pid_t pid);
// Minor page faults of the process so far (/proc/PID/stat: every fresh page it touched);
// 0 when it is gone.
uint64_t MinorFaultsOf(pid_t pid);

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_PROCESS_MEMORY_H_
