#include "agent/plan_manager.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/admission.h"
#include "agent/plan_convert.h"
#include "core/base/status_macros.h"
#include "core/block_cost.h"
#include "core/node_readers.h"
#include "core/size.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/plan_rules.h"
#include "proto/proto_time.h"

namespace memload {
namespace agent {
namespace {

constexpr absl::Duration kStopPollTick = absl::Milliseconds(10);

bool IsRetainedOrUtilization(const v1::PlanSpec& spec) {
  return spec.kind_case() == v1::PlanSpec::kRetained ||
         spec.kind_case() == v1::PlanSpec::kUtilization;
}

// Resolves a Quantity against the node as the agent sees it (see node_probe.h).
absl::StatusOr<uint64_t> Resolve(const v1::Quantity& quantity, const NodeMemory& node,
                                 absl::string_view field) {
  absl::StatusOr<uint64_t> bytes;
  switch (quantity.value_case()) {
    case v1::Quantity::kBytes:
      return quantity.bytes();
    case v1::Quantity::kPercentOfTotal:
      bytes = PercentOf(quantity.percent_of_total(), node.EffectiveTotal());
      break;
    case v1::Quantity::kPercentOfAvailable:
      bytes = PercentOf(quantity.percent_of_available(), node.EffectiveAvailable());
      break;
    case v1::Quantity::kPercentOfCgroupLimit: {
      const std::optional<uint64_t> limit = node.CgroupLimit();
      if (!limit.has_value()) {
        return absl::FailedPreconditionError(absl::StrCat(
            field, ": percent_of_cgroup_limit, but the agent's memory cgroup has no limit"));
      }
      bytes = PercentOf(quantity.percent_of_cgroup_limit(), *limit);
      break;
    }
    case v1::Quantity::VALUE_NOT_SET:
      return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", bytes.status().message()));
  }
  return *bytes;
}

// The node as a placed plan sees it: its target cgroup in place of the agent's, so that
// percentages resolve against the target's effective limit.
NodeMemory TargetView(const NodeMemory& node, const CgroupMemory& target) {
  NodeMemory view = node;
  view.cgroup = target;
  return view;
}

uint64_t Sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// One look at a placed plan's target, taken without the manager's lock.
struct TargetReading {
  std::string dir;
  int worker_pid = 0;
  absl::StatusOr<CgroupMemory> memory = absl::UnknownError("not read");
  bool exists = true;
  bool others = false;  // A process other than the worker is in it.

  void Read() {
    memory = ReadCgroupMemory(dir);
    exists = PathExists(dir);
    absl::StatusOr<std::vector<int>> pids = CgroupProcs(dir);
    others = false;
    if (pids.ok()) {
      for (int pid : *pids) others |= pid != worker_pid;
    } else {
      others = true;  // Unreadable: assume the container is still there.
    }
  }
};

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// What a retained set of up to `payload` costs, worker included. A payload so large that its
// cost cannot even be computed (too many blocks, overflow) is admitted as at least its own
// size, so that a target of 2^64-1 bytes is "too much memory" (ResourceExhausted) rather
// than a count error when the limits refuse it anyway.
struct Cost {
  uint64_t bytes = 0;
  absl::Status error;  // Why `bytes` is only a lower bound.
};
Cost RetainedPlanCostOrLowerBound(Backing backing, uint64_t block_size, uint64_t payload) {
  absl::StatusOr<uint64_t> cost = RetainedPlanCost(backing, block_size, payload);
  if (cost.ok()) return Cost{*cost, absl::OkStatus()};
  return Cost{payload, cost.status()};
}

// Admits a cost that may only be a lower bound: the limits' refusal first, then the error.
absl::Status AdmitCost(const AdmissionLimits& limits, AdmissionRequest request, const Cost& cost,
                       absl::string_view field) {
  request.cost = cost.bytes;
  MEMLOAD_RETURN_IF_ERROR(Admit(limits, request));
  if (!cost.error.ok()) {
    return absl::Status(cost.error.code(), absl::StrCat(field, ": ", cost.error.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckPlanManagerOptions(const PlanManagerOptions& options) {
  // Leases within [plan_rules::kMinLease, max_lease]: the bounds a plan's own lease has.
  if (options.max_lease < plan_rules::kMinLease) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the maximum lease must be at least ", absl::FormatDuration(plan_rules::kMinLease),
        " (the shortest lease a plan may have), got ", absl::FormatDuration(options.max_lease)));
  }
  if (options.default_lease < plan_rules::kMinLease || options.default_lease > options.max_lease) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--default-lease=", absl::FormatDuration(options.default_lease), " must be in [",
        absl::FormatDuration(plan_rules::kMinLease), ", ", absl::FormatDuration(options.max_lease),
        "] (the shortest and the longest lease a plan may have)"));
  }
  if (options.max_running_plans < 1 || options.max_running_plans > kMaxPlansLimit) {
    return absl::InvalidArgumentError(absl::StrCat("--max-plans must be 1..", kMaxPlansLimit,
                                                   ", got ", options.max_running_plans));
  }
  if (options.tick <= absl::ZeroDuration() || options.stop_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "the tick must be positive and the stop timeout not negative");
  }
  return absl::OkStatus();
}

struct PlanManager::Record {
  uint64_t sequence = 0;
  v1::PlanSpec spec;          // As the client sent it.
  WorkerSpec worker_spec;     // Resolved.
  uint64_t commitment = 0;    // Real cost counted against --max-memory (admission.h).
  uint64_t first_target = 0;  // Resolved target of the first phase, until the worker says.
  // A retained plan's target from Resize, reported until the worker's counters show it
  // (the worker reads the command from its pipe a moment later), unless the plan has moved
  // to another phase or cycle since.
  std::optional<uint64_t> resized_target;
  uint64_t resized_phase = 0;
  uint64_t resized_cycle = 0;
  Backing backing = Backing::kMmap;  // Of the retained set (retained, utilization).
  uint64_t block_size = 0;           // Of the retained set (retained, utilization).
  uint64_t max_payload = 0;          // Retained: the largest phase target.
  size_t status_bytes = 0;           // Ended: what its status takes (the ended budget).
  absl::Duration lease;
  absl::Time started;
  absl::Time lease_expires;
  std::optional<absl::Time> target_reached;
  // Null once the worker has been reaped. Shared so that a reader can use it outside the
  // lock (a /proc read) while the manager's thread reaps it.
  std::shared_ptr<Worker> worker;
  int worker_pid = 0;

  bool stop_requested = false;
  bool lease_expired = false;
  absl::Time stop_deadline;
  std::vector<StatusCallback> stop_waiters;

  bool ended = false;
  absl::Time ended_at;
  v1::PlanState final_state = v1::PLAN_STATE_UNSPECIFIED;
  bool outcome_ok = true;
  std::string error;

  PlanCountersSnapshot counters;  // Last read (the final one once ended).
  WorkerExtras extras;
  uint64_t resident_bytes = 0;
  // The most resident bytes ever read of the worker, by the tick or by an answer that read
  // /proc unlocked (FillResident): shared so those readers keep it without the lock.
  std::shared_ptr<std::atomic<uint64_t>> peak_resident_bytes =
      std::make_shared<std::atomic<uint64_t>>(0);
  // The stop was asked for (stop_requested) but not yet sent to the worker: the manager's
  // thread sends it in its tick, right after a last read of the worker's resident bytes,
  // so the final status carries the peak of a plan stopped between two ticks.
  bool stop_unsent = false;
  double rate = 0;
  uint64_t rate_bytes = 0;
  absl::Time rate_time;
  uint64_t ceiling_sent = UINT64_MAX;

  // Placed plans: where the worker runs, and the target as last read.
  std::optional<ResolvedTarget> target;
  bool target_had_others = false;  // The container's processes were there at the start.
  std::optional<CgroupMemory> target_memory;
  bool target_gone = false;
  std::string target_gone_reason;
  bool target_final_read = false;  // Read once more after the end (e.g. its OOM kill count).
};

uint64_t PlanManager::TargetHeadroom(const NodeMemory& view) const {
  // The node's reserve still holds; a limited target keeps its own reserve too.
  uint64_t headroom = Sub(view.meminfo.available_bytes, options_.reserve_bytes);
  if (std::optional<uint64_t> limit = view.CgroupLimit()) {
    headroom = std::min(headroom,
                        Sub(Sub(*limit, view.cgroup->usage_bytes), options_.target_reserve_bytes));
  }
  return headroom;
}

namespace {

// Raises `peak` to `value` if it is higher (lock-free; several readers may race).
void KeepPeak(std::atomic<uint64_t>& peak, uint64_t value) {
  uint64_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

// Sets the resident figures a status takes from the worker's /proc (called unlocked), and
// keeps the figure as the plan's peak if it is the highest yet.
void PlanManager::FillResident(v1::PlanStatus& status, const LiveWorker& live) {
  if (!live.worker) return;
  const uint64_t resident = live.worker->ResidentBytes();
  if (live.peak) KeepPeak(*live.peak, resident);
  status.set_resident_bytes(resident);
  status.set_peak_resident_bytes(std::max(status.peak_resident_bytes(), resident));
}

void PlanManager::RequestStopLocked(Record& record, absl::Time now) {
  record.stop_requested = true;
  record.stop_unsent = true;
  record.stop_deadline = now + options_.stop_timeout;
  poke_ = true;  // The manager's thread samples the worker and sends the stop at once.
}

PlanManager::PlanManager(PlanManagerOptions options, NodeProbe* probe, WorkerLauncher* launcher,
                         Clock* clock)
    : options_(std::move(options)),
      probe_(probe),
      launcher_(launcher),
      clock_(clock != nullptr ? clock : Clock::Real()) {
  thread_ = std::thread([this] { ThreadMain(); });
}

PlanManager::~PlanManager() { Shutdown(); }

void PlanManager::Start(v1::PlanSpec spec, StartCallback done) {
  {
    MutexLock lock(&mutex_);
    if (!shutting_down_) {
      tasks_.push_back([this, spec = std::move(spec), done]() mutable {
        DoStart(std::move(spec), std::move(done));
      });
      wake_.notify_all();
      return;
    }
  }
  done(absl::UnavailableError("the agent is shutting down"));
}

void PlanManager::DoStart(v1::PlanSpec spec, StartCallback done) {
  absl::StatusOr<NodeMemory> node = probe_->Read();
  if (!node.ok()) {
    done(absl::UnavailableError(
        absl::StrCat("cannot read the node's memory: ", node.status().message())));
    return;
  }
  // A placed plan's target is resolved and read here, without the lock (files).
  std::optional<ResolvedTarget> target;
  if (spec.has_placement()) {
    if (options_.target_resolver == nullptr) {
      done(absl::FailedPreconditionError(
          "this agent cannot place plans in other cgroups (no cgroup access configured)"));
      return;
    }
    absl::StatusOr<ResolvedTarget> resolved = options_.target_resolver->Resolve(spec.placement());
    if (!resolved.ok()) {
      done(resolved.status());
      return;
    }
    absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(resolved->dir);
    if (!memory.ok()) {
      done(
          absl::NotFoundError(absl::StrCat("placement resolved to ", resolved->dir,
                                           ", which cannot be read: ", memory.status().message())));
      return;
    }
    node = TargetView(*node, *memory);
    target = *std::move(resolved);
  }
  std::unique_ptr<Record> record;
  LiveWorker live;
  absl::StatusOr<StartResult> answer_now;  // Set unless a worker is to be launched.
  {
    MutexLock lock(&mutex_);
    std::optional<StartResult> existing;
    absl::StatusOr<std::unique_ptr<Record>> prepared =
        shutting_down_ ? absl::UnavailableError("the agent is shutting down")
                       : PrepareLocked(spec, *node, target, &existing);
    if (existing.has_value()) {
      existing->plan = StatusLocked(*plans_.at(spec.plan_id()), &live);
      answer_now = *std::move(existing);
    } else if (!prepared.ok()) {
      answer_now = prepared.status();
    } else {
      record = *std::move(prepared);
      // Counted as committed while the worker is launched without the lock.
      launching_commitment_ = record->commitment;
    }
  }
  if (record == nullptr) {
    if (answer_now.ok()) FillResident(answer_now->plan, live);
    done(std::move(answer_now));
    return;
  }
  // fork and exec outside the lock: List, Resize, Renew and Stop go on meanwhile.
  absl::StatusOr<std::unique_ptr<Worker>> worker = launcher_->Launch(record->worker_spec);
  absl::StatusOr<StartResult> result;
  std::shared_ptr<Worker> discard;
  {
    MutexLock lock(&mutex_);
    launching_commitment_ = 0;
    if (!worker.ok()) {
      result = worker.status();
    } else if (shutting_down_) {
      (*worker)->RequestStop();
      discard = std::move(*worker);
      result = absl::UnavailableError("the agent is shutting down");
    } else {
      const absl::Time now = clock_->Now();
      record->worker = std::move(*worker);
      record->worker_pid = record->worker->pid();
      record->sequence = next_sequence_++;
      record->started = now;
      record->lease_expires = now + record->lease;
      record->rate_time = now;
      if (target.has_value()) {
        record->target = target;
        record->target_had_others = !target->pids.empty();
        record->target_memory = node->cgroup;
      }
      ++plans_started_;
      const std::string id = record->spec.plan_id();
      // An ended plan with this id is replaced (its id is free again).
      Record& stored = *(plans_[id] = std::move(record));
      ForgetOldLocked();
      result = StartResult{StatusLocked(stored, &live), /*created=*/true};
    }
  }
  discard.reset();  // SIGKILLs and reaps, unlocked.
  if (result.ok()) FillResident(result->plan, live);
  done(std::move(result));
}

absl::StatusOr<std::unique_ptr<PlanManager::Record>> PlanManager::PrepareLocked(
    const v1::PlanSpec& spec, const NodeMemory& node, const std::optional<ResolvedTarget>& target,
    std::optional<StartResult>* existing) {
  // The plan rules memloadctl shares; what needs the node or the agent's flags follows.
  MEMLOAD_RETURN_IF_ERROR(plan_rules::ValidatePlanSpec(spec));
  if (spec.has_placement() && !target.has_value()) {
    return absl::InternalError("a placed plan reached the manager unresolved");
  }
  auto found = plans_.find(spec.plan_id());
  if (found != plans_.end() && !found->second->ended) {
    if (google::protobuf::util::MessageDifferencer::Equals(found->second->spec, spec)) {
      *existing = StartResult{v1::PlanStatus(), /*created=*/false};
      return nullptr;
    }
    return absl::AlreadyExistsError(absl::StrCat(
        "plan \"", spec.plan_id(),
        "\" is already running with a different spec; stop it or choose another plan_id"));
  }
  // An ended plan's id is free: a new plan starts (and replaces its record).
  size_t running = 0;
  for (const auto& [id, record] : plans_) running += record->ended ? 0 : 1;
  if (running >= options_.max_running_plans) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the agent already runs ", running, " plans, its maximum; stop one first"));
  }

  auto record = std::make_unique<Record>();
  record->spec = spec;
  WorkerSpec& worker_spec = record->worker_spec;
  *worker_spec.mutable_plan() = spec;
  worker_spec.set_cgroup_dir(node.cgroup.has_value() ? node.cgroup->path : "");
  if (target.has_value()) worker_spec.set_join_cgroup_dir(target->dir);

  // Lease.
  if (spec.has_lease()) {
    const google::protobuf::Duration& lease = spec.lease();
    if (lease.seconds() < 0 || lease.nanos() < 0 || lease.nanos() >= 1000000000 ||
        absl::Seconds(lease.seconds()) > options_.max_lease) {
      return absl::InvalidArgumentError(
          absl::StrCat("lease must be in [", absl::FormatDuration(plan_rules::kMinLease), ", ",
                       absl::FormatDuration(options_.max_lease), "], got ", lease.seconds(), "s ",
                       lease.nanos(), "ns"));
    }
  }
  record->lease = spec.has_lease() ? FromProtoDuration(spec.lease()) : options_.default_lease;
  if (record->lease < plan_rules::kMinLease || record->lease > options_.max_lease) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lease must be in [", absl::FormatDuration(plan_rules::kMinLease), ", ",
        absl::FormatDuration(options_.max_lease), "], got ", absl::FormatDuration(record->lease)));
  }

  const AdmissionLimits limits{options_.max_memory_bytes, options_.reserve_bytes};
  AdmissionRequest request;
  request.what = absl::StrCat("plan \"", spec.plan_id(), "\"");
  request.committed = SaturatingAdd(CommittedLocked(nullptr), launching_commitment_);
  request.available = node.EffectiveAvailable();
  // A plan that expects an OOM kill is an OOM drill: it is meant to cross the reserve (it
  // still obeys --max-memory). A utilization plan is checked against the reserve below.
  // A placed plan is measured against its target's room (TargetHeadroom, which keeps the
  // node's --reserve too): the available memory admission sees is that room.
  request.check_reserve = spec.kind_case() != v1::PlanSpec::kUtilization && !spec.expect_oom();
  AdmissionLimits admit_limits = limits;
  if (target.has_value()) {
    request.available = TargetHeadroom(node);
    admit_limits.reserve_bytes = 0;
  }

  // A placed plan refused for its target's room says what the room is made of.
  const auto TargetRefusal = [&](const std::optional<ResolvedTarget>& target,
                                 const NodeMemory& node, const AdmissionRequest& request,
                                 uint64_t cost) -> absl::Status {
    if (!target.has_value() || !request.check_reserve || TargetHeadroom(node) >= cost) {
      return absl::OkStatus();
    }
    const std::optional<uint64_t> limit = node.CgroupLimit();
    return absl::ResourceExhaustedError(absl::StrCat(
        "plan \"", spec.plan_id(), "\" needs ", FormatSize(cost), " but its target ", target->dir,
        " has room for ", FormatSize(TargetHeadroom(node)),
        limit ? absl::StrCat(": limit ", FormatSize(*limit), ", usage ",
                             FormatSize(node.cgroup->usage_bytes), ", target reserve ",
                             FormatSize(options_.target_reserve_bytes))
              : "",
        "; MemAvailable ", FormatSize(node.meminfo.available_bytes), ", --reserve ",
        FormatSize(options_.reserve_bytes),
        node.cgroup->oom_group ? " (memory.oom.group=1: an OOM kill there would take the whole "
                                 "container, the application too)"
                               : "",
        "; set expect_oom for an OOM drill"));
  };

  // Resolve quantities to bytes and work out the most the plan can hold, at its real cost.
  switch (spec.kind_case()) {
    case v1::PlanSpec::kRetained: {
      v1::RetainedPlan* retained = worker_spec.mutable_plan()->mutable_retained();
      for (int i = 0; i < retained->phases_size(); ++i) {
        v1::Phase* phase = retained->mutable_phases(i);
        MEMLOAD_ASSIGN_OR_RETURN(
            uint64_t bytes,
            Resolve(phase->target(), node, absl::StrCat("retained.phases[", i, "].target")));
        phase->mutable_target()->set_bytes(bytes);
        record->max_payload = std::max(record->max_payload, bytes);
        if (i == 0) record->first_target = bytes;
      }
      MEMLOAD_ASSIGN_OR_RETURN(RetainedPlanSpec core_spec, ToRetainedPlanSpec(*retained));
      record->backing = core_spec.set.backing;
      record->block_size = core_spec.set.block_size;
      // Byte targets memloadctl checked too; percentages resolve here.
      for (int i = 0; i < retained->phases_size(); ++i) {
        if (std::optional<std::string> problem = plan_rules::BelowOneBlockProblem(
                retained->phases(i).target().bytes(), record->block_size)) {
          return plan_rules::FieldError(absl::StrCat("retained.phases[", i, "].target"), *problem);
        }
      }
      const Cost cost =
          RetainedPlanCostOrLowerBound(record->backing, record->block_size, record->max_payload);
      MEMLOAD_RETURN_IF_ERROR(TargetRefusal(target, node, request, cost.bytes));
      request.cost = cost.bytes;
      MEMLOAD_RETURN_IF_ERROR(Admit(admit_limits, request));
      // The block count and cost rule memloadctl checks early (same function, same words).
      MEMLOAD_RETURN_IF_ERROR(plan_rules::RetainedCostProblem(
          record->backing, record->block_size, record->max_payload, SystemPageSize()));
      MEMLOAD_RETURN_IF_ERROR(AdmitCost(admit_limits, request, cost, "retained"));
      record->commitment = cost.bytes;
      break;
    }
    case v1::PlanSpec::kUtilization: {
      const v1::UtilizationPlan& utilization = spec.utilization();
      v1::UtilizationPlan::Reference reference = utilization.reference();
      if (reference == v1::UtilizationPlan::REFERENCE_UNSPECIFIED) {
        reference = node.CgroupLimit().has_value() ? v1::UtilizationPlan::REFERENCE_CGROUP
                                                   : v1::UtilizationPlan::REFERENCE_NODE;
      }
      if (reference == v1::UtilizationPlan::REFERENCE_CGROUP && !node.CgroupLimit()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "utilization.reference is CGROUP, but ",
            target.has_value() ? "the target cgroup " + target->dir : "the agent's memory cgroup",
            " has no limit"));
      }
      worker_spec.set_reference(reference);
      const bool cgroup = reference == v1::UtilizationPlan::REFERENCE_CGROUP;
      const uint64_t capacity = cgroup ? *node.CgroupLimit() : node.meminfo.total_bytes;
      const uint64_t used = cgroup
                                ? node.cgroup->usage_bytes
                                : node.meminfo.total_bytes - std::min(node.meminfo.total_bytes,
                                                                      node.meminfo.available_bytes);
      MEMLOAD_ASSIGN_OR_RETURN(UtilizationSpec core_spec, ToUtilizationSpec(utilization, nullptr));
      record->backing = core_spec.set.backing;
      record->block_size = core_spec.set.block_size;
      MEMLOAD_ASSIGN_OR_RETURN(uint64_t wanted, PercentOf(utilization.target_percent(), capacity));
      record->first_target = wanted;
      // A placed plan measuring its target keeps the target's reserve below the target's
      // limit (the node's --reserve is for the node's memory, see TargetHeadroom).
      const bool in_target = target.has_value() && cgroup;
      const uint64_t reserve = in_target ? options_.target_reserve_bytes : options_.reserve_bytes;
      if (capacity - std::min(capacity, wanted) < reserve) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "utilization target ", utilization.target_percent(), "% of ", FormatSize(capacity),
            " leaves less than the ", in_target ? "--target-reserve" : "--reserve", " of ",
            FormatSize(reserve)));
      }
      // What the plan must add now; it grows and shrinks as others come and go.
      const Cost cost = RetainedPlanCostOrLowerBound(record->backing, record->block_size,
                                                     wanted > used ? wanted - used : 0);
      MEMLOAD_RETURN_IF_ERROR(AdmitCost(admit_limits, request, cost, "utilization"));
      record->commitment = cost.bytes;
      break;
    }
    case v1::PlanSpec::kStreaming: {
      MEMLOAD_ASSIGN_OR_RETURN(StreamOptions options, ToStreamOptions(spec.streaming()));
      // Live memory of a stream: its window, or one block per worker in flight.
      absl::StatusOr<uint64_t> cost = StreamingPlanCost(options.block_size, options.return_to_os,
                                                        options.window, options.workers);
      if (!cost.ok()) {
        return absl::Status(cost.status().code(),
                            absl::StrCat("streaming.window: ", cost.status().message()));
      }
      request.cost = *cost;
      MEMLOAD_RETURN_IF_ERROR(TargetRefusal(target, node, request, *cost));
      MEMLOAD_RETURN_IF_ERROR(Admit(admit_limits, request));
      record->commitment = *cost;
      break;
    }
    case v1::PlanSpec::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "a plan needs a kind: one of retained, utilization, streaming");
  }

  // The ceiling it starts under: what the reserve leaves (refreshed every tick).
  worker_spec.set_initial_ceiling_bytes(UINT64_MAX);
  return record;
}

uint64_t PlanManager::CommittedLocked(const Record* except) const {
  uint64_t total = 0;
  for (const auto& [id, record] : plans_) {
    if (!record->ended && record.get() != except) {
      total = SaturatingAdd(total, record->commitment);
    }
  }
  return total;
}

void PlanManager::Stop(const std::string& plan_id, StatusCallback done) {
  absl::StatusOr<v1::PlanStatus> answer_now;
  {
    MutexLock lock(&mutex_);
    auto it = plans_.find(plan_id);
    if (it == plans_.end()) {
      answer_now = absl::NotFoundError(absl::StrCat("no plan \"", plan_id, "\" on this agent"));
    } else if (it->second->ended) {
      answer_now = StatusLocked(*it->second, nullptr);
    } else {
      Record& record = *it->second;
      if (!record.stop_requested) RequestStopLocked(record, clock_->Now());
      record.stop_waiters.push_back(std::move(done));
      poke_ = true;  // Look at the worker at once rather than at the next tick.
      wake_.notify_all();
      return;
    }
  }
  done(std::move(answer_now));
}

absl::StatusOr<v1::PlanStatus> PlanManager::Resize(const std::string& plan_id,
                                                   const v1::Quantity& target) {
  absl::StatusOr<NodeMemory> node = probe_->Read();
  if (!node.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the node's memory: ", node.status().message()));
  }
  // A placed plan resizes against its target cgroup, read without the lock.
  std::string target_dir;
  {
    MutexLock lock(&mutex_);
    auto it = plans_.find(plan_id);
    if (it != plans_.end() && it->second->target) target_dir = it->second->target->dir;
  }
  if (!target_dir.empty()) {
    absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(target_dir);
    if (!memory.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("plan \"", plan_id, "\": its target ", target_dir,
                       " cannot be read: ", memory.status().message()));
    }
    node = TargetView(*node, *memory);
  }
  v1::PlanStatus status;
  LiveWorker live;
  {
    MutexLock lock(&mutex_);
    auto it = plans_.find(plan_id);
    if (it == plans_.end()) {
      return absl::NotFoundError(absl::StrCat("no plan \"", plan_id, "\" on this agent"));
    }
    Record& record = *it->second;
    if (record.ended || record.stop_requested) {
      return absl::FailedPreconditionError(absl::StrCat(
          "plan \"", plan_id, "\" has ended or is stopping; its target can no longer change"));
    }
    if (!IsRetainedOrUtilization(record.spec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("plan \"", plan_id, "\" is a streaming plan: it has no target to resize"));
    }
    MEMLOAD_ASSIGN_OR_RETURN(uint64_t bytes, Resolve(target, *node, "target"));
    if (record.spec.kind_case() == v1::PlanSpec::kRetained) {
      if (std::optional<std::string> problem =
              plan_rules::BelowOneBlockProblem(bytes, record.block_size)) {
        return plan_rules::FieldError("target", *problem);
      }
    }
    const uint64_t payload = record.worker->Counters().payload_bytes;
    uint64_t new_payload = bytes;  // Retained: the target is the plan's own payload.
    if (record.spec.kind_case() == v1::PlanSpec::kUtilization) {
      // For a utilization plan the target is the node's (or cgroup's) used bytes.
      const bool cgroup = record.worker_spec.reference() == v1::UtilizationPlan::REFERENCE_CGROUP;
      const uint64_t used =
          cgroup && node->cgroup.has_value()
              ? node->cgroup->usage_bytes
              : node->meminfo.total_bytes -
                    std::min(node->meminfo.total_bytes, node->meminfo.available_bytes);
      new_payload = SaturatingAdd(payload, bytes > used ? bytes - used : 0);
    }
    // One admission for start and resize: the real cost of the new size, of which what the
    // plan holds now is not taken from the available memory again.
    AdmissionRequest request;
    request.what = absl::StrCat("resizing \"", plan_id, "\" to ", FormatSize(bytes));
    request.held = RetainedPlanCostOrLowerBound(record.backing, record.block_size, payload).bytes;
    request.committed = SaturatingAdd(CommittedLocked(&record), launching_commitment_);
    request.available = node->EffectiveAvailable();
    request.check_reserve = !record.spec.expect_oom();
    const Cost cost = RetainedPlanCostOrLowerBound(record.backing, record.block_size, new_payload);
    AdmissionLimits limits{options_.max_memory_bytes, options_.reserve_bytes};
    if (record.target) {
      // Its target's room (which keeps the node's --reserve too) is what it may take.
      request.what = absl::StrCat(request.what, " (target ", record.target->dir, ")");
      request.available = TargetHeadroom(*node);
      limits.reserve_bytes = 0;
    }
    MEMLOAD_RETURN_IF_ERROR(AdmitCost(limits, request, cost, "target"));
    const PlanCountersSnapshot before = record.worker->Counters();
    MEMLOAD_RETURN_IF_ERROR(record.worker->SetTarget(bytes));
    record.commitment = std::max(cost.bytes, request.held);
    if (record.spec.kind_case() == v1::PlanSpec::kRetained) {
      record.max_payload = bytes;
      record.resized_target = bytes;
      record.resized_phase = before.phase;
      record.resized_cycle = before.cycle;
    }
    record.target_reached.reset();
    status = StatusLocked(record, &live);
  }
  FillResident(status, live);
  return status;
}

v1::RenewLeasesResponse PlanManager::Renew(const v1::RenewLeasesRequest& request) {
  v1::RenewLeasesResponse response;
  const absl::Time now = clock_->Now();
  MutexLock lock(&mutex_);
  for (const std::string& id : request.plan_ids()) {
    auto it = plans_.find(id);
    if (it == plans_.end() || it->second->ended || it->second->stop_requested) {
      response.add_not_found(id);
      continue;
    }
    Record& record = *it->second;
    absl::Duration lease = record.lease;
    if (request.has_lease()) {
      // The service refuses a lease under kMinLease (plan_rules::CheckRenewLeases).
      lease =
          std::clamp(FromProtoDuration(request.lease()), plan_rules::kMinLease, options_.max_lease);
    }
    record.lease_expires = now + lease;
    response.add_renewed(id);
  }
  return response;
}

std::vector<v1::PlanStatus> PlanManager::List(bool include_ended) {
  std::vector<v1::PlanStatus> statuses;
  std::vector<LiveWorker> live;
  {
    MutexLock lock(&mutex_);
    std::vector<const Record*> records;
    for (const auto& [id, record] : plans_) {
      if (include_ended || !record->ended) records.push_back(record.get());
    }
    std::sort(records.begin(), records.end(), [](const Record* a, const Record* b) {
      if (a->ended != b->ended) return !a->ended;
      return a->sequence < b->sequence;
    });
    statuses.reserve(records.size());
    live.resize(records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      statuses.push_back(StatusLocked(*records[i], &live[i]));
    }
  }
  // Resident bytes from /proc, one file per running plan: unlocked.
  for (size_t i = 0; i < statuses.size(); ++i) FillResident(statuses[i], live[i]);
  return statuses;
}

uint64_t PlanManager::plans_started() const {
  MutexLock lock(&mutex_);
  return plans_started_;
}

uint64_t PlanManager::plans_failed() const {
  MutexLock lock(&mutex_);
  return plans_failed_;
}

uint64_t PlanManager::plans_oom_killed() const {
  MutexLock lock(&mutex_);
  return plans_oom_killed_;
}

void PlanManager::Shutdown() {
  {
    MutexLock lock(&mutex_);
    if (!shutting_down_) {
      shutting_down_ = true;
      poke_ = true;
      const absl::Time now = clock_->Now();
      for (auto& [id, record] : plans_) {
        if (record->ended || record->stop_requested) continue;
        RequestStopLocked(*record, now);
      }
    }
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void PlanManager::ThreadMain() {
  MutexLock lock(&mutex_);
  absl::Time next_tick = clock_->Now();
  while (true) {
    while (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.Unlock();
      task();
      lock.Lock();
    }
    bool stopping = false;
    bool running = false;
    for (const auto& [id, record] : plans_) {
      running |= !record->ended;
      stopping |= !record->ended && record->stop_requested;
    }
    if (shutting_down_ && !running && tasks_.empty()) break;
    const absl::Time now = clock_->Now();
    if (poke_) {
      poke_ = false;
      next_tick = now;
    }
    if (now >= next_tick) {
      lock.Unlock();
      Tick(now);
      lock.Lock();
      next_tick = now + (stopping ? kStopPollTick : options_.tick);
      continue;  // Re-evaluate: the tick may have ended plans.
    }
    if (stopping) next_tick = std::min(next_tick, now + kStopPollTick);
    clock_->WaitUntil(wake_, lock.native(), next_tick, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return !tasks_.empty() || poke_;
    });
  }
}

// What a tick read of one running worker, unlocked.
struct PlanManager::Sample {
  Record* record = nullptr;  // Stable: only this thread ends or forgets records.
  std::shared_ptr<Worker> worker;
  bool send_stop = false;  // A stop asked for since the last tick: send it after the read.
  bool kill = false;       // Its stop deadline passed: SIGKILL and reap.
  std::optional<WorkerExit> exit;
  PlanCountersSnapshot counters;
  WorkerExtras extras;
  uint64_t resident = 0;
};

void PlanManager::Tick(absl::Time now) {
  absl::StatusOr<NodeMemory> node = probe_->Read();
  std::vector<Sample> samples;
  // Placed plans' targets, read without the lock.
  std::map<std::string, TargetReading> targets;
  {
    MutexLock lock(&mutex_);
    for (auto& [id, entry] : plans_) {
      Record& record = *entry;
      if (record.target && !(record.ended && record.target_final_read)) {
        TargetReading& reading = targets[id];
        reading.dir = record.target->dir;
        reading.worker_pid = record.worker_pid;
      }
      if (record.ended) continue;
      if (!record.stop_requested && now >= record.lease_expires) {
        record.lease_expired = true;
        RequestStopLocked(record, now);
      }
      Sample sample;
      sample.record = &record;
      sample.worker = record.worker;
      sample.send_stop = record.stop_unsent;
      record.stop_unsent = false;
      sample.kill = record.stop_requested && now >= record.stop_deadline;
      samples.push_back(std::move(sample));
    }
  }
  // Reaping (a SIGKILLed worker holding many GiB is slow to reap), /proc and cgroup reads:
  // unlocked.
  for (auto& [id, reading] : targets) reading.Read();
  for (Sample& sample : samples) {
    // Resident first: a worker told to stop starts giving its memory back at once, and
    // this is the last look at what it held (its peak).
    sample.resident = sample.worker->ResidentBytes();
    if (sample.send_stop) sample.worker->RequestStop();
    sample.exit =
        sample.kill ? sample.worker->WaitExit(absl::ZeroDuration()) : sample.worker->PollExit();
    if (!sample.exit) {
      sample.counters = sample.worker->Counters();
      sample.extras = sample.worker->Extras();
    }
  }
  std::vector<std::pair<StatusCallback, v1::PlanStatus>> answers;
  {
    MutexLock lock(&mutex_);
    std::vector<Record*> growing;
    // Ended placed plans: their target read once more (e.g. its OOM kill count).
    for (auto& [id, entry] : plans_) {
      Record& record = *entry;
      auto reading = targets.find(id);
      if (!record.ended || reading == targets.end()) continue;
      if (reading->second.memory.ok()) record.target_memory = *reading->second.memory;
      record.target_final_read = true;
    }
    for (Sample& sample : samples) {
      Record& record = *sample.record;
      const std::string& id = record.spec.plan_id();
      KeepPeak(*record.peak_resident_bytes, sample.resident);
      if (sample.exit) {
        FinishLocked(record, *sample.exit, now);
      } else {
        record.counters = sample.counters;
        record.extras = sample.extras;
        // The worker stamps the moment it first held its target; until its stamp arrives,
        // the tick that first sees HOLDING stands in, so a HOLDING status always has one.
        if (!record.target_reached &&
            (record.extras.target_reached || record.counters.state == PlanState::kHolding)) {
          record.target_reached = record.extras.target_reached.value_or(now);
        }
        record.resident_bytes = sample.resident;
        const double seconds = absl::ToDoubleSeconds(now - record.rate_time);
        if (seconds >= 0.05) {
          record.rate = (record.counters.bytes_allocated - record.rate_bytes) / seconds;
          record.rate_bytes = record.counters.bytes_allocated;
          record.rate_time = now;
        }
        if (auto reading = targets.find(id); record.target && reading != targets.end()) {
          if (reading->second.memory.ok()) record.target_memory = *reading->second.memory;
          std::string gone;
          if (!reading->second.exists) {
            gone = absl::StrCat("the target cgroup ", record.target->dir, " was removed");
          } else if (record.target_had_others && !reading->second.others) {
            gone = absl::StrCat("every process of the target ", record.target->dir,
                                " other than the worker has exited: the container stopped or "
                                "restarted");
          }
          if (!gone.empty() && !record.stop_requested) {
            record.target_gone = true;
            record.target_gone_reason = gone + "; the plan was stopped";
            RequestStopLocked(record, now);  // Sent by the next tick, at once (poke_).
          }
        }
        if (!record.stop_requested && IsRetainedOrUtilization(record.spec) &&
            !record.spec.expect_oom()) {
          if (!record.target) {
            growing.push_back(&record);
          } else if (node.ok() && record.target_memory) {
            // A placed plan grows within its target's room (see TargetHeadroom), in whole
            // blocks at their real cost.
            const uint64_t payload = record.counters.payload_bytes;
            uint64_t ceiling = SaturatingAdd(
                payload, PayloadWithin(record.backing, record.block_size,
                                       TargetHeadroom(TargetView(*node, *record.target_memory)),
                                       SystemPageSize()));
            if (ceiling >= record.max_payload &&
                record.spec.kind_case() == v1::PlanSpec::kRetained) {
              ceiling = UINT64_MAX;
            }
            if (ceiling != record.ceiling_sent && record.worker->SetCeiling(ceiling).ok()) {
              record.ceiling_sent = ceiling;
            }
          }
        }
      }
      if (record.ended) {
        for (StatusCallback& waiter : record.stop_waiters) {
          answers.emplace_back(std::move(waiter), StatusLocked(record, nullptr));
        }
        record.stop_waiters.clear();
      }
    }
    // The reserve: plans that still grow share what is left above it, at their real cost
    // per block. A plan whose share covers the rest of its way runs uncapped.
    if (node.ok() && !growing.empty()) {
      const uint64_t available = node->EffectiveAvailable();
      const uint64_t headroom =
          available > options_.reserve_bytes ? available - options_.reserve_bytes : 0;
      const uint64_t share = headroom / growing.size();
      for (Record* record : growing) {
        const uint64_t payload = record->counters.payload_bytes;
        uint64_t ceiling = SaturatingAdd(
            payload, PayloadWithin(record->backing, record->block_size, share, SystemPageSize()));
        if (ceiling >= record->max_payload && record->spec.kind_case() == v1::PlanSpec::kRetained) {
          ceiling = UINT64_MAX;
        }
        if (ceiling != record->ceiling_sent) {
          // A worker that just exited refuses; its exit is picked up on the next tick.
          if (record->worker->SetCeiling(ceiling).ok()) record->ceiling_sent = ceiling;
        }
      }
    }
    ForgetOldLocked();
  }
  for (auto& [callback, status] : answers) callback(std::move(status));
}

void PlanManager::FinishLocked(Record& record, const WorkerExit& exit, absl::Time now) {
  record.counters = record.worker->Counters();
  record.extras = record.worker->Extras();
  record.ended = true;
  record.ended_at = now;
  record.resident_bytes = 0;
  record.worker.reset();  // Reaped already; releases the shared block and pipes.
  const bool expect_oom = record.spec.expect_oom();
  switch (exit.kind) {
    case WorkerExit::Kind::kCompleted:
      record.final_state = v1::PLAN_STATE_COMPLETED;
      break;
    case WorkerExit::Kind::kStopped:
      if (record.stop_requested) {
        record.final_state = v1::PLAN_STATE_STOPPED;
      } else {
        // The worker obeyed a SIGTERM/SIGINT that the agent did not send: an unexpected
        // end, not a stop anybody asked the agent for.
        record.final_state = v1::PLAN_STATE_FAILED;
        record.outcome_ok = false;
        record.error =
            "the worker was stopped by a signal (SIGTERM or SIGINT) that did not come from "
            "the agent";
      }
      break;
    case WorkerExit::Kind::kKilledByAgent:
      record.final_state = v1::PLAN_STATE_STOPPED;
      record.error =
          absl::StrCat("the worker did not exit within ",
                       absl::FormatDuration(options_.stop_timeout), " of the stop and was killed");
      break;
    case WorkerExit::Kind::kOomKilled:
      record.final_state = v1::PLAN_STATE_OOM_KILLED;
      record.outcome_ok = expect_oom;
      record.error = expect_oom ? "OOM-killed, as the plan expected"
                                : "the kernel's OOM killer killed the worker";
      break;
    case WorkerExit::Kind::kFailed:
    case WorkerExit::Kind::kSignaled:
      record.final_state = v1::PLAN_STATE_FAILED;
      record.outcome_ok = false;
      record.error = exit.error;
      break;
  }
  if (record.lease_expired) {
    record.final_state = v1::PLAN_STATE_LEASE_EXPIRED;
    record.outcome_ok = false;
    record.error = absl::StrCat("the lease of ", absl::FormatDuration(record.lease),
                                " ran out without a renewal; memory returned");
  }
  if (record.target_gone && exit.kind != WorkerExit::Kind::kOomKilled) {
    record.final_state = v1::PLAN_STATE_TARGET_GONE;
    record.outcome_ok = false;
    record.error = record.target_gone_reason;
  }
  if (exit.kind != WorkerExit::Kind::kOomKilled && expect_oom &&
      record.final_state == v1::PLAN_STATE_COMPLETED) {
    // A plan that expected to be OOM-killed and was not did not get what it asked for.
    record.outcome_ok = false;
    record.error = "the plan expected an OOM kill, but completed without one";
  }
  record.status_bytes = record.spec.ByteSizeLong() + record.error.size() + 512;
  plans_failed_ += record.final_state == v1::PLAN_STATE_FAILED ? 1 : 0;
  plans_oom_killed_ += record.final_state == v1::PLAN_STATE_OOM_KILLED ? 1 : 0;
}

v1::PlanStatus PlanManager::StatusLocked(const Record& record, LiveWorker* live_worker) const {
  v1::PlanStatus status;
  status.set_plan_id(record.spec.plan_id());
  *status.mutable_spec() = record.spec;
  // A running plan answers with its live counters (a lock-free read of the worker's shared
  // memory), not the last tick's; its RSS comes from /proc, read by the caller unlocked
  // (FillResident) — the last tick's figure stands in until then.
  const bool live = !record.ended && record.worker != nullptr;
  if (live_worker != nullptr) {
    *live_worker = live ? LiveWorker{record.worker, record.peak_resident_bytes} : LiveWorker{};
  }
  const PlanCountersSnapshot counters = live ? record.worker->Counters() : record.counters;
  const uint64_t resident = record.ended ? 0 : record.resident_bytes;
  // Resized, and the worker has not picked the new target yet: what it now heads for.
  const bool resize_pending = !record.ended && record.resized_target.has_value() &&
                              counters.target_bytes != *record.resized_target &&
                              counters.phase == record.resized_phase &&
                              counters.cycle == record.resized_cycle;
  std::optional<absl::Time> target_reached = record.target_reached;
  if (!target_reached && counters.state == PlanState::kHolding && !resize_pending) {
    target_reached = clock_->Now();
  }
  if (record.ended) {
    status.set_state(record.final_state);
    status.set_outcome_ok(record.outcome_ok);
    status.set_error(record.error);
    ToProtoTimestamp(record.ended_at, status.mutable_ended());
  } else {
    status.set_state(ToProtoState(counters.state));
    status.set_outcome_ok(true);
    if (counters.state == PlanState::kCapped) {
      status.set_error(absl::StrCat("capped at ", FormatSize(counters.payload_bytes),
                                    ": growing further would eat into the --reserve of ",
                                    FormatSize(options_.reserve_bytes)));
    }
    status.set_worker_pid(record.worker_pid);
    ToProtoTimestamp(record.lease_expires, status.mutable_lease_expires());
  }
  // Before the worker has published anything (pending), the plan heads for its first
  // target; after, the worker's own figure — 0 included (a resize to 0, a phase of 0).
  status.set_target_bytes(resize_pending                          ? *record.resized_target
                          : counters.state == PlanState::kPending ? record.first_target
                                                                  : counters.target_bytes);
  status.set_payload_bytes(record.ended ? 0 : counters.payload_bytes);
  status.set_resident_bytes(resident);
  status.set_bookkeeping_bytes(record.ended ? 0 : counters.bookkeeping_bytes);
  status.set_allocations(counters.allocations);
  status.set_frees(counters.frees);
  status.set_allocation_rate_bytes_per_sec(record.ended ? 0 : record.rate);
  status.set_peak_resident_bytes(std::max(record.peak_resident_bytes->load(), resident));
  status.set_phase(static_cast<uint32_t>(counters.phase));
  status.set_cycle(static_cast<uint32_t>(counters.cycle));
  ToProtoTimestamp(record.started, status.mutable_started());
  if (target_reached) ToProtoTimestamp(*target_reached, status.mutable_target_reached());
  if (record.target) {
    v1::TargetCgroup* target = status.mutable_target();
    target->set_path(record.target->dir);
    target->set_version(record.target->version);
    target->set_container_id(record.target->container_id);
    target->set_container_name(record.target->container_name);
    target->set_pod_uid(record.target->pod_uid);
    if (record.spec.placement().has_pod()) {
      target->set_pod_namespace(record.spec.placement().pod().pod_namespace());
      target->set_pod_name(record.spec.placement().pod().pod_name());
    }
    target->set_gone(record.target_gone);
    if (record.target_memory) {
      const CgroupMemory& memory = *record.target_memory;
      const std::optional<uint64_t> limit =
          memory.hierarchical_limit_bytes ? memory.hierarchical_limit_bytes : memory.limit_bytes;
      target->set_limited(limit.has_value());
      target->set_limit_bytes(limit.value_or(0));
      target->set_usage_bytes(memory.usage_bytes);
      target->set_working_set_bytes(memory.WorkingSetBytes());
      target->set_oom_kill_count(memory.oom_kill_count);
      target->set_oom_group(memory.oom_group);
    }
  }
  status.set_utilization_percent(record.extras.utilization_percent);
  status.set_max_deviation_percent(record.extras.max_deviation_percent);
  return status;
}

void PlanManager::ForgetOldLocked() {
  std::vector<std::pair<uint64_t, std::string>> ended;
  size_t bytes = 0;
  for (const auto& [id, record] : plans_) {
    if (record->ended) {
      ended.emplace_back(record->sequence, id);
      bytes += record->status_bytes;
    }
  }
  if (ended.size() <= options_.ended_plans_kept && bytes <= options_.ended_plans_kept_bytes) {
    return;
  }
  // The oldest go first, until both the count and the bytes are within bounds.
  std::sort(ended.begin(), ended.end());
  size_t kept = ended.size();
  for (const auto& [sequence, id] : ended) {
    if (kept <= options_.ended_plans_kept && bytes <= options_.ended_plans_kept_bytes) break;
    auto it = plans_.find(id);
    bytes -= it->second->status_bytes;
    --kept;
    plans_.erase(it);
  }
}

}  // namespace agent
}  // namespace memload
