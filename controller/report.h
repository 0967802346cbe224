// `memloadctl report FILE --html=OUT.html`: reads a recording (recording.h) and renders a
// self-contained HTML page — inline CSS and inline SVG drawn here, no script, no external
// reference, so it opens anywhere without a network:
//   - per-node resident memory over time (one coloured line per node) against each node's
//     target (dashed), with the events as labelled markers on the timeline;
//   - the cluster total (sum of the nodes' latest samples) against the total target;
//   - the events table and a summary table per node: target, peak resident, time to
//     target (target_reached − start), final state.
// The charts are drawn by the project: no Debian package ships a charting library usable
// offline from C++, and a hand-drawn SVG keeps the page dependency-free.
//
//   absl::StatusOr<Recording> recording = ParseRecording(text, "run.jsonl");
//   std::string html = RenderReportHtml(*recording);
//
// Thread-safety: pure functions, thread-safe.
#ifndef MEMLOAD_CONTROLLER_REPORT_H_
#define MEMLOAD_CONTROLLER_REPORT_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memload {
namespace controller {

struct RecordingSample {
  absl::Time time;
  std::string node;    // Node name (the target when the agent gave none).
  std::string target;  // Agent address: identifies the node.
  std::string state;   // "holding", ...
  uint64_t target_bytes = 0;
  uint64_t payload_bytes = 0;
  uint64_t resident_bytes = 0;
  std::optional<uint64_t> available_bytes;
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

struct Recording {
  std::string plan_id;  // From the "run" line, else the samples.
  std::string kind;     // "retained", ...; "" when unknown.
  std::vector<RecordingSample> samples;  // In file order.
  std::vector<RecordingEvent> events;    // In file order.
};

// Parses JSON Lines. InvalidArgument naming `name` and the line ("run.jsonl:7: ...") for a
// line that is not a JSON object, a missing or mistyped field, a bad time; and for a
// recording with no records or no samples. Blank lines are skipped.
absl::StatusOr<Recording> ParseRecording(absl::string_view text, absl::string_view name);

struct NodeSummary {
  std::string node;
  std::string target;
  uint64_t target_bytes = 0;  // Of the last sample.
  uint64_t peak_resident_bytes = 0;
  std::optional<absl::Duration> time_to_target;  // First target_reached − first start.
  std::string final_state;                       // Of the last sample.
};

// One entry per node, in order of first appearance.
std::vector<NodeSummary> SummarizeRecording(const Recording& recording);

// The whole page.
std::string RenderReportHtml(const Recording& recording);

// The command: reads `path`, writes `html_path`, prints the summary table to `out`.
// Returns 0; 2 for a usage error or a bad recording (the message names the line); 1 when
// the page cannot be written. Messages go to `err`.
int RunReport(const std::string& path, const std::string& html_path, std::ostream& out,
              std::ostream& err);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_REPORT_H_
