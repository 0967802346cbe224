#include "agent/plan_manager.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/plan_convert.h"
#include "core/node_readers.h"
#include "core/size.h"
#include "core/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/proto_time.h"

namespace memload {
namespace agent {
namespace {

constexpr absl::Duration kStopPollTick = absl::Milliseconds(10);

bool IsRetainedOrUtilization(const v1::PlanSpec& spec) {
  return spec.kind_case() == v1::PlanSpec::kRetained ||
         spec.kind_case() == v1::PlanSpec::kUtilization;
}

absl::Status ValidatePlanId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("plan_id must be 1-128 characters, got ", id.size()));
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "plan_id \"", absl::CHexEscape(id), "\" may only hold letters, digits, '.', '_', '-'"));
    }
  }
  return absl::OkStatus();
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
    struct stat info;
    exists = stat(dir.c_str(), &info) == 0;
    absl::StatusOr<std::vector<int>> pids = CgroupProcs(dir);
    others = false;
    if (pids.ok()) {
      for (int pid : *pids) others |= pid != worker_pid;
    } else {
      others = true;  // Unreadable: assume the container is still there.
    }
  }
};

}  // namespace

struct PlanManager::Record {
  uint64_t sequence = 0;
  v1::PlanSpec spec;          // As the client sent it.
  WorkerSpec worker_spec;     // Resolved.
  uint64_t commitment = 0;    // Bytes counted against --max-memory.
  uint64_t first_target = 0;  // Resolved target of the first phase, until the worker says.
  // A retained plan's target from Resize, reported until the worker's counters show it
  // (the worker reads the command from its pipe a moment later), unless the plan has moved
  // to another phase or cycle since.
  std::optional<uint64_t> resized_target;
  uint64_t resized_phase = 0;
  uint64_t resized_cycle = 0;
  absl::Duration lease;
  absl::Time started;
  absl::Time lease_expires;
  std::optional<absl::Time> target_reached;
  std::unique_ptr<Worker> worker;  // Null once the worker has been reaped.
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
  uint64_t peak_resident_bytes = 0;
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
    headroom = std::min(headroom, Sub(Sub(*limit, view.cgroup->usage_bytes),
                                      options_.target_reserve_bytes));
  }
  return headroom;
}

PlanManager::PlanManager(PlanManagerOptions options, NodeProbe* probe, WorkerLauncher* launcher)
    : options_(std::move(options)), probe_(probe), launcher_(launcher) {
  thread_ = std::thread([this] { ThreadMain(); });
}

PlanManager::~PlanManager() { Shutdown(); }

void PlanManager::Start(v1::PlanSpec spec, StartCallback done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
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
  absl::StatusOr<StartResult> result;
  // A placed plan's target is resolved and read here, without the lock (files).
  std::optional<ResolvedTarget> target;
  absl::Status placed = absl::OkStatus();
  if (node.ok() && spec.has_placement()) {
    if (options_.target_resolver == nullptr) {
      placed = absl::FailedPreconditionError(
          "this agent cannot place plans in other cgroups (no cgroup access configured)");
    } else {
      absl::StatusOr<ResolvedTarget> resolved = options_.target_resolver->Resolve(spec.placement());
      absl::StatusOr<CgroupMemory> memory =
          resolved.ok() ? ReadCgroupMemory(resolved->dir) : resolved.status();
      if (!resolved.ok()) {
        placed = resolved.status();
      } else if (!memory.ok()) {
        placed = absl::NotFoundError(absl::StrCat("placement resolved to ", resolved->dir,
                                                  ", which cannot be read: ",
                                                  memory.status().message()));
      } else {
        node = TargetView(*node, *memory);
        target = *std::move(resolved);
      }
    }
  }
  if (!node.ok()) {
    result = absl::UnavailableError(
        absl::StrCat("cannot read the node's memory: ", node.status().message()));
  } else if (!placed.ok()) {
    result = placed;
  } else {
    std::lock_guard<std::mutex> lock(mutex_);
    result = shutting_down_ ? absl::UnavailableError("the agent is shutting down")
                            : StartLocked(spec, *node, target);
  }
  done(std::move(result));
}

absl::StatusOr<PlanManager::StartResult> PlanManager::StartLocked(
    const v1::PlanSpec& spec, const NodeMemory& node, const std::optional<ResolvedTarget>& target) {
  MEMLOAD_RETURN_IF_ERROR(ValidatePlanId(spec.plan_id()));
  if (spec.has_placement() && !target.has_value()) {
    return absl::InternalError("a placed plan reached the manager unresolved");
  }
  auto existing = plans_.find(spec.plan_id());
  if (existing != plans_.end()) {
    Record& record = *existing->second;
    if (google::protobuf::util::MessageDifferencer::Equals(record.spec, spec)) {
      return StartResult{StatusLocked(record), /*created=*/false};
    }
    if (!record.ended) {
      return absl::AlreadyExistsError(absl::StrCat(
          "plan \"", spec.plan_id(),
          "\" is already running with a different spec; stop it or choose another plan_id"));
    }
    // An ended plan's id may be reused for a new plan; the old record is replaced below.
  }
  size_t running = 0;
  for (const auto& [id, record] : plans_) running += record->ended ? 0 : 1;
  if (running >= options_.max_running_plans) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the agent already runs ", running, " plans, its maximum; stop one first"));
  }

  auto record = std::make_unique<Record>();
  record->spec = spec;
  WorkerSpec& worker_spec = record->worker_spec;
  *worker_spec.mutable_plan() = spec;
  worker_spec.set_cgroup_dir(node.cgroup.has_value() ? node.cgroup->path : "");
  if (target.has_value()) worker_spec.set_join_cgroup_dir(target->dir);

  // Lease.
  record->lease = spec.has_lease() ? FromProtoDuration(spec.lease()) : options_.default_lease;
  if (record->lease <= absl::ZeroDuration() || record->lease > options_.max_lease) {
    return absl::InvalidArgumentError(absl::StrCat("lease must be in (0, ",
                                                   absl::FormatDuration(options_.max_lease),
                                                   "], got ", absl::FormatDuration(record->lease)));
  }
  if (spec.has_oom_score_adj() && (spec.oom_score_adj() < -1000 || spec.oom_score_adj() > 1000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("oom_score_adj must be in [-1000, 1000], got ", spec.oom_score_adj()));
  }

  // Resolve quantities to bytes and work out the most the plan can hold (its commitment).
  switch (spec.kind_case()) {
    case v1::PlanSpec::kRetained: {
      v1::RetainedPlan* retained = worker_spec.mutable_plan()->mutable_retained();
      for (int i = 0; i < retained->phases_size(); ++i) {
        v1::Phase* phase = retained->mutable_phases(i);
        MEMLOAD_ASSIGN_OR_RETURN(
            uint64_t bytes,
            Resolve(phase->target(), node, absl::StrCat("retained.phases[", i, "].target")));
        phase->mutable_target()->set_bytes(bytes);
        record->commitment = std::max(record->commitment, bytes);
        if (i == 0) record->first_target = bytes;
      }
      MEMLOAD_RETURN_IF_ERROR(ToRetainedPlanSpec(*retained).status());
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
        return absl::FailedPreconditionError(
            "utilization.reference is CGROUP, but the agent's memory cgroup has no limit");
      }
      worker_spec.set_reference(reference);
      const bool cgroup = reference == v1::UtilizationPlan::REFERENCE_CGROUP;
      const uint64_t capacity = cgroup ? *node.CgroupLimit() : node.meminfo.total_bytes;
      const uint64_t used = cgroup ? node.cgroup->usage_bytes
                                   : node.meminfo.total_bytes - node.meminfo.available_bytes;
      MEMLOAD_RETURN_IF_ERROR(ToUtilizationSpec(utilization, nullptr).status());
      MEMLOAD_ASSIGN_OR_RETURN(uint64_t wanted,
                               PercentOf(utilization.target_percent(), capacity));
      // What the plan must add now; it grows and shrinks as others come and go.
      record->commitment = wanted > used ? wanted - used : 0;
      record->first_target = wanted;
      if (capacity - std::min(capacity, wanted) < options_.reserve_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "utilization target ", utilization.target_percent(), "% of ", FormatSize(capacity),
            " leaves less than the --reserve of ", FormatSize(options_.reserve_bytes)));
      }
      break;
    }
    case v1::PlanSpec::kStreaming: {
      MEMLOAD_ASSIGN_OR_RETURN(StreamOptions options, ToStreamOptions(spec.streaming()));
      // Live memory of a stream: its window, or one block per worker in flight.
      const uint64_t live_blocks = std::max<uint64_t>(options.window, options.workers);
      MEMLOAD_ASSIGN_OR_RETURN(record->commitment,
                               MultiplySizes(live_blocks, options.block_size));
      break;
    }
    case v1::PlanSpec::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "a plan needs a kind: one of retained, utilization, streaming");
  }

  // Safety limits.
  const uint64_t committed = CommittedLocked(nullptr);
  if (options_.max_memory_bytes > 0 &&
      committed + record->commitment > options_.max_memory_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "plan \"", spec.plan_id(), "\" needs ", FormatSize(record->commitment),
        "; with the ", FormatSize(committed), " other plans may hold, that crosses --max-memory ",
        FormatSize(options_.max_memory_bytes)));
  }
  const uint64_t available = node.EffectiveAvailable();
  if (target.has_value() && spec.kind_case() != v1::PlanSpec::kUtilization && !spec.expect_oom() &&
      TargetHeadroom(node) < record->commitment) {
    const std::optional<uint64_t> limit = node.CgroupLimit();
    return absl::ResourceExhaustedError(absl::StrCat(
        "plan \"", spec.plan_id(), "\" needs ", FormatSize(record->commitment), " but its target ",
        target->dir, " has room for ", FormatSize(TargetHeadroom(node)),
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
  }
  // A plan that expects an OOM kill is an OOM drill: it is meant to cross the reserve
  // (it still obeys --max-memory).
  if (!target.has_value() && spec.kind_case() != v1::PlanSpec::kUtilization && !spec.expect_oom() &&
      available < options_.reserve_bytes + record->commitment) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "plan \"", spec.plan_id(), "\" needs ", FormatSize(record->commitment), " but only ",
        FormatSize(available > options_.reserve_bytes ? available - options_.reserve_bytes : 0),
        " may be used: available memory is ", FormatSize(available), " and --reserve is ",
        FormatSize(options_.reserve_bytes)));
  }

  // The ceiling it starts under: what the reserve leaves (refreshed every tick).
  worker_spec.set_initial_ceiling_bytes(UINT64_MAX);
  MEMLOAD_ASSIGN_OR_RETURN(record->worker, launcher_->Launch(worker_spec));
  const absl::Time now = absl::Now();
  record->worker_pid = record->worker->pid();
  record->sequence = next_sequence_++;
  record->started = now;
  record->lease_expires = now + record->lease;
  record->rate_time = now;
  if (target.has_value()) {
    record->target = target;
    record->target_had_others = !target->pids.empty();
    record->target_memory = node.cgroup;
  }
  ++plans_started_;
  Record& stored = *(plans_[spec.plan_id()] = std::move(record));
  ForgetOldLocked();
  return StartResult{StatusLocked(stored), /*created=*/true};
}

uint64_t PlanManager::CommittedLocked(const Record* except) const {
  uint64_t total = 0;
  for (const auto& [id, record] : plans_) {
    if (!record->ended && record.get() != except) total += record->commitment;
  }
  return total;
}

void PlanManager::Stop(const std::string& plan_id, StatusCallback done) {
  absl::StatusOr<v1::PlanStatus> answer_now;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(plan_id);
    if (it == plans_.end()) {
      answer_now = absl::NotFoundError(absl::StrCat("no plan \"", plan_id, "\" on this agent"));
    } else if (it->second->ended) {
      answer_now = StatusLocked(*it->second);
    } else {
      Record& record = *it->second;
      if (!record.stop_requested) {
        record.stop_requested = true;
        record.stop_deadline = absl::Now() + options_.stop_timeout;
        record.worker->RequestStop();
      }
      record.stop_waiters.push_back(std::move(done));
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
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(plan_id);
    if (it != plans_.end() && it->second->target) target_dir = it->second->target->dir;
  }
  if (!target_dir.empty()) {
    absl::StatusOr<CgroupMemory> memory = ReadCgroupMemory(target_dir);
    if (!memory.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("plan \"", plan_id, "\": its target ",
                                                        target_dir, " cannot be read: ",
                                                        memory.status().message()));
    }
    node = TargetView(*node, *memory);
  }
  std::lock_guard<std::mutex> lock(mutex_);
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
  const uint64_t payload = record.worker->Counters().payload_bytes;
  const uint64_t committed = CommittedLocked(&record);
  uint64_t commitment = bytes;
  if (record.spec.kind_case() == v1::PlanSpec::kUtilization) {
    // For a utilization plan the target is the node's (or cgroup's) used bytes.
    const bool cgroup = record.worker_spec.reference() == v1::UtilizationPlan::REFERENCE_CGROUP;
    const uint64_t used = cgroup && node->cgroup.has_value()
                              ? node->cgroup->usage_bytes
                              : node->meminfo.total_bytes - node->meminfo.available_bytes;
    commitment = payload + (bytes > used ? bytes - used : 0);
  }
  if (options_.max_memory_bytes > 0 && committed + commitment > options_.max_memory_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "resizing \"", plan_id, "\" to ", FormatSize(commitment), " crosses --max-memory ",
        FormatSize(options_.max_memory_bytes), " (other plans may hold ", FormatSize(committed),
        ")"));
  }
  const uint64_t growth = commitment > payload ? commitment - payload : 0;
  const uint64_t available = node->EffectiveAvailable();
  if (record.target && growth > 0 && !record.spec.expect_oom() &&
      TargetHeadroom(*node) < growth) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "resizing \"", plan_id, "\" needs ", FormatSize(growth), " more but its target ",
        record.target->dir, " has room for ", FormatSize(TargetHeadroom(*node))));
  }
  if (!record.target && growth > 0 && available < options_.reserve_bytes + growth) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "resizing \"", plan_id, "\" needs ", FormatSize(growth), " more but available memory is ",
        FormatSize(available), " and --reserve is ", FormatSize(options_.reserve_bytes)));
  }
  const PlanCountersSnapshot before = record.worker->Counters();
  MEMLOAD_RETURN_IF_ERROR(record.worker->SetTarget(bytes));
  record.commitment = std::max(commitment, payload);
  record.target_reached.reset();
  if (record.spec.kind_case() == v1::PlanSpec::kRetained) {
    record.resized_target = bytes;
    record.resized_phase = before.phase;
    record.resized_cycle = before.cycle;
  }
  return StatusLocked(record);
}

v1::RenewLeasesResponse PlanManager::Renew(const v1::RenewLeasesRequest& request) {
  v1::RenewLeasesResponse response;
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const std::string& id : request.plan_ids()) {
    auto it = plans_.find(id);
    if (it == plans_.end() || it->second->ended || it->second->stop_requested) {
      response.add_not_found(id);
      continue;
    }
    Record& record = *it->second;
    absl::Duration lease = record.lease;
    if (request.has_lease()) {
      lease = std::clamp(FromProtoDuration(request.lease()), absl::Milliseconds(1),
                         options_.max_lease);
    }
    record.lease_expires = now + lease;
    response.add_renewed(id);
  }
  return response;
}

std::vector<v1::PlanStatus> PlanManager::List(bool include_ended) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<const Record*> records;
  for (const auto& [id, record] : plans_) {
    if (include_ended || !record->ended) records.push_back(record.get());
  }
  std::sort(records.begin(), records.end(), [](const Record* a, const Record* b) {
    if (a->ended != b->ended) return !a->ended;
    return a->sequence < b->sequence;
  });
  std::vector<v1::PlanStatus> statuses;
  statuses.reserve(records.size());
  for (const Record* record : records) statuses.push_back(StatusLocked(*record));
  return statuses;
}

uint64_t PlanManager::plans_started() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plans_started_;
}

uint64_t PlanManager::plans_failed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plans_failed_;
}

uint64_t PlanManager::plans_oom_killed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plans_oom_killed_;
}

void PlanManager::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!shutting_down_) {
      shutting_down_ = true;
      const absl::Time now = absl::Now();
      for (auto& [id, record] : plans_) {
        if (record->ended || record->stop_requested) continue;
        record->stop_requested = true;
        record->stop_deadline = now + options_.stop_timeout;
        record->worker->RequestStop();
      }
    }
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void PlanManager::ThreadMain() {
  std::unique_lock<std::mutex> lock(mutex_);
  absl::Time next_tick = absl::Now();
  while (true) {
    while (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
    bool stopping = false;
    bool running = false;
    for (const auto& [id, record] : plans_) {
      running |= !record->ended;
      stopping |= !record->ended && record->stop_requested;
    }
    if (shutting_down_ && !running && tasks_.empty()) break;
    const absl::Time now = absl::Now();
    if (now >= next_tick) {
      lock.unlock();
      Tick(now);
      lock.lock();
      next_tick = now + (stopping ? kStopPollTick : options_.tick);
      continue;  // Re-evaluate: the tick may have ended plans.
    }
    if (stopping) next_tick = std::min(next_tick, now + kStopPollTick);
    wake_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(next_tick - now)),
                   [&] { return !tasks_.empty() || shutting_down_; });
    if (shutting_down_) next_tick = std::min(next_tick, absl::Now() + kStopPollTick);
  }
}

void PlanManager::Tick(absl::Time now) {
  absl::StatusOr<NodeMemory> node = probe_->Read();
  std::vector<std::pair<StatusCallback, v1::PlanStatus>> answers;
  // Placed plans' targets, read without the lock.
  std::map<std::string, TargetReading> targets;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, record] : plans_) {
      if (!record->target || (record->ended && record->target_final_read)) continue;
      TargetReading& reading = targets[id];
      reading.dir = record->target->dir;
      reading.worker_pid = record->worker_pid;
    }
  }
  for (auto& [id, reading] : targets) reading.Read();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Record*> growing;
    for (auto& [id, entry] : plans_) {
      Record& record = *entry;
      if (record.ended) {
        if (auto reading = targets.find(id); reading != targets.end()) {
          if (reading->second.memory.ok()) record.target_memory = *reading->second.memory;
          record.target_final_read = true;
        }
        continue;
      }
      if (std::optional<WorkerExit> exit = record.worker->PollExit()) {
        FinishLocked(record, *exit, now);
      } else {
        record.counters = record.worker->Counters();
        record.extras = record.worker->Extras();
        // The worker stamps the moment it first held its target; until its stamp arrives,
        // the tick that first sees HOLDING stands in, so a HOLDING status always has one.
        if (!record.target_reached &&
            (record.extras.target_reached || record.counters.state == PlanState::kHolding)) {
          record.target_reached = record.extras.target_reached.value_or(now);
        }
        record.resident_bytes = record.worker->ResidentBytes();
        record.peak_resident_bytes = std::max(record.peak_resident_bytes, record.resident_bytes);
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
            record.stop_requested = true;
            record.stop_deadline = now + options_.stop_timeout;
            record.worker->RequestStop();
          }
        }
        if (!record.stop_requested && now >= record.lease_expires) {
          record.lease_expired = true;
          record.stop_requested = true;
          record.stop_deadline = now + options_.stop_timeout;
          record.worker->RequestStop();
        }
        if (record.stop_requested && now >= record.stop_deadline) {
          FinishLocked(record, record.worker->WaitExit(absl::ZeroDuration()), now);
        } else if (!record.stop_requested && IsRetainedOrUtilization(record.spec) &&
                   !record.spec.expect_oom()) {
          if (!record.target) {
            growing.push_back(&record);
          } else if (node.ok() && record.target_memory) {
            // A placed plan grows within its target's room (see TargetHeadroom).
            const uint64_t payload = record.counters.payload_bytes;
            uint64_t ceiling = payload + TargetHeadroom(TargetView(*node, *record.target_memory));
            if (ceiling >= record.commitment && record.spec.kind_case() == v1::PlanSpec::kRetained) {
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
          answers.emplace_back(std::move(waiter), StatusLocked(record));
        }
        record.stop_waiters.clear();
      }
    }
    // The reserve: plans that still grow share what is left above it. A plan whose share
    // covers the rest of its way runs uncapped.
    if (node.ok() && !growing.empty()) {
      const uint64_t available = node->EffectiveAvailable();
      const uint64_t headroom =
          available > options_.reserve_bytes ? available - options_.reserve_bytes : 0;
      const uint64_t share = headroom / growing.size();
      for (Record* record : growing) {
        const uint64_t payload = record->counters.payload_bytes;
        uint64_t ceiling = payload + share;
        if (ceiling >= record->commitment && record->spec.kind_case() == v1::PlanSpec::kRetained) {
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
      record.final_state = v1::PLAN_STATE_STOPPED;
      break;
    case WorkerExit::Kind::kKilledByAgent:
      record.final_state = v1::PLAN_STATE_STOPPED;
      record.error = absl::StrCat("the worker did not exit within ",
                                  absl::FormatDuration(options_.stop_timeout),
                                  " of the stop and was killed");
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
  plans_failed_ += record.final_state == v1::PLAN_STATE_FAILED ? 1 : 0;
  plans_oom_killed_ += record.final_state == v1::PLAN_STATE_OOM_KILLED ? 1 : 0;
}

v1::PlanStatus PlanManager::StatusLocked(const Record& record) const {
  v1::PlanStatus status;
  status.set_plan_id(record.spec.plan_id());
  *status.mutable_spec() = record.spec;
  // A running plan answers with its live numbers (a lock-free read of the worker's shared
  // counters, RSS from /proc), not the last tick's.
  const bool live = !record.ended && record.worker != nullptr;
  const PlanCountersSnapshot counters = live ? record.worker->Counters() : record.counters;
  const uint64_t resident = live ? record.worker->ResidentBytes() : record.resident_bytes;
  // Resized, and the worker has not picked the new target yet: what it now heads for.
  const bool resize_pending = !record.ended && record.resized_target.has_value() &&
                              counters.target_bytes != *record.resized_target &&
                              counters.phase == record.resized_phase &&
                              counters.cycle == record.resized_cycle;
  std::optional<absl::Time> target_reached = record.target_reached;
  if (!target_reached && counters.state == PlanState::kHolding && !resize_pending) {
    target_reached = absl::Now();
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
  status.set_target_bytes(resize_pending             ? *record.resized_target
                         : counters.target_bytes != 0 ? counters.target_bytes
                                                      : record.first_target);
  status.set_payload_bytes(record.ended ? 0 : counters.payload_bytes);
  status.set_resident_bytes(resident);
  status.set_bookkeeping_bytes(record.ended ? 0 : counters.bookkeeping_bytes);
  status.set_allocations(counters.allocations);
  status.set_frees(counters.frees);
  status.set_allocation_rate_bytes_per_sec(record.ended ? 0 : record.rate);
  status.set_peak_resident_bytes(std::max(record.peak_resident_bytes, resident));
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
      const std::optional<uint64_t> limit = memory.hierarchical_limit_bytes
                                                ? memory.hierarchical_limit_bytes
                                                : memory.limit_bytes;
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
  for (const auto& [id, record] : plans_) {
    if (record->ended) ended.emplace_back(record->sequence, id);
  }
  if (ended.size() <= options_.ended_plans_kept) return;
  std::sort(ended.begin(), ended.end());
  for (size_t i = 0; i + options_.ended_plans_kept < ended.size(); ++i) {
    plans_.erase(ended[i].second);
  }
}

}  // namespace agent
}  // namespace memload
