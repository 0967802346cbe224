#include "controller/report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "controller/output.h"
#include "controller/recording.h"
#include "core/status_macros.h"
#include "core/size.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace memload {
namespace controller {
namespace {

using Fields = google::protobuf::Map<std::string, google::protobuf::Value>;

// ---- Parsing --------------------------------------------------------------------------

class LineReader {
 public:
  LineReader(absl::string_view name, int line, const Fields& fields)
      : where_(absl::StrCat(name, ":", line, ": ")), fields_(fields) {}

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, what));
  }
  bool Has(const std::string& key) const { return fields_.count(key) > 0; }

  absl::StatusOr<std::string> Text(const std::string& key, bool required) const {
    auto it = fields_.find(key);
    if (it == fields_.end()) {
      if (required) return Error(absl::StrCat("\"", key, "\" is missing"));
      return std::string();
    }
    if (it->second.kind_case() != google::protobuf::Value::kStringValue) {
      return Error(absl::StrCat("\"", key, "\" must be a string"));
    }
    return it->second.string_value();
  }

  // A byte count: a non-negative integral JSON number, or a string of digits.
  absl::StatusOr<std::optional<uint64_t>> Bytes(const std::string& key, bool required) const {
    auto it = fields_.find(key);
    if (it == fields_.end()) {
      if (required) return Error(absl::StrCat("\"", key, "\" is missing"));
      return std::optional<uint64_t>();
    }
    const google::protobuf::Value& value = it->second;
    uint64_t bytes = 0;
    if (value.kind_case() == google::protobuf::Value::kNumberValue && value.number_value() >= 0 &&
        value.number_value() < 1.8e19 && value.number_value() == std::floor(value.number_value())) {
      return std::optional<uint64_t>(static_cast<uint64_t>(value.number_value()));
    }
    if (value.kind_case() == google::protobuf::Value::kStringValue &&
        absl::SimpleAtoi(value.string_value(), &bytes)) {
      return std::optional<uint64_t>(bytes);
    }
    return Error(absl::StrCat("\"", key, "\" must be a byte count (a whole number >= 0)"));
  }

  absl::StatusOr<absl::Time> Time() const {
    absl::StatusOr<std::string> text = Text("time", true);
    if (!text.ok()) return text.status();
    absl::Time time;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, *text, &time, &error)) {
      return Error(absl::StrCat("\"time\" is not an RFC 3339 time: \"", *text, "\""));
    }
    return time;
  }

 private:
  const std::string where_;
  const Fields& fields_;
};

absl::Status ParseLine(const LineReader& line, Recording* recording) {
  MEMLOAD_ASSIGN_OR_RETURN(auto time, line.Time());
  MEMLOAD_ASSIGN_OR_RETURN(auto event, line.Text("event", false));
  MEMLOAD_ASSIGN_OR_RETURN(auto plan_id, line.Text("planId", false));
  if (!plan_id.empty() && recording->plan_id.empty()) recording->plan_id = plan_id;
  if (event == "run") {
    return absl::OkStatus();  // The header: the plan id above; the kind below.
  }
  MEMLOAD_ASSIGN_OR_RETURN(auto target, line.Text("target", !line.Has("node")));
  MEMLOAD_ASSIGN_OR_RETURN(auto node, line.Text("node", !line.Has("target")));
  if (node.empty()) node = target;
  if (target.empty()) target = node;
  if (!event.empty()) {
    RecordingEvent one{time, event, node, target, "", ""};
    MEMLOAD_ASSIGN_OR_RETURN(auto state, line.Text("state", false));
    MEMLOAD_ASSIGN_OR_RETURN(auto message, line.Text("message", false));
    one.state = state;
    one.message = message;
    recording->events.push_back(std::move(one));
    return absl::OkStatus();
  }
  if (!line.Has("residentBytes")) {
    return line.Error("neither an event (\"event\") nor a sample (\"residentBytes\")");
  }
  RecordingSample sample;
  sample.time = time;
  sample.node = node;
  sample.target = target;
  MEMLOAD_ASSIGN_OR_RETURN(auto state, line.Text("state", true));
  MEMLOAD_ASSIGN_OR_RETURN(auto resident, line.Bytes("residentBytes", true));
  MEMLOAD_ASSIGN_OR_RETURN(auto target_bytes, line.Bytes("targetBytes", true));
  MEMLOAD_ASSIGN_OR_RETURN(auto payload, line.Bytes("payloadBytes", false));
  MEMLOAD_ASSIGN_OR_RETURN(auto available, line.Bytes("availableBytes", false));
  sample.state = state;
  sample.resident_bytes = *resident;
  sample.target_bytes = *target_bytes;
  sample.payload_bytes = payload.value_or(0);
  sample.available_bytes = available;
  recording->samples.push_back(std::move(sample));
  return absl::OkStatus();
}

// The plan's kind from the "run" line's spec.
std::string KindOf(const Fields& fields) {
  auto spec = fields.find("spec");
  if (spec == fields.end()) return "";
  for (const char* kind : {"retained", "utilization", "streaming"}) {
    if (spec->second.struct_value().fields().count(kind) > 0) return kind;
  }
  return "";
}

// ---- Drawing --------------------------------------------------------------------------

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                    "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};
// Beyond this many events, markers keep a tooltip but lose their printed label.
constexpr size_t kMaxEventLabels = 40;

std::string Html(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string EventLabel(const RecordingEvent& event) {
  if (event.event == "target_reached") return "target reached";
  if (event.event == "oom_killed") return "OOM killed";
  if (event.event == "lease_expired") return "lease expired";
  if (event.event == "stop" && !event.state.empty()) return event.state;
  return event.event;
}

// A round step near `raw` for byte axes: 1, 2 or 5 × 10^k of a binary unit.
double ByteStep(double raw) {
  double unit = 1;
  while (unit * 1024 <= raw) unit *= 1024;
  for (double nice : {1, 2, 5, 10, 20, 50, 100, 200, 500}) {
    if (nice * unit >= raw) return nice * unit;
  }
  return 1024 * unit;
}

// A round step near `raw` seconds for time axes.
double SecondStep(double raw) {
  for (double nice : {0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                      900.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0, 86400.0}) {
    if (nice >= raw) return nice;
  }
  return 86400 * std::ceil(raw / 86400);
}

// Plot geometry of one chart: time on x, bytes on y.
class Chart {
 public:
  static constexpr double kWidth = 960, kHeight = 360;
  static constexpr double kLeft = 80, kRight = 20, kTop = 16, kBottom = 36;

  Chart(absl::Time begin, absl::Time end, double max_bytes) : begin_(begin) {
    seconds_ = std::max(absl::ToDoubleSeconds(end - begin), 1.0);
    y_step_ = ByteStep(std::max(max_bytes, 1.0) / 4);
    y_max_ = y_step_ * std::ceil(std::max(max_bytes, 1.0) * 1.05 / y_step_);
  }
  double X(absl::Time time) const {
    const double t = std::clamp(absl::ToDoubleSeconds(time - begin_), 0.0, seconds_);
    return kLeft + t / seconds_ * (kWidth - kLeft - kRight);
  }
  double Y(double bytes) const {
    return kTop + (1 - std::min(bytes, y_max_) / y_max_) * (kHeight - kTop - kBottom);
  }
  double bottom() const { return kHeight - kBottom; }

  // Grid lines and tick labels.
  std::string Axes() const {
    std::string svg = "<g class=\"axes\">";
    for (double bytes = 0; bytes <= y_max_ + 1; bytes += y_step_) {
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                            kLeft, Y(bytes), kWidth - kRight, Y(bytes), kLeft - 6, Y(bytes) + 4,
                            Html(FormatSize(static_cast<uint64_t>(bytes))));
    }
    const double step = SecondStep(seconds_ / 8);
    for (double t = 0; t <= seconds_ + 1e-9; t += step) {
      const absl::Time at = begin_ + absl::Seconds(t);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                            X(at), kTop, X(at), bottom(), X(at), bottom() + 16,
                            t == 0 ? "0s" : Html(FormatShortDuration(absl::Seconds(t))));
    }
    return svg + "</g>";
  }

 private:
  absl::Time begin_;
  double seconds_ = 1;
  double y_step_ = 1;
  double y_max_ = 1;
};

std::string Points(const Chart& chart, const std::vector<std::pair<absl::Time, double>>& points) {
  std::string out;
  for (const auto& [time, bytes] : points) {
    absl::StrAppendFormat(&out, "%s%.1f,%.1f", out.empty() ? "" : " ", chart.X(time),
                          chart.Y(bytes));
  }
  return out;
}

std::string SvgOpen(absl::string_view id, absl::string_view label) {
  return absl::StrFormat(
      "<svg class=\"chart\" id=\"%s\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
      "aria-label=\"%s\">",
      id, Chart::kWidth, Chart::kHeight, Html(label));
}

constexpr char kStyle[] = R"(
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.meta { color: #555; }
svg.chart { width: 100%; height: auto; border: 1px solid #ddd; background: #fff; }
svg .axes line { stroke: #eee; } svg .axes text { font-size: 11px; fill: #666; }
svg polyline { fill: none; stroke-width: 2; }
svg polyline.target, svg polyline.total-target { stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .event line { stroke-width: 1; stroke-dasharray: 2 3; opacity: 0.7; }
svg .event text { font-size: 11px; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 16px; }
.swatch { display: inline-block; width: 14px; height: 4px; margin-right: 6px; vertical-align: middle; }
table { border-collapse: collapse; margin-top: 8px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
)";

}  // namespace

absl::StatusOr<Recording> ParseRecording(absl::string_view text, absl::string_view name) {
  Recording recording;
  int number = 0;
  int records = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    ++records;
    google::protobuf::Struct object;
    const auto parsed = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(line.data(), line.size()), &object);
    if (!parsed.ok()) {
      // protobuf's message spans lines (it points at the column): keep one line.
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", number, ": not a JSON object (",
                       absl::StrReplaceAll(parsed.message().as_string(), {{"\n", " "}}), ")"));
    }
    absl::Status status = ParseLine(LineReader(name, number, object.fields()), &recording);
    if (!status.ok()) return status;
    if (recording.kind.empty()) recording.kind = KindOf(object.fields());
  }
  if (records == 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is empty: no records"));
  }
  if (recording.samples.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": no samples (lines with \"residentBytes\"); is it a recording of "
                           "memloadctl run --record?"));
  }
  return recording;
}

std::vector<NodeSummary> SummarizeRecording(const Recording& recording) {
  std::vector<NodeSummary> nodes;
  std::map<std::string, size_t> index;
  for (const RecordingSample& sample : recording.samples) {
    auto [it, added] = index.emplace(sample.target, nodes.size());
    if (added) nodes.push_back(NodeSummary{sample.node, sample.target});
    NodeSummary& node = nodes[it->second];
    node.target_bytes = sample.target_bytes;
    node.peak_resident_bytes = std::max(node.peak_resident_bytes, sample.resident_bytes);
    node.final_state = sample.state;
  }
  std::map<std::string, absl::Time> started, reached;
  for (const RecordingEvent& event : recording.events) {
    if (event.event == "start") started.emplace(event.target, event.time);
    if (event.event == "target_reached") reached.emplace(event.target, event.time);
  }
  for (NodeSummary& node : nodes) {
    if (started.count(node.target) > 0 && reached.count(node.target) > 0) {
      node.time_to_target = reached[node.target] - started[node.target];
    }
  }
  return nodes;
}

std::string RenderReportHtml(const Recording& recording) {
  const std::vector<NodeSummary> summary = SummarizeRecording(recording);
  std::map<std::string, std::string> colour;  // By target.
  for (size_t i = 0; i < summary.size(); ++i) {
    colour[summary[i].target] = kColours[i % (sizeof(kColours) / sizeof(kColours[0]))];
  }
  // Per-node series, and the time range over samples and events.
  std::map<std::string, std::vector<const RecordingSample*>> by_node;
  absl::Time begin = recording.samples.front().time, end = begin;
  double max_bytes = 0;
  for (const RecordingSample& sample : recording.samples) {
    by_node[sample.target].push_back(&sample);
    begin = std::min(begin, sample.time);
    end = std::max(end, sample.time);
    max_bytes = std::max({max_bytes, static_cast<double>(sample.resident_bytes),
                          static_cast<double>(sample.target_bytes)});
  }
  for (const RecordingEvent& event : recording.events) {
    begin = std::min(begin, event.time);
    end = std::max(end, event.time);
  }
  for (auto& [target, samples] : by_node) {
    std::stable_sort(samples.begin(), samples.end(),
                     [](const RecordingSample* a, const RecordingSample* b) { return a->time < b->time; });
  }
  // The cluster: at each sample time, every node's latest sample so far.
  std::vector<std::pair<absl::Time, double>> total, total_target;
  {
    std::vector<const RecordingSample*> ordered;
    for (const RecordingSample& sample : recording.samples) ordered.push_back(&sample);
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const RecordingSample* a, const RecordingSample* b) { return a->time < b->time; });
    std::map<std::string, const RecordingSample*> latest;
    for (size_t i = 0; i < ordered.size(); ++i) {
      latest[ordered[i]->target] = ordered[i];
      if (i + 1 < ordered.size() && ordered[i + 1]->time == ordered[i]->time) continue;
      double resident = 0, target = 0;
      for (const auto& [node, sample] : latest) {
        resident += sample->resident_bytes;
        target += sample->target_bytes;
      }
      total.emplace_back(ordered[i]->time, resident);
      total_target.emplace_back(ordered[i]->time, target);
    }
  }
  double max_total = 0;
  for (size_t i = 0; i < total.size(); ++i) {
    max_total = std::max({max_total, total[i].second, total_target[i].second});
  }

  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>memload run ",
      Html(recording.plan_id), "</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n",
      "<h1>memload run <code>", Html(recording.plan_id), "</code></h1>\n");
  absl::StrAppend(&html, "<p class=\"meta\">", recording.kind.empty() ? "" : Html(recording.kind) + " plan, ",
                  summary.size(), summary.size() == 1 ? " node" : " nodes", ", ",
                  Html(absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", begin, absl::UTCTimeZone())),
                  " for ", Html(FormatShortDuration(end - begin)), "; ", recording.samples.size(),
                  " samples, ", recording.events.size(), " events.</p>\n");

  // Per-node chart.
  Chart chart(begin, end, max_bytes);
  absl::StrAppend(&html, "<h2>Resident memory per node</h2>\n",
                  SvgOpen("per-node", "resident memory per node over time, against the target"),
                  chart.Axes());
  for (const NodeSummary& node : summary) {
    std::vector<std::pair<absl::Time, double>> resident, target;
    for (const RecordingSample* sample : by_node[node.target]) {
      resident.emplace_back(sample->time, sample->resident_bytes);
      target.emplace_back(sample->time, sample->target_bytes);
    }
    absl::StrAppend(&html, "<polyline class=\"target\" data-node=\"", Html(node.node),
                    "\" stroke=\"", colour[node.target], "\" points=\"", Points(chart, target),
                    "\"><title>", Html(node.node), " target</title></polyline>");
    absl::StrAppend(&html, "<polyline class=\"series\" data-node=\"", Html(node.node),
                    "\" stroke=\"", colour[node.target], "\" points=\"", Points(chart, resident),
                    "\"><title>", Html(node.node), " resident</title></polyline>");
  }
  const bool labels = recording.events.size() <= kMaxEventLabels;
  for (size_t i = 0; i < recording.events.size(); ++i) {
    const RecordingEvent& event = recording.events[i];
    const std::string text = absl::StrCat(event.node, ": ", EventLabel(event));
    const std::string stroke = colour.count(event.target) ? colour[event.target] : "#444";
    // The marker sits on the node's line: its latest sample at the event's time.
    double bytes = 0;
    for (const RecordingSample* sample : by_node[event.target]) {
      if (sample->time > event.time) break;
      bytes = sample->resident_bytes;
    }
    const double x = chart.X(event.time);
    absl::StrAppendFormat(
        &html,
        "<g class=\"event\" data-event=\"%s\" data-node=\"%s\"><title>%s %s%s</title>"
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>",
        Html(event.event), Html(event.node), Html(text),
        Html(RecordingTime(event.time)), event.message.empty() ? "" : Html(": " + event.message),
        x, Chart::kTop, x, chart.bottom(), stroke, x, chart.Y(bytes), stroke);
    if (labels) {
      const bool right = x > Chart::kWidth - 200;
      absl::StrAppendFormat(&html, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"%s\">%s</text>",
                            right ? x - 4 : x + 4, Chart::kTop + 12 + (i % 10) * 13,
                            right ? "end" : "start", stroke, Html(text));
    }
    html += "</g>";
  }
  html += "</svg>\n<ul class=\"legend\">";
  for (const NodeSummary& node : summary) {
    absl::StrAppend(&html, "<li><span class=\"swatch\" style=\"background:", colour[node.target],
                    "\"></span>", Html(node.node), "</li>");
  }
  html += "<li>solid: resident, dashed: target</li></ul>\n";

  // Cluster chart.
  Chart cluster(begin, end, max_total);
  absl::StrAppend(&html, "<h2>Cluster total</h2>\n",
                  SvgOpen("cluster", "cluster total resident memory against the total target"),
                  cluster.Axes(), "<polyline class=\"total-target\" stroke=\"#555\" points=\"",
                  Points(cluster, total_target), "\"><title>total target</title></polyline>",
                  "<polyline class=\"total\" stroke=\"#111\" points=\"", Points(cluster, total),
                  "\"><title>total resident</title></polyline>");
  for (const RecordingEvent& event : recording.events) {
    const double x = cluster.X(event.time);
    absl::StrAppendFormat(&html,
                          "<g class=\"event-line\"><title>%s</title><line x1=\"%.1f\" y1=\"%.1f\" "
                          "x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"2 3\"/></g>",
                          Html(absl::StrCat(event.node, ": ", EventLabel(event))), x, Chart::kTop,
                          x, cluster.bottom());
  }
  html += "</svg>\n";

  // Events.
  absl::StrAppend(&html, "<h2>Events</h2>\n<table class=\"events\">\n<tr><th>time</th><th>+</th>"
                         "<th>node</th><th>event</th><th>detail</th></tr>\n");
  for (const RecordingEvent& event : recording.events) {
    absl::StrAppend(&html, "<tr class=\"event-row\"><td>", Html(RecordingTime(event.time)),
                    "</td><td class=\"num\">", Html(FormatShortDuration(event.time - begin)),
                    "</td><td>", Html(event.node), "</td><td>", Html(EventLabel(event)),
                    "</td><td>", Html(event.message), "</td></tr>\n");
  }
  html += "</table>\n";

  // Summary.
  absl::StrAppend(&html, "<h2>Summary</h2>\n<table class=\"summary\">\n<tr><th>node</th>"
                         "<th>agent</th><th>target</th><th>peak resident</th>"
                         "<th>time to target</th><th>final state</th></tr>\n");
  size_t reached = 0;
  for (const NodeSummary& node : summary) {
    reached += node.time_to_target.has_value() ? 1 : 0;
    absl::StrAppend(
        &html, "<tr class=\"node-row\" data-node=\"", Html(node.node), "\"><td>", Html(node.node),
        "</td><td>", Html(node.target), "</td><td class=\"num\">", Html(FormatSize(node.target_bytes)),
        "</td><td class=\"num\">", Html(FormatSize(node.peak_resident_bytes)),
        "</td><td class=\"num\">",
        node.time_to_target ? Html(FormatShortDuration(*node.time_to_target)) : "-", "</td><td>",
        Html(node.final_state), "</td></tr>\n");
  }
  double peak_total = 0;
  for (const auto& [time, bytes] : total) peak_total = std::max(peak_total, bytes);
  absl::StrAppend(&html, "<tr class=\"total-row\"><td>cluster</td><td>", reached, " of ",
                  summary.size(), " reached the target</td><td></td><td class=\"num\">",
                  Html(FormatSize(static_cast<uint64_t>(peak_total))),
                  "</td><td></td><td></td></tr>\n</table>\n</body>\n</html>\n");
  return html;
}

int RunReport(const std::string& path, const std::string& html_path, std::ostream& out,
              std::ostream& err) {
  if (path.empty() || html_path.empty()) {
    err << "memloadctl report: usage: memloadctl report FILE --html=OUT.html\n";
    return 2;
  }
  std::ifstream file(path);
  if (!file) {
    err << "memloadctl report: cannot read " << path << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  std::stringstream text;
  text << file.rdbuf();
  absl::StatusOr<Recording> recording = ParseRecording(text.str(), path);
  if (!recording.ok()) {
    err << "memloadctl report: " << recording.status().message() << "\n";
    return 2;
  }
  std::ofstream page(html_path, std::ios::out | std::ios::trunc);
  page << RenderReportHtml(*recording);
  page.close();
  if (!page) {
    err << "memloadctl report: cannot write " << html_path << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  Table table({{"NODE"}, {"AGENT"}, {"TARGET", Table::kRight}, {"PEAK", Table::kRight},
               {"TIME-TO-TARGET", Table::kRight}, {"FINAL"}});
  for (const NodeSummary& node : SummarizeRecording(*recording)) {
    table.AddRow({node.node, node.target, FormatSize(node.target_bytes),
                  FormatSize(node.peak_resident_bytes),
                  node.time_to_target ? FormatShortDuration(*node.time_to_target) : "-",
                  node.final_state});
  }
  out << table.Render() << "wrote " << html_path << ": " << recording->samples.size()
      << " samples, " << recording->events.size() << " events\n";
  return 0;
}

}  // namespace controller
}  // namespace memload
