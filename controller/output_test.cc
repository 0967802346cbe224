#include "controller/output.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "controller/testing/json_document.h"
#include "controller/testing/text_proto.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::memload::testing::ExpectSummary;
using ::memload::testing::Field;
using ::memload::testing::ParseJsonDocument;
using ::memload::testing::ParseTextProto;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Parses a JSON document the way a script would, failing the test if it is not JSON.

const google::protobuf::Struct& Node(const google::protobuf::Struct& document, int i) {
  return Field(document, "nodes").list_value().values(i).struct_value();
}

// An error message with everything that must not break a table or a JSON document: quotes,
// a newline, a terminal escape, a control byte and an invalid UTF-8 byte.
const absl::Status kNastyError =
    absl::DeadlineExceededError("Deadline \"exceeded\"\n\x1b[31mred\x01 \xff");

std::vector<NodeResult<AgentInfo>> Agents() {
  std::vector<NodeResult<AgentInfo>> agents;
  agents.push_back({"10.0.0.1:7070", AgentInfo{ParseTextProto<v1::NodeInfo>(R"pb(
                                                 node_name: "node-a"
                                                 version: "0.3.0"
                                                 incarnation: "5f2c9a7e41d04b7b"
                                                 labels { key: "zone" value: "a" }
                                                 labels { key: "tier" value: "gold" }
                                               )pb"),
                                               2}});
  agents.push_back(
      {"10.0.0.2:7070", AgentInfo{ParseTextProto<v1::NodeInfo>(R"pb(node_name: "node-b"
                                                                    version: "0.3.0"
                                                                    incarnation: "0c1d")pb"),
                                  std::nullopt}});
  agents.push_back({"10.0.0.3:7070", absl::UnavailableError("failed to connect to all addresses")});
  return agents;
}

// node-a's plan in every fixture: "drill", holding its 2 GiB.
constexpr char kDrillHolding[] = R"pb(
  plan_id: "drill"
  spec { retained {} }
  state: PLAN_STATE_HOLDING
  target_bytes: 2147483648
  payload_bytes: 2147483648
  resident_bytes: 2155872256
)pb";

std::vector<NodeResult<v1::NodeUsage>> Usage() {
  std::vector<NodeResult<v1::NodeUsage>> nodes;
  nodes.push_back(
      {"10.0.0.1:7070",
       ParseTextProto<v1::NodeUsage>(absl::StrReplaceAll(
           R"pb(
             node { node_name: "node-a" }
             meminfo { total_bytes: 17179869184 available_bytes: 10200547328 }
             cgroup { version: 2 limited: true limit_bytes: 8589934592 usage_bytes: 3221225472 }
             pressure { available: true some_avg10: 0.125 }
             agent_rss_bytes: 25165824
             plans { $DRILL }
             plans {
               plan_id: "churn"
               spec { streaming {} }
               state: PLAN_STATE_STREAMING
               payload_bytes: 16777216
               resident_bytes: 18874368
               allocation_rate_bytes_per_sec: 13107200
             }
             plans {
               plan_id: "old"
               spec { retained {} }
               state: PLAN_STATE_OOM_KILLED
               target_bytes: 1073741824
               error: "worker killed by the OOM killer"
             }
             plans_payload_bytes: 2164260864
             plans_resident_bytes: 2174746624
           )pb",
           {{"$DRILL", kDrillHolding}}))});
  nodes.push_back({"10.0.0.2:7070", ParseTextProto<v1::NodeUsage>(R"pb(
                     node { node_name: "node-b" }
                     meminfo { total_bytes: 8589934592 available_bytes: 4294967296 }
                     cgroup { version: 1 }
                     agent_rss_bytes: 20971520
                   )pb")});
  nodes.push_back({"10.0.0.3:7070", kNastyError});
  return nodes;
}

RunView LiveRun() {
  RunView run;
  run.spec =
      ParseTextProto<v1::PlanSpec>(R"pb(plan_id: "drill"
                                        retained { phases { target { bytes: 2147483648 } } })pb");
  run.elapsed = absl::Milliseconds(12345);
  run.nodes.push_back({"10.0.0.1:7070",
                       "node-a",
                       ParseTextProto<v1::PlanStatus>(absl::StrCat(kDrillHolding, R"pb(
                         peak_resident_bytes: 2155872256
                         started { seconds: 100 }
                         target_reached { seconds: 103 nanos: 250000000 }
                       )pb")),
                       {}});
  run.nodes.push_back({"10.0.0.2:7070",
                       "node-b",
                       ParseTextProto<v1::PlanStatus>(R"pb(
                         plan_id: "drill"
                         spec { retained {} }
                         state: PLAN_STATE_RAMPING
                         target_bytes: 2147483648
                         payload_bytes: 536870912
                         resident_bytes: 540000000
                         peak_resident_bytes: 540000000
                         allocation_rate_bytes_per_sec: 209715200
                         started { seconds: 100 }
                       )pb"),
                       {}});
  run.nodes.push_back(
      {"10.0.0.3:7070", "", std::nullopt, {absl::UnavailableError("connection refused")}});
  run.nodes.push_back({"10.0.0.4:7070", "node-d", std::nullopt, {}});
  return run;
}

// The run after the end: node-a stopped cleanly, node-b was OOM-killed.
RunView EndedRun() {
  RunView run = LiveRun();
  run.nodes[0].plan->set_state(v1::PLAN_STATE_STOPPED);
  run.nodes[0].plan->set_outcome_ok(true);
  run.nodes[1].plan->set_state(v1::PLAN_STATE_OOM_KILLED);
  return run;
}

// --- Table.

TEST(TableTest, AlignsRightAlignsAndHidesEmptyColumns) {
  Table table({{"NAME"}, {"SIZE", Table::kRight}, {"NOTE"}, {"ERROR", Table::kLeft, true}});
  table.AddRow({"a", "1 KiB", "x"});
  table.AddRow({"longer-name", "512 MiB"});  // Missing cells are blank.
  EXPECT_EQ(table.Render(),
            "NAME            SIZE  NOTE\n"
            "a              1 KiB  x\n"
            "longer-name  512 MiB\n");
}

TEST(TableTest, ShowsTheOptionalColumnWhenUsedAndSanitizesCells) {
  Table table({{"NODE"}, {"ERROR", Table::kLeft, true}});
  table.AddRow({"nœud", "line one\nline\ttwo \x1b[2J\xc3"});
  table.AddRow({"b"});
  EXPECT_EQ(table.Render(),
            "NODE  ERROR\n"
            "nœud  line one line two ?[2J?\n"  // "nœud" is four characters wide.
            "b\n");
}

// --- Values.

TEST(FormatTest, Values) {
  EXPECT_EQ(FormatRate(13107200), "12.5 MiB/s");
  EXPECT_EQ(FormatRate(0), "0 B/s");
  EXPECT_EQ(FormatRate(-5), "0 B/s");
  EXPECT_EQ(FormatRate(std::nan("")), "0 B/s");
  EXPECT_EQ(FormatRate(std::numeric_limits<double>::infinity()), "15.99 EiB/s");

  EXPECT_EQ(FormatShortDuration(absl::Milliseconds(850)), "850ms");
  EXPECT_EQ(FormatShortDuration(absl::Milliseconds(1299)), "1.2s");
  EXPECT_EQ(FormatShortDuration(absl::Seconds(125)), "2m05s");
  EXPECT_EQ(FormatShortDuration(absl::Seconds(3720)), "1h02m");
  EXPECT_EQ(FormatShortDuration(absl::InfiniteDuration()), "forever");
  EXPECT_EQ(FormatShortDuration(-absl::Seconds(1)), "0ms");

  EXPECT_EQ(PlanStateName(v1::PLAN_STATE_LEASE_EXPIRED), "lease_expired");
  EXPECT_EQ(PlanStateName(v1::PLAN_STATE_HOLDING), "holding");
  EXPECT_EQ(PlanStateName(v1::PLAN_STATE_UNSPECIFIED), "unknown");
  EXPECT_EQ(PlanStateName(static_cast<v1::PlanState>(99)), "unknown");

  EXPECT_EQ(FormatQuantity(ParseTextProto<v1::Quantity>("bytes: 1610612736")), "1.5 GiB");
  EXPECT_EQ(FormatQuantity(ParseTextProto<v1::Quantity>("percent_of_total: 80")), "80% of total");
  EXPECT_EQ(FormatQuantity(ParseTextProto<v1::Quantity>("percent_of_available: 12.5")),
            "12.5% of available");
  EXPECT_EQ(FormatQuantity(ParseTextProto<v1::Quantity>("percent_of_cgroup_limit: 90")),
            "90% of cgroup limit");
  EXPECT_EQ(FormatQuantity(v1::Quantity()), "-");

  EXPECT_EQ(PlanKindName(v1::PlanSpec()), "-");
  EXPECT_EQ(FormatLabels(v1::NodeInfo().labels()), "-");
  EXPECT_EQ(FormatStatus(absl::NotFoundError("no plan")), "NOT_FOUND: no plan");
  // Error cells name the agent once (the row does) and keep gRPC's detail (issue 15.5).
  EXPECT_EQ(FormatStatus(absl::UnavailableError(
                "127.0.0.1:7071: agent unreachable (failed to connect to all addresses; last "
                "error: UNKNOWN: ipv4:127.0.0.1:7071: Failed to connect to remote host: "
                "Connection refused)")),
            "UNAVAILABLE: agent unreachable (Failed to connect to remote host: Connection "
            "refused)");
  EXPECT_EQ(FormatStatus(absl::DeadlineExceededError("[::1]:7070: no answer within 10s")),
            "DEADLINE_EXCEEDED: no answer within 10s");
  EXPECT_EQ(FormatStatus(absl::AbortedError("agent restarted (incarnation a: b)")),
            "ABORTED: agent restarted (incarnation a: b)");
}

TEST(FormatTest, PlanOutcomes) {
  auto status = [](const std::string& text) {
    return PlanOutcomeStatus(ParseTextProto<v1::PlanStatus>(text));
  };
  EXPECT_THAT(status("state: PLAN_STATE_RAMPING"), IsOk());
  EXPECT_THAT(status("state: PLAN_STATE_CAPPED error: \"at the reserve\""), IsOk());
  EXPECT_THAT(status("state: PLAN_STATE_COMPLETED outcome_ok: true"), IsOk());
  EXPECT_THAT(status("state: PLAN_STATE_OOM_KILLED outcome_ok: true"), IsOk());  // Expected.
  EXPECT_THAT(status("state: PLAN_STATE_OOM_KILLED"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("OOM")));
  EXPECT_THAT(status("state: PLAN_STATE_LEASE_EXPIRED"),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("lease expired")));
  EXPECT_THAT(status("state: PLAN_STATE_FAILED error: \"mlock: EPERM\""),
              StatusIs(absl::StatusCode::kAborted, "mlock: EPERM"));
}

// --- agents.

TEST(AgentsTest, Table) {
  EXPECT_EQ(FormatAgentsTable(Agents()),
            "AGENT          NODE    STATUS  VERSION  INCARNATION  LABELS            PLANS  ERROR\n"
            "10.0.0.1:7070  node-a  ok      0.3.0    5f2c9a7e     tier=gold,zone=a      2\n"
            "10.0.0.2:7070  node-b  ok      0.3.0    0c1d         -                     -\n"
            "10.0.0.3:7070  -       FAILED  -        -            -                     -  "
            "UNAVAILABLE: failed to connect to all addresses\n");
}

TEST(AgentsTest, Json) {
  const std::string json = AgentsJson(Agents());
  const google::protobuf::Struct document = ParseJsonDocument(json);
  EXPECT_EQ(Field(document, "command").string_value(), "agents");
  ExpectSummary(document, 3, 2, 1);
  const google::protobuf::Struct& a = Node(document, 0);
  EXPECT_EQ(Field(a, "target").string_value(), "10.0.0.1:7070");
  EXPECT_TRUE(Field(a, "ok").bool_value());
  EXPECT_EQ(Field(Field(a, "node").struct_value(), "nodeName").string_value(), "node-a");
  EXPECT_EQ(Field(a, "plans").number_value(), 2);
  EXPECT_EQ(Node(document, 1).fields().count("plans"), 0u);  // Unknown: left out.
  const google::protobuf::Struct& c = Node(document, 2);
  EXPECT_FALSE(Field(c, "ok").bool_value());
  EXPECT_EQ(Field(Field(c, "error").struct_value(), "code").string_value(), "UNAVAILABLE");
  // Map keys come out sorted, so documents are stable.
  EXPECT_THAT(json, HasSubstr(R"("labels":{"tier":"gold","zone":"a"})"));
}

// --- usage.

TEST(UsageTest, Tables) {
  EXPECT_EQ(
      FormatUsageTable(Usage()),
      "AGENT          NODE    STATUS   TOTAL  AVAILABLE  CG-LIMIT  CG-USAGE  PSI10  AGENT-RSS  "
      "PLANS  RESIDENT  ERROR\n"
      "10.0.0.1:7070  node-a  ok      16 GiB    9.5 GiB     8 GiB     3 GiB   0.12     24 MiB  "
      "    2  2.02 GiB\n"
      "10.0.0.2:7070  node-b  ok       8 GiB      4 GiB      none       0 B      -     20 MiB  "
      "    0       0 B\n"
      "10.0.0.3:7070  -       FAILED       -          -         -         -      -          -  "
      "    -         -  DEADLINE_EXCEEDED: Deadline \"exceeded\" ?[31mred? ?\n"
      "\n"
      "NODE    PLAN   KIND       STATUS  STATE       TARGET  PAYLOAD  RESIDENT        RATE  ERROR\n"
      "node-a  drill  retained   ok      holding      2 GiB    2 GiB     2 GiB       0 B/s\n"
      "node-a  churn  streaming  ok      streaming        -   16 MiB    18 MiB  12.5 MiB/s\n"
      "node-a  old    retained   FAILED  oom_killed   1 GiB      0 B       0 B       0 B/s  "
      "worker killed by the OOM killer\n");
}

TEST(UsageTest, PlacedPlansGetARowWithTheirTargetCgroup) {
  std::vector<NodeResult<v1::NodeUsage>> nodes = Usage();
  v1::PlanStatus* plan = nodes[0].value->add_plans();
  plan->set_plan_id("hpa-web-1-0a1b2c3d");
  plan->set_state(v1::PLAN_STATE_HOLDING);
  v1::TargetCgroup* target = plan->mutable_target();
  target->set_pod_namespace("shop");
  target->set_pod_name("web-1");
  target->set_container_name("app");
  target->set_limited(true);
  target->set_limit_bytes(512 << 20);
  target->set_usage_bytes(300 << 20);
  target->set_working_set_bytes(280 << 20);
  target->set_oom_kill_count(1);
  target->set_oom_group(true);
  const std::string table = FormatUsageTable(nodes);
  EXPECT_THAT(table, HasSubstr("POD/TARGET"));
  EXPECT_THAT(table, HasSubstr("shop/web-1/app  node-a  hpa-web-1-0a1b2c3d   300 MiB      280 MiB"
                               "   512 MiB  1 (oom.group)"));
  // No placed plan: no such table.
  EXPECT_THAT(FormatUsageTable(Usage()), ::testing::Not(HasSubstr("POD/TARGET")));
}

TEST(UsageTest, NoPlansNoPlanTable) {
  std::vector<NodeResult<v1::NodeUsage>> nodes = Usage();
  nodes.erase(nodes.begin());
  EXPECT_THAT(FormatUsageTable(nodes), ::testing::Not(HasSubstr("PLAN ")));
}

TEST(UsageTest, JsonEnvelopeAndEscaping) {
  const google::protobuf::Struct document = ParseJsonDocument(UsageJson(Usage()));
  EXPECT_EQ(Field(document, "command").string_value(), "usage");
  ExpectSummary(document, 3, 2, 1);
  const google::protobuf::Struct& usage = Field(Node(document, 0), "usage").struct_value();
  // 64-bit integers are strings in protobuf's mapping; zeros are printed too.
  EXPECT_EQ(Field(Field(usage, "meminfo").struct_value(), "totalBytes").string_value(),
            "17179869184");
  EXPECT_EQ(Field(Field(usage, "meminfo").struct_value(), "freeBytes").string_value(), "0");
  const auto& plans = Field(usage, "plans").list_value();
  ASSERT_EQ(plans.values_size(), 3);
  EXPECT_EQ(Field(plans.values(0).struct_value(), "state").string_value(), "PLAN_STATE_HOLDING");
  // The error survives the round trip exactly; the invalid byte becomes U+FFFD.
  const google::protobuf::Struct& error = Field(Node(document, 2), "error").struct_value();
  EXPECT_EQ(Field(error, "code").string_value(), "DEADLINE_EXCEEDED");
  EXPECT_EQ(Field(error, "message").string_value(),
            "Deadline \"exceeded\"\n\x1b[31mred\x01 \xEF\xBF\xBD");
}

TEST(UsageTest, EnvelopeLayout) {
  std::vector<NodeResult<v1::NodeUsage>> nodes;
  nodes.push_back({"h:1", absl::UnavailableError("down")});
  EXPECT_EQ(UsageJson(nodes),
            "{\n"
            "  \"command\": \"usage\",\n"
            "  \"ok\": false,\n"
            "  \"nodes\": [\n"
            "    {\"target\":\"h:1\",\"ok\":false,\"error\":{\"code\":\"UNAVAILABLE\","
            "\"message\":\"down\"}}\n"
            "  ],\n"
            "  \"summary\": {\"nodes\":1,\"ok\":0,\"failed\":1}\n"
            "}\n");
}

// --- start, resize, stop.

TEST(PlanResultsTest, TableAndJson) {
  std::vector<NodeResult<v1::PlanStatus>> nodes;
  nodes.push_back({"10.0.0.1:7070", *LiveRun().nodes[0].plan});
  nodes.push_back({"10.0.0.3:7070", absl::NotFoundError("plan \"x\" not found")});
  EXPECT_EQ(FormatPlanResultsTable(nodes),
            "AGENT          STATUS  PLAN   STATE    TARGET  PAYLOAD  RESIDENT  ERROR\n"
            "10.0.0.1:7070  ok      drill  holding   2 GiB    2 GiB     2 GiB\n"
            "10.0.0.3:7070  FAILED  -      -             -        -         -  "
            "NOT_FOUND: plan \"x\" not found\n");
  const google::protobuf::Struct document = ParseJsonDocument(PlanResultsJson("stop", nodes));
  EXPECT_EQ(Field(document, "command").string_value(), "stop");
  ExpectSummary(document, 2, 1, 1);
  EXPECT_EQ(Field(Field(Node(document, 0), "plan").struct_value(), "planId").string_value(),
            "drill");
  EXPECT_EQ(Field(Field(Node(document, 1), "error").struct_value(), "message").string_value(),
            "plan \"x\" not found");
}

// --- run.

TEST(RunTest, Progress) {
  EXPECT_EQ(
      FormatRunProgress(LiveRun()),
      "plan drill (retained) on 4 nodes, 12.3s elapsed\n"
      "AGENT          NODE     STATUS  STATE    TARGET    RESIDENT  %TARGET       RATE  ERROR\n"
      "10.0.0.1:7070  node-a   ok      holding   2 GiB       2 GiB     100%      0 B/s\n"
      "10.0.0.2:7070  node-b   ok      ramping   2 GiB  514.98 MiB      25%  200 MiB/s\n"
      "10.0.0.3:7070  -        FAILED  -             -           -        -          -  "
      "UNAVAILABLE: connection refused\n"
      "10.0.0.4:7070  node-d   ok      waiting       -           -        -          -\n"
      "TOTAL          4 nodes                    4 GiB    2.51 GiB      62%  200 MiB/s\n"
      "progress [##################------------] 62% of the target on 2 of 4 nodes; "
      "1 reached it\n");
}

TEST(RunTest, StreamingProgressHasNoBar) {
  RunView run;
  run.spec = ParseTextProto<v1::PlanSpec>(R"pb(plan_id: "churn"
                                               streaming { block_size: 1 })pb");
  run.elapsed = absl::Seconds(2);
  run.nodes.push_back({"h:1",
                       "a",
                       ParseTextProto<v1::PlanStatus>(R"pb(
                         spec { streaming {} }
                         state: PLAN_STATE_STREAMING
                         resident_bytes: 1048576
                         allocation_rate_bytes_per_sec: 1048576
                       )pb"),
                       {}});
  EXPECT_EQ(FormatRunProgress(run),
            "plan churn (streaming) on 1 node, 2.0s elapsed\n"
            "AGENT  NODE    STATUS  STATE      TARGET  RESIDENT  %TARGET     RATE\n"
            "h:1    a       ok      streaming       -     1 MiB        -  1 MiB/s\n"
            "TOTAL  1 node                          -     1 MiB        -  1 MiB/s\n");
}

TEST(RunTest, Summary) {
  EXPECT_EQ(FormatRunSummary(EndedRun()),
            "plan drill (retained) ran 12.3s: 1 of 4 nodes ok, 3 failed\n"
            "AGENT          NODE    STATUS  STATE             PEAK  TIME-TO-TARGET  ERRORS\n"
            "10.0.0.1:7070  node-a  ok      stopped          2 GiB            3.2s\n"
            "10.0.0.2:7070  node-b  FAILED  oom_killed  514.98 MiB               -  "
            "RESOURCE_EXHAUSTED: the plan's worker was OOM-killed\n"
            "10.0.0.3:7070  -       FAILED  -                    -               -  "
            "UNAVAILABLE: connection refused\n"
            "10.0.0.4:7070  node-d  FAILED  -                    -               -  "
            "the plan never started\n");
}

TEST(RunTest, Json) {
  const google::protobuf::Struct document = ParseJsonDocument(RunJson(EndedRun()));
  EXPECT_EQ(Field(document, "command").string_value(), "run");
  EXPECT_EQ(Field(document, "planId").string_value(), "drill");
  EXPECT_EQ(Field(document, "elapsed").string_value(), "12.345s");
  EXPECT_EQ(Field(Field(document, "spec").struct_value(), "planId").string_value(), "drill");
  ExpectSummary(document, 4, 1, 3);
  const google::protobuf::Struct& summary = Field(document, "summary").struct_value();
  EXPECT_EQ(Field(summary, "reachedTarget").number_value(), 1);
  EXPECT_EQ(Field(summary, "targetBytes").string_value(), "4294967296");
  EXPECT_EQ(Field(summary, "peakResidentBytes").string_value(), "2695872256");

  const google::protobuf::Struct& a = Node(document, 0);
  EXPECT_TRUE(Field(a, "ok").bool_value());
  EXPECT_EQ(Field(a, "node").string_value(), "node-a");
  EXPECT_EQ(Field(a, "timeToTarget").string_value(), "3.250s");
  EXPECT_EQ(Field(a, "errors").list_value().values_size(), 0);
  EXPECT_EQ(a.fields().count("error"), 0u);
  EXPECT_EQ(Field(Field(a, "plan").struct_value(), "state").string_value(), "PLAN_STATE_STOPPED");
  // Every node that is not ok says why.
  EXPECT_EQ(Field(Field(Node(document, 1), "error").struct_value(), "code").string_value(),
            "RESOURCE_EXHAUSTED");
  const google::protobuf::Struct& c = Node(document, 2);
  EXPECT_EQ(Field(Field(c, "error").struct_value(), "code").string_value(), "UNAVAILABLE");
  EXPECT_EQ(Field(c, "errors").list_value().values_size(), 1);
  EXPECT_EQ(Field(Field(Node(document, 3), "error").struct_value(), "message").string_value(),
            "the plan never started");
}

TEST(RunTest, NodeOk) {
  RunView run = EndedRun();
  EXPECT_TRUE(RunNodeOk(run.nodes[0]));
  EXPECT_FALSE(RunNodeOk(run.nodes[1]));
  run.nodes[0].errors.push_back(absl::UnavailableError("stop failed"));
  EXPECT_FALSE(RunNodeOk(run.nodes[0]));
}

// --- watch and errors.

TEST(WatchTest, FrameAndLines) {
  const absl::Time now = absl::FromUnixSeconds(1793715901);
  const std::vector<NodeResult<v1::NodeUsage>> nodes = Usage();
  EXPECT_EQ(FormatWatchFrame(now, nodes),
            "memload usage at 2026-11-03 14:25:01 UTC\n\n" + FormatUsageTable(nodes));
  EXPECT_EQ(FormatWatchLine(now, nodes[0]),
            "2026-11-03T14:25:01Z 10.0.0.1:7070 ok node-a total=16 GiB available=9.5 GiB "
            "plans=2 resident=2.02 GiB psi10=0.12\n");
  EXPECT_EQ(FormatWatchLine(now, nodes[2]),
            "2026-11-03T14:25:01Z 10.0.0.3:7070 FAILED error=DEADLINE_EXCEEDED: Deadline "
            "\"exceeded\" ?[31mred? ?\n");

  const std::string line = WatchJsonLine(now, nodes[2]);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);  // JSON Lines: one per line.
  const google::protobuf::Struct document = ParseJsonDocument(line);
  EXPECT_EQ(Field(document, "command").string_value(), "watch");
  EXPECT_EQ(Field(document, "time").string_value(), "2026-11-03T14:25:01Z");
  EXPECT_FALSE(Field(document, "ok").bool_value());
  EXPECT_EQ(Field(Field(document, "error").struct_value(), "code").string_value(),
            "DEADLINE_EXCEEDED");
  EXPECT_EQ(Field(ParseJsonDocument(WatchJsonLine(now, nodes[0])), "usage")
                .struct_value()
                .fields()
                .count("meminfo"),
            1u);
}

TEST(ErrorJsonTest, UsageErrorsKeepTheEnvelope) {
  const google::protobuf::Struct document = ParseJsonDocument(
      ErrorJson("start", absl::InvalidArgumentError("--target=\"12Q\": bad\\unit")));
  EXPECT_EQ(Field(document, "command").string_value(), "start");
  EXPECT_FALSE(Field(document, "ok").bool_value());
  EXPECT_EQ(Field(Field(document, "error").struct_value(), "message").string_value(),
            "--target=\"12Q\": bad\\unit");
  EXPECT_EQ(Field(document, "nodes").list_value().values_size(), 0);
  const google::protobuf::Struct& summary = Field(document, "summary").struct_value();
  EXPECT_EQ(Field(summary, "nodes").number_value(), 0);
}

// --- JSON helpers.

TEST(JsonTest, Quote) {
  EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
  EXPECT_EQ(JsonQuote("a\"b\\c\n\r\t\x01\x7f"), R"("a\"b\\c\n\r\t\u0001\u007f")");
  EXPECT_EQ(JsonQuote("é € 😀"), "\"é € 😀\"");                       // Valid UTF-8 stays as is.
  EXPECT_EQ(JsonQuote("\xc0\xaf"), R"("\ufffd\ufffd")");            // Overlong.
  EXPECT_EQ(JsonQuote("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // Surrogate.
  EXPECT_EQ(JsonQuote("\xe2\x82"), R"("\ufffd\ufffd")");            // Truncated.
  EXPECT_EQ(JsonQuote(std::string("nul\0byte", 8)), R"("nul\u0000byte")");
}

TEST(JsonTest, ProtoToJsonIsStable) {
  v1::NodeInfo info;
  for (const char* key : {"zeta", "alpha", "mid", "beta", "omega", "gamma"}) {
    (*info.mutable_labels())[key] = "v";
  }
  const std::string json = ProtoToJson(info);
  EXPECT_THAT(json, StartsWith(R"({"nodeName":"","labels":{"alpha":"v","beta":"v","gamma":"v",)"
                               R"("mid":"v","omega":"v","zeta":"v"})"));
  EXPECT_EQ(ProtoToJson(info), json);
}

// --- redraw.

TEST(RedrawTest, ClearFrame) {
  EXPECT_EQ(ClearFrame(3), "\x1b[3A\x1b[J");
  EXPECT_EQ(ClearFrame(0), "");
  EXPECT_EQ(FrameLines("a\nb\n"), 2);
  EXPECT_EQ(FrameLines("a\nb"), 2);
  EXPECT_EQ(FrameLines(""), 0);
  const std::string frame = FormatRunProgress(LiveRun());
  EXPECT_EQ(FrameLines(frame), 8);
}

// --- Fitting live views to the terminal.

int WidestLine(const std::string& text) {
  int widest = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    widest = std::max(widest, TextWidth(line));
  return widest;
}

TEST(FitTest, TableDropsThenCutsThenSpills) {
  Table table({{"AGENT", Table::kLeft, false, 6},
               {"EXTRA", Table::kRight, false, 0, 1},
               {"SIZE", Table::kRight},
               {"ERROR", Table::kLeft, true, 0, 0, true}});
  table.AddRow({"10.0.0.1:7070", "x", "1 GiB"});
  table.AddRow(
      {"10.0.0.2:7070", "y", "2 GiB", "UNAVAILABLE: a long story about a refused connection"});
  EXPECT_EQ(WidestLine(table.Render()), 81);
  // Wide enough without the errors: they go below, cut at the width.
  EXPECT_EQ(table.Render(40),
            "AGENT          EXTRA   SIZE\n"
            "10.0.0.1:7070      x  1 GiB\n"
            "10.0.0.2:7070      y  2 GiB\n"
            "10.0.0.2:7070: UNAVAILABLE: a long stor…\n");
  // Narrower: EXTRA is dropped, then AGENT cut.
  EXPECT_EQ(table.Render(16),
            "AGENT       SIZE\n"
            "10.0.0.1…  1 GiB\n"
            "10.0.0.2…  2 GiB\n"
            "10.0.0.2:7070: …\n");
  // Wrapped instead of cut: nothing is lost.
  const std::string wrapped = table.Render(30, /*wrap_spilled=*/true);
  EXPECT_LE(WidestLine(wrapped), 30);
  EXPECT_THAT(absl::StrReplaceAll(wrapped, {{"\n    ", ""}, {" ", ""}}),
              HasSubstr("alongstoryaboutarefusedconnection"));
}

TEST(FitTest, FrameRowsCountsWrappedLines) {
  EXPECT_EQ(FrameRows("abc\n\nabcdef\n", 3), 4);  // 1 + 1 (empty) + 2.
  EXPECT_EQ(FrameRows("abcd\n", 4), 1);           // Exactly the width: no wrap.
  EXPECT_EQ(FrameRows("abcde\n", 4), 2);
  EXPECT_EQ(FrameRows("a\nb", 0), 2);
  EXPECT_EQ(FrameRows("", 80), 0);
  EXPECT_EQ(FrameRows("nœud€\n", 5), 1);  // Characters, not bytes.
}

TEST(FitTest, UsageLeavesOutColumnsNobodyHas) {
  std::vector<NodeResult<v1::NodeUsage>> nodes = Usage();
  nodes.erase(nodes.begin());  // node-a had the only cgroup limit and PSI.
  const std::string table = FormatUsageTable(nodes);
  EXPECT_THAT(table, Not(HasSubstr("CG-LIMIT")));
  EXPECT_THAT(table, Not(HasSubstr("PSI10")));
  EXPECT_THAT(table, HasSubstr("CG-USAGE"));  // node-b has a cgroup (v1), unlimited.
}

std::vector<NodeResult<v1::NodeUsage>> ManyNodes(int count) {
  std::vector<NodeResult<v1::NodeUsage>> nodes;
  for (int i = 0; i < count; ++i) {
    if (i % 100 == 7) {
      nodes.push_back({absl::StrCat("10.0.", i / 256, ".", i % 256, ":7070"),
                       absl::UnavailableError("connection refused")});
      continue;
    }
    v1::NodeUsage usage = Usage()[0].value.value();
    usage.mutable_node()->set_node_name(absl::StrCat("node-", i));
    nodes.push_back({absl::StrCat("10.0.", i / 256, ".", i % 256, ":7070"), usage});
  }
  return nodes;
}

TEST(FitTest, WatchFrameFitsTheTerminal) {
  const absl::Time now = absl::FromUnixSeconds(1793715901);
  for (const ViewSize size : {ViewSize{80, 24}, ViewSize{200, 50}, ViewSize{40, 10}}) {
    SCOPED_TRACE(absl::StrCat(size.columns, "x", size.rows));
    for (int count : {3, 1000}) {
      const std::string frame = FormatWatchFrame(now, ManyNodes(count), size);
      EXPECT_LE(WidestLine(frame), size.columns) << frame;
      EXPECT_LE(FrameRows(frame, size.columns), size.rows - 1) << frame;
      if (count == 1000 && size.columns >= 80) {
        EXPECT_THAT(frame, HasSubstr("1000 nodes, 10 failed"));
        EXPECT_THAT(frame, HasSubstr("more nodes"));
        // Failed nodes come first when not every node fits.
        EXPECT_THAT(frame, HasSubstr("10.0.0.7:7070"));
      }
    }
  }
}

RunView FleetRun(int count) {
  RunView run = LiveRun();
  run.nodes.clear();
  for (int i = 0; i < count; ++i) {
    RunNode node = LiveRun().nodes[1];  // Ramping, 25% of a 2 GiB target.
    node.target = absl::StrCat("10.0.", i / 256, ".", i % 256, ":7070");
    node.node_name = absl::StrCat("node-", i);
    node.plan->set_payload_bytes(uint64_t{2147483648} * (i % 100) / 100);
    if (i == 500) node.errors.push_back(absl::UnavailableError("connection refused"));
    if (i == 600) node.plan->set_state(v1::PLAN_STATE_CAPPED);
    run.nodes.push_back(std::move(node));
  }
  return run;
}

TEST(FitTest, RunProgressOfAFleetShowsTheSpreadAndTheOutliers) {
  const RunView run = FleetRun(1000);
  for (const ViewSize size : {ViewSize{80, 24}, ViewSize{200, 50}, ViewSize{}}) {
    SCOPED_TRACE(absl::StrCat(size.columns, "x", size.rows));
    const std::string frame = FormatRunProgress(run, size);
    if (size.columns > 0) {
      EXPECT_LE(WidestLine(frame), size.columns) << frame;
      EXPECT_LE(FrameRows(frame, size.columns), size.rows - 1) << frame;
    }
    EXPECT_LE(FrameLines(frame), 30) << frame;  // Never a row per node.
    EXPECT_THAT(frame, HasSubstr("nodes: 999 ok, 1 failed; capped 1, ramping 999"));
    EXPECT_THAT(frame, HasSubstr("%target across 1000 running nodes: min 0%, median "));
    EXPECT_THAT(frame, HasSubstr("nodes that need a look (1000)"));
    // Most urgent first: the failed node, then the capped one, then the slowest.
    const size_t failed = frame.find("node-500"), capped = frame.find("node-600"),
                 slowest = frame.find("node-0 ");
    ASSERT_NE(failed, std::string::npos) << frame;
    ASSERT_NE(capped, std::string::npos) << frame;
    ASSERT_NE(slowest, std::string::npos) << frame;
    EXPECT_LT(failed, capped);
    EXPECT_LT(capped, slowest);
  }
  // A few nodes: a row each, as before.
  EXPECT_EQ(FormatRunProgress(LiveRun(), ViewSize{200, 50}), FormatRunProgress(LiveRun()));
}

}  // namespace
}  // namespace controller
}  // namespace memload
