// PlanManager: the agent's domain — every plan it runs, each in a worker process.
//
// It validates and resolves plans (percentages → bytes against the node's effective
// memory, see node_probe.h — or, for a placed plan, against its target cgroup: the
// target's effective limit and limit − usage stand in for the node's total and available
// memory, and target_reserve_bytes for --reserve), enforces the safety limits
// (--max-memory, --reserve),
// keeps plan ids idempotent, runs the leases, and turns worker deaths into plan states
// (OOM_KILLED, FAILED, ...). It knows nothing of gRPC: the service is a thin adapter.
//
//   PlanManager manager(options, &probe, &launcher);
//   manager.Start(spec, [](absl::StatusOr<PlanManager::StartResult> result) { ... });
//   manager.Stop("drill-1", [](absl::StatusOr<v1::PlanStatus> status) { ... });
//   manager.Shutdown();   // stops every plan and returns their memory
//
// Start and Stop answer through callbacks, run on the manager's own thread, so an RPC
// handler never blocks on a worker: workers are launched from that one long-lived thread
// (PR_SET_PDEATHSIG follows the launching *thread*, so a short-lived RPC thread must not
// fork them), and a stop completes when the worker has exited and its memory is back.
//
// Thread-safety: every public method is thread-safe. Callbacks run on the manager's thread
// without its lock held; they must not block for long.
#ifndef MEMLOAD_AGENT_PLAN_MANAGER_H_
#define MEMLOAD_AGENT_PLAN_MANAGER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/cgroup_target.h"
#include "agent/node_probe.h"
#include "agent/worker.h"
#include "proto/memload.pb.h"

namespace memload {
namespace agent {

struct PlanManagerOptions {
  uint64_t max_memory_bytes = 0;  // Cap on what all plans together may hold; 0 = none.
  uint64_t reserve_bytes = 0;     // Effective MemAvailable that plans never eat into.
  absl::Duration default_lease = absl::Minutes(1);
  absl::Duration max_lease = absl::Hours(24);
  // How often leases, ceilings, rates and worker deaths are looked at (10 ms while a stop
  // is pending).
  absl::Duration tick = absl::Milliseconds(100);
  // A stopping worker that has not exited by then is SIGKILLed.
  absl::Duration stop_timeout = absl::Seconds(5);
  size_t max_running_plans = 64;
  size_t ended_plans_kept = 256;  // The oldest ended plans are forgotten beyond this.
  // The memory cgroup utilization plans measure ("" = none).
  std::string cgroup_dir;
  // Placement (PlanSpec.placement): resolves a plan's target to a memory cgroup. Null:
  // placed plans are refused (FailedPrecondition), never run in the agent's cgroup.
  std::shared_ptr<const CgroupTargetResolver> target_resolver;
  // What placed plans leave free below their target cgroup's limit (the node's --reserve
  // does not fit a container): admission and the growth ceiling use limit − usage − this.
  // A plan with expect_oom may cross it.
  uint64_t target_reserve_bytes = 8ull << 20;
};

class PlanManager {
 public:
  struct StartResult {
    v1::PlanStatus plan;
    bool created = false;  // False: an identical plan with this id already existed.
  };
  using StartCallback = std::function<void(absl::StatusOr<StartResult>)>;
  using StatusCallback = std::function<void(absl::StatusOr<v1::PlanStatus>)>;

  // `probe` and `launcher` are not owned and must outlive the manager.
  PlanManager(PlanManagerOptions options, NodeProbe* probe, WorkerLauncher* launcher);
  ~PlanManager();  // Shutdown().
  PlanManager(const PlanManager&) = delete;
  PlanManager& operator=(const PlanManager&) = delete;

  // Validates, resolves and checks `spec` against the limits, then launches its worker.
  // InvalidArgument (malformed), AlreadyExists (same id, different spec), ResourceExhausted
  // (limits, too many plans; the message gives the numbers), FailedPrecondition (a
  // percentage of a cgroup limit that does not exist), Unavailable (shutting down).
  void Start(v1::PlanSpec spec, StartCallback done);

  // Stops a plan; `done` runs once its worker has exited (memory returned). NotFound for
  // an unknown id; an ended plan answers at once with its final status.
  void Stop(const std::string& plan_id, StatusCallback done);

  // Changes a running plan's target. NotFound, FailedPrecondition (ended, or streaming),
  // InvalidArgument (bad quantity), ResourceExhausted (limits).
  absl::StatusOr<v1::PlanStatus> Resize(const std::string& plan_id, const v1::Quantity& target);

  v1::RenewLeasesResponse Renew(const v1::RenewLeasesRequest& request);

  // Running plans first, in start order; ended ones too when asked.
  std::vector<v1::PlanStatus> List(bool include_ended);

  // Stops every plan, waits for the workers (SIGKILL after stop_timeout), and ends the
  // manager's thread. Later Start calls fail with Unavailable. Idempotent.
  void Shutdown();

  // Counters for metrics and tests.
  uint64_t plans_started() const;
  // Plans that ended FAILED, and OOM_KILLED (expected or not), since the manager started.
  uint64_t plans_failed() const;
  uint64_t plans_oom_killed() const;

 private:
  struct Record;

  void ThreadMain();
  void Tick(absl::Time now);
  void DoStart(v1::PlanSpec spec, StartCallback done);
  absl::StatusOr<StartResult> StartLocked(const v1::PlanSpec& spec, const NodeMemory& node,
                                          const std::optional<ResolvedTarget>& target);
  void FinishLocked(Record& record, const WorkerExit& exit, absl::Time now);
  v1::PlanStatus StatusLocked(const Record& record) const;
  void ForgetOldLocked();
  uint64_t CommittedLocked(const Record* except) const;
  // What a placed plan may still grow by: MemAvailable − --reserve, and for a limited target
  // limit − usage − target_reserve_bytes, whichever is less. `view` is TargetView's.
  uint64_t TargetHeadroom(const NodeMemory& view) const;

  const PlanManagerOptions options_;
  NodeProbe* const probe_;
  WorkerLauncher* const launcher_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool shutting_down_ = false;                         // Guarded by mutex_.
  std::deque<std::function<void()>> tasks_;            // Guarded by mutex_.
  std::map<std::string, std::unique_ptr<Record>> plans_;  // Guarded by mutex_.
  uint64_t next_sequence_ = 0;                         // Guarded by mutex_.
  uint64_t plans_started_ = 0;                         // Guarded by mutex_.
  uint64_t plans_failed_ = 0;                          // Guarded by mutex_.
  uint64_t plans_oom_killed_ = 0;                      // Guarded by mutex_.
  std::thread thread_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_PLAN_MANAGER_H_
