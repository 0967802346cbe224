#include "controller/testing/deadline_driver.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/testing/wait_recording_clock.h"
#include "gtest/gtest.h"

namespace memload {
namespace testing {
namespace {

// Sleeps of 1 h, 2 h and 3 h end at their deadlines exactly, in order, without real waiting.
TEST(DeadlineDriverTest, EachWaitEndsAtItsDeadline) {
  WaitRecordingClock clock;
  const absl::Time start = clock.Now();
  const absl::Time real_start = absl::Now();
  std::vector<absl::Time> woke;
  {
    DeadlineDriver driver(&clock);
    for (int hours = 1; hours <= 3; ++hours) {
      clock.SleepFor(absl::Hours(hours));
      woke.push_back(clock.Now());
    }
  }
  EXPECT_EQ(woke, (std::vector<absl::Time>{start + absl::Hours(1), start + absl::Hours(3),
                                           start + absl::Hours(6)}));
  EXPECT_EQ(clock.waits_begun(), 3u);
  EXPECT_LT(absl::Now() - real_start, absl::Minutes(1));  // Six hours simulated, not waited.
}

// A wait for a condition alone (no deadline) is left to its condition.
TEST(DeadlineDriverTest, LeavesAnUnboundedWaitAlone) {
  WaitRecordingClock clock;
  const absl::Time start = clock.Now();
  std::mutex mutex;
  std::condition_variable wake;
  bool done = false;  // Guarded by mutex.
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mutex);
    clock.WaitUntil(wake, lock, absl::InfiniteFuture(), [&] { return done; });
  });
  {
    DeadlineDriver driver(&clock);
    EXPECT_TRUE(clock.BlockUntilWaiters(1));
    {
      std::lock_guard<std::mutex> lock(mutex);
      done = true;
    }
    wake.notify_all();
    waiter.join();
  }
  EXPECT_EQ(clock.Now(), start);
}

}  // namespace
}  // namespace testing
}  // namespace memload
