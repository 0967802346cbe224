#include "controller/testing/deadline_driver.h"

#include <chrono>

namespace memload {
namespace testing {
namespace {

// How often, in real time, the driver looks for a new wait when none began since its
// last move (the simulated clock's waiters poll at the same rate).
constexpr auto kPoll = std::chrono::milliseconds(1);

}  // namespace

DeadlineDriver::DeadlineDriver(WaitRecordingClock* clock)
    : clock_(clock), thread_([this] { Loop(); }) {}

DeadlineDriver::~DeadlineDriver() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

void DeadlineDriver::Loop() {
  while (true) {
    {
      MutexLock lock(&mutex_);
      if (stopping_) return;
    }
    // A wait in progress records its deadline before it counts as a waiter, so the
    // deadline read after BlockUntilWaiters is that wait's or a later one's: moving the
    // clock there never skips a wait. One already reached (a waiter about to leave) is a
    // no-op; a wait for a condition alone (infinite deadline) is left to its condition.
    if (clock_->BlockUntilWaiters(1, absl::Milliseconds(10))) {
      const absl::Time deadline = clock_->last_deadline();
      if (deadline < absl::InfiniteFuture() && deadline > clock_->Now()) {
        clock_->AdvanceTo(deadline);
        continue;
      }
    }
    MutexLock lock(&mutex_);
    if (stop_cv_.wait_for(lock.native(), kPoll,
                          [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_; })) {
      return;
    }
  }
}

}  // namespace testing
}  // namespace memload
