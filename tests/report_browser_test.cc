// The report of a real run — two agents and one target nobody answers on — checked for its
// verdict on the terminal and in the page, then drawn by a real browser (Debian's headless
// Chromium) at two widths. What is drawn is asserted through the DOM after layout: the
// test appends a script to a copy of the page that measures the laid-out elements
// (getBoundingClientRect, SVG getBBox) and writes what it found into the document, which
// `chromium --dump-dom` prints. No pixels are compared.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
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

constexpr char kChromium[] = "/usr/bin/chromium";

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Measures the page once laid out; the findings go into <pre id="layout-check"> as JSON.
constexpr char kLayoutCheck[] = R"(<pre id="layout-check"></pre><script>
(function () {
  const out = {};
  const body = document.body.getBoundingClientRect();
  out.innerWidth = window.innerWidth;
  out.scrollWidth = document.documentElement.scrollWidth;
  const verdict = document.getElementById('verdict');
  const chart = document.getElementById('per-node');
  out.verdictText = verdict.textContent;
  out.verdictFirst = document.body.firstElementChild === verdict;
  out.verdictAboveChart = verdict.getBoundingClientRect().bottom <= chart.getBoundingClientRect().top;
  out.verdictHeight = verdict.getBoundingClientRect().height;
  out.failedListed = document.querySelectorAll('#failed-nodes li').length;
  // Event labels sit in the band above the plot, so no line of the plot crosses them, and
  // they do not overlap each other.
  const plotTop = Number(chart.dataset.plotTop);
  const labels = Array.from(chart.querySelectorAll('text.event-label')).map(t => t.getBBox());
  out.labels = labels.length;
  out.labelsInPlot = labels.filter(b => b.y + b.height > plotTop).length;
  let overlaps = 0;
  for (let i = 0; i < labels.length; ++i) for (let j = i + 1; j < labels.length; ++j) {
    const a = labels[i], b = labels[j];
    if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) ++overlaps;
  }
  out.labelOverlaps = overlaps;
  // Each event's dot lies on its node's resident line.
  const series = {};
  for (const line of chart.querySelectorAll('polyline.series')) {
    series[line.dataset.node] = Array.from(line.points).map(p => [p.x, p.y]);
  }
  let markers = 0, off = 0;
  for (const g of chart.querySelectorAll('g.event')) {
    const dot = g.querySelector('circle');
    const x = Number(dot.getAttribute('cx')), y = Number(dot.getAttribute('cy'));
    const points = series[g.dataset.node] || [];
    let best = 1e9;
    for (let k = 0; k + 1 < points.length; ++k) {
      const [x1, y1] = points[k], [x2, y2] = points[k + 1];
      const dx = x2 - x1, dy = y2 - y1, len = dx * dx + dy * dy;
      const t = len === 0 ? 0 : Math.max(0, Math.min(1, ((x - x1) * dx + (y - y1) * dy) / len));
      best = Math.min(best, Math.hypot(x - (x1 + t * dx), y - (y1 + t * dy)));
    }
    if (points.length === 1) best = Math.hypot(x - points[0][0], y - points[0][1]);
    ++markers;
    if (best > 3) ++off;
  }
  out.markers = markers;
  out.markersOffTheirLine = off;
  // Lines told apart: no two series share colour and dash pattern.
  const styles = new Set(Array.from(chart.querySelectorAll('polyline.series')).map(
      l => l.getAttribute('stroke') + '/' + (l.getAttribute('stroke-dasharray') || '')));
  out.series = chart.querySelectorAll('polyline.series').length;
  out.distinctStyles = styles.size;
  out.lineLabels = chart.querySelectorAll('text.line-label').length;
  // Each line starts at its node's start event (x of the first point = x of the start marker).
  let starts = 0, startsOff = 0;
  for (const g of chart.querySelectorAll('g.event[data-event="start"]')) {
    const points = series[g.dataset.node];
    if (!points) continue;
    ++starts;
    if (Math.abs(points[0][0] - Number(g.querySelector('circle').getAttribute('cx'))) > 1) ++startsOff;
  }
  out.starts = starts;
  out.startsOff = startsOff;
  // Timestamps on one line: the text of every time cell lays out as one line box.
  out.timeCells = document.querySelectorAll('td.time').length;
  out.wrappedTimes = Array.from(document.querySelectorAll('td.time')).filter(td => {
    const range = document.createRange();
    range.selectNodeContents(td);
    const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
    return tops.size > 1;
  }).length;
  out.summaryRows = document.querySelectorAll('tr.node-row').length;
  out.failedRows = document.querySelectorAll('tr.node-row.failed').length;
  out.failedRowText = Array.from(document.querySelectorAll('tr.node-row.failed')).map(r => r.textContent).join('|');
  out.renderedMs = performance.now();
  document.getElementById('layout-check').textContent = JSON.stringify(out);
})();
</script>)";

struct Layout {
  google::protobuf::Struct values;
  double Number(const std::string& key) const {
    auto it = values.fields().find(key);
    return it == values.fields().end() ? -1 : it->second.number_value();
  }
  bool Bool(const std::string& key) const {
    auto it = values.fields().find(key);
    return it != values.fields().end() && it->second.bool_value();
  }
  std::string Text(const std::string& key) const {
    auto it = values.fields().find(key);
    return it == values.fields().end() ? "" : it->second.string_value();
  }
};

// Lays `html` out in headless Chromium `width` pixels wide; the layout check's findings.
absl::StatusOr<Layout> LayOut(const std::string& html, int width, const std::string& dir) {
  const std::string page = absl::StrCat(dir, "/checked-", width, ".html");
  std::string checked = html;
  const size_t end = checked.rfind("</body>");
  if (end == std::string::npos) return absl::InternalError("no </body> in the page");
  checked.insert(end, kLayoutCheck);
  std::ofstream(page) << checked;
  CommandResult dumped =
      RunCommand({kChromium, "--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", absl::StrCat("--user-data-dir=", dir, "/chromium-", width),
                  absl::StrCat("--window-size=", width, ",900"), "--dump-dom", "file://" + page},
                 absl::Seconds(90));
  if (dumped.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("chromium exited ", dumped.exit_code, ": ", dumped.err.substr(0, 2000)));
  }
  const std::string open = "<pre id=\"layout-check\">";
  const size_t at = dumped.out.find(open);
  if (at == std::string::npos) return absl::InternalError("no layout check in the DOM");
  const size_t close = dumped.out.find("</pre>", at);
  std::string json = dumped.out.substr(at + open.size(), close - at - open.size());
  json = absl::StrReplaceAll(json, {{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}});
  Layout layout;
  if (!google::protobuf::util::JsonStringToMessage(json, &layout.values).ok()) {
    return absl::InternalError("layout check is not JSON: " + json);
  }
  return layout;
}

TEST(ReportBrowserTest, FailedNodeVerdictFromARealRunDrawnByChromium) {
  const std::string dir = TestTempDir();
  absl::StatusOr<LocalAgents> started = StartLocalAgents(2, "browser");
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<Subprocess>& agents = started->processes;
  std::vector<std::string> addresses = started->addresses;
  addresses.push_back("127.0.0.1:1");  // Nobody there: a failed node.

  // A sawtooth: ramp to 16 MiB over 600 ms, drop to 0, three times; it ends by itself. The
  // failed node is refused at once; the per-call timeout only has to let the live agents
  // answer (2 s did not under TSan on a loaded machine: browser-1 DEADLINE_EXCEEDED).
  const std::string recording = dir + "/browser.jsonl";
  CommandResult run = RunCommand(
      {CtlBinary(), "run", "--targets=" + absl::StrJoin(addresses, ","), "--kind=retained",
       "--target=16MiB", "--ramp=600ms", "--repeat=3", "--interval=200ms", "--timeout=20s",
       "--retries=0", "--plan-id=browser", "--record=" + recording},
      absl::Seconds(60));
  ASSERT_EQ(run.exit_code, 1) << run.out << run.err;

  const std::string page = dir + "/browser.html";
  CommandResult report =
      RunCommand({CtlBinary(), "report", recording, "--html=" + page}, absl::Seconds(30));
  ASSERT_EQ(report.exit_code, 0) << report.out << report.err;
  // The terminal: the verdict first, then every node, the failed one first with its error.
  EXPECT_THAT(report.out, ::testing::StartsWith(
                              "FAILED: 2 of 3 nodes ok, 1 failed; memloadctl run exited 1\n"));
  EXPECT_THAT(report.out,
              ::testing::ContainsRegex("127.0.0.1:1 +127.0.0.1:1 +FAILED .*UNAVAILABLE"));
  EXPECT_THAT(report.out, HasSubstr("browser-1"));
  EXPECT_THAT(report.out, HasSubstr("browser-2"));
  const std::string html = ReadFile(page);
  EXPECT_THAT(html, HasSubstr("FAILED: 2 of 3 nodes ok, 1 failed; memloadctl run exited 1"));

  for (Subprocess& agent : agents) agent.Signal(SIGTERM);

  if (access(kChromium, X_OK) != 0)
    GTEST_SKIP() << "chromium is not installed (bazel/install_deps.sh)";
  for (int width : {1280, 600}) {
    SCOPED_TRACE(absl::StrCat("width ", width));
    absl::StatusOr<Layout> layout = LayOut(html, width, dir);
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_THAT(layout->Text("verdictText"), HasSubstr("FAILED: 2 of 3 nodes ok, 1 failed"));
    EXPECT_TRUE(layout->Bool("verdictFirst"));
    EXPECT_TRUE(layout->Bool("verdictAboveChart"));
    EXPECT_EQ(layout->Number("failedListed"), 1);
    EXPECT_EQ(layout->Number("summaryRows"), 3);
    EXPECT_EQ(layout->Number("failedRows"), 1);
    EXPECT_THAT(layout->Text("failedRowText"), HasSubstr("UNAVAILABLE"));
    // Two lines (the unreachable node has none), told apart, each labelled at its end.
    EXPECT_EQ(layout->Number("series"), 2);
    EXPECT_EQ(layout->Number("distinctStyles"), 2);
    EXPECT_EQ(layout->Number("lineLabels"), 2);
    EXPECT_EQ(layout->Number("starts"), 2);
    EXPECT_EQ(layout->Number("startsOff"), 0);
    // Markers on their lines; labels above the plot and apart from each other.
    EXPECT_GE(layout->Number("markers"), 4);
    EXPECT_EQ(layout->Number("markersOffTheirLine"), 0);
    EXPECT_GE(layout->Number("labels"), 1);
    EXPECT_EQ(layout->Number("labelsInPlot"), 0);
    EXPECT_EQ(layout->Number("labelOverlaps"), 0);
    // Times on one line each; nothing wider than the window.
    EXPECT_GE(layout->Number("timeCells"), 5);
    EXPECT_EQ(layout->Number("wrappedTimes"), 0);
    EXPECT_LE(layout->Number("scrollWidth"), layout->Number("innerWidth"));
  }
}

}  // namespace
}  // namespace testing
}  // namespace memload
