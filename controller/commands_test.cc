#include "controller/commands.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "controller/pod_commands.h"
#include "controller/pods.h"
#include "controller/testing/deadline_driver.h"
#include "controller/testing/fake_agent_client.h"
#include "controller/testing/json_document.h"
#include "core/cancel_signal.h"
#include "core/sync/mutex.h"
#include "core/testing/status_matchers.h"
#include "core/testing/wait_recording_clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/proto_time.h"
#include "tests/testing/eventually.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::DeadlineDriver;
using ::memload::testing::Eventually;
using ::memload::testing::ExpectSummary;
using ::memload::testing::Field;
using ::memload::testing::ParseJsonDocument;
using ::memload::testing::Sub;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr absl::Duration kWait = absl::Seconds(10);  // Bound on every wait in these tests.
constexpr char kPlanId[] = "drill-1";

// A fleet of fakes behind a CommandEnv that prints JSON into a string, on simulated time:
// the command and the fakes' call stamps read `clock`, which moves only when the test moves
// it (by hand, or with a DeadlineDriver).
struct Harness {
  explicit Harness(int n) : targets(FakeFleet::Targets(n)), fleet(targets, &clock) {
    env.clock = &clock;
    env.targets = targets;
    env.factory = fleet.factory();
    env.out = &out;
    env.json = true;
    env.fanout.timeout = absl::Seconds(5);
    env.fanout.retry.max_attempts = 1;  // Tests that retry say so.
    env.fanout.retry.initial_backoff = absl::Milliseconds(10);
    env.fanout.retry.jitter = 0;
  }

  // The calls of `method` (to `target`, or to any), in arrival order.
  std::vector<FakeCall> Calls(const std::string& method, const std::string& target = "") const {
    std::vector<FakeCall> calls;
    for (FakeCall& call : fleet.Calls()) {
      if (call.method == method && (target.empty() || call.target == target)) {
        calls.push_back(std::move(call));
      }
    }
    return calls;
  }
  std::vector<std::string> TargetsOf(const std::string& method) const {
    std::vector<std::string> called;
    for (const FakeCall& call : Calls(method)) called.push_back(call.target);
    return called;
  }

  // The output as a script would read it; fails the test unless it is one JSON document.
  google::protobuf::Struct Json() const { return ParseJsonDocument(out.str()); }

  const std::vector<std::string> targets;
  WaitRecordingClock clock;
  FakeFleet fleet;
  std::ostringstream out;
  CommandEnv env;
};

std::vector<google::protobuf::Struct> Nodes(const google::protobuf::Struct& document) {
  std::vector<google::protobuf::Struct> nodes;
  for (const auto& value : Field(document, "nodes").list_value().values()) {
    nodes.push_back(value.struct_value());
  }
  return nodes;
}
std::string ErrorCode(const google::protobuf::Struct& node) {
  return Field(Sub(node, "error"), "code").string_value();
}

v1::PlanSpec Spec() {
  v1::PlanSpec spec;
  spec.set_plan_id(kPlanId);
  return spec;
}

// Runs `command` while a DeadlineDriver moves the simulated clock on to every deadline it
// waits for; returns the simulated time it started at.
template <typename Command>
absl::Time RunOnDrivenClock(Harness& h, Command command) {
  const absl::Time start = h.clock.Now();
  DeadlineDriver driver(&h.clock);
  command();
  return start;
}

// One running pod ("shop/web-I", one container "app") on the node of each target, named
// "node@TARGET" as the fake agents' GetNodeInfo answers.
std::vector<Pod> RunningPodPerTarget(const std::vector<std::string>& targets) {
  std::vector<Pod> pods;
  for (size_t i = 0; i < targets.size(); ++i) {
    Pod pod;
    pod.ns = "shop";
    pod.name = absl::StrCat("web-", i);
    pod.uid = absl::StrCat("0000000", i, "-uid");
    pod.node_name = "node@" + targets[i];
    pod.phase = "Running";
    PodContainer container;
    container.name = "app";
    container.container_id = absl::StrCat("containerd://c", i);
    container.running = true;
    pod.containers.push_back(container);
    pods.push_back(pod);
  }
  return pods;
}

v1::PlanStatus Plan(const std::string& id, v1::PlanState state, bool outcome_ok = true) {
  v1::PlanStatus plan;
  plan.set_plan_id(id);
  plan.set_state(state);
  plan.set_outcome_ok(outcome_ok);
  return plan;
}

// The plan id a StartPlan/StopPlan/ResizePlan call names.
std::string PlanIdOf(const FakeCall& call) {
  if (const auto* start = call.RequestAs<v1::StartPlanRequest>()) return start->spec().plan_id();
  if (const auto* stop = call.RequestAs<v1::StopPlanRequest>()) return stop->plan_id();
  if (const auto* resize = call.RequestAs<v1::ResizePlanRequest>()) return resize->plan_id();
  return "";
}

// A healthy agent: GetUsage names the node after its target, StartPlan accepts (PENDING),
// StopPlan stops; anything else gets the default response.
FakeReply Healthy(const FakeCall& call) {
  if (call.method == "GetUsage") {
    v1::NodeUsage usage;
    usage.mutable_node()->set_node_name("node@" + call.target);
    usage.set_plans_resident_bytes(4096);
    return usage;
  }
  if (call.method == "StartPlan") {
    v1::StartPlanResponse response;
    *response.mutable_plan() = Plan(PlanIdOf(call), v1::PLAN_STATE_PENDING);
    response.set_created(true);
    return response;
  }
  if (call.method == "StopPlan") {
    v1::StopPlanResponse response;
    *response.mutable_plan() = Plan(PlanIdOf(call), v1::PLAN_STATE_STOPPED);
    return response;
  }
  return FakeReply();
}

// ---------------------------------------------------------------------------------------
// 1. Partial failure

TEST(RunUsageTest, FailedNodeNeverHidesTheOthers) {
  Harness h(3);
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.target == h.targets[1]) return absl::UnavailableError("connection refused");
    return Healthy(call);
  });
  EXPECT_EQ(RunUsage(h.env), kExitNodesFailed);

  const google::protobuf::Struct document = h.Json();
  EXPECT_EQ(Field(document, "command").string_value(), "usage");
  ExpectSummary(document, 3, 2, 1);
  const std::vector<google::protobuf::Struct> nodes = Nodes(document);
  ASSERT_EQ(nodes.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(Field(nodes[i], "target").string_value(), h.targets[i]);
    EXPECT_EQ(Field(nodes[i], "ok").bool_value(), i != 1);
  }
  for (size_t i : {0, 2}) {
    const google::protobuf::Struct& usage = Sub(nodes[i], "usage");
    EXPECT_EQ(Field(Sub(usage, "node"), "nodeName").string_value(), "node@" + h.targets[i]);
    EXPECT_EQ(Field(usage, "plansResidentBytes").string_value(), "4096");
  }
  EXPECT_EQ(ErrorCode(nodes[1]), "UNAVAILABLE");
  EXPECT_THAT(Field(Sub(nodes[1], "error"), "message").string_value(),
              HasSubstr("connection refused"));
}

// ---------------------------------------------------------------------------------------
// 2. Rollout order, waves and stagger

TEST(RunStartTest, WavesInOrderSpacedByStagger) {
  constexpr absl::Duration kStagger = absl::Milliseconds(50);
  for (const auto& [rollout, wave_size] :
       std::vector<std::pair<std::string, size_t>>{{"serial", 1}, {"batch:2", 2}}) {
    SCOPED_TRACE(rollout);
    Harness h(4);
    h.fleet.SetResponder(Healthy);
    RolloutOptions options;
    ASSERT_THAT(ParseRollout(rollout), IsOk());
    options.strategy = *ParseRollout(rollout);
    options.stagger = kStagger;
    {
      DeadlineDriver driver(&h.clock);
      EXPECT_EQ(RunStart(h.env, Spec(), options), kExitOk);
    }

    const std::vector<FakeCall> starts = h.Calls("StartPlan");
    EXPECT_THAT(h.TargetsOf("StartPlan"), ElementsAreArray(h.targets));
    ASSERT_EQ(starts.size(), 4u);
    for (const FakeCall& call : starts) EXPECT_EQ(PlanIdOf(call), kPlanId);
    // Every call of wave w starts `stagger` after the last answer of wave w-1 (exactly: the
    // answers come at once, and only the stagger moves the simulated clock).
    for (size_t begin = wave_size; begin < starts.size(); begin += wave_size) {
      absl::Time previous_end = absl::InfinitePast();
      for (size_t i = begin - wave_size; i < begin; ++i) {
        previous_end = std::max(previous_end, starts[i].answered);
      }
      for (size_t i = begin; i < begin + wave_size; ++i) {
        EXPECT_EQ(starts[i].time - previous_end, kStagger) << "call " << i;
      }
    }
    EXPECT_TRUE(h.Calls("StopPlan").empty());

    const google::protobuf::Struct document = h.Json();
    ExpectSummary(document, 4, 4, 0);
    const std::vector<google::protobuf::Struct> nodes = Nodes(document);
    ASSERT_EQ(nodes.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(Field(nodes[i], "target").string_value(), h.targets[i]);
      EXPECT_EQ(Field(Sub(nodes[i], "plan"), "planId").string_value(), kPlanId);
    }
  }
}

// ---------------------------------------------------------------------------------------
// 3. --max-failures

TEST(RunStartTest, MaxFailuresStopsTheRolloutAndReleasesWhatStarted) {
  for (const absl::Status& failure :
       {absl::InvalidArgumentError("bad spec"), absl::ResourceExhaustedError("no room")}) {
    SCOPED_TRACE(failure.ToString());
    Harness h(4);
    h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
      if (call.method == "StartPlan" && call.target == h.targets[1]) return failure;
      return Healthy(call);
    });
    RolloutOptions options;
    options.strategy.mode = RolloutStrategy::Mode::kSerial;
    options.max_failures.value = 0;
    EXPECT_EQ(RunStart(h.env, Spec(), options), kExitNodesFailed);

    EXPECT_THAT(h.TargetsOf("StartPlan"), ElementsAre(h.targets[0], h.targets[1]));
    const std::vector<FakeCall> stops = h.Calls("StopPlan");
    ASSERT_EQ(stops.size(), 1u);
    EXPECT_EQ(stops[0].target, h.targets[0]);
    EXPECT_EQ(PlanIdOf(stops[0]), kPlanId);

    const google::protobuf::Struct document = h.Json();
    ExpectSummary(document, 4, 0, 4);
    const std::vector<google::protobuf::Struct> nodes = Nodes(document);
    ASSERT_EQ(nodes.size(), 4u);
    EXPECT_EQ(ErrorCode(nodes[0]), "ABORTED");  // Started, then released.
    EXPECT_EQ(ErrorCode(nodes[1]), absl::StatusCodeToString(failure.code()));
    EXPECT_EQ(ErrorCode(nodes[2]), "ABORTED");  // Never attempted.
    EXPECT_EQ(ErrorCode(nodes[3]), "ABORTED");
  }
}

// A start that timed out may have begun on its node: an aborted rollout releases it too
// (not a node that refused it: see the test above).
TEST(RolloutAbortTest, AlsoReleasesAStartThatTimedOut) {
  for (const bool run : {false, true}) {
    SCOPED_TRACE(run ? "run" : "start");
    Harness h(3);
    h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
      if (call.method == "StartPlan" && call.target == h.targets[1]) {
        return absl::DeadlineExceededError("deadline exceeded");
      }
      return Healthy(call);
    });
    RunOptions options;
    options.rollout.strategy.mode = RolloutStrategy::Mode::kSerial;
    options.rollout.max_failures.value = 0;
    EXPECT_EQ(run ? RunRun(h.env, Spec(), options) : RunStart(h.env, Spec(), options.rollout),
              kExitNodesFailed);

    EXPECT_THAT(h.TargetsOf("StartPlan"), ElementsAre(h.targets[0], h.targets[1]));
    EXPECT_THAT(h.TargetsOf("StopPlan"), UnorderedElementsAre(h.targets[0], h.targets[1]));
    for (const FakeCall& stop : h.Calls("StopPlan")) EXPECT_EQ(PlanIdOf(stop), kPlanId);
    const std::vector<google::protobuf::Struct> nodes = Nodes(h.Json());
    ASSERT_EQ(nodes.size(), 3u);
    EXPECT_EQ(ErrorCode(nodes[1]), "DEADLINE_EXCEEDED");  // Its own failure, not the stop.
  }
}

// ---------------------------------------------------------------------------------------
// 4. Ctrl-C mid-rollout

// Runs `command` over 3 nodes with a serial rollout and an hour of stagger, and cancels
// once the first StartPlan arrived: it must return without the stagger passing (nothing
// moves the simulated clock: only Ctrl-C can end the wait), having released node 0 only.
void ExpectCtrlCReleasesWhatStarted(
    const std::function<int(const CommandEnv&, const RolloutOptions&)>& command) {
  Harness h(3);
  CancelSignal ctrl_c(&h.clock);
  CancelSignal first_start;  // Used as a one-shot notification (on real time).
  h.env.cancel = &ctrl_c;
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.method == "StartPlan") first_start.Cancel();
    return Healthy(call);
  });
  bool answered = false;  // Written by the signal thread, read after its join.
  std::thread signal_thread([&] {
    const absl::Time deadline = absl::Now() + kWait;
    while (!first_start.WaitUntil(deadline) && absl::Now() < deadline) {
    }
    EXPECT_TRUE(first_start.cancelled()) << "no StartPlan within " << kWait;
    answered = ctrl_c.Cancel();
  });
  RolloutOptions rollout;
  rollout.strategy.mode = RolloutStrategy::Mode::kSerial;
  rollout.stagger = absl::Hours(1);
  const absl::Time begin = h.clock.Now();
  const int exit_code = command(h.env, rollout);
  signal_thread.join();

  // A start went out: the command said it answers the Ctrl-C (memloadctl waits for it).
  EXPECT_TRUE(answered);
  EXPECT_EQ(exit_code, kExitInterrupted);
  EXPECT_EQ(h.clock.Now(), begin);
  EXPECT_THAT(h.TargetsOf("StartPlan"), ElementsAre(h.targets[0]));
  const std::vector<FakeCall> stops = h.Calls("StopPlan");
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].target, h.targets[0]);
  EXPECT_EQ(PlanIdOf(stops[0]), kPlanId);
  const google::protobuf::Struct document = h.Json();
  EXPECT_FALSE(Field(document, "ok").bool_value());
  EXPECT_EQ(Nodes(document).size(), 3u);
}

TEST(CtrlCTest, StartReleasesWhatStarted) {
  ExpectCtrlCReleasesWhatStarted([](const CommandEnv& env, const RolloutOptions& rollout) {
    return RunStart(env, Spec(), rollout);
  });
}

TEST(CtrlCTest, RunReleasesWhatStarted) {
  ExpectCtrlCReleasesWhatStarted([](const CommandEnv& env, const RolloutOptions& rollout) {
    RunOptions options;
    options.rollout = rollout;
    return RunRun(env, Spec(), options);
  });
}

// A Ctrl-C after start's last StartPlan went out keeps nothing from starting, but it was
// answered ("stopping what was started"): start still releases every plan, and exits 130
// (it used to exit 0 and leave them running).
TEST(CtrlCTest, StartInterruptedAfterItsLastStartWentOutReleasesEveryPlan) {
  Harness h(2);
  CancelSignal ctrl_c(&h.clock);
  h.env.cancel = &ctrl_c;
  std::optional<bool> answered;
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.method == "StartPlan" && call.target == h.targets[1]) answered = ctrl_c.Cancel();
    return Healthy(call);
  });
  EXPECT_EQ(RunStart(h.env, Spec(), RolloutOptions()), kExitInterrupted);
  ASSERT_TRUE(answered.has_value());
  EXPECT_TRUE(*answered);
  EXPECT_THAT(h.TargetsOf("StartPlan"), UnorderedElementsAre(h.targets[0], h.targets[1]));
  EXPECT_THAT(h.TargetsOf("StopPlan"), UnorderedElementsAre(h.targets[0], h.targets[1]));
  const std::vector<google::protobuf::Struct> nodes = Nodes(h.Json());
  ASSERT_EQ(nodes.size(), 2u);
  for (const google::protobuf::Struct& node : nodes) {
    EXPECT_FALSE(Field(node, "ok").bool_value());
    EXPECT_THAT(Field(Sub(node, "error"), "message").string_value(),
                HasSubstr("interrupted; the plan was stopped here again"));
  }
}

// start --pods answers it the same way: every pod's plan is stopped again and each row says
// so, exit 130 (it used to report the pods as started and leave their plans running).
TEST(CtrlCTest, StartPodsInterruptedReleasesEveryPodsPlan) {
  Harness h(2);
  CancelSignal ctrl_c(&h.clock);
  h.env.cancel = &ctrl_c;
  std::optional<bool> answered;
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.method == "GetNodeInfo") {
      v1::NodeInfo info;
      info.set_node_name("node@" + call.target);
      return info;
    }
    if (call.method == "StartPlan" && call.target == h.targets[1]) answered = ctrl_c.Cancel();
    return Healthy(call);
  });
  PodsOptions options;  // start: options.run stays false.
  options.pods = RunningPodPerTarget(h.targets);
  EXPECT_EQ(RunPods(h.env, Spec(), options), kExitInterrupted);
  ASSERT_TRUE(answered.has_value());
  EXPECT_TRUE(*answered);
  EXPECT_THAT(h.TargetsOf("StartPlan"), UnorderedElementsAre(h.targets[0], h.targets[1]));
  EXPECT_THAT(h.TargetsOf("StopPlan"), UnorderedElementsAre(h.targets[0], h.targets[1]));
  const google::protobuf::Struct document = h.Json();
  ASSERT_EQ(Field(document, "pods").list_value().values_size(), 2);
  for (const auto& value : Field(document, "pods").list_value().values()) {
    const google::protobuf::Struct& pod = value.struct_value();
    EXPECT_FALSE(Field(pod, "ok").bool_value());
    EXPECT_THAT(Field(pod, "error").string_value(),
                HasSubstr("interrupted; the plan was stopped here again"));
    EXPECT_EQ(Field(Sub(pod, "plan"), "state").string_value(), "PLAN_STATE_STOPPED");
  }
}

// run and start leave a Ctrl-C that comes before their first start to the caller (no
// scope is open: memloadctl exits at once), and then start nothing — not even the start
// they were about to send while memloadctl exits.
TEST(CtrlCTest, BeforeTheFirstStartRunAndStartLeaveItToTheCallerAndStartNothing) {
  {
    SCOPED_TRACE("run: Ctrl-C while it names the nodes");
    Harness h(2);
    CancelSignal ctrl_c(&h.clock);
    h.env.cancel = &ctrl_c;
    std::once_flag first;
    std::optional<bool> answered;
    h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
      if (call.method == "GetNodeInfo") {
        std::call_once(first, [&] { answered = ctrl_c.Cancel(); });
      }
      return Healthy(call);
    });
    EXPECT_EQ(RunRun(h.env, Spec(), RunOptions()), kExitInterrupted);
    ASSERT_TRUE(answered.has_value()) << "run asked no GetNodeInfo";
    EXPECT_FALSE(*answered);
    EXPECT_THAT(h.Calls("StartPlan"), ::testing::IsEmpty());
    EXPECT_THAT(h.Calls("StopPlan"), ::testing::IsEmpty());  // Nothing to stop.
    EXPECT_EQ(Nodes(h.Json()).size(), 2u);
  }
  {
    SCOPED_TRACE("start: Ctrl-C just before it");
    Harness h(2);
    CancelSignal ctrl_c(&h.clock);
    h.env.cancel = &ctrl_c;
    h.fleet.SetResponder(Healthy);
    EXPECT_FALSE(ctrl_c.Cancel());
    EXPECT_EQ(RunStart(h.env, Spec(), RolloutOptions()), kExitInterrupted);
    EXPECT_THAT(h.Calls("StartPlan"), ::testing::IsEmpty());
    EXPECT_THAT(h.Calls("StopPlan"), ::testing::IsEmpty());
  }
}

// Commands that start nothing never claim a Ctrl-C (memloadctl then exits at once, instead
// of awaiting answers up to --timeout per retry): Cancel() during their first call says
// nobody answers it.
TEST(CtrlCTest, CommandsThatStartNothingLeaveItToTheCaller) {
  v1::Quantity target;
  target.set_bytes(1 << 20);
  const std::vector<std::pair<std::string, std::function<int(const CommandEnv&)>>> commands = {
      {"agents", [](const CommandEnv& env) { return RunAgents(env); }},
      {"usage", [](const CommandEnv& env) { return RunUsage(env); }},
      {"start --dry-run", [](const CommandEnv& env) { return RunDryRun(env, "start", Spec()); }},
      {"run --dry-run", [](const CommandEnv& env) { return RunDryRun(env, "run", Spec()); }},
      {"resize", [&](const CommandEnv& env) { return RunResize(env, kPlanId, target); }},
      {"stop", [](const CommandEnv& env) { return RunStop(env, kPlanId); }},
      {"stop --all", [](const CommandEnv& env) { return RunStop(env, ""); }},
  };
  for (const auto& [name, command] : commands) {
    SCOPED_TRACE(name);
    Harness h(2);
    CancelSignal ctrl_c(&h.clock);
    h.env.cancel = &ctrl_c;
    std::once_flag first;
    std::optional<bool> answered;
    h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
      std::call_once(first, [&] { answered = ctrl_c.Cancel(); });
      return Healthy(call);
    });
    command(h.env);
    ASSERT_TRUE(answered.has_value()) << "no call";
    EXPECT_FALSE(*answered);
    EXPECT_THAT(h.Calls("StartPlan"), ::testing::IsEmpty());
  }
}

// ---------------------------------------------------------------------------------------
// 5. run: start, renew, watch to the end, stop, summary

// Agents running one plan: ListPlans shows it HOLDING `holding_lists` times, then with
// its final status (COMPLETED unless `ends` says otherwise), which StopPlan then returns.
class PlanScript {
 public:
  PlanScript(int holding_lists, std::map<std::string, v1::PlanStatus> ends)
      : holding_lists_(holding_lists), ends_(std::move(ends)) {}

  FakeReply Answer(const FakeCall& call) {
    if (call.method == "GetNodeInfo") {
      v1::NodeInfo info;
      info.set_node_name("node@" + call.target);
      return info;
    }
    if (call.method == "ListPlans") {
      v1::ListPlansResponse response;
      *response.add_plans() = Plan("someone-else", v1::PLAN_STATE_HOLDING);
      MutexLock lock(&mutex_);
      *response.add_plans() = ++lists_[call.target] <= holding_lists_
                                  ? Plan(kPlanId, v1::PLAN_STATE_HOLDING)
                                  : End(call.target);
      return response;
    }
    if (call.method == "StopPlan") {
      v1::StopPlanResponse response;
      *response.mutable_plan() = End(call.target);
      return response;
    }
    return Healthy(call);
  }

 private:
  v1::PlanStatus End(const std::string& target) const {
    auto it = ends_.find(target);
    return it != ends_.end() ? it->second : Plan(kPlanId, v1::PLAN_STATE_COMPLETED);
  }

  const int holding_lists_;
  const std::map<std::string, v1::PlanStatus> ends_;
  Mutex mutex_;
  std::map<std::string, int> lists_ ABSL_GUARDED_BY(mutex_);
};

TEST(RunRunTest, RunsToTheEndRenewingLeases) {
  Harness h(2);
  PlanScript script(/*holding_lists=*/3, {});
  h.fleet.SetResponder([&](const FakeCall& call) { return script.Answer(call); });
  {
    DeadlineDriver driver(&h.clock);
    EXPECT_EQ(RunRun(h.env, Spec(), RunOptions()), kExitOk);
  }

  for (const std::string& target : h.targets) {
    SCOPED_TRACE(target);
    const std::vector<FakeCall> renews = h.Calls("RenewLeases", target);
    ASSERT_FALSE(renews.empty());
    EXPECT_THAT(renews[0].RequestAs<v1::RenewLeasesRequest>()->plan_ids(), ElementsAre(kPlanId));
    EXPECT_EQ(h.Calls("StartPlan", target).size(), 1u);
    const std::vector<FakeCall> stops = h.Calls("StopPlan", target);
    ASSERT_EQ(stops.size(), 1u);
    EXPECT_EQ(PlanIdOf(stops[0]), kPlanId);
  }
  const google::protobuf::Struct document = h.Json();
  EXPECT_EQ(Field(document, "planId").string_value(), kPlanId);
  ExpectSummary(document, 2, 2, 0);
  const std::vector<google::protobuf::Struct> nodes = Nodes(document);
  ASSERT_EQ(nodes.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(Field(nodes[i], "node").string_value(), "node@" + h.targets[i]);
    EXPECT_EQ(Field(Sub(nodes[i], "plan"), "state").string_value(), "PLAN_STATE_COMPLETED");
  }
}

TEST(RunRunTest, UnexpectedOomKillFailsItsNode) {
  Harness h(2);
  PlanScript script(/*holding_lists=*/2,
                    {{h.targets[1], Plan(kPlanId, v1::PLAN_STATE_OOM_KILLED, false)}});
  h.fleet.SetResponder([&](const FakeCall& call) { return script.Answer(call); });
  {
    DeadlineDriver driver(&h.clock);
    EXPECT_EQ(RunRun(h.env, Spec(), RunOptions()), kExitNodesFailed);
  }

  const google::protobuf::Struct document = h.Json();
  ExpectSummary(document, 2, 1, 1);
  const std::vector<google::protobuf::Struct> nodes = Nodes(document);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_TRUE(Field(nodes[0], "ok").bool_value());
  EXPECT_FALSE(Field(nodes[1], "ok").bool_value());
  EXPECT_EQ(Field(Sub(nodes[1], "plan"), "state").string_value(), "PLAN_STATE_OOM_KILLED");
  EXPECT_EQ(ErrorCode(nodes[1]), "RESOURCE_EXHAUSTED");
}

TEST(RunRunTest, AgentRestartedMidRunFailsItsNodeInsteadOfWaiting) {
  Harness h(2);
  // Node 1's agent restarts after the run's second look at it: a new incarnation that knows
  // no plan. Node 0 holds for a while, then completes.
  std::mutex mutex;
  std::map<std::string, int> infos, lists;  // Calls per target, guarded by mutex.
  auto restarted = [&](const std::string& target) {
    return target == h.targets[1] && infos[target] > 2;
  };
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    std::lock_guard<std::mutex> lock(mutex);
    if (call.method == "GetNodeInfo") {
      ++infos[call.target];
      v1::NodeInfo info;
      info.set_node_name("node@" + call.target);
      info.set_incarnation(restarted(call.target) ? "new" : "old");
      return info;
    }
    if (call.method == "ListPlans") {
      v1::ListPlansResponse response;
      if (!restarted(call.target)) {
        *response.add_plans() =
            Plan(kPlanId,
                 ++lists[call.target] <= 10 ? v1::PLAN_STATE_HOLDING : v1::PLAN_STATE_COMPLETED);
      }
      return response;
    }
    return Healthy(call);
  });
  RunOptions options;
  options.keep = absl::Hours(1);  // Without the incarnation check the run would last this long.
  const absl::Time begin = h.clock.Now();
  {
    DeadlineDriver driver(&h.clock);
    EXPECT_EQ(RunRun(h.env, Spec(), options), kExitNodesFailed);
  }
  EXPECT_LT(h.clock.Now() - begin, options.keep);

  const google::protobuf::Struct document = h.Json();
  ExpectSummary(document, 2, 1, 1);
  const std::vector<google::protobuf::Struct> nodes = Nodes(document);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_TRUE(Field(nodes[0], "ok").bool_value());
  EXPECT_EQ(ErrorCode(nodes[1]), "ABORTED");
  EXPECT_EQ(Field(Sub(nodes[1], "error"), "message").string_value(),
            "agent restarted (incarnation old → new): the plan is gone");
  // The new agent never heard of the plan: nothing is renewed or stopped there afterwards.
  EXPECT_TRUE(h.Calls("StopPlan", h.targets[1]).empty());
  const std::vector<FakeCall> renews = h.Calls("RenewLeases", h.targets[1]);
  const std::vector<FakeCall> identities = h.Calls("GetNodeInfo", h.targets[1]);
  ASSERT_EQ(identities.size(), 3u);
  for (const FakeCall& renew : renews) EXPECT_LT(renew.id, identities[2].id);  // Came before it.
}

// ---------------------------------------------------------------------------------------
// 6. stop --all

// issue 15.7: run's live view over 1,000 agents is a summary and the outliers, every frame
// within the terminal, never a row per node. One agent is unreachable, one is capped and
// five are still ramping far from their target; the rest hold at theirs.
TEST(RunRunTest, FleetLiveViewShowsASummaryAndTheOutliersInTheTerminal) {
  constexpr int kNodes = 1000;
  for (const ViewSize size : {ViewSize{80, 24}, ViewSize{200, 50}}) {
    SCOPED_TRACE(absl::StrCat(size.columns, "x", size.rows));
    Harness h(kNodes);
    h.env.json = false;
    h.env.tty = true;
    h.env.view_size = size;
    std::ostringstream err;
    h.env.err = &err;
    const std::string down = h.targets[17], capped = h.targets[42];
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < h.targets.size(); ++i) index[h.targets[i]] = i;
    std::mutex mutex;
    std::map<std::string, int> lists;  // Guarded by mutex.
    h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
      const size_t i = index.at(call.target);
      if (call.target == down) return absl::UnavailableError("connection refused");
      if (call.method == "GetNodeInfo") {
        v1::NodeInfo info;
        info.set_node_name(absl::StrFormat("node-%04d", i));
        return info;
      }
      v1::PlanStatus plan = Plan(kPlanId, v1::PLAN_STATE_HOLDING);
      plan.set_target_bytes(1 << 30);
      plan.set_payload_bytes(1 << 30);
      plan.set_resident_bytes(1 << 30);
      plan.mutable_target_reached()->set_seconds(1);
      if (call.target == capped) {
        plan.set_state(v1::PLAN_STATE_CAPPED);
        plan.set_payload_bytes(800 << 20);
        plan.clear_target_reached();
        plan.set_error("growth stopped at the reserve");
      } else if (i >= 100 && i < 105) {
        plan.set_state(v1::PLAN_STATE_RAMPING);
        plan.set_payload_bytes((i - 90) << 20);
        plan.clear_target_reached();
      }
      if (call.method == "ListPlans") {
        std::lock_guard<std::mutex> lock(mutex);
        if (++lists[call.target] > 3) plan.set_state(v1::PLAN_STATE_COMPLETED);
        v1::ListPlansResponse response;
        *response.add_plans() = plan;
        return response;
      }
      if (call.method == "StartPlan") {
        v1::StartPlanResponse response;
        *response.mutable_plan() = Plan(kPlanId, v1::PLAN_STATE_PENDING);
        return response;
      }
      if (call.method == "StopPlan") {
        v1::StopPlanResponse response;
        plan.set_state(v1::PLAN_STATE_COMPLETED);
        *response.mutable_plan() = plan;
        return response;
      }
      return FakeReply();
    });
    {
      DeadlineDriver driver(&h.clock);
      EXPECT_EQ(RunRun(h.env, Spec(), RunOptions()), kExitNodesFailed);
    }
    EXPECT_EQ(err.str(), "999 ok, 1 failed\n");

    // The frames: each but the first starts by moving up over the previous one.
    const std::string out = h.out.str();
    const size_t summary = out.find("plan drill-1 (-) ran ");  // The final summary.
    ASSERT_NE(summary, std::string::npos) << out.substr(0, 2000);
    std::vector<std::string> frames;
    for (absl::string_view piece :
         absl::StrSplit(absl::string_view(out).substr(0, summary), "\x1b[")) {
      // "<n>A" + "J" + frame; keep what follows the clear.
      if (absl::StartsWith(piece, "J")) piece.remove_prefix(1);
      if (piece.empty() || (absl::ascii_isdigit(piece[0]) && absl::EndsWith(piece, "A"))) continue;
      frames.emplace_back(piece);
    }
    ASSERT_GE(frames.size(), 3u);
    int running_frames = 0;
    for (const std::string& frame : frames) {
      SCOPED_TRACE(frame);
      const std::vector<absl::string_view> lines = absl::StrSplit(frame, '\n', absl::SkipEmpty());
      EXPECT_LT(static_cast<int>(lines.size()), size.rows);  // The last row stays free.
      for (absl::string_view line : lines) EXPECT_LE(TextWidth(line), size.columns);
      EXPECT_THAT(frame, HasSubstr("plan drill-1 (-) on 1000 nodes"));
      EXPECT_THAT(frame, HasSubstr("nodes: 999 ok, 1 failed; "));
      // Not a row per node: healthy nodes at their target are never listed.
      EXPECT_EQ(frame.find("node-0500"), std::string::npos);
      if (frame.find("completed") != std::string::npos) continue;  // The plans ended.
      ++running_frames;
      EXPECT_THAT(frame, HasSubstr("capped 1, holding 993, not started 1, ramping 5"));
      EXPECT_THAT(frame, HasSubstr("%target across 999 running nodes: min 0%, median 100%"));
      EXPECT_THAT(frame, HasSubstr("nodes that need a look (7)"));
      // The outliers, most urgent first: the failed node, the capped one, the slowest.
      const size_t at_down = frame.find(down), at_capped = frame.find(capped),
                   at_slow = frame.find("node-0100");
      ASSERT_NE(at_down, std::string::npos);
      ASSERT_NE(at_capped, std::string::npos);
      ASSERT_NE(at_slow, std::string::npos);
      EXPECT_LT(at_down, at_capped);
      EXPECT_LT(at_capped, at_slow);
      EXPECT_THAT(frame, ::testing::ContainsRegex("FAILED"));
    }
    EXPECT_GE(running_frames, 3);  // ListPlans shows the plans running 3 times.
  }
}

// Sends one usage on each of the first `n` fakes' watch streams once it is open (bounded
// by kWait), on its own thread; Join() waits for it.
class UsageSender {
 public:
  UsageSender(Harness* h, size_t n)
      : thread_([h, n] {
          const absl::Time deadline = absl::Now() + kWait;
          for (size_t i = 0; i < n; ++i) {
            EXPECT_TRUE(Eventually([&] { return h->fleet.client(i).open_watches() > 0; }, kWait));
            v1::NodeUsage usage;
            usage.mutable_node()->set_node_name("node@" + h->targets[i]);
            h->fleet.client(i).SendUsage(usage);
          }
          EXPECT_LT(absl::Now(), deadline);
        }) {}
  void Join() { thread_.join(); }

 private:
  std::thread thread_;
};

// watch ends with the last frame's "N ok, N failed" on stderr, like every command that
// asks agents; piped lines mark each node ok or FAILED.
TEST(RunWatchTest, PrintsTheLastFramesCountsAndMarksFailedNodes) {
  Harness h(2);
  h.env.json = false;
  std::ostringstream err;
  h.env.err = &err;
  h.env.targets.push_back("10.9.9.9:1");  // Not in the fleet: every call UNAVAILABLE.
  UsageSender sender(&h, 2);
  WatchOptions options;
  options.count = 2;
  int exit_code = -1;
  std::thread watch([&] { exit_code = RunWatch(h.env, options); });
  sender.Join();  // Every node has answered: from now on only time is awaited.
  {
    DeadlineDriver driver(&h.clock);
    watch.join();
  }
  EXPECT_EQ(exit_code, kExitNodesFailed);
  EXPECT_EQ(err.str(), "2 ok, 1 failed\n");
  const std::string out = h.out.str();
  EXPECT_THAT(out, HasSubstr("10.9.9.9:1 FAILED error=UNAVAILABLE"));
  EXPECT_THAT(out, HasSubstr(h.targets[0] + " ok node@" + h.targets[0]));
}

// watch paces its frames on the command's clock: N frames at interval I take exactly N*I
// of simulated time (each frame stamped at its place, none early) and no real waiting.
TEST(RunWatchTest, FramesArePacedOnTheCommandsClock) {
  constexpr absl::Duration kInterval = absl::Minutes(10);
  constexpr int kFrames = 3;
  Harness h(2);
  CancelSignal ctrl_c(&h.clock);  // Ends the watch should the test fail midway.
  h.env.cancel = &ctrl_c;
  UsageSender sender(&h, 2);
  WatchOptions options;
  options.interval = kInterval;
  options.count = kFrames;
  const absl::Time start = h.clock.Now();
  const absl::Time real_start = absl::Now();
  int exit_code = -1;
  std::thread watch([&] { exit_code = RunWatch(h.env, options); });
  bool paced = true;
  for (int k = 1; k <= kFrames && paced; ++k) {
    SCOPED_TRACE(k);
    const absl::Time frame = start + k * kInterval;
    // The watch sleeps until frame k's time, and not a nanosecond less.
    paced = Eventually([&] { return h.clock.waiters() == 1 && h.clock.last_deadline() == frame; },
                       kWait);
    EXPECT_TRUE(paced) << "waits for " << h.clock.last_deadline() - start;
    if (!paced) break;
    const uint64_t waits = h.clock.waits_begun();
    h.clock.AdvanceTo(frame - absl::Nanoseconds(1));
    EXPECT_TRUE(Eventually([&] { return h.clock.waiters() == 1; }, kWait));
    EXPECT_EQ(h.clock.waits_begun(), waits);  // Still the same wait: no frame yet.
    h.clock.AdvanceTo(frame);
  }
  if (!paced) ctrl_c.Cancel();
  watch.join();
  sender.Join();
  ASSERT_TRUE(paced);
  EXPECT_EQ(exit_code, kExitOk);
  EXPECT_EQ(h.clock.Now() - start, kFrames * kInterval);
  EXPECT_LT(absl::Now() - real_start, kInterval);  // Half an hour simulated, not waited.

  // JSON lines: two per frame, stamped with the frame's simulated time.
  std::vector<std::string> times;
  for (absl::string_view line : absl::StrSplit(h.out.str(), '\n', absl::SkipEmpty())) {
    times.push_back(Field(ParseJsonDocument(std::string(line)), "time").string_value());
  }
  EXPECT_THAT(times,
              ElementsAre("2026-01-01T00:10:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z",
                          "2026-01-01T00:20:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:30:00Z"));
}

// watch claims no Ctrl-C either; without memloadctl's exit it ends at the frame it waits
// for, at once, with 130 like every interrupted command.
TEST(CtrlCTest, WatchLeavesItToTheCallerAndEndsWith130) {
  Harness h(1);
  CancelSignal ctrl_c(&h.clock);
  h.env.cancel = &ctrl_c;
  UsageSender sender(&h, 1);
  const absl::Time start = h.clock.Now();
  int exit_code = -1;
  std::thread watch([&] { exit_code = RunWatch(h.env, WatchOptions()); });  // Until Ctrl-C.
  sender.Join();
  // Waiting for its first frame (a second away on a clock nothing moves).
  EXPECT_TRUE(Eventually(
      [&] { return h.clock.waiters() == 1 && h.clock.last_deadline() == start + absl::Seconds(1); },
      kWait));
  EXPECT_FALSE(ctrl_c.Cancel());
  watch.join();
  EXPECT_EQ(exit_code, kExitInterrupted);
  EXPECT_EQ(h.clock.Now(), start);
}

// run paces on the command's clock too: with --for=5m and a 1 m refresh it looks at the
// plan at 0, 1, 2, 3 and 4 minutes, stops it at 5 minutes sharp, and reports 5 m elapsed.
TEST(RunRunTest, KeepsThePlanForExactlyItsTimeOnTheCommandsClock) {
  Harness h(1);
  PlanScript script(/*holding_lists=*/1000, {});
  h.fleet.SetResponder([&](const FakeCall& call) { return script.Answer(call); });
  RunOptions options;
  options.keep = absl::Minutes(5);
  options.refresh = absl::Minutes(1);
  const absl::Time start =
      RunOnDrivenClock(h, [&] { EXPECT_EQ(RunRun(h.env, Spec(), options), kExitOk); });
  EXPECT_EQ(h.clock.Now() - start, options.keep);
  std::vector<absl::Duration> lists;
  for (const FakeCall& call : h.Calls("ListPlans")) lists.push_back(call.time - start);
  EXPECT_THAT(lists, ElementsAre(absl::ZeroDuration(), absl::Minutes(1), absl::Minutes(2),
                                 absl::Minutes(3), absl::Minutes(4)));
  const std::vector<FakeCall> stops = h.Calls("StopPlan");
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].time - start, options.keep);
  EXPECT_EQ(Field(h.Json(), "elapsed").string_value(), "300s");
}

// The simulated times (since `start`) of the `method` calls to `target`.
std::vector<absl::Duration> CallTimes(const Harness& h, const std::string& method,
                                      const std::string& target, absl::Time start) {
  std::vector<absl::Duration> times;
  for (const FakeCall& call : h.Calls(method, target)) times.push_back(call.time - start);
  return times;
}

// 0, step, 2 * step, ... below `end`.
std::vector<absl::Duration> Every(absl::Duration step, absl::Duration end) {
  std::vector<absl::Duration> times;
  for (absl::Duration t; t < end; t += step) times.push_back(t);
  return times;
}

// A PlanScript agent that says its --default-lease in GetNodeInfo (`leases` per target).
FakeReply WithDefaultLease(PlanScript* script, const std::map<std::string, absl::Duration>& leases,
                           const FakeCall& call) {
  FakeReply reply = script->Answer(call);
  if (call.method != "GetNodeInfo") return reply;
  v1::NodeInfo info;
  info.set_node_name("node@" + call.target);
  ToProtoDuration(leases.at(call.target), info.mutable_default_lease());
  return info;
}

// run renews every lease/3 however long --interval is: a 3 s lease with a 10 s refresh is
// renewed every second (on the old code, every 10 s: the plan expired after 3 s), while the
// refreshes (ListPlans, the redraw) stay 10 s apart. The plan's own lease decides, not the
// agents' shorter default.
TEST(RunRunTest, RenewsEveryThirdOfThePlansLeaseWhateverTheInterval) {
  Harness h(2);
  PlanScript script(/*holding_lists=*/1000, {});
  const std::map<std::string, absl::Duration> defaults = {{h.targets[0], absl::Seconds(1)},
                                                          {h.targets[1], absl::Seconds(1)}};
  h.fleet.SetResponder(
      [&](const FakeCall& call) { return WithDefaultLease(&script, defaults, call); });
  v1::PlanSpec spec = Spec();
  spec.mutable_lease()->set_seconds(3);
  RunOptions options;
  options.refresh = absl::Seconds(10);
  options.keep = absl::Seconds(25);
  const absl::Time start =
      RunOnDrivenClock(h, [&] { EXPECT_EQ(RunRun(h.env, spec, options), kExitOk); });
  EXPECT_EQ(h.clock.Now() - start, options.keep);
  for (const std::string& target : h.targets) {
    SCOPED_TRACE(target);
    // 0 s, 1 s, ..., 24 s: 25 renewals, one a second, none twice.
    const std::vector<absl::Duration> renewals = CallTimes(h, "RenewLeases", target, start);
    EXPECT_THAT(renewals, ElementsAreArray(Every(absl::Seconds(1), options.keep)));
    EXPECT_EQ(std::count_if(renewals.begin(), renewals.end(),
                            [](absl::Duration t) { return t <= absl::Seconds(10); }),
              11);
    EXPECT_THAT(CallTimes(h, "ListPlans", target, start),
                ElementsAre(absl::ZeroDuration(), absl::Seconds(10), absl::Seconds(20)));
    EXPECT_THAT(CallTimes(h, "StopPlan", target, start), ElementsAre(options.keep));
  }
}

// Refreshes start --interval apart even when their calls take time (here ListPlans takes
// 400 ms of simulated time): the renewal due with a refresh is the refresh's own, none goes
// out twice (refreshes measured end to start renewed at 10 s and again at 10.4 s).
TEST(RunRunTest, ARenewalDueWithARefreshGoesOutOnce) {
  Harness h(1);
  PlanScript script(/*holding_lists=*/1000, {});
  h.fleet.SetResponder([&](const FakeCall& call) {
    if (call.method == "ListPlans") h.clock.Advance(absl::Milliseconds(400));
    return script.Answer(call);
  });
  v1::PlanSpec spec = Spec();
  spec.mutable_lease()->set_seconds(3);
  RunOptions options;
  options.refresh = absl::Seconds(10);
  options.keep = absl::Seconds(25);
  const absl::Time start =
      RunOnDrivenClock(h, [&] { EXPECT_EQ(RunRun(h.env, spec, options), kExitOk); });
  EXPECT_THAT(CallTimes(h, "RenewLeases", h.targets[0], start),
              ElementsAreArray(Every(absl::Seconds(1), options.keep)));
  EXPECT_THAT(CallTimes(h, "ListPlans", h.targets[0], start),
              ElementsAre(absl::ZeroDuration(), absl::Seconds(10), absl::Seconds(20)));
}

// Without --lease the agents' default lease decides, the shortest of them: nodes saying 3 s
// and 1 h are both renewed every second; refreshes stay at --interval.
TEST(RunRunTest, RenewsEveryThirdOfTheShortestDefaultLeaseWithoutALease) {
  Harness h(2);
  PlanScript script(/*holding_lists=*/1000, {});
  const std::map<std::string, absl::Duration> defaults = {{h.targets[0], absl::Hours(1)},
                                                          {h.targets[1], absl::Seconds(3)}};
  h.fleet.SetResponder(
      [&](const FakeCall& call) { return WithDefaultLease(&script, defaults, call); });
  RunOptions options;
  options.refresh = absl::Seconds(10);
  options.keep = absl::Seconds(25);
  const absl::Time start =
      RunOnDrivenClock(h, [&] { EXPECT_EQ(RunRun(h.env, Spec(), options), kExitOk); });
  for (const std::string& target : h.targets) {
    SCOPED_TRACE(target);
    EXPECT_THAT(CallTimes(h, "RenewLeases", target, start),
                ElementsAreArray(Every(absl::Seconds(1), options.keep)));
    EXPECT_THAT(CallTimes(h, "ListPlans", target, start),
                ElementsAre(absl::ZeroDuration(), absl::Seconds(10), absl::Seconds(20)));
  }
}

// An agent cannot make run spin: a default lease said as 1 ns counts as plan_rules' 1 s
// minimum, renewed every third of it: a 1 s run renews 4 times (0, 1/3, 2/3 and 3/3 s, a hair under
// 1 s).
TEST(RunRunTest, AnAgentsTinyDefaultLeaseCountsAsTheMinimum) {
  Harness h(1);
  PlanScript script(/*holding_lists=*/1000, {});
  const std::map<std::string, absl::Duration> defaults = {{h.targets[0], absl::Nanoseconds(1)}};
  h.fleet.SetResponder(
      [&](const FakeCall& call) { return WithDefaultLease(&script, defaults, call); });
  RunOptions options;
  options.refresh = absl::Seconds(10);
  options.keep = absl::Seconds(1);
  const absl::Time start =
      RunOnDrivenClock(h, [&] { EXPECT_EQ(RunRun(h.env, Spec(), options), kExitOk); });
  const std::vector<absl::Duration> renewals = CallTimes(h, "RenewLeases", h.targets[0], start);
  const absl::Duration third = absl::Seconds(1) / 3;  // 333,333,333.25 ns: 3 of them < 1 s.
  EXPECT_THAT(renewals, ElementsAre(absl::ZeroDuration(), third, 2 * third, 3 * third));
}

// run --pods renews the same way: every lease/3 (the shortest agent default here, 3 s),
// from the starts on, between refreshes 10 s apart (on the old code: at 10, 20 and 25 s).
TEST(RunRunTest, PodsRenewEveryThirdOfTheLeaseWhateverTheInterval) {
  Harness h(2);
  const std::map<std::string, absl::Duration> defaults = {{h.targets[0], absl::Hours(1)},
                                                          {h.targets[1], absl::Seconds(3)}};
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.method != "GetNodeInfo") return Healthy(call);
    v1::NodeInfo info;
    info.set_node_name("node@" + call.target);
    ToProtoDuration(defaults.at(call.target), info.mutable_default_lease());
    return info;
  });
  PodsOptions options;
  options.run = true;
  options.refresh = absl::Seconds(10);
  options.keep = absl::Seconds(25);
  options.pods = RunningPodPerTarget(h.targets);
  const absl::Time start =
      RunOnDrivenClock(h, [&] { EXPECT_EQ(RunPods(h.env, Spec(), options), kExitOk); });
  std::vector<absl::Duration> every_second;  // 1 s, 2 s, ..., 25 s.
  for (int s = 1; s <= 25; ++s) every_second.push_back(absl::Seconds(s));
  for (const std::string& target : h.targets) {
    SCOPED_TRACE(target);
    EXPECT_THAT(CallTimes(h, "StartPlan", target, start), ElementsAre(absl::ZeroDuration()));
    EXPECT_THAT(CallTimes(h, "RenewLeases", target, start), ElementsAreArray(every_second));
    EXPECT_THAT(CallTimes(h, "ListPlans", target, start),
                ElementsAre(absl::Seconds(10), absl::Seconds(20), absl::Seconds(25)));
    EXPECT_THAT(CallTimes(h, "StopPlan", target, start), ElementsAre(options.keep));
  }
}

TEST(RunStopTest, AllStopsEveryRunningPlanOfEveryNode) {
  Harness h(2);
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.method != "ListPlans") return Healthy(call);
    EXPECT_FALSE(call.RequestAs<v1::ListPlansRequest>()->include_ended());
    v1::ListPlansResponse response;
    for (const char* id : call.target == h.targets[0] ? std::vector<const char*>{"a-1", "a-2"}
                                                      : std::vector<const char*>{"b-1"}) {
      *response.add_plans() = Plan(id, v1::PLAN_STATE_HOLDING);
    }
    return response;
  });
  EXPECT_EQ(RunStop(h.env, /*plan_id=*/""), kExitOk);

  std::vector<std::pair<std::string, std::string>> stopped;
  for (const FakeCall& call : h.Calls("StopPlan"))
    stopped.emplace_back(call.target, PlanIdOf(call));
  EXPECT_THAT(stopped, UnorderedElementsAre(std::pair(h.targets[0], std::string("a-1")),
                                            std::pair(h.targets[0], std::string("a-2")),
                                            std::pair(h.targets[1], std::string("b-1"))));
  const google::protobuf::Struct document = h.Json();
  ExpectSummary(document, 3, 3, 0);
  std::set<std::string> ids;
  for (const auto& node : Nodes(document)) {
    ids.insert(Field(Sub(node, "plan"), "planId").string_value());
  }
  EXPECT_THAT(ids, ElementsAre("a-1", "a-2", "b-1"));
}

// ---------------------------------------------------------------------------------------
// 7. --selector

FakeReply ZoneInfo(const FakeCall& /*call*/, const std::string& zone) {
  v1::NodeInfo info;
  (*info.mutable_labels())["zone"] = zone;
  return info;
}

TEST(SelectorTest, OnlyMatchingNodesAreAsked) {
  Harness h(2);
  h.env.selector = {{"zone", "a", true}};
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.method == "GetNodeInfo")
      return ZoneInfo(call, call.target == h.targets[0] ? "a" : "b");
    return Healthy(call);
  });
  EXPECT_EQ(RunUsage(h.env), kExitOk);
  EXPECT_THAT(h.TargetsOf("GetNodeInfo"), UnorderedElementsAre(h.targets[0], h.targets[1]));
  EXPECT_THAT(h.TargetsOf("GetUsage"), ElementsAre(h.targets[0]));
  const google::protobuf::Struct document = h.Json();
  ExpectSummary(document, 1, 1, 0);
  EXPECT_EQ(Field(Nodes(document)[0], "target").string_value(), h.targets[0]);
}

TEST(SelectorTest, NodeWithUnknownLabelsIsReportedFailed) {
  Harness h(3);
  h.env.selector = {{"zone", "a", true}};
  h.fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    if (call.method == "GetNodeInfo") {
      if (call.target == h.targets[2]) return absl::UnavailableError("connection refused");
      return ZoneInfo(call, call.target == h.targets[0] ? "a" : "b");
    }
    return Healthy(call);
  });
  EXPECT_EQ(RunUsage(h.env), kExitNodesFailed);
  EXPECT_THAT(h.TargetsOf("GetUsage"), ElementsAre(h.targets[0]));
  const google::protobuf::Struct document = h.Json();
  ExpectSummary(document, 2, 1, 1);
  const std::vector<google::protobuf::Struct> nodes = Nodes(document);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(Field(nodes[0], "target").string_value(), h.targets[0]);
  EXPECT_EQ(Field(nodes[1], "target").string_value(), h.targets[2]);
  EXPECT_EQ(ErrorCode(nodes[1]), "UNAVAILABLE");
}

// ---------------------------------------------------------------------------------------
// 8. Retries of idempotent calls

// Fails the first `method` call to `flaky` with UNAVAILABLE; answers everything else.
FakeResponder FlakyOnce(const std::string& method, const std::string& flaky) {
  auto failed = std::make_shared<std::once_flag>();
  return [method, flaky, failed](const FakeCall& call) -> FakeReply {
    if (call.method == method && call.target == flaky) {
      bool first = false;
      std::call_once(*failed, [&] { first = true; });
      if (first) return absl::UnavailableError("connection reset");
    }
    if (call.method == "ResizePlan") {
      v1::ResizePlanResponse response;
      *response.mutable_plan() = Plan(PlanIdOf(call), v1::PLAN_STATE_RAMPING);
      return response;
    }
    return Healthy(call);
  };
}

TEST(RetryTest, UsageRetriesUnavailable) {
  Harness h(2);
  h.env.fanout.retry.max_attempts = 3;
  h.fleet.SetResponder(FlakyOnce("GetUsage", h.targets[0]));
  {
    DeadlineDriver driver(&h.clock);  // The backoff passes on simulated time.
    EXPECT_EQ(RunUsage(h.env), kExitOk);
  }
  EXPECT_EQ(h.Calls("GetUsage", h.targets[0]).size(), 2u);
  EXPECT_EQ(h.Calls("GetUsage", h.targets[1]).size(), 1u);
  ExpectSummary(h.Json(), 2, 2, 0);
}

TEST(RetryTest, ResizeRetriesUnavailable) {
  Harness h(2);
  h.env.fanout.retry.max_attempts = 3;
  h.fleet.SetResponder(FlakyOnce("ResizePlan", h.targets[1]));
  v1::Quantity target;
  target.set_bytes(256 << 20);
  {
    DeadlineDriver driver(&h.clock);
    EXPECT_EQ(RunResize(h.env, kPlanId, target), kExitOk);
  }
  const std::vector<FakeCall> resizes = h.Calls("ResizePlan", h.targets[1]);
  ASSERT_EQ(resizes.size(), 2u);
  for (const FakeCall& call : resizes) {
    EXPECT_EQ(PlanIdOf(call), kPlanId);
    EXPECT_EQ(call.RequestAs<v1::ResizePlanRequest>()->target().bytes(), 256u << 20);
  }
  EXPECT_EQ(h.Calls("ResizePlan", h.targets[0]).size(), 1u);
  ExpectSummary(h.Json(), 2, 2, 0);
}

}  // namespace
}  // namespace controller
}  // namespace memload
