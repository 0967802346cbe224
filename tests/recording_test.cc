// memloadctl run --record against two real agents, then memloadctl report on what it
// wrote: the recording's content checked against the run, and the page's structure.
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
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

TEST(RecordingTest, RunRecordsEveryNodeAndReportDrawsIt) {
  const std::string dir = TestTempDir();
  absl::StatusOr<LocalAgents> started = StartLocalAgents(2, "rec");
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<Subprocess>& agents = started->processes;
  std::vector<std::string> addresses = started->addresses;

  // Ramp to 32 MiB over 1 s, hold, stopped by memloadctl after 3 s; refresh every 200 ms.
  const std::string recording = dir + "/run.jsonl";
  CommandResult run = RunCommand(
      {CtlBinary(), "run", "--targets=" + absl::StrJoin(addresses, ","), "--kind=retained",
       "--target=32MiB", "--touch=page", "--ramp=1s", "--hold=forever", "--for=3s",
       "--interval=200ms", "--plan-id=recorded", "--record=" + recording},
      absl::Seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;

  std::vector<Line> lines;
  for (absl::string_view text : absl::StrSplit(ReadFile(recording), '\n', absl::SkipEmpty())) {
    Line line;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(text), &line.object).ok())
        << text;
    lines.push_back(line);
  }
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
    const std::vector<Line>& series = samples[addresses[i]];
    // One sample per refresh: ~15 in 3 s at 200 ms on an idle machine, but a refresh is a
    // fan-out to two agents, and at load 20-30 only 5-8 fitted (3 of 5 runs failed a ">= 10"
    // here). What the recording must show is checked below whatever the count: every stage
    // in order, increasing times, and samples over the whole run.
    ASSERT_GE(series.size(), 3u);
    EXPECT_GE(series.back().Time() - series.front().Time(), absl::Seconds(2));
    // Times increase; states move forward: [pending] ramping... holding... stopped.
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
      EXPECT_EQ(sample.Number("targetBytes"), kTarget);
      if (sample.Text("state") == "holding") {
        EXPECT_GE(sample.Number("residentBytes"), 0.9 * kTarget);
        EXPECT_GT(sample.Number("availableBytes"), 0);
      }
      if (k + 1 < series.size()) {
        EXPECT_TRUE(sample.Has("availableBytes"));  // All but the final sample.
      }
    }
    EXPECT_THAT(seen, ::testing::IsSupersetOf({"ramping", "holding", "stopped"}))
        << absl::StrJoin(seen, " ");
    EXPECT_EQ(series.back().Number("residentBytes"), 0);

    std::vector<std::string> kinds;
    for (const Line& event : events[addresses[i]]) kinds.push_back(event.Text("event"));
    EXPECT_EQ(kinds, (std::vector<std::string>{"start", "target_reached", "stop", "result"}));
    if (kinds.size() == 3) {
      const std::vector<Line>& on_node = events[addresses[i]];
      EXPECT_LE(on_node[0].Time(), on_node[1].Time());
      EXPECT_LE(on_node[1].Time(), on_node[2].Time());
      EXPECT_EQ(on_node[2].Text("state"), "stopped");
      // Ramping over 1 s: the target is reached about then.
      EXPECT_GE(on_node[1].Time() - on_node[0].Time(), absl::Milliseconds(700));
    }
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
