// Fakes for the plan manager's tests: FakeNodeProbe (scripted node memory) and
// FakeWorkerLauncher / FakeWorker (scripted workers: the test sets counters and decides
// when and how a worker exits).
//
// Thread-safety: thread-safe (the manager's thread and the test thread both use them).
#ifndef MEMLOAD_AGENT_TESTING_FAKE_WORKER_H_
#define MEMLOAD_AGENT_TESTING_FAKE_WORKER_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/node_probe.h"
#include "agent/worker.h"
#include "core/sync/mutex.h"

namespace memload {
namespace agent {

class FakeNodeProbe final : public NodeProbe {
 public:
  FakeNodeProbe(uint64_t total, uint64_t available) {
    node_.meminfo.total_bytes = total;
    node_.meminfo.available_bytes = available;
  }
  absl::StatusOr<NodeMemory> Read() override {
    MutexLock lock(&mutex_);
    return node_;
  }
  void SetAvailable(uint64_t available) {
    MutexLock lock(&mutex_);
    node_.meminfo.available_bytes = available;
  }
  void SetCgroup(uint64_t limit, uint64_t usage) {
    MutexLock lock(&mutex_);
    CgroupMemory cgroup;
    cgroup.version = 2;
    cgroup.path = "/sys/fs/cgroup/fake";
    cgroup.limit_bytes = limit;
    cgroup.hierarchical_limit_bytes = limit;
    cgroup.usage_bytes = usage;
    node_.cgroup = cgroup;
  }

 private:
  Mutex mutex_;
  NodeMemory node_ ABSL_GUARDED_BY(mutex_);
};

class FakeWorker final : public Worker {
 public:
  // Like a real worker's retained plan, it publishes its first phase's target at once.
  explicit FakeWorker(int pid, WorkerSpec spec) : pid_(pid), spec_(std::move(spec)) {
    if (spec_.plan().has_retained() && spec_.plan().retained().phases_size() > 0) {
      counters_.target_bytes = spec_.plan().retained().phases(0).target().bytes();
    }
  }

  int pid() const override { return pid_; }
  PlanCountersSnapshot Counters() const override {
    MutexLock lock(&mutex_);
    return counters_;
  }
  WorkerExtras Extras() const override { return WorkerExtras(); }
  uint64_t ResidentBytes() const override {
    MutexLock lock(&mutex_);
    return exit_ ? 0 : counters_.payload_bytes;
  }
  absl::Status SetTarget(uint64_t target) override {
    MutexLock lock(&mutex_);
    if (exit_) return absl::FailedPreconditionError("worker has exited");
    targets_.push_back(target);
    counters_.target_bytes = target;
    return absl::OkStatus();
  }
  absl::Status SetCeiling(uint64_t ceiling) override {
    MutexLock lock(&mutex_);
    if (exit_) return absl::FailedPreconditionError("worker has exited");
    ceilings_.push_back(ceiling);
    return absl::OkStatus();
  }
  // By default a stop request ends the worker at once, as kStopped.
  void RequestStop() override {
    MutexLock lock(&mutex_);
    ++stop_requests_;
    if (!exit_ && exit_on_stop_) {
      WorkerExit exit;
      exit.kind = WorkerExit::Kind::kStopped;
      exit_ = exit;
      counters_.payload_bytes = 0;
    }
  }
  std::optional<WorkerExit> PollExit() override {
    MutexLock lock(&mutex_);
    return exit_;
  }
  WorkerExit WaitExit(absl::Duration) override {
    MutexLock lock(&mutex_);
    if (!exit_) {
      WorkerExit killed;
      killed.kind = WorkerExit::Kind::kKilledByAgent;
      exit_ = killed;
    }
    return *exit_;
  }

  // Test controls.
  void SetCounters(PlanState state, uint64_t payload) {
    MutexLock lock(&mutex_);
    counters_.state = state;
    counters_.payload_bytes = payload;
    counters_.bytes_allocated = std::max(counters_.bytes_allocated, payload);
  }
  void Exit(WorkerExit exit) {
    MutexLock lock(&mutex_);
    exit_ = std::move(exit);
  }
  void set_exit_on_stop(bool exit_on_stop) {
    MutexLock lock(&mutex_);
    exit_on_stop_ = exit_on_stop;
  }
  int stop_requests() const {
    MutexLock lock(&mutex_);
    return stop_requests_;
  }
  std::vector<uint64_t> ceilings() const {
    MutexLock lock(&mutex_);
    return ceilings_;
  }
  std::vector<uint64_t> targets() const {
    MutexLock lock(&mutex_);
    return targets_;
  }
  const WorkerSpec& spec() const { return spec_; }

 private:
  const int pid_;
  const WorkerSpec spec_;
  mutable Mutex mutex_;
  PlanCountersSnapshot counters_ ABSL_GUARDED_BY(mutex_);
  std::optional<WorkerExit> exit_ ABSL_GUARDED_BY(mutex_);
  bool exit_on_stop_ ABSL_GUARDED_BY(mutex_) = true;
  int stop_requests_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<uint64_t> ceilings_ ABSL_GUARDED_BY(mutex_);
  std::vector<uint64_t> targets_ ABSL_GUARDED_BY(mutex_);
};

// Hands out FakeWorkers; the test keeps shared handles to inspect and drive them.
class FakeWorkerLauncher final : public WorkerLauncher {
 public:
  absl::StatusOr<std::unique_ptr<Worker>> Launch(const WorkerSpec& spec) override {
    MutexLock lock(&mutex_);
    if (!fail_next_.ok()) {
      absl::Status status = fail_next_;
      fail_next_ = absl::OkStatus();
      return status;
    }
    auto worker = std::make_shared<FakeWorker>(1000 + static_cast<int>(workers_.size()), spec);
    workers_.push_back(worker);
    // The manager owns a forwarding Worker; the test keeps the shared FakeWorker.
    return std::unique_ptr<Worker>(new Forward(worker));
  }

  void FailNextLaunch(absl::Status status) {
    MutexLock lock(&mutex_);
    fail_next_ = std::move(status);
  }
  std::shared_ptr<FakeWorker> worker(size_t i) {
    MutexLock lock(&mutex_);
    return i < workers_.size() ? workers_[i] : nullptr;
  }
  size_t launched() {
    MutexLock lock(&mutex_);
    return workers_.size();
  }

 private:
  class Forward final : public Worker {
   public:
    explicit Forward(std::shared_ptr<FakeWorker> worker) : worker_(std::move(worker)) {}
    int pid() const override { return worker_->pid(); }
    PlanCountersSnapshot Counters() const override { return worker_->Counters(); }
    WorkerExtras Extras() const override { return worker_->Extras(); }
    uint64_t ResidentBytes() const override { return worker_->ResidentBytes(); }
    absl::Status SetTarget(uint64_t target) override { return worker_->SetTarget(target); }
    absl::Status SetCeiling(uint64_t ceiling) override { return worker_->SetCeiling(ceiling); }
    void RequestStop() override { worker_->RequestStop(); }
    std::optional<WorkerExit> PollExit() override { return worker_->PollExit(); }
    WorkerExit WaitExit(absl::Duration timeout) override { return worker_->WaitExit(timeout); }

   private:
    std::shared_ptr<FakeWorker> worker_;
  };

  Mutex mutex_;
  std::vector<std::shared_ptr<FakeWorker>> workers_ ABSL_GUARDED_BY(mutex_);
  absl::Status fail_next_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_TESTING_FAKE_WORKER_H_
