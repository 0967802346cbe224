// memloadctl against three real agents on loopback addresses, as a user runs them.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "controller/testing/json_document.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback_port.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;

class ControllerIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // node-1..3 on 127.0.0.1-3, in zones a, b, b.
    absl::StatusOr<LocalAgents> started = StartLocalAgents(
        3, "node", {}, {{"--labels=zone=a"}, {"--labels=zone=b"}, {"--labels=zone=b"}});
    ASSERT_TRUE(started.ok()) << started.status();
    *agents_ = std::move(started->processes);
    *addresses_ = std::move(started->addresses);
  }
  static void TearDownTestSuite() {
    for (Subprocess& agent : *agents_) {
      agent.Signal(SIGTERM);
      EXPECT_EQ(agent.Wait(absl::Seconds(5)).value_or(-1), 0);
    }
    agents_->clear();
  }

  static std::string Targets() { return "--targets=" + absl::StrJoin(*addresses_, ","); }

  static CommandResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CtlBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  }

  // Running plans over all three agents, from `usage --output=json`.
  static int RunningPlans() {
    CommandResult usage = Ctl({"usage", Targets(), "--output=json"});
    google::protobuf::Struct document = ParseJsonDocument(usage.out);
    int plans = 0;
    for (const auto& node : document.fields().at("nodes").list_value().values()) {
      const auto& fields = node.struct_value().fields();
      if (fields.count("usage") == 0) continue;
      const auto& usage_fields = fields.at("usage").struct_value().fields();
      if (usage_fields.count("plans") == 0) continue;
      // usage also lists plans that ended lately (with their outcome): count running ones.
      for (const auto& plan : usage_fields.at("plans").list_value().values()) {
        const std::string state = plan.struct_value().fields().at("state").string_value();
        plans += state == "PLAN_STATE_PENDING" || state == "PLAN_STATE_RAMPING" ||
                 state == "PLAN_STATE_HOLDING" || state == "PLAN_STATE_STREAMING" ||
                 state == "PLAN_STATE_CAPPED";
      }
    }
    return plans;
  }

  static std::vector<Subprocess>* agents_;
  static std::vector<std::string>* addresses_;
};

std::vector<Subprocess>* ControllerIntegrationTest::agents_ = new std::vector<Subprocess>();
std::vector<std::string>* ControllerIntegrationTest::addresses_ = new std::vector<std::string>();

TEST_F(ControllerIntegrationTest, RunReportsEveryNodeInJson) {
  CommandResult run = Ctl({"run", Targets(), "--kind=retained", "--target=32MiB", "--ramp=300ms",
                           "--hold=500ms", "--output=json", "--interval=100ms"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  google::protobuf::Struct document = ParseJsonDocument(run.out);
  const auto& fields = document.fields();
  EXPECT_EQ(fields.at("command").string_value(), "run");
  EXPECT_TRUE(fields.at("ok").bool_value());
  const auto& nodes = fields.at("nodes").list_value().values();
  ASSERT_EQ(nodes.size(), 3);
  std::set<std::string> names;
  for (const auto& node : nodes) {
    const auto& node_fields = node.struct_value().fields();
    EXPECT_TRUE(node_fields.at("ok").bool_value());
    names.insert(node_fields.at("node").string_value());
    const auto& plan = node_fields.at("plan").struct_value().fields();
    EXPECT_EQ(plan.at("state").string_value(), "PLAN_STATE_COMPLETED");
    // Peak resident is what the OS measured for the worker: at least the 32 MiB target.
    EXPECT_GE(std::stoull(plan.at("peakResidentBytes").string_value()), 32ull << 20);
    EXPECT_TRUE(node_fields.count("timeToTarget") > 0);
  }
  EXPECT_EQ(names, (std::set<std::string>{"node-1", "node-2", "node-3"}));
  EXPECT_EQ(fields.at("summary").struct_value().fields().at("ok").number_value(), 3);
  EXPECT_EQ(RunningPlans(), 0);
}

TEST_F(ControllerIntegrationTest, UsageWithAnUnreachableTargetExitsOneAndReportsTheOthers) {
  // Nobody listens there: refused at once (UNAVAILABLE). The timeout only has to let every
  // answer arrive; 2 s did not under TSan on a loaded machine (DEADLINE_EXCEEDED).
  const std::string dead = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  CommandResult usage =
      Ctl({"usage", absl::StrCat("--targets=", (*addresses_)[0], ",", (*addresses_)[1], ",", dead),
           "--output=json", "--timeout=20s", "--retries=0"});
  EXPECT_EQ(usage.exit_code, 1) << usage.err;
  google::protobuf::Struct document = ParseJsonDocument(usage.out);
  const auto& summary = document.fields().at("summary").struct_value().fields();
  EXPECT_EQ(summary.at("ok").number_value(), 2);
  EXPECT_EQ(summary.at("failed").number_value(), 1);
  for (const auto& node : document.fields().at("nodes").list_value().values()) {
    const auto& fields = node.struct_value().fields();
    if (fields.at("target").string_value() == dead) {
      EXPECT_EQ(fields.at("error").struct_value().fields().at("code").string_value(),
                "UNAVAILABLE");
    } else {
      EXPECT_TRUE(fields.at("ok").bool_value());
      EXPECT_GT(std::stoull(fields.at("usage")
                                .struct_value()
                                .fields()
                                .at("meminfo")
                                .struct_value()
                                .fields()
                                .at("totalBytes")
                                .string_value()),
                0u);
    }
  }
  // The table names the failed node too.
  CommandResult table = Ctl({"usage", absl::StrCat("--targets=", (*addresses_)[0], ",", dead),
                             "--timeout=20s", "--retries=0"});
  EXPECT_EQ(table.exit_code, 1);
  EXPECT_THAT(table.out, HasSubstr(dead));
  EXPECT_THAT(table.out, HasSubstr("UNAVAILABLE"));
}

TEST_F(ControllerIntegrationTest, SelectorKeepsMatchingAgents) {
  CommandResult agents = Ctl({"agents", Targets(), "--selector=zone=b", "--output=json"});
  ASSERT_EQ(agents.exit_code, 0) << agents.err;
  google::protobuf::Struct document = ParseJsonDocument(agents.out);
  std::set<std::string> names;
  for (const auto& node : document.fields().at("nodes").list_value().values()) {
    names.insert(node.struct_value()
                     .fields()
                     .at("node")
                     .struct_value()
                     .fields()
                     .at("nodeName")
                     .string_value());
  }
  EXPECT_EQ(names, (std::set<std::string>{"node-2", "node-3"}));
}

TEST_F(ControllerIntegrationTest, UsageErrorsExitTwoAndSendNothing) {
  const std::vector<std::vector<std::string>> bad = {
      {"start", Targets(), "--kind=retained", "--target=12Q"},
      {"start", Targets(), "--kind=retained", "--target=64MiB", "--window=3"},
      {"start", Targets(), "--plan=/nonexistent/plan.json"},
      {"start", Targets(), "--kind=bogus"},
      {"launch", Targets()},
      {"usage"},
      {"usage", "--targets=localhost"},
      {"usage", Targets(), "--output=yaml"},
      {"stop", Targets()},
      {"run", Targets(), "--kind=retained", "--target=1MiB", "--rollout=batch:0"},
  };
  for (const auto& args : bad) {
    CommandResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << result.out << result.err;
    EXPECT_FALSE(result.err.empty()) << absl::StrJoin(args, " ");
  }
  EXPECT_EQ(RunningPlans(), 0);
}

TEST_F(ControllerIntegrationTest, InterruptedRunStopsEverywhere) {
  absl::StatusOr<Subprocess> run =
      Subprocess::Start({CtlBinary(), "run", Targets(), "--kind=retained", "--target=16MiB",
                         "--interval=100ms", "--plan-id=interrupted"});
  ASSERT_TRUE(run.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (RunningPlans() < 3 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(RunningPlans(), 3) << run->Stdout() << run->Stderr();
  run->Signal(SIGINT);
  std::optional<int> code = run->Wait(absl::Seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 130) << run->Stderr();
  EXPECT_THAT(run->Stdout(), HasSubstr("stopped"));
  EXPECT_EQ(RunningPlans(), 0);
}

TEST_F(ControllerIntegrationTest, WatchPrintsEveryNodeEveryInterval) {
  CommandResult watch = Ctl({"watch", Targets(), "--interval=100ms", "--count=3", "--output=json"});
  ASSERT_EQ(watch.exit_code, 0) << watch.err;
  std::vector<std::string> lines = absl::StrSplit(watch.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 9u) << watch.out;  // 3 frames × 3 nodes, JSON Lines.
  for (const std::string& line : lines) {
    google::protobuf::Struct document = ParseJsonDocument(line);
    EXPECT_TRUE(document.fields().at("ok").bool_value()) << line;
    EXPECT_EQ(document.fields().at("command").string_value(), "watch");
  }
  CommandResult text = Ctl({"watch", Targets(), "--interval=100ms", "--count=1"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, HasSubstr("node-1"));
}

TEST_F(ControllerIntegrationTest, RunForADurationStopsAHeldPlanEverywhere) {
  const absl::Time start = absl::Now();
  CommandResult run = Ctl({"run", Targets(), "--kind=retained", "--target=16MiB", "--hold=forever",
                           "--for=1s", "--interval=200ms", "--output=json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));
  google::protobuf::Struct document = ParseJsonDocument(run.out);
  for (const auto& node : document.fields().at("nodes").list_value().values()) {
    EXPECT_EQ(
        node.struct_value().fields().at("plan").struct_value().fields().at("state").string_value(),
        "PLAN_STATE_STOPPED");
  }
  EXPECT_EQ(RunningPlans(), 0);
}

}  // namespace
}  // namespace testing
}  // namespace memload
