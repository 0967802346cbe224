#include "core/testing/simulated_clock.h"

#include <chrono>

namespace memload {
namespace {

// How often, in real time, a waiter re-checks its condition and the simulated time.
constexpr auto kPoll = std::chrono::milliseconds(1);

}  // namespace

SimulatedClock::SimulatedClock(absl::Time start) : now_(start) {}

absl::Time SimulatedClock::Now() {
  std::lock_guard<std::mutex> lock(mutex_);
  return now_;
}

bool SimulatedClock::WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                               absl::Time deadline, const std::function<bool()>& done) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
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
    std::lock_guard<std::mutex> guard(mutex_);
    --waiters_;
  }
  changed_.notify_all();
  return result;
}

void SimulatedClock::Advance(absl::Duration duration) {
  if (duration <= absl::ZeroDuration()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    now_ += duration;
    ++generation_;
  }
  changed_.notify_all();
}

void SimulatedClock::AdvanceTo(absl::Time time) { Advance(time - Now()); }

int SimulatedClock::waiters() {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiters_;
}

bool SimulatedClock::BlockUntilWaiters(int count, absl::Duration real_timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(real_timeout)),
                           [&] { return waiters_ >= count; });
}

}  // namespace memload
