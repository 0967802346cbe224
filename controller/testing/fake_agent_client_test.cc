#include "controller/testing/fake_agent_client.h"

#include <optional>

#include "core/sync/mutex.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::testing::HasSubstr;

// Records the one answer a call gets.
template <typename T>
struct Slot {
  std::optional<absl::StatusOr<T>> answer;
  Done<T> callback() {
    return [this](absl::StatusOr<T> result) { answer = std::move(result); };
  }
};

TEST(FakeAgentClientTest, QueuesCallsAndAnswersThemInAChosenOrder) {
  FakeAgentClient fake("10.0.0.1:7070");
  Slot<v1::StopPlanResponse> stop;
  Slot<v1::NodeUsage> usage;
  v1::StopPlanRequest request;
  request.set_plan_id("p1");
  fake.StopPlan(request, absl::Seconds(3), stop.callback());
  fake.GetUsage(v1::GetUsageRequest(), absl::Seconds(4), usage.callback());

  const std::vector<FakeCall> pending = fake.Pending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].method, "StopPlan");
  EXPECT_EQ(pending[0].RequestAs<v1::StopPlanRequest>()->plan_id(), "p1");
  EXPECT_EQ(pending[0].RequestAs<v1::GetUsageRequest>(), nullptr);
  EXPECT_EQ(pending[0].timeout, absl::Seconds(3));
  EXPECT_EQ(pending[1].method, "GetUsage");

  v1::NodeUsage answer;
  answer.set_agent_rss_bytes(42);
  ASSERT_THAT(fake.Reply(pending[1].id, answer), IsOk());
  ASSERT_TRUE(usage.answer.has_value());
  EXPECT_EQ((*usage.answer)->agent_rss_bytes(), 42u);
  EXPECT_FALSE(stop.answer.has_value());

  ASSERT_THAT(fake.FailNext(absl::NotFoundError("no plan p1")), IsOk());
  EXPECT_THAT(*stop.answer, StatusIs(absl::StatusCode::kNotFound, "no plan p1"));
  EXPECT_EQ(fake.pending_count(), 0u);
  EXPECT_FALSE(fake.Calls()[0].pending());
  EXPECT_GE(fake.Calls()[0].answered, fake.Calls()[0].time);
}

TEST(FakeAgentClientTest, RefusesMistakes) {
  FakeAgentClient fake("a:1");
  EXPECT_THAT(fake.ReplyNext(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no pending")));
  Slot<v1::NodeUsage> usage;
  fake.GetUsage(v1::GetUsageRequest(), absl::Seconds(1), usage.callback());
  // A response of the wrong type is refused and the call stays pending.
  EXPECT_THAT(fake.ReplyNext(v1::StopPlanResponse()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memload.v1.NodeUsage")));
  EXPECT_EQ(fake.pending_count(), 1u);
  const uint64_t id = fake.Pending()[0].id;
  ASSERT_THAT(fake.ReplyNext(), IsOk());
  EXPECT_THAT(fake.Reply(id, FakeReply()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already answered")));
  EXPECT_THAT(fake.Reply(999, FakeReply()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
}

TEST(FakeAgentClientTest, ResponderAnswersAndCanHold) {
  FakeAgentClient fake("a:1");
  fake.SetResponder([](const FakeCall& call) -> FakeReply {
    if (call.method == "GetNodeInfo") return FakeReply::Hold();
    if (call.method == "StopPlan") return v1::NodeUsage();  // Wrong type: a test bug.
    return absl::UnavailableError("down");
  });
  Slot<v1::NodeUsage> usage;
  Slot<v1::NodeInfo> info;
  Slot<v1::StopPlanResponse> stop;
  fake.GetUsage(v1::GetUsageRequest(), absl::Seconds(1), usage.callback());
  fake.GetNodeInfo(v1::GetNodeInfoRequest(), absl::Seconds(1), info.callback());
  fake.StopPlan(v1::StopPlanRequest(), absl::Seconds(1), stop.callback());
  EXPECT_THAT(*usage.answer, StatusIs(absl::StatusCode::kUnavailable, "down"));
  EXPECT_FALSE(info.answer.has_value());
  EXPECT_THAT(*stop.answer, StatusIs(absl::StatusCode::kInternal, HasSubstr("fake responder")));
  EXPECT_EQ(fake.ReplyAll(), 1u);
  EXPECT_THAT(*info.answer, IsOk());
}

TEST(FakeAgentClientTest, AsyncDeliveryAnswersOnAnotherThread) {
  FakeFleet fleet(FakeFleet::Targets(2));
  fleet.SetResponder([](const FakeCall&) { return FakeReply(); }, FakeDelivery::kAsync);
  Mutex mutex;
  std::condition_variable answered;
  int answers = 0;
  for (size_t i = 0; i < fleet.size(); ++i) {
    fleet.client(i).GetUsage(v1::GetUsageRequest(), absl::Seconds(1),
                             [&](absl::StatusOr<v1::NodeUsage> usage) {
                               EXPECT_THAT(usage, IsOk());
                               MutexLock lock(&mutex);
                               ++answers;
                               answered.notify_all();
                             });
  }
  MutexLock lock(&mutex);
  EXPECT_TRUE(
      answered.wait_for(lock.native(), std::chrono::seconds(10), [&] { return answers == 2; }));
}

TEST(FakeFleetTest, FactoryHandsOutTheFleetsFakes) {
  FakeFleet fleet({"a:1", "b:2"});
  AgentClientFactory factory = fleet.factory();
  std::unique_ptr<AgentClient> b = factory("b:2");
  EXPECT_EQ(b->target(), "b:2");
  Slot<v1::NodeUsage> usage;
  b->GetUsage(v1::GetUsageRequest(), absl::Seconds(1), usage.callback());
  EXPECT_EQ(fleet.Find("b:2")->pending_count(), 1u);
  EXPECT_EQ(fleet.Find("a:1")->pending_count(), 0u);
  EXPECT_EQ(fleet.Find("c:3"), nullptr);
  ASSERT_THAT(fleet.ReplyNext(), IsOk());
  EXPECT_THAT(*usage.answer, IsOk());

  // A target outside the fleet is unreachable.
  std::unique_ptr<AgentClient> stranger = factory("c:3");
  Slot<v1::NodeUsage> lost;
  stranger->GetUsage(v1::GetUsageRequest(), absl::Seconds(1), lost.callback());
  EXPECT_THAT(*lost.answer, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("unreachable")));
}

TEST(FakeAgentClientTest, WatchUsageStreams) {
  FakeAgentClient fake("a:1");
  std::vector<uint64_t> seen;
  std::optional<absl::Status> done;
  std::unique_ptr<UsageWatch> watch = fake.WatchUsage(
      v1::WatchUsageRequest(),
      [&](const v1::NodeUsage& usage) { seen.push_back(usage.agent_rss_bytes()); },
      [&](absl::Status status) { done = status; });
  EXPECT_EQ(fake.open_watches(), 1u);
  EXPECT_EQ(fake.Calls()[0].method, "WatchUsage");
  v1::NodeUsage usage;
  usage.set_agent_rss_bytes(7);
  fake.SendUsage(usage);
  fake.SendUsage(usage);
  EXPECT_EQ(seen, (std::vector<uint64_t>{7, 7}));
  watch->Cancel();
  EXPECT_THAT(*done, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(fake.open_watches(), 0u);
  fake.SendUsage(usage);  // Nobody listens any more.
  EXPECT_EQ(seen.size(), 2u);

  std::optional<absl::Status> second;
  watch = fake.WatchUsage(
      v1::WatchUsageRequest(), [](const v1::NodeUsage&) {},
      [&](absl::Status status) { second = status; });
  fake.FinishWatches(absl::UnavailableError("agent gone"));
  EXPECT_THAT(*second, StatusIs(absl::StatusCode::kUnavailable, "agent gone"));
  watch.reset();  // Already finished: on_done does not run again.
}

}  // namespace
}  // namespace controller
}  // namespace memload
