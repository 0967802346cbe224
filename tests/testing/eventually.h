// Eventually: the one way tests wait for a state. It polls a condition until it holds or a
// bound passes; the bound only catches a real defect (a state that never comes), so it is
// generous and the same everywhere. Wait for the state, then measure after it: never
// race a timer (a `--for` window, a lease, a rate) with a poll.
//
//   ASSERT_TRUE(Eventually([&] { return plan->counters().state == PlanState::kHolding; }));
//   EXPECT_GE(ResidentOf(worker), 64 * kMiB);   // measured once the state is reached
//
// Thread-safety: thread-safe (no shared state); `condition` runs on the calling thread.
#ifndef MEMLOAD_TESTS_TESTING_EVENTUALLY_H_
#define MEMLOAD_TESTS_TESTING_EVENTUALLY_H_

#include <functional>

#include "absl/time/time.h"

namespace memload {
namespace testing {

// How long Eventually waits by default: long enough that two loaded cores never reach it
// when the code is right (a test's own size timeout is 60 s small, 300 s medium).
constexpr absl::Duration kEventuallyTimeout = absl::Seconds(45);

// Calls `condition` every `poll` (real time) until it returns true or `timeout` has
// passed; returns its last value. Always calls it at least once.
bool Eventually(const std::function<bool()>& condition, absl::Duration timeout = kEventuallyTimeout,
                absl::Duration poll = absl::Milliseconds(2));

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_EVENTUALLY_H_
