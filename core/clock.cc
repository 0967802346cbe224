#include "core/clock.h"

#include <algorithm>
#include <chrono>

#include "absl/time/clock.h"

namespace memload {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }

  bool WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                 absl::Time deadline, const std::function<bool()>& done) override {
    while (!done()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      // A far or infinite deadline waits a day at a time: the steady clock's time_point
      // must not overflow, and a spurious wake-up is indistinguishable from that.
      const auto until =
          std::chrono::steady_clock::now() +
          std::chrono::nanoseconds(absl::ToInt64Nanoseconds(std::min(left, absl::Hours(24))));
      wake.wait_until(lock, until);
    }
    return true;
  }
};

}  // namespace

void Clock::SleepUntil(absl::Time deadline) {
  std::mutex mutex;
  std::condition_variable never_notified;
  std::unique_lock<std::mutex> lock(mutex);
  WaitUntil(never_notified, lock, deadline, [] { return false; });
}

Clock* Clock::Real() {
  static RealClock* const clock = new RealClock();  // Never destroyed: threads may outlive main.
  return clock;
}

}  // namespace memload
