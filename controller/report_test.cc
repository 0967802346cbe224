#include "controller/report.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace memload {
namespace controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

int Count(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// Two nodes: "a" reaches its 64 MiB target after 1.5 s and is stopped; "<b>" (a name that
// needs escaping) is OOM-killed.
constexpr char kRecording[] = R"({"event":"run","time":"2026-11-25T16:00:00.000Z","planId":"drill","spec":{"planId":"drill","retained":{}},"targets":["127.0.0.1:7070","127.0.0.1:7071"]}
{"event":"start","time":"2026-11-25T16:00:00.000Z","node":"a","target":"127.0.0.1:7070","planId":"drill","targetBytes":67108864}
{"time":"2026-11-25T16:00:01.000Z","node":"a","target":"127.0.0.1:7070","planId":"drill","state":"ramping","targetBytes":67108864,"payloadBytes":33554432,"residentBytes":33554432,"availableBytes":1073741824}
{"event":"start","time":"2026-11-25T16:00:00.100Z","node":"<b>","target":"127.0.0.1:7071","planId":"drill","targetBytes":67108864}
{"time":"2026-11-25T16:00:01.000Z","node":"<b>","target":"127.0.0.1:7071","planId":"drill","state":"ramping","targetBytes":67108864,"payloadBytes":16777216,"residentBytes":16777216}

{"event":"target_reached","time":"2026-11-25T16:00:01.500Z","node":"a","target":"127.0.0.1:7070","planId":"drill","targetBytes":67108864}
{"time":"2026-11-25T16:00:02.000Z","node":"a","target":"127.0.0.1:7070","planId":"drill","state":"holding","targetBytes":67108864,"payloadBytes":67108864,"residentBytes":67108864}
{"event":"oom_killed","time":"2026-11-25T16:00:02.500Z","node":"<b>","target":"127.0.0.1:7071","planId":"drill","state":"oom_killed","message":"the kernel's OOM killer killed the worker"}
{"time":"2026-11-25T16:00:03.000Z","node":"<b>","target":"127.0.0.1:7071","planId":"drill","state":"oom_killed","targetBytes":67108864,"payloadBytes":0,"residentBytes":0}
{"event":"stop","time":"2026-11-25T16:00:04.000Z","node":"a","target":"127.0.0.1:7070","planId":"drill","state":"stopped"}
{"time":"2026-11-25T16:00:04.000Z","node":"a","target":"127.0.0.1:7070","planId":"drill","state":"stopped","targetBytes":67108864,"payloadBytes":0,"residentBytes":0}
)";

TEST(ReportTest, ParsesAndSummarizes) {
  absl::StatusOr<Recording> recording = ParseRecording(kRecording, "run.jsonl");
  ASSERT_THAT(recording, IsOk());
  EXPECT_EQ(recording->plan_id, "drill");
  EXPECT_EQ(recording->kind, "retained");
  EXPECT_EQ(recording->samples.size(), 5u);
  EXPECT_EQ(recording->events.size(), 5u);
  std::vector<NodeSummary> nodes = SummarizeRecording(*recording);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].node, "a");
  EXPECT_EQ(nodes[0].peak_resident_bytes, 64u << 20);
  EXPECT_EQ(nodes[0].time_to_target, absl::Milliseconds(1500));
  EXPECT_EQ(nodes[0].final_state, "stopped");
  EXPECT_EQ(nodes[1].node, "<b>");
  EXPECT_EQ(nodes[1].peak_resident_bytes, 16u << 20);
  EXPECT_FALSE(nodes[1].time_to_target.has_value());
  EXPECT_EQ(nodes[1].final_state, "oom_killed");
}

TEST(ReportTest, HtmlHasOneSeriesPerNodeEventsAndSummary) {
  absl::StatusOr<Recording> recording = ParseRecording(kRecording, "run.jsonl");
  ASSERT_THAT(recording, IsOk());
  const std::string html = RenderReportHtml(*recording);
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  // One resident line and one target line per node, the cluster's two lines.
  EXPECT_EQ(Count(html, "<polyline class=\"series\""), 2);
  EXPECT_EQ(Count(html, "<polyline class=\"series\" data-node=\"a\""), 1);
  EXPECT_EQ(Count(html, "<polyline class=\"series\" data-node=\"&lt;b&gt;\""), 1);
  EXPECT_EQ(Count(html, "<polyline class=\"target\""), 2);
  EXPECT_EQ(Count(html, "<polyline class=\"total\""), 1);
  EXPECT_EQ(Count(html, "<polyline class=\"total-target\""), 1);
  // Every event is a labelled marker.
  EXPECT_EQ(Count(html, "<g class=\"event\""), 5);
  for (const char* label : {">a: start</text>", ">a: target reached</text>", ">a: stopped</text>",
                            ">&lt;b&gt;: start</text>", ">&lt;b&gt;: OOM killed</text>"}) {
    EXPECT_EQ(Count(html, label), 1) << label;
  }
  EXPECT_THAT(html, HasSubstr("data-event=\"oom_killed\""));
  // The summary table: a row per node.
  EXPECT_EQ(Count(html, "<tr class=\"node-row\""), 2);
  EXPECT_THAT(html, HasSubstr("<tr class=\"node-row\" data-node=\"a\"><td>a</td><td>127.0.0.1:7070"
                              "</td><td class=\"num\">64 MiB</td><td class=\"num\">64 MiB</td>"
                              "<td class=\"num\">1.5s</td><td>stopped</td></tr>"));
  EXPECT_THAT(html, HasSubstr("1 of 2 reached the target"));
  // Self-contained: nothing to load, no script, user text escaped.
  for (const char* absent : {"http://", "https://", "<script", "src=", "href=", "@import",
                             "url(", "<b>"}) {
    EXPECT_THAT(html, Not(HasSubstr(absent))) << absent;
  }
}

TEST(ReportTest, BadRecordingsNameTheLine) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::string sample =
      R"({"time":"2026-11-25T16:00:01Z","node":"a","target":"t","state":"holding","targetBytes":1,"residentBytes":1})";
  const std::vector<Case> cases = {
      {"", "r.jsonl is empty"},
      {"\n  \n", "r.jsonl is empty"},
      {sample + "\nnot json\n", "r.jsonl:2: not a JSON object"},
      {sample + "\n[1,2]\n", "r.jsonl:2: not a JSON object"},
      {R"({"node":"a","state":"x","targetBytes":1,"residentBytes":1})", "r.jsonl:1: \"time\" is missing"},
      {R"({"time":"yesterday","node":"a","state":"x","targetBytes":1,"residentBytes":1})",
       "r.jsonl:1: \"time\" is not an RFC 3339 time"},
      {R"({"time":"2026-11-25T16:00:01Z","node":"a","state":"x","targetBytes":1,"residentBytes":-5})",
       "r.jsonl:1: \"residentBytes\" must be a byte count"},
      {R"({"time":"2026-11-25T16:00:01Z","node":"a","state":"x","residentBytes":5})",
       "r.jsonl:1: \"targetBytes\" is missing"},
      {R"({"time":"2026-11-25T16:00:01Z","node":"a","state":7,"targetBytes":1,"residentBytes":1})",
       "r.jsonl:1: \"state\" must be a string"},
      {R"({"time":"2026-11-25T16:00:01Z","node":"a"})", "r.jsonl:1: neither an event"},
      {R"({"time":"2026-11-25T16:00:01Z","state":"x","targetBytes":1,"residentBytes":1})",
       "r.jsonl:1: \"target\" is missing"},
      {R"({"event":"start","time":"2026-11-25T16:00:01Z","node":"a"})", "r.jsonl: no samples"},
  };
  for (const Case& one : cases) {
    EXPECT_THAT(ParseRecording(one.text, "r.jsonl"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(one.message)))
        << one.text;
  }
}

TEST(ReportTest, CommandWritesThePageOrExitsTwo) {
  const std::string dir = getenv("TEST_TMPDIR") != nullptr ? getenv("TEST_TMPDIR") : "/tmp";
  const std::string good = dir + "/good.jsonl", bad = dir + "/bad.jsonl", page = dir + "/r.html";
  std::ofstream(good) << kRecording;
  std::ofstream(bad) << kRecording << "{\"time\": oops\n";
  std::ostringstream out, err;
  EXPECT_EQ(RunReport(good, page, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("wrote " + page));
  EXPECT_THAT(out.str(), HasSubstr("1.5s"));
  std::ifstream written(page);
  std::stringstream html;
  html << written.rdbuf();
  EXPECT_THAT(html.str(), HasSubstr("<tr class=\"node-row\""));

  err.str("");
  EXPECT_EQ(RunReport(bad, page, out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr(bad + ":13: not a JSON object"));
  err.str("");
  EXPECT_EQ(RunReport(dir + "/missing.jsonl", page, out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("cannot read"));
  err.str("");
  EXPECT_EQ(RunReport(good, "", out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("--html"));
  EXPECT_EQ(RunReport(good, "/nonexistent-dir/r.html", out, err), 1);
}

}  // namespace
}  // namespace controller
}  // namespace memload
