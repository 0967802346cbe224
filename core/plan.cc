#include "core/plan.h"

#include <chrono>

namespace memload {

Plan::Plan(PlanCounters* counters, Clock* clock)
    : counters_(counters), cancel_(clock != nullptr ? clock : Clock::Real()) {}

Plan::~Plan() { CancelAndJoin(); }

void Plan::CancelAndJoin() {
  Cancel();
  MutexLock join_lock(&join_mutex_);
  std::thread thread;
  {
    MutexLock lock(&mutex_);
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

absl::Status Plan::Start() {
  MutexLock lock(&mutex_);
  if (started_) return absl::FailedPreconditionError("plan already started");
  started_ = true;
  thread_ = std::thread([this] { ThreadMain(); });
  return absl::OkStatus();
}

void Plan::Cancel() { cancel_.Cancel(); }

absl::Status Plan::Wait() { return WaitFor(absl::InfiniteDuration()); }

absl::Status Plan::WaitFor(absl::Duration timeout) {
  MutexLock lock(&mutex_);
  if (!started_) return absl::FailedPreconditionError("plan was never started");
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return finished_; };
  if (timeout == absl::InfiniteDuration()) {
    finished_cv_.wait(lock.native(), done);
  } else if (!finished_cv_.wait_for(lock.native(),
                                    std::chrono::nanoseconds(absl::ToInt64Nanoseconds(timeout)),
                                    done)) {
    return absl::DeadlineExceededError("plan still running");
  }
  return final_status_;
}

absl::Status Plan::SetTarget(uint64_t) {
  return absl::FailedPreconditionError("this kind of plan has no target to change");
}

void Plan::SetCeiling(uint64_t) {}

void Plan::ThreadMain() {
  absl::Status status = Run();
  if (!status.ok()) {
    counters_->SetState(PlanState::kFailed);
  } else if (cancel_.cancelled()) {
    counters_->SetState(PlanState::kCancelled);
  } else {
    counters_->SetState(PlanState::kCompleted);
  }
  {
    MutexLock lock(&mutex_);
    final_status_ = status;
    finished_ = true;
  }
  finished_cv_.notify_all();
}

}  // namespace memload
