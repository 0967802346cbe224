#include "controller/output.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/size.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "proto/plan_kind.h"
#include "proto/proto_time.h"

namespace memload {
namespace controller {
namespace {

// --- Text helpers.

bool ValidContinuation(absl::string_view text, size_t at) {
  return at < text.size() && (static_cast<unsigned char>(text[at]) & 0xc0) == 0x80;
}

// Length of the well-formed UTF-8 sequence at `at`, or 0 (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(absl::string_view text, size_t at) {
  const unsigned char lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xbf;  // Range of the second byte.
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (at + 1 >= text.size()) return 0;
  const unsigned char second = static_cast<unsigned char>(text[at + 1]);
  if (second < low || second > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (!ValidContinuation(text, at + i)) return 0;
  }
  return length;
}

// One row per line, and no agent-supplied byte may move the cursor or recolour the
// terminal: whitespace controls become spaces, other controls and invalid UTF-8 '?'.
std::string SanitizeCell(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t length = Utf8SequenceLength(text, i);
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (length == 0) {
      out += '?';
      ++i;
    } else if (length > 1) {
      out.append(text.data() + i, length);
      i += length;
    } else {
      out += c == '\n' || c == '\r' || c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : c;
      ++i;
    }
  }
  return out;
}

size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++width;  // Not a continuation byte.
  }
  return width;
}

std::string OrDash(absl::string_view text) { return text.empty() ? "-" : std::string(text); }

// floor(part * 100 / whole), exact for any uint64 values.
uint64_t PercentFloor(uint64_t part, uint64_t whole) {
  if (whole == 0) return 0;
  return static_cast<uint64_t>(static_cast<unsigned __int128>(part) * 100 / whole);
}

std::string Percent(uint64_t part, uint64_t whole) {
  return absl::StrCat(PercentFloor(part, whole), "%");
}

int RunningPlans(const v1::NodeUsage& usage) {
  int running = 0;
  for (const v1::PlanStatus& plan : usage.plans()) running += PlanIsRunning(plan.state());
  return running;
}

std::optional<absl::Duration> TimeToTarget(const v1::PlanStatus& plan) {
  if (!plan.has_started() || !plan.has_target_reached()) return std::nullopt;
  return std::max(absl::ZeroDuration(),
                  FromProtoTimestamp(plan.target_reached()) - FromProtoTimestamp(plan.started()));
}

// --- JSON helpers. Everything untrusted goes through JsonQuote or ProtoToJson.

// An array inside a Pretty() object, one element per line.
std::string ArrayOfLines(const std::vector<std::string>& elements) {
  if (elements.empty()) return "[]";
  return absl::StrCat("[\n    ", absl::StrJoin(elements, ",\n    "), "\n  ]");
}

std::string ErrorJsonObject(const absl::Status& status) {
  return JsonObject()
      .String("code", absl::StatusCodeToString(status.code()))
      .String("message", status.message())
      .Compact();
}

std::string DurationJson(absl::Duration duration) {
  google::protobuf::Duration proto;
  ToProtoDuration(duration, &proto);
  return ProtoToJson(proto);
}

std::string TimeText(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// The documented envelope: command, ok, [error], extras, nodes, summary.
class Envelope {
 public:
  explicit Envelope(absl::string_view command) : command_(command) {}

  void Field(absl::string_view key, std::string json) {
    extras_.emplace_back(std::string(key), std::move(json));
  }
  void SummaryField(absl::string_view key, std::string json) {
    summary_extras_.emplace_back(std::string(key), std::move(json));
  }
  void Fail(const absl::Status& status) { error_ = status; }

  // `entry` starts with target and ok; the payload or error follows.
  void Node(bool ok, const JsonObject& entry) {
    nodes_.push_back(entry.Compact());
    ok ? ++ok_ : ++failed_;
  }

  std::string Render() const {
    JsonObject summary;
    summary.Number("nodes", ok_ + failed_).Number("ok", ok_).Number("failed", failed_);
    for (const auto& [key, json] : summary_extras_) summary.Raw(key, json);
    JsonObject document;
    document.String("command", command_).Bool("ok", failed_ == 0 && error_.ok());
    if (!error_.ok()) document.Raw("error", ErrorJsonObject(error_));
    for (const auto& [key, json] : extras_) document.Raw(key, json);
    document.Raw("nodes", ArrayOfLines(nodes_)).Raw("summary", summary.Compact());
    return document.Pretty();
  }

 private:
  std::string command_;
  absl::Status error_;
  std::vector<std::pair<std::string, std::string>> extras_;
  std::vector<std::pair<std::string, std::string>> summary_extras_;
  std::vector<std::string> nodes_;
  int ok_ = 0;
  int failed_ = 0;
};

JsonObject NodeEntry(absl::string_view target, bool ok) {
  JsonObject entry;
  entry.String("target", target).Bool("ok", ok);
  return entry;
}

template <typename T, typename Payload>
std::string NodesJson(absl::string_view command, const std::vector<NodeResult<T>>& nodes,
                      Payload payload) {
  Envelope envelope(command);
  for (const NodeResult<T>& node : nodes) {
    JsonObject entry = NodeEntry(node.target, node.value.ok());
    if (node.value.ok()) {
      payload(*node.value, entry);
    } else {
      entry.Raw("error", ErrorJsonObject(node.value.status()));
    }
    envelope.Node(node.value.ok(), entry);
  }
  return envelope.Render();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Table

namespace {
std::atomic<bool> table_headers{true};
}  // namespace

void SetTableHeaders(bool headers) { table_headers.store(headers, std::memory_order_relaxed); }

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (std::string& cell : cells) cell = SanitizeCell(cell);
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const { return Render(0); }

std::string Table::Render(int max_width, bool wrap_spilled) const {
  std::vector<size_t> visible;
  std::vector<size_t> widths(columns_.size(), 0);
  for (size_t c = 0; c < columns_.size(); ++c) {
    bool any = false;
    widths[c] = DisplayWidth(columns_[c].title);
    for (const auto& row : rows_) {
      any = any || !row[c].empty();
      widths[c] = std::max(widths[c], DisplayWidth(row[c]));
    }
    if (any || !columns_[c].hide_if_empty) visible.push_back(c);
  }
  auto total = [&] {
    size_t sum = visible.empty() ? 0 : 2 * (visible.size() - 1);
    for (size_t c : visible) sum += widths[c];
    return sum;
  };
  const size_t limit = max_width > 0 ? static_cast<size_t>(max_width) : 0;
  const std::vector<size_t> natural = widths;
  // Cut the widest shrinkable column, a character at a time (widths are small).
  auto shrink = [&] {
    widths = natural;
    while (total() > limit) {
      size_t widest = columns_.size();
      for (size_t c : visible) {
        if (columns_[c].shrink_to > 0 && widths[c] > static_cast<size_t>(columns_[c].shrink_to) &&
            (widest == columns_.size() || widths[c] > widths[widest])) {
          widest = c;
        }
      }
      if (widest == columns_.size()) return;
      --widths[widest];
    }
  };
  std::vector<std::string> spilled;
  if (limit > 0 && total() > limit) {
    for (auto it = visible.begin(); it != visible.end();) {
      if (!columns_[*it].spill) {
        ++it;
        continue;
      }
      for (const auto& row : rows_) {
        if (!row[*it].empty()) spilled.push_back(absl::StrCat(row[0], ": ", row[*it]));
      }
      it = visible.erase(it);
    }
  }
  if (limit > 0) {
    // Leave out droppable columns, highest drop_order first (what identifies a row is
    // worth more than a secondary figure), then cut shrinkable ones.
    while (total() > limit) {
      auto drop = visible.end();
      for (auto it = visible.begin(); it != visible.end(); ++it) {
        if (columns_[*it].drop_order > 0 &&
            (drop == visible.end() || columns_[*it].drop_order > columns_[*drop].drop_order)) {
          drop = it;
        }
      }
      if (drop == visible.end()) break;
      visible.erase(drop);
    }
    shrink();
  }
  std::string out;
  auto render_line = [&](auto cell_of) {
    std::string line;
    for (size_t i = 0; i < visible.size(); ++i) {
      const size_t c = visible[i];
      const std::string text = CutToWidth(cell_of(c), static_cast<int>(widths[c]));
      const std::string pad(widths[c] - DisplayWidth(text), ' ');
      if (i > 0) line += "  ";
      line += columns_[c].align == kRight ? pad + text : text + pad;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    if (limit > 0) line = CutToWidth(line, static_cast<int>(limit));
    absl::StrAppend(&out, line, "\n");
  };
  if (table_headers.load(std::memory_order_relaxed)) {
    render_line([&](size_t c) -> const std::string& { return columns_[c].title; });
  }
  for (const auto& row : rows_) {
    render_line([&](size_t c) -> const std::string& { return row[c]; });
  }
  for (const std::string& text : spilled) {
    if (!wrap_spilled) {
      absl::StrAppend(&out, CutToWidth(text, static_cast<int>(limit)), "\n");
      continue;
    }
    // Wrapped by characters onto lines indented by 4 (no word breaking: errors are dense).
    std::string rest = text;
    bool first = true;
    while (!rest.empty()) {
      const std::string indent = first ? "" : "    ";
      const size_t room = limit > indent.size() + 8 ? limit - indent.size() : 8;
      std::string piece;
      size_t taken = 0, bytes = 0;
      while (bytes < rest.size() && taken < room) {
        size_t length = 1;
        while (bytes + length < rest.size() &&
               (static_cast<unsigned char>(rest[bytes + length]) & 0xc0) == 0x80) {
          ++length;
        }
        bytes += length;
        ++taken;
      }
      absl::StrAppend(&out, indent, rest.substr(0, bytes), "\n");
      rest = std::string(absl::StripLeadingAsciiWhitespace(rest.substr(bytes)));
      first = false;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Value formatting

std::string FormatRate(double bytes_per_sec) {
  if (!(bytes_per_sec > 0)) return "0 B/s";
  const double capped = std::min(bytes_per_sec, 18446744073709549568.0);  // < 2^64.
  return absl::StrCat(FormatSize(static_cast<uint64_t>(capped)), "/s");
}

std::string FormatShortDuration(absl::Duration duration) {
  if (duration == absl::InfiniteDuration()) return "forever";
  if (duration < absl::ZeroDuration()) duration = absl::ZeroDuration();
  const int64_t ms = absl::ToInt64Milliseconds(duration);
  if (ms < 1000) return absl::StrCat(ms, "ms");
  if (ms < 60 * 1000) return absl::StrCat(ms / 1000, ".", ms % 1000 / 100, "s");
  const int64_t seconds = ms / 1000;
  if (seconds < 3600) return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  return absl::StrFormat("%dh%02dm", seconds / 3600, seconds % 3600 / 60);
}

std::string PlanStateName(v1::PlanState state) {
  if (state == v1::PLAN_STATE_UNSPECIFIED || !v1::PlanState_IsValid(state)) return "unknown";
  absl::string_view name = v1::PlanState_Name(state);
  absl::ConsumePrefix(&name, "PLAN_STATE_");
  return absl::AsciiStrToLower(name);
}

std::string PlanKindName(const v1::PlanSpec& spec) {
  return std::string(memload::PlanKindName(spec, "-"));
}

std::string FormatQuantity(const v1::Quantity& quantity) {
  switch (quantity.value_case()) {
    case v1::Quantity::kBytes:
      return FormatSize(quantity.bytes());
    case v1::Quantity::kPercentOfTotal:
      return absl::StrCat(quantity.percent_of_total(), "% of total");
    case v1::Quantity::kPercentOfAvailable:
      return absl::StrCat(quantity.percent_of_available(), "% of available");
    case v1::Quantity::kPercentOfCgroupLimit:
      return absl::StrCat(quantity.percent_of_cgroup_limit(), "% of cgroup limit");
    case v1::Quantity::VALUE_NOT_SET:
      break;
  }
  return "-";
}

std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.empty()) return "-";
  const std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

bool PlanIsRunning(v1::PlanState state) {
  switch (state) {
    case v1::PLAN_STATE_PENDING:
    case v1::PLAN_STATE_RAMPING:
    case v1::PLAN_STATE_HOLDING:
    case v1::PLAN_STATE_STREAMING:
    case v1::PLAN_STATE_CAPPED:
      return true;
    default:
      return false;
  }
}

std::string PlanTarget(const v1::PlanStatus& plan) {
  if (plan.spec().kind_case() == v1::PlanSpec::kStreaming) return "-";  // No target.
  return FormatSize(plan.target_bytes());
}

std::vector<std::string> FailedNodeRow(const std::string& target, const absl::Status& status,
                                       size_t columns) {
  std::vector<std::string> row(std::max<size_t>(columns, 3), "-");
  row.front() = target;
  row[1] = StatusCell(false);
  row.back() = FormatStatus(status);
  return row;
}

std::string StatusCell(bool ok) { return ok ? "ok" : "FAILED"; }

bool TableRowKey::operator<(const TableRowKey& other) const {
  return std::tie(ok, unnamed, node, target) <
         std::tie(other.ok, other.unnamed, other.node, other.target);
}

TableRowKey RowKey(bool ok, absl::string_view node_name, absl::string_view target) {
  return TableRowKey{ok, node_name.empty(), std::string(node_name), std::string(target)};
}

std::string FormatStatus(const absl::Status& status) {
  // Short cells: the row already names the agent, so a leading "HOST:PORT: " goes, and so
  // does gRPC's wrapping around the detail that matters ("failed to connect to all
  // addresses; last error: UNKNOWN: ipv4:HOST:PORT: Connection refused").
  absl::string_view message = status.message();
  const size_t first = message.find(": ");
  if (first != absl::string_view::npos && first > 0) {
    const absl::string_view head = message.substr(0, first);
    if (head.find(' ') == absl::string_view::npos && head.find(':') != absl::string_view::npos) {
      message.remove_prefix(first + 2);
    }
  }
  std::string text(message);
  for (absl::string_view noise :
       {"failed to connect to all addresses; last error: ", "UNKNOWN: ", "UNAVAILABLE: "}) {
    if (const size_t at = text.find(std::string(noise)); at != std::string::npos && at > 0) {
      text.erase(at, noise.size());
    }
  }
  for (absl::string_view scheme : {"ipv4:", "ipv6:", "unix:"}) {
    const size_t at = text.find(std::string(scheme));
    if (at == std::string::npos) continue;
    const size_t end = text.find(": ", at);
    if (end != std::string::npos && text.substr(at, end - at).find(' ') == std::string::npos) {
      text.erase(at, end + 2 - at);
    }
  }
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", text);
}

absl::Status PlanOutcomeStatus(const v1::PlanStatus& plan) {
  if (PlanIsRunning(plan.state()) || plan.state() == v1::PLAN_STATE_UNSPECIFIED ||
      plan.outcome_ok()) {
    return absl::OkStatus();
  }
  switch (plan.state()) {
    case v1::PLAN_STATE_OOM_KILLED:
      return absl::ResourceExhaustedError(plan.error().empty() ? "the plan's worker was OOM-killed"
                                                               : plan.error());
    case v1::PLAN_STATE_LEASE_EXPIRED:
      return absl::DeadlineExceededError("the plan's lease expired: not renewed in time");
    case v1::PLAN_STATE_TARGET_GONE:
      return absl::FailedPreconditionError(
          plan.error().empty() ? "the plan's target cgroup went away" : plan.error());
    case v1::PLAN_STATE_COMPLETED:
    case v1::PLAN_STATE_STOPPED:
      return absl::OkStatus();  // Good ends, whatever outcome_ok an old agent sent.
    default:
      return absl::AbortedError(plan.error().empty() ? "the plan failed" : plan.error());
  }
}

// ---------------------------------------------------------------------------------------
// agents

std::string FormatAgentsTable(const std::vector<NodeResult<AgentInfo>>& agents) {
  Table table({{"AGENT"},
               {"NODE"},
               {"STATUS"},
               {"VERSION"},
               {"INCARNATION"},
               {"LABELS"},
               {"PLANS", Table::kRight},
               {"ERROR", Table::kLeft, true}});
  for (const NodeResult<AgentInfo>& agent : agents) {
    if (!agent.value.ok()) {
      table.AddRow({agent.target, "-", StatusCell(false), "-", "-", "-", "-",
                    FormatStatus(agent.value.status())});
      continue;
    }
    const v1::NodeInfo& info = agent.value->info;
    table.AddRow({agent.target, OrDash(info.node_name()), StatusCell(true), OrDash(info.version()),
                  OrDash(info.incarnation().substr(0, 8)), FormatLabels(info.labels()),
                  agent.value->running_plans ? absl::StrCat(*agent.value->running_plans) : "-"});
  }
  return table.Render();
}

std::string AgentsJson(const std::vector<NodeResult<AgentInfo>>& agents) {
  return NodesJson("agents", agents, [](const AgentInfo& agent, JsonObject& entry) {
    entry.Raw("node", ProtoToJson(agent.info));
    if (agent.running_plans) entry.Number("plans", *agent.running_plans);
  });
}

// ---------------------------------------------------------------------------------------
// usage

namespace {

// Renders `render(rows)` with as many rows as fit `max_lines` lines (<= 0: all `want`).
// Rows may take more than a line (spilled errors), so it tries again with fewer.
template <typename Render>
std::string FitRows(size_t want, int max_lines, Render render) {
  std::string out = render(want);
  if (max_lines <= 0) return out;
  size_t rows = want;
  for (int tries = 0; tries < 8 && FrameLines(out) > max_lines && rows > 0; ++tries) {
    const size_t excess = static_cast<size_t>(FrameLines(out) - max_lines);
    rows = rows > excess ? rows - excess : 0;
    out = render(rows);
  }
  return out;
}

std::string MoreLine(std::string text, int width) {
  return CutToWidth(text, width > 0 ? width : 1 << 20) + "\n";
}

// The usage tables of `nodes`, fitted to `width` (0: no limit); at most `max_rows` lines
// in all (0: no limit), the nodes' rows first — failed nodes before the others when not
// all fit — then as many plan rows as are left, and lines saying what was left out.
// Plans placed in another cgroup (a pod's container, a pid's or a path's): one row each, with
// the target cgroup as the kernel reports it. "" when there are none.
std::string PlacedPlansTable(const std::vector<NodeResult<v1::NodeUsage>>& nodes, int width) {
  Table table({{"POD/TARGET", Table::kLeft, false, 16},
               {"NODE", Table::kLeft, false, 8},
               {"PLAN", Table::kLeft, false, 8},
               {"CG-USAGE", Table::kRight},
               {"WORKING-SET", Table::kRight},
               {"CG-LIMIT", Table::kRight},
               {"OOM-KILLS", Table::kRight}});
  size_t rows = 0;
  for (const NodeResult<v1::NodeUsage>& node : nodes) {
    if (!node.value.ok()) continue;
    for (const v1::PlanStatus& plan : node.value->plans()) {
      if (!plan.has_target()) continue;
      const v1::TargetCgroup& target = plan.target();
      std::string name = target.path();
      if (!target.pod_name().empty()) {
        name = absl::StrCat(target.pod_namespace().empty() ? "" : target.pod_namespace() + "/",
                            target.pod_name(),
                            target.container_name().empty() ? "" : "/" + target.container_name());
      } else if (!target.pod_uid().empty()) {
        name = absl::StrCat("pod ", target.pod_uid());
      }
      table.AddRow({name, OrDash(node.value->node().node_name()), plan.plan_id(),
                    FormatSize(target.usage_bytes()), FormatSize(target.working_set_bytes()),
                    target.limited() ? FormatSize(target.limit_bytes()) : "none",
                    absl::StrCat(target.oom_kill_count(), target.oom_group() ? " (oom.group)" : "",
                                 target.gone() ? " (gone)" : "")});
      ++rows;
    }
  }
  return rows == 0 ? "" : "\n" + table.Render(width);
}

std::string UsageTables(const std::vector<NodeResult<v1::NodeUsage>>& nodes, int width,
                        int max_rows) {
  bool any_limit = false, any_cgroup = false, any_psi = false;
  size_t plans = 0;
  for (const NodeResult<v1::NodeUsage>& node : nodes) {
    if (!node.value.ok()) continue;
    any_cgroup |= node.value->cgroup().version() != 0;
    any_limit |= node.value->cgroup().limited();
    any_psi |= node.value->pressure().available();
    plans += node.value->plans_size();
  }
  // Which nodes get a row when not all fit: the failed ones first, in the given order.
  std::vector<size_t> order;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i].value.ok()) order.push_back(i);
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].value.ok()) order.push_back(i);
  }
  auto render_nodes = [&](size_t rows) {
    std::vector<bool> shown(nodes.size(), rows >= nodes.size());
    for (size_t k = 0; k < rows && k < order.size(); ++k) shown[order[k]] = true;
    // Columns with nothing to say on any node (no cgroup limit, no PSI) are left out.
    Table table({{"AGENT", Table::kLeft, false, 12},
                 {"NODE", Table::kLeft, false, 8},
                 {"STATUS"},
                 {"TOTAL", Table::kRight},
                 {"AVAILABLE", Table::kRight},
                 {"CG-LIMIT", Table::kRight, true, 0, 2},
                 {"CG-USAGE", Table::kRight, true, 0, 3},
                 {"PSI10", Table::kRight, true, 0, 4},
                 {"AGENT-RSS", Table::kRight, false, 0, 5},
                 {"PLANS", Table::kRight},
                 {"RESIDENT", Table::kRight},
                 {"ERROR", Table::kLeft, true, 0, 0, true}});
    size_t hidden = 0, failed_hidden = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const NodeResult<v1::NodeUsage>& node = nodes[i];
      if (!shown[i]) {
        ++hidden;
        failed_hidden += !node.value.ok();
        continue;
      }
      if (!node.value.ok()) {
        table.AddRow({node.target, "-", StatusCell(false), "-", "-", any_limit ? "-" : "",
                      any_cgroup ? "-" : "", any_psi ? "-" : "", "-", "-", "-",
                      FormatStatus(node.value.status())});
        continue;
      }
      const v1::NodeUsage& usage = *node.value;
      const v1::CgroupUsage& cgroup = usage.cgroup();
      const bool has_cgroup = cgroup.version() != 0;
      table.AddRow(
          {node.target, OrDash(usage.node().node_name()), StatusCell(true),
           FormatSize(usage.meminfo().total_bytes()), FormatSize(usage.meminfo().available_bytes()),
           !any_limit         ? ""
           : !has_cgroup      ? "-"
           : cgroup.limited() ? FormatSize(cgroup.limit_bytes())
                              : "none",
           !any_cgroup  ? ""
           : has_cgroup ? FormatSize(cgroup.usage_bytes())
                        : "-",
           !any_psi                       ? ""
           : usage.pressure().available() ? absl::StrFormat("%.2f", usage.pressure().some_avg10())
                                          : "-",
           FormatSize(usage.agent_rss_bytes()), absl::StrCat(RunningPlans(usage)),
           FormatSize(usage.plans_resident_bytes())});
    }
    std::string out = table.Render(width);
    if (hidden > 0) {
      out += MoreLine(
          absl::StrCat("… ", hidden, " more nodes",
                       failed_hidden > 0 ? absl::StrCat(" (", failed_hidden, " failed)") : "",
                       " not shown: the terminal is too small; `memloadctl usage` lists all"),
          width);
    }
    return out;
  };
  auto render_plans = [&](size_t rows) {
    if (plans == 0) return std::string();
    if (rows == 0) return "\n" + MoreLine(absl::StrCat("… ", plans, " plans not shown"), width);
    Table table({{"NODE", Table::kLeft, false, 8},
                 {"PLAN", Table::kLeft, false, 8},
                 {"KIND", Table::kLeft, false, 0, 3},
                 {"STATUS"},
                 {"STATE"},
                 {"TARGET", Table::kRight},
                 {"PAYLOAD", Table::kRight, false, 0, 2},
                 {"RESIDENT", Table::kRight},
                 {"RATE", Table::kRight, false, 0, 4},
                 {"ENDED", Table::kRight, true, 0, 1},
                 {"ERROR", Table::kLeft, true, 0, 0, true}});
    size_t shown = 0;
    for (const NodeResult<v1::NodeUsage>& node : nodes) {
      if (!node.value.ok()) continue;
      const v1::NodeUsage& usage = *node.value;
      const std::string node_name =
          usage.node().node_name().empty() ? node.target : usage.node().node_name();
      for (const v1::PlanStatus& plan : usage.plans()) {
        if (shown == rows) break;
        ++shown;
        // Ended plans (usage adds the recently ended ones): when, and why when not ok.
        const absl::Status outcome = PlanOutcomeStatus(plan);
        table.AddRow(
            {node_name, plan.plan_id(), PlanKindName(plan.spec()), StatusCell(outcome.ok()),
             PlanStateName(plan.state()), PlanTarget(plan), FormatSize(plan.payload_bytes()),
             FormatSize(plan.resident_bytes()), FormatRate(plan.allocation_rate_bytes_per_sec()),
             plan.has_ended() ? absl::FormatTime("%H:%M:%S", FromProtoTimestamp(plan.ended()),
                                                 absl::UTCTimeZone())
                              : "",
             !plan.error().empty() ? plan.error()
             : outcome.ok()        ? ""
                                   : std::string(outcome.message())});
      }
    }
    std::string out = "\n" + table.Render(width);
    if (shown < plans)
      out += MoreLine(absl::StrCat("… ", plans - shown, " plans not shown"), width);
    return out;
  };
  // The nodes first (at least one row, and the header), then the plans in what is left.
  std::string out = FitRows(nodes.size(), max_rows > 0 ? std::max(max_rows, 3) : 0, render_nodes);
  if (plans == 0) return out;
  const int left = max_rows > 0 ? max_rows - FrameLines(out) : 0;
  if (max_rows > 0 && left < 2) return out;  // Not even room to say the plans are left out.
  out += FitRows(plans, left, render_plans);
  if (max_rows == 0) out += PlacedPlansTable(nodes, width);
  return out;
}

}  // namespace

std::string FormatUsageTable(const std::vector<NodeResult<v1::NodeUsage>>& nodes) {
  return UsageTables(nodes, 0, 0);
}

std::string FormatUsageTable(const std::vector<NodeResult<v1::NodeUsage>>& nodes, int width) {
  return UsageTables(nodes, width, 0);
}

std::string UsageJson(const std::vector<NodeResult<v1::NodeUsage>>& nodes) {
  return NodesJson("usage", nodes, [](const v1::NodeUsage& usage, JsonObject& entry) {
    entry.Raw("usage", ProtoToJson(usage));
  });
}

// ---------------------------------------------------------------------------------------
// start, resize, stop

std::string FormatPlanResultsTable(const std::vector<NodeResult<v1::PlanStatus>>& nodes) {
  Table table({{"AGENT"},
               {"STATUS"},
               {"PLAN"},
               {"STATE"},
               {"TARGET", Table::kRight},
               {"PAYLOAD", Table::kRight},
               {"RESIDENT", Table::kRight},
               {"ERROR", Table::kLeft, true}});
  for (const NodeResult<v1::PlanStatus>& node : nodes) {
    if (!node.value.ok()) {
      table.AddRow(FailedNodeRow(node.target, node.value.status(), 8));
      continue;
    }
    const v1::PlanStatus& plan = *node.value;
    table.AddRow({node.target, StatusCell(true), plan.plan_id(), PlanStateName(plan.state()),
                  PlanTarget(plan), FormatSize(plan.payload_bytes()),
                  FormatSize(plan.resident_bytes()), plan.error()});
  }
  return table.Render();
}

std::string PlanResultsJson(absl::string_view command,
                            const std::vector<NodeResult<v1::PlanStatus>>& nodes) {
  return PlanResultsJson(command, nodes, {});
}

std::string PlanResultsJson(absl::string_view command,
                            const std::vector<NodeResult<v1::PlanStatus>>& nodes,
                            const std::vector<std::pair<std::string, std::string>>& fields) {
  Envelope envelope(command);
  for (const auto& [key, json] : fields) envelope.Field(key, json);
  for (const NodeResult<v1::PlanStatus>& node : nodes) {
    JsonObject entry = NodeEntry(node.target, node.value.ok());
    if (node.value.ok()) {
      entry.Raw("plan", ProtoToJson(*node.value));
    } else {
      entry.Raw("error", ErrorJsonObject(node.value.status()));
    }
    envelope.Node(node.value.ok(), entry);
  }
  return envelope.Render();
}

// ---------------------------------------------------------------------------------------
// run

bool RunNodeOk(const RunNode& node) {
  return node.errors.empty() && node.plan.has_value() && PlanOutcomeStatus(*node.plan).ok();
}

namespace {

constexpr char kNeverStarted[] = "the plan never started";
// Beyond this many nodes, run's live view summarizes and shows only the outliers.
constexpr size_t kDetailedRunNodes = 40;
// At most this many outlier rows (fewer when the terminal is smaller).
constexpr int kOutlierRows = 20;

// Everything that went wrong on a node, for people (progress: the latest only; a node not
// started yet is waiting, not failed).
std::string NodeErrors(const RunNode& node, bool last_only) {
  std::vector<std::string> errors;
  for (const absl::Status& error : node.errors) errors.push_back(FormatStatus(error));
  if (node.plan.has_value()) {
    const absl::Status outcome = PlanOutcomeStatus(*node.plan);
    if (!outcome.ok()) {
      errors.push_back(FormatStatus(outcome));
    } else if (!node.plan->error().empty()) {
      errors.push_back(node.plan->error());  // E.g. why it was capped.
    }
  }
  if (!node.plan.has_value() && errors.empty() && !last_only) errors.push_back(kNeverStarted);
  if (last_only && errors.size() > 1) errors.erase(errors.begin(), errors.end() - 1);
  return absl::StrJoin(errors, "; ");
}

std::string RunTitle(const RunView& run) {
  return absl::StrCat("plan ", run.spec.plan_id(), " (", PlanKindName(run.spec), ") on ",
                      run.nodes.size(), run.nodes.size() == 1 ? " node" : " nodes", ", ",
                      FormatShortDuration(run.elapsed), " elapsed\n");
}

}  // namespace

std::string FormatRunProgress(const RunView& run) { return FormatRunProgress(run, ViewSize()); }

namespace {

// What the progress view knows of one node.
struct NodeProgress {
  const RunNode* node = nullptr;
  bool failed = false;  // A failed call or a bad outcome.
  bool capped = false;
  bool running = false;
  bool reached = false;  // The plan reported reaching its target.
  bool has_target = false;
  uint64_t percent = 0;  // Payload against target, while running with a target.
};

NodeProgress ProgressOf(const RunNode& node) {
  NodeProgress progress;
  progress.node = &node;
  progress.failed = !node.errors.empty();
  if (!node.plan.has_value()) return progress;
  const v1::PlanStatus& plan = *node.plan;
  progress.failed |= !PlanOutcomeStatus(plan).ok();
  progress.capped = plan.state() == v1::PLAN_STATE_CAPPED;
  progress.running = PlanIsRunning(plan.state());
  progress.reached = plan.has_target_reached();
  progress.has_target =
      plan.spec().kind_case() != v1::PlanSpec::kStreaming && plan.target_bytes() > 0;
  if (progress.has_target)
    progress.percent = PercentFloor(plan.payload_bytes(), plan.target_bytes());
  return progress;
}

void AddProgressRow(const RunNode& node, Table* table) {
  const std::string status = StatusCell(!ProgressOf(node).failed);
  if (!node.plan.has_value()) {
    table->AddRow({node.target, OrDash(node.node_name), status,
                   node.errors.empty() ? "waiting" : "-", "-", "-", "-", "-",
                   NodeErrors(node, /*last_only=*/true)});
    return;
  }
  const v1::PlanStatus& plan = *node.plan;
  const bool running = PlanIsRunning(plan.state());
  const bool has_target =
      plan.spec().kind_case() != v1::PlanSpec::kStreaming && plan.target_bytes() > 0;
  table->AddRow({node.target, OrDash(node.node_name), status, PlanStateName(plan.state()),
                 PlanTarget(plan), FormatSize(plan.resident_bytes()),
                 has_target && running ? Percent(plan.payload_bytes(), plan.target_bytes()) : "-",
                 running ? FormatRate(plan.allocation_rate_bytes_per_sec()) : "-",
                 NodeErrors(node, /*last_only=*/true)});
}

Table ProgressTable() {
  return Table({{"AGENT", Table::kLeft, false, 12},
                {"NODE", Table::kLeft, false, 8},
                {"STATUS"},
                {"STATE"},
                {"TARGET", Table::kRight},
                {"RESIDENT", Table::kRight},
                {"%TARGET", Table::kRight},
                {"RATE", Table::kRight, false, 0, 1},
                {"ERROR", Table::kLeft, true, 0, 0, true}});
}

}  // namespace

std::string FormatRunProgress(const RunView& run, ViewSize size) {
  const int width = size.columns > 0 ? size.columns : 1 << 20;
  uint64_t total_target = 0, total_done = 0, total_resident = 0;
  double total_rate = 0;
  int at_target = 0, with_plan = 0;
  std::vector<NodeProgress> progress;
  progress.reserve(run.nodes.size());
  for (const RunNode& node : run.nodes) {
    progress.push_back(ProgressOf(node));
    if (!node.plan.has_value()) continue;
    const v1::PlanStatus& plan = *node.plan;
    ++with_plan;
    if (progress.back().has_target) {
      total_target += plan.target_bytes();
      total_done += std::min(plan.payload_bytes(), plan.target_bytes());
    }
    if (plan.has_target_reached()) ++at_target;
    total_resident += plan.resident_bytes();
    if (progress.back().running) total_rate += plan.allocation_rate_bytes_per_sec();
  }
  std::string bar;
  if (total_target > 0) {
    const int kBarWidth = size.columns > 0 && size.columns < 100 ? 20 : 30;
    const uint64_t percent = PercentFloor(total_done, total_target);
    const int filled = static_cast<int>(percent * kBarWidth / 100);
    // Nodes not started yet have no resolved target: the percentage covers those with a
    // plan, and the line says how many that is.
    bar = CutToWidth(absl::StrCat("progress [", std::string(filled, '#'),
                                  std::string(kBarWidth - filled, '-'), "] ", percent,
                                  "% of the target on ", with_plan, " of ", run.nodes.size(),
                                  " nodes; ", at_target, " reached it"),
                     width) +
          "\n";
  }
  const std::string title =
      CutToWidth(absl::StripTrailingAsciiWhitespace(RunTitle(run)), width) + "\n";
  // Every node a row, with a TOTAL row, when that fits (and stays readable).
  const int fixed = 1 + 1 + 1 + (bar.empty() ? 0 : 1);  // Title, header, TOTAL, bar.
  const bool all_rows =
      run.nodes.size() <= kDetailedRunNodes &&
      (size.rows <= 0 || static_cast<int>(run.nodes.size()) + fixed <= size.rows - 1);
  if (all_rows) {
    Table table = ProgressTable();
    for (const RunNode& node : run.nodes) AddProgressRow(node, &table);
    table.AddRow(
        {"TOTAL", absl::StrCat(run.nodes.size(), run.nodes.size() == 1 ? " node" : " nodes"), "",
         "", total_target > 0 ? FormatSize(total_target) : "-", FormatSize(total_resident),
         total_target > 0 ? Percent(total_done, total_target) : "-", FormatRate(total_rate)});
    return absl::StrCat(title, table.Render(size.columns), bar);
  }

  // A fleet: counts by state, the spread of progress across nodes, and only the nodes that
  // need a look (failed, capped, then the furthest from their target).
  std::map<std::string, size_t> states;
  size_t failed = 0;
  std::vector<uint64_t> percents;
  for (const NodeProgress& one : progress) {
    failed += one.failed;
    states[one.node->plan.has_value() ? PlanStateName(one.node->plan->state())
           : one.node->errors.empty() ? "waiting"
                                      : "not started"]++;
    if (one.running && one.has_target) percents.push_back(one.percent);
  }
  std::vector<std::string> state_counts;
  for (const auto& [state, count] : states) state_counts.push_back(absl::StrCat(state, " ", count));
  std::string out = title;
  absl::StrAppend(&out,
                  CutToWidth(absl::StrCat("nodes: ", run.nodes.size() - failed, " ok, ", failed,
                                          " failed; ", absl::StrJoin(state_counts, ", ")),
                             width),
                  "\n");
  if (!percents.empty()) {
    std::sort(percents.begin(), percents.end());
    auto at = [&](double q) {
      return percents[std::min(
          percents.size() - 1,
          static_cast<size_t>(q * static_cast<double>(percents.size() - 1) + 0.5))];
    };
    absl::StrAppend(&out,
                    CutToWidth(absl::StrFormat("%%target across %d running nodes: min %d%%, "
                                               "median %d%%, p90 %d%%, max %d%%",
                                               percents.size(), percents.front(), at(0.5), at(0.9),
                                               percents.back()),
                               width),
                    "\n");
  }
  absl::StrAppend(&out,
                  CutToWidth(absl::StrCat("total: resident ", FormatSize(total_resident),
                                          total_target > 0 ? absl::StrCat(" of a target of ",
                                                                          FormatSize(total_target))
                                                           : "",
                                          ", allocating ", FormatRate(total_rate)),
                             width),
                  "\n", bar);
  // The nodes that need a look, most urgent first.
  std::vector<const NodeProgress*> look;
  for (const NodeProgress& one : progress) {
    if (one.failed || one.capped || (one.running && one.has_target && !one.reached)) {
      look.push_back(&one);
    }
  }
  std::stable_sort(look.begin(), look.end(), [](const NodeProgress* a, const NodeProgress* b) {
    auto rank = [](const NodeProgress* p) { return p->failed ? 0 : p->capped ? 1 : 2; };
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    return rank(a) == 2 && a->percent < b->percent;
  });
  if (look.empty()) return out;
  const int left = size.rows > 0 ? size.rows - 1 - FrameLines(out) : kOutlierRows + 3;
  if (left < 3) return out;
  absl::StrAppend(&out,
                  CutToWidth(absl::StrCat("nodes that need a look (", look.size(),
                                          "): failed, capped, then furthest from the target"),
                             width),
                  "\n");
  auto render = [&](size_t rows) {
    Table table = ProgressTable();
    for (size_t i = 0; i < rows && i < look.size(); ++i) AddProgressRow(*look[i]->node, &table);
    std::string text = table.Render(size.columns);
    if (rows < look.size()) {
      absl::StrAppend(&text, CutToWidth(absl::StrCat("… ", look.size() - rows, " more"), width),
                      "\n");
    }
    return text;
  };
  const size_t want = std::min(look.size(), static_cast<size_t>(kOutlierRows));
  return out + FitRows(want, left - 1, render);
}

std::string FormatRunSummary(const RunView& run) { return FormatRunSummary(run, 0); }

std::string FormatRunSummary(const RunView& run, int width) {
  Table table({{"AGENT", Table::kLeft, false, 12},
               {"NODE", Table::kLeft, false, 8},
               {"STATUS"},
               {"STATE"},
               {"PEAK", Table::kRight},
               {"TIME-TO-TARGET", Table::kRight},
               {"ERRORS", Table::kLeft, true, 0, 0, true}});
  size_t ok = 0;
  for (const RunNode& node : run.nodes) {
    const bool node_ok = RunNodeOk(node);
    ok += node_ok;
    std::string state = "-", peak = "-", time_to_target = "-";
    if (node.plan.has_value()) {
      state = PlanStateName(node.plan->state());
      peak = FormatSize(node.plan->peak_resident_bytes());
      if (std::optional<absl::Duration> took = TimeToTarget(*node.plan)) {
        time_to_target = FormatShortDuration(*took);
      }
    }
    table.AddRow({node.target, OrDash(node.node_name), StatusCell(node_ok), state, peak,
                  time_to_target, NodeErrors(node, /*last_only=*/false)});
  }
  std::string verdict = absl::StrCat("plan ", run.spec.plan_id(), " (", PlanKindName(run.spec),
                                     ") ran ", FormatShortDuration(run.elapsed), ": ", ok, " of ",
                                     run.nodes.size(), " nodes ok");
  if (ok < run.nodes.size()) absl::StrAppend(&verdict, ", ", run.nodes.size() - ok, " failed");
  return absl::StrCat(verdict, "\n", table.Render(width, /*wrap_spilled=*/true));
}

std::string RunJson(const RunView& run) {
  Envelope envelope("run");
  envelope.Field("planId", JsonQuote(run.spec.plan_id()));
  envelope.Field("spec", ProtoToJson(run.spec));
  envelope.Field("elapsed", DurationJson(run.elapsed));
  int reached = 0;
  uint64_t target_bytes = 0, peak_bytes = 0;
  for (const RunNode& node : run.nodes) {
    const bool ok = RunNodeOk(node);
    JsonObject entry = NodeEntry(node.target, ok);
    if (!node.node_name.empty()) entry.String("node", node.node_name);
    if (node.plan.has_value()) {
      entry.Raw("plan", ProtoToJson(*node.plan));
      if (std::optional<absl::Duration> took = TimeToTarget(*node.plan)) {
        entry.Raw("timeToTarget", DurationJson(*took));
        ++reached;
      }
      target_bytes += node.plan->target_bytes();
      peak_bytes += node.plan->peak_resident_bytes();
    }
    std::vector<std::string> errors;
    for (const absl::Status& error : node.errors) errors.push_back(ErrorJsonObject(error));
    entry.Raw("errors", JsonArray(errors));
    if (!ok) {
      absl::Status error =
          node.errors.empty() ? absl::UnknownError(kNeverStarted) : node.errors.back();
      if (node.errors.empty() && node.plan.has_value()) error = PlanOutcomeStatus(*node.plan);
      entry.Raw("error", ErrorJsonObject(error));
    }
    envelope.Node(ok, entry);
  }
  envelope.SummaryField("reachedTarget", absl::StrCat(reached));
  envelope.SummaryField("targetBytes", absl::StrCat("\"", target_bytes, "\""));
  envelope.SummaryField("peakResidentBytes", absl::StrCat("\"", peak_bytes, "\""));
  return envelope.Render();
}

// ---------------------------------------------------------------------------------------
// watch

std::string FormatWatchFrame(absl::Time now, const std::vector<NodeResult<v1::NodeUsage>>& nodes) {
  return FormatWatchFrame(now, nodes, ViewSize());
}

std::string FormatWatchFrame(absl::Time now, const std::vector<NodeResult<v1::NodeUsage>>& nodes,
                             ViewSize size) {
  size_t failed = 0;
  for (const auto& node : nodes) failed += !node.value.ok();
  std::string title = absl::StrCat(
      "memload usage at ", absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", now, absl::UTCTimeZone()));
  if (size.columns > 0 || size.rows > 0) {
    absl::StrAppend(&title, ", ", nodes.size(), nodes.size() == 1 ? " node" : " nodes",
                    failed > 0 ? absl::StrCat(", ", failed, " failed") : "");
  }
  const int width = size.columns;
  // The last row stays free: writing into it would scroll the screen.
  const int rows = size.rows > 0 ? std::max(size.rows - 1 - 2, 1) : 0;
  return absl::StrCat(CutToWidth(title, width > 0 ? width : 1 << 20), "\n\n",
                      UsageTables(nodes, width, rows));
}

std::string FormatWatchLine(absl::Time now, const NodeResult<v1::NodeUsage>& node) {
  std::string line =
      absl::StrCat(TimeText(now), " ", node.target, " ", node.value.ok() ? "ok" : "FAILED");
  if (!node.value.ok()) {
    absl::StrAppend(&line, " error=", FormatStatus(node.value.status()));
  } else {
    const v1::NodeUsage& usage = *node.value;
    absl::StrAppend(&line, " ", OrDash(usage.node().node_name()),
                    " total=", FormatSize(usage.meminfo().total_bytes()),
                    " available=", FormatSize(usage.meminfo().available_bytes()),
                    " plans=", RunningPlans(usage),
                    " resident=", FormatSize(usage.plans_resident_bytes()));
    if (usage.pressure().available()) {
      absl::StrAppend(&line, absl::StrFormat(" psi10=%.2f", usage.pressure().some_avg10()));
    }
  }
  return SanitizeCell(line) + "\n";
}

std::string WatchJsonLine(absl::Time now, const NodeResult<v1::NodeUsage>& node) {
  JsonObject line;
  line.String("command", "watch").String("time", TimeText(now));
  line.String("target", node.target).Bool("ok", node.value.ok());
  if (node.value.ok()) {
    line.Raw("usage", ProtoToJson(*node.value));
  } else {
    line.Raw("error", ErrorJsonObject(node.value.status()));
  }
  return line.Compact() + "\n";
}

std::string ErrorJson(absl::string_view command, const absl::Status& status) {
  Envelope envelope(command);
  envelope.Fail(status.ok() ? absl::UnknownError("no error given") : status);
  return envelope.Render();
}

// ---------------------------------------------------------------------------------------
// JSON

std::string ProtoToJson(const google::protobuf::Message& message) {
  // MessageToJsonString serializes maps in hash order; serialize deterministically (map
  // keys sorted) so that documents are stable, then print with the same mapping.
  static google::protobuf::util::TypeResolver* const resolver =
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool());
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // Scripts find every field, zeros too.
  std::string json;
  const auto status = google::protobuf::util::BinaryToJsonString(
      resolver, absl::StrCat("type.googleapis.com/", message.GetDescriptor()->full_name()), binary,
      &json, options);
  if (!status.ok()) {
    // Not expected for generated messages; still hand back valid JSON.
    const auto text = status.message();
    return JsonQuote(absl::StrCat("unprintable ", message.GetDescriptor()->full_name(), ": ",
                                  absl::string_view(text.data(), text.size())));
  }
  return json;
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (length > 1) {
      out.append(text.data() + i, length);
      i += length;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out + "\"";
}

std::string JsonArray(const std::vector<std::string>& values) {
  return absl::StrCat("[", absl::StrJoin(values, ","), "]");
}

std::string JsonStringArray(const std::vector<std::string>& texts) {
  std::vector<std::string> quoted;
  quoted.reserve(texts.size());
  for (const std::string& text : texts) quoted.push_back(JsonQuote(text));
  return JsonArray(quoted);
}

// ---------------------------------------------------------------------------------------
// Redraw

int FrameLines(absl::string_view frame) {
  int lines = static_cast<int>(std::count(frame.begin(), frame.end(), '\n'));
  if (!frame.empty() && frame.back() != '\n') ++lines;
  return lines;
}

int FrameRows(absl::string_view frame, int columns) {
  if (columns <= 0) return FrameLines(frame);
  int rows = 0;
  for (absl::string_view line : absl::StrSplit(frame, '\n')) {
    const int width = TextWidth(line);
    rows += width == 0 ? 1 : (width + columns - 1) / columns;
  }
  // The split yields an empty piece after a final '\n': that is no row.
  if (!frame.empty() && frame.back() == '\n') --rows;
  if (frame.empty()) rows = 0;
  return rows;
}

int TextWidth(absl::string_view text) { return static_cast<int>(DisplayWidth(text)); }

std::string CutToWidth(absl::string_view text, int width) {
  if (width <= 0) return "";
  if (DisplayWidth(text) <= static_cast<size_t>(width)) return std::string(text);
  std::string out;
  int kept = 0;
  for (size_t i = 0; i < text.size() && kept < width - 1; ++kept) {
    size_t length = 1;
    while (i + length < text.size() &&
           (static_cast<unsigned char>(text[i + length]) & 0xc0) == 0x80) {
      ++length;
    }
    out.append(text.data() + i, length);
    i += length;
  }
  return out + "\u2026";
}

std::string ClearFrame(int lines) {
  if (lines <= 0) return "";
  return absl::StrCat("\x1b[", lines, "A\x1b[J");
}

}  // namespace controller
}  // namespace memload
