// WorkerProcessLauncher: the real WorkerLauncher. Each plan runs in a memload-worker
// process (worker_main.cc), so the kernel's OOM killer takes the load, never the agent.
//
//   WorkerProcessLauncher launcher("/usr/lib/memload/memload-worker");
//   MEMLOAD_ASSIGN_OR_RETURN(std::unique_ptr<Worker> worker, launcher.Launch(spec));
//   ... worker->Counters() (lock-free, from shared memory), worker->SetTarget(...) ...
//   worker->RequestStop();
//   WorkerExit exit = worker->WaitExit(absl::Seconds(5));   // kStopped
//
// How a worker is started (Launch):
//   - the spec goes in a memfd (fd 3), the shared block (worker_shared.h) in another memfd
//     (fd 4) that stays mapped in the agent, commands go down a pipe (fd 5); every other
//     descriptor is closed in the worker, stdin is /dev/null, stdout/stderr are inherited;
//   - in the child, before exec: PR_SET_PDEATHSIG(SIGKILL), a check that the agent is still
//     its parent, the move into `cgroup_procs_path` if set, oom_score_adj (the spec's, or
//     1000), default signal dispositions and an empty signal mask;
//   - a placed worker (WorkerSpec.join_cgroup_dir) is joined from outside, before it execs
//     or allocates: the child waits on a pipe right after the parent check; the launcher
//     writes its pid to the target's cgroup.procs, checks /proc/<pid>/cgroup (JoinCgroup,
//     cgroup_join.h) and only then releases it — or kills it and fails the launch, so a
//     worker never runs outside its target. Its OOM kills are read from that cgroup;
//   - a CLOEXEC pipe reports a failure of any of that, or of execv, so Launch fails clearly
//     instead of handing back a worker that died at once.
//
// PR_SET_PDEATHSIG follows the *thread* that forked: the worker is killed when that thread
// exits, even if the agent lives on. Call Launch from a long-lived thread (the plan
// manager's own), never from a short-lived RPC thread.
//
// How a worker's end is told (WorkerExit): exit 0 is kStopped when a stop was requested (or
// the worker reports its plan cancelled), else kCompleted; a non-zero exit is kFailed with
// the worker's own error text; SIGKILL while the OOM kill counter rose since launch is
// kOomKilled; any other signal is kSignaled naming it. The counter is the worker's memory
// cgroup's "oom_kill" (v2 memory.events.local, else memory.events; v1 memory.oom_control),
// read before fork and again at the death; only when that cannot be read (no memory
// cgroup, the v2 root) is the node-wide "oom_kill" of /proc/vmstat used. A counter is not
// per process: a worker SIGKILLed by hand while another task of the same cgroup (v1 and
// memory.events: or of a child cgroup; vmstat: anywhere) was OOM-killed is reported as
// kOomKilled too.
//
// The launcher ignores SIGPIPE process-wide (once), so that writing to a dead worker's
// pipe is an EPIPE error, not the agent's death. Nothing else in the process may reap the
// workers (no waitpid(-1), no SIGCHLD set to SIG_IGN).
//
// Thread-safety: Launch and every Worker method are thread-safe; a Worker's destructor must
// not race with its other methods.
#ifndef MEMLOAD_AGENT_WORKER_PROCESS_H_
#define MEMLOAD_AGENT_WORKER_PROCESS_H_

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "agent/worker.h"
#include "core/sync/mutex.h"

namespace memload {
namespace agent {

struct WorkerProcessOptions {
  // The memload-worker binary; a relative path is taken from the working directory.
  std::string worker_binary;
  // A cgroup.procs file (v1 or v2) the worker moves itself into before exec, e.g. a child
  // cgroup with a memory limit; "" = stay in the agent's cgroup. The worker's OOM kills are
  // then read from that cgroup.
  std::string cgroup_procs_path;
};

class WorkerProcessLauncher final : public WorkerLauncher {
 public:
  explicit WorkerProcessLauncher(std::string worker_binary);
  explicit WorkerProcessLauncher(WorkerProcessOptions options);

  // InvalidArgument for an oom_score_adj outside -1000..1000; ResourceExhausted when fork
  // or a descriptor/memfd cannot be had; the errno's status (e.g. NotFound, PermissionDenied)
  // naming the step when the child could not join the cgroup, set oom_score_adj or exec the
  // binary. The spec's plan itself is not checked here: a malformed one makes the worker
  // exit 2 (kFailed with the reason).
  absl::StatusOr<std::unique_ptr<Worker>> Launch(const WorkerSpec& spec) override;

 private:
  const WorkerProcessOptions options_;
  // One fork at a time: a concurrent child would inherit (until its exec) the other
  // launch's error pipe and delay its verdict.
  Mutex launch_mutex_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_WORKER_PROCESS_H_
