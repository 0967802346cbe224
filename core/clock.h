// Clock: the time source of every piece of code that waits, paces, leases or expires, so
// that tests can run it on simulated time (core/testing/simulated_clock.h) instead of
// racing the wall clock.
//
//   class Pacer {
//    public:
//     explicit Pacer(Clock* clock = Clock::Real()) : clock_(clock) {}
//     void Run() {
//       std::unique_lock<std::mutex> lock(mutex_);
//       absl::Time next = clock_->Now();
//       while (!clock_->WaitUntil(wake_, lock, next += absl::Seconds(1),
//                                 [&] { return stopping_; })) {
//         ... one step a second ...
//       }
//     }
//   };
//
// Thread-safety: every method of every Clock is thread-safe.
#ifndef MEMLOAD_CORE_CLOCK_H_
#define MEMLOAD_CORE_CLOCK_H_

#include <condition_variable>
#include <functional>
#include <mutex>

#include "absl/time/time.h"

namespace memload {

class Clock {
 public:
  virtual ~Clock() = default;

  // The time now on this clock.
  virtual absl::Time Now() = 0;

  // Waits on `wake` until `done()` returns true (checked on every wake-up, with `lock` held)
  // or until Now() reaches `deadline`, whichever comes first. `lock` must hold the mutex
  // that guards what `done` reads, and holds it again on return. Returns done().
  // absl::InfiniteFuture() waits for `done` alone.
  virtual bool WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                         absl::Time deadline, const std::function<bool()>& done) = 0;

  // Sleeps until Now() reaches `deadline`; nothing wakes it early.
  void SleepUntil(absl::Time deadline);
  void SleepFor(absl::Duration duration) { SleepUntil(Now() + duration); }

  // The process's real clock: absl::Now() for the time, the steady clock for waits (so a
  // wall-clock step neither stretches nor cuts a wait short). Never null; never destroyed.
  static Clock* Real();
};

}  // namespace memload

#endif  // MEMLOAD_CORE_CLOCK_H_
