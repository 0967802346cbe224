#include "controller/rollout.h"

#include <thread>
#include <utility>

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
using Waves = std::vector<std::pair<size_t, size_t>>;

constexpr absl::Duration kWait = absl::Seconds(10);

CallFn<v1::StartPlanResponse> StartCall() {
  v1::StartPlanRequest request;
  request.mutable_spec()->set_plan_id("drill-1");
  return [request](AgentClient& client, absl::Duration timeout, Done<v1::StartPlanResponse> done) {
    client.StartPlan(request, timeout, std::move(done));
  };
}

RolloutOptions Options(absl::string_view rollout) {
  RolloutOptions options;
  options.strategy = *ParseRollout(rollout);
  options.fanout.timeout = absl::Seconds(5);
  options.fanout.idempotent = true;
  return options;
}

// Wave k+1 starts only after every call of wave k was answered.
void ExpectWaves(const std::vector<FakeCall>& calls, const Waves& waves,
                 absl::Duration gap = absl::ZeroDuration()) {
  ASSERT_EQ(calls.size(), waves.back().second);
  for (size_t w = 1; w < waves.size(); ++w) {
    absl::Time previous_end = absl::InfinitePast();
    for (size_t i = waves[w - 1].first; i < waves[w - 1].second; ++i) {
      previous_end = std::max(previous_end, calls[i].answered);
    }
    for (size_t i = waves[w].first; i < waves[w].second; ++i) {
      EXPECT_GE(calls[i].time - previous_end, gap) << "call " << i << " of wave " << w;
    }
  }
}

TEST(ParseRolloutTest, AcceptsEveryForm) {
  EXPECT_EQ(ParseRollout("all")->mode, RolloutStrategy::Mode::kAll);
  EXPECT_EQ(ParseRollout("serial")->mode, RolloutStrategy::Mode::kSerial);
  EXPECT_EQ(ParseRollout("batch:3")->mode, RolloutStrategy::Mode::kBatch);
  EXPECT_EQ(ParseRollout("batch:3")->batch, 3);
  EXPECT_EQ(ParseRollout("batch:25%")->mode, RolloutStrategy::Mode::kBatchPercent);
  EXPECT_EQ(ParseRollout("batch:25%")->batch, 25);
  for (const char* text : {"all", "serial", "batch:7", "batch:100%"}) {
    EXPECT_EQ(FormatRollout(*ParseRollout(text)), text);
  }
}

TEST(ParseRolloutTest, RefusesBadText) {
  for (const char* text : {"", "ALL", "batch", "batch:", "batch:0", "batch:-1", "batch:x",
                           "batch:0%", "batch:101%", "batch:2.5", "batch: 2", "serial:2"}) {
    EXPECT_THAT(ParseRollout(text),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("expected all, serial, batch:N (N >= 1) or batch:N%")))
        << text;
  }
}

TEST(PlanWavesTest, GroupsTargetsInOrder) {
  EXPECT_EQ(PlanWaves(*ParseRollout("all"), 5), (Waves{{0, 5}}));
  EXPECT_EQ(PlanWaves(*ParseRollout("serial"), 3), (Waves{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_EQ(PlanWaves(*ParseRollout("batch:2"), 5), (Waves{{0, 2}, {2, 4}, {4, 5}}));
  EXPECT_EQ(PlanWaves(*ParseRollout("batch:9"), 5), (Waves{{0, 5}}));
  // Percentages round up, and a wave holds at least one target.
  EXPECT_EQ(PlanWaves(*ParseRollout("batch:50%"), 5), (Waves{{0, 3}, {3, 5}}));
  EXPECT_EQ(PlanWaves(*ParseRollout("batch:1%"), 3), (Waves{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_EQ(PlanWaves(*ParseRollout("batch:100%"), 4), (Waves{{0, 4}}));
  EXPECT_TRUE(PlanWaves(*ParseRollout("all"), 0).empty());
}

TEST(ParseStaggerTest, AcceptsDurations) {
  EXPECT_EQ(*ParseStagger("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseStagger("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseStagger("1m30s"), absl::Seconds(90));
  for (const char* text : {"", "10", "abc", "-1s", "inf"}) {
    EXPECT_THAT(ParseStagger(text),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--stagger")))
        << text;
  }
}

TEST(ParseMaxFailuresTest, CountsAndPercentages) {
  EXPECT_EQ(ParseMaxFailures("0")->Allowed(10), 0);
  EXPECT_EQ(ParseMaxFailures("3")->Allowed(10), 3);
  EXPECT_EQ(ParseMaxFailures("25%")->Allowed(10), 2);  // 2.5 rounds down: a 3rd fails it.
  EXPECT_EQ(ParseMaxFailures("100%")->Allowed(7), 7);
  EXPECT_EQ(FailureLimit().Allowed(7), -1);
  for (const char* text : {"", "-1", "x", "1.5", "101%", "%", " 1"}) {
    EXPECT_THAT(ParseMaxFailures(text),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--max-failures")))
        << text;
  }
}

TEST(RolloutTest, SerialStartsOneTargetAfterAnother) {
  FakeFleet fleet(FakeFleet::Targets(4));
  fleet.SetResponder([](const FakeCall&) { return FakeReply(); }, FakeDelivery::kAsync);
  const auto result = Rollout(fleet.clients(), StartCall(), Options("serial"));
  EXPECT_EQ(result.waves, 4);
  EXPECT_THAT(result.succeeded, ElementsAre(0, 1, 2, 3));
  const std::vector<FakeCall> calls = fleet.Calls();
  ASSERT_EQ(calls.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(calls[i].target, FakeFleet::Targets(4)[i]);
    EXPECT_EQ(calls[i].RequestAs<v1::StartPlanRequest>()->spec().plan_id(), "drill-1");
    // Each target's start time is recorded: just before its call, after the previous answer.
    EXPECT_LE(result.results[i].start, calls[i].time);
    if (i > 0) {
      EXPECT_GE(result.results[i].start, calls[i - 1].answered);
    }
  }
  ExpectWaves(calls, PlanWaves(*ParseRollout("serial"), 4));
}

TEST(RolloutTest, BatchOfTwo) {
  FakeFleet fleet(FakeFleet::Targets(5));
  fleet.SetResponder([](const FakeCall&) { return FakeReply(); }, FakeDelivery::kAsync);
  const auto result = Rollout(fleet.clients(), StartCall(), Options("batch:2"));
  EXPECT_EQ(result.waves, 3);
  EXPECT_THAT(result.succeeded, ElementsAre(0, 1, 2, 3, 4));
  ExpectWaves(fleet.Calls(), Waves{{0, 2}, {2, 4}, {4, 5}});
}

TEST(RolloutTest, BatchOfHalfRoundsUp) {
  FakeFleet fleet(FakeFleet::Targets(5));
  fleet.SetResponder([](const FakeCall&) { return FakeReply(); }, FakeDelivery::kAsync);
  const auto result = Rollout(fleet.clients(), StartCall(), Options("batch:50%"));
  EXPECT_EQ(result.waves, 2);
  ExpectWaves(fleet.Calls(), Waves{{0, 3}, {3, 5}});
}

TEST(RolloutTest, BatchCallsRunConcurrentlyWithinAWave) {
  // Stepping by hand: both calls of the first wave are in flight before either answers.
  FakeFleet fleet(FakeFleet::Targets(4));
  RolloutResult<v1::StartPlanResponse> result;
  std::thread rollout([&] { result = Rollout(fleet.clients(), StartCall(), Options("batch:2")); });
  ASSERT_TRUE(fleet.WaitForPending(2, kWait));
  EXPECT_EQ(fleet.Calls().size(), 2u);  // The second wave waits for the first.
  EXPECT_EQ(fleet.ReplyAll(), 2u);
  ASSERT_TRUE(fleet.WaitForPending(2, kWait));
  EXPECT_EQ(fleet.ReplyAll(), 2u);
  rollout.join();
  EXPECT_THAT(result.succeeded, ElementsAre(0, 1, 2, 3));
}

// On simulated time (answers come at once): each wave starts exactly one stagger after the
// previous one ended, and not a millisecond before.
TEST(RolloutTest, StaggerSpacesTheWaves) {
  FakeFleet fleet(FakeFleet::Targets(3));
  fleet.SetResponder([](const FakeCall&) { return FakeReply(); }, FakeDelivery::kAsync);
  WaitRecordingClock clock;
  RolloutOptions options = Options("serial");
  options.stagger = absl::Milliseconds(100);
  options.fanout.clock = &clock;
  const absl::Time start = clock.Now();
  RolloutResult<v1::StartPlanResponse> result;
  std::thread rollout([&] { result = Rollout(fleet.clients(), StartCall(), options); });
  for (size_t wave = 1; wave < 3; ++wave) {
    SCOPED_TRACE(wave);
    const absl::Time next = start + wave * absl::Milliseconds(100);
    // Wave `wave` answered; the rollout sleeps until the stagger has passed.
    ASSERT_TRUE(Eventually([&] {
      return fleet.Calls().size() == wave && clock.waiters() == 1 && clock.last_deadline() == next;
    }));
    clock.AdvanceTo(next - absl::Milliseconds(1));
    ASSERT_TRUE(Eventually([&] { return clock.waiters() == 1; }));
    EXPECT_EQ(fleet.Calls().size(), wave);
    clock.AdvanceTo(next);
  }
  rollout.join();
  EXPECT_THAT(result.succeeded, ElementsAre(0, 1, 2));
  ExpectWaves(fleet.Calls(), Waves{{0, 1}, {1, 2}, {2, 3}});
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(result.results[i].start, start + i * absl::Milliseconds(100));
  }
}

TEST(RolloutTest, MaxFailuresStopsAndReportsTheUnattempted) {
  FakeFleet fleet(FakeFleet::Targets(5));
  const std::vector<std::string> targets = FakeFleet::Targets(5);
  fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.target == targets[1] || call.target == targets[2]) {
      return absl::ResourceExhaustedError("would cross --max-memory");
    }
    return FakeReply();
  });
  RolloutOptions options = Options("serial");
  options.max_failures = *ParseMaxFailures("1");
  const auto result = Rollout(fleet.clients(), StartCall(), options);
  EXPECT_TRUE(result.stopped_by_failures);
  EXPECT_FALSE(result.cancelled);
  EXPECT_EQ(result.waves, 3);
  EXPECT_THAT(result.succeeded, ElementsAre(0));
  EXPECT_THAT(result.failed, ElementsAre(1, 2));
  EXPECT_THAT(result.not_attempted, ElementsAre(3, 4));
  EXPECT_THAT(result.Attempted(), ElementsAre(0, 1, 2));
  EXPECT_THAT(result.results[1].response,
              StatusIs(absl::StatusCode::kResourceExhausted, "would cross --max-memory"));
  EXPECT_THAT(result.results[3].response,
              StatusIs(absl::StatusCode::kAborted, HasSubstr("stopped after 2 failures")));
  EXPECT_EQ(result.results[3].target, targets[3]);
  EXPECT_EQ(fleet.Calls().size(), 3u);
}

TEST(RolloutTest, MaxFailuresPercentStopsAWideWaveEarly) {
  FakeFleet fleet(FakeFleet::Targets(10));
  fleet.SetResponder([](const FakeCall&) -> FakeReply { return absl::InternalError("boom"); });
  RolloutOptions options = Options("all");
  options.fanout.parallelism = 1;
  options.max_failures = *ParseMaxFailures("20%");  // 2 of 10 tolerated.
  const auto result = Rollout(fleet.clients(), StartCall(), options);
  EXPECT_TRUE(result.stopped_by_failures);
  EXPECT_THAT(result.failed, ElementsAre(0, 1, 2));
  EXPECT_EQ(result.not_attempted.size(), 7u);
}

TEST(RolloutTest, NoLimitAttemptsEveryTarget) {
  FakeFleet fleet(FakeFleet::Targets(4));
  fleet.SetResponder([](const FakeCall&) -> FakeReply { return absl::InternalError("boom"); });
  const auto result = Rollout(fleet.clients(), StartCall(), Options("serial"));
  EXPECT_FALSE(result.stopped_by_failures);
  EXPECT_THAT(result.failed, ElementsAre(0, 1, 2, 3));
}

TEST(RolloutTest, CancelDuringTheStaggerStopsAtOnce) {
  FakeFleet fleet(FakeFleet::Targets(5));
  CancelSignal cancel;
  RolloutOptions options = Options("serial");
  options.stagger = absl::Hours(1);
  options.cancel = &cancel;
  RolloutResult<v1::StartPlanResponse> result;
  const absl::Time start = absl::Now();
  std::thread rollout([&] { result = Rollout(fleet.clients(), StartCall(), options); });
  ASSERT_TRUE(fleet.WaitForPending(1, kWait));
  ASSERT_THAT(fleet.ReplyNext(), IsOk());
  cancel.Cancel();  // Ctrl-C: the rollout is (or soon will be) in its one-hour stagger.
  rollout.join();
  EXPECT_LT(absl::Now() - start, kWait);
  EXPECT_TRUE(result.cancelled);
  EXPECT_THAT(result.succeeded, ElementsAre(0));
  EXPECT_THAT(result.not_attempted, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(result.Attempted(), ElementsAre(0));
  EXPECT_THAT(result.results[4].response,
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(fleet.Calls().size(), 1u);
}

TEST(RolloutTest, CancelInsideAWaveAwaitsWhatStarted) {
  FakeFleet fleet(FakeFleet::Targets(5));
  CancelSignal cancel;
  const std::vector<std::string> targets = FakeFleet::Targets(5);
  // Ctrl-C arrives while target 2 is being started; its start still completes.
  fleet.SetResponder(
      [&](const FakeCall& call) {
        if (call.target == targets[2]) cancel.Cancel();
        return FakeReply();
      },
      FakeDelivery::kAsync);
  RolloutOptions options = Options("all");
  options.fanout.parallelism = 1;
  options.cancel = &cancel;
  const auto result = Rollout(fleet.clients(), StartCall(), options);
  EXPECT_TRUE(result.cancelled);
  EXPECT_THAT(result.succeeded, ElementsAre(0, 1, 2));
  EXPECT_THAT(result.not_attempted, ElementsAre(3, 4));
}

TEST(RolloutTest, CancelledBeforeStartAttemptsNothing) {
  FakeFleet fleet(FakeFleet::Targets(3));
  CancelSignal cancel;
  cancel.Cancel();
  RolloutOptions options = Options("batch:2");
  options.cancel = &cancel;
  const auto result = Rollout(fleet.clients(), StartCall(), options);
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(result.waves, 0);
  EXPECT_THAT(result.not_attempted, ElementsAre(0, 1, 2));
  EXPECT_TRUE(fleet.Calls().empty());
}

}  // namespace
}  // namespace controller
}  // namespace memload
