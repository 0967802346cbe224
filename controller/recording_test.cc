#include "controller/recording.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "controller/commands.h"
#include "controller/testing/deadline_driver.h"
#include "controller/testing/fake_agent_client.h"
#include "core/testing/status_matchers.h"
#include "core/testing/wait_recording_clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/proto_time.h"
#include "tests/testing/sizes.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::DeadlineDriver;
using ::memload::testing::kMiB;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kStart = absl::FromUnixSeconds(1764086400);  // 2025-11-25T16:00:00Z

std::vector<google::protobuf::Struct> Lines(const std::string& text) {
  std::vector<google::protobuf::Struct> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    google::protobuf::Struct object;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &object).ok())
        << line;
    lines.push_back(object);
  }
  return lines;
}

std::string Field(const google::protobuf::Struct& object, const std::string& key) {
  auto it = object.fields().find(key);
  if (it == object.fields().end()) return "<none>";
  if (it->second.has_string_value()) return it->second.string_value();
  const double number = it->second.number_value();
  return number == static_cast<double>(static_cast<int64_t>(number))
             ? absl::StrCat(static_cast<int64_t>(number))
             : absl::StrCat(number);
}

v1::PlanStatus Plan(v1::PlanState state, uint64_t resident) {
  v1::PlanStatus plan;
  plan.set_plan_id("rec");
  plan.set_state(state);
  plan.set_target_bytes(64 * kMiB);
  plan.set_payload_bytes(resident);
  plan.set_resident_bytes(resident);
  ToProtoTimestamp(kStart, plan.mutable_started());
  return plan;
}

v1::NodeUsage Usage() {
  v1::NodeUsage usage;
  usage.mutable_meminfo()->set_total_bytes(1024 * kMiB);
  usage.mutable_meminfo()->set_available_bytes(512 * kMiB);
  usage.mutable_pressure()->set_available(true);
  usage.mutable_pressure()->set_some_avg10(1.5);
  return usage;
}

TEST(RunRecorderTest, SamplesAndEventsFromStateChanges) {
  std::ostringstream out;
  RunRecorder recorder(&out);
  RunView view;
  view.spec.set_plan_id("rec");
  view.spec.mutable_retained();
  view.nodes.resize(2);
  view.nodes[0].target = "127.0.0.1:7070";
  view.nodes[0].node_name = "a";
  view.nodes[1].target = "127.0.0.1:7071";
  view.nodes[1].node_name = "b";
  const std::map<std::string, v1::NodeUsage> both = {{"127.0.0.1:7070", Usage()},
                                                     {"127.0.0.1:7071", Usage()}};

  view.nodes[0].plan = Plan(v1::PLAN_STATE_RAMPING, 16 * kMiB);
  view.nodes[1].plan = Plan(v1::PLAN_STATE_RAMPING, 8 * kMiB);
  recorder.Record(kStart + absl::Seconds(1), view, both);

  view.nodes[0].plan = Plan(v1::PLAN_STATE_HOLDING, 64 * kMiB);
  ToProtoTimestamp(kStart + absl::Milliseconds(1500), view.nodes[0].plan->mutable_target_reached());
  view.nodes[1].plan = Plan(v1::PLAN_STATE_CAPPED, 32 * kMiB);
  view.nodes[1].plan->set_error("capped at 32 MiB");
  view.nodes[1].errors.push_back(absl::UnavailableError("connection refused"));
  // b did not answer this refresh: no sample for it, its events still count.
  recorder.Record(kStart + absl::Seconds(2), view, {{"127.0.0.1:7070", Usage()}});

  view.nodes[0].plan = Plan(v1::PLAN_STATE_STOPPED, 0);
  ToProtoTimestamp(kStart + absl::Milliseconds(1500), view.nodes[0].plan->mutable_target_reached());
  ToProtoTimestamp(kStart + absl::Seconds(3), view.nodes[0].plan->mutable_ended());
  view.nodes[1].plan = Plan(v1::PLAN_STATE_OOM_KILLED, 0);
  view.nodes[1].plan->set_error("the kernel's OOM killer killed the worker");
  recorder.Finish(kStart + absl::Seconds(3), view, /*exit_code=*/1);
  EXPECT_THAT(recorder.status(), IsOk());

  std::vector<std::string> summary;
  for (const google::protobuf::Struct& line : Lines(out.str())) {
    const std::string event = Field(line, "event");
    summary.push_back(event == "<none>"
                          ? absl::StrCat(Field(line, "time"), " sample ", Field(line, "node"), " ",
                                         Field(line, "state"), " ", Field(line, "residentBytes"),
                                         " ", Field(line, "availableBytes"), " ",
                                         Field(line, "pressureSomeAvg10"))
                          : absl::StrCat(Field(line, "time"), " ", event, " ", Field(line, "node"),
                                         " ", Field(line, "state"), " ", Field(line, "message")));
  }
  EXPECT_THAT(
      summary,
      ElementsAre("2025-11-25T16:00:01.000Z run <none> <none> <none>",
                  "2025-11-25T16:00:00.000Z start a <none> <none>",
                  "2025-11-25T16:00:01.000Z sample a ramping 16777216 536870912 1.5",
                  "2025-11-25T16:00:00.000Z start b <none> <none>",
                  "2025-11-25T16:00:01.000Z sample b ramping 8388608 536870912 1.5",
                  "2025-11-25T16:00:01.500Z target_reached a <none> <none>",
                  "2025-11-25T16:00:02.000Z sample a holding 67108864 536870912 1.5",
                  "2025-11-25T16:00:02.000Z error b <none> UNAVAILABLE: connection refused",
                  "2025-11-25T16:00:02.000Z capped b <none> capped at 32 MiB",
                  "2025-11-25T16:00:03.000Z stop a stopped <none>",
                  "2025-11-25T16:00:03.000Z sample a stopped 0 <none> <none>",
                  "2025-11-25T16:00:03.000Z oom_killed b oom_killed the kernel's OOM killer killed "
                  "the worker",
                  "2025-11-25T16:00:03.000Z sample b oom_killed 0 <none> <none>",
                  "2025-11-25T16:00:03.000Z result a stopped <none>",
                  "2025-11-25T16:00:03.000Z result b oom_killed UNAVAILABLE: connection refused",
                  "2025-11-25T16:00:03.000Z end <none> <none> <none>"));
  const google::protobuf::Struct last = Lines(out.str()).back();
  EXPECT_EQ(last.fields().at("exitCode").number_value(), 1);
  EXPECT_EQ(last.fields().at("ok").number_value(), 1);
  EXPECT_EQ(last.fields().at("failed").number_value(), 1);
  // The first line names the plan and carries its spec.
  const google::protobuf::Struct first = Lines(out.str()).front();
  EXPECT_EQ(Field(first, "planId"), "rec");
  EXPECT_TRUE(first.fields().at("spec").struct_value().fields().count("retained"));
}

TEST(RunRecorderTest, OpenNamesTheFileItCannotCreate) {
  EXPECT_THAT(
      RunRecorder::Open("/nonexistent-dir/run.jsonl"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nonexistent-dir/run.jsonl")));
}

TEST(RunRecorderTest, ReportsWriteErrors) {
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  RunRecorder recorder(&out);
  RunView view;
  view.spec.set_plan_id("rec");
  recorder.Record(kStart, view, {});
  EXPECT_THAT(recorder.status(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("written")));
}

// run --record on the commands' clock: every refresh samples every node, so a ramp longer
// than the refresh period is recorded while it ramps, then holding, then the stop — to the
// millisecond, whatever the machine's speed (tests/recording_test.cc runs the same over real
// agents, where only the states' order can be promised).
TEST(RunRecordTest, EveryRefreshSamplesEveryNodeSoARampLongerThanThePeriodIsSeen) {
  WaitRecordingClock clock;
  const std::vector<std::string> targets = FakeFleet::Targets(2);
  FakeFleet fleet(targets, &clock);
  const absl::Time start = clock.Now();
  // The plan ramps for 2.5 refresh periods, then holds until stopped.
  const absl::Duration refresh = absl::Seconds(1);
  const absl::Duration ramp = 2.5 * refresh;
  fleet.SetResponder([&](const FakeCall& call) -> FakeReply {
    const bool ramping = call.time - start < ramp;
    v1::PlanStatus plan = Plan(ramping ? v1::PLAN_STATE_RAMPING : v1::PLAN_STATE_HOLDING,
                               ramping ? 16 * kMiB : 64 * kMiB);
    ToProtoTimestamp(start, plan.mutable_started());
    if (!ramping) ToProtoTimestamp(start + ramp, plan.mutable_target_reached());
    if (call.method == "ListPlans") {
      v1::ListPlansResponse response;
      *response.add_plans() = plan;
      return response;
    }
    if (call.method == "StopPlan") {
      plan.set_state(v1::PLAN_STATE_STOPPED);
      plan.set_resident_bytes(0);
      v1::StopPlanResponse response;
      *response.mutable_plan() = plan;
      return response;
    }
    if (call.method == "StartPlan") {
      v1::StartPlanResponse response;
      *response.mutable_plan() = Plan(v1::PLAN_STATE_PENDING, 0);
      return response;
    }
    return FakeReply();
  });
  std::ostringstream out, recorded;
  CommandEnv env;
  env.clock = &clock;
  env.targets = targets;
  env.factory = fleet.factory();
  env.out = &out;
  env.json = true;
  RunRecorder recorder(&recorded);
  RunOptions options;
  options.keep = 5 * refresh;
  options.refresh = refresh;
  options.recorder = &recorder;
  v1::PlanSpec spec;
  spec.set_plan_id("rec");
  spec.mutable_retained();
  {
    DeadlineDriver driver(&clock);
    EXPECT_EQ(RunRun(env, spec, options), kExitOk) << out.str();
  }

  for (const std::string& target : targets) {
    SCOPED_TRACE(target);
    std::vector<std::string> lines;
    for (const google::protobuf::Struct& line : Lines(recorded.str())) {
      if (Field(line, "target") != target) continue;
      lines.push_back(
          absl::StrCat(Field(line, "time"), " ", Field(line, "event"), " ", Field(line, "state")));
    }
    const auto at = [&](absl::Duration offset) { return RecordingTime(start + offset); };
    EXPECT_THAT(
        lines,
        ElementsAre(at(absl::ZeroDuration()) + " start <none>",
                    at(absl::ZeroDuration()) + " <none> ramping", at(refresh) + " <none> ramping",
                    at(2 * refresh) + " <none> ramping", at(ramp) + " target_reached <none>",
                    at(3 * refresh) + " <none> holding", at(4 * refresh) + " <none> holding",
                    at(5 * refresh) + " stop stopped", at(5 * refresh) + " <none> stopped",
                    at(5 * refresh) + " result stopped"));
  }
}

}  // namespace
}  // namespace controller
}  // namespace memload
