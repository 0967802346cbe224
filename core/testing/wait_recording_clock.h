// WaitRecordingClock: a SimulatedClock that also records every wait — how many waits began
// and the deadline of the last one — so a test can tell how often code wakes up and how
// long it means to sleep, in simulated time, without measuring CPU over a wall-clock window.
//
//   WaitRecordingClock clock;
//   ... start a held plan on &clock ...
//   ASSERT_TRUE(clock.BlockUntilWaiters(1));
//   EXPECT_EQ(clock.last_deadline() - clock.Now(), absl::Seconds(1));  // sleeps a second
//   const uint64_t waits = clock.waits_begun();
//   clock.AdvanceTo(clock.last_deadline());
//   ... Eventually(clock.waits_begun() > waits) ...
//
// Thread-safety: every method is thread-safe.
#ifndef MEMLOAD_CORE_TESTING_WAIT_RECORDING_CLOCK_H_
#define MEMLOAD_CORE_TESTING_WAIT_RECORDING_CLOCK_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "absl/time/time.h"
#include "core/sync/mutex.h"
#include "core/testing/simulated_clock.h"

namespace memload {

class WaitRecordingClock final : public Clock {
 public:
  absl::Time Now() override { return clock_.Now(); }
  bool WaitUntil(std::condition_variable& wake, std::unique_lock<std::mutex>& lock,
                 absl::Time deadline, const std::function<bool()>& done) override {
    {
      MutexLock guard(&mutex_);
      ++waits_begun_;
      last_deadline_ = deadline;
    }
    return clock_.WaitUntil(wake, lock, deadline, done);
  }

  void Advance(absl::Duration duration) { clock_.Advance(duration); }
  void AdvanceTo(absl::Time time) { clock_.AdvanceTo(time); }
  bool BlockUntilWaiters(int count, absl::Duration real_timeout = absl::Seconds(30)) {
    return clock_.BlockUntilWaiters(count, real_timeout);
  }
  int waiters() { return clock_.waiters(); }

  // Waits begun since the clock was made (each WaitUntil, hence each SleepUntil, counts).
  uint64_t waits_begun() {
    MutexLock guard(&mutex_);
    return waits_begun_;
  }
  // The deadline of the last wait begun (absl::InfinitePast() before any).
  absl::Time last_deadline() {
    MutexLock guard(&mutex_);
    return last_deadline_;
  }

 private:
  SimulatedClock clock_;
  Mutex mutex_;
  uint64_t waits_begun_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Time last_deadline_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
};

}  // namespace memload

#endif  // MEMLOAD_CORE_TESTING_WAIT_RECORDING_CLOCK_H_
