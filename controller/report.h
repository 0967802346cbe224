// `memloadctl report FILE --html=OUT.html`: reads a recording (recording.h) as a stream and
// renders a self-contained HTML page — inline CSS and inline SVG drawn here, no script, no
// external reference, so it opens anywhere without a network:
//   - the verdict first: nodes ok / failed and memloadctl's exit status (from the
//     recording's "end" line; worked out from the events for older recordings), and every
//     failed node with its error;
//   - resident memory over time against the target, which follows the plan's phases (ramps,
//     holds, a sawtooth's drops to 0), each node's line starting at its start event, event
//     markers on the line they belong to and their labels in a band above the plot, lines
//     told apart by colour, dash pattern and a label at their end. Beyond
//     ReportOptions::detailed_nodes nodes: the distribution across nodes instead (min,
//     median, p90, max band against the target) and, individually, only the nodes that need
//     a look (failed, capped, OOM-killed, never reached the target, slowest to it);
//   - the cluster total against the total target;
//   - a summary row per node (failed ones too, with their error), then the events.
// Memory is bounded by nodes × chart width, not by samples: each node keeps a fixed number
// of time buckets whose width doubles as the recording grows.
// The charts are drawn by the project: no Debian package ships a charting library usable
// offline from C++, and a hand-drawn SVG keeps the page dependency-free.
//
//   ReportBuilder builder("run.jsonl");
//   for each line: RETURN_IF_ERROR(builder.AddLine(line));
//   absl::StatusOr<Report> report = std::move(builder).Finish();
//   std::string html = RenderReportHtml(*report);
//
// Every input is bounded: line length, nodes, events kept (ReportOptions).
//
// Thread-safety: thread-compatible (one builder per thread); the render functions are pure.
#ifndef MEMLOAD_CONTROLLER_REPORT_H_
#define MEMLOAD_CONTROLLER_REPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

struct ReportOptions {
  int buckets = 480;                 // Time buckets per node (the chart's resolution).
  size_t max_line_bytes = 64 << 10;  // A longer line is an error naming it.
  size_t max_nodes = 20000;          // More distinct nodes is an error.
  size_t max_events = 20000;         // Events kept for markers and the table; the rest
                                     // are counted.
  size_t detailed_nodes = 24;        // Up to this many nodes, a line each.
  size_t highlighted_nodes = 12;     // Beyond: at most this many drawn individually.
};

struct RecordingEvent {
  absl::Time time;
  std::string event;  // start, target_reached, capped, stop, oom_killed, lease_expired,
                      // failed, error (others are kept and shown as they are).
  std::string node;
  std::string target;
  std::string state;    // stop: "stopped" or "completed".
  std::string message;  // error, failed, ...: why.
};

// One time bucket of a node's resident bytes.
struct ReportBucket {
  bool set = false;
  bool max_first = false;  // The maximum came before the minimum (draw order).
  uint64_t min = 0, max = 0, last = 0;
  uint64_t target = 0;  // The recorded target at the bucket's last sample.
};

struct NodeReport {
  std::string node;    // Node name (the target when the agent gave none).
  std::string target;  // Agent address: identifies the node.
  size_t samples = 0;
  uint64_t target_bytes = 0;  // Of the first sample with one (what the plan resolved).
  uint64_t last_target_bytes = 0;
  uint64_t peak_resident_bytes = 0;
  std::string final_state;  // Of the last sample, or the result line.
  std::optional<absl::Time> started, reached, ended, first_sample, last_sample;
  std::optional<absl::Duration> time_to_target;  // First target_reached − first start.
  bool capped = false, oom_killed = false, lease_expired = false, plan_failed = false;
  bool call_errors = false;           // An "error" event (a failed call).
  bool oom_expected = false;          // The plan's expect_oom (from the "run" line).
  std::optional<bool> result_ok;      // From the "result" line.
  std::string error;                  // Why it failed (result line, else events).
  std::vector<ReportBucket> buckets;  // ReportOptions::buckets of them.

  bool ok() const;
};

// What the page is made of, bounded by nodes × buckets + kept events.
struct Report {
  std::string name;  // The file.
  std::string plan_id;
  std::string kind;                  // "retained", ...; "" when unknown.
  std::optional<v1::PlanSpec> spec;  // From the "run" line.
  absl::Time begin, end;             // Of the whole recording.
  absl::Duration bucket_width;
  int buckets = 0;
  std::vector<NodeReport> nodes;                 // In order of first appearance.
  std::vector<RecordingEvent> events;            // The first max_events, in file order.
  std::map<std::string, size_t> events_dropped;  // By kind, beyond max_events.
  size_t events_total = 0;
  size_t samples = 0;
  std::optional<int> exit_code;  // From the "end" line.
  ReportOptions options;

  size_t ok_nodes() const;
  bool ok() const;  // Every node ok (and exit 0 when known).
};

// Reads a recording line by line; Finish() hands back the Report.
class ReportBuilder {
 public:
  explicit ReportBuilder(std::string name, ReportOptions options = ReportOptions());
  ~ReportBuilder();
  // One line (without its '\n'). InvalidArgument naming the file and line ("run.jsonl:7:
  // ...") for a line that is not a JSON object, a missing or mistyped field, a bad time, a
  // line longer than max_line_bytes, more than max_nodes nodes. Blank lines are skipped.
  absl::Status AddLine(absl::string_view line);
  // InvalidArgument for a recording with no records or no samples and no nodes.
  absl::StatusOr<Report> Finish() &&;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Parses a whole recording held in memory (tests, small files).
absl::StatusOr<Report> ParseRecording(absl::string_view text, absl::string_view name,
                                      ReportOptions options = ReportOptions());

// The whole page.
std::string RenderReportHtml(const Report& report);

// The command: reads `path` as a stream, writes `html_path`, prints the verdict and the
// summary table to `out`. Returns 0; 2 for a usage error or a bad recording (the message
// names the line); 1 when the page cannot be written. Messages go to `err`.
// `verdict` (when not null) receives the run's verdict and node counts once the recording
// was read (for `report -o json`).
struct ReportVerdict {
  bool ok = false;  // The run's verdict (Report::ok).
  size_t nodes = 0, ok_nodes = 0;
  std::optional<int> exit_code;  // memloadctl run's, from the "end" line.
};
int RunReport(const std::string& path, const std::string& html_path, std::ostream& out,
              std::ostream& err, ReportVerdict* verdict = nullptr);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_REPORT_H_
