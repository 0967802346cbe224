// Test helpers that run memload's real binaries as child processes: spawn with captured
// output, optionally inside a memory cgroup; wait with a deadline; read the agent's bound
// address from its first log line. Bounded in time everywhere: nothing here waits forever.
//
//   Subprocess agent = Subprocess::Start({AgentBinary(), "--listen=127.0.0.1:0"});
//   std::string address = WaitForAgentAddress(agent, absl::Seconds(10));
//   ...
//   agent.Signal(SIGTERM);
//   std::optional<int> code = agent.Wait(absl::Seconds(2));
//
// Thread-safety: thread-compatible.
#ifndef MEMLOAD_TESTS_TESTING_SUBPROCESS_H_
#define MEMLOAD_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace memload {
namespace testing {

// Paths of the binaries in the test's runfiles (Bazel runs tests from the workspace root).
std::string AgentBinary();
std::string WorkerBinary();
std::string CtlBinary();

// The environment a child started with `argv` gets: `environment` (the test's own), except
// that a command running memload-agent or memloadctl (as argv[0], or later, as under
// /usr/bin/env) has `atexit_sleep_ms=0` added to TSAN_OPTIONS unless it already sets it.
// TSan's exit path — which it also runs for _exit — sleeps that long (1 s by default)
// whenever another thread is alive, so that threads racing with the exit's teardown get a
// chance to run. Both binaries leave with _exit (no destructor runs: nothing is torn down
// for such a race), yet gRPC's background threads are always alive, so under TSan every
// memloadctl run and every agent stop cost a second of idle wall time. Test binaries,
// which do run their destructors, keep the sleep. The agent's workers inherit the option;
// they join their threads before leaving, so TSan never sleeps for them either way. Other
// builds ignore TSAN_OPTIONS.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& argv,
                                          const std::vector<std::string>& environment);

class Subprocess {
 public:
  // Starts argv[0] with argv and ChildEnvironment(argv, the test's environment); stdout
  // and stderr go to files of their own. When `cgroup_procs` is set, the child moves itself
  // into that cgroup before exec.
  static absl::StatusOr<Subprocess> Start(const std::vector<std::string>& argv,
                                          const std::string& cgroup_procs = "");
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) = delete;
  ~Subprocess();  // SIGKILL and reap if still running.

  pid_t pid() const { return pid_; }
  void Signal(int signal) const;
  // The exit code (128 + signal when killed), or nullopt if still running at the deadline.
  std::optional<int> Wait(absl::Duration timeout);
  bool running();
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string stdout_path_;
  std::string stderr_path_;
};

// Runs a command to completion (memloadctl): exit code and captured output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout);

// Waits for "listening on HOST:PORT" in the agent's log; "" on timeout or early exit.
std::string WaitForAgentAddress(Subprocess& agent, absl::Duration timeout);

// `count` real agents for a test, started side by side: agent i listens on
// 127.0.0.<i+1>:0 (an address of its own), is named "<name>-<i+1>" and keeps
// --reserve=64MiB, plus `flags`, plus `flags_of_agent[i]` where given (e.g. each its own
// labels). Fails (with the agent's log) when one does not start or does not say where it
// listens within 10 s.
struct LocalAgents {
  std::vector<Subprocess> processes;
  std::vector<std::string> addresses;  // HOST:PORT, in start order.
};
absl::StatusOr<LocalAgents> StartLocalAgents(
    int count, const std::string& name, const std::vector<std::string>& flags = {},
    const std::vector<std::vector<std::string>>& flags_of_agent = {});

// Pids of live memload-worker processes whose parent is `agent_pid`.
std::vector<pid_t> WorkersOf(pid_t agent_pid);

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_SUBPROCESS_H_
