// DeadlineDriver: runs code that paces itself on a clock (memloadctl's run, retries,
// staggers) to its end on simulated time. While it lives, a thread moves the clock to the
// deadline of each wait as soon as the wait begins, so every interval passes at once, in
// order, to the nanosecond, and no test sleeps or races the wall clock.
//
//   WaitRecordingClock clock;
//   FakeFleet fleet(targets, &clock);
//   fleet.SetResponder(Healthy);   // inline answers: nothing but time is ever awaited
//   env.clock = &clock;
//   {
//     DeadlineDriver driver(&clock);
//     RunRun(env, spec, options);  // a 5-minute --for ends at clock.Now() + 5 min
//   }
//
// Use it only where every wait on the clock ends by time alone: fakes that answer inline
// (a wait for an answer in flight would be cut short at its watchdog), and no wait on a
// condition the test itself fulfils later. Tests that check one wait at a time drive the
// clock by hand (WaitRecordingClock::last_deadline, AdvanceTo).
//
// Thread-safety: construct and destroy on one thread; the clock must outlive the driver.
#ifndef MEMLOAD_CONTROLLER_TESTING_DEADLINE_DRIVER_H_
#define MEMLOAD_CONTROLLER_TESTING_DEADLINE_DRIVER_H_

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/sync/mutex.h"
#include "core/testing/wait_recording_clock.h"

namespace memload {
namespace testing {

class DeadlineDriver {
 public:
  explicit DeadlineDriver(WaitRecordingClock* clock);
  // Stops the thread (waits in progress are left as they are).
  ~DeadlineDriver();
  DeadlineDriver(const DeadlineDriver&) = delete;
  DeadlineDriver& operator=(const DeadlineDriver&) = delete;

 private:
  void Loop();

  WaitRecordingClock* const clock_;
  Mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_TESTING_DEADLINE_DRIVER_H_
