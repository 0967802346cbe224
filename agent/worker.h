// Worker: what the agent sees of one plan running in a memload-worker process, and
// WorkerLauncher, which starts them. The agent's plan manager talks only to these
// interfaces, so its tests can use a fake; WorkerProcess (worker_process.h) is the real one.
//
// Thread-safety: implementations are thread-safe.
#ifndef MEMLOAD_AGENT_WORKER_H_
#define MEMLOAD_AGENT_WORKER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/worker.pb.h"
#include "core/plan_counters.h"

namespace memload {
namespace agent {

// How a worker process ended.
struct WorkerExit {
  enum class Kind {
    kCompleted,      // Exit 0 after the plan ran to its end.
    kStopped,        // Exit 0 after RequestStop() (or its control pipe closed).
    kFailed,         // Non-zero exit: the plan failed; `error` says why.
    kSignaled,       // Killed by a signal that was not the OOM killer's.
    kOomKilled,      // SIGKILL while the kernel's oom_kill counter (cgroup or node) rose.
    kKilledByAgent,  // The agent SIGKILLed it (a stop that did not finish in time).
  };
  Kind kind = Kind::kCompleted;
  int exit_code = 0;
  int signal = 0;
  std::string error;  // The worker's own error text, or a description of the death.
};

// Extra live numbers a worker publishes beside PlanCounters.
struct WorkerExtras {
  std::optional<absl::Time> target_reached;  // First time the plan reached its target.
  double utilization_percent = 0;            // Utilization plans: last measured use.
  double max_deviation_percent = 0;          // Utilization plans: worst |use - target|.
};

class Worker {
 public:
  virtual ~Worker() = default;  // SIGKILLs and reaps a worker still running.

  virtual int pid() const = 0;
  // Lock-free read of the worker's shared counters.
  virtual PlanCountersSnapshot Counters() const = 0;
  virtual WorkerExtras Extras() const = 0;
  // RSS of the worker (RssAnon + RssShmem from /proc/PID/status): resident memory of the
  // load as the OS sees it. 0 once the worker is gone.
  virtual uint64_t ResidentBytes() const = 0;

  // Commands; FailedPrecondition once the worker has exited.
  virtual absl::Status SetTarget(uint64_t target_bytes) = 0;
  virtual absl::Status SetCeiling(uint64_t ceiling_bytes) = 0;
  // Asks the worker to release its memory and exit 0. Returns at once.
  virtual void RequestStop() = 0;

  // Non-blocking: the exit, once the process has ended (reaped).
  virtual std::optional<WorkerExit> PollExit() = 0;
  // Blocks until the worker exits; after `timeout` SIGKILLs it (kKilledByAgent) and reaps.
  virtual WorkerExit WaitExit(absl::Duration timeout) = 0;
};

class WorkerLauncher {
 public:
  virtual ~WorkerLauncher() = default;
  // Starts a worker for `spec`. ResourceExhausted/Internal when the process cannot be
  // started. The worker runs with the spec's oom_score_adj (default 1000) and dies with
  // the agent (PR_SET_PDEATHSIG).
  virtual absl::StatusOr<std::unique_ptr<Worker>> Launch(const WorkerSpec& spec) = 0;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_WORKER_H_
