#include "core/testing/simulated_clock.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace memload {
namespace {

TEST(SimulatedClockTest, TimeMovesOnlyWhenAdvanced) {
  SimulatedClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.Advance(-absl::Seconds(3));  // Ignored: time never goes back.
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.AdvanceTo(absl::FromUnixSeconds(110));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(110));
}

TEST(SimulatedClockTest, SleeperWakesWhenTimeReachesItsDeadline) {
  SimulatedClock clock;
  const absl::Time start = clock.Now();
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepUntil(start + absl::Seconds(10));
    woke = true;
  });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  clock.Advance(absl::Seconds(9));
  // Still asleep at 9 s: it waits again, so it is still counted as a waiter.
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_FALSE(woke);
  clock.Advance(absl::Seconds(1));
  sleeper.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(SimulatedClockTest, NotifyOnTheCallersConditionWakesTheWaiter) {
  SimulatedClock clock;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  bool result = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mutex);
    result = clock.WaitUntil(wake, lock, absl::InfiniteFuture(), [&] { return stop; });
  });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  {
    std::lock_guard<std::mutex> lock(mutex);
    stop = true;
  }
  wake.notify_all();
  waiter.join();
  EXPECT_TRUE(result);
}

TEST(SimulatedClockTest, RealClockWaitReturnsFalseAtThePastDeadline) {
  std::mutex mutex;
  std::condition_variable wake;
  std::unique_lock<std::mutex> lock(mutex);
  EXPECT_FALSE(Clock::Real()->WaitUntil(wake, lock, absl::InfinitePast(), [] { return false; }));
  EXPECT_TRUE(Clock::Real()->WaitUntil(wake, lock, absl::InfinitePast(), [] { return true; }));
}

}  // namespace
}  // namespace memload
