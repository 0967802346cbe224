// SimulatedClock: a Clock whose time moves only when a test moves it, so code that waits,
// paces or expires is tested without sleeping and without racing the wall clock.
//
//   SimulatedClock clock;                       // starts at 2026-01-01T00:00:00Z
//   PlanManager manager(options, &probe, &launcher, &clock);
//   ... start a plan with a 1 s lease ...
//   clock.BlockUntilWaiters(1);                 // the manager's thread is waiting
//   clock.Advance(absl::Seconds(2));            // the lease runs out, deterministically
//
// Waiters check their condition and the simulated time at least every millisecond of real
// time (and at once after Advance), so a notify on their own condition variable and a
// move of the clock both wake them; no wake-up can be lost.
//
// Thread-safety: every method is thread-safe.
#ifndef MEMLOAD_CORE_TESTING_SIMULATED_CLOCK_H_
#define MEMLOAD_CORE_TESTING_SIMULATED_CLOCK_H_

#include <condition_variable>
#include <functional>
#include <mutex>

#include "absl/time/time.h"
#include "core/clock.h"
#include "core/sync/mutex.h"

namespace memload {

class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1767225600));

  absl::Time Now() override;
  bool WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                 absl::Time deadline, const std::function<bool()>& done) override;

  // Moves the time forward (a negative duration is ignored) and wakes every waiter.
  void Advance(absl::Duration duration);
  void AdvanceTo(absl::Time time);

  // How many threads are inside WaitUntil/SleepUntil right now.
  int waiters();
  // Blocks (in real time, up to `real_timeout`) until at least `count` threads wait on
  // this clock. Returns whether they did: the synchronisation point tests advance after.
  bool BlockUntilWaiters(int count, absl::Duration real_timeout = absl::Seconds(30));

 private:
  Mutex mutex_;
  std::condition_variable changed_;  // Notified on Advance and when waiters_ changes.
  absl::Time now_ ABSL_GUARDED_BY(mutex_);
  int waiters_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;  // bumped by every Advance.
};

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_SIMULATED_CLOCK_H_
