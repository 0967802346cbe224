// memloadctl run --record against two real agents, then memloadctl report on what it
// wrote: the recording's content checked against the run and the agents' own stamps, and
// the page's structure.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/files.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kTarget = 32 << 20;

int Count(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

struct Line {
  google::protobuf::Struct object;
  std::string Text(const std::string& key) const {
    auto it = object.fields().find(key);
    return it == object.fields().end() ? "" : it->second.string_value();
  }
  double Number(const std::string& key) const {
    auto it = object.fields().find(key);
    return it == object.fields().end() ? -1 : it->second.number_value();
  }
  bool Has(const std::string& key) const { return object.fields().count(key) > 0; }
  absl::Time Time() const {
    absl::Time time;
    std::string error;
    EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, Text("time"), &time, &error)) << Text("time");
    return time;
  }
};

// The recording's complete lines so far (memloadctl flushes it at every refresh; a line
// still being written is left for the next read).
std::vector<Line> ReadLines(const std::string& path) {
  std::string text = ReadFile(path);
  text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  std::vector<Line> lines;
  for (absl::string_view one : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    Line line;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(one), &line.object).ok())
        << one;
    lines.push_back(line);
  }
  return lines;
}

// Whether every one of `targets` has a sample holding at least 90% of `target` resident.
bool EveryNodeHolds(const std::vector<Line>& lines, const std::vector<std::string>& targets,
                    double target) {
  std::set<std::string> holding;
  for (const Line& line : lines) {
    if (!line.Has("event") && line.Text("state") == "holding" &&
        line.Number("residentBytes") >= 0.9 * target) {
      holding.insert(line.Text("target"));
    }
  }
  return std::all_of(targets.begin(), targets.end(),
                     [&](const std::string& one) { return holding.count(one) > 0; });
}

// The run's phases follow the states the recording shows, not the clock: memloadctl runs
// until the test has seen every node hold its target in the recording (holding, with 90% of
// it resident as the OS counts it), then the test stops
// the plan and the run ends because the plan ended everywhere (`--for` is only a bound). So
// the recording holds whatever TSan's or a loaded machine's speed: samples while it ramps
// (when a refresh falls inside the one-second ramp: at 200 ms on an idle machine; asserted
// exactly on simulated time in controller/recording_test.cc), while it holds, and the stop.
TEST(RecordingTest, RunRecordsEveryNodeAndReportDrawsIt) {
  const std::string dir = TestTempDir();
  absl::StatusOr<LocalAgents> started = StartLocalAgents(2, "rec");
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<Subprocess>& agents = started->processes;
  std::vector<std::string> addresses = started->addresses;
  const std::string targets = "--targets=" + absl::StrJoin(addresses, ",");

  // Ramp to 32 MiB over 1 s, hold until the test stops it; refresh every 200 ms.
  const std::string recording = dir + "/run.jsonl";
  absl::StatusOr<Subprocess> run =
      Subprocess::Start({CtlBinary(), "run", targets, "--kind=retained", "--target=32MiB",
                         "--touch=page", "--ramp=1s", "--hold=forever", "--for=2m",
                         "--interval=200ms", "--plan-id=recorded", "--record=" + recording});
  ASSERT_TRUE(run.ok()) << run.status();
  const bool held =
      Eventually([&] { return EveryNodeHolds(ReadLines(recording), addresses, kTarget); },
                 kEventuallyTimeout, absl::Milliseconds(50));
  CommandResult stop =
      RunCommand({CtlBinary(), "stop", targets, "--plan-id=recorded"}, absl::Seconds(30));
  EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  const std::optional<int> run_exit = run->Wait(absl::Seconds(60));
  ASSERT_TRUE(held) << "no node-holding-its-target sample of every node in\n"
                    << ReadFile(recording);
  ASSERT_EQ(run_exit, 0) << run->Stdout() << run->Stderr();

  const std::vector<Line> lines = ReadLines(recording);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].Text("event"), "run");
  EXPECT_EQ(lines[0].Text("planId"), "recorded");

  // Per node (by agent address): its samples and its events.
  std::map<std::string, std::vector<Line>> samples, events;
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].Text("planId"), "recorded");
    (lines[i].Has("event") ? events : samples)[lines[i].Text("target")].push_back(lines[i]);
  }
  ASSERT_EQ(samples.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(addresses[i]);
    std::vector<std::string> kinds;
    for (const Line& event : events[addresses[i]]) kinds.push_back(event.Text("event"));
    ASSERT_EQ(kinds, (std::vector<std::string>{"start", "target_reached", "stop", "result"}));
    // The events carry the agent's own stamps.
    const std::vector<Line>& on_node = events[addresses[i]];
    EXPECT_LE(on_node[0].Time(), on_node[1].Time());
    EXPECT_LE(on_node[1].Time(), on_node[2].Time());
    EXPECT_EQ(on_node[2].Text("state"), "stopped");
    // Ramping over 1 s: the target is reached no sooner (a slow machine only adds).
    EXPECT_GE(on_node[1].Time() - on_node[0].Time(), absl::Milliseconds(700));
    const absl::Time target_reached = on_node[1].Time();

    // A sample per refresh that reached the node, up to the stop, and a last one after it.
    const std::vector<Line>& series = samples[addresses[i]];
    ASSERT_GE(series.size(), 2u);
    // Times increase; states move forward: [pending] [ramping] holding... stopped, and
    // each agrees with the agent's stamps: a node is seen holding only once it reached the
    // target.
    const std::vector<std::string> order = {"pending", "ramping", "holding", "stopped"};
    size_t stage = 0;
    std::vector<std::string> seen;
    for (size_t k = 0; k < series.size(); ++k) {
      const Line& sample = series[k];
      EXPECT_EQ(sample.Text("node"), absl::StrCat("rec-", i + 1));
      if (k > 0) {
        EXPECT_GT(sample.Time(), series[k - 1].Time());
      }
      const auto at = std::find(order.begin(), order.end(), sample.Text("state"));
      ASSERT_NE(at, order.end()) << sample.Text("state");
      ASSERT_GE(static_cast<size_t>(at - order.begin()), stage) << "state went back";
      stage = at - order.begin();
      if (seen.empty() || seen.back() != *at) seen.push_back(*at);
      if (*at != "pending") {
        EXPECT_GE(sample.Time(), on_node[0].Time()) << "running before the plan started";
      }
      EXPECT_EQ(sample.Number("targetBytes"), kTarget);
      if (sample.Text("state") == "holding") {
        // The resident figure is the OS's (/proc of the worker), read by the agent: under
        // TSan at load the first holding sample has shown 14-22 MB of the 32 MiB, so its
        // 90% is what the wait above asks of some holding sample, not of every one.
        EXPECT_GE(sample.Time(), target_reached) << "holding before it reached the target";
        EXPECT_GT(sample.Number("availableBytes"), 0);
      }
      if (k + 1 < series.size()) {
        EXPECT_TRUE(sample.Has("availableBytes"));  // All but the final sample.
      }
    }
    EXPECT_THAT(seen, ::testing::IsSupersetOf({"holding", "stopped"})) << absl::StrJoin(seen, " ");
    EXPECT_EQ(seen.back(), "stopped");
    EXPECT_EQ(series.back().Number("residentBytes"), 0);
  }

  // The report.
  const std::string page = dir + "/run.html";
  CommandResult report =
      RunCommand({CtlBinary(), "report", recording, "--html=" + page}, absl::Seconds(30));
  ASSERT_EQ(report.exit_code, 0) << report.out << report.err;
  EXPECT_THAT(report.out, HasSubstr("rec-1"));
  const std::string html = ReadFile(page);
  EXPECT_EQ(Count(html, "<polyline class=\"series\""), 2);
  EXPECT_EQ(Count(html, "<polyline class=\"series\" data-node=\"rec-1\""), 1);
  EXPECT_EQ(Count(html, "<polyline class=\"series\" data-node=\"rec-2\""), 1);
  EXPECT_EQ(Count(html, "<g class=\"event\""), 6);
  for (const char* label :
       {">rec-1: start</text>", ">rec-1: target reached</text>", ">rec-1: stopped</text>",
        ">rec-2: start</text>", ">rec-2: target reached</text>", ">rec-2: stopped</text>"}) {
    EXPECT_EQ(Count(html, label), 1) << label;
  }
  EXPECT_EQ(Count(html, "<tr class=\"node-row\""), 2);
  EXPECT_THAT(html, HasSubstr("2 of 2 reached the target"));
  EXPECT_THAT(html, HasSubstr("OK: 2 of 2 nodes ok; memloadctl run exited 0"));
  EXPECT_EQ(lines.back().Text("event"), "end");
  for (const char* absent : {"http://", "https://", "<script", "src=", "href="}) {
    EXPECT_THAT(html, Not(HasSubstr(absent))) << absent;
  }

  // A damaged recording: exit 2, naming the line.
  const std::string damaged = dir + "/damaged.jsonl";
  std::ofstream(damaged) << ReadFile(recording) << "{\"time\": \n";
  CommandResult refused =
      RunCommand({CtlBinary(), "report", damaged, "--html=" + page}, absl::Seconds(30));
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr(absl::StrCat(damaged, ":", lines.size() + 1, ": ")));

  for (Subprocess& agent : agents) {
    agent.Signal(SIGTERM);
    EXPECT_EQ(agent.Wait(absl::Seconds(5)).value_or(-1), 0);
  }
}

}  // namespace
}  // namespace testing
}  // namespace memload
