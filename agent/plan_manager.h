// PlanManager: the agent's domain — every plan it runs, each in a worker process.
//
// It validates and resolves plans (percentages → bytes against the node's effective
// memory, see node_probe.h — or, for a placed plan, against its target cgroup: the
// target's effective limit and limit − usage stand in for the node's total and available
// memory, and target_reserve_bytes for --reserve), bounds what a client can make it store
// (plan_rules::CheckPlanBounds, proto/plan_rules.h; and the plans it keeps, below),
// enforces the safety limits (--max-memory, --reserve) on what plans really cost
// (admission.h), keeps plan ids idempotent, runs the leases, and turns worker deaths into
// plan states (OOM_KILLED, FAILED, ...). It knows nothing of gRPC: the service is a thin
// adapter.
//
// Plan ids: a Start with the id of a running plan and the same spec is that plan (created
// false); with another spec it is AlreadyExists. The id of an ended plan is free again: a
// Start with it starts a new plan, whatever its spec (created true).
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
// without its lock held; they must not block for long. The lock guards only the records:
// it is never held across fork/exec (Launch), a blocking reap (WaitExit) or a /proc read
// (ResidentBytes), so List, Resize, Renew and Stop never wait behind slow work.
// Leases, ticks and stop deadlines run on the Clock given (Clock::Real() by default).
#ifndef MEMLOAD_AGENT_PLAN_MANAGER_H_
#define MEMLOAD_AGENT_PLAN_MANAGER_H_

#include <atomic>
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
#include "core/clock.h"
#include "core/sync/mutex.h"
#include "proto/memload.pb.h"
#include "proto/plan_rules.h"

namespace memload {
namespace agent {

// How many plans may run at most (--max-plans), and what one ended plan's status may take at
// most (its spec, bounded by proto/plan_rules.h, plus the status fields). With the plan
// bounds, a ListPlans answer holds at most kMaxPlansLimit × (kMaxSpecBytes + status) plus the
// ended plans' byte budget: under gRPC's 4 MiB whatever clients send.
inline constexpr size_t kMaxPlansLimit = 128;
inline constexpr size_t kMaxStatusBytes = plan_rules::kMaxSpecBytes + 1024;

struct PlanManagerOptions {
  uint64_t max_memory_bytes = 0;  // Cap on what all plans together may hold; 0 = none.
  uint64_t reserve_bytes = 0;     // Effective MemAvailable that plans never eat into.
  // Both in [plan_rules::kMinLease, plan_rules::kMaxLease], default_lease <= max_lease.
  absl::Duration default_lease = absl::Minutes(1);
  absl::Duration max_lease = plan_rules::kMaxLease;
  // How often leases, ceilings, rates and worker deaths are looked at (10 ms while a stop
  // is pending).
  absl::Duration tick = absl::Milliseconds(100);
  // A stopping worker that has not exited by then is SIGKILLed.
  absl::Duration stop_timeout = absl::Seconds(5);
  size_t max_running_plans = 64;  // 1..kMaxPlansLimit.
  // The oldest ended plans are forgotten beyond this many, or beyond this many bytes of
  // status (so ListPlans stays far below gRPC's message limit).
  size_t ended_plans_kept = 256;
  size_t ended_plans_kept_bytes = 1 << 20;
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

// OK, or InvalidArgument naming the option: a lease shorter than plan_rules::kMinLease
// (--default-lease=500ms), a default lease above the maximum, max_running_plans outside
// 1..kMaxPlansLimit, a tick that is not positive. For `memload-agent --check-config` and
// AgentServer::Start.
absl::Status CheckPlanManagerOptions(const PlanManagerOptions& options);

class PlanManager {
 public:
  struct StartResult {
    v1::PlanStatus plan;
    bool created = false;  // False: an identical plan with this id already existed.
  };
  using StartCallback = std::function<void(absl::StatusOr<StartResult>)>;
  using StatusCallback = std::function<void(absl::StatusOr<v1::PlanStatus>)>;

  // `probe`, `launcher` and `clock` are not owned and must outlive the manager.
  PlanManager(PlanManagerOptions options, NodeProbe* probe, WorkerLauncher* launcher,
              Clock* clock = Clock::Real());
  ~PlanManager();  // Shutdown().
  PlanManager(const PlanManager&) = delete;
  PlanManager& operator=(const PlanManager&) = delete;

  // Validates, resolves and checks `spec` against the limits, then launches its worker.
  // InvalidArgument (malformed, or beyond proto/plan_rules.h's bounds), AlreadyExists (same
  // id as a running plan, different spec), ResourceExhausted (limits, too many plans; the
  // message gives the numbers), FailedPrecondition (a percentage of a cgroup limit that
  // does not exist), Unavailable (shutting down).
  void Start(v1::PlanSpec spec, StartCallback done) ABSL_LOCKS_EXCLUDED(mutex_);

  // Stops a plan; `done` runs once its worker has exited (memory returned). NotFound for
  // an unknown id; an ended plan answers at once with its final status.
  void Stop(const std::string& plan_id, StatusCallback done) ABSL_LOCKS_EXCLUDED(mutex_);

  // Changes a running plan's target. NotFound, FailedPrecondition (ended, or streaming),
  // InvalidArgument (bad quantity), ResourceExhausted (limits).
  absl::StatusOr<v1::PlanStatus> Resize(const std::string& plan_id, const v1::Quantity& target)
      ABSL_LOCKS_EXCLUDED(mutex_);

  v1::RenewLeasesResponse Renew(const v1::RenewLeasesRequest& request) ABSL_LOCKS_EXCLUDED(mutex_);

  // Running plans first, in start order; ended ones too when asked.
  std::vector<v1::PlanStatus> List(bool include_ended) ABSL_LOCKS_EXCLUDED(mutex_);

  // Stops every plan, waits for the workers (SIGKILL after stop_timeout), and ends the
  // manager's thread. Later Start calls fail with Unavailable. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mutex_);

  // Counters for metrics and tests.
  uint64_t plans_started() const ABSL_LOCKS_EXCLUDED(mutex_);
  // Plans that ended FAILED, and OOM_KILLED (expected or not), since the manager started.
  uint64_t plans_failed() const ABSL_LOCKS_EXCLUDED(mutex_);
  uint64_t plans_oom_killed() const ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  struct Record;

  struct Sample;

  // A running plan's worker and peak, for a /proc read after unlocking (FillResident).
  struct LiveWorker {
    std::shared_ptr<Worker> worker;
    std::shared_ptr<std::atomic<uint64_t>> peak;
  };
  static void FillResident(v1::PlanStatus& status, const LiveWorker& live);
  // Marks the plan stopping (deadline from `now`); the manager's thread sends the stop to
  // the worker after a last read of its resident bytes.
  void RequestStopLocked(Record& record, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  void ThreadMain();
  void Tick(absl::Time now) ABSL_LOCKS_EXCLUDED(mutex_);
  void DoStart(v1::PlanSpec spec, StartCallback done) ABSL_LOCKS_EXCLUDED(mutex_);
  // Validates, resolves and admits `spec` into a record ready to launch (no worker yet).
  // `node` is the target's view for a placed plan (`target` set).
  absl::StatusOr<std::unique_ptr<Record>> PrepareLocked(const v1::PlanSpec& spec,
                                                        const NodeMemory& node,
                                                        const std::optional<ResolvedTarget>& target,
                                                        std::optional<StartResult>* existing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void FinishLocked(Record& record, const WorkerExit& exit, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The status from what the records hold; `live` gets the worker whose resident bytes
  // the caller reads after unlocking (FillResident), empty for an ended plan.
  v1::PlanStatus StatusLocked(const Record& record, LiveWorker* live) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ForgetOldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  uint64_t CommittedLocked(const Record* except) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // What a placed plan may still grow by: MemAvailable − --reserve, and for a limited target
  // limit − usage − target_reserve_bytes, whichever is less. `view` is TargetView's.
  uint64_t TargetHeadroom(const NodeMemory& view) const;

  const PlanManagerOptions options_;
  NodeProbe* const probe_;
  WorkerLauncher* const launcher_;
  Clock* const clock_;

  mutable Mutex mutex_;
  std::condition_variable wake_;
  bool shutting_down_ ABSL_GUARDED_BY(mutex_) = false;
  bool poke_ ABSL_GUARDED_BY(mutex_) = false;  // a stop wants a tick now, not at the next one.
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::unique_ptr<Record>> plans_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mutex_) = 0;
  // The cost of the plan being launched (outside the lock), counted as committed.
  uint64_t launching_commitment_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t plans_started_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t plans_failed_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t plans_oom_killed_ ABSL_GUARDED_BY(mutex_) = 0;
  std::thread thread_;
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_PLAN_MANAGER_H_
