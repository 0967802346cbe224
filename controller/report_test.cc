#include "controller/report.h"

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/testing/status_matchers.h"
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

// How often each needle must occur in `text`.
void ExpectCounts(const std::string& text, const std::vector<std::pair<std::string, int>>& counts) {
  for (const auto& [needle, count] : counts) EXPECT_EQ(Count(text, needle), count) << needle;
}

// Two nodes: "a" reaches its 64 MiB target after 1.5 s and is stopped; "<b>" (a name that
// needs escaping) is OOM-killed.
constexpr char kRecording[] =
    R"({"event":"run","time":"2026-11-25T16:00:00.000Z","planId":"drill","spec":{"planId":"drill","retained":{}},"targets":["127.0.0.1:7070","127.0.0.1:7071"]}
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
  absl::StatusOr<Report> report = ParseRecording(kRecording, "run.jsonl");
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->plan_id, "drill");
  EXPECT_EQ(report->kind, "retained");
  EXPECT_EQ(report->samples, 5u);
  EXPECT_EQ(report->events.size(), 5u);
  const std::vector<NodeReport>& nodes = report->nodes;
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].node, "a");
  EXPECT_EQ(nodes[0].peak_resident_bytes, 64u << 20);
  EXPECT_EQ(nodes[0].time_to_target, absl::Milliseconds(1500));
  EXPECT_EQ(nodes[0].final_state, "stopped");
  EXPECT_TRUE(nodes[0].ok());
  EXPECT_EQ(nodes[1].node, "<b>");
  EXPECT_EQ(nodes[1].peak_resident_bytes, 16u << 20);
  EXPECT_FALSE(nodes[1].time_to_target.has_value());
  EXPECT_EQ(nodes[1].final_state, "oom_killed");
  EXPECT_FALSE(nodes[1].ok());
  EXPECT_EQ(nodes[1].error, "the kernel's OOM killer killed the worker");
  EXPECT_FALSE(report->exit_code.has_value());  // No "end" line.
}

TEST(ReportTest, HtmlGivesTheVerdictFirstAndEveryNode) {
  absl::StatusOr<Report> report = ParseRecording(kRecording, "run.jsonl");
  ASSERT_THAT(report, IsOk());
  const std::string html = RenderReportHtml(*report);
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  // The verdict comes before anything else in the body.
  const size_t verdict = html.find("<div class=\"verdict failed\" id=\"verdict\"");
  ASSERT_NE(verdict, std::string::npos);
  EXPECT_LT(verdict, html.find("<h1>"));
  EXPECT_LT(verdict, html.find("<svg"));
  EXPECT_THAT(html, HasSubstr("FAILED: 1 of 2 nodes ok, 1 failed; exit status unknown"));
  EXPECT_THAT(html, HasSubstr("<li data-node=\"&lt;b&gt;\"><b>&lt;b&gt;</b> (127.0.0.1:7071): "
                              "the kernel&#39;s OOM killer killed the worker</li>"));
  // One resident line and one target line per node, the cluster's two lines.
  ExpectCounts(html, {{"<polyline class=\"series\"", 2},
                      {"<polyline class=\"series\" data-node=\"a\"", 1},
                      {"<polyline class=\"series\" data-node=\"&lt;b&gt;\"", 1},
                      {"<polyline class=\"target\"", 2},
                      {"<polyline class=\"total\"", 1},
                      {"<polyline class=\"total-target\"", 1},
                      {"<text class=\"line-label\"", 2}});
  // Every event is a labelled marker.
  EXPECT_EQ(Count(html, "<g class=\"event\""), 5);
  for (const char* label : {">a: start</text>", ">a: target reached</text>", ">a: stopped</text>",
                            ">&lt;b&gt;: start</text>", ">&lt;b&gt;: OOM killed</text>"}) {
    EXPECT_EQ(Count(html, label), 1) << label;
  }
  EXPECT_THAT(html, HasSubstr("data-event=\"oom_killed\""));
  // The summary: a row per node, the failed one first with its error.
  EXPECT_EQ(Count(html, "<tr class=\"node-row"), 2);
  EXPECT_LT(html.find("<tr class=\"node-row failed\" data-node=\"&lt;b&gt;\""),
            html.find("<tr class=\"node-row\" data-node=\"a\""));
  EXPECT_THAT(html, HasSubstr("<td class=\"num\">1.5s</td><td>stopped</td>"));
  EXPECT_THAT(html, HasSubstr("1 of 2 reached the target"));
  // Self-contained: nothing to load, no script, user text escaped.
  for (const char* absent :
       {"http://", "https://", "<script", "src=", "href=", "@import", "url(", "<b><"}) {
    EXPECT_THAT(html, Not(HasSubstr(absent))) << absent;
  }
}

// The target line follows the plan's phases: a sawtooth (ramp to 64 MiB over 2 s, drop to
// 0, three times) draws its drops to 0 even though no sample caught the target at 0.
TEST(ReportTest, TargetLineFollowsThePhases) {
  std::string text =
      R"({"event":"run","time":"2026-11-25T16:00:00.000Z","planId":"saw","spec":{"planId":"saw","retained":{"phases":[{"target":{"bytes":"67108864"},"rampDuration":"2s"},{"target":{"bytes":"0"}}],"repeat":3}},"targets":["n:1"]})"
      "\n"
      R"({"event":"start","time":"2026-11-25T16:00:00.000Z","node":"n","target":"n:1","planId":"saw"})"
      "\n";
  for (int i = 1; i <= 6; ++i) {
    absl::StrAppend(
        &text, R"({"time":"2026-11-25T16:00:0)", i,
        R"(.000Z","node":"n","target":"n:1","planId":"saw","state":"ramping","targetBytes":67108864,"residentBytes":)",
        (i % 2) * 33554432, "}\n");
  }
  absl::StrAppend(
      &text,
      R"({"event":"end","time":"2026-11-25T16:00:06.000Z","planId":"saw","exitCode":0,"nodes":1,"ok":1,"failed":0})",
      "\n");
  absl::StatusOr<Report> report = ParseRecording(text, "saw.jsonl");
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->exit_code, 0);
  const std::string html = RenderReportHtml(*report);
  const size_t at = html.find("<polyline class=\"target\"");
  ASSERT_NE(at, std::string::npos);
  const std::string points = html.substr(at, html.find("</polyline>", at) - at);
  // y of 0 bytes is the plot's bottom: the line comes back to it after each of 3 ramps.
  const std::string bottom = absl::StrFormat(",%.1f", 12 + 6 * 16.0 + 280);
  EXPECT_GE(Count(points, bottom), 4) << points;  // The start and three drops.
  EXPECT_THAT(html, HasSubstr("OK: 1 of 1 node ok; memloadctl run exited 0"));
}

// Beyond a few dozen nodes: the distribution across nodes, and only the outliers one by one.
TEST(ReportTest, FleetDrawsTheDistributionAndTheOutliers) {
  std::string text =
      R"({"event":"run","time":"2026-11-25T16:00:00.000Z","planId":"fleet","spec":{"planId":"fleet","retained":{"phases":[{"target":{"bytes":"1048576"},"holdForever":true}]}}})"
      "\n";
  for (int second = 0; second < 20; ++second) {
    for (int node = 0; node < 200; ++node) {
      if (second == 0) {
        absl::StrAppend(&text, R"({"event":"start","time":"2026-11-25T16:00:00.000Z","node":"n)",
                        node, R"(","target":"t)", node, "\"}\n");
      }
      const int resident = node == 7 ? 1000 : 1048576;  // n7 never gets there.
      absl::StrAppend(
          &text,
          absl::StrFormat(
              R"({"time":"2026-11-25T16:00:%02d.000Z","node":"n%d","target":"t%d","state":"holding","targetBytes":1048576,"residentBytes":%d})",
              second, node, node, resident),
          "\n");
      if (second == 1 && node != 7) {
        absl::StrAppend(&text,
                        R"({"event":"target_reached","time":"2026-11-25T16:00:01.000Z","node":"n)",
                        node, R"(","target":"t)", node, "\"}\n");
      }
    }
  }
  absl::StrAppend(
      &text,
      R"({"event":"error","time":"2026-11-25T16:00:05.000Z","node":"n9","target":"t9","message":"UNAVAILABLE: gone"})",
      "\n");
  absl::StatusOr<Report> report = ParseRecording(text, "fleet.jsonl");
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->nodes.size(), 200u);
  const std::string html = RenderReportHtml(*report);
  // n9 failed, n7 never reached its target: drawn; with the three slowest, 5 lines at most.
  ExpectCounts(html, {{"<polygon class=\"band\"", 1},
                      {"<polygon class=\"band-inner\"", 1},
                      {"<polyline class=\"median\"", 1},
                      {"<polyline class=\"series\" data-node=\"n9\"", 1},
                      {"<polyline class=\"series\" data-node=\"n7\"", 1}});
  EXPECT_LE(Count(html, "<polyline class=\"series\""), 5);
  EXPECT_THAT(html, HasSubstr("n7: never reached the target"));
  EXPECT_THAT(html, HasSubstr("FAILED: 199 of 200 nodes ok, 1 failed"));
  // Every node has its summary row, in a table that waits in a closed <details> (the
  // browser lays it out only when opened); the nodes that need a look have a table of their
  // own, failed first; the events wait in a <details> too.
  EXPECT_EQ(Count(html, "<tr class=\"node-row"), 200);
  const size_t all_nodes = html.find("<details class=\"all-nodes\"><summary>Every node (200: ");
  ASSERT_NE(all_nodes, std::string::npos);
  EXPECT_LT(all_nodes, html.find("<tr class=\"node-row"));
  EXPECT_LT(html.find("<tr class=\"node-row"), html.find("</details>", all_nodes));
  const size_t look = html.find("<table class=\"summary look\">");
  ASSERT_NE(look, std::string::npos);
  EXPECT_LT(look, all_nodes);
  EXPECT_EQ(Count(html, "<tr class=\"look-row"), 2);  // n9 failed, n7 never reached it.
  EXPECT_EQ(html.find("<tr class=\"look-row failed\" data-node=\"n9\""),
            html.find("<tr class=\"look-row"));
  EXPECT_NE(html.find("<details class=\"events\">"), std::string::npos);
  EXPECT_EQ(Count(html, "<details"), 2);
  EXPECT_EQ(Count(html, "</details>"), 2);
  // Events listed are bounded; the rest counted.
  EXPECT_LE(Count(html, "<tr class=\"event-row\""), 300);
  EXPECT_THAT(html, HasSubstr("more events not listed"));
}

TEST(ReportTest, InputsAreBounded) {
  ReportOptions options;
  options.max_line_bytes = 200;
  options.max_nodes = 2;
  ReportBuilder builder("b.jsonl", options);
  EXPECT_THAT(builder.AddLine(std::string(201, ' ')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("b.jsonl:1: line longer than 200 bytes")));
  ReportBuilder nodes("n.jsonl", options);
  for (int i = 0; i < 2; ++i) {
    ASSERT_THAT(
        nodes.AddLine(absl::StrCat(R"({"time":"2026-11-25T16:00:01.000Z","node":"a","target":")", i,
                                   R"(","state":"x","targetBytes":1,"residentBytes":1})")),
        IsOk());
  }
  EXPECT_THAT(
      nodes.AddLine(
          R"({"time":"2026-11-25T16:00:01.000Z","node":"a","target":"3","state":"x","targetBytes":1,"residentBytes":1})"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n.jsonl:3: more than 2 nodes")));
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
      {R"({"node":"a","state":"x","targetBytes":1,"residentBytes":1})",
       "r.jsonl:1: \"time\" is missing"},
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
      {"{\"time\":\"2026-11-25T16:00:01Z\",\"node\":\"a\x01\"}", "r.jsonl:1: not a JSON object"},
      {R"({"time":"2026-11-25T16:00:01Z","node":"a"} extra)", "r.jsonl:1: not a JSON object"},
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
  EXPECT_THAT(html.str(), HasSubstr("<tr class=\"node-row"));
  EXPECT_THAT(out.str(), HasSubstr("FAILED: 1 of 2 nodes ok, 1 failed"));

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
