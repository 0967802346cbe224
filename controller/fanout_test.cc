#include "controller/fanout.h"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "controller/testing/fake_agent_client.h"
#include "core/cancel_signal.h"
#include "core/testing/status_matchers.h"
#include "core/testing/wait_recording_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::Eventually;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);  // Bound on every wait for the fake.

CallFn<v1::NodeUsage> GetUsageCall() {
  return [](AgentClient& client, absl::Duration timeout, Done<v1::NodeUsage> done) {
    client.GetUsage(v1::GetUsageRequest(), timeout, std::move(done));
  };
}

// Answers GetUsage with the target's name as node name, so results can be matched up.
FakeReply NamedUsage(const FakeCall& call) {
  v1::NodeUsage usage;
  usage.mutable_node()->set_node_name(call.target);
  return usage;
}

// 5 s per call, 10 ms first backoff without jitter, `parallelism` calls in flight.
FanOutOptions Options(int parallelism = FanOutOptions().parallelism) {
  FanOutOptions options;
  options.timeout = absl::Seconds(5);
  options.retry.initial_backoff = absl::Milliseconds(10);
  options.retry.jitter = 0;
  options.parallelism = parallelism;
  return options;
}

// The same for an idempotent call (retried).
FanOutOptions Idempotent() {
  FanOutOptions options = Options();
  options.idempotent = true;
  return options;
}

std::vector<std::string> Targets(const std::vector<TargetResult<v1::NodeUsage>>& results) {
  std::vector<std::string> targets;
  for (const auto& result : results) targets.push_back(result.target);
  return targets;
}

TEST(FanOutTest, EveryTargetAnswersInTargetOrder) {
  FakeFleet fleet(FakeFleet::Targets(5));
  fleet.SetResponder(NamedUsage, FakeDelivery::kAsync);
  const auto results = FanOut(fleet.clients(), GetUsageCall(), Options());
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(Targets(results), FakeFleet::Targets(5));
  for (const auto& result : results) {
    ASSERT_THAT(result.response, IsOk());
    EXPECT_EQ(result.response->node().node_name(), result.target);
    EXPECT_EQ(result.attempts, 1);
    EXPECT_NE(result.start, absl::InfinitePast());
    EXPECT_GE(result.latency, absl::ZeroDuration());
  }
}

TEST(FanOutTest, NoTargetsIsNoWork) {
  EXPECT_TRUE(FanOut(std::vector<AgentClient*>(), GetUsageCall(), Options()).empty());
}

TEST(FanOutTest, InlineAnswersAreFine) {
  // A client may answer inside the call itself: FanOut must not hold its lock then.
  FakeFleet fleet(FakeFleet::Targets(20));
  fleet.SetResponder(NamedUsage, FakeDelivery::kInline);
  FanOutOptions options = Options(/*parallelism=*/2);
  const auto results = FanOut(fleet.clients(), GetUsageCall(), options);
  for (const auto& result : results) EXPECT_THAT(result.response, IsOk());
}

TEST(FanOutTest, ParallelismBoundIsRespectedWhenStepping) {
  FakeFleet fleet(FakeFleet::Targets(10));
  FanOutOptions options = Options(/*parallelism=*/3);
  std::vector<TargetResult<v1::NodeUsage>> results;
  std::thread fanout([&] { results = FanOut(fleet.clients(), GetUsageCall(), options); });
  // Answer one call at a time; each answer frees one slot, which the next target takes.
  for (size_t remaining = 10; remaining > 0; --remaining) {
    ASSERT_TRUE(fleet.WaitForPending(std::min<size_t>(3, remaining), kWait));
    EXPECT_LE(fleet.pending_count(), 3u);
    ASSERT_THAT(fleet.ReplyNext(), IsOk());
  }
  fanout.join();
  EXPECT_EQ(fleet.max_pending(), 3u);
  // Targets were started in order.
  const std::vector<FakeCall> calls = fleet.Calls();
  ASSERT_EQ(calls.size(), 10u);
  for (size_t i = 0; i < calls.size(); ++i) EXPECT_EQ(calls[i].target, FakeFleet::Targets(10)[i]);
  for (const auto& result : results) EXPECT_THAT(result.response, IsOk());
}

TEST(FanOutTest, AutoParallelismScalesWithTheTargets) {
  EXPECT_EQ(AutoParallelism(0), 256);
  EXPECT_EQ(AutoParallelism(1000), 256);
  EXPECT_EQ(AutoParallelism(2400), 300);
  EXPECT_EQ(AutoParallelism(10000), 1250);
  EXPECT_EQ(AutoParallelism(65000), 4096);
  EXPECT_EQ(AutoParallelism(size_t{1} << 40), 4096);
}

// Parallelism 0 (memloadctl's default) holds AutoParallelism(targets) calls in flight.
TEST(FanOutTest, ParallelismZeroHoldsAutoParallelismCallsInFlight) {
  constexpr int kTargets = 2400;  // AutoParallelism: 300.
  FakeFleet fleet(FakeFleet::Targets(kTargets));
  FanOutOptions options = Options(/*parallelism=*/0);
  std::vector<TargetResult<v1::NodeUsage>> results;
  std::thread fanout([&] { results = FanOut(fleet.clients(), GetUsageCall(), options); });
  ASSERT_TRUE(fleet.WaitForPending(300, kWait));
  EXPECT_EQ(fleet.pending_count(), 300u);
  fleet.SetResponder(NamedUsage, FakeDelivery::kAsync);  // Answers the calls still to come.
  for (size_t i = 0; i < fleet.size(); ++i) fleet.client(i).ReplyAll();
  fanout.join();
  EXPECT_EQ(fleet.max_pending(), 300u);
  ASSERT_EQ(results.size(), static_cast<size_t>(kTargets));
  for (const auto& result : results) EXPECT_THAT(result.response, IsOk());
}

TEST(FanOutTest, ParallelismBoundIsRespectedUnderLoad) {
  FakeFleet fleet(FakeFleet::Targets(200));
  fleet.SetResponder(NamedUsage, FakeDelivery::kAsync);
  FanOutOptions options = Options(/*parallelism=*/4);
  const auto results = FanOut(fleet.clients(), GetUsageCall(), options);
  EXPECT_LE(fleet.max_pending(), 4u);
  EXPECT_GE(fleet.max_pending(), 1u);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_THAT(results[i].response, IsOk());
    EXPECT_EQ(results[i].response->node().node_name(), FakeFleet::Targets(200)[i]);
  }
}

TEST(FanOutTest, PartialFailureKeepsTheOthersResultsInOrder) {
  FakeFleet fleet(FakeFleet::Targets(4));
  fleet.SetResponder(
      [](const FakeCall& call) -> FakeReply {
        if (call.target == FakeFleet::Targets(4)[1]) return absl::NotFoundError("no such plan");
        if (call.target == FakeFleet::Targets(4)[2]) return absl::UnavailableError("down");
        return NamedUsage(call);
      },
      FakeDelivery::kAsync);
  const auto results = FanOut(fleet.clients(), GetUsageCall(), Options());  // Not idempotent.
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(Targets(results), FakeFleet::Targets(4));
  EXPECT_THAT(results[0].response, IsOk());
  EXPECT_THAT(results[1].response, StatusIs(absl::StatusCode::kNotFound, "no such plan"));
  EXPECT_THAT(results[2].response, StatusIs(absl::StatusCode::kUnavailable, "down"));
  EXPECT_THAT(results[3].response, IsOk());
  EXPECT_EQ(results[3].response->node().node_name(), FakeFleet::Targets(4)[3]);
}

// Fails the first `failures` calls of every target with `status`, then answers.
FakeResponder FlakyResponder(int failures, absl::Status status) {
  auto seen = std::make_shared<std::map<std::string, int>>();
  auto mutex = std::make_shared<std::mutex>();
  return [=](const FakeCall& call) -> FakeReply {
    std::lock_guard<std::mutex> lock(*mutex);
    if ((*seen)[call.target]++ < failures) return status;
    return NamedUsage(call);
  };
}

// On simulated time (answers come at once, the clock moves only when the test moves it):
// each retry waits exactly its backoff after the previous answer, 40 ms then 80 ms, and
// not a moment less.
TEST(FanOutTest, RetriesUnavailableWithExponentialBackoffWhenIdempotent) {
  FakeFleet fleet(FakeFleet::Targets(1));
  fleet.SetResponder(FlakyResponder(2, absl::UnavailableError("connection refused")),
                     FakeDelivery::kAsync);
  WaitRecordingClock clock;
  FanOutOptions options = Idempotent();
  options.retry.max_attempts = 3;
  options.retry.initial_backoff = absl::Milliseconds(40);
  options.retry.multiplier = 2;
  options.clock = &clock;
  const absl::Time start = clock.Now();
  std::vector<TargetResult<v1::NodeUsage>> results;
  std::thread fanout([&] { results = FanOut(fleet.clients(), GetUsageCall(), options); });
  absl::Time answered = start;
  for (absl::Duration backoff : {absl::Milliseconds(40), absl::Milliseconds(80)}) {
    SCOPED_TRACE(backoff);
    // The target answered, and FanOut sleeps until its retry (until then: its watchdog).
    ASSERT_TRUE(Eventually([&] {
      return clock.waiters() == 1 && clock.last_deadline() == answered + backoff;
    })) << clock.last_deadline() - answered;
    const size_t calls = fleet.Calls().size();
    clock.AdvanceTo(answered + backoff - absl::Milliseconds(1));
    ASSERT_TRUE(Eventually([&] { return clock.waiters() == 1; }));
    EXPECT_EQ(fleet.Calls().size(), calls);  // Not retried a millisecond early.
    clock.AdvanceTo(answered + backoff);
    answered += backoff;
    ASSERT_TRUE(Eventually([&] { return fleet.Calls().size() == calls + 1; }))
        << fleet.Calls().size() << " calls, " << calls << " before; waiters " << clock.waiters()
        << " deadline " << clock.last_deadline() - answered;
  }
  fanout.join();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_THAT(results[0].response, IsOk());
  EXPECT_EQ(results[0].attempts, 3);
  EXPECT_EQ(results[0].start, start);
  EXPECT_EQ(results[0].latency, absl::Milliseconds(120));
  EXPECT_EQ(fleet.client(0).Calls().size(), 3u);
}

TEST(FanOutTest, RetriesDeadlineExceededWhenIdempotent) {
  FakeFleet fleet(FakeFleet::Targets(1));
  fleet.SetResponder(FlakyResponder(1, absl::DeadlineExceededError("no answer within 5s")));
  FanOutOptions options = Idempotent();
  const auto results = FanOut(fleet.clients(), GetUsageCall(), options);
  EXPECT_THAT(results[0].response, IsOk());
  EXPECT_EQ(results[0].attempts, 2);
}

TEST(FanOutTest, NoRetryForNonIdempotentCalls) {
  FakeFleet fleet(FakeFleet::Targets(1));
  fleet.SetResponder(FlakyResponder(1, absl::UnavailableError("down")));
  const auto results = FanOut(fleet.clients(), GetUsageCall(), Options());
  EXPECT_THAT(results[0].response, StatusIs(absl::StatusCode::kUnavailable, "down"));
  EXPECT_EQ(results[0].attempts, 1);
  EXPECT_EQ(fleet.Calls().size(), 1u);
}

TEST(FanOutTest, NoRetryForPermanentErrors) {
  FakeFleet fleet(FakeFleet::Targets(1));
  fleet.SetResponder(FlakyResponder(1, absl::InvalidArgumentError("bad plan")));
  FanOutOptions options = Idempotent();
  const auto results = FanOut(fleet.clients(), GetUsageCall(), options);
  EXPECT_THAT(results[0].response, StatusIs(absl::StatusCode::kInvalidArgument, "bad plan"));
  EXPECT_EQ(results[0].attempts, 1);
}

TEST(FanOutTest, GivesUpAfterMaxAttempts) {
  FakeFleet fleet(FakeFleet::Targets(1));
  fleet.SetResponder(FlakyResponder(100, absl::UnavailableError("down")), FakeDelivery::kAsync);
  FanOutOptions options = Idempotent();
  options.retry.max_attempts = 4;
  const auto results = FanOut(fleet.clients(), GetUsageCall(), options);
  // The last error, and how many attempts were made (a timeout of 5 s said "no answer
  // within 5s" after 15 s of three attempts).
  EXPECT_THAT(results[0].response, StatusIs(absl::StatusCode::kUnavailable, "down (4 attempts)"));
  EXPECT_EQ(results[0].attempts, 4);
  EXPECT_EQ(fleet.Calls().size(), 4u);
}

TEST(FanOutTest, BackoffGrowsAndIsCapped) {
  RetryPolicy policy;
  policy.initial_backoff = absl::Milliseconds(100);
  policy.multiplier = 2;
  policy.max_backoff = absl::Milliseconds(500);
  EXPECT_EQ(BackoffWithoutJitter(policy, 1), absl::Milliseconds(100));
  EXPECT_EQ(BackoffWithoutJitter(policy, 2), absl::Milliseconds(200));
  EXPECT_EQ(BackoffWithoutJitter(policy, 3), absl::Milliseconds(400));
  EXPECT_EQ(BackoffWithoutJitter(policy, 4), absl::Milliseconds(500));
  EXPECT_EQ(BackoffWithoutJitter(policy, 1000), absl::Milliseconds(500));
}

TEST(FanOutTest, EachAttemptGetsThePerCallTimeout) {
  FakeFleet fleet(FakeFleet::Targets(3));
  fleet.SetResponder(FlakyResponder(1, absl::UnavailableError("down")));
  FanOutOptions options = Idempotent();
  options.timeout = absl::Milliseconds(1234);
  FanOut(fleet.clients(), GetUsageCall(), options);
  const std::vector<FakeCall> calls = fleet.Calls();
  ASSERT_EQ(calls.size(), 6u);
  for (const FakeCall& call : calls) EXPECT_EQ(call.timeout, absl::Milliseconds(1234));
}

TEST(FanOutTest, HungTargetTimesOutAloneAndLateAnswerIsIgnored) {
  FakeFleet fleet(FakeFleet::Targets(3));
  const std::string hung = FakeFleet::Targets(3)[1];
  fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.target == hung) return FakeReply::Hold();  // Never calls back.
    return NamedUsage(call);
  });
  WaitRecordingClock clock;
  FanOutOptions options = Options();
  options.timeout = absl::Milliseconds(100);
  options.watchdog_grace = absl::ZeroDuration();
  options.clock = &clock;
  const absl::Time start = clock.Now();
  std::vector<TargetResult<v1::NodeUsage>> results;
  std::thread fanout([&] { results = FanOut(fleet.clients(), GetUsageCall(), options); });
  // The others answered; FanOut waits for the hung one until its timeout, and no longer.
  ASSERT_TRUE(Eventually([&] {
    return clock.waiters() == 1 && clock.last_deadline() == start + absl::Milliseconds(100);
  }));
  clock.Advance(absl::Milliseconds(100));
  fanout.join();
  EXPECT_THAT(results[0].response, IsOk());
  EXPECT_THAT(results[1].response, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                            HasSubstr(hung + ": no answer within 100ms")));
  EXPECT_EQ(results[1].latency, absl::Milliseconds(100));
  EXPECT_EQ(results[0].latency, absl::ZeroDuration());
  EXPECT_THAT(results[2].response, IsOk());
  // The abandoned call answers after FanOut returned: nothing must break.
  EXPECT_THAT(fleet.client(1).ReplyNext(), IsOk());
}

TEST(FanOutTest, CancelStopsNewTargetsButAwaitsCallsInFlight) {
  FakeFleet fleet(FakeFleet::Targets(5));
  CancelSignal cancel;
  FanOutOptions options = Options(/*parallelism=*/2);
  options.cancel = &cancel;
  std::vector<TargetResult<v1::NodeUsage>> results;
  std::thread fanout([&] { results = FanOut(fleet.clients(), GetUsageCall(), options); });
  ASSERT_TRUE(fleet.WaitForPending(2, kWait));
  cancel.Cancel();
  ASSERT_THAT(fleet.ReplyNext(), IsOk());
  ASSERT_THAT(fleet.FailNext(absl::UnavailableError("down")), IsOk());
  fanout.join();
  EXPECT_THAT(results[0].response, IsOk());
  EXPECT_THAT(results[1].response, StatusIs(absl::StatusCode::kUnavailable, "down"));
  for (size_t i = 2; i < 5; ++i) {
    EXPECT_EQ(results[i].attempts, 0);
    EXPECT_THAT(results[i].response,
                StatusIs(absl::StatusCode::kCancelled, "not attempted: cancelled"));
  }
  EXPECT_EQ(fleet.Calls().size(), 2u);
}

TEST(FanOutTest, StopsStartingTargetsOnceFailuresExceedTheLimit) {
  FakeFleet fleet(FakeFleet::Targets(6));
  fleet.SetResponder([](const FakeCall&) -> FakeReply { return absl::InternalError("boom"); });
  FanOutOptions options = Options(/*parallelism=*/1);
  options.stop_after_failures = 1;
  const auto results = FanOut(fleet.clients(), GetUsageCall(), options);
  EXPECT_EQ(results[0].attempts, 1);
  EXPECT_EQ(results[1].attempts, 1);
  for (size_t i = 2; i < 6; ++i) {
    EXPECT_EQ(results[i].attempts, 0);
    EXPECT_THAT(results[i].response,
                StatusIs(absl::StatusCode::kAborted, HasSubstr("not attempted")));
  }
}

TEST(FanOutTest, StepInAChosenOrder) {
  // The fake lets a test answer calls out of order: results still come back in target order.
  FakeFleet fleet(FakeFleet::Targets(3));
  std::vector<TargetResult<v1::NodeUsage>> results;
  std::thread fanout([&] { results = FanOut(fleet.clients(), GetUsageCall(), Options()); });
  ASSERT_TRUE(fleet.WaitForPending(3, kWait));
  ASSERT_THAT(fleet.client(2).ReplyNext(NamedUsage(fleet.client(2).Pending()[0])), IsOk());
  ASSERT_THAT(fleet.client(0).FailNext(absl::NotFoundError("gone")), IsOk());
  ASSERT_THAT(fleet.client(1).ReplyNext(NamedUsage(fleet.client(1).Pending()[0])), IsOk());
  fanout.join();
  EXPECT_EQ(Targets(results), FakeFleet::Targets(3));
  EXPECT_THAT(results[0].response, StatusIs(absl::StatusCode::kNotFound, "gone"));
  EXPECT_EQ(results[1].response->node().node_name(), FakeFleet::Targets(3)[1]);
  EXPECT_EQ(results[2].response->node().node_name(), FakeFleet::Targets(3)[2]);
}

}  // namespace
}  // namespace controller
}  // namespace memload
