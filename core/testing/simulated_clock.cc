#include "core/testing/simulated_clock.h"

#include <chrono>

namespace memload {
namespace {

// How often, in real time, a waiter re-checks its condition and the simulated time.
constexpr auto kPoll = std::chrono::milliseconds(1);

}  // namespace

SimulatedClock::SimulatedClock(absl::Time start) : now_(start) {}

absl::Time SimulatedClock::Now() {
  MutexLock lock(&mutex_);
  return now_;
}

bool SimulatedClock::WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                               absl::Time deadline, const std::function<bool()>& done) {
  {
    MutexLock guard(&mutex_);
    ++waiters_;
  }
  changed_.notify_all();
  bool result = false;
  while (true) {
    if (done()) {
      result = true;
      break;
    }
    if (Now() >= deadline) break;
    // The caller's mutex stays the only one held while blocked: Advance() never takes it,
    // so the poll (not a notify from Advance) is what bounds how late a waiter notices.
    wake.wait_for(lock, kPoll);
  }
  {
    MutexLock guard(&mutex_);
    --waiters_;
  }
  changed_.notify_all();
  return result;
}

void SimulatedClock::Advance(absl::Duration duration) {
  if (duration <= absl::ZeroDuration()) return;
  {
    MutexLock lock(&mutex_);
    now_ += duration;
    ++generation_;
  }
  changed_.notify_all();
}

void SimulatedClock::AdvanceTo(absl::Time time) { Advance(time - Now()); }

int SimulatedClock::waiters() {
  MutexLock lock(&mutex_);
  return waiters_;
}

bool SimulatedClock::BlockUntilWaiters(int count, absl::Duration real_timeout) {
  MutexLock lock(&mutex_);
  return changed_.wait_for(
      lock.native(), std::chrono::nanoseconds(absl::ToInt64Nanoseconds(real_timeout)),
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return waiters_ >= count; });
}

}  // namespace memload
