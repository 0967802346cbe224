// Output of memloadctl: aligned tables for people, one JSON document per command for
// scripts, and the frame redraw used by `watch` and `run`. Pure formatting: the commands
// gather per-node results (from the fan-out) and map them to the plain structs below.
//
//   std::vector<NodeResult<v1::NodeUsage>> nodes = ...;  // one per target, failed ones too
//   std::cout << (json ? UsageJson(nodes) : FormatUsageTable(nodes));
//
// Tables: upper-case headers, columns two spaces apart, numbers right-aligned, "-" for
// what is unknown, and an ERROR column only when some row has an error. Sizes as FormatSize
// ("1.5 GiB"), rates "12.5 MiB/s", durations "850ms", "1.2s", "2m05s", "1h02m", plan states
// lower case without the prefix ("holding", "lease_expired"), status codes as absl spells
// them ("UNAVAILABLE"). Text that agents send (errors, names) is printed with control
// characters replaced, so one row stays one line and nothing can drive the terminal.
//
// JSON: every command prints one document (pretty enough to read, one node per line):
//   {
//     "command": "usage",          // agents | usage | start | resize | stop | run | ...
//     "ok": false,                 // true iff every node is ok
//     "nodes": [                   // one entry per target, in the order given
//       {"target": "127.0.0.1:7070", "ok": true, "usage": {...NodeUsage...}},
//       {"target": "127.0.0.1:7071", "ok": false,
//        "error": {"code": "UNAVAILABLE", "message": "connection refused"}}
//     ],
//     "summary": {"nodes": 2, "ok": 1, "failed": 1}
//   }
// A node that is not ok always has "error" {"code", "message"}. The payload of an ok node
// is named after what it is: agents "node" (NodeInfo) and "plans" (running plans, when
// known); usage "usage" (NodeUsage); start/resize/stop "plan" (PlanStatus); run "plan"
// (PlanStatus) plus "timeToTarget" and "errors" (see RunJson). Proto parts use protobuf's
// JSON mapping with lowerCamelCase names, every scalar field printed (zeros too), enums by
// name ("PLAN_STATE_HOLDING"), 64-bit integers as strings ("536870912"), durations as
// "1.500s", timestamps as RFC 3339. Envelope counts are JSON numbers.
//
// Thread-safety: all functions are thread-safe; Table is not (one per thread).
#ifndef MEMLOAD_CONTROLLER_OUTPUT_H_
#define MEMLOAD_CONTROLLER_OUTPUT_H_

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "proto/memload.pb.h"

namespace memload {
namespace controller {

// One target's answer: the value, or why there is none.
template <typename T>
struct NodeResult {
  std::string target;  // As the user gave it ("10.0.0.5:7070").
  absl::StatusOr<T> value;
};

// ---------------------------------------------------------------------------------------
// Tables

// A column-aligned text table.
//   Table table({{"NODE"}, {"RESIDENT", Table::kRight}});
//   table.AddRow({"node-a", "1.5 GiB"});
//   std::cout << table.Render();
class Table {
 public:
  enum Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = kLeft;
    bool hide_if_empty = false;  // Left out when no row has text in it.
    // Fitting to a width (Render(max_width)): a column with shrink_to > 0 may be cut down
    // to that many characters (cells end in "…"); columns with drop_order > 0 are left
    // out, highest first, when cutting is not enough.
    int shrink_to = 0;
    int drop_order = 0;
    // Fitting: when the table is too wide with this column, its cells go below the table
    // instead, one "FIRST-CELL: text" line per row that has one (cut at the width, or
    // wrapped onto indented lines with Render(max_width, /*wrap_spilled=*/true)).
    bool spill = false;
  };

  explicit Table(std::vector<Column> columns);

  // Missing cells are blank; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);

  // Header and rows, each line ending in '\n', without trailing spaces. Width counts UTF-8
  // characters (wide characters count one).
  std::string Render() const;
  // The same, no line wider than `max_width` characters (<= 0: no limit): shrinkable
  // columns are cut first (widest first), then droppable ones left out; a line still too
  // wide is cut at the width, ending in "…".
  std::string Render(int max_width, bool wrap_spilled = false) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// Every table of nodes marks each row in a STATUS column, "ok" or "FAILED" (upper case, so
// that a failed row stands out and `grep FAILED` finds it), and lists its rows in one
// order: failed rows first, then by node name (rows whose name is unknown after the named
// ones), then by agent address. JSON keeps the order the targets were given.
std::string StatusCell(bool ok);
// A failed node's row in a table of `columns` (>= 3) columns that starts AGENT, STATUS and
// ends with ERROR: the target, FAILED, "-" in between, the error.
std::vector<std::string> FailedNodeRow(const std::string& target, const absl::Status& status,
                                       size_t columns);
// The sort key of that order: compare keys with <.
struct TableRowKey {
  bool ok;
  bool unnamed;
  std::string node;
  std::string target;
  bool operator<(const TableRowKey& other) const;
};
TableRowKey RowKey(bool ok, absl::string_view node_name, absl::string_view target);

// --no-headers: whether Table::Render prints its header line (default true). Process-wide;
// memloadctl sets it once, before any output.
void SetTableHeaders(bool headers);

// ---------------------------------------------------------------------------------------
// Value formatting

// bytes/s → "12.5 MiB/s" (FormatSize of the whole bytes, "/s"); negative or NaN → "0 B/s".
std::string FormatRate(double bytes_per_sec);
// "850ms", "1.2s" (tenths, truncated), "2m05s", "1h02m", "forever"; negative → "0ms".
std::string FormatShortDuration(absl::Duration duration);
// PLAN_STATE_LEASE_EXPIRED → "lease_expired"; unknown values → "unknown".
std::string PlanStateName(v1::PlanState state);
// "retained", "utilization", "streaming", or "-" when unset.
std::string PlanKindName(const v1::PlanSpec& spec);
// "512 MiB", "80% of total", "50% of available", "90% of cgroup limit", "-".
std::string FormatQuantity(const v1::Quantity& quantity);
// "k=v,k2=v2" in key order; "-" when empty.
std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels);
// A plan's target size; "-" for a streaming plan (it has none).
std::string PlanTarget(const v1::PlanStatus& plan);
// Whether a plan in `state` still runs (holds memory or is about to).
bool PlanIsRunning(v1::PlanState state);
// "CODE: message" (absl's code names).
std::string FormatStatus(const absl::Status& status);

// What a plan's end means for its node: OK while running and for a good outcome; else
// ABORTED (failed: the plan's error), RESOURCE_EXHAUSTED (unexpected OOM kill),
// DEADLINE_EXCEEDED (lease expired). Used for `run`'s per-node verdicts.
absl::Status PlanOutcomeStatus(const v1::PlanStatus& plan);

// ---------------------------------------------------------------------------------------
// Commands

// `agents`: one agent's identity and, when asked, how many plans it runs.
struct AgentInfo {
  v1::NodeInfo info;
  std::optional<int> running_plans;
};

// AGENT NODE REACHABLE VERSION INCARNATION (first 8 chars) LABELS PLANS [ERROR].
std::string FormatAgentsTable(const std::vector<NodeResult<AgentInfo>>& agents);
std::string AgentsJson(const std::vector<NodeResult<AgentInfo>>& agents);

// `usage`: a node table (AGENT NODE TOTAL AVAILABLE CG-LIMIT CG-USAGE PSI10 AGENT-RSS
// PLANS RESIDENT [ERROR]; PLANS counts running plans, RESIDENT is theirs, PSI10 is "some"
// avg10), then, when any node has plans, a blank line and a plan table (NODE PLAN KIND
// STATE TARGET PAYLOAD RESIDENT RATE [ERROR]).
// Columns no node has anything for (cgroup limit and usage, PSI) are left out.
std::string FormatUsageTable(const std::vector<NodeResult<v1::NodeUsage>>& nodes);
// The same, fitted to `width` characters (Table::Render(max_width)).
std::string FormatUsageTable(const std::vector<NodeResult<v1::NodeUsage>>& nodes, int width);
std::string UsageJson(const std::vector<NodeResult<v1::NodeUsage>>& nodes);

// `start`, `resize`, `stop`: AGENT PLAN STATE TARGET PAYLOAD RESIDENT [ERROR].
std::string FormatPlanResultsTable(const std::vector<NodeResult<v1::PlanStatus>>& nodes);
std::string PlanResultsJson(absl::string_view command,
                            const std::vector<NodeResult<v1::PlanStatus>>& nodes);
// The same with more top-level fields (key, JSON value) after "ok".
std::string PlanResultsJson(absl::string_view command,
                            const std::vector<NodeResult<v1::PlanStatus>>& nodes,
                            const std::vector<std::pair<std::string, std::string>>& fields);

// The terminal a live view (watch, run) is drawn on; 0 = not bounded that way.
struct ViewSize {
  int columns = 0;
  int rows = 0;
};

// `run`: what is known about the plan on one node at a moment.
struct RunNode {
  std::string target;
  std::string node_name;               // Empty when unknown.
  std::optional<v1::PlanStatus> plan;  // Latest status; empty until a start answered.
  std::vector<absl::Status> errors;    // Failed calls to this node, oldest first.
};
struct RunView {
  v1::PlanSpec spec;
  absl::Duration elapsed;  // Since the rollout began.
  std::vector<RunNode> nodes;
};

// Whether a node did its part: no failed call, a plan known, and a good outcome.
bool RunNodeOk(const RunNode& node);

// Live progress: a title line, the per-node table (AGENT NODE STATE TARGET RESIDENT
// %TARGET RATE [ERROR]; %TARGET is payload against target, as that is what the plan
// controls; RESIDENT is what the OS measured), a TOTAL row, and for plans with a target a
// progress bar toward the cluster's total target.
std::string FormatRunProgress(const RunView& run);
// The same fitted to `size`. Up to 40 nodes (and when they fit the rows), a row per node;
// beyond, a fleet view: counts by state, the spread of %TARGET across running nodes
// (min/median/p90/max), totals, the progress bar, and only the nodes that need a look
// (failed, capped, then those furthest from their target), at most 20 rows or what the
// terminal holds.
std::string FormatRunProgress(const RunView& run, ViewSize size);
// The end: a verdict line, then AGENT NODE STATE OUTCOME PEAK TIME-TO-TARGET [ERRORS].
std::string FormatRunSummary(const RunView& run);
// The same fitted to `width` characters: when the errors do not fit beside the rows, they
// are listed below the table, wrapped onto indented lines (nothing is cut).
std::string FormatRunSummary(const RunView& run, int width);
// {"command": "run", "ok", "planId", "spec": PlanSpec, "elapsed": "12.5s", "nodes": [
//   {"target", "ok", "node": "<name>", "plan": PlanStatus?, "timeToTarget": "3.2s"?,
//    "errors": [{"code", "message"}...], "error": {...}?}],
//  "summary": {"nodes", "ok", "failed", "reachedTarget", "targetBytes": "N",
//              "peakResidentBytes": "N"}}
// A node's "error" is its last failed call, else PlanOutcomeStatus.
std::string RunJson(const RunView& run);

// `watch`: a frame for a terminal (a title with the time, then FormatUsageTable).
std::string FormatWatchFrame(absl::Time now, const std::vector<NodeResult<v1::NodeUsage>>& nodes);
// The same fitted to `size`: no line wider than its columns, fewer lines than its rows
// (the last row stays free): failed nodes first when not every node fits, and a line
// saying how many were left out. The title counts the nodes and the failed ones.
std::string FormatWatchFrame(absl::Time now, const std::vector<NodeResult<v1::NodeUsage>>& nodes,
                             ViewSize size);
// `watch` when stdout is not a terminal: one line per node per interval, e.g.
// "2026-11-03T14:25:01Z 127.0.0.1:7070 ok node-a total=16 GiB available=9.5 GiB plans=1
//  resident=4 GiB psi10=0.12" or "... 127.0.0.1:7071 FAILED error=UNAVAILABLE: ...".
std::string FormatWatchLine(absl::Time now, const NodeResult<v1::NodeUsage>& node);
// `watch --output=json`: one compact document per node per interval (JSON Lines):
// {"command":"watch","time":"...","target":"...","ok":true,"usage":{...}} or "error".
std::string WatchJsonLine(absl::Time now, const NodeResult<v1::NodeUsage>& node);

// A command that failed before reaching any node (a usage error):
// {"command": "...", "ok": false, "error": {"code", "message"}, "nodes": [], "summary": ...}.
std::string ErrorJson(absl::string_view command, const absl::Status& status);

// A message in the JSON mapping described above, compact, map keys sorted.
std::string ProtoToJson(const google::protobuf::Message& message);
// `text` as a JSON string literal, quotes included. Invalid UTF-8 becomes U+FFFD.
std::string JsonQuote(absl::string_view text);
// [a,b,...] of values already JSON (objects, numbers...); [] when empty.
std::string JsonArray(const std::vector<std::string>& values);
// ["a","b",...]: each text through JsonQuote.
std::string JsonStringArray(const std::vector<std::string>& texts);

// memloadctl's one JSON writer (command output and --record's time series): an object's
// fields in insertion order, values already JSON. Everything untrusted goes through
// JsonQuote or ProtoToJson.
//
//   JsonObject().String("event", "end").Number("nodes", 3).Compact()
//   → {"event":"end","nodes":3}
class JsonObject {
 public:
  JsonObject& Raw(absl::string_view key, std::string json) {
    fields_.emplace_back(std::string(key), std::move(json));
    return *this;
  }
  JsonObject& String(absl::string_view key, absl::string_view text) {
    return Raw(key, JsonQuote(text));
  }
  JsonObject& Bool(absl::string_view key, bool value) { return Raw(key, value ? "true" : "false"); }
  JsonObject& Number(absl::string_view key, int value) {
    return Number(key, static_cast<int64_t>(value));
  }
  JsonObject& Number(absl::string_view key, int64_t value) { return Raw(key, absl::StrCat(value)); }
  JsonObject& Number(absl::string_view key, uint64_t value) {
    return Raw(key, absl::StrCat(value));
  }
  // JSON has no NaN or infinity: they are written as 0.
  JsonObject& Number(absl::string_view key, double value) {
    return Raw(key, std::isfinite(value) ? absl::StrCat(value) : "0");
  }
  // 64-bit byte counts as strings, as the protobuf mapping prints them.
  JsonObject& Bytes(absl::string_view key, uint64_t value) {
    return Raw(key, absl::StrCat("\"", value, "\""));
  }

  // {"a":1,"b":2}; {} when empty.
  std::string Compact() const {
    std::string out = "{";
    for (size_t i = 0; i < fields_.size(); ++i) {
      absl::StrAppend(&out, i == 0 ? "" : ",", JsonQuote(fields_[i].first), ":", fields_[i].second);
    }
    return out + "}";
  }

  // One field per line, two spaces in, and a final newline.
  std::string Pretty() const {
    std::string out = "{\n";
    for (size_t i = 0; i < fields_.size(); ++i) {
      absl::StrAppend(&out, "  ", JsonQuote(fields_[i].first), ": ", fields_[i].second,
                      i + 1 < fields_.size() ? ",\n" : "\n");
    }
    return out + "}\n";
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// ---------------------------------------------------------------------------------------
// Redraw

// The number of lines `frame` occupies (its '\n's; a last line without one counts too).
int FrameLines(absl::string_view frame);
// The rows `frame` occupies on a terminal `columns` wide: a line longer than the terminal
// wraps onto ceil(width / columns) rows (an empty line is one row). columns <= 0: lines.
int FrameRows(absl::string_view frame, int columns);
// `text` cut to at most `width` characters, ending in "…" when cut (UTF-8 aware).
std::string CutToWidth(absl::string_view text, int width);
// Display width of `text` in characters (UTF-8 sequences count one).
int TextWidth(absl::string_view text);
// Escape codes that move the cursor up `lines` lines and clear to the end of the screen,
// so that the next frame overwrites the previous one: "\x1b[<lines>A\x1b[J"; "" for 0.
// Only for terminals: the caller checks isatty(STDOUT_FILENO). Pass the rows the previous
// frame really took (FrameRows with the terminal's width), wrapped lines counted.
std::string ClearFrame(int lines);

}  // namespace controller
}  // namespace memload

#endif  // MEMLOAD_CONTROLLER_OUTPUT_H_
